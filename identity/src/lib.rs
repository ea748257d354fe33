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
pub mod secret_file;
pub mod users;
pub mod verify;

use p360_events::{PatientId, UserId};

/// A user's role (patient, provider, payor analyst, admin): the events crate's [`Role`],
/// parsed with [`parse_role`] so that no account can hold the `system` role.
pub use p360_events::Role;

/// Parses a user account's role.
pub fn parse_role(s: &str) -> Result<Role, IdentityError> {
    Role::parse_user_role(s).ok_or_else(|| {
        IdentityError::Invalid("role must be one of patient, provider, payor_analyst, admin".into())
    })
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
