//! Extraction accuracy on every document set with ground truth, scored by the **reference
//! scorer** shipped with the shared fixtures (`testdata/documents/score.py`, vendored
//! unchanged): the first fixtures, set 2 (other labs and clinics), and our generator's two
//! splits (`gen-dev`, looked at while developing; `gen-holdout`, never tuned on). Each set must
//! stay at or above the bars below, which sit just under what the code reaches today; the
//! issue's targets and the gap to them are in ARCHITECTURE.md ("Extraction accuracy").

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

fn testdata(set: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../testdata/documents")
        .join(set)
}

/// Runs `p360 extract` over `set` and returns the reference scorer's rows (`ALL`, `clean`,
/// `scan`, `photo_mild`, …), printing its table.
async fn score(set: &str) -> Value {
    let dir = testdata(set);
    let out = tempfile::tempdir().expect("tempdir");
    // A document whose every page is unreadable is an outcome, not a failure of the run.
    let _ = p360::extract_cmd::run(&dir, out.path(), 2, false).await;
    let json = out.path().join("score.json");
    let output = Command::new("python3")
        .arg(testdata("score.py"))
        .arg(&dir)
        .arg(out.path())
        .arg("--by-type")
        .arg("--json")
        .arg(&json)
        .output()
        .expect("python3 runs the reference scorer");
    // The same counters summed per layout family (`by_layout.py` uses the scorer's functions).
    let layouts = Command::new("python3")
        .arg(testdata("by_layout.py"))
        .arg(&dir)
        .arg(out.path())
        .output()
        .expect("python3 runs the layout table");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    #[allow(clippy::print_stdout)] // the scorer's table, shown by nextest for this test
    {
        println!("{set}:\n{}", String::from_utf8_lossy(&output.stdout));
        println!(
            "{set} by layout:\n{}",
            String::from_utf8_lossy(&layouts.stdout)
        );
    }
    let report: Value =
        serde_json::from_slice(&std::fs::read(&json).expect("scorer JSON")).expect("JSON");
    report["rows"].clone()
}

fn at_least(rows: &Value, row: &str, metric: &str, bar: f64) -> Result<(), String> {
    let v = rows[row][metric].as_f64().unwrap_or(0.0);
    (v >= bar)
        .then_some(())
        .ok_or_else(|| format!("{row} {metric} = {v:.3}, below {bar}"))
}

fn check(rows: &Value, bars: &[(&str, &str, f64)]) {
    let failures: Vec<String> = bars
        .iter()
        .filter_map(|(row, metric, bar)| at_least(rows, row, metric, *bar).err())
        .collect();
    assert_eq!(rows["ALL"]["neg_errors"], 0, "negated mention emitted");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test(flavor = "multi_thread")]
async fn first_fixtures_meet_their_bars() {
    let rows = score("").await;
    check(
        &rows,
        &[
            ("clean", "labs_f1", 0.97),
            ("photo", "labs_f1", 0.92),
            ("ALL", "conditions_f1", 0.95),
            ("ALL", "meds_f1", 0.90),
            ("ALL", "patient_acc", 0.95),
        ],
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn set2_other_labs_and_clinics_meet_their_bars() {
    let rows = score("set2").await;
    check(
        &rows,
        &[
            ("clean", "labs_f1", 0.97),
            ("scan", "labs_f1", 0.95),
            ("photo_mild", "labs_f1", 0.78),
            ("photo_strong", "labs_f1", 0.65),
            ("ALL", "conditions_f1", 0.88),
            ("ALL", "meds_f1", 0.90),
            ("ALL", "patient_acc", 0.78),
        ],
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn generated_development_split_meets_its_bars() {
    let rows = score("gen-dev").await;
    check(
        &rows,
        &[
            ("ALL", "labs_f1", 0.55),
            ("ALL", "conditions_f1", 0.72),
            ("ALL", "meds_f1", 0.80),
            ("ALL", "patient_acc", 0.62),
        ],
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn generated_holdout_split_never_tuned_on_meets_its_bars() {
    let rows = score("gen-holdout").await;
    check(
        &rows,
        &[
            ("ALL", "labs_f1", 0.57),
            ("ALL", "conditions_f1", 0.72),
            ("ALL", "meds_f1", 0.72),
            ("ALL", "patient_acc", 0.40),
        ],
    );
}
