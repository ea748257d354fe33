//! Bearer-token verification through a JWKS.
//!
//! What is checked, in order: the header's algorithm is one of the pinned ones (so `alg: none`
//! and HS/RS confusion are refused before any key is touched); the `kid` names a key of the
//! JWKS (an unknown `kid` refreshes a remote JWKS at most once a minute, for key rotation); the
//! signature; `iss`; `aud` (or Cognito's `client_id`, since Cognito access tokens carry no
//! `aud`); `exp` and `nbf` with a small leeway. Then the claims are mapped to a [`Principal`].

use crate::{IdentityError, Principal, Role};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation, errors::ErrorKind};
use p360_clock::SharedClock;
use p360_events::{PatientId, UserId};
use std::time::{Duration, Instant};
use tokio::sync::RwLock;

/// Where the verification keys come from.
#[derive(Clone, Debug)]
pub enum JwksSource {
    /// Keys known in process (the built-in issuer's).
    Static(JwkSet),
    /// A JWKS URL, e.g. `https://cognito-idp.<region>.amazonaws.com/<pool>/.well-known/jwks.json`.
    Url(String),
}

#[derive(Clone, Debug)]
pub struct VerifierConfig {
    pub issuer: String,
    pub audience: String,
    /// The only algorithms accepted: ES256 for the built-in issuer, RS256 for Cognito.
    pub algorithms: Vec<Algorithm>,
    pub jwks: JwksSource,
    /// Clock skew tolerated on `exp` / `nbf`.
    pub leeway: Duration,
}

pub struct Verifier {
    config: VerifierConfig,
    keys: RwLock<(JwkSet, Option<Instant>)>,
    http: reqwest::Client,
    /// `exp` and `nbf` are checked against this clock, not the library's (tests move it).
    clock: SharedClock,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("issuer", &self.config.issuer)
            .finish_non_exhaustive()
    }
}

const MIN_REFRESH: Duration = Duration::from_secs(60);

fn invalid(why: impl Into<String>) -> IdentityError {
    IdentityError::InvalidToken(why.into())
}

impl Verifier {
    pub fn new(config: VerifierConfig) -> Self {
        let keys = match &config.jwks {
            JwksSource::Static(set) => set.clone(),
            JwksSource::Url(_) => JwkSet { keys: Vec::new() },
        };
        Self {
            config,
            keys: RwLock::new((keys, None)),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()
                .unwrap_or_default(),
            clock: p360_clock::system(),
        }
    }

