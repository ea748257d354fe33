//! The lake's commit ledger: which graph commits are in the lake, kept in the lake's own object
//! store so that it is exactly as durable as the Parquet files it describes.
//!
//! A flush writes, in order: (1) a `pending` entry naming its commits and the files it will
//! write, (2) the files, (3) the entry again as `committed`. Only then are the events acked.
//! On start, committed entries say which commits are done (a redelivered one is skipped), and
//! pending entries are crashed flushes: their files are deleted and their events, never acked,
//! are redelivered and written again. So every commit's rows are in the lake exactly once.
//!
//! One lake sink writes a lake at a time (a second would take the first's pending flush for a
//! crashed one); the serve command and one worker guarantee that.

use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::sync::Arc;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    Pending,
    Committed,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub batch_id: String,
    pub state: State,
    pub created_at: DateTime<Utc>,
    /// `<patient_key>/<commit_id>` of every graph commit whose rows the batch holds.
    pub commits: Vec<String>,
    /// Object keys of the batch's Parquet files.
    pub files: Vec<String>,
    /// A compaction's: the files its one file replaces (deleted once it is committed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replaces: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("lake ledger: {0}")]
    Store(#[from] object_store::Error),
    #[error("lake ledger entry {key} is unreadable; inspect it before restarting the lake sink")]
    Corrupt { key: String },
}

#[derive(Debug, Clone)]
pub struct Ledger {
    store: Arc<dyn ObjectStore>,
    prefix: String,
}

/// What recovery found.
#[derive(Debug, Default)]
pub struct Recovered {
    pub done: HashSet<String>,
    pub committed_batches: usize,
    /// Crashed flushes whose files were removed.
    pub rolled_back: usize,
}

impl Ledger {
    pub fn new(store: Arc<dyn ObjectStore>, lake_prefix: &str) -> Self {
        Self {
            store,
            prefix: format!("{}/_ledger", lake_prefix.trim_end_matches('/')),
        }
    }

    fn key(&self, batch_id: &str) -> Path {
        Path::from(format!("{}/{batch_id}.json", self.prefix))
    }

    pub async fn write(&self, entry: &Entry) -> Result<(), LedgerError> {
        let bytes = serde_json::to_vec(entry).map_err(|_| LedgerError::Corrupt {
            key: self.key(&entry.batch_id).to_string(),
        })?;
        self.store
            .put(&self.key(&entry.batch_id), PutPayload::from(bytes))
            .await?;
        Ok(())
    }

    /// Deletes a batch's files, then its entry. Missing files are fine: the crash may have
    /// come before they were written.
    pub async fn roll_back(&self, entry: &Entry) -> Result<(), LedgerError> {
        for file in &entry.files {
            match self.store.delete(&Path::from(file.as_str())).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        match self.store.delete(&self.key(&entry.batch_id)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Every entry, as stored.
    pub async fn entries(&self) -> Result<Vec<Entry>, LedgerError> {
        let prefix = Path::from(self.prefix.as_str());
        let metas: Vec<_> = self.store.list(Some(&prefix)).try_collect().await?;
        let mut out = Vec::new();
        for meta in metas {
            let key = meta.location.to_string();
            if !key.ends_with(".json") {
                continue;
            }
            let bytes = self.store.get(&meta.location).await?.bytes().await?;
            out.push(serde_json::from_slice(&bytes).map_err(|_| LedgerError::Corrupt { key })?);
        }
        Ok(out)
    }

    /// Reads every entry: committed ones give the done set, pending ones are rolled back.
    pub async fn recover(&self) -> Result<Recovered, LedgerError> {
        let prefix = Path::from(self.prefix.as_str());
        let metas: Vec<_> = self.store.list(Some(&prefix)).try_collect().await?;
        let mut out = Recovered::default();
        for meta in metas {
            let key = meta.location.to_string();
            if !key.ends_with(".json") {
                continue; // e.g. a local store's staging file of an interrupted write
            }
            let bytes = self.store.get(&meta.location).await?.bytes().await?;
            let entry: Entry =
                serde_json::from_slice(&bytes).map_err(|_| LedgerError::Corrupt { key })?;
            match entry.state {
                State::Committed => {
                    out.committed_batches += 1;
                    out.done.extend(entry.commits);
                }
                State::Pending => {
                    self.roll_back(&entry).await?;
                    out.rolled_back += 1;
                }
            }
        }
        Ok(out)
    }
}
