//! Grants as FHIR R4 Consent resources, checked by the independent validator the model's export
//! uses (PyPI `fhir.resources`, via `scripts/fhir-validate.py` and `P360_FHIR_PYTHON`).
#![allow(clippy::unwrap_used)]

use chrono::{Duration, Utc};
use p360_consent::{Category, Grant, Purpose, Scope};
use p360_events::{PatientId, UserId};

#[test]
#[ignore = "needs the fhir.resources venv: run by scripts/test.sh"]
fn grants_are_valid_r4_consents() {
    let python = std::env::var("P360_FHIR_PYTHON")
        .expect("P360_FHIR_PYTHON must name a Python with fhir.resources==6.1.* installed");
    let now = Utc::now();
    let base = Grant {
        id: "grant-1".into(),
        patient: PatientId::parse("pat-1").unwrap(),
        grantee: UserId::parse("usr-dr").unwrap(),
        scope: Scope::read_all(),
        purpose: Purpose::Treatment,
        start: now,
        end: now + Duration::days(90),
        created_at: now,
        revoked_at: None,
        break_glass: false,
        reason: None,
        version: 1,
    };
    let narrow = Grant {
        id: "grant-2".into(),
        scope: Scope {
            categories: Some([Category::Labs, Category::Episodes].into()),
            sensitive: [Category::HivSti].into(),
            write_episodes: true,
        },
        purpose: Purpose::CareCoordination,
        revoked_at: Some(now),
        ..base.clone()
    };
    let resources: Vec<serde_json::Value> = [base, narrow].iter().map(|g| g.to_fhir(now)).collect();
    assert_eq!(resources[1]["status"], "inactive", "revoked");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("consents.json");
    std::fs::write(&file, serde_json::to_vec(&resources).unwrap()).unwrap();
    let out = std::process::Command::new(python)
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../scripts/fhir-validate.py"
        ))
        .arg(&file)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "validator refused consents:\n{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("2 of 2 resources valid"), "{text}");
}
