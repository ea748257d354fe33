//! `p360 bench enrich`: a payor batch (by default ≥ 1,000,000 generated feed lines: claims,
//! pharmacy, FHIR bulk NDJSON, HL7) end to end, in process, through the stages `p360 serve`
//! runs: submitted to the object store as `feeds/<batch>/` with its manifest, then
//!
//! 1. the `enrich` stage (files fetched and checked, parsed twice, members matched, facts
//!    resolved, one facts object and one FactsResolved per member);
//! 2. the `graph-writer` stage on every FactsResolved (at its configured concurrency, so its
//!    group commit forms batches as under the runner) into Oxigraph on disk;
//! 3. the `lake-sink` stage on every GraphChanged into Parquet in the local object store.
//!
//! Phases run one after the other, so each has its own figures; end to end is their sum (the
//! queue between stages is left out: `p360 bench queue` measures it). References of the same
//! run: the same files only parsed (serde_json on every NDJSON line, the csv crate on every
//! row, HL7 split into segments), and the very quads the graph writer wrote (dumped as
//! N-Quads) loaded by Oxigraph's bulk loader into a fresh on-disk store.
//!
//! Peak memory: the process's high-water mark (`VmHWM`), reset before each phase through
//! `/proc/self/clear_refs`, so each phase shows its own peak. Enrichment holds distinct people
//! and facts, never lines; the graph and lake phases hold one group commit or lake batch.

#![allow(clippy::print_stdout)] // a benchmark prints its table

use crate::{Config, System};
use anyhow::Context;
use futures::StreamExt;
use oxigraph::io::RdfFormat;
use p360_enrich::feeds::FeedKind;
use p360_enrich::run;
use p360_events::{BatchId, Envelope, Event};
use p360_graph::GraphStore;
use p360_graph::store::{GraphError, Solution};
use p360_runtime::Stage;
use std::future::Future;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The process's peak resident memory since the last [`reset_peak`], in MiB (Linux `VmHWM`).
pub fn peak_mib() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// Resets the high-water mark to the current resident size (Linux ≥ 4.0), so that the next
/// [`peak_mib`] is the peak of what ran in between. Without it the figures are cumulative.
fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

fn parse_only(inputs: &[run::Input]) -> anyhow::Result<(u64, u64)> {
    let (mut records, mut bytes) = (0u64, 0u64);
    for i in inputs {
        bytes += std::fs::metadata(&i.path)?.len();
        let f = std::fs::File::open(&i.path)?;
        match i.kind {
            FeedKind::FhirNdjson => {
                for line in BufReader::new(f).lines() {
                    let line = line?;
                    if !line.trim().is_empty() {
                        let v: serde_json::Value = serde_json::from_str(&line)?;
                        records += u64::from(v.is_object());
                    }
                }
            }
            FeedKind::Claims | FeedKind::Pharmacy | FeedKind::Roster => {
                let mut r = csv::ReaderBuilder::new().flexible(true).from_reader(f);
                let mut rec = csv::ByteRecord::new();
                while r.read_byte_record(&mut rec)? {
                    records += 1;
                }
            }
            FeedKind::Hl7 => {
                for line in BufReader::new(f).split(b'\n') {
                    let line = line?;
                    let segs = line
                        .split(|b| *b == b'\r')
                        .filter(|s| !s.is_empty())
                        .count();
                    records += u64::from(segs > 0);
                }
            }
        }
    }
    Ok((records, bytes))
}

/// Newlines in a file, read in blocks (never the whole file in memory).
fn count_lines(path: &Path) -> std::io::Result<u64> {
    let mut f = std::fs::File::open(path)?;
    let mut buf = vec![0u8; 1 << 16];
    let mut n = 0u64;
    loop {
        let k = f.read(&mut buf)?;
        if k == 0 {
            return Ok(n);
        }
        n += buf[..k].iter().filter(|c| **c == b'\n').count() as u64;
    }
}

/// The graph as the stages see it, with the time spent in each call counted: where a phase's
/// time goes (state reads, writes, or the stage's own work between them).
#[derive(Debug)]
struct Timed {
    inner: Arc<dyn GraphStore>,
    reads: Counter,
    writes: Counter,
}

