//! Runs a batch without the rest of p360 (what `p360 enrich` does, minus the progress bar):
//! `cargo run -p p360-enrich --example enrich_batch -- <members.csv> <out> [feeds...]`.

#![allow(clippy::print_stderr)]

use p360_enrich::run::{self, Options};
use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [members, out, feeds @ ..] = &args[..] else {
        eprintln!("usage: enrich_batch <members.csv> <out> [feeds...]");
        std::process::exit(2);
    };
    let members = PathBuf::from(members);
    let feeds: Vec<PathBuf> = if feeds.is_empty() {
        vec![members.parent().map(PathBuf::from).unwrap_or_default()]
    } else {
        feeds.iter().map(PathBuf::from).collect()
    };
    let inputs = run::inputs(&members, &feeds)?;
    let opts = Options {
        jobs: 2,
        recorded: "2025-06-30T00:00:00Z".into(),
    };
    let out = PathBuf::from(out);
    let r = run::run(&members, &inputs, &out, &opts, &|_| {})?;
    run::write(&out, &r, &opts.recorded)?;
    eprintln!("{}", serde_json::to_string(&r.summary)?);
    Ok(())
}
