//! The p360 wire contract.
//!
//! Every message between stages is an [`Envelope`]: CloudEvents 1.0 attributes (`specversion`,
//! `id`, `source`, `type`, `time`, `datacontenttype`) plus p360 extension attributes
//! (`schemaversion`, `correlationid`, `causationid`, `patientid`) and the typed payload in `data`.
//! The JSON is therefore a valid CloudEvent in structured mode and maps one-to-one onto an
//! EventBridge entry (`source` → Source, `type` → DetailType, the envelope → Detail).
//!
//! Invariants (kept by tests in this crate):
//! - this crate is pure data: no I/O, no async;
//! - a payload holds references (object keys, hashes, ids, counts), never document bytes or text;
//! - the JSON of every event type is snapshot-tested, so a wire change is never accidental;
//! - evolution: add optional fields; a breaking change bumps [`SCHEMA_VERSION`] of that type.

mod ids;
mod payload;

pub use ids::{BatchId, DocumentId, EventId, PatientId, UserId, check_token};
pub use payload::*;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Version of the payload schemas this build writes and reads.
pub const SCHEMA_VERSION: u32 = 1;

/// Errors decoding or building events. Messages name the problem, never the content.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EventError {
    #[error("event body is not a valid p360 envelope: {0}")]
    Decode(String),
    #[error(
        "event schema version {found} of type {event_type} is not supported (this build reads {SCHEMA_VERSION})"
    )]
    UnsupportedVersion { event_type: String, found: u32 },
    #[error(
        "invalid {what}: only letters, digits, '.', '_', ':' and '-' (1 to 128 characters) are allowed"
    )]
    InvalidId { what: &'static str },
}

/// Every pipeline event, tagged by its CloudEvents `type`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum Event {
    #[serde(rename = "p360.document.received")]
    DocumentReceived(DocumentReceived),
    #[serde(rename = "p360.facts.extracted")]
    FactsExtracted(FactsExtracted),
    #[serde(rename = "p360.feed.batch_received")]
    FeedBatchReceived(FeedBatchReceived),
    #[serde(rename = "p360.facts.resolved")]
    FactsResolved(FactsResolved),
    #[serde(rename = "p360.sources.detached")]
    SourcesDetached(SourcesDetached),
    #[serde(rename = "p360.manual_entry.submitted")]
    ManualEntrySubmitted(ManualEntrySubmitted),
    #[serde(rename = "p360.graph.changed")]
    GraphChanged(GraphChanged),
    #[serde(rename = "p360.access.recorded")]
    AccessRecorded(AccessRecorded),
    #[serde(rename = "p360.device_readings.received")]
    DeviceReadingsReceived(DeviceReadingsReceived),
    #[serde(rename = "p360.device_readings.stored")]
    DeviceReadingsStored(DeviceReadingsStored),
    #[serde(rename = "p360.members.enrolled")]
    MembersEnrolled(MembersEnrolled),
    #[serde(rename = "p360.care_gaps.computed")]
    CareGapsComputed(CareGapsComputed),
    #[serde(rename = "p360.analytics_consent.changed")]
    AnalyticsConsentChanged(AnalyticsConsentChanged),
}

/// The kind of an event without its payload: used for routing and metrics labels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventType {
    DocumentReceived,
    FactsExtracted,
    FeedBatchReceived,
    FactsResolved,
    SourcesDetached,
    ManualEntrySubmitted,
    GraphChanged,
    AccessRecorded,
    DeviceReadingsReceived,
    DeviceReadingsStored,
    MembersEnrolled,
    CareGapsComputed,
    AnalyticsConsentChanged,
}

impl EventType {
    pub const ALL: [EventType; 13] = [
        EventType::DocumentReceived,
        EventType::FactsExtracted,
        EventType::FeedBatchReceived,
        EventType::FactsResolved,
        EventType::SourcesDetached,
        EventType::ManualEntrySubmitted,
        EventType::GraphChanged,
        EventType::AccessRecorded,
        EventType::DeviceReadingsReceived,
        EventType::DeviceReadingsStored,
        EventType::MembersEnrolled,
        EventType::CareGapsComputed,
        EventType::AnalyticsConsentChanged,
    ];

