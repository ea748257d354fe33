//! The README says only what runs: its capability table is held against the code where a test
//! can do so. Every crate the table points at exists; every `p360` command it names runs; the
//! "full ICD-10-CM code set" is the whole code set; nothing claims an API Lambda
//! (`lambda_http`) that is not a dependency.
#![allow(clippy::unwrap_used)]

use std::path::Path;

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

fn read(rel: &str) -> String {
    std::fs::read_to_string(Path::new(ROOT).join(rel)).unwrap()
}

/// The rows of the "What runs today" table: (capability, where).
fn capability_rows() -> Vec<(String, String)> {
    let readme = read("README.md");
    let table = readme
        .split("## What runs today")
        .nth(1)
        .expect("a 'What runs today' section")
        .split("\n\n")
        .find(|block| block.trim_start().starts_with('|'))
        .expect("its table")
        .to_owned();
    table
        .lines()
        .skip(2)
        .filter_map(|l| {
            let cells: Vec<&str> = l.trim().trim_matches('|').rsplitn(2, '|').collect();
            (cells.len() == 2).then(|| (cells[1].trim().to_owned(), cells[0].trim().to_owned()))
        })
        .collect()
}

#[test]
fn every_place_the_table_names_exists() {
    let rows = capability_rows();
    assert!(rows.len() >= 10, "{rows:?}");
    for (what, place) in &rows {
        let dirs: Vec<&str> = place
            .split('`')
            .skip(1)
            .step_by(2)
            .filter(|p| p.ends_with('/'))
            .collect();
        assert!(!dirs.is_empty(), "no place named for: {what}");
        for d in dirs {
            assert!(
                Path::new(ROOT).join(d).is_dir(),
                "the README names {d} for «{what}», which does not exist"
            );
        }
    }
}

#[test]
fn every_command_the_table_names_runs() {
    let rows = capability_rows();
    let (cli, _) = rows
        .iter()
        .find(|(what, _)| what.starts_with("`p360 serve`"))
        .expect("the p360 row");
    // `p360 serve`, `worker`, `ledger verify/checkpoint`, `dlq list/replay`, …
    for named in cli.split('`').skip(1).step_by(2) {
        let named = named.trim_start_matches("p360 ");
        if named.starts_with('/') {
            continue; // an HTTP path (`/health`, `/metrics`)
        }
        let mut words = named.split(' ');
        let command = words.next().unwrap();
        let subs: Vec<&str> = words
            .next()
            .map(|s| s.split('/').collect())
            .unwrap_or_default();
        let mut runs = vec![vec![command]];
        runs.extend(subs.iter().map(|s| vec![command, *s]));
        for args in runs {
            let out = std::process::Command::new(env!("CARGO_BIN_EXE_p360"))
                .args(&args)
                .arg("--help")
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "the README names `p360 {}`, which the binary does not know: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

#[test]
fn the_full_icd10cm_code_set_is_the_full_code_set() {
    let rows = capability_rows();
    let claims = rows
        .iter()
        .any(|(what, _)| what.contains("full ICD-10-CM code set"));
    assert!(
        claims,
        "the claim this test checks is gone: remove the test with it"
    );
    let t = p360_extract::terminology::icd10cm::table();
    let billable = t.iter().filter(|c| c.2).count();
    assert!(billable >= 70_000, "{billable} billable codes");
    assert_eq!(t.get("S72.001A").map(|c| c.2), Some(true));
    assert_eq!(t.get("S72.001").map(|c| c.2), Some(false));
}

#[test]
fn no_api_lambda_is_claimed_until_there_is_one() {
    let lock = read("Cargo.lock");
    if lock.contains("name = \"lambda_http\"") {
        return;
    }
    for doc in ["README.md", "ARCHITECTURE.md"] {
        let text = read(doc);
        for line in text.lines().filter(|l| l.contains("lambda_http")) {
            assert!(
                line.contains("not built yet") || line.contains("not yet"),
                "{doc} claims lambda_http, which is not a dependency: {line}"
            );
        }
    }
}
