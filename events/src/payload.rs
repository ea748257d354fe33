//! The typed payloads of the pipeline. Each is a reference to durable data (object keys,
//! content hashes, ids, counts), never document bytes or free text: events are copied into
//! queues, dead-letter queues and logs where patient data must not go.

use crate::ids::{BatchId, DocumentId, PatientId, UserId};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

/// A pointer to an immutable object in the object store (filesystem or S3).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectRef {
    /// Key inside the configured store, e.g. `raw/pat-…/<sha256>.jpg`.
    pub key: String,
    /// Lower-case hex SHA-256 of the object's bytes: the content's identity.
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
    /// Media type detected from the bytes (not the one the client declared).
    pub media_type: String,
}

/// How a document entered the system.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// `POST /v1/patients/{id}/documents` from the patient app.
    Upload,
    /// A file placed in the local drop folder (`drop/<patient-id>/…`).
    DropFolder,
    /// An S3 `ObjectCreated` notification for the photo-drop bucket.
    S3Drop,
}

/// A patient's document is stored under `raw/` and waits for extraction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocumentReceived {
    pub document_id: DocumentId,
    pub patient_id: PatientId,
    pub object: ObjectRef,
    pub channel: Channel,
    /// The authenticated user who uploaded it; `None` for drop-folder / S3 sources.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uploaded_by: Option<UserId>,
    pub received_at: DateTime<Utc>,
}

/// Name and version of the software that produced facts, kept in provenance.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Producer {
    pub name: String,
    pub version: String,
}

/// Extraction finished for a document: the coded facts are in `facts` (a JSON object in the
/// store), because facts contain clinical values that must not ride in an event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FactsExtracted {
    pub document_id: DocumentId,
    pub patient_id: PatientId,
    pub facts: ObjectRef,
    pub fact_count: u32,
    /// Facts whose confidence is below the auto-accept threshold: the patient reviews them.
    pub needs_review: u32,
    pub extractor: Producer,
}

/// The format of a payor feed batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FeedFormat {
    /// FHIR Bulk Data export, newline-delimited JSON, one resource type per file.
    FhirNdjson,
    /// Claims / EOB lines as CSV.
    ClaimsCsv,
    /// A page of results read from a HealthLake (FHIR R4) data store.
    FhirStore,
    /// A whole batch folder, described by its manifest (`object` is the manifest).
    Batch,
}

/// A payor feed file was dropped and stored; enrichment parses it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeedBatchReceived {
    pub batch_id: BatchId,
    pub format: FeedFormat,
    pub object: ObjectRef,
    /// FHIR resource type of an NDJSON file, when known from its name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_type: Option<String>,
}

/// Enrichment matched part of a batch to one member and normalised it into facts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FactsResolved {
    pub batch_id: BatchId,
    pub patient_id: PatientId,
    pub facts: ObjectRef,
    pub fact_count: u32,
    /// How the records were matched to the member (e.g. `member_id`, `demographics`).
    pub matched_by: String,
    pub resolver: Producer,
}

/// A payor's staff undid a member link: the named source records no longer support any of the
/// member's facts. A fact left with no source is removed; the others keep their other sources.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourcesDetached {
    pub batch_id: BatchId,
    pub patient_id: PatientId,
    /// Source ids as the facts' provenance names them (`<batch>/<file>#<record>`).
    pub sources: Vec<String>,
    /// The decision record (`feeds/<batch>/_decisions/…`), which names who decided and when.
    pub decision: String,
}

/// What happened to one fact in a graph commit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    /// A new fact.
    Added,
    /// An existing fact gained another source ("confirmed by N sources").
    SourceAttached,
    /// Status changed (unconfirmed → confirmed, → entered-in-error).
    StatusChanged,
    /// The fact was corrected (value or code).
    Corrected,
    /// The fact was removed (erasure, or its last source was detached).
    Removed,
    /// An existing fact lost a source (an undone link) and keeps its others.
    SourceDetached,
}

/// One changed fact: ids and categories only; the lake sink reads values from the graph.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FactChange {
    pub fact_id: String,
    /// Clinical category, e.g. `laboratory`, `condition`, `medication`.
    pub category: String,
    pub kind: ChangeKind,
}

/// A committed change to one patient's graph.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GraphChanged {
    pub patient_id: PatientId,
    /// Id of the graph transaction; with `patient_id` it keys exactly-once in the lake.
    pub commit_id: String,
    pub committed_at: DateTime<Utc>,
    pub changes: Vec<FactChange>,
}

