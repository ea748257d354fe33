//! The `insights` stage. On a patient's GraphChanged it reads their whole record from the
//! graph, evaluates every measure as of today, keeps the results, writes them as an object and
//! announces them (CareGapsComputed, which the lake sink copies to `care_gaps`). For a patient
//! who opted in to tips it also rebuilds their tips and notifies the new ones.
//!
//! MembersEnrolled brings the roster's profiles (birth date and sex decide who a measure is
//! for): a changed profile recomputes a patient already computed. AnalyticsConsentChanged
//! rebuilds or clears the tips at once.

use crate::store::{InsightsStore, StoreError};
use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use p360_clock::SharedClock;
use p360_consent::{ConsentStore, Notification};
use p360_events::{
    CareGapsComputed, Envelope, Event, EventType, MemberProfile, MembersEnrolled, ObjectRef,
    PatientId,
};
use p360_graph::{GraphStore, facts};
use p360_insights::engine::evaluate_all;
use p360_insights::record::{PatientRecord, Sex};
use p360_insights::tips::tips;
use p360_runtime::{Stage, StageError};
use sha2::{Digest, Sha256};
use std::sync::Arc;

pub struct InsightsStage {
    graph: Arc<dyn GraphStore>,
    objects: Arc<dyn ObjectStore>,
    consent: Arc<dyn ConsentStore>,
    store: InsightsStore,
    clock: SharedClock,
    /// When this process last began reading each patient's record (wall time, as envelopes
    /// carry it). A GraphChanged announced well before that read is already reflected in it:
    /// a backlog of one patient's commits then costs one recompute, not one per commit.
    read_at: std::sync::Mutex<std::collections::HashMap<PatientId, DateTime<Utc>>>,
}

/// Slack for the clocks of the process that announced a change and this one.
const CLOCK_SLACK: chrono::Duration = chrono::Duration::seconds(5);

impl std::fmt::Debug for InsightsStage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InsightsStage").finish_non_exhaustive()
    }
}

fn transient(e: impl std::fmt::Display) -> StageError {
    StageError::Transient(e.to_string())
}

fn store_error(e: StoreError) -> StageError {
    StageError::Transient(e.to_string())
}

impl InsightsStage {
    pub fn new(
        graph: Arc<dyn GraphStore>,
        objects: Arc<dyn ObjectStore>,
        consent: Arc<dyn ConsentStore>,
        store: InsightsStore,
        clock: SharedClock,
    ) -> Self {
        Self {
            graph,
            objects,
            consent,
            store,
            clock,
            read_at: std::sync::Mutex::default(),
        }
    }

    /// Whether a read of `patient` began after a change announced at `announced` (plus the
    /// clock slack), so recomputing for it again would read the same record.
    fn already_read(&self, patient: &PatientId, announced: DateTime<Utc>) -> bool {
        self.read_at
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(patient)
            .is_some_and(|read| *read > announced + CLOCK_SLACK)
    }

    pub fn store(&self) -> &InsightsStore {
        &self.store
    }

    /// Recomputes one patient: results kept and written, tips rebuilt when opted in. The
    /// computation id names the cause (a commit, a roster batch, a consent change), so a
    /// redelivered event yields the same lake rows, which the lake keeps once.
    pub async fn recompute(
        &self,
        patient: &PatientId,
        computation_id: &str,
    ) -> Result<Event, StageError> {
        let now = self.clock.now();
        let as_of = now.date_naive();
        let reading = Utc::now();
        let facts = facts::read_patient(&*self.graph, patient)
            .await
            .map_err(transient)?;
        let profile = self.store.profile(patient).map_err(store_error)?;
        let record = record_of(profile.as_ref(), &facts);
        {
            let mut read_at = self
                .read_at
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if read_at.len() > 100_000 {
                read_at.clear();
            }
            read_at.insert(patient.clone(), reading);
        }
        let results = evaluate_all(&record, as_of);
        self.store
            .put_results(patient, &results, now)
            .map_err(store_error)?;

        let consent = self.consent.analytics(patient).await.map_err(transient)?;
        if consent.personalized_tips {
            let tips = tips(&record, &results, as_of);
            let changes = self
                .store
                .put_tips(patient, &tips, now)
                .map_err(store_error)?;
            for tip in &changes.new {
                self.notify_tip(patient, tip, now).await;
            }
        } else {
            self.store.clear_tips(patient).map_err(store_error)?;
        }

        let body =
            serde_json::to_vec(&results).map_err(|e| StageError::Permanent(e.to_string()))?;
        let key = format!("insights/{patient}/{computation_id}.json");
        let object = ObjectRef {
            sha256: hex::encode(Sha256::digest(&body)),
            size: body.len() as u64,
            media_type: "application/json".into(),
            key: key.clone(),
        };
        self.objects
            .put(&Path::from(key), PutPayload::from(Bytes::from(body)))
            .await
            .map_err(transient)?;
        tracing::info!(
            patient_id = %patient,
            measures = results.len(),
            facts = facts.len(),
            "care gaps recomputed"
        );
        Ok(Event::CareGapsComputed(CareGapsComputed {
            patient_id: patient.clone(),
            computation_id: computation_id.to_owned(),
            computed_at: now,
            results: object,
        }))
    }

