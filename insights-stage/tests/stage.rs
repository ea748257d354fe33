//! The insights stage against an in-memory Oxigraph, a local object store and the SQLite
//! consent store: results kept and announced, tips only for patients who opted in, a new tip
//! notified once, feedback kept across recomputations, tips gone at a withdrawal.
#![allow(clippy::unwrap_used)]

use chrono::{Duration, NaiveDate, Utc};
use object_store::local::LocalFileSystem;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use p360_consent::{AnalyticsConsent, ConsentStore, SqliteConsentStore};
use p360_events::*;
use p360_graph::GraphStore;
use p360_graph::embedded::OxigraphStore;
use p360_insights_stage::{InsightsStage, InsightsStore, TipState};
use p360_model::*;
use p360_runtime::Stage;
use std::sync::Arc;

struct World {
    _dir: tempfile::TempDir,
    graph: Arc<dyn GraphStore>,
    objects: Arc<dyn ObjectStore>,
    consent: Arc<dyn ConsentStore>,
    stage: InsightsStage,
}

fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let graph: Arc<dyn GraphStore> = Arc::new(OxigraphStore::in_memory().unwrap());
    let objects: Arc<dyn ObjectStore> =
        Arc::new(LocalFileSystem::new_with_prefix(dir.path()).unwrap());
    let consent: Arc<dyn ConsentStore> =
        Arc::new(SqliteConsentStore::open(&dir.path().join("consent.db")).unwrap());
    let stage = InsightsStage::new(
        graph.clone(),
        objects.clone(),
        consent.clone(),
        InsightsStore::in_memory().unwrap(),
        p360_clock::system(),
    );
    World {
        _dir: dir,
        graph,
        objects,
        consent,
        stage,
    }
}

fn today() -> NaiveDate {
    Utc::now().date_naive()
}

fn lab(patient: &PatientId, code: &str, days_ago: i64, value: f64, unit: &str) -> Fact {
    Fact::new(
        patient.clone(),
        FactBody::Observation(Observation {
            kind: ObservationKind::Laboratory,
            code: vec![Coding::new(CodeSystem::Loinc, code, None)],
            value: Some(p360_model::Value::Quantity {
                value,
                unit: unit.into(),
                comparator: None,
            }),
            effective: When::Date(today() - Duration::days(days_ago)),
            reference_range: None,
            interpretation: None,
        }),
        Status::Confirmed,
        Provenance::new(
            SourceKind::PayorFeed,
            format!("b1/labs#{code}{days_ago}"),
            Utc::now(),
        ),
    )
}

fn diabetes(patient: &PatientId) -> Fact {
    Fact::new(
        patient.clone(),
        FactBody::Condition(Condition {
            code: vec![Coding::new(CodeSystem::Icd10Cm, "E11.9", None)],
            clinical_status: ClinicalStatus::Active,
            onset: Some(today() - Duration::days(400)),
            recorded: None,
        }),
        Status::Confirmed,
        Provenance::new(SourceKind::PayorFeed, "b1/claims#1", Utc::now()),
    )
}

async fn enrol(w: &World, patient: &PatientId, birth: &str, sex: &str) {
    let line = serde_json::to_string(&MemberProfile {
        patient_id: patient.clone(),
        birth_date: Some(birth.parse().unwrap()),
        sex: Some(sex.into()),
        plan_id: Some("HMO-1".into()),
        region: Some("OH".into()),
        coverage_start: None,
        coverage_end: None,
    })
    .unwrap();
    let key = format!("feeds/{patient}-roster/_members.ndjson");
    w.objects
        .put(
            &object_store::path::Path::from(key.as_str()),
            PutPayload::from(line.clone().into_bytes()),
        )
        .await
        .unwrap();
    let event = Envelope::new(
        EventId::random(),
        "/p360/test",
        Event::MembersEnrolled(MembersEnrolled {
            batch_id: BatchId::parse("b1").unwrap(),
            profiles: ObjectRef {
                key,
                sha256: "ab".repeat(32),
                size: line.len() as u64,
                media_type: "application/x-ndjson".into(),
            },
            count: 1,
            recorded_at: Utc::now(),
        }),
    );
    w.stage.handle(&event).await.unwrap();
}

