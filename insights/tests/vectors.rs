//! Runs the test vectors beside every measure definition (`measures/<id>.vectors.json`): small
//! patients built from the measure's specification, each with the status it must get.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

use chrono::NaiveDate;
use p360_insights::engine::{MeasureResult, Status, evaluate};
use p360_insights::measure::{self, DEFINITIONS};
use p360_insights::record::{Item, ItemKind, PatientRecord, Sex};
use p360_model::{CodeSystem, Coding};
use serde::Deserialize;
use std::path::{Path, PathBuf};

const MIN_VECTORS: usize = 8;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    measure: String,
    vectors: Vec<Vector>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Vector {
    name: String,
    as_of: NaiveDate,
    #[serde(default)]
    birth_date: Option<NaiveDate>,
    #[serde(default)]
    sex: Sex,
    #[serde(default)]
    items: Vec<VItem>,
    expect: Expect,
}

/// An item in short form: `code` is `system:code` with the model's system names.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VItem {
    id: String,
    kind: ItemKind,
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    codes: Vec<String>,
    date: NaiveDate,
    #[serde(default)]
    end: Option<NaiveDate>,
    #[serde(default)]
    value: Option<f64>,
    #[serde(default)]
    unit: Option<String>,
    #[serde(default = "yes")]
    active: bool,
    #[serde(default)]
    class: Option<String>,
    #[serde(default = "yes")]
    confirmed: bool,
    #[serde(default)]
    sources: Option<Vec<String>>,
}

fn yes() -> bool {
    true
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Expect {
    status: Status,
    /// Each must be a substring of some entry of `missing`.
    #[serde(default)]
    missing: Vec<String>,
    /// None of these may appear in `missing` (values of unconfirmed facts).
    #[serde(default)]
    missing_excludes: Vec<String>,
    /// A substring of the exclusion reason.
    #[serde(default)]
    exclusion: Option<String>,
    /// Fact ids that must be in the evidence.
    #[serde(default)]
    evidence: Vec<String>,
}

fn coding(raw: &str) -> Result<Coding, String> {
    let (system, code) = raw
        .split_once(':')
        .ok_or_else(|| format!("code {raw:?} is not system:code"))?;
    let system: CodeSystem = serde_json::from_value(serde_json::json!(system))
        .map_err(|e| format!("code system {system:?}: {e}"))?;
    Ok(Coding::new(system, code, None))
}

fn record(v: &Vector) -> Result<PatientRecord, String> {
    let mut items = Vec::new();
    for i in &v.items {
        let mut codes = Vec::new();
        for c in i.code.iter().chain(&i.codes) {
            codes.push(coding(c)?);
        }
        let sources = i
            .sources
            .clone()
            .unwrap_or_else(|| vec![if i.confirmed { "payor_feed" } else { "ocr" }.to_owned()]);
        items.push(Item {
            fact_id: i.id.clone(),
            kind: i.kind,
            codes,
            display: None,
            date: i.date,
            end: i.end,
            value: i.value,
            unit: i.unit.clone(),
            active: i.active,
            encounter_class: i.class.clone(),
            sources,
            confirmed: i.confirmed,
        });
    }
    Ok(PatientRecord {
        birth_date: v.birth_date,
        sex: v.sex,
        items,
    })
}

/// What is wrong with a result, if anything.
fn check(v: &Vector, r: &MeasureResult) -> Vec<String> {
    let mut problems = Vec::new();
    let e = &v.expect;
    if r.status != e.status {
        problems.push(format!("status {:?}, expected {:?}", r.status, e.status));
    }
    for m in &e.missing {
        if !r.missing.iter().any(|x| x.contains(m.as_str())) {
            problems.push(format!("missing {:?} does not mention {m:?}", r.missing));
        }
    }
    for m in &e.missing_excludes {
        if r.missing.iter().any(|x| x.contains(m.as_str())) {
            problems.push(format!("missing {:?} mentions {m:?}", r.missing));
        }
    }
    if let Some(x) = &e.exclusion
        && !r
            .exclusion_reason
            .as_deref()
            .is_some_and(|r| r.contains(x.as_str()))
    {
        problems.push(format!(
            "exclusion reason {:?}, expected {x:?}",
            r.exclusion_reason
        ));
    }
    for id in &e.evidence {
        if !r.evidence.iter().any(|ev| &ev.fact_id == id) {
            problems.push(format!("evidence lacks {id}"));
        }
    }
    // Invariants of every result.
    match r.status {
        Status::Gap | Status::InsufficientData if r.missing.is_empty() => {
            problems.push("a gap or insufficient data must say what is missing".into());
        }
        Status::Excluded if r.exclusion_reason.is_none() => {
            problems.push("excluded without a reason".into());
        }
        Status::Met | Status::NotApplicable | Status::Excluded if !r.missing.is_empty() => {
            problems.push(format!("nothing is missing when {:?}", r.status));
        }
        _ => {}
    }
    if r.evidence.iter().any(|ev| ev.date > v.as_of) {
        problems.push("evidence dated after as_of".into());
    }
    problems
}

fn measures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("measures")
}

