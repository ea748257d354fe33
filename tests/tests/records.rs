//! The record end to end: a manual observation posted to the API goes through the queue and
//! the graph writer into the patient's graph and comes back in `Patient/$everything` and the
//! Observation search; posting it twice leaves one fact; bad input names the field.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

mod common;

use common::Sandbox;
use p360_identity::Role;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::Duration;

async fn everything(sb: &Sandbox, patient: &str, token: &str, query: &str) -> Value {
    let r = sb
        .http
        .get(sb.url(&format!("/fhir/Patient/{patient}/$everything{query}")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

fn resources_of<'a>(bundle: &'a Value, kind: &str) -> Vec<&'a Value> {
    bundle["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["resource"])
        .filter(|r| r["resourceType"] == kind)
        .collect()
}

async fn wait_for_observations(sb: &Sandbox, patient: &str, token: &str, n: usize) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let b = everything(sb, patient, token, "?_type=Observation").await;
        if resources_of(&b, "Observation").len() >= n {
            return b;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "observation not in the graph: {b}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn manual_observation_reaches_the_record_once() {
    let sb = Sandbox::start().await;
    let jane = sb.user("jane", Role::Patient);
    let pid = jane.patient_id.clone().unwrap();
    let token = sb.login("jane").await;
    let url = sb.url(&format!("/v1/patients/{pid}/observations"));
    let weight = json!({"code": "29463-7", "value": 81.5, "unit": "kg", "date": "2026-03-01", "category": "vital-signs"});

    for _ in 0..2 {
        let r = sb
            .http
            .post(&url)
            .bearer_auth(&token)
            .json(&weight)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::ACCEPTED);
    }
    let bundle = wait_for_observations(&sb, pid.as_str(), &token, 1).await;
    // Give a duplicate a chance to show up before counting.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let bundle2 = everything(&sb, pid.as_str(), &token, "").await;
    let obs = resources_of(&bundle2, "Observation");
    assert_eq!(obs.len(), 1, "posting twice leaves one fact");
    assert_eq!(obs[0]["valueQuantity"]["value"], 81.5);
    assert_eq!(obs[0]["valueQuantity"]["code"], "kg");
    assert_eq!(obs[0]["code"]["coding"][0]["code"], "29463-7");
    assert_eq!(resources_of(&bundle2, "Patient").len(), 1);
    assert_eq!(
        resources_of(&bundle2, "Provenance").len(),
        1,
        "one source: the patient"
    );
    assert_eq!(bundle["type"], "searchset");

    // A FHIR Observation for the same patient is accepted too.
    let fhir = json!({
        "resourceType": "Observation", "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "4548-4"}]},
        "subject": {"reference": format!("Patient/{pid}")},
        "effectiveDateTime": "2026-03-17",
        "valueQuantity": {"value": 7.2, "unit": "%", "system": "http://unitsofmeasure.org", "code": "%"}
    });
    let r = sb
        .http
        .post(&url)
        .bearer_auth(&token)
        .json(&fhir)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    wait_for_observations(&sb, pid.as_str(), &token, 2).await;

    // Search by code, filters and paging.
    let search: Value = sb
        .http
        .get(sb.url(&format!(
            "/fhir/Observation?patient={pid}&code=http://loinc.org|4548-4"
        )))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(search["total"], 1);
    let b = everything(
        &sb,
        pid.as_str(),
        &token,
        "?_type=Observation&start=2026-03-10",
    )
    .await;
    assert_eq!(b["total"], 1, "start filters by the fact's date");
    let b = everything(&sb, pid.as_str(), &token, "?_type=Observation&_count=1").await;
    assert_eq!(b["total"], 2);
    assert_eq!(resources_of(&b, "Observation").len(), 1);
    assert!(
        b["link"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["relation"] == "next")
    );

    // Nobody else reads it.
    sb.user("john", Role::Patient);
    let john = sb.login("john").await;
    let r = sb
        .http
        .get(sb.url(&format!("/fhir/Patient/{pid}/$everything")))
        .bearer_auth(&john)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = sb
        .http
        .get(sb.url(&format!("/fhir/Observation?patient={pid}")))
        .bearer_auth(&john)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    sb.stop().await;
}

#[tokio::test]
async fn bad_observations_get_a_4xx_naming_the_field_and_write_nothing() {
    let sb = Sandbox::start().await;
    let jane = sb.user("jane", Role::Patient);
    let pid = jane.patient_id.clone().unwrap();
    let token = sb.login("jane").await;
    let url = sb.url(&format!("/v1/patients/{pid}/observations"));
    let cases = [
        (
            json!({"code": "29463-7", "value": 81.5, "unit": "kilos", "date": "2026-03-01"}),
            "Observation.valueQuantity.code: 'kilos' is not a UCUM unit",
        ),
        (
            json!({"code": "29463-7", "value": 81.5, "unit": "kg", "date": "2099-03-01"}),
            "Observation.effectiveDateTime: is in the future",
        ),
        (
            json!({"code": "weight", "value": 81.5, "unit": "kg", "date": "2026-03-01"}),
            "Observation.code.coding[0].code: not a valid LOINC code",
        ),
        (
            json!({"resourceType": "Observation", "code": {"coding": [{"system": "http://example.org/x", "code": "1"}]}, "effectiveDateTime": "2026-03-01"}),
            "Observation.code.coding[0].system: unknown code system",
        ),
        (
            json!({"code": "29463-7", "value": "heavy", "unit": "kg", "date": "2026-03-01"}),
            "the JSON body must be",
        ),
        (
            json!({"resourceType": "Condition"}),
            "resourceType: expected Observation",
        ),
    ];
    for (body, want) in cases {
        let r = sb
            .http
            .post(&url)
            .bearer_auth(&token)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_client_error(), "{body}: {}", r.status());
        let msg = r.json::<Value>().await.unwrap()["message"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(msg.contains(want), "{body}: {msg}");
    }
    let r = sb
        .http
        .post(&url)
        .bearer_auth(&token)
        .body("{not json")
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let b = everything(&sb, pid.as_str(), &token, "?_type=Observation").await;
    assert_eq!(b["total"], 0, "nothing was written");
    sb.stop().await;
}
