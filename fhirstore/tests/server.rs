//! The REST client against an independent FHIR R4 server (started by `scripts/fhir-server.sh`,
//! named by `P360_TEST_FHIR_BASE`). A test member and a second, unrelated patient are loaded
//! with PUTs; the member is pulled by identifier with `_count=3`, so `$everything` takes
//! several pages, and the folder is read back by p360 enrich's FHIR NDJSON parser. Ignored in
//! plain `cargo test` for want of the server; `scripts/test.sh` runs it.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

use p360_enrich::feeds::{FeedKind, Item, Subject};
use p360_fhirstore::{FhirClient, Limits, NdjsonDir};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

const MEMBER_SYSTEM: &str = "https://payor.example/fhir/member-id";

fn base() -> String {
    std::env::var("P360_TEST_FHIR_BASE").expect(
        "P360_TEST_FHIR_BASE must name a FHIR R4 server (scripts/fhir-server.sh start prints it)",
    )
}

fn coded(system: &str, code: &str) -> Value {
    json!({"coding": [{"system": system, "code": code}]})
}

/// A member's record: a Patient and eleven resources that refer to it.
fn record(run: &str, patient: &str, member: &str) -> Vec<Value> {
    let subject = json!({"reference": format!("Patient/{patient}")});
    let id = |s: &str| format!("{run}-{patient}-{s}");
    let mut out = vec![json!({
        "resourceType": "Patient", "id": patient,
        "identifier": [{"system": MEMBER_SYSTEM, "value": member}],
        "name": [{"use": "official", "family": "Okafor", "given": ["Ada", "Ngozi"]}],
        "gender": "female", "birthDate": "1961-07-14",
        "address": [{"line": ["12 Elm St"], "city": "Springfield", "postalCode": "62701"}]
    })];
    for (n, icd, day) in [
        ("c1", "E11.9", "2019-03-02"),
        ("c2", "I10", "2020-01-15"),
        ("c3", "J45.909", "2021-06-30"),
    ] {
        out.push(json!({
            "resourceType": "Condition", "id": id(n), "subject": subject,
            "clinicalStatus": coded("http://terminology.hl7.org/CodeSystem/condition-clinical", "active"),
            "code": coded("http://hl7.org/fhir/sid/icd-10-cm", icd), "onsetDateTime": day
        }));
    }
    for (n, loinc, value, unit) in [("o1", "4548-4", 7.1, "%"), ("o2", "2345-7", 131.0, "mg/dL")] {
        out.push(json!({
            "resourceType": "Observation", "id": id(n), "status": "final", "subject": subject,
            "code": coded("http://loinc.org", loinc), "effectiveDateTime": "2023-02-01",
            "valueQuantity": {"value": value, "unit": unit, "system": "http://unitsofmeasure.org", "code": unit}
        }));
    }
    out.push(json!({
        "resourceType": "MedicationRequest", "id": id("m1"), "status": "active", "intent": "order",
        "subject": subject, "authoredOn": "2022-05-05",
        "medicationCodeableConcept": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "6809"}], "text": "metformin"}
    }));
    out.push(json!({
        "resourceType": "Encounter", "id": id("e1"), "status": "finished", "subject": subject,
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
        "period": {"start": "2023-02-01T09:00:00Z", "end": "2023-02-01T09:30:00Z"}
    }));
    out.push(json!({
        "resourceType": "Procedure", "id": id("p1"), "status": "completed", "subject": subject,
        "code": coded("http://www.ama-assn.org/go/cpt", "83036"), "performedDateTime": "2023-02-01"
    }));
    out.push(json!({
        "resourceType": "Immunization", "id": id("i1"), "status": "completed", "patient": subject,
        "vaccineCode": coded("http://hl7.org/fhir/sid/cvx", "150"), "occurrenceDateTime": "2022-10-10"
    }));
    out.push(json!({
        "resourceType": "AllergyIntolerance", "id": id("a1"), "patient": subject,
        "clinicalStatus": coded("http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical", "active"),
        "code": coded("http://www.nlm.nih.gov/research/umls/rxnorm", "7980"), "recordedDate": "2018-01-01"
    }));
    out.push(json!({
        "resourceType": "Coverage", "id": id("cov1"), "status": "active", "beneficiary": subject,
        "payor": [{"display": "Payor"}]
    }));
    out
}

/// Creates (or replaces) each resource with `PUT [base]/<type>/<id>`, as a plain HTTP client.
async fn load(base: &str, resources: &[Value]) {
    let http = reqwest::Client::new();
    for r in resources {
        let url = format!(
            "{}/{}/{}",
            base.trim_end_matches('/'),
            r["resourceType"].as_str().unwrap(),
            r["id"].as_str().unwrap()
        );
        let resp = http
            .put(&url)
            .header("content-type", "application/fhir+json")
            .header("accept", "application/fhir+json")
            .body(r.to_string())
            .send()
            .await
            .unwrap();
        let status = resp.status();
        assert!(
            status.is_success(),
            "PUT {url}: {status}: {}",
            resp.text().await.unwrap_or_default()
        );
    }
}

