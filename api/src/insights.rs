//! Insights for the patient: their care gaps (every measure's status with its evidence) and
//! their tips, with "why am I seeing this", and what they say about a tip. Owner only: these
//! are derived from the whole record, so no grant of some categories could cover them.

use crate::AppState;
use crate::access::owner_only;
use crate::auth::Caller;
use crate::error::{ApiError, parse_json, patient_id, require_json};
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use p360_insights_stage::{InsightsStore, TipState};
use serde::Deserialize;
use serde_json::{Value, json};

fn store(state: &AppState) -> Result<&InsightsStore, ApiError> {
    state
        .insights
        .as_ref()
        .ok_or_else(|| ApiError::Unavailable("insights are not enabled on this server".into()))
}

fn unavailable(e: impl std::fmt::Display) -> ApiError {
    ApiError::Unavailable(format!("insights store: {e}"))
}

#[derive(Debug, Deserialize)]
pub(crate) struct TipsQuery {
    /// Also the dismissed, disputed and resolved tips.
    #[serde(default)]
    all: bool,
}

/// `GET /v1/patients/{patient}/tips`: open tips first, each with its evidence. A patient who
/// has not opted in gets none, and is told how to opt in.
pub(crate) async fn tips(
    State(state): State<AppState>,
    Path(patient): Path<String>,
    Query(q): Query<TipsQuery>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    let patient = patient_id(&patient)?;
    owner_only(&state, &caller, &patient, "read", "Tips").await?;
    let consent = state
        .consent
        .store()
        .analytics(&patient)
        .await
        .map_err(unavailable)?;
    if !consent.personalized_tips {
        return Ok(Json(json!({
            "patient_id": patient,
            "opted_in": false,
            "tips": [],
            "how_to_opt_in": "PUT /v1/patients/{id}/analytics-consent with personalized_tips: true",
        })));
    }
    let store = store(&state)?.clone();
    let p = patient.clone();
    let tips = tokio::task::spawn_blocking(move || store.tips(&p))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .map_err(unavailable)?;
    let tips: Vec<_> = tips
        .into_iter()
        .filter(|t| q.all || t.state == TipState::Open)
        .collect();
    Ok(Json(
        json!({ "patient_id": patient, "opted_in": true, "tips": tips }),
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Feedback {
    /// `dismiss`, `wrong` (with an optional comment) or `reopen`.
    action: String,
    #[serde(default)]
    comment: Option<String>,
}

const MAX_COMMENT: usize = 1000;

/// `POST /v1/patients/{patient}/tips/{tip}/feedback`.
pub(crate) async fn feedback(
    State(state): State<AppState>,
    Path((patient, tip)): Path<(String, String)>,
    caller: Caller,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let patient = patient_id(&patient)?;
    owner_only(&state, &caller, &patient, "write", "Tips").await?;
    require_json(&headers)?;
    let f: Feedback = parse_json(
        &body,
        r#"{"action": "dismiss" | "wrong" | "reopen", "comment": "optional, what is wrong"}"#,
    )?;
    let new_state = match f.action.as_str() {
        "dismiss" => TipState::Dismissed,
        "wrong" => TipState::Wrong,
        "reopen" => TipState::Open,
        _ => {
            return Err(ApiError::BadRequest(
                "action: one of dismiss, wrong, reopen".into(),
            ));
        }
    };
    if f.comment
        .as_ref()
        .is_some_and(|c| c.chars().count() > MAX_COMMENT)
    {
        return Err(ApiError::BadRequest(format!(
            "comment: at most {MAX_COMMENT} characters"
        )));
    }
    if !tip.bytes().all(|b| b.is_ascii_hexdigit()) || tip.len() > 64 {
        return Err(ApiError::BadRequest("tip: a tip id (hex)".into()));
    }
    let store = store(&state)?.clone();
    let now = state.clock.now();
    let p = patient.clone();
    let t = tip.clone();
    tokio::task::spawn_blocking(move || {
        store.feedback(&p, &t, new_state, f.comment.as_deref(), now)
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))?
    .map_err(|e| match e {
        p360_insights_stage::store::StoreError::NoSuchTip(_) => {
            ApiError::NotFound("no such tip for this patient".into())
        }
        other => unavailable(other),
    })?;
    Ok(Json(json!({ "tip": tip, "state": new_state })))
}

/// `GET /v1/patients/{patient}/care-gaps`: every measure's result as of the last change.
pub(crate) async fn care_gaps(
    State(state): State<AppState>,
    Path(patient): Path<String>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    let patient = patient_id(&patient)?;
    owner_only(&state, &caller, &patient, "read", "CareGaps").await?;
    let store = store(&state)?.clone();
    let p = patient.clone();
    let results = tokio::task::spawn_blocking(move || store.results(&p))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .map_err(unavailable)?;
    Ok(Json(json!({ "patient_id": patient, "care_gaps": results })))
}

/// The population dashboards' accesses are recorded in the hash-chained ledger under this
/// reserved id (they are no one patient's: the data is pseudonymized and aggregated).
pub(crate) const POPULATION: &str = "population-analytics";
/// Purpose of use of the dashboards: health-care operations (HL7 v3 PurposeOfUse).
const PURPOSE: &str = "HOPERAT";

fn engine(state: &AppState) -> Result<&dyn p360_insights::dashboards::SqlEngine, ApiError> {
    state
        .dashboards
        .as_deref()
        .ok_or_else(|| ApiError::Unavailable("dashboards are not enabled on this server".into()))
}

/// Payor analysts only; a refusal is recorded like a permit.
async fn analyst(state: &AppState, caller: &Caller, what: &str) -> Result<(), ApiError> {
    let permit = caller.0.role == p360_events::Role::PayorAnalyst;
    let population =
        p360_events::PatientId::parse(POPULATION).map_err(|e| ApiError::Internal(e.to_string()))?;
    let decision = if permit {
        p360_consent::Decision::permit(
            "analyst_population",
            "payor analysts see consenting members' aggregates, small cells suppressed".into(),
        )
    } else {
        p360_consent::Decision::deny(
            "analysts_only",
            "population dashboards are for payor analysts".into(),
        )
    };
    if !permit {
        crate::security::denied(caller, None, decision.rule);
    }
    let entry = state
        .ledger
        .record(p360_consent::ledger::Access {
            at: state.clock.now(),
            patient: population,
            actor: caller.0.user_id.to_string(),
            role: caller.0.role.as_str().to_owned(),
            action: "read".into(),
            resource_types: vec!["Dashboard".into()],
            resource_ids: vec![what.to_owned()],
            resource_count: 1,
            grant_id: None,
            purpose: Some(PURPOSE.into()),
            outcome: if permit { "permit" } else { "deny" }.into(),
            rule: decision.rule.to_owned(),
            break_glass: false,
        })
        .await
        // An access that cannot be recorded does not happen.
        .map_err(|e| ApiError::Unavailable(e.to_string()))?;
    tracing::info!(
        seq = entry.seq,
        dashboard = what,
        outcome = if permit { "permit" } else { "deny" },
        "population dashboard access"
    );
    if permit {
        Ok(())
    } else {
        Err(ApiError::Forbidden(decision.reason))
    }
}

/// `GET /v1/insights/dashboards`: what there is, and the filters each takes.
pub(crate) async fn dashboards(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    analyst(&state, &caller, "index").await?;
    let list: Vec<Value> = p360_insights::dashboards::all()
        .iter()
        .map(|d| json!({ "id": d.id, "title": d.title, "columns": d.columns }))
        .collect();
    Ok(Json(json!({
        "dashboards": list,
        "filters": {
            "plan": "a plan id",
            "age_band": p360_insights::dashboards::AGE_BANDS,
            "sex": ["female", "male"],
            "region": "a US state, two letters",
        },
    })))
}

/// `GET /v1/insights/dashboards/{id}?plan=&age_band=&sex=&region=`: one dashboard over the
/// consenting members, small cells suppressed, as of today.
pub(crate) async fn dashboard(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(params): Query<Vec<(String, String)>>,
    caller: Caller,
) -> Result<Json<p360_insights::dashboards::Published>, ApiError> {
    use p360_insights::dashboards::{DashboardError, Filters, get, publish};
    if get(&id).is_none() {
        return Err(ApiError::NotFound(
            "no such dashboard (GET /v1/insights/dashboards lists them)".into(),
        ));
    }
    let filters = Filters::parse(params.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let what = format!(
        "{id}?{}",
        serde_json::to_string(&filters).unwrap_or_default()
    );
    analyst(&state, &caller, &what).await?;
    let today = state.clock.now().date_naive();
    publish(engine(&state)?, &id, &filters, today)
        .await
        .map(Json)
        .map_err(|e| match e {
            DashboardError::Filter(f) => ApiError::BadRequest(f.to_string()),
            other => ApiError::Unavailable(other.to_string()),
        })
}
