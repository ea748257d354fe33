//! Device readings in: JSON samples of one device, or an Apple Health `export.xml` streamed
//! through a blocking parser. Both are the patient's own writes (`access::owner_only`) and
//! both answer with counts: accepted, duplicates (already stored: idempotent per device,
//! metric and start) and rejected, each rejection by index or line and field, never by value.

use crate::auth::Caller;
use crate::error::{ApiError, parse_json, patient_id, require_json};
use crate::{AppState, access};
use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use futures::StreamExt;
use p360_devices::apple::ChannelReader;
use p360_devices::import::{self, ImportError};
use p360_devices::sample::{self, Device, MAX_SAMPLES};
use p360_devices::store::{self, StoreError, Submission};
use p360_events::ReadingsChannel;
use serde::Deserialize;
use serde_json::{Value, json};

/// Body limit of the JSON route: [`MAX_SAMPLES`] samples of ~150 bytes, with room.
pub(crate) const MAX_JSON_BYTES: usize = 4 * 1024 * 1024;

/// Largest export accepted (Apple Health exports of years of data reach a few GiB).
const MAX_EXPORT_BYTES: u64 = 8 * 1024 * 1024 * 1024;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Readings {
    device: Device,
    samples: Vec<Value>,
}

const SHAPE: &str = r#"{"device": {"id", "name"?, "model"?}, "samples": [{"metric", "start", "end"?, "value", "unit"}]}"#;

fn unavailable(e: StoreError) -> ApiError {
    if e.is_transient() {
        ApiError::Unavailable(e.to_string())
    } else {
        ApiError::Internal(e.to_string())
    }
}

/// Publishes a submission's event, if it has one.
async fn announce(state: &AppState, sub: &Submission) -> Result<(), ApiError> {
    if let Some(event) = &sub.event {
        state
            .publisher
            .publish(std::slice::from_ref(event))
            .await
            .map_err(|e| ApiError::Unavailable(format!("publishing device readings: {e}")))?;
    }
    Ok(())
}

/// `POST /v1/patients/{patient}/device-readings`: up to [`MAX_SAMPLES`] samples of one device.
/// 202 with `accepted`, `duplicates` and `rejected` (`index`, `field`, `reason`); the daily
/// summaries appear in the record once the devices stage and the graph writer have run.
pub(crate) async fn readings(
    State(state): State<AppState>,
    Path(patient): Path<String>,
    caller: Caller,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let patient = patient_id(&patient)?;
    access::owner_only(&state, &caller, &patient, "write", "Observation").await?;
    require_json(&headers)?;
    let r: Readings = parse_json(&body, SHAPE)?;
    sample::check_device(&r.device)
        .map_err(|e| ApiError::Unprocessable(format!("{}: {}", e.field, e.reason)))?;
    if r.samples.is_empty() {
        return Err(ApiError::Unprocessable("samples: at least one".into()));
    }
    if r.samples.len() > MAX_SAMPLES {
        return Err(ApiError::PayloadTooLarge(format!(
            "samples: at most {MAX_SAMPLES} per request; send the rest in further requests"
        )));
    }
    let now = state.clock.now();
    let mut ok = Vec::with_capacity(r.samples.len());
    let mut rejected = Vec::new();
    for (index, v) in r.samples.iter().enumerate() {
        match sample::from_json(&r.device.id, v, now) {
            Ok(s) => ok.push(s),
            Err(e) => rejected.push(json!({"index": index, "field": e.field, "reason": e.reason})),
        }
    }
    let sub = store::submit(
        &**state.ingest.store(),
        &patient,
        &caller.0.user_id,
        ReadingsChannel::Api,
        "/p360/api/device-readings",
        std::slice::from_ref(&r.device),
        ok,
    )
    .await
    .map_err(unavailable)?;
    announce(&state, &sub).await?;
    tracing::info!(patient_id = %patient, accepted = sub.accepted, duplicates = sub.duplicates, rejected = rejected.len(), "device readings");
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({
            "accepted": sub.accepted,
            "duplicates": sub.duplicates,
            "rejected": rejected,
        })),
    ))
}

/// `POST /v1/patients/{patient}/device-readings/apple-health`: the `export.xml` of an Apple
/// Health export as the body (`application/xml`). Read as it streams in and stored in
/// batches, so memory stays bounded. 202 with the counts; 422 with the same counts and the
/// line where reading stopped when the file is truncated or malformed (what was read before
/// it is kept).
pub(crate) async fn apple_health(
    State(state): State<AppState>,
    Path(patient): Path<String>,
    caller: Caller,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let patient = patient_id(&patient)?;
    access::owner_only(&state, &caller, &patient, "write", "Observation").await?;
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !(ct.starts_with("application/xml") || ct.starts_with("text/xml")) {
        return Err(ApiError::UnsupportedMediaType(
            "expected Content-Type: application/xml, the export.xml inside Apple Health's export.zip".into(),
        ));
    }
    // The body flows into a channel that the blocking reader drains (a few frames in flight).
    let (bytes_tx, bytes_rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(4);
    let forward = tokio::spawn(async move {
        let mut stream = body.into_data_stream();
        let mut total = 0u64;
        while let Some(frame) = stream.next().await {
            let (item, too_large) = match frame {
                Ok(b) => {
                    total += b.len() as u64;
                    if total > MAX_EXPORT_BYTES {
                        (Err(std::io::Error::other("too large")), true)
                    } else {
                        (Ok(b), false)
                    }
                }
                Err(_) => (Err(std::io::Error::other("upload interrupted")), false),
            };
            let stop = item.is_err();
            if bytes_tx.send(item).await.is_err() || stop {
                return too_large;
            }
        }
        false
    });
    let input = std::io::BufReader::with_capacity(256 * 1024, ChannelReader::new(bytes_rx));
    let report = import::import(
        input,
        &**state.ingest.store(),
        &*state.publisher,
        &patient,
        &caller.0.user_id,
        "/p360/api/device-readings/apple-health",
        state.clock.now(),
    )
    .await;
    // The reader may stop before the body ends (a malformed file): drop the rest.
    forward.abort();
    let too_large = forward.await.unwrap_or(false);
    let report = report.map_err(|e| match e {
        ImportError::Store(e) => unavailable(e),
        ImportError::Publish(d) => ApiError::Unavailable(d),
        ImportError::Reader(d) => ApiError::Internal(d),
    })?;
    tracing::info!(patient_id = %patient, records = report.records, accepted = report.accepted, duplicates = report.duplicates, rejected = report.rejected, batches = report.batches, "apple health import");
    if too_large {
        return Err(ApiError::PayloadTooLarge(format!(
            "the export is larger than {} GiB; the {} new samples read before the limit were kept",
            MAX_EXPORT_BYTES >> 30,
            report.accepted
        )));
    }
    let mut out = json!({
        "records": report.records,
        "accepted": report.accepted,
        "duplicates": report.duplicates,
        "rejected": report.rejected,
        "unknown_types": report.unknown_types,
        "not_asleep": report.not_asleep,
        "errors": report.errors,
        "complete": report.failure.is_none(),
    });
    match report.failure {
        None => Ok((StatusCode::ACCEPTED, Json(out))),
        Some(f) => {
            out["error"] = json!("unprocessable");
            out["message"] = json!(format!(
                "the export stops being readable at line {}: {}; the {} new samples read before it were kept",
                f.line, f.reason, report.accepted
            ));
            out["line"] = json!(f.line);
            Ok((StatusCode::UNPROCESSABLE_ENTITY, Json(out)))
        }
    }
}
