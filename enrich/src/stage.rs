//! The `enrich` stage: FeedBatchReceived (a batch's manifest) in; the batch's files fetched and
//! checked against the manifest, matched and resolved as `p360 enrich` does, each member's
//! facts written to `facts/<member>/enrich-<batch>.json`, the batch report to
//! `feeds/<batch>/_report.json` (with `_links.ndjson` and `_review.ndjson` beside it), and one
//! FactsResolved per member with facts out, to the graph writer.
//!
//! A member's patient id is their member id (the payor hosts p360: its members are the
//! patients). Outputs are a function of the batch's bytes (the Provenance `recorded` time is
//! the event's time), so a redelivered event writes the same objects and republishes the same
//! events, which the graph writer applies once.

use crate::feeds::FeedKind;
use crate::intake::{self, Manifest};
use crate::run::{self, Input, Options};
use async_trait::async_trait;
use object_store::path::Path as ObjectPath;
use object_store::{GetResult, ObjectStore, ObjectStoreExt, PutPayload};
use p360_events::{Envelope, Event, EventType, FactsResolved, ObjectRef, PatientId, Producer};
use p360_runtime::{Stage, StageError};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use sha2::{Digest, Sha256};
use std::path::Path;
use std::sync::Arc;

pub struct EnrichStage {
    objects: Arc<dyn ObjectStore>,
    jobs: usize,
    metrics: EnrichMetrics,
    /// Where a batch's files are unpacked while it runs (see [`WorkDir`]).
    work_root: std::path::PathBuf,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Label {
    kind: &'static str,
}

/// What the stage resolved, for `/metrics`: counts only, labelled by kind (never ids).
#[derive(Clone, Debug, Default)]
pub struct EnrichMetrics {
    batches: Counter,
    /// Person-records by decision: `linked`, `review`, `unmatched`.
    records: Family<Label, Counter>,
    /// Bad records in the batch reports.
    rejected: Counter,
    /// Facts out: `new` (distinct facts) and `merged` (statements folded into one).
    facts: Family<Label, Counter>,
}

impl EnrichMetrics {
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "feed_batches",
            "Payor feed batches resolved",
            self.batches.clone(),
        );
        registry.register(
            "feed_records",
            "Person-records of payor feeds, by match decision (linked, review, unmatched)",
            self.records.clone(),
        );
        registry.register(
            "feed_rejected_records",
            "Bad records of payor feeds (each a line of its batch report)",
            self.rejected.clone(),
        );
        registry.register(
            "feed_facts",
            "Facts resolved from payor feeds: new (distinct) and merged (statements of a fact already there)",
            self.facts.clone(),
        );
    }

    fn count(&self, s: &crate::run::Summary) {
        self.batches.inc();
        for (kind, n) in [
            ("linked", s.linked),
            ("review", s.review),
            ("unmatched", s.unmatched),
        ] {
            self.records.get_or_create(&Label { kind }).inc_by(n);
        }
        self.rejected.inc_by(s.problems);
        self.facts
            .get_or_create(&Label { kind: "new" })
            .inc_by(s.facts);
        self.facts
            .get_or_create(&Label { kind: "merged" })
            .inc_by(s.merged);
    }
}

impl EnrichStage {
    pub fn new(objects: Arc<dyn ObjectStore>, jobs: usize) -> Self {
        Self {
            objects,
            jobs: jobs.max(1),
            metrics: EnrichMetrics::default(),
            work_root: std::env::temp_dir().join("p360-enrich"),
        }
    }

    /// Unpacks batches under `root` (`p360 serve`: the data directory's `work/enrich`).
    pub fn with_work_root(mut self, root: std::path::PathBuf) -> Self {
        self.work_root = root;
        self
    }

    /// Counts into `metrics` (registered by the caller).
    pub fn with_metrics(mut self, metrics: EnrichMetrics) -> Self {
        self.metrics = metrics;
        self
    }
}

fn transient(e: impl std::fmt::Display) -> StageError {
    StageError::Transient(e.to_string())
}

async fn get(store: &dyn ObjectStore, key: &str) -> Result<bytes::Bytes, StageError> {
    opened(store, key).await?.bytes().await.map_err(transient)
}

async fn opened(store: &dyn ObjectStore, key: &str) -> Result<GetResult, StageError> {
    match store.get(&ObjectPath::from(key)).await {
        Ok(r) => Ok(r),
        // The manifest lands last: a missing file is a batch still being written or a broken
        // one; retries tell which (then the dead-letter queue has the reason).
        Err(object_store::Error::NotFound { .. }) => {
            Err(StageError::Transient(format!("{key} is missing")))
        }
        Err(e) => Err(transient(e)),
    }
}