    /// The CloudEvents `type` attribute (also the EventBridge DetailType).
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::DocumentReceived => "p360.document.received",
            EventType::FactsExtracted => "p360.facts.extracted",
            EventType::FeedBatchReceived => "p360.feed.batch_received",
            EventType::FactsResolved => "p360.facts.resolved",
            EventType::SourcesDetached => "p360.sources.detached",
            EventType::ManualEntrySubmitted => "p360.manual_entry.submitted",
            EventType::GraphChanged => "p360.graph.changed",
            EventType::AccessRecorded => "p360.access.recorded",
            EventType::DeviceReadingsReceived => "p360.device_readings.received",
            EventType::DeviceReadingsStored => "p360.device_readings.stored",
            EventType::MembersEnrolled => "p360.members.enrolled",
            EventType::CareGapsComputed => "p360.care_gaps.computed",
            EventType::AnalyticsConsentChanged => "p360.analytics_consent.changed",
        }
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Event {
    pub fn event_type(&self) -> EventType {
        match self {
            Event::DocumentReceived(_) => EventType::DocumentReceived,
            Event::FactsExtracted(_) => EventType::FactsExtracted,
            Event::FeedBatchReceived(_) => EventType::FeedBatchReceived,
            Event::FactsResolved(_) => EventType::FactsResolved,
            Event::SourcesDetached(_) => EventType::SourcesDetached,
            Event::ManualEntrySubmitted(_) => EventType::ManualEntrySubmitted,
            Event::GraphChanged(_) => EventType::GraphChanged,
            Event::AccessRecorded(_) => EventType::AccessRecorded,
            Event::DeviceReadingsReceived(_) => EventType::DeviceReadingsReceived,
            Event::DeviceReadingsStored(_) => EventType::DeviceReadingsStored,
            Event::MembersEnrolled(_) => EventType::MembersEnrolled,
            Event::CareGapsComputed(_) => EventType::CareGapsComputed,
            Event::AnalyticsConsentChanged(_) => EventType::AnalyticsConsentChanged,
        }
    }

    /// The patient the event is about, if it is about one patient.
    pub fn patient_id(&self) -> Option<&PatientId> {
        match self {
            Event::DocumentReceived(e) => Some(&e.patient_id),
            Event::FactsExtracted(e) => Some(&e.patient_id),
            Event::FeedBatchReceived(_) => None,
            Event::FactsResolved(e) => Some(&e.patient_id),
            Event::SourcesDetached(e) => Some(&e.patient_id),
            Event::ManualEntrySubmitted(e) => Some(&e.patient_id),
            Event::GraphChanged(e) => Some(&e.patient_id),
            Event::AccessRecorded(e) => Some(&e.patient_id),
            Event::DeviceReadingsReceived(e) => Some(&e.patient_id),
            Event::DeviceReadingsStored(e) => Some(&e.patient_id),
            Event::MembersEnrolled(_) => None,
            Event::CareGapsComputed(e) => Some(&e.patient_id),
            Event::AnalyticsConsentChanged(e) => Some(&e.patient_id),
        }
    }
}

fn cloudevents_spec_version() -> String {
    "1.0".to_owned()
}

fn json_content_type() -> String {
    "application/json".to_owned()
}

/// A CloudEvents 1.0 structured-mode event carrying one p360 [`Event`].
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    #[serde(default = "cloudevents_spec_version")]
    pub specversion: String,
    pub id: EventId,
    /// URI-reference of the producer, e.g. `/p360/ingest/api`.
    pub source: String,
    pub time: DateTime<Utc>,
    #[serde(default = "json_content_type")]
    pub datacontenttype: String,
    /// Version of the `data` schema for this `type`.
    pub schemaversion: u32,
    /// Id shared by every event caused, directly or not, by one outside request.
    pub correlationid: EventId,
    /// Id of the event whose handling produced this one (absent for events from outside).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub causationid: Option<EventId>,
    /// The patient the event is about: lets routing and partitioning avoid decoding `data`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patientid: Option<PatientId>,
    #[serde(flatten)]
    pub event: Event,
}

