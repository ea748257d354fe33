//! Feed intake: a payor publishes a batch as a folder of files under `feeds/<batch-id>/` in
//! the object store (an S3 prefix on AWS, `data/objects/feeds/` locally); the batch is
//! complete when its manifest `_manifest.json` lands (batch id, source system, each file with
//! its SHA-256). [`submit`] publishes a local folder that way (`p360 feeds submit`);
//! [`pending`] finds manifests not yet announced, for the watcher that emits
//! FeedBatchReceived. A batch is idempotent by id and content: the event id derives from the
//! batch id and the manifest's hash, and a second submission of the same files changes
//! nothing, while the same id with other content is refused.

use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use p360_events::{BatchId, EventId, FeedBatchReceived, FeedFormat, ObjectRef};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::Path;

pub const PREFIX: &str = "feeds";
pub const MANIFEST: &str = "_manifest.json";
/// Written by the watcher once a manifest's event is published.
pub const RECEIVED: &str = "_received.json";
/// The batch report, written by the enrich stage.
pub const REPORT: &str = "_report.json";

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestFile {
    /// Relative to the batch folder, with `/`.
    pub path: String,
    pub sha256: String,
    pub size: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub schema: String,
    pub batch_id: String,
    pub source_system: String,
    pub files: Vec<ManifestFile>,
}

#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    #[error("{0}: cannot read: {1}")]
    Read(String, std::io::Error),
    #[error("object store: {0}")]
    Store(#[from] object_store::Error),
    #[error("batch {0} was already submitted with other content; use a new batch id")]
    Conflict(String),
    #[error("batch id {0:?} is not usable (letters, digits, . _ : - only)")]
    BadId(String),
    #[error("the folder holds no feed files")]
    Empty,
}

/// Whether a relative path is safe to place under the batch prefix.
pub fn safe_path(p: &str) -> bool {
    !p.is_empty()
        && !p.starts_with('/')
        && p.split('/')
            .all(|c| !c.is_empty() && c != "." && c != ".." && !c.starts_with('_'))
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) -> Result<(), IntakeError> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| IntakeError::Read(dir.display().to_string(), e))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .collect();
    entries.sort();
    for p in entries {
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        if name.starts_with('.') || name.starts_with('_') {
            continue;
        }
        if p.is_dir() {
            walk(root, &p, out)?;
        } else if let Ok(rel) = p.strip_prefix(root) {
            out.push(
                rel.components()
                    .map(|c| c.as_os_str().to_string_lossy())
                    .collect::<Vec<_>>()
                    .join("/"),
            );
        }
    }
    Ok(())
}

