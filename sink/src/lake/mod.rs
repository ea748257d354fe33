//! The lake sink: every graph change copied, exactly once, into Parquet files under
//! `<prefix>/<table>/year=YYYY/month=MM/day=DD/part-<batch>.parquet` in the object store
//! (local directory or S3), which DuckDB, Athena, Spark or pyarrow read as hive partitions.
//!
//! Buffering: `handle` hands its GraphChanged to one flusher task and waits. The flusher
//! writes everything that arrived within `flush_interval` of the first waiting change (or
//! `max_rows` changes, if sooner) as one file per table and day, then answers every waiter;
//! the runner acks each event only then. The stage's concurrency bounds a batch, so it runs
//! with a high one (events waiting cost only memory for their ids), and `max_rows` stays
//! below it: a batch that cannot grow is written at once.
//!
//! Exactly once: see [`ledger`]. Values come from the graph when the batch is flushed (events
//! carry ids only), pseudonymized patient keys from [`pseudonym`]. Raw device samples
//! (DeviceReadingsStored) come from the object the event names, read when it arrives.

pub mod compact;
pub mod ledger;
pub mod pseudonym;
pub mod tables;

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{Datelike, Utc};
use ledger::{Entry, Ledger, LedgerError, State};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use p360_consent::ConsentStore;
use p360_events::{
    AccessRecorded, AnalyticsConsentChanged, CareGapsComputed, DeviceReadingsStored, Envelope,
    Event, EventType, GraphChanged, MemberProfile, MembersEnrolled, PatientId,
};
use p360_graph::{GraphStore, facts};
use p360_model::{Fact, FactId};
use p360_runtime::{Stage, StageError};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use pseudonym::Pseudonymizer;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tables::{CareGapRow, ChangeRow, MemberRow, Partitions, ReadingRow};
use tokio::sync::{mpsc, oneshot};

/// Tuning of the lake sink.
#[derive(Clone, Debug)]
pub struct LakeConfig {
    /// Key prefix of the lake in the object store.
    pub prefix: String,
    /// Longest a change waits in the buffer.
    pub flush_interval: Duration,
    /// A batch is flushed early once it holds this many changes.
    pub max_rows: usize,
    /// How often the flusher compacts the lake (small files, withdrawn members' rows);
    /// `None`: only after a withdrawal.
    pub compact_interval: Option<Duration>,
}

impl Default for LakeConfig {
    fn default() -> Self {
        Self {
            prefix: "lake".into(),
            flush_interval: Duration::from_secs(5),
            max_rows: 2000,
            compact_interval: Some(Duration::from_secs(3600)),
        }
    }
}

struct Waiter {
    key: String,
    patient_key: String,
    what: Copied,
    reply: oneshot::Sender<Result<(), String>>,
}

/// What a waiter brings to the lake.
enum Copied {
    Change {
        change: GraphChanged,
        fact_ids: Vec<FactId>,
    },
    Access(AccessRecorded),
    /// A device batch's new samples (`analytics_consent` is stamped at flush).
    Readings {
        patient: PatientId,
        rows: Vec<ReadingRow>,
    },
    /// A roster batch's members.
    Members(Vec<MemberRow>),
    /// One patient's recomputed care gaps.
    Gaps(Vec<CareGapRow>),
    /// An analytics opt-in or withdrawal.
    Consent(AnalyticsConsentChanged),
}

impl Waiter {
    fn rows(&self) -> usize {
        match &self.what {
            Copied::Change { change, .. } => change.changes.len(),
            Copied::Access(_) => 1,
            Copied::Readings { rows, .. } => rows.len(),
            Copied::Members(rows) => rows.len(),
            Copied::Gaps(rows) => rows.len(),
            Copied::Consent(_) => 1,
        }
    }
}

/// The stored-samples object of a DeviceReadingsStored (`p360_devices::store::StoredRecord`).
#[derive(serde::Deserialize)]
struct StoredReadings {
    patient: PatientId,
    samples: Vec<StoredReading>,
}

#[derive(serde::Deserialize)]
struct StoredReading {
    device: String,
    metric: String,
    start: chrono::DateTime<chrono::FixedOffset>,
    #[serde(default)]
    end: Option<chrono::DateTime<chrono::FixedOffset>>,
    value: f64,
    unit: String,
}