/// Hand-written so that a stray `{:?}` can never print a payload.
impl fmt::Debug for Envelope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Envelope")
            .field("id", &self.id)
            .field("type", &self.event.event_type().as_str())
            .field("correlationid", &self.correlationid)
            .field("patientid", &self.patientid)
            .finish_non_exhaustive()
    }
}

impl Envelope {
    /// A new event entering the system from outside (an upload, a file drop).
    pub fn new(id: EventId, source: impl Into<String>, event: Event) -> Self {
        Self {
            specversion: cloudevents_spec_version(),
            id,
            source: source.into(),
            time: Utc::now(),
            datacontenttype: json_content_type(),
            schemaversion: SCHEMA_VERSION,
            correlationid: id,
            causationid: None,
            patientid: event.patient_id().cloned(),
            event,
        }
    }

    /// The `index`-th event emitted by `stage` while handling `self`: deterministic id, same
    /// correlation id, causation = `self`.
    pub fn child(&self, stage: &str, index: u32, event: Event) -> Self {
        Self {
            specversion: cloudevents_spec_version(),
            id: EventId::derived(self.id, stage, index),
            source: format!("/p360/{stage}"),
            time: Utc::now(),
            datacontenttype: json_content_type(),
            schemaversion: SCHEMA_VERSION,
            correlationid: self.correlationid,
            causationid: Some(self.id),
            patientid: event.patient_id().cloned(),
            event,
        }
    }

    pub fn event_type(&self) -> EventType {
        self.event.event_type()
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("an envelope always serializes: all keys are strings")
    }

    /// Decodes a queue message body: a bare envelope, or an EventBridge event whose `detail`
    /// is the envelope (what an SQS queue targeted by an EventBridge rule receives).
    pub fn from_json(body: &str) -> Result<Self, EventError> {
        let mut value: serde_json::Value =
            serde_json::from_str(body).map_err(|e| EventError::Decode(describe(&e)))?;
        if value.get("detail-type").is_some()
            && let Some(detail) = value.get_mut("detail")
        {
            value = detail.take();
        }
        let found = value
            .get("schemaversion")
            .and_then(serde_json::Value::as_u64)
            .ok_or_else(|| EventError::Decode("missing field `schemaversion`".into()))?;
        if found != u64::from(SCHEMA_VERSION) {
            let event_type = value
                .get("type")
                .and_then(serde_json::Value::as_str)
                .unwrap_or("?")
                .chars()
                .take(64)
                .collect();
            return Err(EventError::UnsupportedVersion {
                event_type,
                found: u32::try_from(found).unwrap_or(u32::MAX),
            });
        }
        serde_json::from_value(value).map_err(|e| EventError::Decode(describe(&e)))
    }
}

/// serde_json's messages name fields and positions, but can also quote the offending value
/// (`invalid type: string "…"`, ``unknown variant `…` ``): keep the shape, drop the values, so an
/// error about a payload never carries patient data into a log or a dead-letter queue.
fn describe(e: &serde_json::Error) -> String {
    let msg = e.to_string();
    if msg.contains("unknown variant") {
        return format!(
            "unknown variant (an unknown event type or enum value) at line {} column {}",
            e.line(),
            e.column()
        );
    }
    let mut out = String::with_capacity(msg.len());
    let mut in_quote = false;
    for c in msg.chars() {
        if c == '"' {
            if !in_quote {
                out.push_str("\"…\"");
            }
            in_quote = !in_quote;
        } else if !in_quote {
            out.push(c);
        }
    }
    out
}
