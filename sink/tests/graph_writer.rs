//! The graph writer against an in-memory Oxigraph and a local object store.
#![allow(clippy::unwrap_used)]

use chrono::{NaiveDate, Utc};
use object_store::local::LocalFileSystem;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use p360_events::*;
use p360_graph::GraphStore;
use p360_graph::embedded::OxigraphStore;
use p360_graph::facts::read_patient;
use p360_model::*;
use p360_runtime::Stage;
use p360_sink::GraphWriter;
use std::sync::Arc;

fn patient() -> PatientId {
    PatientId::parse("pat-1").unwrap()
}

fn a1c(source: Provenance, status: Status) -> Fact {
    Fact::new(
        patient(),
        FactBody::Observation(Observation {
            kind: ObservationKind::Laboratory,
            code: vec![Coding::new(CodeSystem::Loinc, "4548-4", None)],
            value: Some(p360_model::Value::Quantity {
                value: 7.2,
                unit: "%".into(),
                comparator: None,
            }),
            effective: When::Date(NaiveDate::from_ymd_opt(2026, 3, 17).unwrap()),
            reference_range: None,
            interpretation: None,
        }),
        status,
        source,
    )
}

async fn put(store: &dyn ObjectStore, key: &str, facts: &[Fact]) -> p360_events::ObjectRef {
    let bytes = serde_json::to_vec(facts).unwrap();
    store
        .put(
            &object_store::path::Path::from(key),
            PutPayload::from(bytes.clone()),
        )
        .await
        .unwrap();
    p360_events::ObjectRef {
        key: key.into(),
        sha256: String::new(),
        size: bytes.len() as u64,
        media_type: "application/json".into(),
    }
}

fn extracted(facts: p360_events::ObjectRef, n: u32) -> Envelope {
    Envelope::new(
        EventId::random(),
        "/p360/test",
        Event::FactsExtracted(FactsExtracted {
            document_id: DocumentId::parse("doc-1").unwrap(),
            patient_id: patient(),
            facts,
            fact_count: n,
            needs_review: n,
            extractor: p360_events::Producer {
                name: "test".into(),
                version: "0".into(),
            },
        }),
    )
}

fn changes(out: &[Event]) -> Vec<(String, ChangeKind)> {
    let Event::GraphChanged(g) = &out[0] else {
        panic!("not GraphChanged")
    };
    g.changes
        .iter()
        .map(|c| (c.fact_id.clone(), c.kind))
        .collect()
}

#[tokio::test]
async fn same_fact_from_a_photo_and_a_manual_entry_is_one_fact_with_two_sources() {
    let dir = tempfile::tempdir().unwrap();
    let objects = Arc::new(LocalFileSystem::new_with_prefix(dir.path()).unwrap());
    let graph = Arc::new(OxigraphStore::in_memory().unwrap());
    let writer = GraphWriter::new(graph.clone(), objects.clone());
    let ocr = Provenance {
        confidence: Some(0.8),
        ..Provenance::new(SourceKind::Ocr, "doc-1", Utc::now())
    };
    let photo_fact = a1c(ocr, Status::Unconfirmed);

    let event = extracted(
        put(
            &*objects,
            "facts/pat-1/doc-1.json",
            std::slice::from_ref(&photo_fact),
        )
        .await,
        1,
    );
    let first = writer.handle(&event).await.unwrap();
    assert_eq!(
        changes(&first),
        vec![(photo_fact.id.to_string(), ChangeKind::Added)]
    );
    // Redelivery: identical output, nothing written twice.
    let again = writer.handle(&event).await.unwrap();
    assert_eq!(again, first);

    let typed = a1c(
        Provenance::new(SourceKind::ManualEntry, "usr-1", Utc::now()),
        Status::Confirmed,
    );
    let manual = Envelope::new(
        EventId::random(),
        "/p360/test",
        Event::ManualEntrySubmitted(ManualEntrySubmitted {
            patient_id: patient(),
            entered_by: UserId::parse("usr-1").unwrap(),
            entry: put(&*objects, "entries/pat-1/e1.json", &[typed]).await,
            effective_date: NaiveDate::from_ymd_opt(2026, 3, 17).unwrap(),
        }),
    );
    let out = writer.handle(&manual).await.unwrap();
    assert_eq!(
        changes(&out),
        vec![(photo_fact.id.to_string(), ChangeKind::StatusChanged)]
    );
    let facts = read_patient(&*graph, &patient()).await.unwrap();
    assert_eq!(facts.len(), 1, "one fact");
    assert_eq!(facts[0].provenance.len(), 2, "two sources");
    assert_eq!(
        facts[0].status,
        Status::Confirmed,
        "the patient's entry confirms it"
    );
}

