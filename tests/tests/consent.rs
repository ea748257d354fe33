//! Consent end to end: a provider sees nothing without a grant, exactly the granted categories
//! with one (sensitive ones only when the patient names them, totals counted after filtering),
//! nothing again on the very next request after a revocation; every access by someone other
//! than the patient is in the patient's ledger, whose chain verifies.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

mod common;

use common::{Sandbox, lake_rows, wait_for_lake_rows};
use p360_identity::Role;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::Duration;

async fn post(sb: &Sandbox, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
    let r = sb
        .http
        .post(sb.url(path))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn get(sb: &Sandbox, path: &str, token: &str) -> (StatusCode, Value) {
    let r = sb
        .http
        .get(sb.url(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

fn codes(bundle: &Value) -> Vec<String> {
    let mut out: Vec<String> = bundle["entry"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .filter(|e| e["resource"]["resourceType"] == "Observation")
        .map(|e| {
            e["resource"]["code"]["coding"][0]["code"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    out.sort();
    out
}

#[tokio::test]
async fn grants_open_exactly_their_scope_until_revoked_and_every_access_is_in_the_ledger() {
    let sb = Sandbox::start().await;
    let jane = sb.user("jane", Role::Patient);
    let pid = jane.patient_id.clone().unwrap();
    let dr = sb.user("dr-house", Role::Provider);
    sb.directory
        .set_provider_profile(
            &dr.id,
            &p360_identity::users::ProviderProfile {
                npi: "1234567893".into(),
                organization: "Princeton-Plainsboro Teaching Hospital".into(),
            },
        )
        .unwrap();
    sb.user("analyst", Role::PayorAnalyst);
    let jane_token = sb.login("jane").await;
    let dr_token = sb.login("dr-house").await;
    let analyst_token = sb.login("analyst").await;

    // Jane opts in to population analytics: her rows in the lake say so.
    let r = sb
        .http
        .put(sb.url(&format!("/v1/patients/{pid}/analytics-consent")))
        .bearer_auth(&jane_token)
        .json(&json!({"population_analytics": true, "personalized_tips": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);

    // Jane's record: a weight (vitals), a glucose (labs), an HIV screen (labs, but sensitive).
    for (code, value, unit, category) in [
        ("29463-7", 81.5, "kg", "vital-signs"),
        ("2345-7", 95.0, "mg/dL", "laboratory"),
        ("75622-1", 0.1, "1", "laboratory"),
    ] {
        let (status, body) = post(
            &sb,
            &format!("/v1/patients/{pid}/observations"),
            &jane_token,
            json!({"code": code, "value": value, "unit": unit, "date": "2026-03-01", "category": category}),
        )
        .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    }
    let everything = format!("/fhir/Patient/{pid}/$everything");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (_, b) = get(&sb, &everything, &jane_token).await;
        if codes(&b).len() == 3 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{b}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // No grant: refused, with the reason.
    let (status, body) = get(&sb, &everything, &dr_token).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(
        body["message"].as_str().unwrap().contains("not granted"),
        "{body}"
    );

    // Jane grants labs only (default period: 90 days).
    let (status, grant) = post(
        &sb,
        &format!("/v1/patients/{pid}/grants"),
        &jane_token,
        json!({"grantee": dr.id.as_str(), "categories": ["labs"]}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{grant}");
    let grant_id = grant["id"].as_str().unwrap().to_owned();
    let start = chrono::DateTime::parse_from_rfc3339(grant["start"].as_str().unwrap()).unwrap();
    let end = chrono::DateTime::parse_from_rfc3339(grant["end"].as_str().unwrap()).unwrap();
    assert_eq!((end - start).num_days(), 90);
    assert_eq!(grant["state"], "active");
    let (_, listed) = get(&sb, &format!("/v1/patients/{pid}/grants"), &jane_token).await;
    assert_eq!(listed["grants"][0]["grantee_profile"]["npi"], "1234567893");

    // The provider sees the glucose only: not the weight (out of scope), not the HIV screen
    // (sensitive, not named); the total counts only what is visible.
    let (status, bundle) = get(&sb, &everything, &dr_token).await;
    assert_eq!(status, StatusCode::OK, "{bundle}");
    assert_eq!(codes(&bundle), ["2345-7"]);
    assert_eq!(bundle["total"], 1);
    let (_, search) = get(&sb, &format!("/fhir/Observation?patient={pid}"), &dr_token).await;
    assert_eq!(codes(&search), ["2345-7"]);
    assert_eq!(search["total"], 1);
    // Documents are not in the grant.
    let (status, body) = get(&sb, &format!("/v1/patients/{pid}/documents"), &dr_token).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("does not include documents")
    );
    let (_, mine) = get(&sb, "/v1/providers/me/patients", &dr_token).await;
    assert_eq!(mine["patients"][0]["patient_id"], pid.as_str());

    // "Who can see my HIV results, and why?"
    let (_, why) = get(
        &sb,
        &format!("/v1/patients/{pid}/access?category=hiv_sti"),
        &jane_token,
    )
    .await;
    assert_eq!(
        why["access"]["hiv_sti"][0]["decision"]["rule"],
        "sensitive_not_named"
    );
    let (_, why) = get(
        &sb,
        &format!("/v1/patients/{pid}/access?category=labs"),
        &jane_token,
    )
    .await;
    assert_eq!(
        why["access"]["labs"][0]["decision"]["grant_id"],
        grant_id.as_str()
    );

    // Jane names the sensitive category: the next request shows it.
    let r = sb
        .http
        .patch(sb.url(&format!("/v1/patients/{pid}/grants/{grant_id}")))
        .bearer_auth(&jane_token)
        .json(&json!({"version": 1, "sensitive": ["hiv_sti"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let changed: Value = r.json().await.unwrap();
    assert_eq!(changed["version"], 2);
    let (_, bundle) = get(&sb, &everything, &dr_token).await;
    assert_eq!(codes(&bundle), ["2345-7", "75622-1"]);

    // The grant as a FHIR Consent.
    let (_, consent) = get(
        &sb,
        &format!("/v1/patients/{pid}/grants/{grant_id}?format=fhir"),
        &jane_token,
    )
    .await;
    assert_eq!(consent["resourceType"], "Consent");
    assert_eq!(consent["provision"]["type"], "permit");

    // Revoking with a stale version is refused; with the current one it bites at once.
    let revoke = format!("/v1/patients/{pid}/grants/{grant_id}/revoke");
    let (status, _) = post(&sb, &revoke, &jane_token, json!({"version": 1})).await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, revoked) = post(&sb, &revoke, &jane_token, json!({"version": 2})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(revoked["state"], "revoked");
    let (status, body) = get(&sb, &everything, &dr_token).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(
        body["message"].as_str().unwrap().contains("revoked"),
        "{body}"
    );

    // Analysts and other patients never read records; only Jane manages her grants.
    let (status, _) = get(&sb, &everything, &analyst_token).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = get(&sb, &format!("/v1/patients/{pid}/grants"), &dr_token).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Jane's ledger: the provider's reads (with the grant) and refusals, newest first; her own
    // reads are not in it.
    let (_, ledger) = get(&sb, &format!("/v1/patients/{pid}/ledger"), &jane_token).await;
    let entries = ledger["entries"].as_array().unwrap();
    assert!(entries.iter().all(|e| e["actor"] != jane.id.as_str()));
    let by = |outcome: &str, rule: &str| {
        entries
            .iter()
            .filter(|e| e["outcome"] == outcome && e["rule"] == rule)
            .count()
    };
    assert_eq!(by("deny", "no_grant"), 1);
    assert_eq!(by("permit", "grant"), 3, "{ledger}");
    assert_eq!(by("deny", "not_in_scope"), 1);
    assert_eq!(by("deny", "grant_revoked"), 1);
    assert_eq!(by("deny", "analyst_no_records"), 1);
    let read = entries.iter().find(|e| e["outcome"] == "permit").unwrap();
    assert_eq!(read["grant_id"], grant_id.as_str());
    assert_eq!(read["purpose"], "treatment");
    assert!(!read["resource_ids"].as_array().unwrap().is_empty());

    let (_, ledger) = p360::system::build_consent(&sb.config).await.unwrap();
    let v = ledger.verify().unwrap();
    assert_eq!(v.broken_at, None);
    assert_eq!(v.entries as usize, entries.len());

    // The lake: every ledger entry once in access_log (pseudonymous patient key), and Jane's
    // observations carry her analytics opt-in.
    let rows = wait_for_lake_rows(&sb, "access_log", entries.len()).await;
    tokio::time::sleep(Duration::from_millis(500)).await; // past a flush, for a duplicate
    let rows_after = lake_rows(&sb, "access_log");
    assert_eq!(rows_after.len(), entries.len(), "{rows_after:?}");
    assert!(rows.iter().all(|r| r["patient_key"] != pid.as_str()));
    assert_eq!(
        rows.iter().filter(|r| r["outcome"] == "deny").count(),
        entries.iter().filter(|e| e["outcome"] == "deny").count()
    );
    let obs = wait_for_lake_rows(&sb, "observations", 3).await;
    assert!(
        obs.iter().all(|r| r["analytics_consent"] == true),
        "{obs:?}"
    );
    sb.stop().await;
}

#[tokio::test]
async fn break_glass_is_short_flagged_and_notified_and_write_back_needs_a_write_grant() {
    let sb = Sandbox::start().await;
    let jane = sb.user("jane", Role::Patient);
    let pid = jane.patient_id.clone().unwrap();
    let dr = sb.user("dr-er", Role::Provider);
    let jane_token = sb.login("jane").await;
    let dr_token = sb.login("dr-er").await;
    let (status, _) = post(
        &sb,
        &format!("/v1/patients/{pid}/observations"),
        &jane_token,
        json!({"code": "2345-7", "value": 95.0, "unit": "mg/dL", "date": "2026-03-01"}),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);

    // Emergency access needs a verified NPI (the default policy) and a stated reason; it
    // lasts four hours and is flagged.
    let glass = format!("/v1/patients/{pid}/break-glass");
    let reason = json!({"reason": "unconscious in the ED, need medication history"});
    let (status, body) = post(&sb, &glass, &dr_token, reason.clone()).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("verified NPI"),
        "{body}"
    );
    sb.directory
        .set_provider_profile(
            &dr.id,
            &p360_identity::users::ProviderProfile {
                npi: "1234567893".into(),
                organization: "County General".into(),
            },
        )
        .unwrap();
    let (status, body) = post(&sb, &glass, &dr_token, json!({"reason": "help"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, grant) = post(
        &sb,
        &glass,
        &dr_token,
        json!({"reason": "unconscious in the ED, need medication history"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{grant}");
    let start = chrono::DateTime::parse_from_rfc3339(grant["start"].as_str().unwrap()).unwrap();
    let end = chrono::DateTime::parse_from_rfc3339(grant["end"].as_str().unwrap()).unwrap();
    assert_eq!((end - start).num_hours(), 4);
    assert_eq!(grant["purpose"], "emergency");
    let everything = format!("/fhir/Patient/{pid}/$everything");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (status, b) = get(&sb, &everything, &dr_token).await;
        assert_eq!(status, StatusCode::OK, "{b}");
        if codes(&b) == ["2345-7"] {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{b}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (_, notes) = get(
        &sb,
        &format!("/v1/patients/{pid}/notifications"),
        &jane_token,
    )
    .await;
    assert_eq!(notes["notifications"][0]["kind"], "break_glass");
    assert_eq!(notes["notifications"][0]["grant_id"], grant["id"]);
    let (_, ledger) = get(&sb, &format!("/v1/patients/{pid}/ledger"), &jane_token).await;
    let flagged = ledger["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["break_glass"] == true && e["actor"] == dr.id.as_str())
        .count();
    assert!(
        flagged >= 2,
        "the opening and the reads are flagged: {ledger}"
    );

    // Emergency access is read-only: adding an episode needs the patient's write grant.
    let episodes = format!("/v1/patients/{pid}/episodes");
    let episode = json!({
        "class": "EMER", "start": "2026-03-02",
        "diagnoses": [{"code": "I10", "display": "Essential (primary) hypertension"}],
        "procedures": [{"code": "99284", "system": "cpt"}],
        "note": "seen in the emergency department"
    });
    let (status, body) = post(&sb, &episodes, &dr_token, episode.clone()).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, _) = post(
        &sb,
        &format!("/v1/patients/{pid}/grants"),
        &jane_token,
        json!({"grantee": dr.id.as_str(), "categories": ["labs", "conditions", "episodes"], "write_episodes": true}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, body) = post(
        &sb,
        &episodes,
        &dr_token,
        json!({"start": "2026-03-02", "diagnoses": [{"code": "NOT A CODE"}]}),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (status, body) = post(&sb, &episodes, &dr_token, episode).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["fact_ids"].as_array().unwrap().len(), 3);

    // The episode enters Jane's record with the provider as its author.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (_, b) = get(
            &sb,
            &format!("{everything}?_type=Encounter,Condition,Procedure,Provenance"),
            &jane_token,
        )
        .await;
        let kinds: Vec<&str> = b["entry"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .filter_map(|e| e["resource"]["resourceType"].as_str())
            .collect();
        if kinds.contains(&"Encounter")
            && kinds.contains(&"Condition")
            && kinds.contains(&"Procedure")
        {
            let text = b.to_string();
            assert!(text.contains("I10"));
            assert!(
                text.contains(dr.id.as_str()),
                "the provider is the author: {b}"
            );
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{b}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // An entry whose publish never happened (a crash right after the append) reaches the lake
    // through the ledger outbox.
    let (_, ledger) = p360::system::build_consent(&sb.config).await.unwrap();
    let orphan = ledger
        .append(p360_consent::ledger::Access {
            at: chrono::Utc::now() - chrono::Duration::seconds(30),
            patient: pid.clone(),
            actor: dr.id.to_string(),
            role: "provider".into(),
            action: "read".into(),
            resource_types: vec!["Observation".into()],
            resource_ids: Vec::new(),
            resource_count: 0,
            grant_id: None,
            purpose: Some("emergency".into()),
            outcome: "permit".into(),
            rule: "break_glass".into(),
            break_glass: true,
        })
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(40);
    loop {
        let rows = lake_rows(&sb, "access_log");
        if rows.iter().any(|r| r["ledger_seq"] == orphan.seq) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "entry {} never reached the lake",
            orphan.seq
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    sb.stop().await;
}
