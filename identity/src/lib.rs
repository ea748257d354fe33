//! Identity: who is calling.
//!
//! - [`issuer::Issuer`]: the built-in OIDC-style issuer of local mode. It signs ES256 JWTs with
//!   a key kept in the data directory and publishes the public key as a JWKS and an OpenID
//!   discovery document.
//! - [`verify::Verifier`]: checks a bearer token against a JWKS (issuer, audience, expiry,
//!   not-before, algorithm pinned). It verifies the built-in issuer's tokens and Amazon Cognito
//!   user-pool tokens the same way; only configuration differs.
//! - [`users::Directory`]: the user accounts of local mode (argon2 password hashes).
//!
//! The result of authentication is a [`Principal`]: a user id, a role and, for a patient, the
//! patient record they own. Authorization (which patient's data a principal may touch) is
//! decided elsewhere, from the principal alone.

pub mod issuer;
pub mod users;
pub mod verify;

use p360_events::{PatientId, UserId};
use serde::{Deserialize, Serialize};
use std::fmt;

/// What a user is to the system.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Patient,
    Provider,
    PayorAnalyst,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Patient => "patient",
            Role::Provider => "provider",
            Role::PayorAnalyst => "payor_analyst",
            Role::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Role {
    type Err = IdentityError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "patient" => Ok(Role::Patient),
            "provider" => Ok(Role::Provider),
            "payor_analyst" | "analyst" => Ok(Role::PayorAnalyst),
            "admin" => Ok(Role::Admin),
            _ => Err(IdentityError::Invalid(
                "role must be one of patient, provider, payor_analyst, admin".into(),
            )),
        }
    }
}

/// An authenticated caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    pub user_id: UserId,
    pub role: Role,
    /// The record a patient owns; `None` for other roles.
    pub patient_id: Option<PatientId>,
}

impl Principal {
    /// Whether this principal is the patient who owns `patient`'s record.
    pub fn owns(&self, patient: &PatientId) -> bool {
        self.role == Role::Patient && self.patient_id.as_ref() == Some(patient)
    }
}

/// Identity errors. Messages say what failed, never a token, password or personal data.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityError {
    #[error("invalid token: {0}")]
    InvalidToken(String),
    #[error("invalid credentials")]
    InvalidCredentials,
    #[error("{0}")]
    Invalid(String),
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("identity store unavailable: {0}")]
    Unavailable(String),
}