/// Copies a batch file to `path` chunk by chunk, hashing as it goes: memory stays one chunk
/// whatever the file's size. Returns the hex sha256 of what was written.
async fn download(store: &dyn ObjectStore, key: &str, path: &Path) -> Result<String, StageError> {
    use futures::StreamExt;
    use tokio::io::AsyncWriteExt;
    let mut stream = opened(store, key).await?.into_stream();
    let file = tokio::fs::File::create(path).await.map_err(transient)?;
    let mut out = tokio::io::BufWriter::with_capacity(1 << 20, file);
    let mut hash = Sha256::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(transient)?;
        hash.update(&chunk);
        out.write_all(&chunk).await.map_err(transient)?;
    }
    out.flush().await.map_err(transient)?;
    Ok(hex::encode(hash.finalize()))
}

/// A batch's scratch directory under the stage's work root, removed when the run ends. A
/// process killed mid-run cannot remove it, so each holds an exclusive lock on its `.lock`
/// file for as long as it runs (the kernel drops the lock with the process), and every new
/// run first deletes the directories whose lock it can take: leftovers of dead runs, never
/// the directory of a run still going (in this process or another).
struct WorkDir {
    dir: tempfile::TempDir,
    _lock: std::fs::File,
}

const LOCK: &str = ".lock";
/// A directory without a lock file older than this is a run that died while setting up.
const UNLOCKED_MAX_AGE: std::time::Duration = std::time::Duration::from_secs(3600);

impl WorkDir {
    fn create(root: &Path, batch: &str) -> std::io::Result<Self> {
        std::fs::create_dir_all(root)?;
        sweep(root);
        let dir = tempfile::Builder::new()
            .prefix(&format!("{batch}-"))
            .tempdir_in(root)?;
        let lock = std::fs::File::create(dir.path().join(LOCK))?;
        lock.try_lock().map_err(std::io::Error::other)?;
        Ok(Self { dir, _lock: lock })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// Removes the work directories of runs that died. One still being set up (no lock file yet)
/// is left alone unless it is old.
fn sweep(root: &Path) {
    let Ok(entries) = std::fs::read_dir(root) else {
        return;
    };
    for e in entries.flatten() {
        let path = e.path();
        if !e.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let dead = match std::fs::OpenOptions::new()
            .write(true)
            .open(path.join(LOCK))
        {
            // The lock is free: its run is over and did not clean up (killed).
            Ok(f) => f.try_lock().is_ok(),
            Err(_) => e
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age > UNLOCKED_MAX_AGE),
        };
        if dead {
            match std::fs::remove_dir_all(&path) {
                Ok(()) => tracing::info!("removed the work directory of an interrupted feed run"),
                Err(err) => {
                    tracing::warn!(error = %err, "could not remove an old feed work directory")
                }
            }
        }
    }
}

#[async_trait]
impl Stage for EnrichStage {
    fn name(&self) -> &'static str {
        "enrich"
    }

