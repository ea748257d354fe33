//! `p360 bench match`: p360's member matcher beside Splink (PyPI, DuckDB backend), run by the
//! benchmark in the same run on the same person-records, both scored against the set's truth
//! (`truth/links.json`): precision, recall, F1, false links and seconds.
//!
//! p360's time covers training (u sampling, EM) and deciding every record; Splink's covers
//! the same inside its process (settings, u sampling, two EM sessions, prediction), not the
//! interpreter's start or its imports. Splink gets the carried member id as one more exact
//! comparison, and is scored at each of four probability thresholds: its best F1 is reported.

#![allow(clippy::print_stdout)] // a benchmark prints its table

use anyhow::{Context, bail};
use p360_enrich::feeds::PersonRecord;
use p360_enrich::feeds::roster::{self, Member};
use p360_enrich::matching::Decision;
use p360_enrich::person::{Person, Sex};
use p360_enrich::run;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(Debug, Default, Clone, Copy)]
struct Score {
    tp: u64,
    false_links: u64,
    member_records: u64,
}

impl Score {
    fn precision(&self) -> f64 {
        let d = self.tp + self.false_links;
        if d == 0 {
            1.0
        } else {
            self.tp as f64 / d as f64
        }
    }
    fn recall(&self) -> f64 {
        if self.member_records == 0 {
            1.0
        } else {
            self.tp as f64 / self.member_records as f64
        }
    }
    fn f1(&self) -> f64 {
        let (p, r) = (self.precision(), self.recall());
        if p + r == 0.0 {
            0.0
        } else {
            2.0 * p * r / (p + r)
        }
    }
}

fn score(truth: &[Option<String>], predicted: &[Option<String>]) -> Score {
    let mut s = Score::default();
    for (t, p) in truth.iter().zip(predicted) {
        if t.is_some() {
            s.member_records += 1;
        }
        match (t, p) {
            (Some(t), Some(p)) if t == p => s.tp += 1,
            (_, Some(_)) => s.false_links += 1,
            _ => {}
        }
    }
    s
}

fn truth_of(set: &Path, records: &[(String, PersonRecord)]) -> anyhow::Result<Vec<Option<String>>> {
    let path = set.join("truth/links.json");
    let v: serde_json::Value = serde_json::from_slice(
        &std::fs::read(&path).with_context(|| format!("{} (the set's truth)", path.display()))?,
    )?;
    let mut m: HashMap<(String, String), Option<String>> = HashMap::new();
    for r in v["records"].as_array().into_iter().flatten() {
        let key = (
            r["source"].as_str().unwrap_or_default().to_string(),
            r["record"].as_str().unwrap_or_default().to_string(),
        );
        m.insert(key, r["member_id"].as_str().map(str::to_string));
    }
    Ok(records
        .iter()
        .map(|(s, r)| m.get(&(s.clone(), r.key.clone())).cloned().flatten())
        .collect())
}

fn csv_row(
    w: &mut csv::Writer<std::fs::File>,
    uid: &str,
    member_id: Option<&str>,
    p: &Person,
) -> anyhow::Result<()> {
    let o = |s: &Option<String>| s.clone().unwrap_or_default();
    w.write_record([
        uid.to_string(),
        member_id.unwrap_or_default().to_string(),
        o(&p.first),
        o(&p.middle),
        o(&p.last),
        o(&p.suffix),
        p.birth.map(|b| b.to_string()).unwrap_or_default(),
        match p.sex {
            Some(Sex::Male) => "M".into(),
            Some(Sex::Female) => "F".into(),
            None => String::new(),
        },
        o(&p.street),
        o(&p.zip),
        p.phone
            .as_deref()
            .map(|s| s.chars().filter(char::is_ascii_digit).collect())
            .unwrap_or_default(),
        o(&p.email),
    ])?;
    Ok(())
}

/// Splink's best member per record (`r<index>` → member id), per probability threshold.
type ByThreshold = HashMap<String, HashMap<String, String>>;

const HEADER: [&str; 12] = [
    "uid",
    "member_id",
    "first",
    "middle",
    "last",
    "suffix",
    "dob",
    "sex",
    "street",
    "zip",
    "phone",
    "email",
];

