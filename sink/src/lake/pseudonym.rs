//! Patient keys in the lake: a keyed hash (HMAC-SHA256) of the patient id. Analysts can join
//! a patient's rows across tables and days, but cannot get back to the member without the key,
//! and a guessed member id cannot be checked against the lake without it either (a plain hash
//! could be).

use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::path::Path;

/// Bytes of key material.
const KEY_LEN: usize = 32;

#[derive(Clone)]
pub struct Pseudonymizer {
    key: [u8; KEY_LEN],
}

impl std::fmt::Debug for Pseudonymizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pseudonymizer(..)")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("pseudonym key file {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("pseudonym key file {path} must hold {KEY_LEN} bytes as 64 hex digits")]
    Malformed { path: String },
}

impl Pseudonymizer {
    pub fn new(key: [u8; KEY_LEN]) -> Self {
        Self { key }
    }

    /// Reads the key from `path` (64 hex digits), creating it (mode 0600) on first use.
    /// Losing the key breaks the link between old and new rows of a patient; keep it with
    /// the other secrets.
    pub fn load_or_create(path: &Path) -> Result<Self, KeyError> {
        let io = |source| KeyError::Io {
            path: path.display().to_string(),
            source,
        };
        match std::fs::read_to_string(path) {
            Ok(text) => {
                let mut key = [0u8; KEY_LEN];
                hex::decode_to_slice(text.trim(), &mut key).map_err(|_| KeyError::Malformed {
                    path: path.display().to_string(),
                })?;
                Ok(Self { key })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir).map_err(io)?;
                }
                let key: [u8; KEY_LEN] = rand::random();
                write_private(path, hex::encode(key).as_bytes()).map_err(io)?;
                Ok(Self { key })
            }
            Err(e) => Err(io(e)),
        }
    }

    /// The lake's key for `patient_id`: 32 hex digits (128 bits).
    pub fn patient_key(&self, patient_id: &str) -> String {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.key)
            .expect("HMAC accepts keys of any length");
        mac.update(b"p360/lake/patient\x00");
        mac.update(patient_id.as_bytes());
        hex::encode(&mac.finalize().into_bytes()[..16])
    }
}

#[cfg(unix)]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

#[cfg(not(unix))]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::write(path, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_stable_per_key_and_differ_across_keys() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys/lake.key");
        let a = Pseudonymizer::load_or_create(&path).unwrap();
        let again = Pseudonymizer::load_or_create(&path).unwrap();
        assert_eq!(a.patient_key("pat-1"), again.patient_key("pat-1"));
        assert_ne!(a.patient_key("pat-1"), a.patient_key("pat-2"));
        assert_eq!(a.patient_key("pat-1").len(), 32);
        assert!(!a.patient_key("pat-1").contains("pat"));
        let other = Pseudonymizer::new([7; 32]);
        assert_ne!(a.patient_key("pat-1"), other.patient_key("pat-1"));
        std::fs::write(&path, "not hex").unwrap();
        assert!(matches!(
            Pseudonymizer::load_or_create(&path),
            Err(KeyError::Malformed { .. })
        ));
    }
}
