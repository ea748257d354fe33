//! `p360 bench insights`: a generated population (default 100,000 members) written as lake
//! files, then
//! - care gaps for every member: records built from their facts and every measure evaluated,
//!   on all cores (members/s);
//! - every dashboard refreshed with p360's engine (DataFusion in process, then suppression),
//!   beside DuckDB running the same rendered SQL on the same Parquet files in the same run.
//!   The ratio is DuckDB's time over p360's: above 1, p360 is faster.

#![allow(clippy::print_stdout)] // a benchmark prints its figures

use anyhow::Context;
use p360_dashboards::LakeSql;
use p360_dashboards::population::{Config, Population};
use p360_insights::dashboards::{self, Filters, SqlEngine};
use p360_insights::engine::{Status, evaluate_all};
use std::path::Path;
use std::time::Instant;

pub struct InsightsBench {
    pub members: usize,
    pub seed: u64,
    /// Repetitions of each dashboard query (the best is kept, for both engines).
    pub rounds: usize,
    /// A Python with `duckdb`.
    pub python: std::path::PathBuf,
}

pub async fn run(cfg: &InsightsBench, dir: &Path) -> anyhow::Result<()> {
    let as_of = chrono::Utc::now().date_naive();
    println!(
        "population: {} members, seed {}, as of {as_of}",
        cfg.members, cfg.seed
    );
    let t = Instant::now();
    let population = Population::generate(&Config {
        members: cfg.members,
        seed: cfg.seed,
        as_of,
    });
    let generated = t.elapsed();
    let facts: usize = population.members.iter().map(|m| m.facts.len()).sum();
    let lake = dir.join("lake");
    let t = Instant::now();
    let stats = population.write_lake(&lake).context("writing the lake")?;
    println!(
        "  generated in {:.1} s ({facts} facts); lake written in {:.1} s: {} files, {} rows",
        generated.as_secs_f64(),
        t.elapsed().as_secs_f64(),
        stats.files,
        stats.rows
    );

    // Care gaps: what the insights stage does per patient after reading the graph (records from
    // facts, every measure), for everyone, one thread per core.
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let t = Instant::now();
    let chunk = population.members.len().div_ceil(threads).max(1);
    let counts: Vec<[usize; 5]> = std::thread::scope(|s| {
        let handles: Vec<_> = population
            .members
            .chunks(chunk)
            .map(|members| {
                s.spawn(move || {
                    let mut n = [0usize; 5];
                    for m in members {
                        for r in evaluate_all(&m.record(), as_of) {
                            n[match r.status {
                                Status::Met => 0,
                                Status::Gap => 1,
                                Status::Excluded => 2,
                                Status::InsufficientData => 3,
                                Status::NotApplicable => 4,
                            }] += 1;
                        }
                    }
                    n
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_default())
            .collect()
    });
    let gaps_s = t.elapsed().as_secs_f64();
    let mut n = [0usize; 5];
    for c in counts {
        for (a, b) in n.iter_mut().zip(c) {
            *a += b;
        }
    }
    println!(
        "care gaps: {} members × {} measures in {gaps_s:.2} s on {threads} threads = {:.0} members/s \
         (met {}, gap {}, excluded {}, insufficient_data {}, not_applicable {}); target ≥ 1,000 members/s",
        population.members.len(),
        p360_insights::measure::all().len(),
        population.members.len() as f64 / gaps_s,
        n[0],
        n[1],
        n[2],
        n[3],
        n[4]
    );

    // Dashboards: the same rendered SQL for both engines (one query per dashboard, segmented
    // by every filter attribute, which is what a refresh computes before suppression).
    let engine = LakeSql::open(&lake, as_of).map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut queries = Vec::new();
    for d in dashboards::all() {
        queries.push((d.id, dashboards::render_segmented(d.id, as_of)?));
    }
    let rounds = cfg.rounds.max(1);
    let mut p360_best = Vec::new();
    let mut p360_rows = Vec::new();
    for (id, sql) in &queries {
        let mut best = f64::MAX;
        let mut rows = 0;
        for _ in 0..rounds {
            let t = Instant::now();
            let r = engine
                .query(sql)
                .await
                .map_err(|e| anyhow::anyhow!("{id}: {e}"))?;
            best = best.min(t.elapsed().as_secs_f64());
            rows = r.rows.len();
        }
        p360_best.push(best);
        p360_rows.push(rows);
    }
    // The whole refresh as the API serves it: query, suppression, the unfiltered cut.
    let t = Instant::now();
    let mut suppressed = 0;
    for d in dashboards::all() {
        suppressed += engine.publish(d.id, &Filters::default()).await?.suppressed;
    }
    let publish_s = t.elapsed().as_secs_f64();
    let duck = duckdb_times(&cfg.python, &lake, &queries, rounds)?;

    println!("dashboards (best of {rounds}, seconds):");
    println!(
        "  {:<14} {:>10} {:>10} {:>8} {:>8}",
        "dashboard", "p360", "duckdb", "ratio", "rows"
    );
    let (mut sum_p, mut sum_d) = (0.0, 0.0);
    for (i, (id, _)) in queries.iter().enumerate() {
        let (d_s, d_rows) = duck.get(i).copied().unwrap_or((f64::NAN, 0));
        sum_p += p360_best[i];
        sum_d += d_s;
        println!(
            "  {:<14} {:>10.3} {:>10.3} {:>7.2}× {:>8}{}",
            id,
            p360_best[i],
            d_s,
            d_s / p360_best[i],
            p360_rows[i],
            if d_rows == p360_rows[i] {
                String::new()
            } else {
                format!("  (duckdb: {d_rows} rows)")
            }
        );
    }
    println!(
        "  {:<14} {:>10.3} {:>10.3} {:>7.2}×   (speed relative to DuckDB; target ≥ 0.5×)",
        "all",
        sum_p,
        sum_d,
        sum_d / sum_p
    );
    println!(
        "refresh as served (queries + suppression of every filter cut): {publish_s:.2} s, {suppressed} cells suppressed in the unfiltered views"
    );
    Ok(())
}

/// DuckDB's best time per query, and its row count, measured inside the Python process (its
/// start and the JSON are not counted).
fn duckdb_times(
    python: &Path,
    lake: &Path,
    queries: &[(&str, String)],
    rounds: usize,
) -> anyhow::Result<Vec<(f64, usize)>> {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../scripts/insights/duckdb_dashboards.py"
    );
    let job = serde_json::json!({
        "lake": lake,
        "schema": p360_dashboards::duckdb_schema().map_err(|e| anyhow::anyhow!(e))?,
        "rounds": rounds,
        "queries": queries.iter().map(|(id, sql)| serde_json::json!({"name": id, "sql": sql})).collect::<Vec<_>>(),
    });
    let mut child = std::process::Command::new(python)
        .arg(script)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {} (a Python with duckdb)", python.display()))?;
    if let Some(mut stdin) = child.stdin.take() {
        use std::io::Write;
        stdin.write_all(job.to_string().as_bytes())?;
    }
    let out = child.wait_with_output()?;
    anyhow::ensure!(
        out.status.success(),
        "the DuckDB script failed ({})",
        out.status
    );
    let results: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout)?;
    Ok(results
        .iter()
        .map(|r| {
            (
                r["seconds"].as_f64().unwrap_or(f64::NAN),
                r["rows"].as_array().map_or(0, Vec::len),
            )
        })
        .collect())
}
