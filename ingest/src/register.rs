//! The document register: every document a patient has sent, with its processing status, so the
//! patient app can list "my documents" and show what happened to each. Fed by the `register`
//! stage from DocumentReceived; later stages (extraction) update the status.
//!
//! Exactly-once: applying an event records its id in `inbox` in the same SQLite transaction as
//! the change, so a redelivered event is recognised and skipped. `applied` counts how often a
//! document's row was written by an event; anything but 1 would reveal a broken chain, and the
//! crash test checks it.

use async_trait::async_trait;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use p360_events::{
    DocumentId, DocumentReceived, Envelope, Event, EventType, FactsExtracted, ObjectRef, PatientId,
    Producer,
};
use p360_model::{Document, Fact, FactBody, Provenance, SourceKind, Status, When};
use p360_runtime::{Stage, StageError};
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::path::Path;
use std::sync::{Arc, Mutex};

/// One row of the register, as the patient sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DocumentRecord {
    pub document_id: String,
    pub media_type: String,
    pub size: u64,
    pub sha256: String,
    pub channel: String,
    pub received_at: String,
    /// `received` until extraction reports: then `extracted`, `needs_review` (facts wait for
    /// the patient), `flagged` (the header names someone else) or `failed` (unreadable).
    pub status: String,
    /// Why it failed or was flagged, in words for the patient; facts extracted / to review.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_detail: Option<String>,
    pub facts: u32,
    pub needs_review: u32,
    #[serde(skip)]
    pub object_key: String,
    #[serde(skip)]
    pub applied: u32,
}

#[derive(Clone)]
pub struct DocumentRegister {
    conn: Arc<Mutex<Connection>>,
}

impl std::fmt::Debug for DocumentRegister {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DocumentRegister")
    }
}

#[derive(Debug, thiserror::Error)]
#[error("document register: {0}")]
pub struct RegisterError(String);

fn db(e: rusqlite::Error) -> RegisterError {
    RegisterError(e.to_string())
}