/// Publishes the folder `dir` as batch `batch_id`: every file, then the manifest. Returns the
/// manifest and whether it was new (false: the same batch was already there, unchanged).
pub async fn submit(
    store: &dyn ObjectStore,
    dir: &Path,
    batch_id: &str,
    source_system: &str,
) -> Result<(Manifest, bool), IntakeError> {
    BatchId::parse(batch_id).map_err(|_| IntakeError::BadId(batch_id.to_string()))?;
    let mut rels = Vec::new();
    walk(dir, dir, &mut rels)?;
    rels.retain(|r| safe_path(r));
    if rels.is_empty() {
        return Err(IntakeError::Empty);
    }
    // The manifest first (hashing every file), so that a conflicting resubmission is refused
    // before any stored file is touched.
    let mut files = Vec::with_capacity(rels.len());
    for rel in &rels {
        let path = dir.join(rel);
        let bytes = tokio::fs::read(&path)
            .await
            .map_err(|e| IntakeError::Read(path.display().to_string(), e))?;
        files.push(ManifestFile {
            path: rel.clone(),
            sha256: hex::encode(Sha256::digest(&bytes)),
            size: bytes.len() as u64,
        });
    }
    let manifest = Manifest {
        schema: "p360-feed-manifest/1".into(),
        batch_id: batch_id.to_string(),
        source_system: source_system.to_string(),
        files,
    };
    let body = serde_json::to_vec_pretty(&manifest).unwrap_or_default();
    let key = ObjectPath::from(format!("{PREFIX}/{batch_id}/{MANIFEST}"));
    match store.get(&key).await {
        Ok(r) => {
            let existing = r.bytes().await?;
            return if existing.as_ref() == body.as_slice() {
                Ok((manifest, false))
            } else {
                Err(IntakeError::Conflict(batch_id.to_string()))
            };
        }
        Err(object_store::Error::NotFound { .. }) => {}
        Err(e) => return Err(e.into()),
    }
    for f in &manifest.files {
        let path = dir.join(&f.path);
        let bytes = tokio::fs::read(&path)
            .await
            .map_err(|e| IntakeError::Read(path.display().to_string(), e))?;
        if hex::encode(Sha256::digest(&bytes)) != f.sha256 {
            return Err(IntakeError::Read(
                path.display().to_string(),
                std::io::Error::other("changed while being submitted"),
            ));
        }
        store
            .put(
                &ObjectPath::from(format!("{PREFIX}/{batch_id}/{}", f.path)),
                PutPayload::from(bytes),
            )
            .await?;
    }
    // Create-only: two submitters racing on one id cannot both win.
    let create = PutOptions {
        mode: PutMode::Create,
        ..PutOptions::default()
    };
    match store
        .put_opts(&key, PutPayload::from(body.clone()), create)
        .await
    {
        Ok(_) => Ok((manifest, true)),
        Err(object_store::Error::AlreadyExists { .. }) => {
            let existing = store.get(&key).await?.bytes().await?;
            if existing.as_ref() == body.as_slice() {
                Ok((manifest, false))
            } else {
                Err(IntakeError::Conflict(batch_id.to_string()))
            }
        }
        Err(e) => Err(e.into()),
    }
}

/// The event announcing a batch: its id derives from the batch id and the manifest's hash.
pub fn announcement(
    batch_id: &BatchId,
    manifest_key: &str,
    manifest: &[u8],
) -> (EventId, FeedBatchReceived) {
    let sha = hex::encode(Sha256::digest(manifest));
    let id = EventId::for_key("feed.batch", &format!("{batch_id}:{sha}"));
    (
        id,
        FeedBatchReceived {
            batch_id: batch_id.clone(),
            format: FeedFormat::Batch,
            object: ObjectRef {
                key: manifest_key.to_string(),
                sha256: sha,
                size: manifest.len() as u64,
                media_type: "application/json".into(),
            },
            resource_type: None,
        },
    )
}

/// Batches whose manifest has landed and has not been announced yet.
pub async fn pending(
    store: &dyn ObjectStore,
) -> Result<Vec<(EventId, FeedBatchReceived)>, IntakeError> {
    let prefix = ObjectPath::from(PREFIX);
    let listing = store.list_with_delimiter(Some(&prefix)).await?;
    let mut out = Vec::new();
    for dir in listing.common_prefixes {
        let Some(batch) = dir.filename().map(str::to_string) else {
            continue;
        };
        let Ok(batch_id) = BatchId::parse(&batch) else {
            continue;
        };
        let manifest_key = ObjectPath::from(format!("{PREFIX}/{batch}/{MANIFEST}"));
        let manifest = match store.get(&manifest_key).await {
            Ok(r) => r.bytes().await?,
            Err(object_store::Error::NotFound { .. }) => continue, // still uploading
            Err(e) => return Err(e.into()),
        };
        let (id, event) = announcement(&batch_id, manifest_key.as_ref(), &manifest);
        let received = ObjectPath::from(format!("{PREFIX}/{batch}/{RECEIVED}"));
        match store.get(&received).await {
            Ok(r) => {
                let seen = r.bytes().await?;
                if seen.as_ref() == event.object.sha256.as_bytes() {
                    continue;
                }
            }
            Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        out.push((id, event));
    }
    Ok(out)
}

/// Marks a batch announced (after its event was published).
pub async fn mark_received(
    store: &dyn ObjectStore,
    event: &FeedBatchReceived,
) -> Result<(), IntakeError> {
    let key = ObjectPath::from(format!("{PREFIX}/{}/{RECEIVED}", event.batch_id));
    store
        .put(
            &key,
            PutPayload::from(event.object.sha256.clone().into_bytes()),
        )
        .await?;
    Ok(())
}
