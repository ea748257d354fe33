//! An Apple Health export taken in whole: read in chunks on a blocking thread, each chunk
//! stored and announced as it comes ([`store::submit`]), so a multi-GB export needs the
//! memory of one chunk. Shared by the API (the body streamed through
//! [`crate::apple::ChannelReader`]) and `p360 devices import-apple-health` (a file).

use crate::apple::{AppleHealthReader, LineError, ReadError};
use crate::store::{self, StoreError};
use chrono::{DateTime, Utc};
use object_store::ObjectStore;
use p360_events::{PatientId, ReadingsChannel, UserId};
use p360_queue::Publisher;
use serde::Serialize;
use std::io::BufRead;

/// Samples per stored batch (and event).
pub const CHUNK: usize = 20_000;

/// Refused records listed in a report; the rest are only counted.
pub const MAX_LISTED: usize = 100;

/// What an import did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ImportReport {
    /// `<Record>` elements read.
    pub records: u64,
    /// New samples stored.
    pub accepted: u64,
    /// Samples already stored (idempotent per device, metric and start).
    pub duplicates: u64,
    /// Records refused (see `errors`, the first [`MAX_LISTED`]).
    pub rejected: u64,
    /// Records of types p360 does not keep.
    pub unknown_types: u64,
    /// Sleep records that are not sleep (in bed, awake).
    pub not_asleep: u64,
    pub errors: Vec<LineError>,
    /// Batches stored and announced.
    pub batches: u64,
    /// Where and why reading stopped early (truncated or malformed); `None` when complete.
    pub failure: Option<ReadError>,
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("publishing device readings: {0}")]
    Publish(String),
    #[error("the export reader stopped: {0}")]
    Reader(String),
}

/// Reads `input` to its end (or to where it breaks off), storing and announcing each chunk.
#[allow(clippy::too_many_arguments)]
pub async fn import<R: BufRead + Send + 'static>(
    input: R,
    objects: &dyn ObjectStore,
    publisher: &dyn Publisher,
    patient: &PatientId,
    submitted_by: &UserId,
    source: &str,
    now: DateTime<Utc>,
) -> Result<ImportReport, ImportError> {
    let (tx, mut rx) = tokio::sync::mpsc::channel(1);
    let parser = tokio::task::spawn_blocking(move || {
        let mut reader = AppleHealthReader::new(input, now);
        loop {
            let chunk = reader.next_chunk(CHUNK);
            let done = chunk.done;
            if tx.blocking_send(chunk).is_err() || done {
                break;
            }
        }
        reader.counts().clone()
    });
    let mut report = ImportReport::default();
    while let Some(chunk) = rx.recv().await {
        let room = MAX_LISTED.saturating_sub(report.errors.len());
        report.errors.extend(chunk.rejected.into_iter().take(room));
        if chunk.failure.is_some() {
            report.failure = chunk.failure;
        }
        if chunk.samples.is_empty() {
            continue;
        }
        let sub = store::submit(
            objects,
            patient,
            submitted_by,
            ReadingsChannel::AppleHealth,
            source,
            &chunk.devices,
            chunk.samples,
        )
        .await?;
        if let Some(event) = &sub.event {
            publisher
                .publish(std::slice::from_ref(event))
                .await
                .map_err(|e| ImportError::Publish(e.to_string()))?;
            report.batches += 1;
        }
        report.accepted += sub.accepted as u64;
        report.duplicates += sub.duplicates as u64;
    }
    let counts = parser
        .await
        .map_err(|e| ImportError::Reader(e.to_string()))?;
    report.records = counts.records;
    report.rejected = counts.rejected;
    report.unknown_types = counts.unknown_types;
    report.not_asleep = counts.not_asleep;
    Ok(report)
}
