//! Consent on the HTTP paths: every read of a record asks the decision point
//! ([`authorize`]) and every access by someone other than the owner is appended to the ledger
//! ([`record`]); the patient's endpoints for grants, the ledger, "who can see my …" and
//! analytics consent; the provider's list of patients.

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, parse_json, patient_id, require_json};
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use chrono::{DateTime, Utc};
use p360_consent::ledger::Access;
use p360_consent::{
    Action, AnalyticsConsent, Category, ConsentError, Decision, Grant, Notification, Purpose,
    Scope, Subject,
};
use p360_events::{PatientId, Role, UserId};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::{BTreeSet, HashMap};

fn store_error(e: ConsentError) -> ApiError {
    match e {
        ConsentError::NotFound(_) => ApiError::NotFound("no such grant for this patient".into()),
        ConsentError::Conflict { .. } => ApiError::Conflict(e.to_string()),
        ConsentError::Invalid(m) => ApiError::BadRequest(m),
        ConsentError::Unavailable(m) => ApiError::Unavailable(m),
    }
}

fn subject(caller: &Caller) -> Subject<'_> {
    Subject {
        user_id: caller.0.user_id.as_str(),
        role: caller.0.role,
        patient_id: caller.0.patient_id.as_ref(),
    }
}

/// Decides `actions` for the caller on `patient`'s record (grants read now, never cached).
pub(crate) async fn decide_all(
    state: &AppState,
    caller: &Caller,
    patient: &PatientId,
    actions: &[Action],
) -> Result<Vec<Decision>, ApiError> {
    state
        .consent
        .decide_all(&subject(caller), patient, actions)
        .await
        .map_err(store_error)
}

/// Permits or refuses one action; a refusal is recorded in the ledger and answered 403 with
/// the reason.
pub(crate) async fn authorize(
    state: &AppState,
    caller: &Caller,
    patient: &PatientId,
    action: Action,
) -> Result<Decision, ApiError> {
    let decision = decide_all(state, caller, patient, &[action])
        .await?
        .remove(0);
    if !decision.permit {
        deny(state, caller, patient, &decision, action).await?;
        return Err(ApiError::Forbidden(decision.reason));
    }
    Ok(decision)
}

/// Records a refusal and answers 403 with its reason.
pub(crate) async fn deny(
    state: &AppState,
    caller: &Caller,
    patient: &PatientId,
    decision: &Decision,
    action: Action,
) -> Result<(), ApiError> {
    tracing::info!(
        user_id = %caller.0.user_id,
        patient_id = %patient,
        rule = decision.rule,
        "access denied"
    );
    record(
        state,
        caller,
        patient,
        decision,
        action.verb(),
        &[action.category().as_str()],
        Vec::new(),
    )
    .await
}

