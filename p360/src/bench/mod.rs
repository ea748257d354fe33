//! `p360 bench …`: each benchmark prints its figures beside a reference measured in the same
//! run on the same machine, and the ratio; on a small shared machine only ratios compare.
//!
//! - [`queue`]: the embedded queue vs a plain SQLite insert+delete loop;
//! - [`ingest`]: manual observations through graph writer and lake sink vs Oxigraph's bulk
//!   loader on the same triples;
//! - [`read`]: `Patient/$everything` over HTTP vs a raw SPARQL CONSTRUCT of the same graph;
//! - [`extract`]: our OCR (warm engines) vs the `tesseract` CLI on the same pages;
//! - [`matching`]: the member matcher vs Splink on the same person-records;
//! - [`insights`]: care gaps for a generated population, and the dashboards beside DuckDB on
//!   the same Parquet files;
//! - [`enrich`]: a feed batch through the enrich stage, graph writer and lake sink vs parsing
//!   alone and Oxigraph's bulk loader on the same quads.

pub mod enrich;
pub mod extract;
pub mod ingest;
pub mod insights;
pub mod matching;
pub mod queue;
pub mod read;

use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Measured {
    pub seconds: f64,
    pub per_second: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

/// Throughput of `n` items in `elapsed`, and percentiles of per-item latencies (ms).
pub fn measured(n: usize, elapsed: Duration, mut latencies: Vec<f64>) -> Measured {
    latencies.sort_by(f64::total_cmp);
    Measured {
        seconds: elapsed.as_secs_f64(),
        per_second: n as f64 / elapsed.as_secs_f64(),
        p50_ms: percentile(&latencies, 0.50),
        p99_ms: percentile(&latencies, 0.99),
    }
}