    /// Checks expiry against `clock` instead of the system clock.
    pub fn with_clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// Fetches the remote JWKS (no-op for static keys). Also called on an unknown `kid`.
    pub async fn refresh(&self) -> Result<(), IdentityError> {
        let JwksSource::Url(url) = &self.config.jwks else {
            return Ok(());
        };
        let set: JwkSet = self
            .http
            .get(url)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|e| IdentityError::Unavailable(format!("fetching JWKS: {e}")))?
            .json()
            .await
            .map_err(|e| IdentityError::Unavailable(format!("JWKS is not a key set: {e}")))?;
        *self.keys.write().await = (set, Some(Instant::now()));
        Ok(())
    }

    async fn key(&self, kid: &str) -> Result<jsonwebtoken::jwk::Jwk, IdentityError> {
        if let Some(k) = self.keys.read().await.0.find(kid) {
            return Ok(k.clone());
        }
        let stale = self
            .keys
            .read()
            .await
            .1
            .is_none_or(|at| at.elapsed() >= MIN_REFRESH);
        if stale {
            self.refresh().await?;
            if let Some(k) = self.keys.read().await.0.find(kid) {
                return Ok(k.clone());
            }
        }
        Err(invalid("signed with an unknown key"))
    }

    /// Verifies `token` and returns who it speaks for.
    pub async fn verify(&self, token: &str) -> Result<Principal, IdentityError> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| invalid("malformed token or unsupported algorithm"))?;
        if !self.config.algorithms.contains(&header.alg) {
            return Err(invalid(format!(
                "algorithm {:?} is not allowed",
                header.alg
            )));
        }
        let kid = header.kid.ok_or_else(|| invalid("token has no key id"))?;
        let jwk = self.key(&kid).await?;
        let key = DecodingKey::from_jwk(&jwk).map_err(|_| invalid("unusable key in JWKS"))?;

        let mut validation = Validation::new(header.alg);
        validation.algorithms = self.config.algorithms.clone();
        validation.set_issuer(&[&self.config.issuer]);
        validation.set_required_spec_claims(&["exp", "iss", "sub"]);
        // Expiry and not-before are checked below against our clock (the library's reads the
        // system time, which tests cannot move).
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false; // checked below: `aud` or Cognito's `client_id`

        let data = jsonwebtoken::decode::<serde_json::Value>(token, &key, &validation).map_err(
            |e| match e.kind() {
                ErrorKind::ExpiredSignature => invalid("token expired"),
                ErrorKind::ImmatureSignature => invalid("token not valid yet"),
                ErrorKind::InvalidIssuer => invalid("wrong issuer"),
                ErrorKind::InvalidSignature => invalid("bad signature"),
                ErrorKind::InvalidAlgorithm => invalid("algorithm does not match the key"),
                ErrorKind::MissingRequiredClaim(c) => invalid(format!("missing claim {c}")),
                _ => invalid("malformed token"),
            },
        )?;
        let claims = data.claims;
        let now = self.clock.now().timestamp();
        let leeway = i64::try_from(self.config.leeway.as_secs()).unwrap_or(i64::MAX);
        let exp = claims["exp"]
            .as_i64()
            .ok_or_else(|| invalid("malformed token"))?;
        if exp.saturating_add(leeway) <= now {
            return Err(invalid("token expired"));
        }
        if let Some(nbf) = claims.get("nbf") {
            let nbf = nbf.as_i64().ok_or_else(|| invalid("malformed token"))?;
            if nbf.saturating_sub(leeway) > now {
                return Err(invalid("token not valid yet"));
            }
        }
        let audience_ok = match &claims["aud"] {
            serde_json::Value::String(a) => *a == self.config.audience,
            serde_json::Value::Array(v) => v.iter().any(|a| *a == *self.config.audience),
            _ => claims["client_id"] == *self.config.audience,
        };
        if !audience_ok {
            return Err(invalid("wrong audience"));
        }
        principal_from_claims(&claims)
    }
}

