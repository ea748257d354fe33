//! The built-in token issuer (local mode).
//!
//! One P-256 key, created on first start and kept (PKCS#8 PEM, mode 0600) in the data
//! directory, signs ES256 access tokens. The key id is the key's RFC 7638 thumbprint, so a
//! verifier holding an old JWKS notices a new key by its `kid`.

use crate::{IdentityError, Principal, Role};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use p256::SecretKey;
use p256::pkcs8::{DecodePrivateKey, EncodePrivateKey, LineEnding};
use p360_clock::SharedClock;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::Path;
use std::time::Duration;

/// Claims of a p360 access token. `p360_role` / `p360_patient` carry authorization inputs;
/// Cognito tokens carry the same facts as `cognito:groups` / `custom:patient_id`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub exp: i64,
    pub nbf: i64,
    pub iat: i64,
    pub jti: String,
    pub token_use: String,
    pub p360_role: Role,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p360_patient: Option<String>,
}

pub struct Issuer {
    issuer: String,
    audience: String,
    kid: String,
    encoding: EncodingKey,
    public_jwk: serde_json::Value,
    ttl: Duration,
    clock: SharedClock,
}

impl std::fmt::Debug for Issuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issuer")
            .field("issuer", &self.issuer)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

fn unavailable(e: impl std::fmt::Display) -> IdentityError {
    IdentityError::Unavailable(e.to_string())
}

impl Issuer {
    /// Loads the signing key from `key_path`, creating it if absent.
    pub fn load_or_create(
        key_path: &Path,
        issuer: impl Into<String>,
        audience: impl Into<String>,
        ttl: Duration,
    ) -> Result<Self, IdentityError> {
        let pem = crate::secret_file::load_or_create(key_path, || {
            let secret = SecretKey::random(&mut p256::elliptic_curve::rand_core::OsRng);
            secret
                .to_pkcs8_pem(LineEnding::LF)
                .map(|pem| pem.as_bytes().to_vec())
                .map_err(std::io::Error::other)
        })
        .map_err(unavailable)?;
        let secret = std::str::from_utf8(&pem)
            .ok()
            .and_then(|pem| SecretKey::from_pkcs8_pem(pem).ok())
            .ok_or_else(|| {
                IdentityError::Unavailable(format!(
                    "{} is not a PKCS#8 P-256 private key",
                    key_path.display()
                ))
            })?;
        Self::from_secret(&secret, issuer.into(), audience.into(), ttl)
    }

    fn from_secret(
        secret: &SecretKey,
        issuer: String,
        audience: String,
        ttl: Duration,
    ) -> Result<Self, IdentityError> {
        let pem = secret.to_pkcs8_pem(LineEnding::LF).map_err(unavailable)?;
        let encoding = EncodingKey::from_ec_pem(pem.as_bytes()).map_err(unavailable)?;
        let jwk: serde_json::Value =
            serde_json::from_str(&secret.public_key().to_jwk_string()).map_err(unavailable)?;
        let (x, y) = (jwk["x"].as_str(), jwk["y"].as_str());
        let (Some(x), Some(y)) = (x, y) else {
            return Err(unavailable("public key has no coordinates"));
        };
        // RFC 7638: SHA-256 over the required members in lexicographic order.
        let thumb_input = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
        let kid = URL_SAFE_NO_PAD.encode(Sha256::digest(thumb_input.as_bytes()));
        let public_jwk = serde_json::json!({
            "kty": "EC", "crv": "P-256", "x": x, "y": y,
            "kid": kid, "use": "sig", "alg": "ES256",
        });
        Ok(Self {
            issuer,
            audience,
            kid,
            encoding,
            public_jwk,
            ttl,
            clock: p360_clock::system(),
        })
    }

    /// Stamps tokens with `clock`'s time instead of the system's.
    pub fn with_clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    pub fn audience(&self) -> &str {
        &self.audience
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Signs an access token for `principal`.
    pub fn issue(&self, principal: &Principal) -> Result<String, IdentityError> {
        self.issue_with(principal, self.clock.now().timestamp(), self.ttl)
    }

    /// Signs a token valid from `now` for `ttl` (tests move the clock with this).
    pub fn issue_with(
        &self,
        principal: &Principal,
        now: i64,
        ttl: Duration,
    ) -> Result<String, IdentityError> {
        let claims = Claims {
            iss: self.issuer.clone(),
            sub: principal.user_id.to_string(),
            aud: self.audience.clone(),
            iat: now,
            nbf: now,
            exp: now.saturating_add(i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX)),
            jti: uuid::Uuid::new_v4().to_string(),
            token_use: "access".into(),
            p360_role: principal.role,
            p360_patient: principal.patient_id.as_ref().map(ToString::to_string),
        };
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, &claims, &self.encoding).map_err(unavailable)
    }

    /// The JWKS document (`/.well-known/jwks.json`).
    pub fn jwks(&self) -> serde_json::Value {
        serde_json::json!({ "keys": [self.public_jwk] })
    }

    /// The OpenID Provider metadata (`/.well-known/openid-configuration`).
    pub fn discovery(&self) -> serde_json::Value {
        let base = self.issuer.trim_end_matches('/');
        serde_json::json!({
            "issuer": self.issuer,
            "jwks_uri": format!("{base}/.well-known/jwks.json"),
            "token_endpoint": format!("{base}/auth/token"),
            "grant_types_supported": ["password"],
            "response_types_supported": ["token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["ES256"],
            "token_endpoint_auth_methods_supported": ["none"],
            "claims_supported": ["sub", "iss", "aud", "exp", "nbf", "iat", "p360_role", "p360_patient"],
        })
    }
}
