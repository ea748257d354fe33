//! Payor feed batches, for the payor's staff (administrator accounts): a batch's report
//! (counts; every bad record by file and line, values never quoted) and its review queue (the
//! held record–member pairs with each field's comparison). Written by the enrich stage under
//! `feeds/<batch>/`; no patient record is read here.

use crate::AppState;
use crate::auth::Caller;
use crate::error::ApiError;
use axum::Json;
use axum::extract::{Path, State};
use object_store::ObjectStoreExt;
use object_store::path::Path as ObjectPath;
use p360_enrich::decisions::{self, Action, DecisionError};
use p360_events::{BatchId, Role};
use serde::Deserialize;
use serde_json::{Value, json};

fn admin(caller: &Caller) -> Result<(), ApiError> {
    if caller.0.role != Role::Admin {
        crate::security::denied(caller, None, "admins_only");
        return Err(ApiError::Forbidden("for administrator accounts".into()));
    }
    Ok(())
}

async fn object(state: &AppState, batch: &str, name: &str) -> Result<bytes::Bytes, ApiError> {
    let batch = BatchId::parse(batch)
        .map_err(|_| ApiError::BadRequest("batch: letters, digits, . _ : - only".into()))?;
    let key = ObjectPath::from(format!("feeds/{batch}/{name}"));
    match state.ingest.store().get(&key).await {
        Ok(r) => r
            .bytes()
            .await
            .map_err(|e| ApiError::Unavailable(e.to_string())),
        Err(object_store::Error::NotFound { .. }) => Err(ApiError::NotFound(
            "no report for this batch: not submitted, or still being resolved".into(),
        )),
        Err(e) => Err(ApiError::Unavailable(e.to_string())),
    }
}

/// `GET /v1/feeds/{batch}`: the batch report.
pub(crate) async fn report(
    State(state): State<AppState>,
    Path(batch): Path<String>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    admin(&caller)?;
    let bytes = object(&state, &batch, "_report.json").await?;
    let v: Value = serde_json::from_slice(&bytes)
        .map_err(|_| ApiError::Internal("the stored batch report is not JSON".into()))?;
    Ok(Json(v))
}

/// `GET /v1/feeds/{batch}/review`: the review queue of the batch, with the evidence of each
/// comparison, where each item stands and its decisions.
pub(crate) async fn review(
    State(state): State<AppState>,
    Path(batch): Path<String>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    admin(&caller)?;
    let batch = batch_id(&batch)?;
    let items = decisions::queue(&**state.ingest.store(), &batch)
        .await
        .map_err(decision_error)?;
    Ok(Json(
        json!({ "batch_id": batch, "total": items.len(), "items": items }),
    ))
}

fn batch_id(batch: &str) -> Result<BatchId, ApiError> {
    BatchId::parse(batch)
        .map_err(|_| ApiError::BadRequest("batch: letters, digits, . _ : - only".into()))
}

fn decision_error(e: DecisionError) -> ApiError {
    match e {
        DecisionError::NotResolved(_)
        | DecisionError::UnknownIdentity(..)
        | DecisionError::UnknownRecord(..) => ApiError::NotFound(e.to_string()),
        DecisionError::NotAllowed { .. } | DecisionError::Conflict(_) => {
            ApiError::Conflict(e.to_string())
        }
        DecisionError::Corrupt(_) => ApiError::Internal(e.to_string()),
        DecisionError::Store(_) => ApiError::Unavailable(e.to_string()),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReviewDecision {
    /// `accept` or `reject`.
    decision: String,
}

/// `POST /v1/feeds/{batch}/review/{identity}`: accept (the held facts join the candidate's
/// record) or reject a held identity. Recorded with who and when.
pub(crate) async fn decide(
    State(state): State<AppState>,
    Path((batch, identity)): Path<(String, u32)>,
    caller: Caller,
    Json(body): Json<ReviewDecision>,
) -> Result<Json<Value>, ApiError> {
    admin(&caller)?;
    let action = match Action::parse(&body.decision) {
        Some(a @ (Action::Accept | Action::Reject)) => a,
        _ => {
            return Err(ApiError::BadRequest(
                "decision: accept or reject (to undo a link, POST …/unlink)".into(),
            ));
        }
    };
    record(&state, &caller, &batch_id(&batch)?, identity, action).await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Unlink {
    /// The identity (as in the review queue and `_links.ndjson`), or a person-record by
    /// `source` file and `record` key.
    identity: Option<u32>,
    source: Option<String>,
    record: Option<String>,
}

/// `POST /v1/feeds/{batch}/unlink`: undoes a link (the matcher's or an accepted review): the
/// identity's source records are removed from the member's facts; a fact with no other source
/// is removed, the others keep their other sources.
pub(crate) async fn unlink(
    State(state): State<AppState>,
    Path(batch): Path<String>,
    caller: Caller,
    Json(body): Json<Unlink>,
) -> Result<Json<Value>, ApiError> {
    admin(&caller)?;
    let batch = batch_id(&batch)?;
    let identity = match (body.identity, body.source, body.record) {
        (Some(i), None, None) => i,
        (None, Some(source), Some(record)) => {
            decisions::identity_of(&**state.ingest.store(), &batch, &source, &record)
                .await
                .map_err(decision_error)?
        }
        _ => {
            return Err(ApiError::BadRequest(
                "name the identity, or the person-record by source and record".into(),
            ));
        }
    };
    record(&state, &caller, &batch, identity, Action::Unlink).await
}

async fn record(
    state: &AppState,
    caller: &Caller,
    batch: &BatchId,
    identity: u32,
    action: Action,
) -> Result<Json<Value>, ApiError> {
    let store = state.ingest.store();
    let (decision, event) = decisions::decide(
        &**store,
        batch,
        identity,
        action,
        caller.0.user_id.as_str(),
        state.clock.now(),
    )
    .await
    .map_err(decision_error)?;
    // Recorded: the outbox publishes the event later if this publish fails.
    if let Some(e) = event {
        match state.publisher.publish(&[e]).await {
            Ok(()) => {
                if let Err(err) = decisions::sent(&**store, &decision).await {
                    tracing::warn!(batch_id = %batch, identity, error = %err, "marking a decision sent failed; the outbox will publish it again");
                }
            }
            Err(err) => {
                tracing::warn!(batch_id = %batch, identity, error = %err, "publishing a decision failed; the outbox will retry");
            }
        }
    }
    tracing::info!(batch_id = %batch, identity, action = ?decision.action, decided_by = %decision.decided_by, "feed decision recorded");
    Ok(Json(serde_json::to_value(&decision).unwrap_or_default()))
}
