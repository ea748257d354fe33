//! Device readings through `p360 serve`: samples posted by the patient are merged by the
//! devices stage, their daily summaries reach `$everything` with the device as Provenance and
//! the raw samples the lake's `device_readings`; the same samples again change nothing. An
//! Apple Health export goes the same way, and a truncated one keeps what was read.
#![allow(clippy::unwrap_used)]

mod common;

use common::Sandbox;
use p360_events::PatientId;
use p360_identity::Role;
use p360_identity::users::NewUser;
use serde_json::{Value, json};
use std::time::Duration;

const PATIENT: &str = "pat-devices-0001";

async fn patient(sb: &Sandbox, username: &str, id: &str) -> String {
    sb.directory
        .add(NewUser {
            username,
            password: "correct horse battery",
            role: Role::Patient,
            patient_id: Some(PatientId::parse(id).unwrap()),
        })
        .unwrap();
    sb.login(username).await
}

/// The record's Observations and Provenance resources.
async fn record(sb: &Sandbox, token: &str) -> (Vec<Value>, Vec<Value>) {
    let b = sb
        .get_json(
            &format!("/fhir/Patient/{PATIENT}/$everything?_count=1000"),
            token,
        )
        .await;
    let all: Vec<Value> = b["entry"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|e| e["resource"].clone())
        .collect();
    let of = |t: &str| {
        all.iter()
            .filter(|r| r["resourceType"] == t)
            .cloned()
            .collect::<Vec<_>>()
    };
    (of("Observation"), of("Provenance"))
}

/// Waits until the record holds observations that `done` accepts.
async fn wait_record(
    sb: &Sandbox,
    token: &str,
    done: impl Fn(&[Value]) -> bool,
) -> (Vec<Value>, Vec<Value>) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (obs, prov) = record(sb, token).await;
        if done(&obs) {
            return (obs, prov);
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the summaries did not arrive: {obs:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The observation of LOINC `code` on `day`.
fn find<'a>(obs: &'a [Value], code: &str, day: &str) -> Option<&'a Value> {
    obs.iter()
        .find(|o| o["code"]["coding"][0]["code"] == code && o["effectiveDateTime"] == day)
}

fn value(o: &Value) -> f64 {
    o["valueQuantity"]["value"].as_f64().unwrap()
}

fn readings() -> Value {
    let hr = |start: &str, v: f64| json!({"metric": "heart_rate", "start": start, "value": v, "unit": "/min"});
    json!({
        "device": {"id": "watch-0001", "name": "Test Watch", "model": "TW-1"},
        "samples": [
            hr("2026-03-01T08:00:00-05:00", 60.0),
            // 01:00 UTC on the 2nd, but the evening of the 1st where it was measured.
            hr("2026-03-01T20:00:00-05:00", 80.0),
            hr("2026-03-02T08:00:00-05:00", 100.0),
            {"metric": "steps", "start": "2026-03-01T09:00:00-05:00", "end": "2026-03-01T10:00:00-05:00", "value": 1200, "unit": "{steps}"},
            {"metric": "steps", "start": "2026-03-01T17:00:00-05:00", "end": "2026-03-01T18:00:00-05:00", "value": 800, "unit": "{steps}"},
            {"metric": "weight", "start": "2026-03-01T07:00:00-05:00", "value": 179.7, "unit": "[lb_av]"},
            // No heart beats like this: refused by index and field.
            hr("2026-03-01T09:00:00-05:00", 4321.0),
            // The first sample again, written in UTC: one sample.
            hr("2026-03-01T13:00:00Z", 60.0),
        ],
    })
}

