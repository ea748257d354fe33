//! Generates a synthetic population into a lake and times the dashboards on it:
//!
//!     cargo run --release -p p360-dashboards --example population -- 100000 /tmp/lake [seed]
//!
//! An existing directory is not written to: the dashboards are timed on the lake it holds.

// A command-line tool: its report goes to stdout.
#![allow(clippy::print_stdout)]

use chrono::NaiveDate;
use p360_dashboards::LakeSql;
use p360_dashboards::population::{Config, Population};
use p360_insights::dashboards::{self, Filters};
use std::path::PathBuf;
use std::time::Instant;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let members: usize = args.next().as_deref().unwrap_or("100000").parse()?;
    let lake = PathBuf::from(
        args.next()
            .unwrap_or_else(|| "target/synthetic-lake".into()),
    );
    let seed: u64 = args.next().as_deref().unwrap_or("1").parse()?;
    let as_of = NaiveDate::from_ymd_opt(2026, 6, 30).ok_or("date")?;
    if lake.exists() {
        println!("{}: exists, timing the dashboards on it", lake.display());
    } else {
        let started = Instant::now();
        let pop = Population::generate(&Config {
            members,
            seed,
            as_of,
        });
        let generated = started.elapsed();
        let stats = pop.write_lake(&lake)?;
        println!(
            "{members} members: generated in {:.1} s, lake written in {:.1} s ({} rows, {} files)",
            generated.as_secs_f64(),
            (started.elapsed() - generated).as_secs_f64(),
            stats.rows,
            stats.files
        );
    }
    let engine = LakeSql::open(&lake, as_of)?;
    for d in dashboards::all() {
        let t = Instant::now();
        let p = engine.publish(d.id, &Filters::default()).await?;
        println!(
            "{:<12} {:>6} ms  {} rows, {} cells suppressed",
            d.id,
            t.elapsed().as_millis(),
            p.rows.len(),
            p.suppressed
        );
    }
    Ok(())
}