async fn changed(w: &World, patient: &PatientId, facts: &[Fact]) -> Vec<Event> {
    let mut update = String::new();
    for f in facts {
        update.push_str(&p360_graph::facts::upsert(f));
        update.push_str(" ;\n");
    }
    update.push_str("INSERT DATA { <urn:x:a> <urn:x:b> <urn:x:c> }");
    w.graph.update(&update).await.unwrap();
    let event = Envelope::new(
        EventId::random(),
        "/p360/test",
        Event::GraphChanged(GraphChanged {
            patient_id: patient.clone(),
            commit_id: EventId::random().to_string(),
            committed_at: Utc::now(),
            changes: facts
                .iter()
                .map(|f| FactChange {
                    fact_id: f.id.to_string(),
                    category: f.body.category().as_str().into(),
                    kind: ChangeKind::Added,
                })
                .collect(),
        }),
    );
    w.stage.handle(&event).await.unwrap()
}

async fn opt(w: &World, patient: &PatientId, tips: bool) -> Vec<Event> {
    let c = AnalyticsConsent {
        population_analytics: true,
        personalized_tips: tips,
    };
    w.consent.set_analytics(patient, c).await.unwrap();
    let event = Envelope::new(
        EventId::random(),
        "/p360/test",
        Event::AnalyticsConsentChanged(AnalyticsConsentChanged {
            patient_id: patient.clone(),
            population_analytics: true,
            personalized_tips: tips,
            changed_at: Utc::now(),
            change_id: EventId::random().to_string(),
        }),
    );
    w.stage.handle(&event).await.unwrap()
}

