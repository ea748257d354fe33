//! Extraction accuracy on the documents with ground truth (`testdata/documents`, shared fixture
//! set, and `testdata/documents/generated`, our own layouts): `p360 extract`'s bundles scored by
//! `scripts/score-extraction.py` against the bars. A regression in OCR settings,
//! layout analysis or the terminology tables fails here.

use serde_json::Value;
use std::path::Path;
use std::process::Command;

fn score(truth: &Path, out: &Path) -> Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/score-extraction.py");
    let output = Command::new("python3")
        .arg(script)
        .arg(truth)
        .arg(out)
        .arg("--json")
        .output()
        .expect("python3 runs the scorer");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("scorer JSON")
}

fn group<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["summary"]
        .as_array()
        .and_then(|rows| rows.iter().find(|r| r["group"] == name))
        .unwrap_or_else(|| panic!("no group {name} in {report}"))
}

fn f1(report: &Value, name: &str, what: &str) -> f64 {
    group(report, name)[what]["f1"].as_f64().unwrap_or(0.0)
}

async fn extract_and_score(dir: &Path) -> Value {
    let out = tempfile::tempdir().expect("tempdir");
    p360::extract_cmd::run(dir, out.path(), 2, false)
        .await
        .expect("every document extracts");
    score(dir, out.path())
}

#[tokio::test(flavor = "multi_thread")]
async fn the_shared_fixtures_meet_the_accuracy_bars() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/documents");
    let r = extract_and_score(&dir).await;
    let summary = serde_json::to_string_pretty(&r["summary"]).unwrap_or_default();
    assert!(f1(&r, "group:clean", "labs") >= 0.95, "{summary}");
    assert!(f1(&r, "group:photo", "labs") >= 0.85, "{summary}");
    assert!(f1(&r, "all", "conditions") >= 0.90, "{summary}");
    assert!(f1(&r, "all", "medications") >= 0.90, "{summary}");
    assert_eq!(group(&r, "all")["negated_emitted"], 0, "{summary}");
    assert_eq!(group(&r, "all")["stopped_as_active"], 0, "{summary}");
    assert!(
        group(&r, "all")["header_accuracy"].as_f64().unwrap_or(0.0) >= 0.95,
        "{summary}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn documents_in_layouts_we_did_not_tune_on_meet_the_same_bars() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/documents/generated");
    let r = extract_and_score(&dir).await;
    let summary = serde_json::to_string_pretty(&r["summary"]).unwrap_or_default();
    assert!(f1(&r, "all", "labs") >= 0.85, "{summary}");
    assert!(f1(&r, "all", "conditions") >= 0.90, "{summary}");
    assert_eq!(group(&r, "all")["negated_emitted"], 0, "{summary}");
    assert!(
        group(&r, "all")["header_accuracy"].as_f64().unwrap_or(0.0) >= 0.95,
        "{summary}"
    );
}
