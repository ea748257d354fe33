//! The lake sink against an in-memory Oxigraph and a local object store: rows as written,
//! batching, redelivery, restart and crash recovery.
#![allow(clippy::unwrap_used)]

use arrow_array::{Array, Float64Array, RecordBatch, StringArray, UInt32Array};
use chrono::{NaiveDate, Utc};
use futures::TryStreamExt;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use p360_events::*;
use p360_graph::GraphStore;
use p360_graph::embedded::OxigraphStore;
use p360_model::*;
use p360_runtime::Stage;
use p360_sink::lake::ledger::{Entry, State};
use p360_sink::lake::pseudonym::Pseudonymizer;
use p360_sink::{LakeConfig, LakeSink};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use std::sync::Arc;
use std::time::Duration;

struct Lake {
    _dir: tempfile::TempDir,
    objects: Arc<dyn ObjectStore>,
    graph: Arc<dyn GraphStore>,
}

impl Lake {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        Self {
            objects: Arc::new(LocalFileSystem::new_with_prefix(dir.path()).unwrap()),
            graph: Arc::new(OxigraphStore::in_memory().unwrap()),
            _dir: dir,
        }
    }

    async fn sink(&self) -> LakeSink {
        LakeSink::open(
            self.graph.clone(),
            self.objects.clone(),
            Pseudonymizer::new([1; 32]),
            LakeConfig {
                flush_interval: Duration::from_millis(200),
                ..LakeConfig::default()
            },
        )
        .await
        .unwrap()
    }

    async fn files(&self, prefix: &str) -> Vec<String> {
        let mut keys: Vec<String> = self
            .objects
            .list(Some(&Path::from(prefix)))
            .map_ok(|m| m.location.to_string())
            .try_collect()
            .await
            .unwrap();
        keys.sort();
        keys
    }

    async fn rows(&self, table: &str) -> Vec<RecordBatch> {
        let mut out = Vec::new();
        for key in self.files(&format!("lake/{table}")).await {
            let bytes = self
                .objects
                .get(&Path::from(key.as_str()))
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap();
            let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)
                .unwrap()
                .build()
                .unwrap();
            out.extend(reader.map(Result::unwrap));
        }
        out
    }

    async fn count(&self, table: &str) -> usize {
        self.rows(table)
            .await
            .iter()
            .map(RecordBatch::num_rows)
            .sum()
    }
}

fn glucose(patient: &PatientId, value: f64) -> Fact {
    Fact::new(
        patient.clone(),
        FactBody::Observation(Observation {
            kind: ObservationKind::Laboratory,
            code: vec![Coding::new(CodeSystem::Loinc, "2345-7", Some("Glucose"))],
            value: Some(p360_model::Value::Quantity {
                value,
                unit: "mg/dL".into(),
                comparator: None,
            }),
            effective: When::Date(NaiveDate::from_ymd_opt(2026, 3, 17).unwrap()),
            reference_range: Some(ReferenceRange {
                low: Some(70.0),
                high: Some(99.0),
                unit: Some("mg/dL".into()),
                text: None,
            }),
            interpretation: Some(Interpretation::High),
        }),
        Status::Confirmed,
        Provenance {
            confidence: Some(0.93),
            ..Provenance::new(SourceKind::Ocr, "doc-1", Utc::now())
        },
    )
}

fn diabetes(patient: &PatientId) -> Fact {
    Fact::new(
        patient.clone(),
        FactBody::Condition(Condition {
            code: vec![Coding::new(CodeSystem::Icd10Cm, "E11.9", None)],
            clinical_status: ClinicalStatus::Active,
            onset: NaiveDate::from_ymd_opt(2024, 5, 1),
            recorded: None,
        }),
        Status::Confirmed,
        Provenance::new(SourceKind::ManualEntry, "usr-1", Utc::now()),
    )
}

/// Writes facts into the graph and returns the GraphChanged the graph writer would emit.
async fn commit(lake: &Lake, patient: &PatientId, facts: &[Fact]) -> Envelope {
    let mut update = String::new();
    for f in facts {
        update.push_str(&p360_graph::facts::upsert(f));
        update.push_str(" ;\n");
    }
    update.push_str("INSERT DATA { <urn:x:a> <urn:x:b> <urn:x:c> }");
    lake.graph.update(&update).await.unwrap();
    Envelope::new(
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
    )
}

