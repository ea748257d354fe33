//! Break-glass as a policy, over HTTP: only providers with a verified NPI by default (or none,
//! or any, by configuration), never on the record of a patient who opted out, a few sessions
//! per provider per day, every session and refusal listed for an administrator's review; and
//! the notifications that keep the patient informed (a grant's first use, its end drawing
//! near).
#![allow(clippy::unwrap_used)]

mod common;

use common::Sandbox;
use p360_identity::Role;
use p360_identity::users::{ProviderProfile, User};
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn call(
    sb: &Sandbox,
    method: reqwest::Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut req = sb.http.request(method, sb.url(path)).bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await.unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

fn verified(sb: &Sandbox, name: &str) -> User {
    let u = sb.user(name, Role::Provider);
    sb.directory
        .set_provider_profile(
            &u.id,
            &ProviderProfile {
                npi: "1234567893".into(),
                organization: "County General".into(),
            },
        )
        .unwrap();
    u
}

const REASON: &str = "unconscious in the emergency department, allergies unknown";

async fn open(sb: &Sandbox, patient: &str, token: &str) -> (StatusCode, Value) {
    call(
        sb,
        reqwest::Method::POST,
        &format!("/v1/patients/{patient}/break-glass"),
        token,
        Some(json!({"reason": REASON})),
    )
    .await
}

#[tokio::test]
async fn opt_out_limit_and_review() {
    let sb = Sandbox::start_with(|c| c.consent.break_glass_per_day = 2).await;
    let jane = sb.user("jane", Role::Patient);
    let bob = sb.user("bob", Role::Patient);
    let ann = sb.user("ann", Role::Patient);
    let (jane_p, bob_p, ann_p) = (
        jane.patient_id.clone().unwrap().to_string(),
        bob.patient_id.clone().unwrap().to_string(),
        ann.patient_id.clone().unwrap().to_string(),
    );
    let dr = verified(&sb, "dr-er");
    sb.user("dr-unverified", Role::Provider);
    sb.user("admin", Role::Admin);
    let jane_t = sb.login("jane").await;
    let dr_t = sb.login("dr-er").await;
    let unverified_t = sb.login("dr-unverified").await;
    let admin_t = sb.login("admin").await;

    // No verified NPI: refused by the default policy, and the attempt is in Jane's ledger.
    let (status, body) = open(&sb, &jane_p, &unverified_t).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(body["message"].as_str().unwrap().contains("verified NPI"));

    // Jane opts out: nobody may break the glass on her record.
    let opt_out = format!("/v1/patients/{jane_p}/break-glass-opt-out");
    let (status, body) = call(
        &sb,
        reqwest::Method::PUT,
        &opt_out,
        &jane_t,
        Some(json!({"opt_out": true})),
    )
    .await;
    assert_eq!((status, &body["opt_out"]), (StatusCode::OK, &json!(true)));
    let (status, body) = open(&sb, &jane_p, &dr_t).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("opted out"),
        "{body}"
    );
    let (_, ledger) = call(
        &sb,
        reqwest::Method::GET,
        &format!("/v1/patients/{jane_p}/ledger"),
        &jane_t,
        None,
    )
    .await;
    let refusals: Vec<&Value> = ledger["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "break_glass" && e["outcome"] == "deny")
        .collect();
    assert_eq!(refusals.len(), 2, "{ledger}");
    assert_eq!(refusals[0]["rule"], "break_glass_opted_out");
    assert_eq!(refusals[1]["rule"], "break_glass_unverified");
    assert!(ledger["head"]["seq"].as_u64().unwrap() >= 2, "{ledger}");
    // Jane allows it again.
    let (status, _) = call(
        &sb,
        reqwest::Method::PUT,
        &opt_out,
        &jane_t,
        Some(json!({"opt_out": false})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);

    // The limit: two sessions per provider in 24 hours, across patients.
    let (status, first) = open(&sb, &jane_p, &dr_t).await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    let (status, _) = open(&sb, &bob_p, &dr_t).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, body) = open(&sb, &ann_p, &dr_t).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("at most 2"),
        "{body}"
    );
    // A read under the first session, counted in the review.
    let (status, _) = call(
        &sb,
        reqwest::Method::GET,
        &format!("/fhir/Patient/{jane_p}/$everything"),
        &dr_t,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);

    // The administrator's review: both sessions with reason and accesses, and the refusals.
    let (status, review) = call(
        &sb,
        reqwest::Method::GET,
        "/v1/admin/break-glass",
        &admin_t,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{review}");
    let sessions = review["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 2, "{review}");
    let s = &sessions[0];
    assert_eq!(s["grant_id"], first["id"]);
    assert_eq!(s["provider"], dr.id.as_str());
    assert_eq!(s["patient_id"], jane_p.as_str());
    assert_eq!(s["reason"], REASON);
    assert_eq!(s["accesses"], 1, "{s}");
    assert_eq!(s["state"], "active");
    let rules: Vec<&str> = review["refused"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["rule"].as_str().unwrap())
        .collect();
    assert_eq!(
        rules,
        [
            "break_glass_unverified",
            "break_glass_opted_out",
            "break_glass_limit"
        ]
    );
    // Only administrators review.
    let (status, _) = call(
        &sb,
        reqwest::Method::GET,
        "/v1/admin/break-glass",
        &dr_t,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // A day later the provider may open a session again; the first one has ended.
    sb.clock.advance(chrono::Duration::hours(25));
    let dr_t = sb.login("dr-er").await;
    let admin_t = sb.login("admin").await;
    let (status, _) = open(&sb, &ann_p, &dr_t).await;
    assert_eq!(status, StatusCode::CREATED);
    let (_, review) = call(
        &sb,
        reqwest::Method::GET,
        "/v1/admin/break-glass",
        &admin_t,
        None,
    )
    .await;
    assert_eq!(review["sessions"][0]["state"], "expired", "{review}");
    sb.stop().await;
}

#[tokio::test]
async fn the_policy_is_configuration() {
    // Off: nobody.
    let sb =
        Sandbox::start_with(|c| c.consent.break_glass = p360_consent::BreakGlassMode::Off).await;
    let jane = sb.user("jane", Role::Patient);
    verified(&sb, "dr-er");
    let dr_t = sb.login("dr-er").await;
    let (status, body) = open(&sb, jane.patient_id.as_ref().unwrap().as_str(), &dr_t).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(body["message"].as_str().unwrap().contains("turned off"));
    sb.stop().await;

    // Any provider: no NPI needed.
    let sb = Sandbox::start_with(|c| {
        c.consent.break_glass = p360_consent::BreakGlassMode::AnyProvider;
    })
    .await;
    let jane = sb.user("jane", Role::Patient);
    sb.user("dr-new", Role::Provider);
    let dr_t = sb.login("dr-new").await;
    let (status, body) = open(&sb, jane.patient_id.as_ref().unwrap().as_str(), &dr_t).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    sb.stop().await;
}

async fn notifications(sb: &Sandbox, patient: &str, token: &str) -> Vec<Value> {
    let (status, body) = call(
        sb,
        reqwest::Method::GET,
        &format!("/v1/patients/{patient}/notifications"),
        token,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["notifications"].as_array().unwrap().clone()
}

fn of_kind<'a>(notes: &'a [Value], kind: &str) -> Vec<&'a Value> {
    notes.iter().filter(|n| n["kind"] == kind).collect()
}

#[tokio::test]
async fn patients_hear_of_a_grant_s_first_use_and_of_its_end_a_week_before() {
    let sb = Sandbox::start().await;
    let jane = sb.user("jane", Role::Patient);
    let pid = jane.patient_id.clone().unwrap().to_string();
    let dr = sb.user("dr-gp", Role::Provider);
    let jane_t = sb.login("jane").await;
    let dr_t = sb.login("dr-gp").await;
    let (status, grant) = call(
        &sb,
        reqwest::Method::POST,
        &format!("/v1/patients/{pid}/grants"),
        &jane_t,
        Some(json!({"grantee": dr.id.as_str(), "categories": ["labs"]})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{grant}");
    assert!(of_kind(&notifications(&sb, &pid, &jane_t).await, "grant_first_used").is_empty());

    // Two reads: one notification, naming the grant.
    for _ in 0..2 {
        let (status, _) = call(
            &sb,
            reqwest::Method::GET,
            &format!("/fhir/Patient/{pid}/$everything"),
            &dr_t,
            None,
        )
        .await;
        assert_eq!(status, StatusCode::OK);
    }
    let notes = notifications(&sb, &pid, &jane_t).await;
    let used = of_kind(&notes, "grant_first_used");
    assert_eq!(used.len(), 1, "{notes:?}");
    assert_eq!(used[0]["grant_id"], grant["id"]);
    assert!(of_kind(&notes, "grant_expiring").is_empty(), "90 days left");

    // 84 days on, the grant ends within a week: the patient is told, once.
    sb.clock.advance(chrono::Duration::days(84));
    let jane_t = sb.login("jane").await;
    for _ in 0..2 {
        let notes = notifications(&sb, &pid, &jane_t).await;
        let ending = of_kind(&notes, "grant_expiring");
        assert_eq!(ending.len(), 1, "{notes:?}");
        assert_eq!(ending[0]["grant_id"], grant["id"]);
    }
    // Past its end there is nothing left to warn about, and no new warning.
    sb.clock.advance(chrono::Duration::days(7));
    let jane_t = sb.login("jane").await;
    let notes = notifications(&sb, &pid, &jane_t).await;
    assert_eq!(of_kind(&notes, "grant_expiring").len(), 1);
    // And the expired grant is refused over HTTP: the decision is on the same clock.
    let dr_t = sb.login("dr-gp").await;
    let (status, body) = call(
        &sb,
        reqwest::Method::GET,
        &format!("/fhir/Patient/{pid}/$everything"),
        &dr_t,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(
        body["message"].as_str().unwrap().contains("expired"),
        "{body}"
    );
    sb.stop().await;
}
