//! API errors: each maps to a status code and a JSON body `{"error": code, "message": text}`.
//! Messages say what was wrong and what to do; internal details are logged, never returned,
//! and no message ever echoes request content (it may be patient data or a password).

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    /// Missing or invalid credentials.
    #[error("{0}")]
    Unauthorized(String),
    /// Authenticated, not allowed. The message never says whether the resource exists.
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{0}")]
    Unprocessable(String),
    #[error("{0}")]
    TooManyRequests(String),
    /// A dependency is down: retry later.
    #[error("{0}")]
    Unavailable(String),
    /// A bug. The detail is logged; the client sees a generic message.
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            ApiError::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            ApiError::PayloadTooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            ApiError::UnsupportedMediaType(_) => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
            }
            ApiError::Unprocessable(_) => (StatusCode::UNPROCESSABLE_ENTITY, "unprocessable"),
            ApiError::TooManyRequests(_) => (StatusCode::TOO_MANY_REQUESTS, "too_many_requests"),
            ApiError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let message = match &self {
            ApiError::Internal(detail) => {
                tracing::error!(detail = %detail, "internal error");
                "internal error; the incident was logged".to_owned()
            }
            ApiError::Unavailable(detail) => {
                tracing::warn!(detail = %detail, "dependency unavailable");
                "temporarily unavailable; retry in a few seconds".to_owned()
            }
            other => other.to_string(),
        };
        let mut resp = (status, Json(json!({ "error": code, "message": message }))).into_response();
        if status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"p360\""),
            );
        }
        resp
    }
}

impl From<p360_ingest::IngestError> for ApiError {
    fn from(e: p360_ingest::IngestError) -> Self {
        use p360_ingest::ContentError as C;
        match e {
            p360_ingest::IngestError::Content(c @ C::TooLarge { .. }) => {
                ApiError::PayloadTooLarge(c.to_string())
            }
            p360_ingest::IngestError::Content(c @ C::Unsupported) => {
                ApiError::UnsupportedMediaType(c.to_string())
            }
            p360_ingest::IngestError::Content(c) => ApiError::Unprocessable(c.to_string()),
            p360_ingest::IngestError::Unavailable(d) => ApiError::Unavailable(d),
        }
    }
}

/// Parses a JSON request body. Errors name the problem and its position or the expected
/// shape, never the content (serde quotes offending values, which may be passwords or
/// patient data).
pub(crate) fn parse_json<T: serde::de::DeserializeOwned>(
    body: &[u8],
    expected: &str,
) -> Result<T, ApiError> {
    let value: serde_json::Value = serde_json::from_slice(body).map_err(|e| {
        ApiError::BadRequest(format!(
            "the body is not valid JSON (line {}, column {})",
            e.line(),
            e.column()
        ))
    })?;
    serde_json::from_value(value)
        .map_err(|_| ApiError::Unprocessable(format!("the JSON body must be {expected}")))
}

/// Rejects bodies that do not declare JSON.
pub(crate) fn require_json(headers: &axum::http::HeaderMap) -> Result<(), ApiError> {
    let ct = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if ct.starts_with("application/json") || ct.starts_with("application/fhir+json") {
        Ok(())
    } else {
        Err(ApiError::UnsupportedMediaType(
            "expected Content-Type: application/json".into(),
        ))
    }
}

/// The patient id of a path, or a 400 that says so.
pub(crate) fn patient_id(raw: &str) -> Result<p360_events::PatientId, ApiError> {
    p360_events::PatientId::parse(raw)
        .map_err(|_| ApiError::BadRequest("invalid patient id in the path".into()))
}
