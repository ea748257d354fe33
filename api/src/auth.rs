//! Authentication (bearer tokens) and the login endpoint of local mode.

use crate::AppState;
use crate::error::{ApiError, parse_json, require_json};
use axum::Json;
use axum::body::Bytes;
use axum::extract::{FromRequestParts, State};
use axum::http::HeaderMap;
use axum::http::header;
use axum::http::request::Parts;
use p360_identity::{IdentityError, Principal};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The authenticated caller, extracted from `Authorization: Bearer <token>`.
#[derive(Debug, Clone)]
pub struct Caller(pub Principal);

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let refused = |why: &str| {
            crate::security::token_refused(why);
            ApiError::Unauthorized(why.to_owned())
        };
        let header = parts
            .headers
            .get(header::AUTHORIZATION)
            .ok_or_else(|| refused("missing Authorization header (Bearer token)"))?
            .to_str()
            .map_err(|_| refused("malformed Authorization header"))?;
        let token = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .ok_or_else(|| refused("the Authorization header must be 'Bearer <token>'"))?
            .trim();
        let principal = state.verifier.verify(token).await.map_err(|e| match e {
            IdentityError::Unavailable(d) => ApiError::Unavailable(d),
            other => refused(&other.to_string()),
        })?;
        // In local mode the directory knows the accounts: a disabled or deleted account's
        // tokens stop working at once, not when they expire.
        if let Some(dir) = &state.directory {
            let user = dir
                .get(&principal.user_id)
                .map_err(|e| ApiError::Unavailable(e.to_string()))?;
            if !user.is_some_and(|u| u.active) {
                tracing::warn!(
                    target: crate::security::TARGET,
                    event = "token_refused",
                    user_id = %principal.user_id,
                    reason = "disabled or deleted account",
                    "token refused"
                );
                return Err(ApiError::Unauthorized(
                    "the account of this token is disabled or deleted".into(),
                ));
            }
        }
        Ok(Caller(principal))
    }
}

#[derive(Deserialize)]
pub(crate) struct Login {
    username: String,
    password: String,
}

/// Failed logins per username within a window: brute force gets 429s, not guesses.
#[derive(Debug, Default)]
pub struct LoginLimiter {
    failures: Mutex<HashMap<String, Vec<Instant>>>,
}

const WINDOW: Duration = Duration::from_secs(300);
const MAX_FAILURES: usize = 5;

impl LoginLimiter {
    fn blocked(&self, username: &str) -> bool {
        let mut map = self
            .failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let entry = map.entry(username.to_owned()).or_default();
        entry.retain(|t| t.elapsed() < WINDOW);
        entry.len() >= MAX_FAILURES
    }

    fn failed(&self, username: &str) {
        let mut map = self
            .failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if map.len() > 100_000 {
            map.retain(|_, v| v.last().is_some_and(|t| t.elapsed() < WINDOW));
        }
        map.entry(username.to_owned())
            .or_default()
            .push(Instant::now());
    }

    fn succeeded(&self, username: &str) {
        self.failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(username);
    }
}

/// `POST /auth/token` `{"username", "password"}` → an access token (local mode only).
pub(crate) async fn token(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    require_json(&headers)?;
    let login: Login = parse_json(&body, r#"{"username": string, "password": string}"#)?;
    let (Some(issuer), Some(dir)) = (state.issuer.clone(), state.directory.clone()) else {
        return Err(ApiError::NotFound(
            "this deployment uses an external identity provider; log in there".into(),
        ));
    };
    if state.login_limiter.blocked(&login.username) {
        return Err(ApiError::TooManyRequests(
            "too many failed logins for this account; wait five minutes".into(),
        ));
    }
    let username = login.username.clone();
    let user =
        tokio::task::spawn_blocking(move || dir.authenticate(&login.username, &login.password))
            .await
            .map_err(|e| ApiError::Internal(e.to_string()))?;
    let user = match user {
        Ok(u) => u,
        Err(IdentityError::InvalidCredentials) => {
            state.login_limiter.failed(&username);
            return Err(ApiError::Unauthorized("wrong username or password".into()));
        }
        Err(e) => return Err(ApiError::Unavailable(e.to_string())),
    };
    state.login_limiter.succeeded(&username);
    let token = issuer
        .issue(&user.principal())
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(Json(json!({
        "access_token": token,
        "token_type": "Bearer",
        "expires_in": issuer.ttl().as_secs(),
    })))
}

/// `GET /v1/me`: who the token speaks for.
pub(crate) async fn me(Caller(p): Caller) -> Json<Value> {
    Json(json!({
        "user_id": p.user_id,
        "role": p.role,
        "patient_id": p.patient_id,
    }))
}

pub(crate) async fn jwks(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let issuer = state
        .issuer
        .as_ref()
        .ok_or_else(|| ApiError::NotFound("no built-in issuer in this deployment".into()))?;
    Ok(Json(issuer.jwks()))
}

pub(crate) async fn discovery(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let issuer = state
        .issuer
        .as_ref()
        .ok_or_else(|| ApiError::NotFound("no built-in issuer in this deployment".into()))?;
    Ok(Json(issuer.discovery()))
}
