//! `p360 bench ingest`: N manual observations for M patients through the pipeline on the
//! embedded defaults (entry object stored and ManualEntrySubmitted published, as the API does;
//! embedded queue with fsync; graph writer into Oxigraph on disk; lake sink into Parquet).
//!
//! The entry objects (one file each) are stored first and timed apart; the clock then runs
//! from the first event published. Measured: facts/s until every fact is in the graph, event-to-visible latency per event
//! (publish → graph commit, from the commit record the graph writer keeps), and the time until
//! the lake holds every row. Reference, same run: Oxigraph's bulk loader loading the very
//! triples the pipeline wrote (dumped from its graph) into a fresh on-disk store.

use super::{Measured, measured};
use crate::{Config, System};
use anyhow::Context;
use chrono::{DateTime, NaiveDate, Utc};
use object_store::{ObjectStoreExt, PutPayload};
use oxigraph::io::RdfFormat;
use p360_events::{Envelope, Event, EventId, ManualEntrySubmitted, ObjectRef, PatientId, UserId};
use p360_model::{
    CodeSystem, Coding, Fact, FactBody, Observation, ObservationKind, Provenance, SourceKind,
    Status, Value, When,
};
use std::collections::HashMap;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone)]
pub struct IngestBench {
    pub observations: usize,
    pub patients: usize,
    /// Events per publish call (the API publishes one per request; feeds publish batches).
    pub batch: usize,
}

#[derive(Debug)]
pub struct IngestReport {
    /// Publish → graph commit, per event.
    pub pipeline: Measured,
    /// Seconds until the lake held every change.
    pub lake_seconds: f64,
    pub triples: usize,
    /// Oxigraph's bulk loader on the same triples (`per_second` in facts/s).
    pub reference: Measured,
    /// Events per graph transaction, on average.
    pub events_per_commit: f64,
    /// Entry objects stored per second before the clock starts (phase 1).
    pub objects_per_second: f64,
}

const VITALS: [(&str, &str, f64); 5] = [
    ("29463-7", "kg", 80.0),
    ("8867-4", "/min", 70.0),
    ("8480-6", "mm[Hg]", 120.0),
    ("2339-0", "mg/dL", 100.0),
    ("4548-4", "%", 6.0),
];

fn observation(patient: &PatientId, user: &UserId, i: usize, at: DateTime<Utc>) -> Fact {
    let (code, unit, base) = VITALS[i % VITALS.len()];
    let day = NaiveDate::from_ymd_opt(2020, 1, 1).unwrap_or_default()
        + chrono::Days::new((i / VITALS.len()) as u64 % 2000);
    Fact::new(
        patient.clone(),
        FactBody::Observation(Observation {
            kind: ObservationKind::VitalSigns,
            code: vec![Coding::new(CodeSystem::Loinc, code, None)],
            value: Some(Value::Quantity {
                value: base + (i % 17) as f64,
                unit: unit.into(),
                comparator: None,
            }),
            effective: When::Date(day),
            reference_range: None,
            interpretation: None,
        }),
        Status::Confirmed,
        Provenance {
            author: Some(user.clone()),
            ..Provenance::new(SourceKind::ManualEntry, user.as_str(), at)
        },
    )
}

async fn depth(system: &System, queue: &str) -> anyhow::Result<u64> {
    let s = system.queue.stats(queue).await?;
    anyhow::ensure!(s.dead == 0, "{queue}: {} dead letters", s.dead);
    Ok(s.ready + s.in_flight + s.delayed)
}

