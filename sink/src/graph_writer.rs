//! The graph-writer stage: facts in (FactsExtracted, FactsResolved, ManualEntrySubmitted, each
//! pointing at a JSON array of facts in the object store), the patient graph updated, one
//! GraphChanged out naming each changed fact.
//!
//! "Same fact, many sources": a fact's id derives from what it says, so a fact already in the
//! graph is found by id and the new statement is attached to it as another source; a result
//! restated in another unit or rounding is found by code and day and matched within tolerance.
//!
//! Exactly once: the update that writes an event's facts also records the event id and the
//! changes it made, in the same atomic request. A redelivered event finds that record and
//! returns the recorded changes, so its GraphChanged is identical to the first one even if the
//! first was never published (a crash between commit and publish).
//!
//! Undoing a link (SourcesDetached): the named source records are removed from the patient's
//! facts; a fact left with no source is removed, the others keep their other sources. The
//! same commit path, so it is exactly-once and ordered with the writes like any other event.
//!
//! Batching: events handled concurrently are committed together (see [`committer`]); the
//! stage runs with a concurrency of a hundred or so, so that batches form under load.

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use object_store::{ObjectStore, ObjectStoreExt};
use p360_events::{
    ChangeKind, Envelope, Event, EventType, FactChange, GraphChanged, ObjectRef, PatientId,
};
use p360_graph::facts::FactWrite;
use p360_graph::sparql::{iri, string};
use p360_graph::store::Term;
use p360_graph::{GraphStore, facts, vocab};
use p360_model::{Coding, Fact, FactBody, FactId, SourceKind};
use p360_runtime::{Stage, StageError};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, OnceLock};
use tokio::sync::{mpsc, oneshot};

/// What applying one event did, kept in the graph beside the facts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Applied {
    committed_at: DateTime<Utc>,
    changes: Vec<FactChange>,
}

pub struct GraphWriter {
    graph: Arc<dyn GraphStore>,
    objects: Arc<dyn ObjectStore>,
    /// Started on first use, so building the stage needs no runtime.
    committer: OnceLock<mpsc::Sender<Job>>,
}

impl std::fmt::Debug for GraphWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GraphWriter").finish_non_exhaustive()
    }
}

fn transient(e: impl std::fmt::Display) -> StageError {
    StageError::Transient(e.to_string())
}

fn event_marker(patient: &PatientId, event: &Envelope) -> String {
    format!("{}/event/{}", vocab::patient_graph(patient), event.id)
}

impl GraphWriter {
    pub fn new(graph: Arc<dyn GraphStore>, objects: Arc<dyn ObjectStore>) -> Self {
        Self {
            graph,
            objects,
            committer: OnceLock::new(),
        }
    }

