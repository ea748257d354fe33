//! `p360 enrich`: a payor batch matched and resolved offline, written as the output contract of
//! the feed fixtures says (`links.ndjson`, one FHIR R4 Bundle per member) plus the batch report
//! (`report.json`), the review queue (`review.ndjson`) and the counts (`summary.json`).

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use p360_enrich::run::{self, Options};
use std::path::{Path, PathBuf};

#[allow(clippy::print_stderr)] // the CLI's summary line goes to stderr, beside the progress bar
pub fn run(
    members: &Path,
    feeds: &[PathBuf],
    out: &Path,
    jobs: usize,
    quiet: bool,
) -> anyhow::Result<()> {
    let feeds: Vec<PathBuf> = if feeds.is_empty() {
        // No feeds named: the batch folder is the roster's folder.
        vec![members.parent().unwrap_or(Path::new(".")).to_path_buf()]
    } else {
        feeds.to_vec()
    };
    let inputs = run::inputs(members, &feeds)?;
    anyhow::ensure!(
        !inputs.is_empty(),
        "no feed files found in the folders and files given"
    );
    let total = run::total_bytes(&inputs) * 2;
    let bar = if quiet {
        ProgressBar::hidden()
    } else {
        let b = ProgressBar::new(total);
        b.set_style(
            ProgressStyle::with_template(
                "{bar:40} {bytes}/{total_bytes} read (two passes), {elapsed} elapsed, eta {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        b
    };
    let recorded = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let opts = Options {
        jobs: jobs.max(1),
        recorded: recorded.clone(),
    };
    let tick = |n: u64| bar.set_position(n.min(total));
    let result = run::run(members, &inputs, out, &opts, &tick)
        .with_context(|| format!("enrichment of {} failed", members.display()))?;
    run::write(out, &result, &recorded)?;
    bar.finish_and_clear();
    let s = &result.summary;
    let pct = |n: u64| {
        if s.records == 0 {
            0.0
        } else {
            100.0 * n as f64 / s.records as f64
        }
    };
    eprintln!(
        "{} person-records ({} distinct people): {} linked ({:.1} %), {} for review ({:.1} %), {} unmatched; {} facts for {} members ({} with 2+ sources, {} statements merged, {} void); {} problems in report.json",
        s.records,
        s.identities,
        s.linked,
        pct(s.linked),
        s.review,
        pct(s.review),
        s.unmatched,
        s.facts,
        s.members_with_facts,
        s.multi_source_facts,
        s.merged,
        s.voided,
        s.problems,
    );
    Ok(())
}
