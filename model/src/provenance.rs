//! Where a fact came from: every fact keeps one entry per source that said it.

use chrono::{DateTime, Utc};
use p360_events::{DocumentId, UserId};
use serde::{Deserialize, Serialize};

/// The kind of source of a fact.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceKind {
    /// A document the patient uploaded (the file itself, e.g. a DocumentReference).
    PatientUpload,
    /// Read from a document image by OCR and extraction.
    Ocr,
    /// Typed in by the patient.
    ManualEntry,
    /// A wearable or home device.
    Device,
    /// The payor's own feeds (claims, eligibility, FHIR bulk exports).
    PayorFeed,
    /// A FHIR store such as HealthLake.
    FhirStore,
    /// Entered by a provider under a write grant.
    Provider,
}

impl SourceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::PatientUpload => "patient_upload",
            SourceKind::Ocr => "ocr",
            SourceKind::ManualEntry => "manual_entry",
            SourceKind::Device => "device",
            SourceKind::PayorFeed => "payor_feed",
            SourceKind::FhirStore => "fhir_store",
            SourceKind::Provider => "provider",
        }
    }
}

/// A region of a page, in pixels of the stored image.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BoundingBox {
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
}

/// Software that produced a fact.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Producer {
    pub name: String,
    pub version: String,
}

/// One source's statement of a fact.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Provenance {
    pub source_kind: SourceKind,
    /// Id of the source within its kind: a document id, a feed batch id, a device id, a user id.
    pub source_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document: Option<DocumentId>,
    /// 1-based page of the document.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<BoundingBox>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub producer: Option<Producer>,
    /// 0.0–1.0; `None` when the source states the fact outright (a claim, a provider).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confidence: Option<f32>,
    pub recorded: DateTime<Utc>,
    /// The person who entered it (patient, provider), if a person did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<UserId>,
    /// The person who confirmed it after review.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirmed_by: Option<UserId>,
}

impl Provenance {
    /// A provenance entry with only the required fields.
    pub fn new(
        source_kind: SourceKind,
        source_id: impl Into<String>,
        recorded: DateTime<Utc>,
    ) -> Self {
        Self {
            source_kind,
            source_id: source_id.into(),
            document: None,
            page: None,
            region: None,
            producer: None,
            confidence: None,
            recorded,
            author: None,
            confirmed_by: None,
        }
    }

    /// Stable key of the source, so that the same source attached twice is one link.
    pub fn source_key(&self) -> String {
        format!("{}:{}", self.source_kind.as_str(), self.source_id)
    }
}