/// Appends an access to the ledger, unless it is the patient reading their own record.
pub(crate) async fn record(
    state: &AppState,
    caller: &Caller,
    patient: &PatientId,
    decision: &Decision,
    verb: &str,
    resource_types: &[&str],
    resource_ids: Vec<String>,
) -> Result<(), ApiError> {
    if decision.rule == "owner" {
        return Ok(());
    }
    let count = resource_ids.len() as u64;
    let entry = state
        .ledger
        .record(Access {
            at: Utc::now(),
            patient: patient.clone(),
            actor: caller.0.user_id.to_string(),
            role: caller.0.role.as_str().to_owned(),
            action: verb.to_owned(),
            resource_types: resource_types.iter().map(|t| (*t).to_owned()).collect(),
            resource_ids,
            resource_count: count,
            grant_id: decision.grant_id.clone(),
            purpose: decision.purpose.map(|p| p.as_str().to_owned()),
            outcome: if decision.permit { "permit" } else { "deny" }.to_owned(),
            rule: decision.rule.to_owned(),
            break_glass: decision.break_glass,
        })
        .await
        // An access that cannot be recorded does not happen.
        .map_err(|e| ApiError::Unavailable(e.to_string()))?;
    // Mirrored to the lake. If this fails, the entry stays unmarked and the server's ledger
    // mirror sends it later (same event id, so never twice in the lake).
    let event = p360_consent::ledger::access_event(&entry)
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    if let Err(e) = state.publisher.publish(&[event]).await {
        tracing::warn!(error = %e, seq = entry.seq, "access not mirrored yet; retried later");
        return Ok(());
    }
    let ledger = state.ledger.clone();
    let seq = entry.seq;
    if let Err(e) = tokio::task::spawn_blocking(move || ledger.mark_published(seq))
        .await
        .map_err(|e| e.to_string())
        .and_then(|r| r.map_err(|e| e.to_string()))
    {
        tracing::warn!(error = %e, seq, "marking a mirrored access failed; it will be sent again");
    }
    Ok(())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewGrant {
    grantee: String,
    #[serde(default)]
    categories: Option<BTreeSet<String>>,
    #[serde(default)]
    sensitive: BTreeSet<String>,
    #[serde(default)]
    write_episodes: bool,
    #[serde(default)]
    purpose: Option<Purpose>,
    #[serde(default)]
    start: Option<DateTime<Utc>>,
    #[serde(default)]
    end: Option<DateTime<Utc>>,
}

fn categories(names: impl IntoIterator<Item = String>) -> Result<BTreeSet<Category>, ApiError> {
    names
        .into_iter()
        .map(|n| {
            Category::parse(&n).ok_or_else(|| {
                ApiError::BadRequest(format!(
                    "unknown category '{n}'; one of {}",
                    Category::ALL.map(|c| c.as_str()).join(", ")
                ))
            })
        })
        .collect()
}

fn scope_of(
    cats: Option<BTreeSet<String>>,
    sensitive: BTreeSet<String>,
    write: bool,
) -> Result<Scope, ApiError> {
    let scope = Scope {
        categories: cats.map(categories).transpose()?,
        sensitive: categories(sensitive)?,
        write_episodes: write,
    };
    scope.validate().map_err(ApiError::BadRequest)?;
    Ok(scope)
}

fn require_patient(caller: &Caller, patient: &PatientId) -> Result<(), ApiError> {
    if caller.0.owns(patient) {
        Ok(())
    } else {
        Err(ApiError::Forbidden(
            "only the patient manages access to their record".into(),
        ))
    }
}

fn grant_json(g: &Grant) -> Value {
    let now = Utc::now();
    let mut v = serde_json::to_value(g).unwrap_or(Value::Null);
    v["state"] = json!(g.state(now));
    v
}

/// `POST /v1/patients/{patient}/grants`: the patient grants a provider access.
pub(crate) async fn create_grant(
    State(state): State<AppState>,
    Path(patient): Path<String>,
    caller: Caller,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let patient = patient_id(&patient)?;
    require_patient(&caller, &patient)?;
    require_json(&headers)?;
    let asked: NewGrant = parse_json(
        &body,
        r#"{"grantee": user id, "categories"?: [..], "sensitive"?: [..], "write_episodes"?: bool, "purpose"?: "treatment"|"care_coordination", "start"?: instant, "end"?: instant}"#,
    )?;
    let grantee = UserId::parse(&asked.grantee)
        .map_err(|_| ApiError::BadRequest("grantee: not a valid user id".into()))?;
    // The grantee must be a provider account (when this deployment keeps the accounts).
    if let Some(dir) = &state.directory {
        let user = dir
            .get(&grantee)
            .map_err(|e| ApiError::Unavailable(e.to_string()))?;
        if !user.is_some_and(|u| u.active && u.role == Role::Provider) {
            return Err(ApiError::BadRequest(
                "grantee: no active provider account with this id".into(),
            ));
        }
    }
    let scope = scope_of(asked.categories, asked.sensitive, asked.write_episodes)?;
    let purpose = asked.purpose.unwrap_or(Purpose::Treatment);
    if purpose == Purpose::Emergency {
        return Err(ApiError::BadRequest(
            "purpose: emergency access is opened by the provider (break-glass), not granted".into(),
        ));
    }
    let now = Utc::now();
    let start = asked.start.unwrap_or(now);
    let end = state
        .grant_limits
        .end_for(start, asked.end)
        .map_err(ApiError::BadRequest)?;
    let grant = Grant {
        id: format!("grant-{}", uuid_like()),
        patient: patient.clone(),
        grantee,
        scope,
        purpose,
        start,
        end,
        created_at: now,
        revoked_at: None,
        break_glass: false,
        reason: None,
        version: 1,
    };
    state
        .consent
        .store()
        .create(&grant)
        .await
        .map_err(store_error)?;
    tracing::info!(patient_id = %patient, grant_id = %grant.id, "grant created");
    Ok((StatusCode::CREATED, Json(grant_json(&grant))))
}

fn uuid_like() -> String {
    let bytes: [u8; 16] = rand::random();
    hex::encode(bytes)
}

/// `GET /v1/patients/{patient}/grants`.
pub(crate) async fn list_grants(
    State(state): State<AppState>,
    Path(patient): Path<String>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    let patient = patient_id(&patient)?;
    require_patient(&caller, &patient)?;
    let grants = state
        .consent
        .store()
        .for_patient(&patient)
        .await
        .map_err(store_error)?;
    let mut out = Vec::with_capacity(grants.len());
    for g in &grants {
        let mut v = grant_json(g);
        v["grantee_profile"] = json!(profile(&state, &g.grantee)?);
        out.push(v);
    }
    Ok(Json(json!({ "grants": out })))
}

/// The grantee's NPI and organization, when this deployment keeps the accounts.
fn profile(
    state: &AppState,
    user: &UserId,
) -> Result<Option<p360_identity::users::ProviderProfile>, ApiError> {
    match &state.directory {
        Some(dir) => dir
            .provider_profile(user)
            .map_err(|e| ApiError::Unavailable(e.to_string())),
        None => Ok(None),
    }
}

async fn own_grant(
    state: &AppState,
    caller: &Caller,
    patient: &str,
    id: &str,
) -> Result<Grant, ApiError> {
    let patient = patient_id(patient)?;
    require_patient(caller, &patient)?;
    state
        .consent
        .store()
        .get(id)
        .await
        .map_err(store_error)?
        .filter(|g| g.patient == patient)
        .ok_or_else(|| ApiError::NotFound("no such grant for this patient".into()))
}

/// `GET /v1/patients/{patient}/grants/{id}` (`?format=fhir` for the FHIR Consent).
pub(crate) async fn get_grant(
    State(state): State<AppState>,
    Path((patient, id)): Path<(String, String)>,
    caller: Caller,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let g = own_grant(&state, &caller, &patient, &id).await?;
    Ok(Json(match q.get("format").map(String::as_str) {
        Some("fhir") => g.to_fhir(Utc::now()),
        _ => grant_json(&g),
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Change {
    /// The version the patient saw (changes are conditional on it).
    version: u64,
    #[serde(default)]
    end: Option<DateTime<Utc>>,
    #[serde(default)]
    categories: Option<BTreeSet<String>>,
    #[serde(default)]
    sensitive: Option<BTreeSet<String>>,
    #[serde(default)]
    write_episodes: Option<bool>,
}

/// `PATCH /v1/patients/{patient}/grants/{id}` `{"version", "end"?, "categories"?, …}`: extend
/// or narrow a grant.
pub(crate) async fn change_grant(
    State(state): State<AppState>,
    Path((patient, id)): Path<(String, String)>,
    caller: Caller,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    require_json(&headers)?;
    let change: Change = parse_json(
        &body,
        r#"{"version": number, "end"?: instant, "categories"?: [..], "sensitive"?: [..], "write_episodes"?: bool}"#,
    )?;
    let g = own_grant(&state, &caller, &patient, &id).await?;
    let store = state.consent.store();
    let mut current = g.clone();
    let mut version = change.version;
    if change.categories.is_some() || change.sensitive.is_some() || change.write_episodes.is_some()
    {
        let scope = scope_of(
            change.categories.or_else(|| {
                g.scope
                    .categories
                    .as_ref()
                    .map(|s| s.iter().map(|c| c.as_str().to_owned()).collect())
            }),
            change.sensitive.unwrap_or_else(|| {
                g.scope
                    .sensitive
                    .iter()
                    .map(|c| c.as_str().to_owned())
                    .collect()
            }),
            change.write_episodes.unwrap_or(g.scope.write_episodes),
        )?;
        current = store
            .rescope(&id, version, &scope)
            .await
            .map_err(store_error)?;
        version = current.version;
    }
    if let Some(end) = change.end {
        let end = state
            .grant_limits
            .end_for(g.start, Some(end))
            .map_err(ApiError::BadRequest)?;
        current = store.extend(&id, version, end).await.map_err(store_error)?;
    }
    Ok(Json(grant_json(&current)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Revoke {
    version: u64,
}

/// `POST /v1/patients/{patient}/grants/{id}/revoke` `{"version"}`: effective at once.
pub(crate) async fn revoke_grant(
    State(state): State<AppState>,
    Path((patient, id)): Path<(String, String)>,
    caller: Caller,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    require_json(&headers)?;
    let r: Revoke = parse_json(&body, r#"{"version": number}"#)?;
    own_grant(&state, &caller, &patient, &id).await?;
    let g = state
        .consent
        .store()
        .revoke(&id, r.version, Utc::now())
        .await
        .map_err(store_error)?;
    tracing::info!(grant_id = %g.id, "grant revoked");
    Ok(Json(grant_json(&g)))
}

/// `GET /v1/patients/{patient}/ledger?before=&limit=`: who accessed the record, newest first.
pub(crate) async fn ledger(
    State(state): State<AppState>,
    Path(patient): Path<String>,
    caller: Caller,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let patient = patient_id(&patient)?;
    require_patient(&caller, &patient)?;
    let before = q
        .get("before")
        .map(|b| b.parse::<u64>())
        .transpose()
        .map_err(|_| ApiError::BadRequest("before: an entry number".into()))?;
    let limit = q
        .get("limit")
        .map(|b| b.parse::<usize>())
        .transpose()
        .map_err(|_| ApiError::BadRequest("limit: a number".into()))?
        .unwrap_or(50)
        .clamp(1, 500);
    let ledger = state.ledger.clone();
    let entries = tokio::task::spawn_blocking(move || ledger.for_patient(&patient, before, limit))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .map_err(|e| ApiError::Unavailable(e.to_string()))?;
    Ok(Json(json!({ "entries": entries })))
}

/// `GET /v1/patients/{patient}/access?category=labs`: who can see it now, and why. For the
/// patient and for admins.
pub(crate) async fn explain(
    State(state): State<AppState>,
    Path(patient): Path<String>,
    caller: Caller,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let patient = patient_id(&patient)?;
    if !(caller.0.owns(&patient) || caller.0.role == Role::Admin) {
        return Err(ApiError::Forbidden(
            "only the patient and administrators may see who has access".into(),
        ));
    }
    let wanted: Vec<Category> = match q.get("category") {
        Some(c) => categories([c.clone()])?.into_iter().collect(),
        None => Category::ALL.to_vec(),
    };
    let mut out = serde_json::Map::new();
    for category in wanted {
        let who = state
            .consent
            .explain(&patient, category)
            .await
            .map_err(store_error)?;
        out.insert(
            category.as_str().to_owned(),
            json!(
                who.into_iter()
                    .map(|(grantee, d)| json!({"grantee": grantee, "decision": d}))
                    .collect::<Vec<_>>()
            ),
        );
    }
    Ok(Json(json!({ "patient_id": patient, "access": out })))
}

/// `GET|PUT /v1/patients/{patient}/analytics-consent`.
pub(crate) async fn get_analytics(
    State(state): State<AppState>,
    Path(patient): Path<String>,
    caller: Caller,
) -> Result<Json<AnalyticsConsent>, ApiError> {
    let patient = patient_id(&patient)?;
    require_patient(&caller, &patient)?;
    Ok(Json(
        state
            .consent
            .store()
            .analytics(&patient)
            .await
            .map_err(store_error)?,
    ))
}

pub(crate) async fn put_analytics(
    State(state): State<AppState>,
    Path(patient): Path<String>,
    caller: Caller,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<AnalyticsConsent>, ApiError> {
    let patient = patient_id(&patient)?;
    require_patient(&caller, &patient)?;
    require_json(&headers)?;
    let consent: AnalyticsConsent = parse_json(
        &body,
        r#"{"population_analytics": bool, "personalized_tips": bool}"#,
    )?;
    state
        .consent
        .store()
        .set_analytics(&patient, consent)
        .await
        .map_err(store_error)?;
    Ok(Json(consent))
}

/// `GET /v1/providers/me/patients`: the records a provider may open now, with the grant.
pub(crate) async fn my_patients(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    if caller.0.role != Role::Provider {
        return Err(ApiError::Forbidden("for provider accounts".into()));
    }
    let now = Utc::now();
    let grants = state
        .consent
        .store()
        .for_grantee(&caller.0.user_id)
        .await
        .map_err(store_error)?;
    let active: Vec<Value> = grants
        .iter()
        .filter(|g| g.state(now) == p360_consent::GrantState::Active)
        .map(|g| {
            json!({
                "patient_id": g.patient,
                "grant_id": g.id,
                "scope": g.scope,
                "purpose": g.purpose,
                "end": g.end,
                "break_glass": g.break_glass,
            })
        })
        .collect();
    Ok(Json(json!({ "patients": active })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct BreakGlass {
    reason: String,
}

/// `POST /v1/patients/{patient}/break-glass` `{"reason"}`: a provider without a grant opens the
/// record in an emergency. The access is short (4 h by default), read-only, excludes sensitive
/// categories, is flagged in every ledger entry, and the patient is notified.
pub(crate) async fn break_glass(
    State(state): State<AppState>,
    Path(patient): Path<String>,
    caller: Caller,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let patient = patient_id(&patient)?;
    if caller.0.role != Role::Provider {
        return Err(ApiError::Forbidden(
            "emergency access is for provider accounts".into(),
        ));
    }
    require_json(&headers)?;
    let asked: BreakGlass =
        parse_json(&body, r#"{"reason": string (why, at least 10 characters)}"#)?;
    let reason = asked.reason.trim().to_owned();
    if reason.chars().count() < 10 || reason.chars().count() > 500 {
        return Err(ApiError::BadRequest(
            "reason: state why, in 10 to 500 characters".into(),
        ));
    }
    let now = Utc::now();
    let grant = Grant {
        id: format!("bg-{}", uuid_like()),
        patient: patient.clone(),
        grantee: caller.0.user_id.clone(),
        scope: Scope::read_all(),
        purpose: Purpose::Emergency,
        start: now,
        end: now + chrono::Duration::hours(state.grant_limits.break_glass_hours.max(1)),
        created_at: now,
        revoked_at: None,
        break_glass: true,
        reason: Some(reason.clone()),
        version: 1,
    };
    state
        .consent
        .store()
        .create(&grant)
        .await
        .map_err(store_error)?;
    let decision = Decision {
        permit: true,
        rule: "break_glass",
        reason: format!("emergency access opened: {}", grant.id),
        grant_id: Some(grant.id.clone()),
        purpose: Some(Purpose::Emergency),
        break_glass: true,
    };
    record(
        &state,
        &caller,
        &patient,
        &decision,
        "break_glass",
        &[],
        Vec::new(),
    )
    .await?;
    state
        .consent
        .store()
        .notify(&Notification {
            id: format!("note-{}", grant.id),
            patient: patient.clone(),
            at: now,
            kind: "break_glass".into(),
            message: format!(
                "Provider {} opened your record in an emergency until {}. Reason given: {reason}",
                caller.0.user_id,
                grant.end.to_rfc3339()
            ),
            grant_id: Some(grant.id.clone()),
        })
        .await
        .map_err(store_error)?;
    tracing::warn!(
        user_id = %caller.0.user_id,
        patient_id = %patient,
        grant_id = %grant.id,
        "break-glass access opened"
    );
    Ok((StatusCode::CREATED, Json(grant_json(&grant))))
}

/// `GET /v1/patients/{patient}/notifications`: newest first.
pub(crate) async fn notifications(
    State(state): State<AppState>,
    Path(patient): Path<String>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    let patient = patient_id(&patient)?;
    require_patient(&caller, &patient)?;
    let list = state
        .consent
        .store()
        .notifications(&patient, 100)
        .await
        .map_err(store_error)?;
    Ok(Json(json!({ "notifications": list })))
}
