//! Exported FHIR checked by an independent validator: PyPI `fhir.resources` (R4 4.0.1 models),
//! run through `scripts/fhir-validate.py` with the Python named by `P360_FHIR_PYTHON`
//! (`scripts/test.sh` makes that venv). Ignored in plain `cargo test` for want of the venv.
#![allow(clippy::unwrap_used)]

mod samples;

use p360_model::fhir::{Demographics, bundle, patient_resource, provenance_resources, to_resource};
use samples::*;
use std::process::Command;

#[test]
#[ignore = "needs the fhir.resources venv: run by scripts/test.sh"]
fn exported_resources_pass_an_independent_r4_validator() {
    let python = std::env::var("P360_FHIR_PYTHON")
        .expect("P360_FHIR_PYTHON must name a Python with fhir.resources==6.1.* installed");
    let mut resources = vec![patient_resource(
        &patient(),
        &Demographics {
            family: Some("Doe".into()),
            given: vec!["Jane".into()],
            birth_date: Some(day("1961-04-12")),
            member_id: Some("M-00482913".into()),
        },
    )];
    for f in facts() {
        resources.push(to_resource(&f));
        resources.extend(provenance_resources(&f));
    }
    let count = resources.len();
    let b = bundle(
        "searchset",
        resources.clone(),
        Some(count as u64),
        &[(
            "self",
            "https://p360.example/fhir/Patient/pat-0001/$everything".into(),
        )],
    );
    resources.push(b);

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("resources.json");
    std::fs::write(&file, serde_json::to_vec(&resources).unwrap()).unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/fhir-validate.py");
    let out = Command::new(python)
        .arg(script)
        .arg(&file)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "validator refused resources:\n{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains(&format!("{} of {} resources valid", count + 1, count + 1)),
        "{text}"
    );
}
