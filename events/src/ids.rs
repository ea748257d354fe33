//! Opaque identifiers. They are the only things about a patient that may appear in logs,
//! spans, metrics and error messages, so none of them is derived from personal data.

use serde::{Deserialize, Serialize};
use std::fmt;
use uuid::Uuid;

/// Namespace for deterministic (v5) ids, so re-running a handler reproduces the same ids.
const P360_NAMESPACE: Uuid = Uuid::from_u128(0x6f1e_4d2a_9b7c_4e51_8a3d_2c90_b1f4_7e65);

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Wraps an id after checking it is a safe token (see [`check_token`]).
            pub fn parse(raw: &str) -> Result<Self, crate::EventError> {
                check_token(stringify!($name), raw)?;
                Ok(Self(raw.to_owned()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

string_id!(
    /// A patient (member) id: the key of the patient's record and named graph.
    PatientId
);
string_id!(
    /// A user account id (patient, provider, analyst, admin).
    UserId
);
string_id!(
    /// A document id: a stable hash of (patient, content), so the same bytes uploaded twice by
    /// the same patient are the same document.
    DocumentId
);
string_id!(
    /// A payor feed batch id.
    BatchId
);

impl PatientId {
    /// Fresh random patient id (`pat-` + 16 hex).
    pub fn random() -> Self {
        Self(format!(
            "pat-{}",
            &Uuid::new_v4().simple().to_string()[..16]
        ))
    }
}

impl UserId {
    /// Fresh random user id (`usr-` + 16 hex).
    pub fn random() -> Self {
        Self(format!(
            "usr-{}",
            &Uuid::new_v4().simple().to_string()[..16]
        ))
    }
}

impl DocumentId {
    /// The document id for `sha256` (hex) uploaded for `patient`: deterministic, so uploads are
    /// idempotent by content per patient, and two patients' identical files stay separate.
    pub fn for_content(patient: &PatientId, sha256_hex: &str) -> Self {
        let id = Uuid::new_v5(
            &P360_NAMESPACE,
            format!("document/{}/{}", patient.0, sha256_hex).as_bytes(),
        );
        Self(format!("doc-{}", id.simple()))
    }
}

/// Ids travel in object keys, URLs and SQL: allow only `[A-Za-z0-9._:-]`, 1..=128 characters,
/// so no id can traverse paths or smuggle markup.
pub fn check_token(what: &'static str, raw: &str) -> Result<(), crate::EventError> {
    let ok = !raw.is_empty()
        && raw.len() <= 128
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
        && raw != "."
        && raw != "..";
    if ok {
        Ok(())
    } else {
        Err(crate::EventError::InvalidId { what })
    }
}

/// An event id. Handlers derive the ids of the events they emit from the id of the event they
/// handle ([`EventId::derived`]), so a redelivered input yields the very same outputs and the
/// queue (or the consumer's inbox) can drop the duplicates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EventId(pub Uuid);

impl EventId {
    pub fn random() -> Self {
        Self(Uuid::new_v4())
    }

    /// The id of the `index`-th output of handling `parent` in `stage`.
    pub fn derived(parent: EventId, stage: &str, index: u32) -> Self {
        let mut name = Vec::with_capacity(16 + stage.len() + 5);
        name.extend_from_slice(parent.0.as_bytes());
        name.extend_from_slice(stage.as_bytes());
        name.push(b'/');
        name.extend_from_slice(&index.to_be_bytes());
        Self(Uuid::new_v5(&P360_NAMESPACE, &name))
    }

    /// The id of an event that is naturally keyed (e.g. "document D of patient P was received"),
    /// so that a source which retries after a crash emits the same event again, not a new one.
    pub fn for_key(kind: &str, key: &str) -> Self {
        Self(Uuid::new_v5(
            &P360_NAMESPACE,
            format!("event/{kind}/{key}").as_bytes(),
        ))
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_reject_unsafe_tokens() {
        for bad in ["", "..", "a/b", "a b", "<x>", &"x".repeat(129)] {
            assert!(PatientId::parse(bad).is_err(), "{bad:?} must be refused");
        }
        assert_eq!(PatientId::parse("pat-1a2b").unwrap().as_str(), "pat-1a2b");
    }

    #[test]
    fn document_ids_are_per_patient_and_deterministic() {
        let a = PatientId::parse("pat-a").unwrap();
        let b = PatientId::parse("pat-b").unwrap();
        let sha = "ab".repeat(32);
        assert_eq!(
            DocumentId::for_content(&a, &sha),
            DocumentId::for_content(&a, &sha)
        );
        assert_ne!(
            DocumentId::for_content(&a, &sha),
            DocumentId::for_content(&b, &sha)
        );
    }

    #[test]
    fn derived_event_ids_depend_on_parent_stage_and_index() {
        let p = EventId::random();
        assert_eq!(EventId::derived(p, "s", 0), EventId::derived(p, "s", 0));
        assert_ne!(EventId::derived(p, "s", 0), EventId::derived(p, "s", 1));
        assert_ne!(EventId::derived(p, "s", 0), EventId::derived(p, "t", 0));
    }
}