/// `type` → ids, as loaded or as found in a folder of NDJSON files.
fn by_type<'a>(
    resources: impl IntoIterator<Item = &'a Value>,
) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for r in resources {
        out.entry(r["resourceType"].as_str().unwrap().to_string())
            .or_default()
            .insert(r["id"].as_str().unwrap().to_string());
    }
    out
}

fn read_folder(dir: &Path) -> (Vec<String>, Vec<Value>) {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    let mut resources = Vec::new();
    for name in &names {
        let kind = name.strip_suffix(".ndjson").unwrap();
        for line in std::fs::read_to_string(dir.join(name)).unwrap().lines() {
            let r: Value = serde_json::from_str(line).unwrap();
            assert_eq!(r["resourceType"], kind, "{name} holds only its type");
            resources.push(r);
        }
    }
    (names, resources)
}

#[tokio::test]
#[ignore = "needs a FHIR R4 server: run by scripts/test.sh (P360_TEST_FHIR_BASE)"]
async fn a_member_is_pulled_from_a_fhir_server_across_pages() {
    let base = base();
    let run = format!(
        "r{}x{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis()
            % 1_000_000_000
    );
    let patient = format!("{run}-pat");
    let member = format!("M-{run}");
    let ours = record(&run, &patient, &member);
    let theirs = record(&run, &format!("{run}-other"), &format!("M-{run}-other"));
    load(&base, &ours).await;
    load(&base, &theirs).await;

    let client = FhirClient::new(&base).unwrap().with_limits(Limits {
        page_size: Some(3),
        ..Limits::default()
    });
    let tmp = tempfile::tempdir().unwrap();
    let pulled = client
        .pull_member(MEMBER_SYSTEM, &member, tmp.path())
        .await
        .unwrap();
    assert_eq!(pulled.patient_id, patient);
    assert!(
        pulled.pages >= 2,
        "{} pages for {} resources at _count=3",
        pulled.pages,
        ours.len()
    );
    assert_eq!(
        pulled.written.total(),
        ours.len() as u64,
        "{:?}",
        pulled.written
    );

    // Exactly the member's resources, one file per type, each line a whole resource.
    let (names, got) = read_folder(tmp.path());
    assert_eq!(by_type(&got), by_type(&ours));
    let want_names: Vec<String> = by_type(&ours)
        .keys()
        .map(|k| format!("{k}.ndjson"))
        .collect();
    assert_eq!(names, want_names);
    let condition = got
        .iter()
        .find(|r| r["id"] == format!("{run}-{patient}-c2"))
        .unwrap();
    assert_eq!(condition["code"]["coding"][0]["code"], "I10");

    // p360 enrich reads the folder as a FHIR NDJSON feed.
    let mut report = p360_enrich::report::Report::default();
    let mut items = Vec::new();
    for name in &names {
        let path = tmp.path().join(name);
        assert_eq!(FeedKind::detect(&path).unwrap(), Some(FeedKind::FhirNdjson));
        let mut file_report = report.for_file(name);
        p360_enrich::feeds::read(
            FeedKind::FhirNdjson,
            std::fs::File::open(&path).unwrap(),
            &mut file_report,
            &mut |item| items.push(item),
        );
    }
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    let person = items
        .iter()
        .find_map(|i| match i {
            Item::Person(p) => Some(p),
            _ => None,
        })
        .unwrap();
    assert_eq!(person.key, patient);
    assert_eq!(person.member_id.as_deref(), Some(member.as_str()));
    let statements: Vec<_> = items
        .iter()
        .filter_map(|i| match i {
            Item::Statement(s) => Some(s),
            _ => None,
        })
        .collect();
    // Three conditions, two observations, a medication, an encounter, a procedure, an
    // immunization and an allergy; the Coverage states nothing.
    assert_eq!(statements.len(), 10);
    assert!(
        statements
            .iter()
            .all(|s| s.subject == Subject::Patient(patient.clone()))
    );

    // A plain type search pages too.
    let tmp = tempfile::tempdir().unwrap();
    let mut out = NdjsonDir::create(tmp.path()).await.unwrap();
    let subject = format!("Patient/{patient}");
    let pages = client
        .search(
            "Condition",
            &[("subject", &subject), ("_count", "2")],
            &mut out,
        )
        .await
        .unwrap();
    let written = out.finish().await.unwrap();
    assert!(pages >= 2, "{pages}");
    assert_eq!(written.counts["Condition"], 3);
}
