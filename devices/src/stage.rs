//! The `devices` stage: DeviceReadingsReceived → samples merged into their day files → the
//! daily summaries they touch recomputed as Observation facts (FactsResolved, to the graph
//! writer) and the new samples announced to the lake (DeviceReadingsStored).
//!
//! Exactly once: which samples of the batch were new is decided once per event and written
//! (`stored/<event-id>.json`) before the day files change; a redelivery reads that record, so
//! it emits the same events and the lake gets each sample once. The merge itself is
//! idempotent. A patient's events are handled one at a time in this process (a lock per
//! patient stripe), so two batches never race on a day file here; across processes the day
//! files are updated conditionally (see [`store::merge_days`]).

use crate::sample::Sample;
use crate::store::{self, Batch, DayKey, StoreError, StoredRecord, StoredSample};
use crate::summary::{self, DaySummary};
use async_trait::async_trait;
use bytes::Bytes;
use chrono::Utc;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use p360_events::{
    BatchId, DeviceReadingsStored, Envelope, Event, EventType, FactsResolved, PatientId, Producer,
};
use p360_runtime::{Stage, StageError};
use std::collections::{BTreeSet, HashSet};
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use tokio::sync::Mutex;

/// Lock stripes: patients hash onto them, so memory stays fixed whatever the patient count.
const STRIPES: usize = 64;

pub struct DevicesStage {
    objects: Arc<dyn ObjectStore>,
    locks: Vec<Mutex<()>>,
}

impl std::fmt::Debug for DevicesStage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevicesStage").finish_non_exhaustive()
    }
}

fn stage_error(e: StoreError) -> StageError {
    if e.is_transient() {
        StageError::Transient(e.to_string())
    } else {
        StageError::Permanent(e.to_string())
    }
}

impl DevicesStage {
    pub fn new(objects: Arc<dyn ObjectStore>) -> Self {
        Self {
            objects,
            locks: (0..STRIPES).map(|_| Mutex::new(())).collect(),
        }
    }

    fn lock_of(&self, patient: &PatientId) -> &Mutex<()> {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        patient.hash(&mut h);
        &self.locks[(h.finish() as usize) % self.locks.len()]
    }

    /// The samples of `batch` that were new when this event first ran, deciding it now if
    /// it has not been decided.
    async fn new_samples(
        &self,
        event: &Envelope,
        batch: &Batch,
    ) -> Result<(StoredRecord, Bytes), StoreError> {
        let objects = &*self.objects;
        let path = store::stored_path(&batch.patient, event.id);
        loop {
            if let Some(bytes) = read_bytes(objects, &path).await? {
                let record: StoredRecord =
                    serde_json::from_slice(&bytes).map_err(|_| StoreError::Corrupt {
                        key: path.to_string(),
                    })?;
                return Ok((record, bytes));
            }
            let keys: BTreeSet<DayKey> = batch.samples.iter().map(DayKey::of).collect();
            let days = store::read_days(objects, &batch.patient, keys).await?;
            let mut seen = HashSet::new();
            let samples: Vec<StoredSample> = batch
                .samples
                .iter()
                .filter(|s| seen.insert(s.key()))
                .filter(|s| {
                    !days
                        .get(&DayKey::of(s))
                        .is_some_and(|f| f.contains(s.start))
                })
                .map(StoredSample::from)
                .collect();
            let record = StoredRecord {
                patient: batch.patient.clone(),
                received_id: event.id,
                stored_at: Utc::now(),
                samples,
            };
            let bytes = serde_json::to_vec(&record).map_err(|_| StoreError::Corrupt {
                key: path.to_string(),
            })?;
            if store::create(objects, &path, bytes.clone()).await? {
                return Ok((record, Bytes::from(bytes)));
            }
            // Another delivery decided first: read its answer.
        }
    }