async fn post(sb: &Sandbox, token: &str, path: &str, body: &Value) -> (u16, Value) {
    let r = sb
        .http
        .post(sb.url(path))
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

#[tokio::test]
async fn device_readings_reach_the_graph_and_the_lake_once() {
    let sb = Sandbox::start().await;
    let token = patient(&sb, "dana", PATIENT).await;
    let path = format!("/v1/patients/{PATIENT}/device-readings");

    let (status, body) = post(&sb, &token, &path, &readings()).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["accepted"], 6, "{body}");
    assert_eq!(body["duplicates"], 1, "{body}");
    assert_eq!(
        body["rejected"],
        json!([{"index": 6, "field": "value", "reason": "not a plausible heart rate (expected 5–600 /min)"}])
    );
    assert!(!body.to_string().contains("4321"));

    let (obs, prov) = wait_record(&sb, &token, |o| o.len() >= 4).await;
    assert_eq!(obs.len(), 4, "{obs:?}");
    let hr1 = find(&obs, "8867-4", "2026-03-01").expect("heart rate of the 1st");
    assert_eq!(
        value(hr1),
        70.0,
        "the evening sample counts on its local day"
    );
    assert_eq!(hr1["valueQuantity"]["code"], "/min");
    assert_eq!(value(find(&obs, "8867-4", "2026-03-02").unwrap()), 100.0);
    let steps = find(&obs, "41950-7", "2026-03-01").expect("steps");
    assert_eq!(
        (value(steps), steps["valueQuantity"]["code"].clone()),
        (2000.0, json!("/d"))
    );
    assert_eq!(steps["category"][0]["coding"][0]["code"], "activity");
    assert_eq!(value(find(&obs, "29463-7", "2026-03-01").unwrap()), 81.51);
    for o in &obs {
        let target = format!("Observation/{}", o["id"].as_str().unwrap());
        let sources: Vec<&Value> = prov
            .iter()
            .filter(|p| p["target"][0]["reference"] == target.as_str())
            .collect();
        assert_eq!(sources.len(), 1, "{target}");
        assert_eq!(
            sources[0]["agent"][0]["who"]["display"],
            "device:watch-0001"
        );
    }

    let rows = common::wait_for_lake_rows(&sb, "device_readings", 6).await;
    assert_eq!(rows.len(), 6, "{rows:?}");
    let weight = rows.iter().find(|r| r["metric"] == "weight").unwrap();
    assert!((weight["value"].as_f64().unwrap() - 81.51).abs() < 0.01);
    assert_eq!(weight["unit"], "kg");
    for r in &rows {
        let text = r.to_string();
        assert!(
            !text.contains(PATIENT) && !text.contains("watch-0001"),
            "{text}"
        );
        assert_eq!(r["patient_key"], rows[0]["patient_key"]);
        assert_eq!(r["device_key"], rows[0]["device_key"]);
    }
    common::wait_for_lake_rows(&sb, "observations", 4).await;

    // The same samples again: all duplicates, nothing published, nothing changes.
    let (status, body) = post(&sb, &token, &path, &readings()).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(
        (body["accepted"].clone(), body["duplicates"].clone()),
        (json!(0), json!(7))
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(common::lake_rows(&sb, "device_readings").len(), 6);
    let (again, _) = record(&sb, &token).await;
    assert_eq!(again, obs);

    // Someone else's record: refused before anything is read.
    let other = patient(&sb, "eve", "pat-devices-0002").await;
    let (status, body) = post(&sb, &other, &path, &readings()).await;
    assert_eq!(status, 403, "{body}");
    sb.stop().await;
}

/// A generated export: two days of hourly heart rate from a watch, steps from a phone, a blood
/// pressure correlation, sleep, a type p360 does not keep and one refused record.
fn export() -> String {
    let rec = |t: &str, src: &str, unit: &str, start: &str, end: &str, v: &str| {
        format!(
            "  <Record type=\"{t}\" sourceName=\"{src}\" unit=\"{unit}\" startDate=\"{start}\" endDate=\"{end}\" value=\"{v}\"/>\n"
        )
    };
    let mut x = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!DOCTYPE HealthData [\n<!ELEMENT HealthData ANY>\n]>\n<HealthData locale=\"en_US\">\n",
    );
    for day in ["01", "02"] {
        for h in 0..24 {
            let at = format!("2026-03-{day} {h:02}:30:00 +0100");
            let v = if day == "01" { 60 + h % 2 * 10 } else { 80 };
            x += &rec(
                "HKQuantityTypeIdentifierHeartRate",
                "Test Watch",
                "count/min",
                &at,
                &at,
                &v.to_string(),
            );
        }
    }
    x += &rec(
        "HKQuantityTypeIdentifierStepCount",
        "Test Phone",
        "count",
        "2026-03-01 10:00:00 +0100",
        "2026-03-01 10:30:00 +0100",
        "3000",
    );
    x += " <Correlation type=\"HKCorrelationTypeIdentifierBloodPressure\" sourceName=\"Test Cuff\" startDate=\"2026-03-01 07:10:00 +0100\" endDate=\"2026-03-01 07:10:00 +0100\">\n";
    x += &rec(
        "HKQuantityTypeIdentifierBloodPressureSystolic",
        "Test Cuff",
        "mmHg",
        "2026-03-01 07:10:00 +0100",
        "2026-03-01 07:10:00 +0100",
        "121",
    );
    x += &rec(
        "HKQuantityTypeIdentifierBloodPressureDiastolic",
        "Test Cuff",
        "mmHg",
        "2026-03-01 07:10:00 +0100",
        "2026-03-01 07:10:00 +0100",
        "79",
    );
    x += " </Correlation>\n";
    x += &rec(
        "HKCategoryTypeIdentifierSleepAnalysis",
        "Test Watch",
        "",
        "2026-03-01 23:30:00 +0100",
        "2026-03-02 06:30:00 +0100",
        "HKCategoryValueSleepAnalysisAsleepCore",
    );
    x += &rec(
        "HKQuantityTypeIdentifierActiveEnergyBurned",
        "Test Watch",
        "kcal",
        "2026-03-01 10:00:00 +0100",
        "2026-03-01 10:10:00 +0100",
        "12",
    );
    x += &rec(
        "HKQuantityTypeIdentifierBodyMass",
        "Test Scale",
        "kg",
        "2026-03-01 07:00:00 +0100",
        "2026-03-01 07:00:00 +0100",
        "0.001",
    );
    x += "</HealthData>\n";
    x
}