#[tokio::test]
async fn bad_fact_objects_fail_permanently_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let objects = Arc::new(LocalFileSystem::new_with_prefix(dir.path()).unwrap());
    let writer = GraphWriter::new(
        Arc::new(OxigraphStore::in_memory().unwrap()),
        objects.clone(),
    );

    let missing = extracted(
        p360_events::ObjectRef {
            key: "facts/none.json".into(),
            sha256: String::new(),
            size: 0,
            media_type: "application/json".into(),
        },
        1,
    );
    let err = writer.handle(&missing).await.unwrap_err();
    assert!(
        err.is_permanent() && err.to_string().contains("is missing"),
        "{err}"
    );

    objects
        .put(
            &object_store::path::Path::from("facts/junk.json"),
            PutPayload::from_static(b"{\"not\": \"facts\"}"),
        )
        .await
        .unwrap();
    let junk = extracted(
        p360_events::ObjectRef {
            key: "facts/junk.json".into(),
            sha256: String::new(),
            size: 16,
            media_type: "application/json".into(),
        },
        1,
    );
    let err = writer.handle(&junk).await.unwrap_err();
    assert!(
        err.is_permanent() && err.to_string().contains("not a JSON array of facts"),
        "{err}"
    );

    let mut other = a1c(
        Provenance::new(SourceKind::Ocr, "doc-1", Utc::now()),
        Status::Unconfirmed,
    );
    other.patient = PatientId::parse("pat-2").unwrap();
    let wrong = extracted(put(&*objects, "facts/pat-1/wrong.json", &[other]).await, 1);
    let err = writer.handle(&wrong).await.unwrap_err();
    assert!(
        err.is_permanent() && err.to_string().contains("another patient"),
        "{err}"
    );
}

#[tokio::test]
async fn a_result_in_another_unit_is_the_same_fact_with_another_source() {
    let dir = tempfile::tempdir().unwrap();
    let objects = Arc::new(LocalFileSystem::new_with_prefix(dir.path()).unwrap());
    let graph = Arc::new(OxigraphStore::in_memory().unwrap());
    let writer = GraphWriter::new(graph.clone(), objects.clone());
    let weight = |value: f64, unit: &str, source: SourceKind| {
        Fact::new(
            patient(),
            FactBody::Observation(Observation {
                kind: ObservationKind::VitalSigns,
                code: vec![Coding::new(CodeSystem::Loinc, "29463-7", None)],
                value: Some(p360_model::Value::Quantity {
                    value,
                    unit: unit.into(),
                    comparator: None,
                }),
                effective: When::Date(NaiveDate::from_ymd_opt(2026, 3, 1).unwrap()),
                reference_range: None,
                interpretation: None,
            }),
            Status::Confirmed,
            Provenance::new(source, "src", Utc::now()),
        )
    };
    let kg = weight(81.5, "kg", SourceKind::ManualEntry);
    let lb = weight(179.7, "[lb_av]", SourceKind::Device);
    let other = weight(84.0, "kg", SourceKind::Device);
    assert_ne!(kg.id, lb.id, "different statements, different ids");
    let e1 = extracted(
        put(&*objects, "f/1.json", std::slice::from_ref(&kg)).await,
        1,
    );
    writer.handle(&e1).await.unwrap();
    let e2 = extracted(put(&*objects, "f/2.json", &[lb, other.clone()]).await, 2);
    let out = writer.handle(&e2).await.unwrap();
    assert_eq!(
        changes(&out),
        vec![
            (kg.id.to_string(), ChangeKind::SourceAttached),
            (other.id.to_string(), ChangeKind::Added)
        ]
    );
    let facts = read_patient(&*graph, &patient()).await.unwrap();
    assert_eq!(
        facts.len(),
        2,
        "81.5 kg and 179.7 lb are one fact; 84 kg is another"
    );
    let merged = facts.iter().find(|f| f.id == kg.id).unwrap();
    assert_eq!(merged.provenance.len(), 2);
}