fn status_of(w: &World, patient: &PatientId, measure: &str) -> String {
    let r = w.stage.store().results(patient).unwrap();
    let r = r.iter().find(|r| r.measure_id == measure).unwrap();
    serde_json::to_value(r.status)
        .unwrap()
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn results_are_kept_and_announced_and_tips_follow_the_patients_choice() {
    let w = world();
    let ann = PatientId::parse("pat-ann").unwrap();
    enrol(&w, &ann, "1966-05-14", "female").await;
    let facts = [
        diabetes(&ann),
        lab(&ann, "4548-4", 330, 7.2, "%"),
        lab(&ann, "4548-4", 180, 7.9, "%"),
        lab(&ann, "4548-4", 15, 9.6, "%"),
    ];
    // Not opted in: results, but no tips.
    let events = changed(&w, &ann, &facts).await;
    let [Event::CareGapsComputed(c)] = events.as_slice() else {
        panic!("expected one CareGapsComputed, got {events:?}")
    };
    let stored: serde_json::Value = serde_json::from_slice(
        &w.objects
            .get(&object_store::path::Path::from(c.results.key.as_str()))
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap(),
    )
    .unwrap();
    assert!(stored.as_array().unwrap().len() >= 7);
    // The latest HbA1c is above 9 %: the inverse measure's gap.
    assert_eq!(status_of(&w, &ann, "cms122"), "gap");
    // A woman of 60 with no mammogram: a gap; and no data about her colon either.
    assert_eq!(status_of(&w, &ann, "cms125"), "gap");
    assert!(w.stage.store().tips(&ann).unwrap().is_empty());
    assert!(
        w.consent.notifications(&ann, 10).await.unwrap().is_empty(),
        "no tip notification without the opt-in"
    );

    // Opting in builds the tips at once, each with its evidence, and notifies them once.
    opt(&w, &ann, true).await;
    let tips = w.stage.store().tips(&ann).unwrap();
    assert!(!tips.is_empty());
    assert!(
        tips.iter().any(|t| t.tip.kind == "rising_trend"),
        "{tips:#?}"
    );
    let a1c = tips
        .iter()
        .find(|t| t.tip.measure_id.as_deref() == Some("cms122"))
        .expect("a tip for the HbA1c gap");
    assert!(!a1c.tip.evidence.is_empty() && !a1c.tip.why.is_empty());
    let notes = w.consent.notifications(&ann, 50).await.unwrap();
    assert_eq!(notes.iter().filter(|n| n.kind == "tip").count(), tips.len());
    assert!(
        notes.iter().all(|n| !n.message.contains("HbA1c")),
        "no health data on a lock screen"
    );

    // Dismissed stays dismissed when the record changes again; no new notification for it.
    w.stage
        .store()
        .feedback(&ann, &a1c.tip.id, TipState::Dismissed, None, Utc::now())
        .unwrap();
    changed(
        &w,
        &ann,
        &[lab(&ann, "33914-3", 10, 80.0, "mL/min/{1.73_m2}")],
    )
    .await;
    let again = w.stage.store().tips(&ann).unwrap();
    let kept = again.iter().find(|t| t.tip.id == a1c.tip.id).unwrap();
    assert_eq!(kept.state, TipState::Dismissed);
    assert_eq!(
        w.consent
            .notifications(&ann, 50)
            .await
            .unwrap()
            .iter()
            .filter(|n| n.kind == "tip")
            .count(),
        again.len()
    );

    // A result at 8.0 closes the HbA1c gap: its tip is resolved.
    changed(&w, &ann, &[lab(&ann, "4548-4", 2, 8.0, "%")]).await;
    assert_eq!(status_of(&w, &ann, "cms122"), "met");

    // Withdrawing from tips clears them: nothing prepared stays.
    opt(&w, &ann, false).await;
    assert!(w.stage.store().tips(&ann).unwrap().is_empty());
}

#[tokio::test]
async fn a_patient_without_a_roster_profile_is_insufficient_data_not_met() {
    let w = world();
    let bob = PatientId::parse("pat-bob").unwrap();
    changed(
        &w,
        &bob,
        &[diabetes(&bob), lab(&bob, "4548-4", 20, 6.5, "%")],
    )
    .await;
    // Without a birth date no age-bounded measure can be decided.
    for m in ["cms122", "cms125", "cms130"] {
        assert_eq!(status_of(&w, &bob, m), "insufficient_data", "{m}");
    }
    // Enrolment brings the birth date: the patient is recomputed at once.
    enrol(&w, &bob, "1970-01-01", "male").await;
    assert_eq!(status_of(&w, &bob, "cms122"), "met");
    assert_eq!(status_of(&w, &bob, "cms125"), "not_applicable");
}

/// A backlog of one patient's commits costs one recompute: a change announced well before the
/// last read of the record is already in it; one announced after that read is recomputed.
#[tokio::test]
async fn a_backlog_of_changes_already_read_is_not_recomputed() {
    let w = world();
    let patient = PatientId::parse("pat-backlog").unwrap();
    let facts = [diabetes(&patient), lab(&patient, "4548-4", 20, 7.1, "%")];
    let mut update = String::new();
    for f in &facts {
        update.push_str(&p360_graph::facts::upsert(f));
        update.push_str(" ;\n");
    }
    update.push_str("INSERT DATA { <urn:x:a> <urn:x:b> <urn:x:c> }");
    w.graph.update(&update).await.unwrap();
    let announced = |ago: i64, fact: &Fact| {
        let mut e = Envelope::new(
            EventId::random(),
            "/p360/test",
            Event::GraphChanged(GraphChanged {
                patient_id: patient.clone(),
                commit_id: EventId::random().to_string(),
                committed_at: Utc::now(),
                changes: vec![FactChange {
                    fact_id: fact.id.to_string(),
                    category: fact.body.category().as_str().into(),
                    kind: ChangeKind::Added,
                }],
            }),
        );
        e.time = Utc::now() - Duration::seconds(ago);
        e
    };
    let first = w.stage.handle(&announced(60, &facts[0])).await.unwrap();
    assert!(matches!(first.as_slice(), [Event::CareGapsComputed(_)]));
    let queued = w.stage.handle(&announced(59, &facts[1])).await.unwrap();
    assert!(queued.is_empty(), "already read: {queued:?}");
    let fresh = w.stage.handle(&announced(0, &facts[1])).await.unwrap();
    assert!(matches!(fresh.as_slice(), [Event::CareGapsComputed(_)]));
}