/// The part of a care-gap result (`p360_insights::engine::MeasureResult`, as the insights
/// stage stores it) that the lake keeps: statuses, periods and evidence ids, no values but the
/// deciding one.
#[derive(serde::Deserialize)]
struct StoredGap {
    measure_id: String,
    version: String,
    period_start: chrono::NaiveDate,
    period_end: chrono::NaiveDate,
    status: String,
    #[serde(default)]
    evidence: Vec<StoredEvidence>,
    #[serde(default)]
    missing: Vec<String>,
    #[serde(default)]
    exclusion_reason: Option<String>,
}

#[derive(serde::Deserialize)]
struct StoredEvidence {
    fact_id: String,
    date: chrono::NaiveDate,
    #[serde(default)]
    value: Option<f64>,
}

/// The `lake-sink` stage. The ledger is recovered and the flusher started on the first event,
/// so only the process that runs this stage touches the lake (an admin command or another
/// stage's worker building the same wiring does not).
pub struct LakeSink {
    graph: Arc<dyn GraphStore>,
    objects: Arc<dyn ObjectStore>,
    pseudonyms: Pseudonymizer,
    config: LakeConfig,
    /// Patients' analytics opt-in, stamped on their rows; without it, nobody is opted in.
    consent: Option<Arc<dyn ConsentStore>>,
    opened: tokio::sync::OnceCell<Opened>,
}

struct Opened {
    tx: mpsc::Sender<Waiter>,
    done: Arc<Mutex<HashSet<String>>>,
}

impl std::fmt::Debug for LakeSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LakeSink").finish_non_exhaustive()
    }
}

impl LakeSink {
    pub fn new(
        graph: Arc<dyn GraphStore>,
        objects: Arc<dyn ObjectStore>,
        pseudonyms: Pseudonymizer,
        config: LakeConfig,
    ) -> Self {
        Self {
            graph,
            objects,
            pseudonyms,
            config,
            consent: None,
            opened: tokio::sync::OnceCell::new(),
        }
    }

    /// Stamps rows with the patient's analytics opt-in read from `store` at flush time.
    pub fn with_consent(mut self, store: Arc<dyn ConsentStore>) -> Self {
        self.consent = Some(store);
        self
    }

    /// The rows of a DeviceReadingsStored, read from the object it names. Device ids are keyed
    /// like patient ids (with the patient, so one id of two patients' devices is two keys):
    /// a serial number is as identifying as a member id.
    async fn readings(
        &self,
        stored: &DeviceReadingsStored,
        patient_key: &str,
    ) -> Result<Vec<ReadingRow>, StageError> {
        let key = &stored.samples.key;
        let bytes = match self.objects.get(&Path::from(key.as_str())).await {
            Ok(r) => r
                .bytes()
                .await
                .map_err(|e| StageError::Transient(e.to_string()))?,
            Err(object_store::Error::NotFound { .. }) => {
                return Err(StageError::Permanent(format!(
                    "device readings object {key} is missing"
                )));
            }
            Err(e) => return Err(StageError::Transient(e.to_string())),
        };
        let record: StoredReadings = serde_json::from_slice(&bytes).map_err(|e| {
            StageError::Permanent(format!(
                "device readings object {key} is unreadable (line {} column {})",
                e.line(),
                e.column()
            ))
        })?;
        if record.patient != stored.patient_id {
            return Err(StageError::Permanent(format!(
                "device readings object {key} is another patient's"
            )));
        }
        let mut device_keys: HashMap<String, String> = HashMap::new();
        Ok(record
            .samples
            .into_iter()
            .map(|s| {
                let device_key = device_keys
                    .entry(s.device.clone())
                    .or_insert_with(|| {
                        self.pseudonyms.patient_key(&format!(
                            "{}\u{1f}device\u{1f}{}",
                            stored.patient_id, s.device
                        ))
                    })
                    .clone();
                ReadingRow {
                    patient_key: patient_key.to_owned(),
                    device_key,
                    metric: s.metric,
                    start: s.start,
                    end: s.end,
                    value: s.value,
                    unit: s.unit,
                    received_id: stored.received_id.to_string(),
                    stored_at: stored.stored_at,
                }
            })
            .collect())
    }

    /// The bytes of an object an event names: missing is permanent (the event is wrong).
    async fn object(&self, key: &str, what: &str) -> Result<Bytes, StageError> {
        match self.objects.get(&Path::from(key)).await {
            Ok(r) => r
                .bytes()
                .await
                .map_err(|e| StageError::Transient(e.to_string())),
            Err(object_store::Error::NotFound { .. }) => Err(StageError::Permanent(format!(
                "{what} object {key} is missing"
            ))),
            Err(e) => Err(StageError::Transient(e.to_string())),
        }
    }

