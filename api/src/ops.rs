//! Operations endpoints: `/health` and Prometheus `/metrics`. No patient data in either.

use crate::AppState;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use serde_json::json;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QueueLabel {
    pub queue: String,
    /// `ready`, `in_flight`, `delayed`, `dead`.
    pub state: String,
}

/// Queue depth gauges, refreshed from the queue on every scrape.
pub type QueueDepth = Family<QueueLabel, Gauge>;

pub(crate) async fn health(State(state): State<AppState>) -> Response {
    let mut failing = Vec::new();
    for q in state.queues.iter() {
        if let Err(e) = state.queue.stats(q).await {
            tracing::warn!(queue = %q, error = %e, "health: queue check failed");
            failing.push(q.clone());
        }
    }
    if failing.is_empty() {
        (StatusCode::OK, axum::Json(json!({"status": "ok"}))).into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(json!({"status": "degraded", "failing_queues": failing})),
        )
            .into_response()
    }
}

pub(crate) async fn metrics(State(state): State<AppState>) -> Response {
    for q in state.queues.iter() {
        match state.queue.stats(q).await {
            Ok(s) => {
                for (name, v) in [
                    ("ready", s.ready),
                    ("in_flight", s.in_flight),
                    ("delayed", s.delayed),
                    ("dead", s.dead),
                ] {
                    state
                        .queue_depth
                        .get_or_create(&QueueLabel {
                            queue: q.clone(),
                            state: name.to_owned(),
                        })
                        .set(i64::try_from(v).unwrap_or(i64::MAX));
                }
            }
            Err(e) => tracing::warn!(queue = %q, error = %e, "metrics: queue stats failed"),
        }
    }
    let mut body = String::new();
    if let Err(e) = prometheus_client::encoding::text::encode(&mut body, &state.registry) {
        tracing::error!(error = %e, "metrics encoding failed");
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        body,
    )
        .into_response()
}

/// The API's OpenAPI 3.1 description (`api/openapi/openapi.json`; a test keeps it in step with
/// the router).
pub const OPENAPI: &str = include_str!("../openapi/openapi.json");

/// `GET /openapi.json`.
pub(crate) async fn openapi() -> Response {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        OPENAPI,
    )
        .into_response()
}
