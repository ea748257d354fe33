//! The HTTP API: one axum [`router`] for the patient app, the provider's reads and write-back,
//! the FHIR endpoints and operations. `p360 serve` runs it; the API Lambda (`lambda_http`
//! around the same router) is not built yet.
//!
//! Every route that touches a patient's data authenticates the caller ([`auth::Caller`]) and
//! asks the access decision before reading anything.

mod access;
pub mod auth;
mod devices;
mod documents;
pub mod error;
mod feeds;
mod insights;
pub mod ops;
mod records;
mod review;
pub mod security;
pub mod snapshots;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::routing::{get, post};
use p360_identity::issuer::Issuer;
use p360_identity::users::Directory;
use p360_identity::verify::Verifier;
use p360_ingest::{DocumentRegister, IngestService};
use p360_queue::Queue;
use prometheus_client::registry::Registry;
use std::sync::Arc;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

/// Everything the handlers need; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub verifier: Arc<Verifier>,
    /// The built-in issuer (local mode); `None` with an external identity provider.
    pub issuer: Option<Arc<Issuer>>,
    /// The local user directory; `None` with an external identity provider.
    pub directory: Option<Directory>,
    pub ingest: IngestService,
    pub register: DocumentRegister,
    /// Where manual entries are announced.
    pub publisher: Arc<dyn p360_queue::Publisher>,
    /// The patient graph (read path).
    pub graph: Arc<dyn p360_graph::GraphStore>,
    pub queue: Arc<dyn Queue>,
    /// Queues reported by `/health` and `/metrics`.
    pub queues: Arc<Vec<String>>,
    pub registry: Arc<Registry>,
    pub queue_depth: ops::QueueDepth,
    pub login_limiter: Arc<auth::LoginLimiter>,
    /// Search results kept for paging (`_snapshot` tokens in `next` links).
    pub snapshots: Arc<snapshots::Snapshots>,
    /// Consent categories of facts already read (providers' reads filter on them).
    pub categories: Arc<snapshots::Categories>,
    /// The policy decision point (over the consent store).
    pub consent: p360_consent::Pdp,
    /// The patient-visible access ledger.
    pub ledger: p360_consent::ledger::Ledger,
    pub grant_limits: p360_consent::GrantLimits,
    /// Who may open a record in an emergency, and how often.
    pub break_glass: p360_consent::BreakGlassPolicy,
    /// The one clock of every decision, grant period, token check and ledger timestamp.
    pub clock: p360_clock::SharedClock,
    /// Grants whose first use the patient has been told of (see `access::notify_first_use`).
    pub notified: Arc<std::sync::Mutex<std::collections::HashSet<String>>>,
    /// Care gaps and tips (written by the insights stage); `None` when not configured.
    pub insights: Option<p360_insights_stage::InsightsStore>,
    /// The SQL engine of the population dashboards (DataFusion over the local lake).
    pub dashboards: Option<Arc<dyn p360_insights::dashboards::SqlEngine>>,
}

/// Multipart framing on top of the file itself.
const MULTIPART_OVERHEAD: usize = 64 * 1024;