    async fn run(&self, event: &Envelope) -> Result<Vec<Event>, StageError> {
        let Event::DeviceReadingsReceived(received) = &event.event else {
            return Err(StageError::Permanent(format!(
                "devices does not handle {}",
                event.event_type()
            )));
        };
        let patient = &received.patient_id;
        let objects = &*self.objects;
        let path = Path::from(received.readings.key.as_str());
        let batch: Batch = match store::read_json(objects, &path)
            .await
            .map_err(stage_error)?
        {
            Some((b, _)) => b,
            None => {
                return Err(StageError::Permanent(format!(
                    "readings object {} is missing",
                    received.readings.key
                )));
            }
        };
        if &batch.patient != patient {
            return Err(StageError::Permanent(format!(
                "readings object {} is another patient's",
                received.readings.key
            )));
        }
        let _guard = self.lock_of(patient).lock().await;
        let (record, record_bytes) = self.new_samples(event, &batch).await.map_err(stage_error)?;
        if record.samples.is_empty() {
            tracing::info!(event_id = %event.id, patient_id = %patient, "every sample was already stored");
            return Ok(Vec::new());
        }
        let new: HashSet<(String, String, chrono::DateTime<Utc>)> = record
            .samples
            .iter()
            .map(|s| (s.device.clone(), s.metric.clone(), s.start.to_utc()))
            .collect();
        let fresh: Vec<Sample> = batch
            .samples
            .iter()
            .filter(|s| {
                new.contains(&(
                    s.device.clone(),
                    s.metric.as_str().to_owned(),
                    s.start.to_utc(),
                ))
            })
            .cloned()
            .collect();
        for d in &batch.devices {
            store::save_profile(objects, patient, d)
                .await
                .map_err(stage_error)?;
        }
        let mut days = store::merge_days(objects, patient, &fresh)
            .await
            .map_err(stage_error)?;

        // The local days the new samples count toward, and the stored days they draw on.
        let wanted: BTreeSet<(String, crate::Metric, chrono::NaiveDate)> = fresh
            .iter()
            .map(|s| (s.device.clone(), s.metric, summary::summary_day(s)))
            .collect();
        let needed: BTreeSet<DayKey> = wanted
            .iter()
            .flat_map(|(device, metric, day)| {
                summary::utc_days_for(*day).map(|d| DayKey {
                    device: device.clone(),
                    metric: *metric,
                    day: d,
                })
            })
            .filter(|k| !days.contains_key(k))
            .collect();
        days.extend(
            store::read_days(objects, patient, needed)
                .await
                .map_err(stage_error)?,
        );
        let now = Utc::now();
        let mut facts = Vec::with_capacity(wanted.len());
        for (device, metric, day) in &wanted {
            let samples: Vec<Sample> = summary::utc_days_for(*day)
                .filter_map(|d| {
                    let k = DayKey {
                        device: device.clone(),
                        metric: *metric,
                        day: d,
                    };
                    days.get_key_value(&k)
                })
                .flat_map(|(k, f)| f.samples_of(k).collect::<Vec<_>>())
                .collect();
            if let Some(s) = DaySummary::of(device, *metric, *day, &samples) {
                facts.push(s.to_fact(patient, now));
            }
        }

        let mut out = Vec::new();
        if !facts.is_empty() {
            let key = Path::from(format!("facts/{patient}/devices-{}.json", event.id));
            let bytes = Bytes::from(
                serde_json::to_vec(&facts).map_err(|e| StageError::Permanent(e.to_string()))?,
            );
            objects
                .put(&key, PutPayload::from(bytes.clone()))
                .await
                .map_err(|e| StageError::Transient(e.to_string()))?;
            let batch_id = BatchId::parse(&format!("devices-{}", event.id))
                .map_err(|e| StageError::Permanent(e.to_string()))?;
            out.push(Event::FactsResolved(FactsResolved {
                batch_id,
                patient_id: patient.clone(),
                facts: store::json_ref(&key, &bytes),
                fact_count: u32::try_from(facts.len()).unwrap_or(u32::MAX),
                // The patient sent them to their own record: nothing was matched.
                matched_by: "owner".into(),
                resolver: Producer {
                    name: "p360-devices".into(),
                    version: env!("CARGO_PKG_VERSION").into(),
                },
            }));
        }
        out.push(Event::DeviceReadingsStored(DeviceReadingsStored {
            patient_id: patient.clone(),
            received_id: event.id,
            samples: store::json_ref(&store::stored_path(patient, event.id), &record_bytes),
            sample_count: u32::try_from(record.samples.len()).unwrap_or(u32::MAX),
            stored_at: record.stored_at,
        }));
        tracing::info!(
            event_id = %event.id,
            patient_id = %patient,
            samples = record.samples.len(),
            days = facts.len(),
            "device readings stored"
        );
        Ok(out)
    }
}

async fn read_bytes(objects: &dyn ObjectStore, path: &Path) -> Result<Option<Bytes>, StoreError> {
    match objects.get(path).await {
        Ok(g) => Ok(Some(g.bytes().await?)),
        Err(object_store::Error::NotFound { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

#[async_trait]
impl Stage for DevicesStage {
    fn name(&self) -> &'static str {
        "devices"
    }

    fn subscribes(&self) -> &'static [EventType] {
        &[EventType::DeviceReadingsReceived]
    }

    async fn handle(&self, event: &Envelope) -> Result<Vec<Event>, StageError> {
        self.run(event).await
    }
}