    /// The rows of a roster batch's profiles (NDJSON, one [`MemberProfile`] per line).
    async fn members(&self, m: &MembersEnrolled) -> Result<Vec<MemberRow>, StageError> {
        let key = &m.profiles.key;
        let bytes = self.object(key, "member profiles").await?;
        let mut rows = Vec::new();
        for (n, line) in bytes.split(|b| *b == b'\n').enumerate() {
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let p: MemberProfile = serde_json::from_slice(line).map_err(|e| {
                StageError::Permanent(format!(
                    "member profiles object {key}: line {} is not a profile (column {})",
                    n + 1,
                    e.column()
                ))
            })?;
            rows.push(MemberRow {
                patient_key: self.pseudonyms.patient_key(p.patient_id.as_str()),
                batch_id: m.batch_id.to_string(),
                recorded_at: m.recorded_at,
                birth_date: p.birth_date,
                sex: p.sex,
                plan_id: p.plan_id,
                region: p.region,
                coverage_start: p.coverage_start,
                coverage_end: p.coverage_end,
            });
        }
        Ok(rows)
    }

    /// The rows of one patient's care-gap computation.
    async fn gaps(
        &self,
        c: &CareGapsComputed,
        patient_key: &str,
    ) -> Result<Vec<CareGapRow>, StageError> {
        let key = &c.results.key;
        let bytes = self.object(key, "care-gap results").await?;
        let results: Vec<StoredGap> = serde_json::from_slice(&bytes).map_err(|e| {
            StageError::Permanent(format!(
                "care-gap results object {key} is unreadable (line {} column {})",
                e.line(),
                e.column()
            ))
        })?;
        Ok(results
            .into_iter()
            .map(|r| {
                let latest = r.evidence.iter().max_by_key(|e| e.date);
                CareGapRow {
                    patient_key: patient_key.to_owned(),
                    computation_id: c.computation_id.clone(),
                    computed_at: c.computed_at,
                    measure_id: r.measure_id,
                    measure_version: r.version,
                    period_start: r.period_start,
                    period_end: r.period_end,
                    status: r.status,
                    evidence_date: latest.map(|e| e.date),
                    evidence_value: latest.and_then(|e| e.value),
                    evidence_fact_ids: r.evidence.into_iter().map(|e| e.fact_id).collect(),
                    exclusion_reason: r.exclusion_reason,
                    missing: (!r.missing.is_empty()).then(|| r.missing.join("; ")),
                }
            })
            .collect())
    }

    /// A sink opened at once: recovery errors surface here.
    pub async fn open(
        graph: Arc<dyn GraphStore>,
        objects: Arc<dyn ObjectStore>,
        pseudonyms: Pseudonymizer,
        config: LakeConfig,
    ) -> Result<Self, LedgerError> {
        let sink = Self::new(graph, objects, pseudonyms, config);
        sink.opened().await?;
        Ok(sink)
    }

    /// Recovers the ledger (rolling back crashed flushes) and starts the flusher task, once.
    async fn opened(&self) -> Result<&Opened, LedgerError> {
        self.opened
            .get_or_try_init(|| async {
                let ledger = Ledger::new(self.objects.clone(), &self.config.prefix);
                let recovered = ledger.recover().await?;
                tracing::info!(
                    committed_batches = recovered.committed_batches,
                    rolled_back = recovered.rolled_back,
                    commits = recovered.done.len(),
                    "lake ledger recovered"
                );
                let done = Arc::new(Mutex::new(recovered.done));
                let (tx, rx) = mpsc::channel(1024);
                let flusher = Flusher {
                    consent: self.consent.clone(),
                    graph: self.graph.clone(),
                    objects: self.objects.clone(),
                    ledger,
                    config: self.config.clone(),
                    done: done.clone(),
                    unfinished: Vec::new(),
                };
                tokio::spawn(flusher.run(rx));
                Ok(Opened { tx, done })
            })
            .await
    }
}

