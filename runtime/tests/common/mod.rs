//! A test stage: for each DocumentReceived it emits one GraphChanged; documents named
//! `doc-poison` always fail permanently, `doc-flaky` fails transiently on its first attempts.

#![allow(clippy::unwrap_used, unreachable_pub, dead_code)]

use async_trait::async_trait;
use chrono::Utc;
use p360_events::*;
use p360_runtime::{Stage, StageError};
use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};

#[derive(Default)]
pub struct Probe {
    pub handled: Mutex<HashMap<EventId, u32>>,
    pub flaky_failures: AtomicU32,
    /// While false, `doc-broken` fails transiently on every attempt (a bug awaiting a fix).
    pub fixed: std::sync::atomic::AtomicBool,
}

#[async_trait]
impl Stage for Probe {
    fn name(&self) -> &'static str {
        "probe"
    }

    fn subscribes(&self) -> &'static [EventType] {
        &[EventType::DocumentReceived]
    }

    async fn handle(&self, event: &Envelope) -> Result<Vec<Event>, StageError> {
        let Event::DocumentReceived(doc) = &event.event else {
            return Err(StageError::Permanent("unexpected event type".into()));
        };
        match doc.document_id.as_str() {
            "doc-poison" => return Err(StageError::Permanent("poison document".into())),
            "doc-flaky" if self.flaky_failures.fetch_add(1, Ordering::SeqCst) < 2 => {
                return Err(StageError::Transient("flaky store".into()));
            }
            "doc-broken" if !self.fixed.load(Ordering::SeqCst) => {
                return Err(StageError::Transient("store rejects this document".into()));
            }
            _ => {}
        }
        *self.handled.lock().unwrap().entry(event.id).or_default() += 1;
        Ok(vec![Event::GraphChanged(GraphChanged {
            patient_id: doc.patient_id.clone(),
            commit_id: format!("c-{}", doc.document_id),
            committed_at: Utc::now(),
            changes: vec![],
        })])
    }
}

pub fn document(doc_id: &str) -> Envelope {
    let patient = PatientId::parse("pat-1").unwrap();
    Envelope::new(
        EventId::for_key("test", doc_id),
        "/p360/test",
        Event::DocumentReceived(DocumentReceived {
            document_id: DocumentId::parse(doc_id).unwrap(),
            patient_id: patient,
            object: ObjectRef {
                key: format!("raw/pat-1/{doc_id}.png"),
                sha256: "00".repeat(32),
                size: 10,
                media_type: "image/png".into(),
            },
            channel: Channel::Upload,
            uploaded_by: None,
            received_at: Utc::now(),
        }),
    )
}
