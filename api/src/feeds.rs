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
use p360_events::{BatchId, Role};
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

/// `GET /v1/feeds/{batch}/review`: the review queue of the batch, with the evidence.
pub(crate) async fn review(
    State(state): State<AppState>,
    Path(batch): Path<String>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    admin(&caller)?;
    let bytes = object(&state, &batch, "_review.ndjson").await?;
    let items: Vec<Value> = String::from_utf8_lossy(&bytes)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    Ok(Json(
        json!({ "batch_id": batch, "total": items.len(), "items": items }),
    ))
}