#[async_trait]
impl Stage for LakeSink {
    fn name(&self) -> &'static str {
        "lake-sink"
    }

    fn subscribes(&self) -> &'static [EventType] {
        &[
            EventType::GraphChanged,
            EventType::AccessRecorded,
            EventType::DeviceReadingsStored,
            EventType::MembersEnrolled,
            EventType::CareGapsComputed,
            EventType::AnalyticsConsentChanged,
        ]
    }

    async fn handle(&self, event: &Envelope) -> Result<Vec<Event>, StageError> {
        // The key of the ledger's exactly-once record: the patient's key and the event's own id.
        let key_of = |patient: &PatientId, id: String| {
            let patient_key = self.pseudonyms.patient_key(patient.as_str());
            (format!("{patient_key}/{id}"), patient_key)
        };
        let (key, patient_key, what) = match &event.event {
            Event::GraphChanged(change) => {
                if change.changes.is_empty() {
                    return Ok(Vec::new());
                }
                let fact_ids = change
                    .changes
                    .iter()
                    .map(|c| FactId::parse(&c.fact_id))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| {
                        StageError::Permanent(format!("graph change names a bad fact id: {e}"))
                    })?;
                let (key, pk) = key_of(&change.patient_id, change.commit_id.to_string());
                (
                    key,
                    pk,
                    Copied::Change {
                        change: change.clone(),
                        fact_ids,
                    },
                )
            }
            Event::AccessRecorded(a) => {
                let (key, pk) = key_of(&a.patient_id, format!("access-{}", a.ledger_seq));
                (key, pk, Copied::Access(a.clone()))
            }
            Event::DeviceReadingsStored(r) => {
                let (key, pk) = key_of(&r.patient_id, format!("readings-{}", r.received_id));
                let rows = self.readings(r, &pk).await?;
                if rows.is_empty() {
                    return Ok(Vec::new());
                }
                (
                    key,
                    pk,
                    Copied::Readings {
                        patient: r.patient_id.clone(),
                        rows,
                    },
                )
            }
            Event::MembersEnrolled(m) => {
                let rows = self.members(m).await?;
                if rows.is_empty() {
                    return Ok(Vec::new());
                }
                (
                    format!("members/{}/{}", m.batch_id, m.profiles.sha256),
                    String::new(),
                    Copied::Members(rows),
                )
            }
            Event::CareGapsComputed(c) => {
                let (key, pk) = key_of(&c.patient_id, format!("gaps-{}", c.computation_id));
                let rows = self.gaps(c, &pk).await?;
                (key, pk, Copied::Gaps(rows))
            }
            Event::AnalyticsConsentChanged(c) => {
                let (key, pk) = key_of(&c.patient_id, format!("consent-{}", c.change_id));
                (key, pk, Copied::Consent(c.clone()))
            }
            other => {
                return Err(StageError::Permanent(format!(
                    "lake-sink does not handle {}",
                    other.event_type()
                )));
            }
        };
        let opened = self
            .opened()
            .await
            .map_err(|e| StageError::Transient(e.to_string()))?;
        if opened.done.lock().is_ok_and(|d| d.contains(&key)) {
            tracing::info!(event_id = %event.id, "commit already in the lake");
            return Ok(Vec::new());
        }
        let (reply, answer) = oneshot::channel();
        let waiter = Waiter {
            key,
            patient_key,
            what,
            reply,
        };
        opened
            .tx
            .send(waiter)
            .await
            .map_err(|_| StageError::Transient("the lake flusher has stopped".into()))?;
        match answer.await {
            Ok(Ok(())) => Ok(Vec::new()),
            Ok(Err(e)) => Err(StageError::Transient(e)),
            Err(_) => Err(StageError::Transient("the lake flusher has stopped".into())),
        }
    }
}

struct Flusher {
    consent: Option<Arc<dyn ConsentStore>>,
    graph: Arc<dyn GraphStore>,
    objects: Arc<dyn ObjectStore>,
    ledger: Ledger,
    config: LakeConfig,
    done: Arc<Mutex<HashSet<String>>>,
    /// Failed flushes whose rollback failed too: retried before the next flush, which must
    /// not write while another batch's rows may still be visible.
    unfinished: Vec<Entry>,
}