/// What an actor is to the system: a user's role, or the system itself in access records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Patient,
    Provider,
    PayorAnalyst,
    Admin,
    /// A pipeline stage acting on the system's behalf; never a user account's role.
    System,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Patient => "patient",
            Role::Provider => "provider",
            Role::PayorAnalyst => "payor_analyst",
            Role::Admin => "admin",
            Role::System => "system",
        }
    }

    /// Parses a role a user account may have (not `system`).
    pub fn parse_user_role(s: &str) -> Option<Self> {
        match s {
            "patient" => Some(Role::Patient),
            "provider" => Some(Role::Provider),
            "payor_analyst" | "analyst" => Some(Role::PayorAnalyst),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether the access was allowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccessOutcome {
    Permit,
    Deny,
}

/// One entry of a patient's access ledger, mirrored to the lake.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessRecorded {
    pub patient_id: PatientId,
    /// Position in the patient's hash-chained ledger.
    pub ledger_seq: u64,
    pub actor_id: UserId,
    pub actor_role: Role,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant_id: Option<String>,
    /// e.g. `["Observation", "Condition"]`.
    pub resource_types: Vec<String>,
    /// Purpose of use code, e.g. `TREAT`, `ETREAT` (break-glass).
    pub purpose: String,
    pub outcome: AccessOutcome,
    pub break_glass: bool,
    pub at: DateTime<Utc>,
}

/// A value a patient typed in the app (weight, BP, a condition). Only its reference travels:
/// the entered values are stored as an object, like extracted facts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManualEntrySubmitted {
    pub patient_id: PatientId,
    pub entered_by: UserId,
    pub entry: ObjectRef,
    /// Clinical date the patient gave for the entry.
    pub effective_date: NaiveDate,
}

/// How device readings reached p360.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReadingsChannel {
    /// `POST /v1/patients/{id}/device-readings` (JSON samples of one device).
    Api,
    /// An Apple Health `export.xml` (API upload or `p360 devices import-apple-health`).
    AppleHealth,
}

/// A patient's wearable or home-device samples were accepted: `readings` is the batch (a
/// JSON object in the store, content-addressed) of samples not already stored at submission.
/// The `devices` stage merges them and recomputes the daily summaries they touch.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceReadingsReceived {
    pub patient_id: PatientId,
    pub submitted_by: UserId,
    pub channel: ReadingsChannel,
    pub readings: ObjectRef,
    pub sample_count: u32,
    pub device_count: u32,
}

/// The `devices` stage stored samples that were new (per device, metric and start time):
/// `samples` lists exactly those, for the lake's `device_readings` table.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceReadingsStored {
    pub patient_id: PatientId,
    /// The DeviceReadingsReceived this answers; with `patient_id` it keys exactly-once in
    /// the lake.
    pub received_id: crate::EventId,
    pub samples: ObjectRef,
    pub sample_count: u32,
    pub stored_at: DateTime<Utc>,
}

/// The enrolment of a batch's members (birth date, sex, plan, region, coverage): what quality
/// measures and population dashboards need besides clinical facts. The profiles themselves are
/// an NDJSON object of [`MemberProfile`]s (patient data stays out of the event).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MembersEnrolled {
    pub batch_id: BatchId,
    pub profiles: ObjectRef,
    pub count: u32,
    pub recorded_at: DateTime<Utc>,
}

/// One member's enrolment as the payor's roster states it (a line of [`MembersEnrolled`]'s
/// object, and `members/<patient>/profile.json`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberProfile {
    pub patient_id: PatientId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub birth_date: Option<NaiveDate>,
    /// `female` or `male`; absent when the roster does not say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sex: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan_id: Option<String>,
    /// US state (two letters) of the member's address: the dashboards' region.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coverage_start: Option<NaiveDate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coverage_end: Option<NaiveDate>,
}

/// The insights stage recomputed a patient's care gaps: the results (measure, status,
/// evidence fact ids) are a JSON object, copied to the lake's `care_gaps`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CareGapsComputed {
    pub patient_id: PatientId,
    /// Unique per computation; with the measure id it is the lake rows' change id.
    pub computation_id: String,
    pub computed_at: DateTime<Utc>,
    pub results: ObjectRef,
}

/// A patient changed their analytics choices: the lake records it at once, so population
/// views drop a member who withdrew from the next refresh on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnalyticsConsentChanged {
    pub patient_id: PatientId,
    pub population_analytics: bool,
    pub personalized_tips: bool,
    pub changed_at: DateTime<Utc>,
    pub change_id: String,
}