#[tokio::test]
async fn concurrent_events_share_commits_and_each_reports_its_own_changes() {
    let dir = tempfile::tempdir().unwrap();
    let objects = Arc::new(LocalFileSystem::new_with_prefix(dir.path()).unwrap());
    let graph = Arc::new(OxigraphStore::in_memory().unwrap());
    let writer = Arc::new(GraphWriter::new(graph.clone(), objects.clone()));
    let mut events = Vec::new();
    for i in 0..60 {
        // Every third event restates the previous one's fact from another source.
        let day = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap() + chrono::Days::new(i / 3 * 3);
        let fact = Fact::new(
            patient(),
            FactBody::Observation(Observation {
                kind: ObservationKind::Laboratory,
                code: vec![Coding::new(CodeSystem::Loinc, "4548-4", None)],
                value: Some(p360_model::Value::Quantity {
                    value: 7.0,
                    unit: "%".into(),
                    comparator: None,
                }),
                effective: When::Date(day),
                reference_range: None,
                interpretation: None,
            }),
            Status::Confirmed,
            Provenance::new(SourceKind::PayorFeed, format!("feed-{i}"), Utc::now()),
        );
        events.push(extracted(
            put(&*objects, &format!("f/{i}.json"), &[fact]).await,
            1,
        ));
    }
    let handles: Vec<_> = events
        .iter()
        .cloned()
        .map(|e| {
            let w = writer.clone();
            tokio::spawn(async move { w.handle(&e).await.unwrap() })
        })
        .collect();
    let mut added = 0;
    let mut attached = 0;
    for h in handles {
        for (_, kind) in changes(&h.await.unwrap()) {
            match kind {
                ChangeKind::Added => added += 1,
                ChangeKind::SourceAttached => attached += 1,
                other => panic!("{other:?}"),
            }
        }
    }
    assert_eq!((added, attached), (20, 40));
    let facts = read_patient(&*graph, &patient()).await.unwrap();
    assert_eq!(facts.len(), 20);
    assert!(facts.iter().all(|f| f.provenance.len() == 3));
    // Redelivered after the fact: the recorded changes, nothing new.
    let again = writer.handle(&events[0]).await.unwrap();
    assert_eq!(changes(&again).len(), 1);
    assert_eq!(read_patient(&*graph, &patient()).await.unwrap().len(), 20);
}

fn feed(source: &str) -> Provenance {
    Provenance::new(SourceKind::PayorFeed, source, Utc::now())
}

fn condition(code: &str, sources: &[&str]) -> Fact {
    let mut f = Fact::new(
        patient(),
        FactBody::Condition(Condition {
            code: vec![Coding::new(CodeSystem::Icd10Cm, code, None)],
            clinical_status: ClinicalStatus::Active,
            onset: NaiveDate::from_ymd_opt(2025, 1, 2),
            recorded: None,
        }),
        Status::Confirmed,
        feed(sources[0]),
    );
    for s in &sources[1..] {
        f.attach(feed(s));
    }
    f
}

