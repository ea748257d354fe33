//! The reference scorer (`testdata/feeds/score.py`, vendored unchanged from the shared feed
//! fixtures) on the public sample batch, run end to end through the library: parse, match,
//! resolve, write the offline contract, score. The bars are the targets.

use p360_enrich::run::{self, Options};
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

#[test]
#[allow(clippy::print_stdout)]
fn the_reference_scorer_on_the_sample_batch() {
    let set = root().join("testdata/feeds/sample");
    let members = set.join("batch/members.csv");
    let out = tempfile::tempdir().expect("tempdir");
    let inputs = run::inputs(&members, &[set.join("batch")]).expect("inputs");
    assert_eq!(inputs.len(), 12, "every feed file of the batch is found");
    let opts = Options {
        jobs: 2,
        recorded: "2025-06-30T00:00:00Z".into(),
    };
    let result = run::run(&members, &inputs, out.path(), &opts, &|_| {}).expect("run");
    run::write(out.path(), &result, &opts.recorded).expect("write");
    assert_eq!(result.report.problems, [], "the sample has no bad records");
    let metrics = out.path().join("metrics.json");
    let o = Command::new("python3")
        .arg(root().join("testdata/feeds/score.py"))
        .arg(&set)
        .arg(out.path())
        .arg("--json")
        .arg(&metrics)
        .output()
        .expect("python3 runs the scorer");
    println!("{}", String::from_utf8_lossy(&o.stdout));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&metrics).expect("metrics")).expect("json");
    let f = |p: &str| {
        m.pointer(p)
            .and_then(serde_json::Value::as_f64)
            .unwrap_or_else(|| panic!("{p} in metrics: {m}"))
    };
    assert_eq!(f("/links/false_links"), 0.0, "no false links");
    assert!(f("/links/recall") >= 0.97);
    assert!(f("/links/review_rate") <= 0.05);
    for t in [
        "condition",
        "observation",
        "medication",
        "encounter",
        "procedure",
        "immunization",
        "allergy",
    ] {
        assert!(f(&format!("/facts/by_type/{t}/f1")) >= 0.98, "{t}");
    }
    assert_eq!(f("/facts/all/duplicates"), 0.0);
    assert!(f("/facts/multi_source_recall") >= 0.95);
}
