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

use async_trait::async_trait;
use chrono::DateTime;
use chrono::Utc;
use object_store::{ObjectStore, ObjectStoreExt};
use p360_events::{
    ChangeKind, Envelope, Event, EventType, FactChange, GraphChanged, ObjectRef, PatientId,
};
use p360_graph::sparql::{iri, string};
use p360_graph::{GraphStore, facts, vocab};
use p360_model::Fact;
use p360_runtime::{Stage, StageError};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

/// What applying one event did, kept in the graph beside the facts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Applied {
    committed_at: DateTime<Utc>,
    changes: Vec<FactChange>,
}

#[derive(Debug, Clone)]
pub struct GraphWriter {
    graph: Arc<dyn GraphStore>,
    objects: Arc<dyn ObjectStore>,
}

fn transient(e: impl std::fmt::Display) -> StageError {
    StageError::Transient(e.to_string())
}

fn event_marker(patient: &PatientId, event: &Envelope) -> String {
    format!("{}/event/{}", vocab::patient_graph(patient), event.id)
}

impl GraphWriter {
    pub fn new(graph: Arc<dyn GraphStore>, objects: Arc<dyn ObjectStore>) -> Self {
        Self { graph, objects }
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

    /// Writes `incoming` facts merged with what the graph holds; returns what changed.
    async fn apply(
        &self,
        patient: &PatientId,
        event: &Envelope,
        incoming: Vec<Fact>,
    ) -> Result<Applied, StageError> {
        let existing: BTreeMap<_, _> = facts::read_patient(&*self.graph, patient)
            .await
            .map_err(transient)?
            .into_iter()
            .map(|f| (f.id.clone(), f))
            .collect();
        // Several statements of one fact in a batch merge into one write.
        let mut merged: BTreeMap<_, Fact> = BTreeMap::new();
        let mut changes = Vec::new();
        for fact in incoming {
            let base = merged
                .remove(&fact.id)
                .or_else(|| existing.get(&fact.id).cloned());
            let (next, kind) = match base {
                None => (fact, Some(ChangeKind::Added)),
                Some(mut old) => {
                    let mut kind = None;
                    for p in fact.provenance {
                        if old.attach(p) {
                            kind = Some(ChangeKind::SourceAttached);
                        }
                    }
                    // A person's confirmation (or retraction) outranks a machine's guess.
                    if fact.status != old.status && fact.status != p360_model::Status::Unconfirmed {
                        old.status = fact.status;
                        kind = Some(ChangeKind::StatusChanged);
                    }
                    (old, kind)
                }
            };
            if let Some(kind) = kind {
                changes.retain(|c: &FactChange| c.fact_id != next.id.as_str());
                changes.push(FactChange {
                    fact_id: next.id.to_string(),
                    category: next.body.category().as_str().to_owned(),
                    kind,
                });
            }
            merged.insert(next.id.clone(), next);
        }
        let applied = Applied {
            committed_at: Utc::now(),
            changes,
        };
        let mut update = String::new();
        for fact in merged.values() {
            if applied
                .changes
                .iter()
                .any(|c| c.fact_id == fact.id.as_str())
            {
                update.push_str(&facts::upsert(fact));
                update.push_str(" ;\n");
            }
        }
        update.push_str(&format!(
            "INSERT DATA {{ GRAPH {} {{ {} {} {} }} }}",
            iri(&vocab::patient_graph(patient)),
            iri(&event_marker(patient, event)),
            iri(&vocab::p("changes")),
            string(
                &serde_json::to_string(&applied)
                    .map_err(|e| StageError::Permanent(e.to_string()))?
            ),
        ));
        self.graph.update(&update).await.map_err(|e| {
            if e.is_transient() {
                transient(e)
            } else {
                StageError::Permanent(e.to_string())
            }
        })?;
        Ok(applied)
    }
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
