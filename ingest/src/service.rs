//! The one way a document enters p360, whatever the channel: validate the bytes, store them
//! under `raw/<patient>/<sha256>.<ext>`, publish DocumentReceived.
//!
//! Idempotent by content per patient: the object key and the document id derive from the
//! patient and the SHA-256, and the event id from the document id. A retried upload, or a
//! source that crashed between storing and publishing and runs again, produces the same object
//! (written only if absent) and the same event (dropped as a duplicate downstream).

use crate::content::{ContentError, ContentLimits, MediaType, validate};
use bytes::Bytes;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use p360_events::{
    Channel, DocumentId, DocumentReceived, Envelope, Event, EventId, ObjectRef, PatientId, UserId,
};
use p360_queue::Publisher;
use sha2::{Digest, Sha256};
use std::sync::Arc;

/// Why an ingest failed.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The content is not acceptable: the client must fix it (a 4xx).
    #[error("{0}")]
    Content(#[from] ContentError),
    /// Storage or queue failure: retrying later may succeed (a 503).
    #[error("temporarily unavailable: {0}")]
    Unavailable(String),
}

/// The result of an accepted document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Accepted {
    pub document_id: DocumentId,
    pub object: ObjectRef,
    /// The same content was already stored for this patient.
    pub duplicate: bool,
    pub event_id: EventId,
}

#[derive(Clone, Debug)]
pub struct IngestService {
    store: Arc<dyn ObjectStore>,
    publisher: Arc<dyn Publisher>,
    limits: ContentLimits,
}

/// Object key of a raw document.
pub fn raw_key(patient: &PatientId, sha256_hex: &str, media: MediaType) -> String {
    format!("raw/{patient}/{sha256_hex}.{}", media.extension())
}

impl IngestService {
    pub fn new(
        store: Arc<dyn ObjectStore>,
        publisher: Arc<dyn Publisher>,
        limits: ContentLimits,
    ) -> Self {
        Self {
            store,
            publisher,
            limits,
        }
    }

    pub fn limits(&self) -> &ContentLimits {
        &self.limits
    }

    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    /// Validates, stores and announces one document.
    pub async fn ingest(
        &self,
        patient: &PatientId,
        bytes: Bytes,
        channel: Channel,
        uploaded_by: Option<&UserId>,
    ) -> Result<Accepted, IngestError> {
        let limits = self.limits.clone();
        let checked = bytes.clone();
        // Decoding a photo takes tens of milliseconds: keep it off the async workers.
        let (media, sha) = tokio::task::spawn_blocking(move || {
            let media = validate(&checked, &limits)?;
            Ok::<_, ContentError>((media, hex::encode(Sha256::digest(&checked))))
        })
        .await
        .map_err(|e| IngestError::Unavailable(format!("validation task failed: {e}")))??;

        let key = raw_key(patient, &sha, media);
        let path = ObjectPath::from(key.as_str());
        let size = bytes.len() as u64;
        let payload_again = bytes.clone();
        let put = self
            .store
            .put_opts(
                &path,
                PutPayload::from(bytes),
                PutOptions {
                    mode: PutMode::Create,
                    ..PutOptions::default()
                },
            )
            .await;
        let duplicate = match put {
            Ok(_) => false,
            Err(object_store::Error::AlreadyExists { .. }) => true,
            // Stores without conditional puts: check, then write. Racing writers of one key
            // write identical bytes (the key is the content hash), so the race is harmless.
            Err(object_store::Error::NotImplemented { .. }) => {
                self.put_if_absent(&path, payload_again).await?
            }
            Err(e) => return Err(IngestError::Unavailable(format!("storing {key}: {e}"))),
        };

        let document_id = DocumentId::for_content(patient, &sha);
        let object = ObjectRef {
            key,
            sha256: sha,
            size,
            media_type: media.mime().to_owned(),
        };
        let event_id = EventId::for_key("document.received", document_id.as_str());
        let event = Envelope::new(
            event_id,
            match channel {
                Channel::Upload => "/p360/ingest/api",
                Channel::DropFolder => "/p360/ingest/drop-folder",
                Channel::S3Drop => "/p360/ingest/s3-drop",
            },
            Event::DocumentReceived(DocumentReceived {
                document_id: document_id.clone(),
                patient_id: patient.clone(),
                object: object.clone(),
                channel,
                uploaded_by: uploaded_by.cloned(),
                received_at: chrono::Utc::now(),
            }),
        );
        // Published even for a duplicate: the first attempt may have crashed before this line.
        self.publisher
            .publish(&[event])
            .await
            .map_err(|e| IngestError::Unavailable(format!("publishing: {e}")))?;
        tracing::info!(patient_id = %patient, document_id = %document_id, duplicate, ?channel, "document received");
        Ok(Accepted {
            document_id,
            object,
            duplicate,
            event_id,
        })
    }

    /// Returns whether the object already existed.
    async fn put_if_absent(&self, path: &ObjectPath, bytes: Bytes) -> Result<bool, IngestError> {
        match self.store.head(path).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => {
                self.store
                    .put(path, PutPayload::from(bytes))
                    .await
                    .map_err(|e| IngestError::Unavailable(format!("storing {path}: {e}")))?;
                Ok(false)
            }
            Err(e) => Err(IngestError::Unavailable(format!("checking {path}: {e}"))),
        }
    }
}