pub async fn run(cfg: &IngestBench, dir: &std::path::Path) -> anyhow::Result<IngestReport> {
    anyhow::ensure!(
        cfg.observations > 0 && cfg.patients > 0,
        "observations and patients must be positive"
    );
    // The configuration in effect (p360.toml, P360__… variables), in a scratch data directory.
    let mut config = Config::load(None)?;
    config.data_dir = dir.join("data");
    config.drop_folder.enabled = false;
    let system = System::build(config).await?;
    let shutdown = CancellationToken::new();
    let stages = system.spawn_stages(&["graph-writer", "lake-sink"], &shutdown)?;

    let patients: Vec<(PatientId, UserId)> = (0..cfg.patients)
        .map(|p| {
            Ok((
                PatientId::parse(&format!("pat-bench-{p}"))?,
                UserId::parse(&format!("usr-bench-{p}"))?,
            ))
        })
        .collect::<Result<_, p360_events::EventError>>()?;
    // Phase 1, timed apart: the entry objects, one file per observation, as the API stores
    // them before publishing (file creation dominates it on a local disk).
    let store = system.ingest.store();
    let stored_at = Instant::now();
    let mut events = Vec::with_capacity(cfg.observations);
    for chunk in (0..cfg.observations)
        .collect::<Vec<_>>()
        .chunks(cfg.batch.max(1))
    {
        let puts = chunk.iter().map(|&k| {
            let (patient, user) = &patients[k % patients.len()];
            let fact = observation(patient, user, k / patients.len(), Utc::now());
            let id = EventId::random();
            let key = format!("entries/{patient}/{id}.json");
            let store = store.clone();
            async move {
                let bytes = serde_json::to_vec(&[&fact])?;
                let size = bytes.len() as u64;
                store
                    .put(
                        &object_store::path::Path::from(key.as_str()),
                        PutPayload::from(bytes),
                    )
                    .await?;
                anyhow::Ok(Envelope::new(
                    id,
                    "/p360/bench",
                    Event::ManualEntrySubmitted(ManualEntrySubmitted {
                        patient_id: patient.clone(),
                        entered_by: user.clone(),
                        entry: ObjectRef {
                            key,
                            sha256: String::new(),
                            size,
                            media_type: "application/json".into(),
                        },
                        effective_date: fact.body.day().unwrap_or_default(),
                    }),
                ))
            }
        });
        for e in futures::future::join_all(puts).await {
            events.push(e?);
        }
    }
    let objects_per_second = cfg.observations as f64 / stored_at.elapsed().as_secs_f64();

    // Phase 2: the events, published in batches while the stages run.
    let mut sent: HashMap<String, DateTime<Utc>> = HashMap::with_capacity(cfg.observations);
    let start = Instant::now();
    for batch in events.chunks(cfg.batch.max(1)) {
        let now = Utc::now();
        for e in batch {
            sent.insert(e.id.to_string(), now);
        }
        system.publisher.publish(batch).await?;
    }

    // Wait for the graph, then for the lake.
    let deadline = Instant::now() + Duration::from_secs(3600);
    while depth(&system, "graph-writer").await? > 0 {
        anyhow::ensure!(Instant::now() < deadline, "the graph writer did not finish");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let graph_elapsed = start.elapsed();
    while depth(&system, "lake-sink").await? > 0 {
        anyhow::ensure!(Instant::now() < deadline, "the lake sink did not finish");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let lake_seconds = start.elapsed().as_secs_f64();

    // Event-to-visible: each event's commit record holds its commit time.
    let rows = system
        .graph
        .select(&format!(
            "SELECT ?m ?c WHERE {{ GRAPH ?g {{ ?m <{}> ?c }} }}",
            p360_graph::vocab::p("changes")
        ))
        .await?;
    let mut latencies = Vec::with_capacity(rows.len());
    let mut commits: HashMap<DateTime<Utc>, usize> = HashMap::new();
    for row in rows {
        let (Some(m), Some(c)) = (row.get("m"), row.get("c")) else {
            continue;
        };
        let Some(id) = m.value().rsplit('/').next() else {
            continue;
        };
        let record: serde_json::Value = serde_json::from_str(c.value())?;
        let committed: DateTime<Utc> = serde_json::from_value(record["committed_at"].clone())?;
        *commits.entry(committed).or_default() += 1;
        if let Some(at) = sent.get(id) {
            latencies.push((committed - *at).num_microseconds().unwrap_or(0) as f64 / 1e3);
        }
    }
    anyhow::ensure!(
        latencies.len() == cfg.observations,
        "{} of {} events found in the graph",
        latencies.len(),
        cfg.observations
    );
    let pipeline = measured(cfg.observations, graph_elapsed, latencies);
    let events_per_commit = cfg.observations as f64 / commits.len().max(1) as f64;

    shutdown.cancel();
    for h in stages {
        let _ = h.await;
    }
    let graph_dir = system.config.data_dir.join("graph");
    drop(system);

    // The reference: the same triples into a fresh store with Oxigraph's bulk loader.
    let dump = {
        // The stages' background tasks let go of the store a moment after they stop.
        let mut tries = 0;
        let store = loop {
            match oxigraph::store::Store::open(&graph_dir) {
                Ok(s) => break s,
                Err(e) if tries > 50 => return Err(e).context("reopening the bench graph"),
                Err(_) => {
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        };
        store.dump_to_writer(RdfFormat::NQuads, Vec::new())?
    };
    let triples = dump.iter().filter(|b| **b == b'\n').count();
    let fresh = oxigraph::store::Store::open(dir.join("reference-graph"))?;
    let started = Instant::now();
    let mut loader = fresh.bulk_loader();
    loader.load_from_slice(RdfFormat::NQuads, &dump)?;
    loader.commit()?;
    let elapsed = started.elapsed();
    let reference = measured(cfg.observations, elapsed, vec![elapsed.as_secs_f64() * 1e3]);
    Ok(IngestReport {
        pipeline,
        lake_seconds,
        triples,
        reference,
        events_per_commit,
        objects_per_second,
    })
}
