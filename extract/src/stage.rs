//! The `extract` stage: DocumentReceived → OCR → clinical extraction → FactsExtracted.
//!
//! Outcomes are recorded on the document in the register, where the patient sees them:
//! `extracted` / `needs_review` with counts, `failed` with the reason (an unreadable file is
//! not retried and never blocks the queue), or `flagged` when the header names another person
//! (facts are kept for review but not merged). The extraction itself (fields, confidences,
//! regions) is stored as `extractions/<patient>/<document>.json` for the review endpoints.

use crate::clinical::nlp::ClinicalNlp;
use crate::clinical::{self, Extraction};
use crate::facts::{self, Context, to_facts};
use crate::layout::Engine;
use crate::ocr::{Ocr, OcrError};
use crate::terminology::fold;
use async_trait::async_trait;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use p360_events::{
    DocumentReceived, Envelope, Event, EventType, FactsExtracted, ObjectRef, Producer,
};
use p360_ingest::register::{DocumentRegister, ExtractionStatus, MemberDemographics};
use p360_model::{Fact, Status};
use p360_runtime::{Stage, StageError};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::sync::Arc;

/// Page geometry as read, so the review crop can render the same pixels.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PageInfo {
    pub number: u32,
    pub width: u32,
    pub height: u32,
    pub deskew_degrees: f32,
    /// Clockwise quarter turns applied before deskew (see `layout::Page::quarter_turns`).
    #[serde(default)]
    pub quarter_turns: u8,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub normalization: Option<p360_imagenorm::Params>,
}

/// A patient's decision on one extracted fact.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ReviewEntry {
    pub fact_id: String,
    /// `confirm`, `correct` or `reject`.
    pub action: String,
    pub by: String,
    pub at: chrono::DateTime<chrono::Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub old: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_fact_id: Option<String>,
}

/// What the review endpoints read: the extraction, its facts, and the review log.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StoredExtraction {
    pub document_id: String,
    pub patient_id: String,
    pub engine: Engine,
    pub pages: Vec<PageInfo>,
    pub extraction: Extraction,
    pub facts: Vec<Fact>,
    /// Why the facts were not merged (the header names someone else).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flagged: Option<String>,
    #[serde(default)]
    pub reviews: Vec<ReviewEntry>,
}

pub fn extraction_key(patient: &str, document: &str) -> String {
    format!("extractions/{patient}/{document}.json")
}

pub struct ExtractStage {
    objects: Arc<dyn ObjectStore>,
    ocr: Arc<dyn Ocr>,
    register: DocumentRegister,
    nlp: Option<Arc<dyn ClinicalNlp>>,
}

impl ExtractStage {
    pub fn new(
        objects: Arc<dyn ObjectStore>,
        ocr: Arc<dyn Ocr>,
        register: DocumentRegister,
    ) -> Self {
        Self {
            objects,
            ocr,
            register,
            nlp: None,
        }
    }

    /// Codes diagnoses and medications with an external service instead of the built-in
    /// readers (labs and the header stay built-in).
    pub fn with_nlp(mut self, nlp: Arc<dyn ClinicalNlp>) -> Self {
        self.nlp = Some(nlp);
        self
    }

    async fn record(
        &self,
        doc: &DocumentReceived,
        status: ExtractionStatus,
    ) -> Result<(), StageError> {
        let register = self.register.clone();
        let id = doc.document_id.clone();
        tokio::task::spawn_blocking(move || register.set_status(&id, &status))
            .await
            .map_err(|e| StageError::Transient(format!("register task: {e}")))?
            .map_err(|e| StageError::Transient(e.to_string()))
    }

    async fn put_json(&self, key: &str, value: &impl Serialize) -> Result<ObjectRef, StageError> {
        let bytes = serde_json::to_vec(value)
            .map_err(|e| StageError::Permanent(format!("encoding {key}: {e}")))?;
        let sha256 = hex::encode(Sha256::digest(&bytes));
        let size = bytes.len() as u64;
        self.objects
            .put(&ObjectPath::from(key), PutPayload::from(bytes))
            .await
            .map_err(|e| StageError::Transient(format!("storing {key}: {e}")))?;
        Ok(ObjectRef {
            key: key.to_string(),
            sha256,
            size,
            media_type: "application/json".into(),
        })
    }
}

/// Whether the header names someone other than the member (by family name and birth date).
pub fn header_mismatch(x: &Extraction, member: &MemberDemographics) -> Option<String> {
    if let (Some(printed), Some(birth)) = (&x.header.birth_date, member.birth_date)
        && printed.value != birth
    {
        return Some("the date of birth on the document is not yours".into());
    }
    if let (Some(printed), Some(family)) = (&x.header.patient, &member.family) {
        let (a, b) = (fold(&printed.value.family), fold(family));
        if strsim::normalized_levenshtein(&a, &b) < 0.75 {
            return Some("the name on the document is not yours".into());
        }
    }
    None
}

