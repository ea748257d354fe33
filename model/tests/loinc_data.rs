//! Every LOINC code in the repository's data (terminology tables, document truths, fixtures,
//! scripts) carries its right check digit: the importers refuse one that does not, so a wrong
//! code in the data would be a fact that can never be written.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

use p360_model::coding::{LoincError, check_loinc};
use std::path::{Path, PathBuf};

/// Data, not code: Rust sources hold deliberately wrong codes in tests. The samples module is
/// the one Rust fixture of facts.
const EXTENSIONS: [&str; 7] = ["tsv", "csv", "json", "snap", "py", "yaml", "md"];
const RUST_FIXTURES: [&str; 1] = ["model/tests/samples/mod.rs"];
/// Vendored unchanged from the shared fixtures: an f-string there (`2024-0{k + 1}-15`) reads
/// as a code to the tokenizer.
const VENDORED: [&str; 1] = ["testdata/feeds/score.py"];

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy();
        if name.starts_with('.') || name == "target" || name == "node_modules" {
            continue;
        }
        if path.is_dir() {
            files(&path, out);
        } else if path
            .extension()
            .is_some_and(|e| EXTENSIONS.iter().any(|x| e == *x))
        {
            out.push(path);
        }
    }
}

/// Tokens shaped like a LOINC code: digits, a hyphen, a digit, between delimiters (quotes,
/// tabs, spaces, commas…), so that dates, versions and regex classes are not taken for codes.
fn loinc_like(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || "._:/-[]\\".contains(c)))
        .filter(|t| check_loinc(t) != Err(LoincError::Shape))
        // `1-3 fields`, `0-7 days`: ranges in prose and truth files; codes in use have 3+ digits.
        .filter(|t| t.split('-').next().is_some_and(|b| b.len() >= 3))
}

#[test]
fn every_loinc_code_in_the_data_has_its_check_digit() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut paths = Vec::new();
    files(&root, &mut paths);
    paths.retain(|p| !VENDORED.iter().any(|v| p.ends_with(v)));
    paths.extend(RUST_FIXTURES.iter().map(|p| root.join(p)));
    let (mut checked, mut wrong) = (0, Vec::new());
    for path in &paths {
        let Ok(text) = std::fs::read_to_string(path) else {
            continue;
        };
        for code in loinc_like(&text) {
            checked += 1;
            if check_loinc(code).is_err() {
                wrong.push(format!("{}: {code}", path.display()));
            }
        }
    }
    let labs = root.join("extract/data/labs.tsv");
    assert!(paths.contains(&labs), "labs.tsv is scanned");
    // labs.tsv alone holds well over a hundred codes.
    assert!(checked > 100, "only {checked} codes found");
    assert!(wrong.is_empty(), "wrong check digits: {wrong:#?}");
}
