//! Patient keys in the lake: a keyed hash (HMAC-SHA256) of the patient id. Analysts can join
//! a patient's rows across tables and days, but cannot get back to the member without the key,
//! and a guessed member id cannot be checked against the lake without it either (a plain hash
//! could be).

use hmac::{Hmac, Mac};
use sha2::Sha256;

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

/// The key text is not 64 hex digits.
#[derive(Debug, thiserror::Error)]
#[error("the pseudonym key must be {KEY_LEN} bytes written as 64 hex digits")]
pub struct KeyError;

impl Pseudonymizer {
    pub fn new(key: [u8; KEY_LEN]) -> Self {
        Self { key }
    }

    /// A fresh random key, as 64 hex digits (what [`Pseudonymizer::from_hex`] reads).
    pub fn generate_hex() -> String {
        hex::encode(rand::random::<[u8; KEY_LEN]>())
    }

    /// The key from its 64 hex digits (surrounding whitespace ignored). Losing the key breaks
    /// the link between a patient's old and new rows; keep it with the other secrets.
    pub fn from_hex(text: &str) -> Result<Self, KeyError> {
        let mut key = [0u8; KEY_LEN];
        hex::decode_to_slice(text.trim(), &mut key).map_err(|_| KeyError)?;
        Ok(Self { key })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_stable_per_key_and_differ_across_keys() {
        let text = Pseudonymizer::generate_hex();
        let a = Pseudonymizer::from_hex(&text).unwrap();
        let again = Pseudonymizer::from_hex(&format!("{text}\n")).unwrap();
        assert_eq!(a.patient_key("pat-1"), again.patient_key("pat-1"));
        assert_ne!(a.patient_key("pat-1"), a.patient_key("pat-2"));
        assert_eq!(a.patient_key("pat-1").len(), 32);
        assert!(!a.patient_key("pat-1").contains("pat"));
        let other = Pseudonymizer::new([7; 32]);
        assert_ne!(a.patient_key("pat-1"), other.patient_key("pat-1"));
        assert!(Pseudonymizer::from_hex("not hex").is_err());
    }
}
