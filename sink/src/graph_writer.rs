//! The graph-writer stage: facts in (FactsExtracted, FactsResolved, ManualEntrySubmitted, each
//! pointing at a JSON array of facts in the object store), the patient graph updated, one
//! GraphChanged out naming each changed fact.
//!
//! "Same fact, many sources": a fact's id derives from what it says, so a fact already in the
//! graph is found by id and the new statement is attached to it as another source.
//!
//! Exactly once: the update that writes an event's facts also records the event id and the
//! changes it made, in the same atomic request. A redelivered event finds that record and
//! returns the recorded changes, so its GraphChanged is identical to the first one even if the
//! first was never published (a crash between commit and publish).
//!
//! Batching: events handled concurrently are committed together (see [`committer`]); the
//! stage runs with a concurrency of a few dozen so that batches form under load.

use async_trait::async_trait;
use chrono::DateTime;
use chrono::Utc;
use object_store::{ObjectStore, ObjectStoreExt};
use p360_events::{
    ChangeKind, Envelope, Event, EventType, FactChange, GraphChanged, ObjectRef, PatientId,
};
use p360_graph::sparql::{iri, string};
use p360_graph::{GraphStore, facts, vocab};
use p360_model::{Fact, FactBody, FactId};
use p360_runtime::{Stage, StageError};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
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

    async fn load(&self, object: &ObjectRef, patient: &PatientId) -> Result<Vec<Fact>, StageError> {
        let path = object_store::path::Path::from(object.key.as_str());
        let bytes = match self.objects.get(&path).await {
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

    /// What an earlier delivery of this event applied, if any.
    async fn recorded(
        &self,
        patient: &PatientId,
        event: &Envelope,
    ) -> Result<Option<Applied>, StageError> {
        let rows = self
            .graph
            .select(&format!(
                "SELECT ?c WHERE {{ GRAPH {} {{ {} {} ?c }} }}",
                iri(&vocab::patient_graph(patient)),
                iri(&event_marker(patient, event)),
                iri(&vocab::p("changes")),
            ))
            .await
            .map_err(transient)?;
        match rows.first().and_then(|r| r.get("c")) {
            Some(t) => serde_json::from_str(t.value())
                .map(Some)
                .map_err(|_| StageError::Permanent("unreadable change record in the graph".into())),
            None => Ok(None),
        }
    }

    /// Hands the event's facts to the committer and waits for the commit.
    async fn apply(
        &self,
        patient: &PatientId,
        event: &Envelope,
        incoming: Vec<Fact>,
    ) -> Result<Applied, StageError> {
        let tx = self.committer.get_or_init(|| {
            let (tx, rx) = mpsc::channel(1024);
            tokio::spawn(committer(self.graph.clone(), MAX_BATCH, rx));
            tx
        });
        let (reply, answer) = oneshot::channel();
        let job = Job {
            patient: patient.clone(),
            marker: event_marker(patient, event),
            incoming,
            reply,
        };
        let stopped = || StageError::Transient("the graph committer has stopped".into());
        tx.send(job).await.map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

/// Most events in one graph transaction.
const MAX_BATCH: usize = 256;

/// One event's facts, waiting for the next group commit.
struct Job {
    patient: PatientId,
    marker: String,
    incoming: Vec<Fact>,
    reply: oneshot::Sender<Result<Applied, StageError>>,
}

/// Applies the jobs waiting at the moment as one SPARQL update: a durable commit costs
/// milliseconds whatever its size, so under load many events share one (group commit, as in
/// the embedded queue). Jobs run in arrival order, so an event sees the facts of the events
/// before it, and one committer means no two writes of a patient race.
async fn committer(graph: Arc<dyn GraphStore>, max_batch: usize, mut rx: mpsc::Receiver<Job>) {
    while let Some(first) = rx.recv().await {
        let mut jobs = vec![first];
        while jobs.len() < max_batch {
            match rx.try_recv() {
                Ok(j) => jobs.push(j),
                Err(_) => break,
            }
        }
        let replies = match commit(&*graph, &jobs).await {
            Ok(applied) => applied.into_iter().map(Ok).collect(),
            // One bad event must not fail the others: apply each alone.
            Err(e) if e.is_permanent() && jobs.len() > 1 => {
                let mut each = Vec::with_capacity(jobs.len());
                for job in &jobs {
                    each.push(
                        commit(&*graph, std::slice::from_ref(job))
                            .await
                            .map(|mut a| a.remove(0)),
                    );
                }
                each
            }
            Err(e) => jobs
                .iter()
                .map(|_| Err(clone_error(&e)))
                .collect::<Vec<_>>(),
        };
        for (job, reply) in jobs.into_iter().zip(replies) {
            let _ = job.reply.send(reply);
        }
    }
}

fn clone_error(e: &StageError) -> StageError {
    match e {
        StageError::Transient(m) => StageError::Transient(m.clone()),
        StageError::Permanent(m) => StageError::Permanent(m.clone()),
    }
}

/// Writes the jobs' facts merged with what the graph holds; returns what each job changed.
async fn commit(graph: &dyn GraphStore, jobs: &[Job]) -> Result<Vec<Applied>, StageError> {
    // Only the facts the jobs name are read, not the patients' whole graphs.
    let mut wanted: BTreeMap<&PatientId, Vec<FactId>> = BTreeMap::new();
    for job in jobs {
        wanted
            .entry(&job.patient)
            .or_default()
            .extend(job.incoming.iter().map(|f| f.id.clone()));
    }
    let mut state: HashMap<(PatientId, FactId), Fact> = HashMap::new();
    for (patient, mut ids) in wanted {
        ids.sort();
        ids.dedup();
        for chunk in ids.chunks(500) {
            for f in facts::read_facts(graph, patient, chunk)
                .await
                .map_err(transient)?
            {
                state.insert((patient.clone(), f.id.clone()), f);
            }
        }
    }
    // New results may restate a fact already held in another unit or rounding: read the
    // facts sharing their code and day, and match them within tolerance below.
    let mut probes: BTreeMap<&PatientId, Vec<(&p360_model::Coding, chrono::NaiveDate)>> =
        BTreeMap::new();
    for job in jobs {
        for f in &job.incoming {
            if !state.contains_key(&(job.patient.clone(), f.id.clone()))
                && let (FactBody::Observation(_), Some(code), Some(day)) =
                    (&f.body, f.body.primary_code(), f.body.day())
            {
                probes.entry(&job.patient).or_default().push((code, day));
            }
        }
    }
    for (patient, keys) in probes {
        for chunk in keys.chunks(200) {
            for f in facts::read_by_code_and_day(graph, patient, chunk)
                .await
                .map_err(transient)?
            {
                state.insert((patient.clone(), f.id.clone()), f);
            }
        }
    }
    let committed_at = Utc::now();
    let mut dirty: std::collections::BTreeSet<(PatientId, FactId)> = Default::default();
    let mut results: Vec<Applied> = Vec::with_capacity(jobs.len());
    let mut by_marker: HashMap<&str, usize> = HashMap::new();
    for job in jobs {
        // The same event twice in one batch (a redelivery racing the first): same result.
        if let Some(&i) = by_marker.get(job.marker.as_str()) {
            results.push(results[i].clone());
            continue;
        }
        let mut changes: Vec<FactChange> = Vec::new();
        for fact in &job.incoming {
            let mut key = (job.patient.clone(), fact.id.clone());
            if !state.contains_key(&key)
                && let Some(same) = state.values().find(|f| f.matches_within_tolerance(fact))
            {
                key = (job.patient.clone(), same.id.clone());
            }
            let kind = match state.get_mut(&key) {
                None => {
                    state.insert(key.clone(), fact.clone());
                    Some(ChangeKind::Added)
                }
                Some(old) => merge(old, fact),
            };
            if let Some(kind) = kind {
                dirty.insert(key.clone());
                // A fact added and then confirmed within one event is reported as added.
                let id = &key.1;
                match changes.iter_mut().find(|c| c.fact_id == id.as_str()) {
                    Some(c) if c.kind == ChangeKind::Added => {}
                    Some(c) => c.kind = kind,
                    None => changes.push(FactChange {
                        fact_id: id.to_string(),
                        category: fact.body.category().as_str().to_owned(),
                        kind,
                    }),
                }
            }
        }
        let applied = Applied {
            committed_at,
            changes,
        };
        by_marker.insert(job.marker.as_str(), results.len());
        results.push(applied);
    }
    let mut update = String::new();
    for key in &dirty {
        if let Some(fact) = state.get(key) {
            update.push_str(&facts::upsert(fact));
            update.push_str(" ;\n");
        }
    }
    // Each event's record goes into its patient's graph, so erasing a patient erases them.
    let mut per_graph: BTreeMap<String, String> = BTreeMap::new();
    for (job, applied) in jobs.iter().zip(&results) {
        let line = format!(
            "{} {} {} .\n",
            iri(&job.marker),
            iri(&vocab::p("changes")),
            string(
                &serde_json::to_string(applied)
                    .map_err(|e| StageError::Permanent(e.to_string()))?
            ),
        );
        let g = per_graph
            .entry(vocab::patient_graph(&job.patient))
            .or_default();
        if !g.contains(&line) {
            g.push_str(&line);
        }
    }
    update.push_str("INSERT DATA {\n");
    for (g, lines) in &per_graph {
        update.push_str(&format!("GRAPH {} {{\n{lines}}}\n", iri(g)));
    }
    update.push('}');
    graph.update(&update).await.map_err(|e| {
        if e.is_transient() {
            transient(e)
        } else {
            StageError::Permanent(e.to_string())
        }
    })?;
    Ok(results)
}

/// Merges another statement of a fact into it; returns the change, if any.
fn merge(old: &mut Fact, new: &Fact) -> Option<ChangeKind> {
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
            EventType::ManualEntrySubmitted,
        ]
    }

    async fn handle(&self, event: &Envelope) -> Result<Vec<Event>, StageError> {
        let (patient, object) = match &event.event {
            Event::FactsExtracted(e) => (&e.patient_id, &e.facts),
            Event::FactsResolved(e) => (&e.patient_id, &e.facts),
            Event::ManualEntrySubmitted(e) => (&e.patient_id, &e.entry),
            other => {
                return Err(StageError::Permanent(format!(
                    "graph-writer does not handle {}",
                    other.event_type()
                )));
            }
        };
        let applied = match self.recorded(patient, event).await? {
            Some(a) => {
                tracing::info!(event_id = %event.id, "already applied; replaying its changes");
                a
            }
            None => {
                let incoming = self.load(object, patient).await?;
                self.apply(patient, event, incoming).await?
            }
        };
        tracing::info!(event_id = %event.id, patient_id = %patient, changes = applied.changes.len(), "graph updated");
        Ok(vec![Event::GraphChanged(GraphChanged {
            patient_id: patient.clone(),
            commit_id: event.id.to_string(),
            committed_at: applied.committed_at,
            changes: applied.changes,
        })])
    }
}