    fn subscribes(&self) -> &'static [EventType] {
        &[EventType::FeedBatchReceived]
    }

    async fn handle(&self, event: &Envelope) -> Result<Vec<Event>, StageError> {
        let Event::FeedBatchReceived(batch) = &event.event else {
            return Err(StageError::Permanent(format!(
                "enrich does not handle {}",
                event.event.event_type()
            )));
        };
        let raw = get(&*self.objects, &batch.object.key).await?;
        let manifest: Manifest = serde_json::from_slice(&raw).map_err(|e| {
            StageError::Permanent(format!(
                "manifest {} is not a feed manifest (line {} column {})",
                batch.object.key,
                e.line(),
                e.column()
            ))
        })?;
        if manifest.batch_id != batch.batch_id.as_str() {
            return Err(StageError::Permanent(format!(
                "manifest {} names another batch",
                batch.object.key
            )));
        }
        let work = WorkDir::create(&self.work_root, batch.batch_id.as_str()).map_err(|e| {
            StageError::Transient(format!("creating a work directory for the batch: {e}"))
        })?;
        let dir = work.path().join("batch");
        let mut roster = None;
        for f in &manifest.files {
            if !intake::safe_path(&f.path) {
                return Err(StageError::Permanent(format!(
                    "manifest {} names an unsafe path",
                    batch.object.key
                )));
            }
            let key = format!("{}/{}/{}", intake::PREFIX, batch.batch_id, f.path);
            let path = dir.join(&f.path);
            if let Some(parent) = path.parent() {
                tokio::fs::create_dir_all(parent).await.map_err(transient)?;
            }
            if download(&*self.objects, &key, &path).await? != f.sha256 {
                return Err(StageError::Permanent(format!(
                    "{key}: content does not match the manifest's sha256"
                )));
            }
            if roster.is_none() && FeedKind::detect(&path).ok().flatten() == Some(FeedKind::Roster)
            {
                roster = Some(path);
            }
        }
        let Some(roster) = roster else {
            return Err(StageError::Permanent(format!(
                "batch {} has no eligibility roster (members.csv)",
                batch.batch_id
            )));
        };
        let recorded = event.time;
        let out = work.path().join("out");
        let jobs = self.jobs;
        let batch_id = batch.batch_id.to_string();
        let (result, out) = tokio::task::spawn_blocking(move || {
            let inputs: Vec<Input> = run::inputs(&roster, &[dir])?;
            let opts = Options {
                jobs,
                recorded: recorded.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            };
            let r = run::run(&roster, &inputs, &out, &opts, &|_| {})?;
            Ok::<_, run::EnrichError>((r, out))
        })
        .await
        .map_err(transient)?
        .map_err(|e| StageError::Permanent(e.to_string()))?;

        let mut members: Vec<(&usize, &crate::resolve::MemberFacts)> =
            result.facts.iter().collect();
        members.sort_by(|a, b| {
            result.members[*a.0]
                .member_id
                .cmp(&result.members[*b.0].member_id)
        });
        let mut events = Vec::new();
        let mut unusable = 0u64;
        let mut not_representable = 0u64;
        for (m, mf) in members {
            let member = &result.members[*m];
            let Ok(patient) = PatientId::parse(&member.member_id) else {
                unusable += 1;
                continue;
            };
            let (facts, skipped) = crate::graph::facts(&patient, mf, &batch_id, recorded);
            not_representable += skipped as u64;
            if facts.is_empty() {
                continue;
            }
            let body =
                serde_json::to_vec(&facts).map_err(|e| StageError::Permanent(e.to_string()))?;
            let key = format!("facts/{patient}/enrich-{batch_id}.json");
            let object = ObjectRef {
                sha256: hex::encode(Sha256::digest(&body)),
                size: body.len() as u64,
                media_type: "application/json".into(),
                key: key.clone(),
            };
            self.objects
                .put(&ObjectPath::from(key), PutPayload::from(body))
                .await
                .map_err(transient)?;
            events.push(Event::FactsResolved(FactsResolved {
                batch_id: batch.batch_id.clone(),
                patient_id: patient,
                facts: object,
                fact_count: u32::try_from(facts.len()).unwrap_or(u32::MAX),
                matched_by: "member_id or demographics".into(),
                resolver: Producer {
                    name: "p360-enrich".into(),
                    version: env!("CARGO_PKG_VERSION").into(),
                },
            }));
        }
        // The roster's members, for care-gap measures (age, sex) and dashboards (plan, region,
        // member-months): one NDJSON object, referenced by one event.
        let mut profiles = String::new();
        let mut enrolled = 0u32;
        for member in &result.members {
            let Ok(patient_id) = PatientId::parse(&member.member_id) else {
                continue;
            };
            let profile = p360_events::MemberProfile {
                patient_id,
                birth_date: member.person.birth,
                sex: member.person.sex.map(|s| {
                    match s {
                        crate::person::Sex::Female => "female",
                        crate::person::Sex::Male => "male",
                    }
                    .to_owned()
                }),
                plan_id: member.plan_id.clone(),
                region: member.state.clone(),
                coverage_start: member.coverage_start,
                coverage_end: member.coverage_end,
            };
            profiles.push_str(&serde_json::to_string(&profile).unwrap_or_default());
            profiles.push('\n');
            enrolled += 1;
        }
        if enrolled > 0 {
            let body = profiles.into_bytes();
            let key = format!("{}/{batch_id}/_members.ndjson", intake::PREFIX);
            let object = ObjectRef {
                sha256: hex::encode(Sha256::digest(&body)),
                size: body.len() as u64,
                media_type: "application/x-ndjson".into(),
                key: key.clone(),
            };
            self.objects
                .put(&ObjectPath::from(key), PutPayload::from(body))
                .await
                .map_err(transient)?;
            events.push(Event::MembersEnrolled(p360_events::MembersEnrolled {
                batch_id: batch.batch_id.clone(),
                profiles: object,
                count: enrolled,
                recorded_at: recorded,
            }));
        }
        // What each linked or held identity brought: the undo and accept paths of the review
        // queue read these (crate::decisions), never the feed files again.
        let prefix = format!("{}/{batch_id}", intake::PREFIX);
        let mut identities = String::new();
        for (i, t) in &result.traces {
            let member = &result.members[t.member];
            let sources: Vec<String> = t
                .sources
                .iter()
                .map(|s| format!("{batch_id}/{s}"))
                .collect();
            let mut held = 0;
            if t.review
                && let Ok(patient) = PatientId::parse(&member.member_id)
            {
                let (facts, _) = crate::graph::facts(&patient, &t.held, &batch_id, recorded);
                held = facts.len();
                let body =
                    serde_json::to_vec(&facts).map_err(|e| StageError::Permanent(e.to_string()))?;
                self.objects
                    .put(
                        &ObjectPath::from(format!("{prefix}/{}/{i}.json", crate::decisions::HELD)),
                        PutPayload::from(body),
                    )
                    .await
                    .map_err(transient)?;
            }
            let line = crate::decisions::IdentityLine {
                identity: *i,
                decision: if t.review { "review" } else { "linked" }.into(),
                member_id: member.member_id.clone(),
                sources,
                held_facts: held,
            };
            identities.push_str(&serde_json::to_string(&line).unwrap_or_default());
            identities.push('\n');
        }
        let report = serde_json::json!({
            "batch_id": batch_id,
            "source_system": manifest.source_system,
            "summary": result.summary,
            "members_not_usable_as_patient_ids": unusable,
            // Facts the graph's model cannot hold (no date, an allergy in an unknown system).
            "facts_not_representable": not_representable,
            "problems": result.report.problems,
            "records_by_file": result.report.records,
            "reviews": result.reviews.len(),
        });
        // A redelivered batch (a crash after this point, a retry) finds its report written:
        // it writes the same objects again but is not counted twice.
        let first_run = matches!(
            self.objects
                .head(&ObjectPath::from(format!("{prefix}/{}", intake::REPORT)))
                .await,
            Err(object_store::Error::NotFound { .. })
        );
        for (name, bytes) in [
            (crate::decisions::IDENTITIES, identities.into_bytes()),
            (
                "_links.ndjson",
                tokio::fs::read(out.join("links.ndjson"))
                    .await
                    .map_err(transient)?,
            ),
            (
                intake::REPORT,
                serde_json::to_vec_pretty(&report).unwrap_or_default(),
            ),
            (
                "_review.ndjson",
                result
                    .reviews
                    .iter()
                    .map(|r| format!("{r}\n"))
                    .collect::<String>()
                    .into_bytes(),
            ),
        ] {
            self.objects
                .put(
                    &ObjectPath::from(format!("{prefix}/{name}")),
                    PutPayload::from(bytes),
                )
                .await
                .map_err(transient)?;
        }
        if first_run {
            self.metrics.count(&result.summary);
        }
        tracing::info!(
            batch_id = %batch_id,
            records = result.summary.records,
            linked = result.summary.linked,
            review = result.summary.review,
            unmatched = result.summary.unmatched,
            problems = result.summary.problems,
            facts = result.summary.facts,
            merged = result.summary.merged,
            members = events
                .iter()
                .filter(|e| matches!(e, Event::FactsResolved(_)))
                .count(),
            "feed batch resolved"
        );
        Ok(events)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_run_removes_the_work_directories_of_dead_runs_only() {
        let root = tempfile::tempdir().unwrap();
        // A run killed mid-way: its directory and lock file stay, nobody holds the lock.
        let dead = root.path().join("b1-dead");
        std::fs::create_dir_all(dead.join("batch")).unwrap();
        std::fs::write(dead.join(LOCK), b"").unwrap();
        std::fs::write(dead.join("batch/claims.csv"), b"x").unwrap();
        // A run still going, and one being set up this instant (no lock file yet).
        let live = WorkDir::create(root.path(), "b2").unwrap();
        let fresh = root.path().join("b3-new");
        std::fs::create_dir_all(&fresh).unwrap();
        let next = WorkDir::create(root.path(), "b4").unwrap();
        assert!(!dead.exists(), "the dead run's directory is removed");
        assert!(live.path().exists(), "a live run's directory is kept");
        assert!(fresh.exists(), "a directory being set up is kept");
        let (a, b) = (live.path().to_owned(), next.path().to_owned());
        drop((live, next));
        assert!(!a.exists() && !b.exists(), "a finished run removes its own");
    }
}