impl Flusher {
    async fn run(mut self, mut rx: mpsc::Receiver<Waiter>) {
        let mut last_compaction = tokio::time::Instant::now();
        while let Some(first) = rx.recv().await {
            let deadline = tokio::time::Instant::now() + self.config.flush_interval;
            let mut rows = first.rows();
            let mut batch = vec![first];
            while rows < self.config.max_rows {
                tokio::select! {
                    next = rx.recv() => match next {
                        Some(w) => {
                            rows += w.rows();
                            batch.push(w);
                        }
                        None => break,
                    },
                    () = tokio::time::sleep_until(deadline) => break,
                }
            }
            let result = self.flush(&batch).await;
            if let Err(e) = &result {
                tracing::warn!(error = %e, events = batch.len(), "lake flush failed; the events will be retried");
            }
            let withdrawal = result.is_ok()
                && batch
                    .iter()
                    .any(|w| matches!(&w.what, Copied::Consent(c) if !c.population_analytics));
            if withdrawal {
                // Before the ack: once a withdrawal is acknowledged, the member's rows are gone.
                last_compaction = tokio::time::Instant::now();
                self.compact().await;
            }
            for w in batch {
                let _ = w.reply.send(result.clone());
            }
            let due = self
                .config
                .compact_interval
                .is_some_and(|every| last_compaction.elapsed() >= every);
            if due {
                last_compaction = tokio::time::Instant::now();
                self.compact().await;
            }
        }
    }

    /// Between flushes: the ledger has this one writer. A failure is retried at the next one
    /// (views already exclude withdrawn members; compaction makes it physical).
    async fn compact(&self) {
        if let Err(e) = compact::compact(&self.objects, &self.config.prefix, 1).await {
            tracing::warn!(error = %e, "lake compaction failed; retried at the next one");
        }
    }

    async fn flush(&mut self, batch: &[Waiter]) -> Result<(), String> {
        while let Some(entry) = self.unfinished.last() {
            self.ledger
                .roll_back(entry)
                .await
                .map_err(|e| format!("rolling back an earlier failed flush: {e}"))?;
            self.unfinished.pop();
        }
        let mut seen = HashSet::new();
        let todo: Vec<&Waiter> = {
            let done = self.done.lock().map_err(|_| "lake state poisoned")?;
            batch
                .iter()
                .filter(|w| !done.contains(&w.key) && seen.insert(w.key.as_str()))
                .collect()
        };
        if todo.is_empty() {
            return Ok(());
        }
        let facts = self.read_facts(&todo).await?;
        let opted_in = self.analytics(&todo).await?;
        let mut parts = Partitions::new();
        for w in &todo {
            match &w.what {
                Copied::Change { change, fact_ids } => {
                    for (c, id) in change.changes.iter().zip(fact_ids) {
                        let row = ChangeRow {
                            patient_key: w.patient_key.clone(),
                            commit_id: change.commit_id.clone(),
                            committed_at: change.committed_at,
                            fact_id: c.fact_id.clone(),
                            category: c.category.clone(),
                            change_kind: change_kind(c.kind).to_owned(),
                            analytics_consent: opted_in.contains(&change.patient_id),
                        };
                        tables::add_change(
                            &mut parts,
                            &row,
                            facts.get(&(change.patient_id.clone(), id.clone())),
                        );
                    }
                }
                Copied::Access(a) => tables::add_access(&mut parts, &w.patient_key, a),
                Copied::Readings { patient, rows } => {
                    let consent = opted_in.contains(patient);
                    for r in rows {
                        tables::add_reading(&mut parts, r, consent);
                    }
                }
                Copied::Members(rows) => {
                    for m in rows {
                        tables::add_member(&mut parts, m);
                    }
                }
                Copied::Gaps(rows) => {
                    for g in rows {
                        tables::add_care_gap(&mut parts, g);
                    }
                }
                Copied::Consent(c) => tables::add_consent_change(&mut parts, &w.patient_key, c),
            }
        }
        let batch_id = format!(
            "{}-{}",
            Utc::now().format("%Y%m%dT%H%M%S"),
            hex::encode(rand::random::<[u8; 8]>())
        );
        let mut files = Vec::new();
        for ((table, day), rows) in &parts {
            let key = format!(
                "{}/{}/year={:04}/month={:02}/day={:02}/part-{batch_id}.parquet",
                self.config.prefix.trim_end_matches('/'),
                table.name(),
                day.year(),
                day.month(),
                day.day()
            );
            let bytes = encode(rows).map_err(|e| format!("encoding {}: {e}", table.name()))?;
            files.push((key, bytes));
        }
        let mut entry = Entry {
            batch_id,
            state: State::Pending,
            created_at: Utc::now(),
            commits: todo.iter().map(|w| w.key.clone()).collect(),
            files: files.iter().map(|(k, _)| k.clone()).collect(),
            replaces: Vec::new(),
        };
        self.ledger.write(&entry).await.map_err(|e| e.to_string())?;
        let written = async {
            for (key, bytes) in files {
                self.objects
                    .put(&Path::from(key.as_str()), PutPayload::from(bytes))
                    .await
                    .map_err(|e| format!("writing {key}: {e}"))?;
            }
            entry.state = State::Committed;
            self.ledger.write(&entry).await.map_err(|e| e.to_string())
        }
        .await;
        if let Err(e) = written {
            entry.state = State::Pending;
            if let Err(rb) = self.ledger.roll_back(&entry).await {
                tracing::warn!(error = %rb, "rollback of a failed lake flush failed; retrying before the next flush");
                self.unfinished.push(entry);
            }
            return Err(e);
        }
        let rows: usize = parts.values().map(tables::TableRows::len).sum();
        tracing::info!(
            batch_id = %entry.batch_id,
            commits = entry.commits.len(),
            files = entry.files.len(),
            rows,
            "lake batch committed"
        );
        let mut done = self.done.lock().map_err(|_| "lake state poisoned")?;
        done.extend(entry.commits);
        Ok(())
    }