    /// Loads the event's facts (here, concurrently with other events, not in the committer's
    /// critical path), hands them to the committer and waits for the commit.
    async fn apply(
        &self,
        patient: &PatientId,
        event: &Envelope,
        work: Work<'_>,
    ) -> Result<(Applied, bool), StageError> {
        let (incoming, detach) = match work {
            Work::Facts(object) => (load(&*self.objects, object, patient).await?, Vec::new()),
            Work::Detach(sources) => (Vec::new(), sources.to_vec()),
        };
        let tx = self.committer.get_or_init(|| {
            let (tx, rx) = mpsc::channel(1024);
            let c = Committer {
                graph: self.graph.clone(),
            };
            tokio::spawn(c.run(MAX_BATCH, rx));
            tx
        });
        let (reply, answer) = oneshot::channel();
        let job = Job {
            patient: patient.clone(),
            marker: event_marker(patient, event),
            incoming,
            detach,
            reply,
        };
        let stopped = || StageError::Transient("the graph committer has stopped".into());
        tx.send(job).await.map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

/// What an event asks of the graph.
enum Work<'a> {
    /// Write the facts of this object.
    Facts(&'a ObjectRef),
    /// Remove these sources (provenance source ids) from the patient's facts.
    Detach(&'a [String]),
}

/// Most events in one graph transaction.
const MAX_BATCH: usize = 1024;

/// One event, waiting for the next group commit. The reply says what it changed and whether
/// that was recorded by an earlier delivery.
struct Job {
    patient: PatientId,
    marker: String,
    incoming: Vec<Fact>,
    /// Source ids to remove from the patient's facts (an undone link).
    detach: Vec<String>,
    reply: oneshot::Sender<Result<(Applied, bool), StageError>>,
}

struct Committer {
    graph: Arc<dyn GraphStore>,
}

type JobResult = Result<(Applied, bool), StageError>;

impl Committer {
    /// Applies the jobs waiting at the moment as one SPARQL update: a durable commit costs
    /// milliseconds whatever its size, so under load many events share one (group commit, as
    /// in the embedded queue). Jobs apply in arrival order, so an event sees the facts of the
    /// events before it, and one committer means no two writes of a patient race.
    async fn run(self, max_batch: usize, mut rx: mpsc::Receiver<Job>) {
        while let Some(first) = rx.recv().await {
            let mut jobs = vec![first];
            while jobs.len() < max_batch {
                match rx.try_recv() {
                    Ok(j) => jobs.push(j),
                    Err(_) => break,
                }
            }
            let replies = match self.commit(&jobs).await {
                Ok(each) => each,
                // One bad event must not fail the others: apply each alone.
                Err(e) if e.is_permanent() && jobs.len() > 1 => {
                    let mut each = Vec::with_capacity(jobs.len());
                    for job in &jobs {
                        each.push(match self.commit(std::slice::from_ref(job)).await {
                            Ok(mut one) => one.remove(0),
                            Err(e) => Err(e),
                        });
                    }
                    each
                }
                Err(e) => jobs.iter().map(|_| Err(e.clone())).collect(),
            };
            for (job, reply) in jobs.into_iter().zip(replies) {
                let _ = job.reply.send(reply);
            }
        }
    }

    /// What earlier deliveries of these events applied, by marker: one query.
    async fn recorded(&self, jobs: &[Job]) -> Result<HashMap<String, Applied>, StageError> {
        let pairs: Vec<String> = jobs
            .iter()
            .map(|j| {
                format!(
                    "({} {})",
                    iri(&vocab::patient_graph(&j.patient)),
                    iri(&j.marker)
                )
            })
            .collect();
        let rows = self
            .graph
            .select(&format!(
                "SELECT ?m ?c WHERE {{ VALUES (?g ?m) {{ {} }} GRAPH ?g {{ ?m {} ?c }} }}",
                pairs.join(" "),
                iri(&vocab::p("changes")),
            ))
            .await
            .map_err(transient)?;
        let mut out = HashMap::new();
        for row in rows {
            if let (Some(Term::Iri(m)), Some(c)) = (row.get("m"), row.get("c")) {
                let applied = serde_json::from_str(c.value()).map_err(|_| {
                    StageError::Permanent("unreadable change record in the graph".into())
                })?;
                out.insert(m.clone(), applied);
            }
        }
        Ok(out)
    }

    /// One transaction for `jobs`; the outer error fails them all, the inner ones are per job.
    async fn commit(&self, jobs: &[Job]) -> Result<Vec<JobResult>, StageError> {
        let recorded = self.recorded(jobs).await?;
        let mut loaded: Vec<Option<&Vec<Fact>>> = jobs
            .iter()
            .map(|j| (!recorded.contains_key(&j.marker)).then_some(&j.incoming))
            .collect();

        // What the graph holds of the named facts, and of facts a new result may restate in
        // another unit or rounding (same code and day): two or three queries for the batch.
        let mut wanted: BTreeSet<(PatientId, FactId)> = BTreeSet::new();
        for (job, facts) in jobs.iter().zip(&loaded) {
            if let Some(facts) = facts {
                wanted.extend(facts.iter().map(|f| (job.patient.clone(), f.id.clone())));
            }
        }
        for (job, facts) in jobs.iter().zip(&loaded) {
            if facts.is_some() && !job.detach.is_empty() {
                let ids = facts::with_sources(&*self.graph, &job.patient, &job.detach)
                    .await
                    .map_err(transient)?;
                wanted.extend(ids.into_iter().map(|id| (job.patient.clone(), id)));
            }
        }
        let wanted: Vec<_> = wanted.into_iter().collect();
        let mut state: HashMap<(PatientId, FactId), Fact> = HashMap::new();
        for chunk in wanted.chunks(500) {
            for f in facts::read_many(&*self.graph, chunk)
                .await
                .map_err(transient)?
            {
                state.insert((f.patient.clone(), f.id.clone()), f);
            }
        }
        let mut probes: HashSet<(&PatientId, &Coding, NaiveDate)> = HashSet::new();
        for facts in loaded.iter().flatten() {
            for f in facts.iter() {
                if !state.contains_key(&(f.patient.clone(), f.id.clone()))
                    && !is_device_summary(f)
                    && let (FactBody::Observation(_), Some(code), Some(day)) =
                        (&f.body, f.body.primary_code(), f.body.day())
                {
                    probes.insert((&f.patient, code, day));
                }
            }
        }
        let probes: Vec<_> = probes.into_iter().collect();
        for chunk in probes.chunks(200) {
            for f in facts::read_by_code_and_day_many(&*self.graph, chunk)
                .await
                .map_err(transient)?
            {
                state.insert((f.patient.clone(), f.id.clone()), f);
            }
        }
        let in_graph: HashSet<(PatientId, FactId)> = state.keys().cloned().collect();
        // Facts by (patient, code, day), to find a restatement without scanning them all.
        let mut by_code_day: HashMap<MatchKey, Vec<FactId>> = HashMap::new();
        for f in state.values() {
            if let Some(k) = match_key(f) {
                by_code_day.entry(k).or_default().push(f.id.clone());
            }
        }

        let committed_at = Utc::now();
        let mut dirty: BTreeSet<(PatientId, FactId)> = BTreeSet::new();
        // Facts whose body was replaced: rewritten whole (old value, unit and source triples go).
        let mut replaced: BTreeSet<(PatientId, FactId)> = BTreeSet::new();
        let mut write = FactWrite::default();
        let mut results: Vec<JobResult> = Vec::with_capacity(jobs.len());
        let mut by_marker: HashMap<&str, usize> = HashMap::new();
        for (job, facts) in jobs.iter().zip(loaded.iter_mut()) {
            let Some(facts) = facts.take() else {
                let applied = recorded.get(&job.marker).cloned().ok_or_else(|| {
                    StageError::Permanent("change record vanished mid-commit".into())
                });
                results.push(applied.map(|a| (a, true)));
                continue;
            };
            // The same event twice in one batch (a redelivery racing the first): same result.
            if let Some(&i) = by_marker.get(job.marker.as_str()) {
                let again = match &results[i] {
                    Ok((a, _)) => Ok((a.clone(), true)),
                    Err(e) => Err(e.clone()),
                };
                results.push(again);
                continue;
            }
            let mut changes: Vec<FactChange> = Vec::new();
            if !job.detach.is_empty() {
                detach(job, &mut state, &mut dirty, &mut write, &mut changes);
            }
            for fact in facts {
                let mut key = (job.patient.clone(), fact.id.clone());
                let mk = match_key(fact);
                // A device's daily summary is found by its id only, and is never the fact a
                // typed-in or extracted value restates: a day's mean is not one measurement.
                if !state.contains_key(&key)
                    && !is_device_summary(fact)
                    && let Some(same) =
                        mk.as_ref()
                            .and_then(|k| by_code_day.get(k))
                            .and_then(|ids| {
                                ids.iter().find(|id| {
                                    state
                                        .get(&(job.patient.clone(), (*id).clone()))
                                        .is_some_and(|f| {
                                            !is_device_summary(f)
                                                && f.matches_within_tolerance(fact)
                                        })
                                })
                            })
                {
                    key = (job.patient.clone(), same.clone());
                }
                let kind = match state.get_mut(&key) {
                    None => {
                        state.insert(key.clone(), fact.clone());
                        if let Some(k) = mk {
                            by_code_day.entry(k).or_default().push(fact.id.clone());
                        }
                        Some(ChangeKind::Added)
                    }
                    Some(old) => merge(old, fact),
                };
                let Some(kind) = kind else { continue };
                if kind == ChangeKind::Corrected {
                    replaced.insert(key.clone());
                }
                dirty.insert(key.clone());
                // A fact added and then confirmed within one event is reported as added.
                match changes.iter_mut().find(|c| c.fact_id == key.1.as_str()) {
                    Some(c) if c.kind == ChangeKind::Added => {}
                    Some(c) => c.kind = kind,
                    None => changes.push(FactChange {
                        fact_id: key.1.to_string(),
                        category: fact.body.category().as_str().to_owned(),
                        kind,
                    }),
                }
            }
            let applied = Applied {
                committed_at,
                changes,
            };
            // Each event's record goes into its patient's graph, so erasing a patient erases it.
            let record = serde_json::to_string(&applied)
                .map_err(|e| StageError::Permanent(e.to_string()))?;
            write.triples(
                &job.patient,
                &format!(
                    "{} {} {} .\n",
                    iri(&job.marker),
                    iri(&vocab::p("changes")),
                    string(&record)
                ),
            );
            by_marker.insert(job.marker.as_str(), results.len());
            results.push(Ok((applied, false)));
        }
        for key in &dirty {
            if let Some(fact) = state.get(key) {
                if replaced.contains(key) && in_graph.contains(key) {
                    write.drop_fact(&key.0, &key.1);
                    write.fact(fact, false);
                } else {
                    write.fact(fact, in_graph.contains(key));
                }
            }
        }
        if !write.is_empty() {
            write.apply(&*self.graph).await.map_err(|e| {
                if e.is_transient() {
                    transient(e)
                } else {
                    StageError::Permanent(e.to_string())
                }
            })?;
        }
        Ok(results)
    }
}

async fn load(
    objects: &dyn ObjectStore,
    object: &ObjectRef,
    patient: &PatientId,
) -> Result<Vec<Fact>, StageError> {
    let path = object_store::path::Path::from(object.key.as_str());
    let bytes = match objects.get(&path).await {
        Ok(r) => r.bytes().await.map_err(transient)?,
        Err(object_store::Error::NotFound { .. }) => {
            return Err(StageError::Permanent(format!(
                "facts object {} is missing",
                object.key
            )));
        }
        Err(e) => return Err(transient(e)),
    };
    let facts: Vec<Fact> = serde_json::from_slice(&bytes).map_err(|e| {
        StageError::Permanent(format!(
            "facts object {} is not a JSON array of facts (line {} column {})",
            object.key,
            e.line(),
            e.column()
        ))
    })?;
    if let Some(f) = facts.iter().find(|f| &f.patient != patient) {
        return Err(StageError::Permanent(format!(
            "facts object {} holds fact {} of another patient",
            object.key, f.id
        )));
    }
    Ok(facts)
}

/// Patient, primary code and day of an observation: where a restatement can be.
type MatchKey = (PatientId, String, NaiveDate);

fn match_key(f: &Fact) -> Option<MatchKey> {
    match (&f.body, f.body.primary_code(), f.body.day()) {
        (FactBody::Observation(_), Some(c), Some(day)) => Some((
            f.patient.clone(),
            format!("{}|{}", c.system.uri(), c.code),
            day,
        )),
        _ => None,
    }
}

/// Removes the job's sources from the patient's facts in `state`: a fact left with none is
/// dropped from the graph (and from `state`, so a later event of the batch sees it gone).
fn detach(
    job: &Job,
    state: &mut HashMap<(PatientId, FactId), Fact>,
    dirty: &mut BTreeSet<(PatientId, FactId)>,
    write: &mut FactWrite,
    changes: &mut Vec<FactChange>,
) {
    let gone: HashSet<&str> = job.detach.iter().map(String::as_str).collect();
    let mut keys: Vec<(PatientId, FactId)> = state
        .iter()
        .filter(|((p, _), f)| {
            p == &job.patient
                && f.provenance
                    .iter()
                    .any(|s| gone.contains(s.source_id.as_str()))
        })
        .map(|(k, _)| k.clone())
        .collect();
    keys.sort();
    for key in keys {
        let Some(fact) = state.get_mut(&key) else {
            continue;
        };
        let (dropped, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut fact.provenance)
            .into_iter()
            .partition(|s| gone.contains(s.source_id.as_str()));
        fact.provenance = kept;
        let category = fact.body.category().as_str().to_owned();
        let kind = if fact.provenance.is_empty() {
            write.drop_fact(&key.0, &key.1);
            state.remove(&key);
            dirty.remove(&key);
            ChangeKind::Removed
        } else {
            for p in &dropped {
                write.drop_source(fact, p);
            }
            dirty.insert(key.clone());
            ChangeKind::SourceDetached
        };
        changes.push(FactChange {
            fact_id: key.1.to_string(),
            category,
            kind,
        });
    }
}

/// A daily summary of a wearable or home device (the `p360-devices` stage's): its id is
/// (patient, device, metric, day), so a day recomputed with later samples arrives under the
/// same id. Other device-sourced facts (one measurement) merge as any other.
fn is_device_summary(f: &Fact) -> bool {
    !f.provenance.is_empty()
        && f.provenance.iter().all(|p| {
            p.source_kind == SourceKind::Device
                && p.producer
                    .as_ref()
                    .is_some_and(|x| x.name == "p360-devices")
        })
}

/// Merges another statement of a fact into it; returns the change, if any.
fn merge(old: &mut Fact, new: &Fact) -> Option<ChangeKind> {
    // A recomputed device summary replaces the one before it, unless it is older (events of
    // one day may reach the committer out of order; each summary is stamped when computed).
    if is_device_summary(old) && is_device_summary(new) {
        let at = |f: &Fact| f.provenance.iter().map(|p| p.recorded).max();
        if old.body != new.body && at(new) >= at(old) {
            *old = new.clone();
            return Some(ChangeKind::Corrected);
        }
        return None;
    }
    let mut kind = None;
    for p in &new.provenance {
        if old.attach(p.clone()) {
            kind = Some(ChangeKind::SourceAttached);
        }
    }
    // A person's confirmation (or retraction) outranks a machine's guess.
    if new.status != old.status && new.status != p360_model::Status::Unconfirmed {
        old.status = new.status;
        kind = Some(ChangeKind::StatusChanged);
    }
    kind
}

#[async_trait]
impl Stage for GraphWriter {
    fn name(&self) -> &'static str {
        "graph-writer"
    }

    fn subscribes(&self) -> &'static [EventType] {
        &[
            EventType::FactsExtracted,
            EventType::FactsResolved,
            EventType::SourcesDetached,
            EventType::ManualEntrySubmitted,
        ]
    }

    async fn handle(&self, event: &Envelope) -> Result<Vec<Event>, StageError> {
        let (patient, work) = match &event.event {
            Event::FactsExtracted(e) => (&e.patient_id, Work::Facts(&e.facts)),
            Event::FactsResolved(e) => (&e.patient_id, Work::Facts(&e.facts)),
            Event::ManualEntrySubmitted(e) => (&e.patient_id, Work::Facts(&e.entry)),
            Event::SourcesDetached(e) => (&e.patient_id, Work::Detach(&e.sources)),
            other => {
                return Err(StageError::Permanent(format!(
                    "graph-writer does not handle {}",
                    other.event_type()
                )));
            }
        };
        let (applied, replayed) = self.apply(patient, event, work).await?;
        if replayed {
            tracing::info!(event_id = %event.id, "already applied; replaying its changes");
        }
        tracing::debug!(event_id = %event.id, patient_id = %patient, changes = applied.changes.len(), "graph updated");
        Ok(vec![Event::GraphChanged(GraphChanged {
            patient_id: patient.clone(),
            commit_id: event.id.to_string(),
            committed_at: applied.committed_at,
            changes: applied.changes,
        })])
    }
}
