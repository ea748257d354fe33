//! The local drop folder: files placed in `<root>/<patient-id>/` are ingested and removed.
//!
//! Polling rather than inotify: a scan must run at start anyway (files dropped while p360 was
//! down), it works on network and container-mounted folders where change notifications do not,
//! and a one-second delay is invisible next to OCR.
//!
//! - A file is taken only when it has not changed for `settle` (it may still be being copied).
//! - Accepted: ingested, then deleted. A crash between the two re-ingests it on the next scan,
//!   which is a no-op (ingest is idempotent by content).
//! - Refused content, or a folder that is not a valid patient id: moved to
//!   `<root>/.rejected/<folder>/` with a `<name>.reason.txt` beside it saying why.
//! - Storage or queue unavailable: left in place and retried on the next scan.

use crate::service::{IngestError, IngestService};
use bytes::Bytes;
use futures::StreamExt;
use p360_events::{Channel, PatientId};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};
use tokio_util::sync::CancellationToken;

/// Files ingested at once: lets their queue commits share fsyncs.
const CONCURRENCY: usize = 8;

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ScanReport {
    pub accepted: usize,
    pub rejected: usize,
    /// Left in place after a transient failure.
    pub deferred: usize,
}

#[derive(Debug, Clone)]
pub struct DropFolder {
    root: PathBuf,
    service: IngestService,
    settle: Duration,
}

enum Outcome {
    Accepted,
    Rejected,
    Deferred,
}

impl DropFolder {
    pub fn new(root: impl Into<PathBuf>, service: IngestService, settle: Duration) -> Self {
        Self {
            root: root.into(),
            service,
            settle,
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Lists settled files as (folder name, path).
    async fn candidates(&self) -> std::io::Result<Vec<(String, PathBuf)>> {
        let mut out = Vec::new();
        let mut dirs = match tokio::fs::read_dir(&self.root).await {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(e),
        };
        let now = SystemTime::now();
        while let Some(dir) = dirs.next_entry().await? {
            let name = dir.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') || !dir.file_type().await?.is_dir() {
                continue;
            }
            let mut files = tokio::fs::read_dir(dir.path()).await?;
            while let Some(f) = files.next_entry().await? {
                let fname = f.file_name();
                if fname.to_string_lossy().starts_with('.') {
                    continue; // editors' and copy tools' temporary files
                }
                let meta = f.metadata().await?;
                let settled = meta
                    .modified()
                    .ok()
                    .and_then(|m| now.duration_since(m).ok())
                    .is_some_and(|age| age >= self.settle);
                if meta.is_file() && settled {
                    out.push((name.clone(), f.path()));
                }
            }
        }
        out.sort();
        Ok(out)
    }

    /// Ingests every settled file once.
    pub async fn scan_once(&self) -> std::io::Result<ScanReport> {
        let files = self.candidates().await?;
        let outcomes: Vec<Outcome> = futures::stream::iter(files)
            .map(|(folder, path)| self.take(folder, path))
            .buffer_unordered(CONCURRENCY)
            .collect()
            .await;
        let mut report = ScanReport::default();
        for o in outcomes {
            match o {
                Outcome::Accepted => report.accepted += 1,
                Outcome::Rejected => report.rejected += 1,
                Outcome::Deferred => report.deferred += 1,
            }
        }
        Ok(report)
    }

    async fn take(&self, folder: String, path: PathBuf) -> Outcome {
        let Ok(patient) = PatientId::parse(&folder) else {
            return self
                .reject(
                    &folder,
                    &path,
                    "the folder name is not a patient id (letters, digits, '.', '_', ':' and '-')",
                )
                .await;
        };
        let bytes = match tokio::fs::read(&path).await {
            Ok(b) => Bytes::from(b),
            Err(e) => {
                tracing::warn!(error = %e, "drop folder: cannot read a file; will retry");
                return Outcome::Deferred;
            }
        };
        match self
            .service
            .ingest(&patient, bytes, Channel::DropFolder, None)
            .await
        {
            Ok(_) => match tokio::fs::remove_file(&path).await {
                Ok(()) => Outcome::Accepted,
                Err(e) => {
                    // Ingested; the next scan re-ingests it harmlessly and tries again.
                    tracing::warn!(error = %e, "drop folder: cannot remove an ingested file");
                    Outcome::Accepted
                }
            },
            Err(IngestError::Content(e)) => self.reject(&folder, &path, &e.to_string()).await,
            Err(e @ IngestError::Unavailable(_)) => {
                tracing::warn!(error = %e, "drop folder: ingest unavailable; will retry");
                Outcome::Deferred
            }
        }
    }

    async fn reject(&self, folder: &str, path: &Path, reason: &str) -> Outcome {
        let dir = self.root.join(".rejected").join(folder);
        let Some(name) = path.file_name() else {
            return Outcome::Deferred;
        };
        let target = dir.join(name);
        let mut reason_name = name.to_os_string();
        reason_name.push(".reason.txt");
        let moved = async {
            tokio::fs::create_dir_all(&dir).await?;
            tokio::fs::write(dir.join(reason_name), format!("{reason}\n")).await?;
            tokio::fs::rename(path, &target).await
        }
        .await;
        match moved {
            Ok(()) => {
                tracing::warn!(folder, reason, "drop folder: file rejected");
                Outcome::Rejected
            }
            Err(e) => {
                tracing::warn!(error = %e, "drop folder: cannot move a rejected file");
                Outcome::Deferred
            }
        }
    }

    /// Scans every `interval` until `shutdown`.
    pub async fn run(self, interval: Duration, shutdown: CancellationToken) {
        tracing::info!(root = %self.root.display(), "drop folder watching");
        while !shutdown.is_cancelled() {
            match self.scan_once().await {
                Ok(r) if r != ScanReport::default() => {
                    tracing::info!(
                        accepted = r.accepted,
                        rejected = r.rejected,
                        deferred = r.deferred,
                        "drop folder scan"
                    );
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "drop folder scan failed"),
            }
            tokio::select! {
                () = tokio::time::sleep(interval) => {}
                () = shutdown.cancelled() => {}
            }
        }
    }
}