async fn upload(sb: &Sandbox, token: &str, xml: String) -> (u16, Value) {
    let r = sb
        .http
        .post(sb.url(&format!(
            "/v1/patients/{PATIENT}/device-readings/apple-health"
        )))
        .bearer_auth(token)
        .header("content-type", "application/xml")
        .body(xml)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

#[tokio::test]
async fn an_apple_health_export_is_imported_once() {
    let sb = Sandbox::start().await;
    let token = patient(&sb, "dana", PATIENT).await;
    let xml = export();

    let (status, body) = upload(&sb, &token, xml.clone()).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["records"], 54, "{body}");
    assert_eq!(body["accepted"], 52, "{body}");
    assert_eq!(body["unknown_types"], 1, "{body}");
    assert_eq!(body["rejected"], 1, "{body}");
    assert_eq!(body["errors"][0]["field"], "value", "{body}");
    assert_eq!(body["complete"], true);

    // Heart rate on two days, steps, systolic, diastolic, sleep.
    let (obs, prov) = wait_record(&sb, &token, |o| o.len() >= 6).await;
    assert_eq!(obs.len(), 6, "{obs:?}");
    assert_eq!(value(find(&obs, "8867-4", "2026-03-01").unwrap()), 65.0);
    assert_eq!(value(find(&obs, "8867-4", "2026-03-02").unwrap()), 80.0);
    assert_eq!(value(find(&obs, "8480-6", "2026-03-01").unwrap()), 121.0);
    assert_eq!(value(find(&obs, "93832-4", "2026-03-02").unwrap()), 420.0);
    let watch = p360_devices::apple::device_id("Test Watch");
    assert!(
        prov.iter()
            .any(|p| p["agent"][0]["who"]["display"] == format!("device:{watch}")),
        "{prov:?}"
    );
    assert!(!serde_json::to_string(&prov).unwrap().contains("Test Watch"));
    common::wait_for_lake_rows(&sb, "device_readings", 52).await;

    // The same export again: nothing new.
    let (status, body) = upload(&sb, &token, xml.clone()).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(
        (body["accepted"].clone(), body["duplicates"].clone()),
        (json!(0), json!(52))
    );

    // Cut inside a record: a clear error with the line, and what came before counted.
    let cut = xml.match_indices('\n').nth(9).unwrap().0 + 30;
    let (status, body) = upload(&sb, &token, xml[..cut].to_owned()).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["line"], 11, "{body}");
    assert_eq!(body["complete"], false);
    assert_eq!(body["duplicates"], 5, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("line 11"),
        "{body}"
    );

    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(common::lake_rows(&sb, "device_readings").len(), 52);
    sb.stop().await;
}

/// Needs the graph writer to replace the body of a fact whose id it already holds when a
/// device restates it (see the devices report): today it keeps the first value.
#[tokio::test]
async fn a_recomputed_day_replaces_its_summary() {
    let sb = Sandbox::start().await;
    let token = patient(&sb, "dana", PATIENT).await;
    let path = format!("/v1/patients/{PATIENT}/device-readings");
    let first = json!({"device": {"id": "watch-0001"}, "samples": [
        {"metric": "heart_rate", "start": "2026-03-01T08:00:00Z", "value": 60, "unit": "/min"},
    ]});
    assert_eq!(post(&sb, &token, &path, &first).await.0, 202);
    let (obs, _) = wait_record(&sb, &token, |o| o.len() == 1).await;
    let id = obs[0]["id"].clone();
    let later = json!({"device": {"id": "watch-0001"}, "samples": [
        {"metric": "heart_rate", "start": "2026-03-01T20:00:00Z", "value": 80, "unit": "/min"},
    ]});
    assert_eq!(post(&sb, &token, &path, &later).await.0, 202);
    let (obs, _) = wait_record(&sb, &token, |o| o.len() == 1 && value(&o[0]) == 70.0).await;
    assert_eq!(obs[0]["id"], id, "the day's summary keeps its id");
    sb.stop().await;
}
