//! Wire-contract tests: one snapshot per event type, so any change to the JSON on the queues is
//! reviewed (`cargo insta review`) rather than accidental.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

use chrono::{DateTime, NaiveDate, Utc};
use p360_events::*;
use uuid::Uuid;

fn at() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-03-18T08:15:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

fn patient() -> PatientId {
    PatientId::parse("pat-0001").unwrap()
}

fn object(key: &str) -> ObjectRef {
    ObjectRef {
        key: key.into(),
        sha256: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855".into(),
        size: 48213,
        media_type: "image/jpeg".into(),
    }
}

fn producer() -> Producer {
    Producer {
        name: "p360-extract".into(),
        version: "0.1.0".into(),
    }
}

/// One example of every event type, with fixed ids and times.
fn examples() -> Vec<Envelope> {
    let doc = DocumentId::parse("doc-7f3a").unwrap();
    let batch = BatchId::parse("batch-2026-03-18").unwrap();
    let events = vec![
        Event::DocumentReceived(DocumentReceived {
            document_id: doc.clone(),
            patient_id: patient(),
            object: object("raw/pat-0001/e3b0.jpg"),
            channel: Channel::Upload,
            uploaded_by: Some(UserId::parse("usr-0001").unwrap()),
            received_at: at(),
        }),
        Event::FactsExtracted(FactsExtracted {
            document_id: doc,
            patient_id: patient(),
            facts: object("facts/pat-0001/doc-7f3a.json"),
            fact_count: 12,
            needs_review: 2,
            extractor: producer(),
        }),
        Event::FeedBatchReceived(FeedBatchReceived {
            batch_id: batch.clone(),
            format: FeedFormat::FhirNdjson,
            object: object("feeds/batch-2026-03-18/Observation.000.ndjson"),
            resource_type: Some("Observation".into()),
        }),
        Event::FactsResolved(FactsResolved {
            batch_id: batch.clone(),
            patient_id: patient(),
            facts: object("facts/pat-0001/batch-2026-03-18.json"),
            fact_count: 40,
            matched_by: "member_id".into(),
            resolver: producer(),
        }),
        Event::ManualEntrySubmitted(ManualEntrySubmitted {
            patient_id: patient(),
            entered_by: UserId::parse("usr-0001").unwrap(),
            entry: object("entries/pat-0001/x.json"),
            effective_date: NaiveDate::from_ymd_opt(2026, 3, 17).unwrap(),
        }),
        Event::GraphChanged(GraphChanged {
            patient_id: patient(),
            commit_id: "c-000042".into(),
            committed_at: at(),
            changes: vec![
                FactChange {
                    fact_id: "obs-1".into(),
                    category: "laboratory".into(),
                    kind: ChangeKind::Added,
                },
                FactChange {
                    fact_id: "cond-1".into(),
                    category: "condition".into(),
                    kind: ChangeKind::SourceAttached,
                },
            ],
        }),
        Event::AccessRecorded(AccessRecorded {
            patient_id: patient(),
            ledger_seq: 7,
            actor_id: UserId::parse("usr-prov-1").unwrap(),
            actor_role: Role::Provider,
            grant_id: Some("grant-1".into()),
            resource_types: vec!["Observation".into()],
            purpose: "TREAT".into(),
            outcome: AccessOutcome::Permit,
            break_glass: false,
            at: at(),
        }),
        Event::DeviceReadingsReceived(DeviceReadingsReceived {
            patient_id: patient(),
            submitted_by: UserId::parse("usr-0001").unwrap(),
            channel: ReadingsChannel::AppleHealth,
            readings: object("devices/pat-0001/batches/e3b0.json"),
            sample_count: 1440,
            device_count: 2,
        }),
        Event::DeviceReadingsStored(DeviceReadingsStored {
            patient_id: patient(),
            received_id: EventId(Uuid::from_u128(9)),
            samples: object("devices/pat-0001/stored/00000000-0000-0000-0000-000000000009.json"),
            sample_count: 1400,
            stored_at: at(),
        }),
        Event::SourcesDetached(SourcesDetached {
            batch_id: batch.clone(),
            patient_id: patient(),
            sources: vec!["batch-2026-03-18/claims.csv#C22070500001".into()],
            decision: "feeds/batch-2026-03-18/_decisions/12/0.json".into(),
        }),
        Event::MembersEnrolled(MembersEnrolled {
            batch_id: batch,
            profiles: object("feeds/batch-2026-03-18/_members.ndjson"),
            count: 1200,
            recorded_at: at(),
        }),
        Event::CareGapsComputed(CareGapsComputed {
            patient_id: patient(),
            computation_id: "gaps-0000000000000000000000000000000b".into(),
            computed_at: at(),
            results: object("insights/pat-0001/gaps/0000000b.json"),
        }),
        Event::AnalyticsConsentChanged(AnalyticsConsentChanged {
            patient_id: patient(),
            population_analytics: false,
            personalized_tips: true,
            changed_at: at(),
            change_id: "analytics-0000000000000000000000000000000c".into(),
        }),
    ];
    events
        .into_iter()
        .enumerate()
        .map(|(i, e)| {
            let mut env = Envelope::new(EventId(Uuid::from_u128(i as u128 + 1)), "/p360/test", e);
            env.time = at();
            env
        })
        .collect()
}