fn column<'a, T: 'static>(batch: &'a RecordBatch, name: &str) -> &'a T {
    batch
        .column_by_name(name)
        .unwrap()
        .as_any()
        .downcast_ref::<T>()
        .unwrap()
}

#[tokio::test]
async fn changes_become_typed_rows_with_pseudonymous_patient_keys() {
    let lake = Lake::new();
    let sink = lake.sink().await;
    let patient = PatientId::parse("pat-lake-1").unwrap();
    let event = commit(
        &lake,
        &patient,
        &[glucose(&patient, 126.0), diabetes(&patient)],
    )
    .await;
    sink.handle(&event).await.unwrap();

    assert_eq!(lake.count("graph_changes").await, 2);
    let obs = lake.rows("observations").await;
    assert_eq!(obs.len(), 1);
    let b = &obs[0];
    assert_eq!(b.num_rows(), 1);
    let key = column::<StringArray>(b, "patient_key").value(0);
    assert_eq!(key, Pseudonymizer::new([1; 32]).patient_key("pat-lake-1"));
    assert!(!key.contains("pat-lake"));
    assert_eq!(column::<StringArray>(b, "code").value(0), "2345-7");
    assert_eq!(column::<Float64Array>(b, "value").value(0), 126.0);
    assert_eq!(column::<StringArray>(b, "unit").value(0), "mg/dL");
    assert_eq!(column::<StringArray>(b, "interpretation").value(0), "H");
    assert_eq!(column::<Float64Array>(b, "reference_high").value(0), 99.0);
    assert!((column::<Float64Array>(b, "min_confidence").value(0) - 0.93).abs() < 1e-6);
    assert_eq!(column::<UInt32Array>(b, "source_count").value(0), 1);
    assert!(column::<StringArray>(b, "comparator").is_null(0));
    assert_eq!(lake.count("conditions").await, 1);
    assert_eq!(lake.count("medications").await, 0);

    // Hive partitions by the commit's day.
    let today = Utc::now().date_naive();
    let files = lake.files("lake/observations").await;
    assert!(
        files[0].starts_with(&format!(
            "lake/observations/year={}/month={}/day={}/part-",
            today.format("%Y"),
            today.format("%m"),
            today.format("%d")
        )),
        "{files:?}"
    );
    // No patient id anywhere in the lake, ledger included.
    for key in lake.files("lake").await {
        let bytes = lake
            .objects
            .get(&Path::from(key.as_str()))
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        assert!(
            !bytes.windows(10).any(|w| w == b"pat-lake-1"),
            "{key} names the patient"
        );
    }
}

#[tokio::test]
async fn concurrent_changes_share_one_file_per_table_and_redelivery_adds_nothing() {
    let lake = Lake::new();
    let sink = Arc::new(lake.sink().await);
    let mut events = Vec::new();
    for i in 0..40 {
        let patient = PatientId::parse(&format!("pat-{i}")).unwrap();
        events.push(commit(&lake, &patient, &[glucose(&patient, 90.0 + f64::from(i))]).await);
    }
    let handles: Vec<_> = events
        .iter()
        .cloned()
        .map(|e| {
            let sink = sink.clone();
            tokio::spawn(async move { sink.handle(&e).await.unwrap() })
        })
        .collect();
    for h in handles {
        h.await.unwrap();
    }
    assert_eq!(lake.count("observations").await, 40);
    assert_eq!(
        lake.files("lake/observations").await.len(),
        1,
        "one flush, one file"
    );

    // Redelivered to the same sink, and to a restarted one: nothing new.
    sink.handle(&events[3]).await.unwrap();
    drop(sink);
    let restarted = lake.sink().await;
    for e in &events {
        restarted.handle(e).await.unwrap();
    }
    assert_eq!(lake.count("observations").await, 40);
    assert_eq!(lake.count("graph_changes").await, 40);
}

#[tokio::test]
async fn a_crashed_flush_is_rolled_back_and_rewritten_once() {
    let lake = Lake::new();
    let patient = PatientId::parse("pat-crash").unwrap();
    let event = commit(&lake, &patient, &[glucose(&patient, 101.0)]).await;
    // What a kill between writing files and committing the ledger leaves behind.
    let orphan = "lake/observations/year=2026/month=11/day=23/part-crashed.parquet";
    lake.objects
        .put(&Path::from(orphan), PutPayload::from_static(b"partial"))
        .await
        .unwrap();
    let pending = Entry {
        batch_id: "crashed".into(),
        state: State::Pending,
        created_at: Utc::now(),
        commits: vec!["k/commit".into()],
        files: vec![
            orphan.into(),
            "lake/graph_changes/year=2026/month=11/day=23/part-crashed.parquet".into(),
        ],
        replaces: Vec::new(),
    };
    lake.objects
        .put(
            &Path::from("lake/_ledger/crashed.json"),
            PutPayload::from(serde_json::to_vec(&pending).unwrap()),
        )
        .await
        .unwrap();

    let sink = lake.sink().await;
    assert!(lake.files(orphan).await.is_empty(), "orphan removed");
    assert!(lake.files("lake/_ledger/crashed.json").await.is_empty());
    sink.handle(&event).await.unwrap();
    assert_eq!(lake.count("observations").await, 1);

    // A ledger entry that does not parse stops the sink with its name, rather than guessing.
    lake.objects
        .put(
            &Path::from("lake/_ledger/bad.json"),
            PutPayload::from_static(b"{"),
        )
        .await
        .unwrap();
    let err = LakeSink::open(
        lake.graph.clone(),
        lake.objects.clone(),
        Pseudonymizer::new([1; 32]),
        LakeConfig::default(),
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("lake/_ledger/bad.json"), "{err}");
}

#[tokio::test]
async fn a_change_of_an_erased_fact_keeps_its_log_row_only() {
    let lake = Lake::new();
    let sink = lake.sink().await;
    let patient = PatientId::parse("pat-erased").unwrap();
    let event = commit(&lake, &patient, &[glucose(&patient, 88.0)]).await;
    lake.graph
        .update(&p360_graph::facts::erase(&patient))
        .await
        .unwrap();
    sink.handle(&event).await.unwrap();
    let log = lake.rows("graph_changes").await;
    assert_eq!(log[0].num_rows(), 1);
    assert!(column::<StringArray>(&log[0], "status").is_null(0));
    assert_eq!(lake.count("observations").await, 0);
}

fn put_object(body: &[u8], key: &str) -> ObjectRef {
    use sha2::Digest;
    ObjectRef {
        key: key.into(),
        sha256: hex::encode(sha2::Sha256::digest(body)),
        size: body.len() as u64,
        media_type: "application/json".into(),
    }
}

fn consent(patient: &PatientId, population: bool, at: chrono::DateTime<Utc>) -> Envelope {
    Envelope::new(
        EventId::random(),
        "/p360/test",
        Event::AnalyticsConsentChanged(AnalyticsConsentChanged {
            patient_id: patient.clone(),
            population_analytics: population,
            personalized_tips: false,
            changed_at: at,
            change_id: EventId::random().to_string(),
        }),
    )
}

#[tokio::test]
async fn enrolments_care_gaps_and_consent_become_rows_and_a_withdrawal_purges_the_members_rows() {
    let lake = Lake::new();
    let ann = PatientId::parse("pat-ann").unwrap();
    let bob = PatientId::parse("pat-bob").unwrap();
    let profiles = [&ann, &bob]
        .iter()
        .map(|p| {
            serde_json::to_string(&MemberProfile {
                patient_id: (*p).clone(),
                birth_date: NaiveDate::from_ymd_opt(1960, 2, 29),
                sex: Some("female".into()),
                plan_id: Some("HMO-1".into()),
                region: Some("OH".into()),
                coverage_start: NaiveDate::from_ymd_opt(2020, 1, 1),
                coverage_end: None,
            })
            .unwrap()
        })
        .collect::<Vec<_>>()
        .join("\n");
    let profiles_ref = put_object(profiles.as_bytes(), "feeds/b1/_members.ndjson");
    lake.objects
        .put(
            &Path::from("feeds/b1/_members.ndjson"),
            PutPayload::from(profiles.into_bytes()),
        )
        .await
        .unwrap();
    let gaps = serde_json::json!([{
        "measure_id": "cms122", "version": "v13", "period_start": "2026-01-01",
        "period_end": "2026-12-31", "status": "gap", "missing": ["an HbA1c result in 2026"],
        "evidence": [{"fact_id": "f1", "date": "2026-03-01", "value": 9.4}]
    }])
    .to_string();
    let gaps_ref = put_object(gaps.as_bytes(), "insights/pat-ann/c1.json");
    lake.objects
        .put(
            &Path::from("insights/pat-ann/c1.json"),
            PutPayload::from(gaps.into_bytes()),
        )
        .await
        .unwrap();

    let sink = lake.sink().await;
    let t0 = Utc::now();
    let events = vec![
        Envelope::new(
            EventId::random(),
            "/p360/test",
            Event::MembersEnrolled(MembersEnrolled {
                batch_id: BatchId::parse("b1").unwrap(),
                profiles: profiles_ref,
                count: 2,
                recorded_at: t0,
            }),
        ),
        Envelope::new(
            EventId::random(),
            "/p360/test",
            Event::CareGapsComputed(CareGapsComputed {
                patient_id: ann.clone(),
                computation_id: "c1".into(),
                computed_at: t0,
                results: gaps_ref,
            }),
        ),
        consent(&ann, true, t0),
        consent(&bob, true, t0),
        commit(&lake, &ann, &[glucose(&ann, 120.0)]).await,
        commit(&lake, &bob, &[glucose(&bob, 130.0), diabetes(&bob)]).await,
    ];
    for e in &events {
        sink.handle(e).await.unwrap();
    }
    assert_eq!(lake.count("members").await, 2);
    assert_eq!(lake.count("care_gaps").await, 1);
    assert_eq!(lake.count("consent_changes").await, 2);
    assert_eq!(lake.count("observations").await, 2);
    let gap = &lake.rows("care_gaps").await[0];
    assert_eq!(column::<StringArray>(gap, "status").value(0), "gap");
    assert_eq!(column::<Float64Array>(gap, "evidence_value").value(0), 9.4);
    let members = &lake.rows("members").await[0];
    assert_eq!(column::<StringArray>(members, "region").value(0), "OH");
    // A redelivered enrolment adds nothing.
    sink.handle(&events[0]).await.unwrap();
    assert_eq!(lake.count("members").await, 2);

    // Bob withdraws: the flusher compacts at once, and none of Bob's rows stay but his
    // consent rows (what keeps him out of views).
    sink.handle(&consent(&bob, false, t0 + chrono::Duration::seconds(5)))
        .await
        .unwrap();
    let bob_key = Pseudonymizer::new([1; 32]).patient_key(bob.as_str());
    for table in ["members", "observations", "conditions", "graph_changes"] {
        let keys: Vec<String> = lake
            .rows(table)
            .await
            .iter()
            .flat_map(|b| {
                let k = column::<StringArray>(b, "patient_key");
                (0..k.len())
                    .map(|i| k.value(i).to_owned())
                    .collect::<Vec<_>>()
            })
            .collect();
        assert!(
            !keys.contains(&bob_key),
            "{table} keeps a withdrawn member's rows"
        );
        assert!(
            !keys.is_empty() || table == "conditions",
            "{table} lost Ann's rows"
        );
    }
    assert_eq!(lake.count("consent_changes").await, 3);
    // One file per partition after compaction, and the sink still writes afterwards.
    let members = lake.files("lake/members").await;
    assert_eq!(
        members.iter().filter(|k| k.ends_with(".parquet")).count(),
        1
    );
    sink.handle(&commit(&lake, &ann, &[diabetes(&ann)]).await)
        .await
        .unwrap();
    assert_eq!(lake.count("conditions").await, 1);
}

#[tokio::test]
async fn compaction_keeps_one_row_per_change_and_merges_small_files() {
    let lake = Lake::new();
    let ann = PatientId::parse("pat-ann").unwrap();
    let sink = lake.sink().await;
    for v in [100.0, 110.0, 120.0] {
        sink.handle(&commit(&lake, &ann, &[glucose(&ann, v)]).await)
            .await
            .unwrap();
    }
    let before = lake.files("lake/observations").await.len();
    assert!(before >= 2, "expected several small files, got {before}");
    // A repeated delivery (as Firehose may make): the same file's rows once more.
    let first = lake.files("lake/observations").await[0].clone();
    let bytes = lake
        .objects
        .get(&Path::from(first.as_str()))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let copy = first.replace(".parquet", "-copy.parquet");
    lake.objects
        .put(&Path::from(copy.as_str()), PutPayload::from(bytes))
        .await
        .unwrap();
    // First the copy is in no ledger entry (a flush in progress): compaction leaves it alone.
    let done = p360_sink::lake::compact::compact(&lake.objects, "lake", 1)
        .await
        .unwrap();
    assert!(done.files_written >= 1);
    assert!(done.files_read >= before);
    let files = lake.files("lake/observations").await;
    assert_eq!(files.len(), 2, "{files:?}");
    assert!(files.contains(&copy));
    assert_eq!(lake.count("observations").await, 3 + 1);
    // Once committed, its repeated rows are dropped: one row per change_id.
    let entry = Entry {
        batch_id: "redelivered".into(),
        state: State::Committed,
        created_at: Utc::now(),
        commits: Vec::new(),
        files: vec![copy.clone()],
        replaces: Vec::new(),
    };
    lake.objects
        .put(
            &Path::from("lake/_ledger/redelivered.json"),
            PutPayload::from(serde_json::to_vec(&entry).unwrap()),
        )
        .await
        .unwrap();
    let done = p360_sink::lake::compact::compact(&lake.objects, "lake", 1)
        .await
        .unwrap();
    assert_eq!(done.duplicate_rows, 1);
    assert_eq!(lake.files("lake/observations").await.len(), 1);
    assert_eq!(lake.count("observations").await, 3);
}
