//! Samples in the object store, and their intake.
//!
//! Layout, all under `devices/<patient>/`:
//! - `batches/<sha256>.json`: what one submission accepted ([`Batch`]), content-addressed and
//!   create-only: the ground truth a replay rebuilds everything else from;
//! - `days/<device>/<metric>/<YYYY-MM-DD>.json`: every stored sample of a device's metric
//!   whose start falls on that UTC day, one per start instant ([`DayFile`]);
//! - `stored/<event-id>.json`: which samples of a batch were new when the `devices` stage
//!   merged it ([`StoredRecord`]), written before the merge so a redelivery answers the same;
//! - `profiles/<device>.json`: the device's name and model as last sent.
//!
//! Idempotent per (device, metric, start): intake drops samples already stored, the stage
//! drops them again when it merges (two submissions may race), and a merge of a sample
//! already present changes nothing.

use crate::sample::{Device, Sample, SampleKey};
use bytes::Bytes;
use chrono::{DateTime, FixedOffset, NaiveDate, Utc};
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, UpdateVersion};
use p360_events::{
    DeviceReadingsReceived, Envelope, Event, EventId, ObjectRef, PatientId, ReadingsChannel, UserId,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashSet};

const PREFIX: &str = "devices";

/// Object store errors, and objects that are not what they should be.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("object store: {0}")]
    Store(#[from] object_store::Error),
    /// A stored object does not parse: a bug or tampering, never retried.
    #[error("{key} is not a valid devices object")]
    Corrupt { key: String },
    #[error("{key} is missing")]
    Missing { key: String },
    #[error("{key} kept changing under concurrent writers")]
    Contended { key: String },
}

impl StoreError {
    /// Whether retrying may help.
    pub fn is_transient(&self) -> bool {
        matches!(self, StoreError::Store(_) | StoreError::Contended { .. })
    }
}

/// Where one device's metric of one UTC day is stored.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DayKey {
    pub device: String,
    pub metric: crate::Metric,
    pub day: NaiveDate,
}

impl DayKey {
    pub fn of(s: &Sample) -> Self {
        Self {
            device: s.device.clone(),
            metric: s.metric,
            day: s.utc_day(),
        }
    }

    fn path(&self, patient: &PatientId) -> Path {
        Path::from(format!(
            "{PREFIX}/{patient}/days/{}/{}/{}.json",
            self.device, self.metric, self.day
        ))
    }
}

/// One stored sample of a day file (device and metric are the file's).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DaySample {
    pub start: DateTime<FixedOffset>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<DateTime<FixedOffset>>,
    pub value: f64,
}

/// A day file: samples ordered by start instant, one per instant.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DayFile {
    pub samples: Vec<DaySample>,
}

impl DayFile {
    pub fn contains(&self, start: DateTime<FixedOffset>) -> bool {
        self.samples
            .binary_search_by(|s| s.start.to_utc().cmp(&start.to_utc()))
            .is_ok()
    }

    /// Adds the samples not present; returns how many were added.
    pub fn merge<'a>(&mut self, new: impl IntoIterator<Item = &'a Sample>) -> usize {
        let mut added = 0;
        for s in new {
            if let Err(at) = self
                .samples
                .binary_search_by(|x| x.start.to_utc().cmp(&s.start.to_utc()))
            {
                self.samples.insert(
                    at,
                    DaySample {
                        start: s.start,
                        end: s.end,
                        value: s.value,
                    },
                );
                added += 1;
            }
        }
        added
    }

    /// The file's samples as [`Sample`]s of `key`'s device and metric.
    pub fn samples_of<'a>(&'a self, key: &'a DayKey) -> impl Iterator<Item = Sample> + 'a {
        self.samples.iter().map(|s| Sample {
            device: key.device.clone(),
            metric: key.metric,
            start: s.start,
            end: s.end,
            value: s.value,
        })
    }
}

/// What one submission accepted.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Batch {
    pub patient: PatientId,
    pub channel: ReadingsChannel,
    pub devices: Vec<Device>,
    pub samples: Vec<Sample>,
}

/// One sample as the lake reads it: self-describing, value in `unit`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StoredSample {
    pub device: String,
    pub metric: String,
    pub start: DateTime<FixedOffset>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<DateTime<FixedOffset>>,
    pub value: f64,
    pub unit: String,
}

impl From<&Sample> for StoredSample {
    fn from(s: &Sample) -> Self {
        Self {
            device: s.device.clone(),
            metric: s.metric.as_str().to_owned(),
            start: s.start,
            end: s.end,
            value: s.value,
            unit: s.metric.unit().to_owned(),
        }
    }
}