#[test]
fn every_event_type_has_an_example() {
    let mut seen: Vec<EventType> = examples().iter().map(Envelope::event_type).collect();
    seen.sort();
    let mut all = EventType::ALL.to_vec();
    all.sort();
    assert_eq!(seen, all);
}

#[test]
fn wire_snapshots() {
    for env in examples() {
        let json: serde_json::Value = serde_json::from_str(&env.to_json()).unwrap();
        assert_eq!(json["type"], env.event_type().as_str());
        insta::assert_json_snapshot!(env.event_type().as_str(), json);
    }
}

#[test]
fn round_trip_every_event() {
    for env in examples() {
        let back = Envelope::from_json(&env.to_json()).unwrap();
        assert_eq!(back, env);
    }
}

#[test]
fn eventbridge_wrapped_envelopes_decode() {
    let env = &examples()[0];
    let wrapped = serde_json::json!({
        "version": "0", "id": "eb-1", "detail-type": env.event_type().as_str(),
        "source": env.source, "account": "123456789012", "time": "2026-03-18T08:15:00Z",
        "region": "us-east-1", "resources": [],
        "detail": serde_json::from_str::<serde_json::Value>(&env.to_json()).unwrap(),
    });
    assert_eq!(&Envelope::from_json(&wrapped.to_string()).unwrap(), env);
}

#[test]
fn decode_errors_name_the_problem_not_the_content() {
    let mut v: serde_json::Value = serde_json::from_str(&examples()[0].to_json()).unwrap();
    v["data"]["patient_id"] = serde_json::json!(42);
    v["data"]["object"]["key"] = serde_json::json!({"name": "Jane Doe"});
    let err = Envelope::from_json(&v.to_string()).unwrap_err().to_string();
    assert!(!err.contains("Jane"), "{err}");

    let mut v: serde_json::Value = serde_json::from_str(&examples()[0].to_json()).unwrap();
    v["type"] = serde_json::json!("p360.secret.Jane Doe");
    let err = Envelope::from_json(&v.to_string()).unwrap_err().to_string();
    assert!(err.contains("unknown event type"), "{err}");
    assert!(!err.contains("Jane"), "{err}");

    let mut v: serde_json::Value = serde_json::from_str(&examples()[0].to_json()).unwrap();
    v["schemaversion"] = serde_json::json!(99);
    let err = Envelope::from_json(&v.to_string()).unwrap_err();
    assert!(matches!(
        err,
        EventError::UnsupportedVersion { found: 99, .. }
    ));

    let err = Envelope::from_json("{not json").unwrap_err().to_string();
    assert!(err.contains("line 1"), "{err}");
}

#[test]
fn debug_never_prints_the_payload() {
    let env = &examples()[0];
    let dbg = format!("{env:?}");
    assert!(!dbg.contains("raw/pat-0001"), "{dbg}");
    assert!(dbg.contains("p360.document.received"));
}

#[test]
fn child_events_are_deterministic() {
    let parent = &examples()[0];
    let e = examples()[1].event.clone();
    let a = parent.child("extract", 0, e.clone());
    let b = parent.child("extract", 0, e);
    assert_eq!(a.id, b.id);
    assert_eq!(a.correlationid, parent.correlationid);
    assert_eq!(a.causationid, Some(parent.id));
}