/// Maps claims to a principal: p360's own claims, or Cognito's (`cognito:groups` holding a
/// role name, `custom:patient_id`).
fn principal_from_claims(claims: &serde_json::Value) -> Result<Principal, IdentityError> {
    let sub = claims["sub"].as_str().unwrap_or_default();
    let user_id = UserId::parse(sub).map_err(|_| invalid("subject is not a valid user id"))?;
    let role = match claims["p360_role"].as_str() {
        Some(r) => Role::parse_user_role(r).ok_or_else(|| invalid("unknown role"))?,
        None => claims["cognito:groups"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|g| Role::parse_user_role(g.as_str()?))
            .next()
            .ok_or_else(|| invalid("token carries no role"))?,
    };
    let patient = claims["p360_patient"]
        .as_str()
        .or_else(|| claims["custom:patient_id"].as_str());
    let patient_id = match (role, patient) {
        (Role::Patient, Some(p)) => {
            Some(PatientId::parse(p).map_err(|_| invalid("invalid patient id claim"))?)
        }
        (Role::Patient, None) => return Err(invalid("patient token without a patient id")),
        _ => None,
    };
    Ok(Principal {
        user_id,
        role,
        patient_id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::issuer::Issuer;
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    fn issuer(dir: &tempfile::TempDir, name: &str) -> Issuer {
        Issuer::load_or_create(
            &dir.path().join(format!("{name}.pem")),
            "http://127.0.0.1:8360",
            "p360",
            Duration::from_secs(900),
        )
        .unwrap()
    }

    fn verifier(iss: &Issuer) -> Verifier {
        Verifier::new(VerifierConfig {
            issuer: iss.issuer().to_owned(),
            audience: iss.audience().to_owned(),
            algorithms: vec![Algorithm::ES256],
            jwks: JwksSource::Static(serde_json::from_value(iss.jwks()).unwrap()),
            leeway: Duration::from_secs(5),
        })
    }

    fn patient() -> Principal {
        Principal {
            user_id: UserId::parse("usr-1").unwrap(),
            role: Role::Patient,
            patient_id: Some(PatientId::parse("pat-1").unwrap()),
        }
    }

    fn err(r: Result<Principal, IdentityError>) -> String {
        r.unwrap_err().to_string()
    }

    #[tokio::test]
    async fn round_trip_and_key_persistence() {
        let dir = tempfile::tempdir().unwrap();
        let iss = issuer(&dir, "k");
        let token = iss.issue(&patient()).unwrap();
        assert_eq!(verifier(&iss).verify(&token).await.unwrap(), patient());
        // Reloading the same key file yields the same key: old tokens stay valid.
        let again = issuer(&dir, "k");
        assert_eq!(again.jwks(), iss.jwks());
        assert!(verifier(&again).verify(&token).await.is_ok());
    }

    #[tokio::test]
    async fn refuses_forged_expired_and_misdirected_tokens() {
        let dir = tempfile::tempdir().unwrap();
        let iss = issuer(&dir, "k");
        let v = verifier(&iss);
        let now = chrono::Utc::now().timestamp();

        // Signed by another key: refused by its unknown kid...
        let rogue = issuer(&dir, "rogue");
        let forged = rogue.issue(&patient()).unwrap();
        assert!(err(v.verify(&forged).await).contains("unknown key"));
        // ...and by its signature when it claims the real key's kid.
        let mut header = jsonwebtoken::Header::new(Algorithm::ES256);
        header.kid = iss.jwks()["keys"][0]["kid"].as_str().map(str::to_owned);
        let rogue_pem = std::fs::read(dir.path().join("rogue.pem")).unwrap();
        let claims = jsonwebtoken::dangerous::insecure_decode::<serde_json::Value>(&forged)
            .unwrap()
            .claims;
        let forged = jsonwebtoken::encode(
            &header,
            &claims,
            &jsonwebtoken::EncodingKey::from_ec_pem(&rogue_pem).unwrap(),
        )
        .unwrap();
        assert_eq!(err(v.verify(&forged).await), "invalid token: bad signature");

        let expired = iss
            .issue_with(&patient(), now - 3600, Duration::from_secs(60))
            .unwrap();
        assert_eq!(
            err(v.verify(&expired).await),
            "invalid token: token expired"
        );

        let future = iss
            .issue_with(&patient(), now + 3600, Duration::from_secs(60))
            .unwrap();
        assert_eq!(
            err(v.verify(&future).await),
            "invalid token: token not valid yet"
        );

        let other_aud = Issuer::load_or_create(
            &dir.path().join("k.pem"),
            iss.issuer(),
            "someone-else",
            Duration::from_secs(60),
        )
        .unwrap()
        .issue(&patient())
        .unwrap();
        assert_eq!(
            err(v.verify(&other_aud).await),
            "invalid token: wrong audience"
        );

        let other_iss = Issuer::load_or_create(
            &dir.path().join("k.pem"),
            "https://evil.example",
            "p360",
            Duration::from_secs(60),
        )
        .unwrap()
        .issue(&patient())
        .unwrap();
        assert_eq!(
            err(v.verify(&other_iss).await),
            "invalid token: wrong issuer"
        );

        // alg: none, with the signature stripped.
        let good = iss.issue(&patient()).unwrap();
        let payload = good.split('.').nth(1).unwrap();
        let none_header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
        assert!(
            err(v.verify(&format!("{none_header}.{payload}.")).await).contains("invalid token")
        );

        // A tampered payload breaks the signature.
        let mut claims: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
        claims["p360_role"] = "admin".into();
        let parts: Vec<&str> = good.split('.').collect();
        let tampered = format!(
            "{}.{}.{}",
            parts[0],
            URL_SAFE_NO_PAD.encode(claims.to_string()),
            parts[2]
        );
        assert_eq!(
            err(v.verify(&tampered).await),
            "invalid token: bad signature"
        );

        assert!(err(v.verify("garbage").await).contains("malformed"));
    }

    #[test]
    fn cognito_claims_map_to_principals() {
        let claims = serde_json::json!({
            "sub": "7d3c1f9e-2b1a-4c5d-9e8f-0a1b2c3d4e5f",
            "cognito:groups": ["everyone", "patient"],
            "custom:patient_id": "pat-42",
            "client_id": "app-client",
            "token_use": "access",
        });
        let p = principal_from_claims(&claims).unwrap();
        assert_eq!(p.role, Role::Patient);
        assert_eq!(p.patient_id.unwrap().as_str(), "pat-42");
        let no_role = serde_json::json!({"sub": "u1"});
        assert!(principal_from_claims(&no_role).is_err());
    }
}