/// The samples of a batch that were new when it was merged.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StoredRecord {
    pub patient: PatientId,
    pub received_id: EventId,
    pub stored_at: DateTime<Utc>,
    pub samples: Vec<StoredSample>,
}

pub fn batch_path(patient: &PatientId, sha256: &str) -> Path {
    Path::from(format!("{PREFIX}/{patient}/batches/{sha256}.json"))
}

pub fn stored_path(patient: &PatientId, received: EventId) -> Path {
    Path::from(format!("{PREFIX}/{patient}/stored/{received}.json"))
}

fn profile_path(patient: &PatientId, device: &str) -> Path {
    Path::from(format!("{PREFIX}/{patient}/profiles/{device}.json"))
}

/// Reads a JSON object; `None` if absent.
pub async fn read_json<T: serde::de::DeserializeOwned>(
    objects: &dyn ObjectStore,
    path: &Path,
) -> Result<Option<(T, UpdateVersion)>, StoreError> {
    let got = match objects.get(path).await {
        Ok(g) => g,
        Err(object_store::Error::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let version = UpdateVersion {
        e_tag: got.meta.e_tag.clone(),
        version: got.meta.version.clone(),
    };
    let bytes = got.bytes().await?;
    let value = serde_json::from_slice(&bytes).map_err(|_| StoreError::Corrupt {
        key: path.to_string(),
    })?;
    Ok(Some((value, version)))
}

fn to_json<T: Serialize>(v: &T, path: &Path) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(v).map_err(|_| StoreError::Corrupt {
        key: path.to_string(),
    })
}

/// Writes `bytes` only if no object is there; returns false if one was.
pub async fn create(
    objects: &dyn ObjectStore,
    path: &Path,
    bytes: Vec<u8>,
) -> Result<bool, StoreError> {
    let opts = PutOptions {
        mode: PutMode::Create,
        ..PutOptions::default()
    };
    match objects.put_opts(path, PutPayload::from(bytes), opts).await {
        Ok(_) => Ok(true),
        Err(object_store::Error::AlreadyExists { .. }) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// The day files of `keys`, read concurrently (absent ones empty).
pub async fn read_days(
    objects: &dyn ObjectStore,
    patient: &PatientId,
    keys: impl IntoIterator<Item = DayKey>,
) -> Result<BTreeMap<DayKey, DayFile>, StoreError> {
    futures::stream::iter(keys.into_iter().map(|k| async move {
        let file = read_json::<DayFile>(objects, &k.path(patient))
            .await?
            .map(|(f, _)| f)
            .unwrap_or_default();
        Ok::<_, StoreError>((k, file))
    }))
    .buffer_unordered(16)
    .try_collect()
    .await
}

/// Merges `samples` into their day files; returns the merged files. Each file is updated
/// conditionally on the version read where the store can (S3), so writers in other processes
/// are never lost; the local store cannot, and relies on its one process (the stage holds the
/// patient's lock).
pub async fn merge_days(
    objects: &dyn ObjectStore,
    patient: &PatientId,
    samples: &[Sample],
) -> Result<BTreeMap<DayKey, DayFile>, StoreError> {
    let mut by_day: BTreeMap<DayKey, Vec<Sample>> = BTreeMap::new();
    for s in samples {
        by_day.entry(DayKey::of(s)).or_default().push(s.clone());
    }
    futures::stream::iter(by_day.into_iter().map(|(k, new)| async move {
        let file = merge_day(objects, &k.path(patient), &new).await?;
        Ok::<_, StoreError>((k, file))
    }))
    .buffer_unordered(16)
    .try_collect()
    .await
}

async fn merge_day(
    objects: &dyn ObjectStore,
    path: &Path,
    new: &[Sample],
) -> Result<DayFile, StoreError> {
    for _ in 0..8 {
        let (mut file, version) = match read_json::<DayFile>(objects, path).await? {
            Some((f, v)) => (f, Some(v)),
            None => (DayFile::default(), None),
        };
        if file.merge(new) == 0 {
            return Ok(file);
        }
        let bytes = to_json(&file, path)?;
        let mode = match version {
            None => PutMode::Create,
            Some(v) => PutMode::Update(v),
        };
        let put = |mode| {
            let bytes = bytes.clone();
            async move {
                let opts = PutOptions {
                    mode,
                    ..PutOptions::default()
                };
                objects.put_opts(path, PutPayload::from(bytes), opts).await
            }
        };
        match put(mode).await {
            Ok(_) => return Ok(file),
            Err(
                object_store::Error::AlreadyExists { .. }
                | object_store::Error::Precondition { .. },
            ) => {
                continue;
            }
            Err(object_store::Error::NotImplemented { .. }) => {
                put(PutMode::Overwrite).await?;
                return Ok(file);
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(StoreError::Contended {
        key: path.to_string(),
    })
}

/// Remembers a device's name and model (only when they changed).
pub async fn save_profile(
    objects: &dyn ObjectStore,
    patient: &PatientId,
    device: &Device,
) -> Result<(), StoreError> {
    let path = profile_path(patient, &device.id);
    if read_json::<Device>(objects, &path)
        .await?
        .is_some_and(|(d, _)| &d == device)
    {
        return Ok(());
    }
    objects
        .put(&path, PutPayload::from(to_json(device, &path)?))
        .await?;
    Ok(())
}

/// What a submission did.
#[derive(Debug, Default)]
pub struct Submission {
    /// New samples, in the batch.
    pub accepted: usize,
    /// Samples already stored, or sent twice in the submission.
    pub duplicates: usize,
    /// The event to publish (after the batch is stored); `None` when nothing was new.
    pub event: Option<Envelope>,
}

/// Takes checked samples in: drops those already stored (or repeated), stores the rest as a
/// batch and returns the DeviceReadingsReceived to publish. The batch is content-addressed
/// and its event id derives from it, so a client retrying after a lost response (or a crash
/// before the publish) stores and announces the same batch again, which changes nothing.
pub async fn submit(
    objects: &dyn ObjectStore,
    patient: &PatientId,
    submitted_by: &UserId,
    channel: ReadingsChannel,
    source: &str,
    devices: &[Device],
    samples: Vec<Sample>,
) -> Result<Submission, StoreError> {
    let total = samples.len();
    let mut seen: HashSet<SampleKey> = HashSet::with_capacity(total);
    let samples: Vec<Sample> = samples
        .into_iter()
        .filter(|s| seen.insert(s.key()))
        .collect();
    let keys: std::collections::BTreeSet<DayKey> = samples.iter().map(DayKey::of).collect();
    let days = read_days(objects, patient, keys).await?;
    let mut fresh: Vec<Sample> = samples
        .into_iter()
        .filter(|s| {
            !days
                .get(&DayKey::of(s))
                .is_some_and(|f| f.contains(s.start))
        })
        .collect();
    let mut out = Submission {
        accepted: fresh.len(),
        duplicates: total - fresh.len(),
        event: None,
    };
    if fresh.is_empty() {
        return Ok(out);
    }
    fresh.sort_by_key(Sample::key);
    let used: HashSet<&str> = fresh.iter().map(|s| s.device.as_str()).collect();
    let mut devices: Vec<Device> = devices
        .iter()
        .filter(|d| used.contains(d.id.as_str()))
        .cloned()
        .collect();
    devices.sort_by(|a, b| a.id.cmp(&b.id));
    devices.dedup_by(|a, b| a.id == b.id);
    let batch = Batch {
        patient: patient.clone(),
        channel,
        devices,
        samples: fresh,
    };
    let probe = batch_path(patient, "x");
    let bytes = to_json(&batch, &probe)?;
    let sha = hex::encode(Sha256::digest(&bytes));
    let path = batch_path(patient, &sha);
    let size = bytes.len() as u64;
    // Already there: the same content, since the name is its hash.
    create(objects, &path, bytes).await?;
    let event = Envelope::new(
        EventId::for_key("device-readings", &format!("{patient}/{sha}")),
        source,
        Event::DeviceReadingsReceived(DeviceReadingsReceived {
            patient_id: patient.clone(),
            submitted_by: submitted_by.clone(),
            channel,
            readings: ObjectRef {
                key: path.to_string(),
                sha256: sha,
                size,
                media_type: "application/json".into(),
            },
            sample_count: u32::try_from(batch.samples.len()).unwrap_or(u32::MAX),
            device_count: u32::try_from(batch.devices.len()).unwrap_or(u32::MAX),
        }),
    );
    out.event = Some(event);
    Ok(out)
}

/// An [`ObjectRef`] for JSON `bytes` stored at `path`.
pub fn json_ref(path: &Path, bytes: &Bytes) -> ObjectRef {
    ObjectRef {
        key: path.to_string(),
        sha256: hex::encode(Sha256::digest(bytes)),
        size: bytes.len() as u64,
        media_type: "application/json".into(),
    }
}