fn splink(
    python: &Path,
    dir: &Path,
    members: &[Member],
    records: &[(String, PersonRecord)],
) -> anyhow::Result<(f64, ByThreshold)> {
    let roster_csv = dir.join("roster.csv");
    let mut w = csv::Writer::from_path(&roster_csv)?;
    w.write_record(HEADER)?;
    for m in members {
        csv_row(
            &mut w,
            &format!("m{}", m.member_id),
            Some(&m.member_id),
            &m.person,
        )?;
    }
    w.flush()?;
    let records_csv = dir.join("records.csv");
    let mut w = csv::Writer::from_path(&records_csv)?;
    w.write_record(HEADER)?;
    for (i, (_, r)) in records.iter().enumerate() {
        csv_row(&mut w, &format!("r{i}"), r.member_id.as_deref(), &r.person)?;
    }
    w.flush()?;
    let out = dir.join("splink.json");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/bench/splink_match.py");
    let status = std::process::Command::new(python)
        .arg(&script)
        .arg(&roster_csv)
        .arg(&records_csv)
        .arg(&out)
        .status()
        .with_context(|| {
            format!(
                "cannot run {} (set --python to a Python with splink installed)",
                python.display()
            )
        })?;
    if !status.success() {
        bail!("splink_match.py failed ({status})");
    }
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&out)?)?;
    let seconds = v["seconds"].as_f64().unwrap_or(f64::NAN);
    let mut by_t = HashMap::new();
    for (t, m) in v["thresholds"].as_object().into_iter().flatten() {
        let map: HashMap<String, String> = m
            .as_object()
            .into_iter()
            .flatten()
            .filter_map(|(r, mid)| {
                Some((r.clone(), mid.as_str()?.trim_start_matches('m').to_string()))
            })
            .collect();
        by_t.insert(t.clone(), map);
    }
    Ok((seconds, by_t))
}

/// Generates a set with the feed generator (`members` members) into `dir`.
pub fn generate(dir: &Path, members: usize, seed: u64) -> anyhow::Result<PathBuf> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/feedgen/feedgen.py");
    let status = std::process::Command::new("python3")
        .arg(&script)
        .arg(dir)
        .args([
            "--members",
            &members.to_string(),
            "--seed",
            &seed.to_string(),
            "--profile",
            "bench",
        ])
        .status()
        .context("python3 runs scripts/feedgen/feedgen.py")?;
    if !status.success() {
        bail!("feedgen.py failed ({status})");
    }
    Ok(dir.to_path_buf())
}

pub fn run(set: &Path, jobs: usize, python: &Path) -> anyhow::Result<()> {
    let members_csv = set.join("batch/members.csv");
    let inputs = run::inputs(&members_csv, &[set.join("batch")])?;
    let records = run::person_records(&inputs)?;
    let truth = truth_of(set, &records)?;
    let mut report = p360_enrich::report::Report::default();
    let members = roster::read(
        std::fs::File::open(&members_csv)?,
        &mut report.for_file("members.csv"),
    );
    println!(
        "set {}: {} members, {} person-records",
        set.display(),
        members.len(),
        records.len()
    );

    let people: Vec<PersonRecord> = records.iter().map(|(_, r)| r.clone()).collect();
    let t0 = Instant::now();
    let (matcher, outcomes) = run::match_people(members.clone(), &people, jobs);
    let p360_secs = t0.elapsed().as_secs_f64();
    let ours: Vec<Option<String>> = outcomes
        .iter()
        .map(|o| {
            (o.decision == Decision::Linked)
                .then(|| {
                    o.member
                        .map(|m| matcher.roster.members[m].member_id.clone())
                })
                .flatten()
        })
        .collect();
    let s_ours = score(&truth, &ours);
    let review = outcomes
        .iter()
        .filter(|o| o.decision == Decision::Review)
        .count();

    let tmp = tempfile::tempdir()?;
    let (splink_secs, by_t) = splink(python, tmp.path(), &members, &records)?;
    let mut best: Option<(String, Score)> = None;
    for (t, m) in &by_t {
        let pred: Vec<Option<String>> = (0..records.len())
            .map(|i| m.get(&format!("r{i}")).cloned())
            .collect();
        let s = score(&truth, &pred);
        if best.as_ref().is_none_or(|(_, b)| s.f1() > b.f1()) {
            best = Some((t.clone(), s));
        }
    }
    let (t, s_splink) = best.context("splink returned no thresholds")?;
    println!(
        "{:<28} {:>9} {:>9} {:>9} {:>12} {:>10}",
        "matcher", "precision", "recall", "F1", "false links", "seconds"
    );
    println!(
        "{:<28} {:>9.4} {:>9.4} {:>9.4} {:>12} {:>10.2}",
        format!("p360 ({jobs} threads)"),
        s_ours.precision(),
        s_ours.recall(),
        s_ours.f1(),
        s_ours.false_links,
        p360_secs
    );
    println!(
        "{:<28} {:>9.4} {:>9.4} {:>9.4} {:>12} {:>10.2}",
        format!("Splink 4 (p >= {t})"),
        s_splink.precision(),
        s_splink.recall(),
        s_splink.f1(),
        s_splink.false_links,
        splink_secs
    );
    println!(
        "p360 also held {review} records for review ({:.1} %). F1 p360 - Splink: {:+.4}; time p360 / Splink: {:.3}x",
        100.0 * review as f64 / records.len().max(1) as f64,
        s_ours.f1() - s_splink.f1(),
        p360_secs / splink_secs
    );
    Ok(())
}
