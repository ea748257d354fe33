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
