//! Manual entries are checked for plausibility: a value no living human can have, a unit that
//! does not measure what the code measures, or a LOINC code with a wrong check digit is
//! refused with a 422 naming the field, in both the simple form and a FHIR Observation, and
//! the message never echoes what was sent.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

mod common;

use common::Sandbox;
use p360_identity::Role;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::Duration;

async fn post(sb: &Sandbox, url: &str, token: &str, body: &Value) -> (StatusCode, Value) {
    let r = sb
        .http
        .post(url)
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .unwrap();
    let status = r.status();
    (status, r.json().await.unwrap())
}

fn fhir_weight(patient: &str, value: Value, unit: &str) -> Value {
    json!({
        "resourceType": "Observation",
        "status": "final",
        "category": [{ "coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/observation-category",
            "code": "vital-signs",
        }]}],
        "code": { "coding": [{ "system": "http://loinc.org", "code": "29463-7" }] },
        "subject": { "reference": format!("Patient/{patient}") },
        "effectiveDateTime": "2026-03-01",
        "valueQuantity": { "value": value, "unit": unit, "system": "http://unitsofmeasure.org", "code": unit },
    })
}

fn simple(code: &str, value: Value, unit: &str) -> Value {
    json!({"code": code, "value": value, "unit": unit, "date": "2026-03-01", "category": "vital-signs"})
}

#[tokio::test]
async fn implausible_manual_entries_are_refused_naming_the_field() {
    let sb = Sandbox::start().await;
    let jane = sb.user("jane", Role::Patient);
    let pid = jane.patient_id.clone().unwrap();
    let token = sb.login("jane").await;
    let url = sb.url(&format!("/v1/patients/{pid}/observations"));
    let cases = [
        (
            simple("29463-7", json!(1e308), "kg"),
            "Observation.valueQuantity.value: not a plausible body weight (expected 0.2–700 kg)",
        ),
        (
            simple("29463-7", json!(815), "kg"),
            "Observation.valueQuantity.value: not a plausible body weight",
        ),
        (
            simple("8310-5", json!(98.6), "Cel"),
            "Observation.valueQuantity.value: not a plausible body temperature",
        ),
        (
            simple("29463-7", json!(81.5), "mmol/L"),
            "Observation.valueQuantity.code: not a unit of body weight",
        ),
        (
            simple("99999-9", json!(81.5), "kg"),
            "Observation.code.coding[0].code: not a valid LOINC code (check digit)",
        ),
        (
            simple("29463-6", json!(81.5), "kg"),
            "Observation.code.coding[0].code: not a valid LOINC code (check digit)",
        ),
        // A code not in the limits table: only the broad bound.
        (
            simple("2951-2", json!(-1.5e300), "mmol/L"),
            "Observation.valueQuantity.value: not a plausible value",
        ),
        (
            fhir_weight(pid.as_str(), json!(1e308), "kg"),
            "Observation.valueQuantity.value: not a plausible body weight (expected 0.2–700 kg)",
        ),
        (
            fhir_weight(pid.as_str(), json!(4000), "[lb_av]"),
            "Observation.valueQuantity.value: not a plausible body weight",
        ),
    ];
    for (body, want) in &cases {
        let (status, err) = post(&sb, &url, &token, body).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {err}");
        assert_eq!(err["error"], "unprocessable", "{body}");
        let msg = err["message"].as_str().unwrap();
        assert!(msg.contains(want), "{body}: {msg}");
        for echoed in [
            "1e308", "1e+308", "815", "98.6", "99999", "29463-6", "mmol", "4000",
        ] {
            assert!(!msg.contains(echoed), "{body}: {msg} echoes {echoed}");
        }
    }

    // A FHIR Observation whose code has a wrong check digit: refused where it is read.
    let mut bad_code = fhir_weight(pid.as_str(), json!(81.5), "kg");
    bad_code["code"]["coding"][0]["code"] = json!("99999-9");
    let (status, err) = post(&sb, &url, &token, &bad_code).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{err}");
    let msg = err["message"].as_str().unwrap();
    assert!(
        msg.starts_with("Observation.code.coding[0].code: not a valid LOINC code"),
        "{msg}"
    );
    assert!(!msg.contains("99999"), "{msg}");

    // Beyond f64 the JSON number cannot be read at all: a 4xx, never a 500 or a 202.
    let r = sb
        .http
        .post(&url)
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body(r#"{"code": "29463-7", "value": 1e400, "unit": "kg", "date": "2026-03-01"}"#)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_client_error(), "{}", r.status());

    // Nothing refused reached the record.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let b = sb
        .get_json(
            &format!("/fhir/Patient/{pid}/$everything?_type=Observation"),
            &token,
        )
        .await;
    assert_eq!(b["total"], 0, "nothing was written: {b}");
    sb.stop().await;
}

#[tokio::test]
async fn plausible_entries_are_accepted_in_any_commensurable_unit() {
    let sb = Sandbox::start().await;
    let jane = sb.user("jane", Role::Patient);
    let pid = jane.patient_id.clone().unwrap();
    let token = sb.login("jane").await;
    let url = sb.url(&format!("/v1/patients/{pid}/observations"));
    for body in [
        json!({"code": "29463-7", "value": 179.7, "unit": "[lb_av]", "date": "2026-03-01", "category": "vital-signs"}),
        json!({"code": "8310-5", "value": 98.6, "unit": "[degF]", "date": "2026-03-01", "category": "vital-signs"}),
        json!({"code": "2345-7", "value": 412, "unit": "mg/dL", "date": "2026-03-01"}),
        json!({"code": "4548-4", "value": 7.2, "unit": "%", "date": "2026-03-01"}),
        // Not in the limits table: any finite value within the broad bound.
        json!({"code": "2951-2", "value": 139, "unit": "mmol/L", "date": "2026-03-01"}),
        fhir_weight(pid.as_str(), json!(81.5), "kg"),
    ] {
        let (status, resp) = post(&sb, &url, &token, &body).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}: {resp}");
        assert_eq!(resp["status"], "accepted");
    }
    sb.stop().await;
}