#[async_trait]
impl Stage for ExtractStage {
    fn name(&self) -> &'static str {
        "extract"
    }

    fn subscribes(&self) -> &'static [EventType] {
        &[EventType::DocumentReceived]
    }

    async fn handle(&self, event: &Envelope) -> Result<Vec<Event>, StageError> {
        let Event::DocumentReceived(doc) = &event.event else {
            return Err(StageError::Permanent(format!(
                "extract does not handle {}",
                event.event_type()
            )));
        };
        let bytes = self
            .objects
            .get(&ObjectPath::from(doc.object.key.as_str()))
            .await
            .map_err(|e| StageError::Transient(format!("reading {}: {e}", doc.object.key)))?
            .bytes()
            .await
            .map_err(|e| StageError::Transient(format!("reading {}: {e}", doc.object.key)))?;
        let layout = match self.ocr.read(&bytes).await {
            Ok(layout) => layout,
            Err(OcrError::Document(e)) => {
                tracing::info!(document_id = %doc.document_id, "document unreadable");
                self.record(
                    doc,
                    ExtractionStatus {
                        status: "failed",
                        detail: Some(e.to_string()),
                        facts: 0,
                        needs_review: 0,
                    },
                )
                .await?;
                return Ok(Vec::new());
            }
            Err(e @ OcrError::Engine(_)) => return Err(StageError::Transient(e.to_string())),
        };
        let mut extraction = {
            let layout = layout.clone();
            tokio::task::spawn_blocking(move || clinical::extract(&layout))
                .await
                .map_err(|e| StageError::Transient(format!("extraction task: {e}")))?
        };
        if let Some(nlp) = &self.nlp {
            clinical::nlp::refine(&mut extraction, &layout, nlp.as_ref())
                .await
                .map_err(|e| StageError::Transient(e.to_string()))?;
        }
        let ctx = Context {
            patient: &doc.patient_id,
            document: &doc.document_id,
            engine: &layout.engine,
            // Deterministic on redelivery: the same facts and objects every time.
            recorded: doc.received_at,
            fallback_date: doc.received_at.date_naive(),
        };
        let facts = to_facts(&extraction, &ctx);
        let member = {
            let register = self.register.clone();
            let patient = doc.patient_id.clone();
            tokio::task::spawn_blocking(move || register.demographics(&patient))
                .await
                .map_err(|e| StageError::Transient(format!("register task: {e}")))?
                .map_err(|e| StageError::Transient(e.to_string()))?
        };
        let flagged = member
            .as_ref()
            .and_then(|m| header_mismatch(&extraction, m));
        let needs_review = facts
            .iter()
            .filter(|f| f.status == Status::Unconfirmed)
            .count() as u32;
        let stored = StoredExtraction {
            document_id: doc.document_id.to_string(),
            patient_id: doc.patient_id.to_string(),
            engine: layout.engine.clone(),
            pages: layout
                .pages
                .iter()
                .map(|p| PageInfo {
                    number: p.number,
                    width: p.width,
                    height: p.height,
                    deskew_degrees: p.deskew_degrees,
                    quarter_turns: p.quarter_turns,
                    normalization: p.normalization.clone(),
                })
                .collect(),
            extraction,
            facts: facts.clone(),
            flagged: flagged.clone(),
            reviews: Vec::new(),
        };
        self.put_json(
            &extraction_key(doc.patient_id.as_str(), doc.document_id.as_str()),
            &stored,
        )
        .await?;
        let count = facts.len() as u32;
        if let Some(reason) = flagged {
            tracing::info!(document_id = %doc.document_id, "document flagged: header does not match the member");
            self.record(
                doc,
                ExtractionStatus {
                    status: "flagged",
                    detail: Some(reason),
                    facts: count,
                    needs_review: count,
                },
            )
            .await?;
            return Ok(Vec::new());
        }
        // A page that could not be read is named on the document: the rest was extracted, and
        // the patient is asked to send that page again.
        let failed_pages = (!layout.failed_pages.is_empty()).then(|| {
            layout
                .failed_pages
                .iter()
                .map(|f| format!("page {}: {}", f.page, f.reason))
                .collect::<Vec<_>>()
                .join("; ")
        });
        let status = if needs_review > 0 || failed_pages.is_some() {
            "needs_review"
        } else {
            "extracted"
        };
        let out = if facts.is_empty() {
            Vec::new()
        } else {
            let key = format!("facts/{}/{}/extract.json", doc.patient_id, doc.document_id);
            let object = self.put_json(&key, &facts).await?;
            vec![Event::FactsExtracted(FactsExtracted {
                document_id: doc.document_id.clone(),
                patient_id: doc.patient_id.clone(),
                facts: object,
                fact_count: count,
                needs_review,
                extractor: Producer {
                    name: format!("p360-extract+{}", layout.engine.name),
                    version: format!("{}+{}", env!("CARGO_PKG_VERSION"), layout.engine.version),
                },
            })]
        };
        self.record(
            doc,
            ExtractionStatus {
                status,
                detail: failed_pages,
                facts: count,
                needs_review,
            },
        )
        .await?;
        tracing::info!(document_id = %doc.document_id, facts = count, needs_review, "document extracted");
        Ok(out)
    }
}

/// Re-exported for callers that build facts outside the stage (review corrections).
pub use facts::CONFIRM_AT;