impl DocumentRegister {
    pub fn open(path: &Path) -> Result<Self, RegisterError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| RegisterError(e.to_string()))?;
        }
        let conn = Connection::open(path).map_err(db)?;
        conn.execute_batch(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA busy_timeout=5000;
             CREATE TABLE IF NOT EXISTS documents (
                document_id TEXT PRIMARY KEY, patient_id TEXT NOT NULL,
                object_key TEXT NOT NULL, sha256 TEXT NOT NULL, size INTEGER NOT NULL,
                media_type TEXT NOT NULL, channel TEXT NOT NULL, uploaded_by TEXT,
                received_at TEXT NOT NULL, status TEXT NOT NULL DEFAULT 'received',
                applied INTEGER NOT NULL DEFAULT 0);
             CREATE INDEX IF NOT EXISTS documents_by_patient ON documents (patient_id, received_at);
             CREATE TABLE IF NOT EXISTS document_status (
                document_id TEXT PRIMARY KEY, status TEXT NOT NULL, detail TEXT,
                facts INTEGER NOT NULL DEFAULT 0, needs_review INTEGER NOT NULL DEFAULT 0,
                updated_at TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS patients (
                patient_id TEXT PRIMARY KEY, family TEXT, given TEXT, birth_date TEXT);
             CREATE TABLE IF NOT EXISTS inbox (
                event_id TEXT PRIMARY KEY, applied_at TEXT NOT NULL) WITHOUT ROWID;",
        )
        .map_err(db)?;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Applies a DocumentReceived once; returns false if this event was applied before.
    pub fn apply_received(
        &self,
        event_id: &str,
        doc: &DocumentReceived,
    ) -> Result<bool, RegisterError> {
        let mut conn = self.lock();
        let tx = conn.transaction().map_err(db)?;
        let fresh = tx
            .execute(
                "INSERT OR IGNORE INTO inbox (event_id, applied_at) VALUES (?1, ?2)",
                params![event_id, chrono::Utc::now().to_rfc3339()],
            )
            .map_err(db)?
            > 0;
        if fresh {
            tx.execute(
                "INSERT INTO documents (document_id, patient_id, object_key, sha256, size,
                    media_type, channel, uploaded_by, received_at, applied)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 1)
                 ON CONFLICT (document_id) DO UPDATE SET applied = applied + 1",
                params![
                    doc.document_id.as_str(),
                    doc.patient_id.as_str(),
                    doc.object.key,
                    doc.object.sha256,
                    i64::try_from(doc.object.size).unwrap_or(i64::MAX),
                    doc.object.media_type,
                    serde_json::to_value(doc.channel)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_owned))
                        .unwrap_or_default(),
                    doc.uploaded_by.as_ref().map(|u| u.as_str().to_owned()),
                    doc.received_at.to_rfc3339(),
                ],
            )
            .map_err(db)?;
        }
        tx.commit().map_err(db)?;
        Ok(fresh)
    }

    const COLUMNS: &'static str = "d.document_id, d.media_type, d.size, d.sha256, d.channel,
        d.received_at, COALESCE(s.status, d.status), d.object_key, d.applied, s.detail,
        COALESCE(s.facts, 0), COALESCE(s.needs_review, 0)";
    const FROM: &'static str =
        "documents d LEFT JOIN document_status s ON s.document_id = d.document_id";

    fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<DocumentRecord> {
        Ok(DocumentRecord {
            document_id: r.get(0)?,
            media_type: r.get(1)?,
            size: u64::try_from(r.get::<_, i64>(2)?).unwrap_or(0),
            sha256: r.get(3)?,
            channel: r.get(4)?,
            received_at: r.get(5)?,
            status: r.get(6)?,
            object_key: r.get(7)?,
            applied: u32::try_from(r.get::<_, i64>(8)?).unwrap_or(0),
            status_detail: r.get(9)?,
            facts: u32::try_from(r.get::<_, i64>(10)?).unwrap_or(0),
            needs_review: u32::try_from(r.get::<_, i64>(11)?).unwrap_or(0),
        })
    }

    /// A patient's documents, newest first.
    pub fn list(&self, patient: &PatientId) -> Result<Vec<DocumentRecord>, RegisterError> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare_cached(&format!(
                "SELECT {} FROM {} WHERE d.patient_id = ?1 ORDER BY d.received_at DESC, d.document_id",
                Self::COLUMNS,
                Self::FROM
            ))
            .map_err(db)?;
        stmt.query_map([patient.as_str()], Self::row)
            .map_err(db)?
            .collect::<rusqlite::Result<_>>()
            .map_err(db)
    }

    /// One document, only if it belongs to `patient` (no existence leak across patients).
    pub fn get(
        &self,
        patient: &PatientId,
        document: &DocumentId,
    ) -> Result<Option<DocumentRecord>, RegisterError> {
        self.lock()
            .query_row(
                &format!(
                    "SELECT {} FROM {} WHERE d.patient_id = ?1 AND d.document_id = ?2",
                    Self::COLUMNS,
                    Self::FROM
                ),
                params![patient.as_str(), document.as_str()],
                Self::row,
            )
            .optional()
            .map_err(db)
    }

    /// Every document (for checks and operators): (patient, record).
    pub fn all(&self) -> Result<Vec<(String, DocumentRecord)>, RegisterError> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare(&format!(
                "SELECT {}, d.patient_id FROM {} ORDER BY d.document_id",
                Self::COLUMNS,
                Self::FROM
            ))
            .map_err(db)?;
        stmt.query_map([], |r| Ok((r.get(12)?, Self::row(r)?)))
            .map_err(db)?
            .collect::<rusqlite::Result<_>>()
            .map_err(db)
    }
}

/// What extraction made of a document, recorded on it for the patient.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExtractionStatus {
    pub status: &'static str,
    pub detail: Option<String>,
    pub facts: u32,
    pub needs_review: u32,
}

/// What the payor knows of a member, to check that a document's header names them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MemberDemographics {
    pub family: Option<String>,
    pub given: Option<String>,
    pub birth_date: Option<chrono::NaiveDate>,
}

impl DocumentRegister {
    /// Records extraction's outcome on a document. The register stage and the extract stage
    /// consume the same event in either order, so the outcome may arrive first: it is kept by
    /// document id and shows once the document is registered.
    pub fn set_status(
        &self,
        document: &DocumentId,
        status: &ExtractionStatus,
    ) -> Result<(), RegisterError> {
        self.lock()
            .execute(
                "INSERT INTO document_status (document_id, status, detail, facts, needs_review, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (document_id) DO UPDATE SET status = ?2, detail = ?3, facts = ?4,
                    needs_review = ?5, updated_at = ?6",
                params![
                    document.as_str(),
                    status.status,
                    status.detail,
                    status.facts,
                    status.needs_review,
                    chrono::Utc::now().to_rfc3339()
                ],
            )
            .map_err(db)?;
        Ok(())
    }

