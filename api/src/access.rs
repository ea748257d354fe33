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
    crate::security::denied(caller, Some(patient), decision.rule);
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
    let now = state.clock.now();
    let entry = state
        .ledger
        .record(Access {
            at: now,
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
    if decision.permit && decision.rule == "grant" {
        notify_first_use(state, caller, patient, decision, now).await;
    }
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

/// Tells the patient the first time a grant is used. Grants already told are remembered in
/// memory, so the store is written once per grant and process, not on every read (after a
/// restart the notification's fixed id makes the repeat a no-op). A failure is logged, not
/// returned: the access itself is recorded already.
async fn notify_first_use(
    state: &AppState,
    caller: &Caller,
    patient: &PatientId,
    decision: &Decision,
    now: DateTime<Utc>,
) {
    let Some(grant) = decision.grant_id.clone() else {
        return;
    };
    let told = state
        .notified
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .contains(&grant);
    if told {
        return;
    }
    let note = Notification {
        id: format!("note-first-use-{grant}"),
        patient: patient.clone(),
        at: now,
        kind: "grant_first_used".into(),
        message: format!(
            "Provider {} used your grant {grant} for the first time.",
            caller.0.user_id
        ),
        grant_id: Some(grant.clone()),
    };
    match state.consent.store().notify(&note).await {
        Ok(()) => {
            let mut set = state
                .notified
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            // Bounded: forgetting only costs a repeated, idempotent write.
            if set.len() > 1_000_000 {
                set.clear();
            }
            set.insert(grant);
        }
        Err(e) => tracing::warn!(error = %e, grant_id = %grant, "first-use notification failed"),
    }
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
            // The message names the choices, never the value sent.
            Category::parse(&n).ok_or_else(|| {
                ApiError::BadRequest(format!(
                    "categories: an unknown category; one of {}",
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

/// Lets only the record's patient through. Anyone else is refused, and the attempt is in the
/// patient's ledger (an attempt on their record is theirs to see) and in the security log.
/// Decided before any lookup, so the refusal says nothing about what exists.
pub(crate) async fn owner_only(
    state: &AppState,
    caller: &Caller,
    patient: &PatientId,
    verb: &str,
    what: &str,
) -> Result<(), ApiError> {
    if caller.0.owns(patient) {
        return Ok(());
    }
    let decision = Decision::deny(
        "owner_only",
        "only the patient may do this on their own record".into(),
    );
    crate::security::denied(caller, Some(patient), decision.rule);
    record(state, caller, patient, &decision, verb, &[what], Vec::new()).await?;
    Err(ApiError::Forbidden(decision.reason))
}

fn grant_json(g: &Grant, now: DateTime<Utc>) -> Value {
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
    owner_only(&state, &caller, &patient, "write", "Consent").await?;
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
    let now = state.clock.now();
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
    Ok((StatusCode::CREATED, Json(grant_json(&grant, now))))
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
    owner_only(&state, &caller, &patient, "read", "Consent").await?;
    let grants = state
        .consent
        .store()
        .for_patient(&patient)
        .await
        .map_err(store_error)?;
    let now = state.clock.now();
    let mut out = Vec::with_capacity(grants.len());
    for g in &grants {
        let mut v = grant_json(g, now);
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
    verb: &str,
) -> Result<Grant, ApiError> {
    let patient = patient_id(patient)?;
    owner_only(state, caller, &patient, verb, "Consent").await?;
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
    let g = own_grant(&state, &caller, &patient, &id, "read").await?;
    let now = state.clock.now();
    Ok(Json(match q.get("format").map(String::as_str) {
        Some("fhir") => g.to_fhir(now),
        _ => grant_json(&g, now),
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
    let g = own_grant(&state, &caller, &patient, &id, "write").await?;
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
    Ok(Json(grant_json(&current, state.clock.now())))
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
    own_grant(&state, &caller, &patient, &id, "write").await?;
    let now = state.clock.now();
    let g = state
        .consent
        .store()
        .revoke(&id, r.version, now)
        .await
        .map_err(store_error)?;
    tracing::info!(grant_id = %g.id, "grant revoked");
    Ok(Json(grant_json(&g, now)))
}

/// `GET /v1/patients/{patient}/ledger?before=&limit=`: who accessed the record, newest first.
pub(crate) async fn ledger(
    State(state): State<AppState>,
    Path(patient): Path<String>,
    caller: Caller,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let patient = patient_id(&patient)?;
    owner_only(&state, &caller, &patient, "read", "AuditEvent").await?;
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
    let (entries, head) =
        tokio::task::spawn_blocking(move || ledger.for_patient_at_head(&patient, before, limit))
            .await
            .map_err(|e| ApiError::Internal(e.to_string()))?
            .map_err(|e| ApiError::Unavailable(e.to_string()))?;
    // The head of the whole chain when these entries were read: `p360 ledger verify` (or an
    // auditor) can later confirm the chain still passes through it.
    let head = head.map(|(seq, hash)| json!({"seq": seq, "hash": hash}));
    Ok(Json(json!({ "entries": entries, "head": head })))
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
    if caller.0.role == Role::Admin {
        // An administrator looking at who may see a record is an access the patient sees.
        let decision = Decision::permit(
            "admin_explain",
            "administrators may see who has access, not the record".into(),
        );
        record(
            &state,
            &caller,
            &patient,
            &decision,
            "read",
            &["Consent"],
            Vec::new(),
        )
        .await?;
    } else {
        owner_only(&state, &caller, &patient, "read", "Consent").await?;
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
    owner_only(&state, &caller, &patient, "read", "Consent").await?;
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
    owner_only(&state, &caller, &patient, "write", "Consent").await?;
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
    // The lake records the choice at once, so a withdrawal leaves every population view at
    // the next refresh. Saved but not announced is reported, so the app repeats the (idempotent)
    // request.
    let id = p360_events::EventId::random();
    let event = p360_events::Envelope::new(
        id,
        "/p360/api/analytics-consent",
        p360_events::Event::AnalyticsConsentChanged(p360_events::AnalyticsConsentChanged {
            patient_id: patient.clone(),
            population_analytics: consent.population_analytics,
            personalized_tips: consent.personalized_tips,
            changed_at: state.clock.now(),
            change_id: id.0.to_string(),
        }),
    );
    state.publisher.publish(&[event]).await.map_err(|e| {
        ApiError::Unavailable(format!(
            "the choice is saved but not yet passed to analytics; repeat the request ({e})"
        ))
    })?;
    Ok(Json(consent))
}

/// `GET /v1/providers/me/patients`: the records a provider may open now, with the grant.
pub(crate) async fn my_patients(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    if caller.0.role != Role::Provider {
        crate::security::denied(&caller, None, "providers_only");
        return Err(ApiError::Forbidden("for provider accounts".into()));
    }
    let now = state.clock.now();
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
/// record in an emergency, as the deployment's [`BreakGlassPolicy`] allows (by default:
/// providers with a verified NPI, a few sessions a day, never on the record of a patient who
/// opted out). The access is short (4 h by default), read-only, excludes sensitive
/// categories, is flagged in every ledger entry, and the patient is notified. A refusal is in
/// the patient's ledger too.
pub(crate) async fn break_glass(
    State(state): State<AppState>,
    Path(patient): Path<String>,
    caller: Caller,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let patient = patient_id(&patient)?;
    let refuse = |rule: &'static str, reason: String| Decision {
        purpose: Some(Purpose::Emergency),
        break_glass: true,
        ..Decision::deny(rule, reason)
    };
    if caller.0.role != Role::Provider {
        let d = refuse(
            "break_glass_providers_only",
            "emergency access is for provider accounts".into(),
        );
        crate::security::denied(&caller, Some(&patient), d.rule);
        record(
            &state,
            &caller,
            &patient,
            &d,
            "break_glass",
            &[],
            Vec::new(),
        )
        .await?;
        return Err(ApiError::Forbidden(d.reason));
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
    let now = state.clock.now();
    let store = state.consent.store();
    let verified_npi = match &state.directory {
        Some(_) => profile(&state, &caller.0.user_id)?.is_some(),
        // An external identity provider vouches for no NPI here.
        None => false,
    };
    let request = p360_consent::break_glass::BreakGlassRequest {
        verified_npi,
        patient_opted_out: store
            .break_glass_opt_out(&patient)
            .await
            .map_err(store_error)?,
        opened_last_day: p360_consent::break_glass::opened_last_day(
            &store
                .for_grantee(&caller.0.user_id)
                .await
                .map_err(store_error)?,
            now,
        ),
    };
    if let Err(r) = state.break_glass.check(request) {
        let d = refuse(r.rule, r.reason);
        crate::security::denied(&caller, Some(&patient), d.rule);
        record(
            &state,
            &caller,
            &patient,
            &d,
            "break_glass",
            &[],
            Vec::new(),
        )
        .await?;
        return Err(ApiError::Forbidden(d.reason));
    }
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
    store.create(&grant).await.map_err(store_error)?;
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
    store
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
        target: crate::security::TARGET,
        event = "break_glass_opened",
        user_id = %caller.0.user_id,
        patient_id = %patient,
        grant_id = %grant.id,
        "break-glass access opened"
    );
    Ok((StatusCode::CREATED, Json(grant_json(&grant, now))))
}

#[derive(Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct OptOut {
    opt_out: bool,
}

/// `GET|PUT /v1/patients/{patient}/break-glass-opt-out` `{"opt_out": bool}`: the patient
/// refuses (or allows again) emergency access to their record.
pub(crate) async fn get_break_glass_opt_out(
    State(state): State<AppState>,
    Path(patient): Path<String>,
    caller: Caller,
) -> Result<Json<OptOut>, ApiError> {
    let patient = patient_id(&patient)?;
    owner_only(&state, &caller, &patient, "read", "Consent").await?;
    let opt_out = state
        .consent
        .store()
        .break_glass_opt_out(&patient)
        .await
        .map_err(store_error)?;
    Ok(Json(OptOut { opt_out }))
}

pub(crate) async fn put_break_glass_opt_out(
    State(state): State<AppState>,
    Path(patient): Path<String>,
    caller: Caller,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<OptOut>, ApiError> {
    let patient = patient_id(&patient)?;
    owner_only(&state, &caller, &patient, "write", "Consent").await?;
    require_json(&headers)?;
    let asked: OptOut = parse_json(&body, r#"{"opt_out": bool}"#)?;
    state
        .consent
        .store()
        .set_break_glass_opt_out(&patient, asked.opt_out)
        .await
        .map_err(store_error)?;
    Ok(Json(asked))
}

/// `GET /v1/admin/break-glass?since=<instant>` (default: the last 30 days): every emergency
/// session, its provider, patient, reason and period, and how many accesses were made under
/// it, for an administrator's review. Read from the ledger (the sessions and the accesses
/// flagged break-glass there) and the consent store (the stated reason).
pub(crate) async fn review_break_glass(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    if caller.0.role != Role::Admin {
        crate::security::denied(&caller, None, "admins_only");
        return Err(ApiError::Forbidden("for administrator accounts".into()));
    }
    let now = state.clock.now();
    let since = match q.get("since") {
        Some(s) => DateTime::parse_from_rfc3339(s)
            .map_err(|_| {
                ApiError::BadRequest("since: expected an instant like 2026-03-18T00:00:00Z".into())
            })?
            .to_utc(),
        None => now - chrono::Duration::days(30),
    };
    let ledger = state.ledger.clone();
    let entries = tokio::task::spawn_blocking(move || ledger.break_glass_since(since, 10_000))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .map_err(|e| ApiError::Unavailable(e.to_string()))?;
    // Sessions in the order they were opened; refusals listed apart.
    let mut sessions: Vec<(String, Value)> = Vec::new();
    let mut refused = Vec::new();
    for e in &entries {
        let a = &e.access;
        match (&a.grant_id, a.action.as_str(), a.outcome.as_str()) {
            (Some(g), "break_glass", "permit") => sessions.push((
                g.clone(),
                json!({
                    "grant_id": g, "provider": a.actor, "patient_id": a.patient,
                    "opened_at": a.at, "ledger_seq": e.seq, "accesses": 0,
                }),
            )),
            (Some(g), _, _) => {
                if let Some((_, s)) = sessions.iter_mut().find(|(id, _)| id == g) {
                    s["accesses"] = json!(s["accesses"].as_u64().unwrap_or(0) + 1);
                }
            }
            (None, _, "deny") => refused.push(json!({
                "provider": a.actor, "patient_id": a.patient, "at": a.at,
                "rule": a.rule, "ledger_seq": e.seq,
            })),
            _ => {}
        }
    }
    let store = state.consent.store();
    let mut out = Vec::with_capacity(sessions.len());
    for (id, mut s) in sessions {
        if let Some(g) = store.get(&id).await.map_err(store_error)? {
            s["reason"] = json!(g.reason);
            s["ends"] = json!(g.end);
            s["state"] = json!(g.state(now));
        }
        out.push(s);
    }
    tracing::info!(
        target: crate::security::TARGET,
        event = "break_glass_reviewed",
        user_id = %caller.0.user_id,
        sessions = out.len(),
        "break-glass sessions listed for review"
    );
    Ok(Json(
        json!({ "since": since, "sessions": out, "refused": refused }),
    ))
}

/// Tells the patient, once per grant and end date, that a grant ends within seven days (so
/// they can extend it). Notifications are read by the app, so checking when they are read is
/// as timely as a sweep and needs no scheduler.
async fn notify_expiring(state: &AppState, patient: &PatientId) -> Result<(), ApiError> {
    let now = state.clock.now();
    let soon = now + chrono::Duration::days(7);
    let store = state.consent.store();
    for g in store.for_patient(patient).await.map_err(store_error)? {
        if g.break_glass || g.state(now) != p360_consent::GrantState::Active || g.end > soon {
            continue;
        }
        let note = Notification {
            id: format!("note-expiring-{}-{}", g.id, g.end.timestamp()),
            patient: patient.clone(),
            at: now,
            kind: "grant_expiring".into(),
            message: format!(
                "Your grant {} to provider {} ends on {}; extend it if they still need access.",
                g.id,
                g.grantee,
                g.end.to_rfc3339()
            ),
            grant_id: Some(g.id.clone()),
        };
        store.notify(&note).await.map_err(store_error)?;
    }
    Ok(())
}

/// `GET /v1/patients/{patient}/notifications`: newest first.
pub(crate) async fn notifications(
    State(state): State<AppState>,
    Path(patient): Path<String>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    let patient = patient_id(&patient)?;
    owner_only(&state, &caller, &patient, "read", "Communication").await?;
    notify_expiring(&state, &patient).await?;
    let list = state
        .consent
        .store()
        .notifications(&patient, 100)
        .await
        .map_err(store_error)?;
    Ok(Json(json!({ "notifications": list })))
}
