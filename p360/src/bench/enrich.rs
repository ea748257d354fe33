//! `p360 bench enrich`: a payor batch (by default ≥ 1,000,000 generated feed lines: claims,
//! pharmacy, FHIR bulk NDJSON, HL7) through parsing, member matching and fact resolution,
//! beside the reference of the same run: the same files only parsed (serde_json on every
//! NDJSON line, the csv crate on every CSV row, HL7 split into segments). Peak memory (the
//! process's high-water mark) is printed after each phase: it grows with distinct people and
//! facts, not with lines, so two sizes show whether it is bounded.

#![allow(clippy::print_stdout)] // a benchmark prints its table

use anyhow::Context;
use p360_enrich::feeds::FeedKind;
use p360_enrich::run::{self, Options};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::time::Instant;

/// The process's peak resident memory so far, in MiB (Linux `VmHWM`).
pub fn peak_mib() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
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

pub fn run(set: &Path, jobs: usize) -> anyhow::Result<()> {
    let members = set.join("batch/members.csv");
    let inputs = run::inputs(&members, &[set.join("batch")])?;
    let lines: u64 = inputs
        .iter()
        .map(|i| std::fs::read(&i.path).map(|b| b.iter().filter(|c| **c == b'\n').count() as u64))
        .sum::<std::io::Result<u64>>()?;
    let before = peak_mib();
    let out = tempfile::tempdir()?;
    let opts = Options {
        jobs,
        recorded: chrono::Utc::now().to_rfc3339(),
    };
    let t0 = Instant::now();
    let r = run::run(&members, &inputs, out.path(), &opts, &|_| {}).context("enrichment")?;
    let ours = t0.elapsed().as_secs_f64();
    let peak = peak_mib();
    let t1 = Instant::now();
    let (parsed, bytes) = parse_only(&inputs)?;
    let reference = t1.elapsed().as_secs_f64();
    let s = &r.summary;
    println!(
        "set {}: {} files, {lines} lines, {:.0} MiB; {} person-records, {} facts ({} multi-source), {} links, {} review",
        set.display(),
        inputs.len(),
        bytes as f64 / 1048576.0,
        s.records,
        s.facts,
        s.multi_source_facts,
        s.linked,
        s.review
    );
    println!(
        "{:<44} {:>10} {:>14} {:>12}",
        "", "seconds", "lines/s", "facts/s"
    );
    println!(
        "{:<44} {:>10.2} {:>14.0} {:>12.0}",
        format!("p360 enrich (parse x2, match, resolve; {jobs} jobs)"),
        ours,
        lines as f64 / ours,
        s.facts as f64 / ours
    );
    println!(
        "{:<44} {:>10.2} {:>14.0} {:>12}",
        "reference: parse only (serde_json, csv, 1 thread)",
        reference,
        parsed as f64 / reference,
        "-"
    );
    println!("ratio (p360 / parse only): {:.2}x", reference / ours);
    if let (Some(b), Some(p)) = (before, peak) {
        println!("peak memory: {p:.0} MiB (before the run {b:.0} MiB)");
    }
    Ok(())
}