#[derive(Debug, Default)]
struct Counter {
    calls: AtomicU64,
    micros: AtomicU64,
    bytes: AtomicU64,
}

impl Counter {
    fn add(&self, started: Instant, bytes: usize) {
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.micros.fetch_add(
            u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
        self.bytes.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    /// (calls, seconds, MiB) so far.
    fn read(&self) -> (u64, f64, f64) {
        (
            self.calls.load(Ordering::Relaxed),
            self.micros.load(Ordering::Relaxed) as f64 / 1e6,
            self.bytes.load(Ordering::Relaxed) as f64 / 1048576.0,
        )
    }
}

/// A boxed future as `#[async_trait]` declares the port's methods (written out: this crate
/// does not depend on the macro).
type Call<'a, T> = Pin<Box<dyn Future<Output = Result<T, GraphError>> + Send + 'a>>;

impl GraphStore for Timed {
    fn update<'a, 'b, 'c>(&'a self, update: &'b str) -> Call<'c, ()>
    where
        'a: 'c,
        'b: 'c,
        Self: 'c,
    {
        Box::pin(async move {
            let t = Instant::now();
            let r = self.inner.update(update).await;
            self.writes.add(t, update.len());
            r
        })
    }

    fn select<'a, 'b, 'c>(&'a self, query: &'b str) -> Call<'c, Vec<Solution>>
    where
        'a: 'c,
        'b: 'c,
        Self: 'c,
    {
        Box::pin(async move {
            let t = Instant::now();
            let r = self.inner.select(query).await;
            self.reads.add(t, query.len());
            r
        })
    }

    fn ask<'a, 'b, 'c>(&'a self, query: &'b str) -> Call<'c, bool>
    where
        'a: 'c,
        'b: 'c,
        Self: 'c,
    {
        Box::pin(async move {
            let t = Instant::now();
            let r = self.inner.ask(query).await;
            self.reads.add(t, query.len());
            r
        })
    }

    fn construct<'a, 'b, 'c>(&'a self, query: &'b str) -> Call<'c, String>
    where
        'a: 'c,
        'b: 'c,
        Self: 'c,
    {
        Box::pin(async move {
            let t = Instant::now();
            let r = self.inner.construct(query).await;
            self.reads.add(t, query.len());
            r
        })
    }

    fn write<'a, 'b, 'd, 'c>(&'a self, delete: Option<&'b str>, quads: &'d str) -> Call<'c, ()>
    where
        'a: 'c,
        'b: 'c,
        'd: 'c,
        Self: 'c,
    {
        Box::pin(async move {
            let t = Instant::now();
            let r = self.inner.write(delete, quads).await;
            self.writes.add(t, quads.len() + delete.map_or(0, str::len));
            r
        })
    }
}

/// What a phase spent in graph calls, from two readings of the counters. The committer and
/// the flusher are single tasks, so these calls are on the phase's critical path.
fn graph_share(g: &Timed, before: [(u64, f64, f64); 2], seconds: f64) -> String {
    let (r, w) = (g.reads.read(), g.writes.read());
    let (rc, rs) = (r.0 - before[0].0, r.1 - before[0].1);
    let (wc, ws, wm) = (w.0 - before[1].0, w.1 - before[1].1, w.2 - before[1].2);
    format!(
        "{rs:.2} s in {rc} state reads, {ws:.2} s in {wc} writes ({wm:.0} MiB of quads), {:.2} s in the stage itself",
        (seconds - rs - ws).max(0.0)
    )
}

/// One phase's figures.
struct Phase {
    name: String,
    seconds: f64,
    records: Option<u64>,
    facts: Option<u64>,
    peak: Option<f64>,
}

impl Phase {
    fn row(&self) -> String {
        let rate = |n: Option<u64>| {
            n.map_or_else(
                || "-".to_string(),
                |n| format!("{:.0}", n as f64 / self.seconds.max(1e-9)),
            )
        };
        format!(
            "{:<52} {:>9.2} {:>11} {:>10} {:>9}",
            self.name,
            self.seconds,
            rate(self.records),
            rate(self.facts),
            self.peak.map_or_else(|| "-".into(), |p| format!("{p:.0}")),
        )
    }
}

/// Runs `f` as a phase: its seconds and its own peak memory.
async fn phase<T>(
    fut: impl std::future::Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<(T, f64, Option<f64>)> {
    reset_peak();
    let t = Instant::now();
    let out = fut.await?;
    Ok((out, t.elapsed().as_secs_f64(), peak_mib()))
}

/// Events between two phases, one JSON line each in a file: the stages hand over through a
/// queue on disk, so the harness does not hold a batch's events in memory either.
struct Spool {
    path: std::path::PathBuf,
    out: std::io::BufWriter<std::fs::File>,
    count: u64,
}

impl Spool {
    fn create(path: std::path::PathBuf) -> anyhow::Result<Self> {
        let out = std::io::BufWriter::new(std::fs::File::create(&path)?);
        Ok(Self {
            path,
            out,
            count: 0,
        })
    }

    fn push(&mut self, e: &Envelope) -> anyhow::Result<()> {
        serde_json::to_writer(&mut self.out, e)?;
        self.out.write_all(b"\n")?;
        self.count += 1;
        Ok(())
    }

    /// The events written, read back lazily.
    fn events(mut self) -> anyhow::Result<(u64, impl Iterator<Item = anyhow::Result<Envelope>>)> {
        self.out.flush()?;
        let lines = BufReader::new(std::fs::File::open(&self.path)?).lines();
        Ok((
            self.count,
            lines.map(|l| anyhow::Ok(serde_json::from_str::<Envelope>(&l?)?)),
        ))
    }
}

/// Handles `events` with `stage`, `concurrency` at a time (as the runner would), and hands
/// the outputs, wrapped as the runner wraps them, to `sink`.
async fn drive(
    stage: Arc<dyn Stage>,
    events: impl Iterator<Item = anyhow::Result<Envelope>>,
    concurrency: usize,
    mut sink: impl FnMut(&Envelope) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let name = stage.name();
    let mut outs = futures::stream::iter(events)
        .map(|e| {
            let stage = stage.clone();
            async move {
                let e = e?;
                let out = stage
                    .handle(&e)
                    .await
                    .with_context(|| format!("{name} on event {}", e.id))?;
                anyhow::Ok(
                    out.into_iter()
                        .enumerate()
                        .map(|(i, ev)| e.child(name, u32::try_from(i).unwrap_or(u32::MAX), ev))
                        .collect::<Vec<_>>(),
                )
            }
        })
        .buffer_unordered(concurrency.max(1));
    while let Some(r) = outs.next().await {
        for e in r? {
            sink(&e)?;
        }
    }
    Ok(())
}

pub async fn run(set: &Path, jobs: usize) -> anyhow::Result<()> {
    let batch_dir = set.join("batch");
    let members = batch_dir.join("members.csv");
    let inputs = run::inputs(&members, std::slice::from_ref(&batch_dir))?;
    let resettable = reset_peak();
    let mut lines = 0u64;
    for i in &inputs {
        lines += count_lines(&i.path)?;
    }

    // The configuration in effect (p360.toml, P360__… variables), in a scratch data directory
    // next to the current one: the graph and the lake go to the disk the server would use.
    let scratch = tempfile::Builder::new()
        .prefix("p360-bench-")
        .tempdir_in(".")?;
    let mut config = Config::load(None)?;
    config.data_dir = scratch.path().join("data");
    config.drop_folder.enabled = false;
    let graph_dir = config.data_dir.join("graph");
    let system = System::build(config).await?;
    let objects = system.ingest.store();
    // The stages as `System::build` makes them, over the same graph seen through a counter.
    let graph = Arc::new(Timed {
        inner: system.graph.clone(),
        reads: Counter::default(),
        writes: Counter::default(),
    });
    let writer: Arc<dyn Stage> =
        Arc::new(p360_sink::GraphWriter::new(graph.clone(), objects.clone()));
    let lake_config = p360_sink::LakeConfig {
        prefix: system.config.lake.prefix.clone(),
        flush_interval: Duration::from_millis(system.config.lake.flush_interval_ms.max(1)),
        max_rows: system.config.lake.max_rows.max(1),
        // Measured: the copy itself, not a compaction that happens to fall in the run.
        compact_interval: None,
    };
    let flush_interval = lake_config.flush_interval;
    let lake: Arc<dyn Stage> = Arc::new(
        p360_sink::LakeSink::new(
            graph.clone(),
            objects.clone(),
            p360_sink::lake::pseudonym::Pseudonymizer::new(rand::random()),
            lake_config,
        )
        .with_consent(system.state.consent.store().clone()),
    );
    let writer_concurrency = system.config.stages.graph_writer.concurrency;
    let lake_concurrency = system.config.stages.lake_sink.concurrency;
    let enrich: Arc<dyn Stage> =
        Arc::new(p360_enrich::stage::EnrichStage::new(objects.clone(), jobs));

    // Reference first, on files just written (in the page cache, as for the stages).
    let ((records, bytes), parse_s, parse_peak) = phase(async { parse_only(&inputs) }).await?;

    // Before the clock: the batch submitted as `p360 feeds submit` does.
    let batch_id = "bench-enrich";
    let submitted = Instant::now();
    p360_enrich::intake::submit(&**objects, &batch_dir, batch_id, "bench").await?;
    let submit_s = submitted.elapsed().as_secs_f64();
    let manifest_key = format!(
        "{}/{batch_id}/{}",
        p360_enrich::intake::PREFIX,
        p360_enrich::intake::MANIFEST
    );
    let manifest_bytes = object_store::ObjectStoreExt::get(
        &**objects,
        &object_store::path::Path::from(manifest_key.as_str()),
    )
    .await?
    .bytes()
    .await?;
    let (id, announced) = p360_enrich::intake::announcement(
        &BatchId::parse(batch_id)?,
        &manifest_key,
        &manifest_bytes,
    );
    let announcement = Envelope::new(id, "/p360/feeds", Event::FeedBatchReceived(announced));

    let mut resolved = Spool::create(scratch.path().join("facts-resolved.ndjson"))?;
    let mut facts = 0u64;
    let ((), enrich_s, enrich_peak) =
        phase(drive(enrich, std::iter::once(Ok(announcement)), 1, |e| {
            if let Event::FactsResolved(r) = &e.event {
                facts += u64::from(r.fact_count);
            }
            resolved.push(e)
        }))
        .await?;
    let report: serde_json::Value = serde_json::from_slice(
        &object_store::ObjectStoreExt::get(
            &**objects,
            &object_store::path::Path::from(format!(
                "{}/{batch_id}/{}",
                p360_enrich::intake::PREFIX,
                p360_enrich::intake::REPORT
            )),
        )
        .await?
        .bytes()
        .await?,
    )?;
    let summary = &report["summary"];

    let (members_with_facts, resolved) = resolved.events()?;
    let mut changed = Spool::create(scratch.path().join("graph-changed.ndjson"))?;
    let mut changes = 0usize;
    let at_graph = [graph.reads.read(), graph.writes.read()];
    let ((), graph_s, graph_peak) = phase(drive(writer, resolved, writer_concurrency, |e| {
        if let Event::GraphChanged(c) = &e.event {
            changes += c.changes.len();
        }
        changed.push(e)
    }))
    .await?;

    let graph_time = graph_share(&graph, at_graph, graph_s);

    let (_, changed) = changed.events()?;
    let at_lake = [graph.reads.read(), graph.writes.read()];
    let ((), lake_s, lake_peak) = phase(drive(lake, changed, lake_concurrency, |_| Ok(()))).await?;
    let lake_time = graph_share(&graph, at_lake, lake_s);

    let in_graph = system
        .graph
        .select(&format!(
            "SELECT (COUNT(*) AS ?n) WHERE {{ GRAPH ?g {{ ?f <{}> ?s }} }}",
            p360_graph::vocab::p("status")
        ))
        .await?
        .first()
        .and_then(|r| r.get("n"))
        .and_then(|n| n.value().parse::<u64>().ok())
        .unwrap_or(0);
    let lake_files = count_files(&scratch.path().join("data/objects/lake"))?;
    drop((graph, system));

    // The reference: the same quads into a fresh store with Oxigraph's bulk loader. The dump
    // goes to a file, so that neither side holds the whole graph in memory.
    let dump_path = scratch.path().join("graph.nq");
    let quads = {
        let mut tries = 0;
        let store = loop {
            match oxigraph::store::Store::open(&graph_dir) {
                Ok(s) => break s,
                Err(e) if tries > 50 => return Err(e).context("reopening the bench graph"),
                Err(_) => {
                    // The stages' background tasks let go of the store a moment after they stop.
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        };
        let mut w = std::io::BufWriter::new(std::fs::File::create(&dump_path)?);
        store.dump_to_writer(RdfFormat::NQuads, &mut w)?;
        w.flush()?;
        drop(w);
        count_lines(&dump_path)?
    };
    let fresh_dir = scratch.path().join("reference-graph");
    let (_, bulk_s, bulk_peak) = phase(async {
        let fresh = oxigraph::store::Store::open(&fresh_dir)?;
        let mut loader = fresh.bulk_loader();
        loader.load_from_reader(
            RdfFormat::NQuads,
            BufReader::new(std::fs::File::open(&dump_path)?),
        )?;
        loader.commit()?;
        anyhow::Ok(())
    })
    .await?;

    println!(
        "set {}: {} files, {lines} lines, {:.0} MiB; {records} records ({} person-records), {facts} facts for {members_with_facts} members ({} multi-source), {quads} quads",
        set.display(),
        inputs.len(),
        bytes as f64 / 1048576.0,
        summary["records"],
        summary["multi_source_facts"],
    );
    println!(
        "checks: {in_graph} facts in the graph, {changes} changes in GraphChanged, {lake_files} lake files; batch submitted in {submit_s:.1} s (before the clock)"
    );
    println!(
        "{:<52} {:>9} {:>11} {:>10} {:>9}",
        "", "seconds", "records/s", "facts/s", "peak MiB"
    );
    let e2e_s = enrich_s + graph_s + lake_s;
    let rows = [
        Phase {
            name: "reference: parse only (serde_json, csv; 1 thread)".into(),
            seconds: parse_s,
            records: Some(records),
            facts: None,
            peak: parse_peak,
        },
        Phase {
            name: format!("enrich stage (fetch, parse x2, match, resolve; {jobs} jobs)"),
            seconds: enrich_s,
            records: Some(records),
            facts: Some(facts),
            peak: enrich_peak,
        },
        Phase {
            name: format!("graph writer → Oxigraph on disk ({writer_concurrency} at once)"),
            seconds: graph_s,
            records: Some(records),
            facts: Some(facts),
            peak: graph_peak,
        },
        Phase {
            name: format!("lake sink → Parquet ({lake_concurrency} at once)"),
            seconds: lake_s,
            records: Some(records),
            facts: Some(facts),
            peak: lake_peak,
        },
        Phase {
            name: "end to end (enrich + graph + lake)".into(),
            seconds: e2e_s,
            records: Some(records),
            facts: Some(facts),
            peak: [enrich_peak, graph_peak, lake_peak]
                .into_iter()
                .flatten()
                .reduce(f64::max),
        },
        Phase {
            name: "reference: Oxigraph bulk loader, same quads".into(),
            seconds: bulk_s,
            records: None,
            facts: Some(facts),
            peak: bulk_peak,
        },
    ];
    for r in &rows {
        println!("{}", r.row());
    }
    println!(
        "ratio (facts/s, ours / bulk loader): graph write {:.2}x, end to end {:.2}x; enrich / parse only (records/s) {:.2}x",
        bulk_s / graph_s,
        bulk_s / e2e_s,
        parse_s / enrich_s,
    );
    println!("graph writer: {graph_time}");
    println!(
        "lake sink: {lake_time} (a batch waits up to {:.0} s for more rows)",
        flush_interval.as_secs_f64()
    );
    if !resettable {
        println!("(peak memory is cumulative: /proc/self/clear_refs is not writable here)");
    }
    Ok(())
}

/// Parquet files under `dir`.
fn count_files(dir: &Path) -> std::io::Result<usize> {
    if !dir.exists() {
        return Ok(0);
    }
    let mut n = 0;
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        if e.file_type()?.is_dir() {
            n += count_files(&e.path())?;
        } else if e.path().extension().is_some_and(|x| x == "parquet") {
            n += 1;
        }
    }
    Ok(n)
}