    pub fn set_demographics(
        &self,
        patient: &PatientId,
        demo: &MemberDemographics,
    ) -> Result<(), RegisterError> {
        self.lock()
            .execute(
                "INSERT INTO patients (patient_id, family, given, birth_date) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (patient_id) DO UPDATE SET family = ?2, given = ?3, birth_date = ?4",
                params![
                    patient.as_str(),
                    demo.family,
                    demo.given,
                    demo.birth_date.map(|d| d.to_string())
                ],
            )
            .map_err(db)?;
        Ok(())
    }

    pub fn demographics(
        &self,
        patient: &PatientId,
    ) -> Result<Option<MemberDemographics>, RegisterError> {
        self.lock()
            .query_row(
                "SELECT family, given, birth_date FROM patients WHERE patient_id = ?1",
                [patient.as_str()],
                |r| {
                    Ok(MemberDemographics {
                        family: r.get(0)?,
                        given: r.get(1)?,
                        birth_date: r.get::<_, Option<String>>(2)?.and_then(|d| d.parse().ok()),
                    })
                },
            )
            .optional()
            .map_err(db)
    }
}

/// The `register` stage: DocumentReceived → a row in the register, and the document itself
/// as a fact of the record (a FHIR DocumentReference), sent to the graph writer.
#[derive(Debug, Clone)]
pub struct RegisterStage {
    register: DocumentRegister,
    objects: Arc<dyn ObjectStore>,
}

impl RegisterStage {
    pub fn new(register: DocumentRegister, objects: Arc<dyn ObjectStore>) -> Self {
        Self { register, objects }
    }

    /// Stores the document's fact and returns the event that takes it to the graph. The
    /// object and the event are the same on every delivery (derived from the document).
    async fn document_fact(&self, doc: &DocumentReceived) -> Result<Event, StageError> {
        let mut source = Provenance::new(
            SourceKind::PatientUpload,
            doc.document_id.as_str(),
            doc.received_at,
        );
        source.document = Some(doc.document_id.clone());
        source.author = doc.uploaded_by.clone();
        let fact = Fact::new(
            doc.patient_id.clone(),
            FactBody::Document(Document {
                document_id: doc.document_id.clone(),
                media_type: doc.object.media_type.clone(),
                sha256: doc.object.sha256.clone(),
                size: doc.object.size,
                kind: Vec::new(),
                date: When::Instant(doc.received_at),
            }),
            Status::Confirmed,
            source,
        );
        let bytes = serde_json::to_vec(&[fact])
            .map_err(|e| StageError::Permanent(format!("encoding the document fact: {e}")))?;
        let key = format!("facts/{}/{}/document.json", doc.patient_id, doc.document_id);
        let sha256 = hex::encode(Sha256::digest(&bytes));
        let size = bytes.len() as u64;
        self.objects
            .put(&ObjectPath::from(key.as_str()), PutPayload::from(bytes))
            .await
            .map_err(|e| StageError::Transient(format!("storing {key}: {e}")))?;
        Ok(Event::FactsExtracted(FactsExtracted {
            document_id: doc.document_id.clone(),
            patient_id: doc.patient_id.clone(),
            facts: ObjectRef {
                key,
                sha256,
                size,
                media_type: "application/json".into(),
            },
            fact_count: 1,
            needs_review: 0,
            extractor: Producer {
                name: "p360-register".into(),
                version: env!("CARGO_PKG_VERSION").into(),
            },
        }))
    }
}

#[async_trait]
impl Stage for RegisterStage {
    fn name(&self) -> &'static str {
        "register"
    }

    fn subscribes(&self) -> &'static [EventType] {
        &[EventType::DocumentReceived]
    }

    async fn handle(&self, event: &Envelope) -> Result<Vec<Event>, StageError> {
        let Event::DocumentReceived(doc) = &event.event else {
            return Err(StageError::Permanent(format!(
                "register does not handle {}",
                event.event_type()
            )));
        };
        let register = self.register.clone();
        let id = event.id.to_string();
        let owned = doc.clone();
        let fresh = tokio::task::spawn_blocking(move || register.apply_received(&id, &owned))
            .await
            .map_err(|e| StageError::Transient(format!("register task: {e}")))?
            .map_err(|e| StageError::Transient(e.to_string()))?;
        if !fresh {
            tracing::info!(event_id = %event.id, "already in the register");
        }
        // Also on redelivery: the first delivery may have crashed before publishing it.
        Ok(vec![self.document_fact(doc).await?])
    }
}