pub fn router(state: AppState) -> Router {
    let upload_limit = state.ingest.limits().max_bytes + MULTIPART_OVERHEAD;
    let x_request_id = axum::http::HeaderName::from_static("x-request-id");
    Router::new()
        .route("/health", get(ops::health))
        .route("/metrics", get(ops::metrics))
        .route("/openapi.json", get(ops::openapi))
        .route("/.well-known/openid-configuration", get(auth::discovery))
        .route("/.well-known/jwks.json", get(auth::jwks))
        .route("/auth/token", post(auth::token))
        .route("/v1/me", get(auth::me))
        .route(
            "/v1/patients/{patient}/documents",
            post(documents::upload)
                .layer(DefaultBodyLimit::max(upload_limit))
                .get(documents::list),
        )
        .route(
            "/v1/patients/{patient}/observations",
            post(records::add_observation),
        )
        .route(
            "/fhir/Patient/{patient}/$everything",
            get(records::everything),
        )
        .route("/fhir/Observation", get(records::search_observations))
        .route(
            "/v1/patients/{patient}/documents/{document}",
            get(documents::get),
        )
        .route(
            "/v1/patients/{patient}/documents/{document}/content",
            get(documents::content),
        )
        .route(
            "/v1/patients/{patient}/documents/{document}/extraction",
            get(review::list),
        )
        .route(
            "/v1/patients/{patient}/documents/{document}/extraction/{fact}",
            post(review::decide),
        )
        .route(
            "/v1/patients/{patient}/documents/{document}/pages/{page}/image",
            get(review::page_image),
        )
        .route(
            "/v1/patients/{patient}/grants",
            post(access::create_grant).get(access::list_grants),
        )
        .route(
            "/v1/patients/{patient}/grants/{grant}",
            get(access::get_grant).patch(access::change_grant),
        )
        .route(
            "/v1/patients/{patient}/grants/{grant}/revoke",
            post(access::revoke_grant),
        )
        .route("/v1/patients/{patient}/ledger", get(access::ledger))
        .route("/v1/patients/{patient}/access", get(access::explain))
        .route(
            "/v1/patients/{patient}/analytics-consent",
            get(access::get_analytics).put(access::put_analytics),
        )
        .route("/v1/patients/{patient}/tips", get(insights::tips))
        .route(
            "/v1/patients/{patient}/tips/{tip}/feedback",
            post(insights::feedback),
        )
        .route("/v1/patients/{patient}/care-gaps", get(insights::care_gaps))
        .route("/v1/insights/dashboards", get(insights::dashboards))
        .route("/v1/insights/dashboards/{id}", get(insights::dashboard))
        .route("/v1/providers/me/patients", get(access::my_patients))
        .route(
            "/v1/patients/{patient}/break-glass",
            post(access::break_glass),
        )
        .route(
            "/v1/patients/{patient}/break-glass-opt-out",
            get(access::get_break_glass_opt_out).put(access::put_break_glass_opt_out),
        )
        .route("/v1/admin/break-glass", get(access::review_break_glass))
        .route("/v1/feeds/{batch}", get(feeds::report))
        .route("/v1/feeds/{batch}/review", get(feeds::review))
        .route("/v1/feeds/{batch}/review/{identity}", post(feeds::decide))
        .route("/v1/feeds/{batch}/unlink", post(feeds::unlink))
        .route(
            "/v1/patients/{patient}/notifications",
            get(access::notifications),
        )
        .route(
            "/v1/patients/{patient}/episodes",
            post(records::add_episode),
        )
        .route(
            "/v1/patients/{patient}/device-readings",
            post(devices::readings).layer(DefaultBodyLimit::max(devices::MAX_JSON_BYTES)),
        )
        .route(
            "/v1/patients/{patient}/device-readings/apple-health",
            post(devices::apple_health).layer(DefaultBodyLimit::disable()),
        )
        .fallback(|| async { error::ApiError::NotFound("no such endpoint".into()) })
        .layer(CatchPanicLayer::custom(|_| {
            axum::response::IntoResponse::into_response(error::ApiError::Internal(
                "handler panicked".into(),
            ))
        }))
        .layer(
            // Spans carry the route template, never the concrete path or query (ids are fine
            // in logs, but queries will carry search terms).
            TraceLayer::new_for_http().make_span_with(|req: &Request| {
                let route = req
                    .extensions()
                    .get::<MatchedPath>()
                    .map_or("unmatched", MatchedPath::as_str);
                let request_id = req
                    .headers()
                    .get("x-request-id")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("");
                tracing::info_span!("http", method = %req.method(), route, request_id)
            }),
        )
        .layer(PropagateRequestIdLayer::new(x_request_id.clone()))
        .layer(SetRequestIdLayer::new(x_request_id, MakeRequestUuid))
        .with_state(state)
}