#[test]
fn every_measure_passes_its_vectors() {
    let errors: Vec<String> = measure::load_errors()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert!(
        errors.is_empty(),
        "definitions that do not load: {errors:#?}"
    );
    let mut failures = Vec::new();
    let mut total = 0;
    for m in measure::all() {
        let path = measures_dir().join(format!("{}.vectors.json", m.id));
        let Ok(text) = std::fs::read_to_string(&path) else {
            failures.push(format!("{}: no vectors file {}", m.id, path.display()));
            continue;
        };
        let file: File = match serde_json::from_str(&text) {
            Ok(f) => f,
            Err(e) => {
                failures.push(format!("{}: vectors do not parse: {e}", m.id));
                continue;
            }
        };
        if file.measure != m.id {
            failures.push(format!(
                "{}: vectors file names measure {}",
                m.id, file.measure
            ));
        }
        if file.vectors.len() < MIN_VECTORS {
            failures.push(format!(
                "{}: {} vectors, at least {MIN_VECTORS} needed",
                m.id,
                file.vectors.len()
            ));
        }
        let mut names = std::collections::BTreeSet::new();
        for v in &file.vectors {
            total += 1;
            if !names.insert(v.name.as_str()) {
                failures.push(format!("{}: vector name used twice: {}", m.id, v.name));
            }
            let rec = match record(v) {
                Ok(r) => r,
                Err(e) => {
                    failures.push(format!("{} / {}: {e}", m.id, v.name));
                    continue;
                }
            };
            let r = evaluate(m, &rec, v.as_of);
            let problems = check(v, &r);
            if !problems.is_empty() {
                failures.push(format!(
                    "{} / {}: {}\n    result: {}",
                    m.id,
                    v.name,
                    problems.join("; "),
                    serde_json::to_string(&r).unwrap_or_default()
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {total} vectors failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Adding a measure is adding its file: every definition file must be compiled in.
#[test]
fn every_definition_file_is_listed() {
    let mut on_disk = Vec::new();
    for entry in std::fs::read_dir(measures_dir()).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if let Some(id) = name.strip_suffix(".json")
            && !id.ends_with(".vectors")
        {
            on_disk.push(id.to_owned());
        }
    }
    on_disk.sort();
    let mut listed: Vec<String> = DEFINITIONS.iter().map(|(id, _)| (*id).to_owned()).collect();
    listed.sort();
    assert_eq!(on_disk, listed);
}

/// The harness itself must be able to fail: a wrong expectation is reported with its name.
#[test]
fn a_wrong_expectation_is_caught() {
    let m = measure::by_id("cms122").unwrap();
    let v: Vector = serde_json::from_value(serde_json::json!({
        "name": "deliberately wrong",
        "as_of": "2025-12-31",
        "birth_date": "1970-01-01",
        "items": [{"id": "dm", "kind": "condition", "code": "icd10_cm:E11.9", "date": "2020-01-01"}],
        "expect": {"status": "met"}
    }))
    .unwrap();
    let r = evaluate(m, &record(&v).unwrap(), v.as_of);
    assert_eq!(r.status, Status::Gap);
    assert!(!check(&v, &r).is_empty());
}