fn resolved(facts: p360_events::ObjectRef) -> Envelope {
    Envelope::new(
        EventId::random(),
        "/p360/test",
        Event::FactsResolved(FactsResolved {
            batch_id: BatchId::parse("B1").unwrap(),
            patient_id: patient(),
            facts,
            fact_count: 1,
            matched_by: "test".into(),
            resolver: p360_events::Producer {
                name: "test".into(),
                version: "0".into(),
            },
        }),
    )
}

fn detached(sources: &[&str]) -> Envelope {
    Envelope::new(
        EventId::random(),
        "/p360/test",
        Event::SourcesDetached(SourcesDetached {
            batch_id: BatchId::parse("B1").unwrap(),
            patient_id: patient(),
            sources: sources.iter().map(|s| s.to_string()).collect(),
            decision: "feeds/B1/_decisions/0/000000.json".into(),
        }),
    )
}

#[tokio::test]
async fn detaching_sources_removes_facts_left_without_one_and_keeps_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let objects = Arc::new(LocalFileSystem::new_with_prefix(dir.path()).unwrap());
    let graph = Arc::new(OxigraphStore::in_memory().unwrap());
    let writer = GraphWriter::new(graph.clone(), objects.clone());
    // E11.9 confirmed by two claims of the unlinked person and one HIE record; I10 by one
    // claim of the unlinked person only; J45 by another person's claim, untouched.
    let diabetes = condition(
        "E11.9",
        &[
            "B1/claims.csv#C1",
            "B1/claims.csv#C2",
            "B1/hie/Condition.ndjson#h1",
        ],
    );
    let htn = condition("I10", &["B1/claims.csv#C1"]);
    let asthma = condition("J45.909", &["B1/claims.csv#C9"]);
    let facts = [diabetes.clone(), htn.clone(), asthma.clone()];
    writer
        .handle(&resolved(
            put(&*objects, "facts/pat-1/b1.json", &facts).await,
        ))
        .await
        .unwrap();

    let undo = detached(&["B1/claims.csv#C1", "B1/claims.csv#C2"]);
    let out = writer.handle(&undo).await.unwrap();
    let mut got = changes(&out);
    got.sort_by(|a, b| a.0.cmp(&b.0));
    let mut want = vec![
        (diabetes.id.to_string(), ChangeKind::SourceDetached),
        (htn.id.to_string(), ChangeKind::Removed),
    ];
    want.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(got, want);
    // Redelivery: the same changes, nothing applied twice.
    assert_eq!(writer.handle(&undo).await.unwrap(), out);

    let left = read_patient(&*graph, &patient()).await.unwrap();
    let ids: Vec<&str> = left.iter().map(|f| f.id.as_str()).collect();
    assert_eq!(left.len(), 2, "{ids:?}");
    let d = left.iter().find(|f| f.id == diabetes.id).unwrap();
    let sources: Vec<&str> = d.provenance.iter().map(|p| p.source_id.as_str()).collect();
    assert_eq!(sources, vec!["B1/hie/Condition.ndjson#h1"]);
    let a = left.iter().find(|f| f.id == asthma.id).unwrap();
    assert_eq!(a.provenance.len(), 1);
    // Nothing of the removed fact is left in the graph (no orphan source nodes).
    let n = graph
        .select(&format!(
            "SELECT (COUNT(*) AS ?n) WHERE {{ GRAPH ?g {{ ?s ?p ?o FILTER(CONTAINS(STR(?s), \"{}\")) }} }}",
            htn.id
        ))
        .await
        .unwrap();
    assert_eq!(n[0]["n"].value(), "0");

    // The same fact stated again (a new batch) comes back as a new fact.
    let back = writer
        .handle(&resolved(
            put(&*objects, "facts/pat-1/b2.json", std::slice::from_ref(&htn)).await,
        ))
        .await
        .unwrap();
    assert_eq!(
        changes(&back),
        vec![(htn.id.to_string(), ChangeKind::Added)]
    );
}