    /// Tells the patient a tip is ready (the message says nothing of their health: it is
    /// shown on a lock screen). The fixed id makes a repeat a no-op; a failure is logged.
    async fn notify_tip(&self, patient: &PatientId, tip: &str, at: DateTime<Utc>) {
        let note = Notification {
            id: format!("tip-{}", &tip[..tip.len().min(24)]),
            patient: patient.clone(),
            at,
            kind: "tip".into(),
            message: "You have a new health tip in p360.".into(),
            grant_id: None,
        };
        if let Err(e) = self.consent.notify(&note).await {
            tracing::warn!(error = %e, patient_id = %patient, "tip notification failed");
        }
    }

    async fn enrolled(&self, m: &MembersEnrolled) -> Result<Vec<Event>, StageError> {
        let key = &m.profiles.key;
        let bytes = match self.objects.get(&Path::from(key.as_str())).await {
            Ok(r) => r.bytes().await.map_err(transient)?,
            Err(object_store::Error::NotFound { .. }) => {
                return Err(StageError::Permanent(format!(
                    "member profiles object {key} is missing"
                )));
            }
            Err(e) => return Err(transient(e)),
        };
        let mut events = Vec::new();
        let cause = format!(
            "members-{}-{}",
            m.batch_id,
            &m.profiles.sha256[..12.min(m.profiles.sha256.len())]
        );
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
            let changed = self
                .store
                .put_profile(&p, m.recorded_at)
                .map_err(store_error)?;
            if changed && self.store.has_results(&p.patient_id).map_err(store_error)? {
                events.push(self.recompute(&p.patient_id, &cause).await?);
            }
        }
        Ok(events)
    }
}

/// The record the measures read: the graph's facts with the roster's birth date and sex.
pub fn record_of(profile: Option<&MemberProfile>, facts: &[p360_model::Fact]) -> PatientRecord {
    let sex = profile
        .and_then(|p| p.sex.as_deref())
        .map_or(Sex::Unknown, Sex::parse);
    PatientRecord::from_facts(profile.and_then(|p| p.birth_date), sex, facts)
}

#[async_trait]
impl Stage for InsightsStage {
    fn name(&self) -> &'static str {
        "insights"
    }

    fn subscribes(&self) -> &'static [EventType] {
        &[
            EventType::GraphChanged,
            EventType::MembersEnrolled,
            EventType::AnalyticsConsentChanged,
        ]
    }

    async fn handle(&self, event: &Envelope) -> Result<Vec<Event>, StageError> {
        match &event.event {
            Event::GraphChanged(c) => {
                if c.changes.is_empty() || self.already_read(&c.patient_id, event.time) {
                    return Ok(Vec::new());
                }
                Ok(vec![self.recompute(&c.patient_id, &c.commit_id).await?])
            }
            Event::MembersEnrolled(m) => self.enrolled(m).await,
            Event::AnalyticsConsentChanged(c) => Ok(vec![
                self.recompute(&c.patient_id, &format!("consent-{}", c.change_id))
                    .await?,
            ]),
            other => Err(StageError::Permanent(format!(
                "insights does not handle {}",
                other.event_type()
            ))),
        }
    }
}