    /// The patients of the batch's changes who opted in to population analytics (read now:
    /// a change of mind applies to the next rows).
    async fn analytics(&self, todo: &[&Waiter]) -> Result<HashSet<PatientId>, String> {
        let Some(store) = &self.consent else {
            return Ok(HashSet::new());
        };
        let patients: BTreeSet<&PatientId> = todo
            .iter()
            .filter_map(|w| match &w.what {
                Copied::Change { change, .. } => Some(&change.patient_id),
                Copied::Readings { patient, .. } => Some(patient),
                Copied::Access(_) | Copied::Members(_) | Copied::Gaps(_) | Copied::Consent(_) => {
                    None
                }
            })
            .collect();
        let mut out = HashSet::new();
        for p in patients {
            let c = store
                .analytics(p)
                .await
                .map_err(|e| format!("reading analytics consent: {e}"))?;
            if c.population_analytics {
                out.insert(p.clone());
            }
        }
        Ok(out)
    }

    /// The current state of every changed fact, one query per 500 facts.
    async fn read_facts(
        &self,
        todo: &[&Waiter],
    ) -> Result<HashMap<(PatientId, FactId), Fact>, String> {
        let wanted: BTreeSet<(PatientId, FactId)> = todo
            .iter()
            .flat_map(|w| match &w.what {
                Copied::Change { change, fact_ids } => fact_ids
                    .iter()
                    .map(|id| (change.patient_id.clone(), id.clone()))
                    .collect::<Vec<_>>(),
                Copied::Access(_)
                | Copied::Readings { .. }
                | Copied::Members(_)
                | Copied::Gaps(_)
                | Copied::Consent(_) => Vec::new(),
            })
            .collect();
        let wanted: Vec<_> = wanted.into_iter().collect();
        let mut out = HashMap::new();
        for chunk in wanted.chunks(500) {
            let found = facts::read_many(&*self.graph, chunk)
                .await
                .map_err(|e| format!("reading changed facts: {e}"))?;
            out.extend(
                found
                    .into_iter()
                    .map(|f| ((f.patient.clone(), f.id.clone()), f)),
            );
        }
        Ok(out)
    }
}

fn change_kind(k: p360_events::ChangeKind) -> &'static str {
    use p360_events::ChangeKind::*;
    match k {
        Added => "added",
        SourceAttached => "source_attached",
        StatusChanged => "status_changed",
        Corrected => "corrected",
        Removed => "removed",
        SourceDetached => "source_detached",
    }
}

/// One Parquet file (Snappy, statistics on) of a table's rows.
pub fn encode(rows: &tables::TableRows) -> Result<Bytes, String> {
    let batch = rows.finish().map_err(|e| e.to_string())?;
    let props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_created_by(format!("p360 {}", env!("CARGO_PKG_VERSION")))
        .build();
    let mut buf = Vec::new();
    let mut writer =
        ArrowWriter::try_new(&mut buf, batch.schema(), Some(props)).map_err(|e| e.to_string())?;
    writer.write(&batch).map_err(|e| e.to_string())?;
    writer.close().map_err(|e| e.to_string())?;
    Ok(Bytes::from(buf))
}
