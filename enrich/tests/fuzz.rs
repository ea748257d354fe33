//! Fuzz harness for every feed parser, on stable Rust: proptest feeds each parser arbitrary
//! bytes and mutated copies of the sample files (bytes flipped, inserted, deleted, lines cut
//! and repeated, delimiters injected). A panic fails the case and proptest shrinks it.
//! CI runs a short pass (256 cases per target, and `long_run` for two CPU-seconds per parser);
//! long runs give each parser a CPU-time budget, e.g. ten minutes:
//! `P360_FUZZ_SECONDS=600 cargo test --release -p p360-enrich --test fuzz long_run -- --ignored --nocapture`
//! (`P360_FUZZ_TARGETS=roster_csv,hl7_oru` for a subset).

use p360_enrich::feeds::{self, FeedKind, roster};
use p360_enrich::report::Report;
use proptest::prelude::*;
use std::path::Path;

/// 256 per target in CI; `PROPTEST_CASES` for long runs.
fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(256)
}

fn sample(name: &str) -> Vec<u8> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../testdata/feeds/sample/batch")
        .join(name);
    let mut b = std::fs::read(p).expect("sample file");
    // The first 12 KiB: enough of every record shape, small enough for many cases.
    b.truncate(12 * 1024);
    b
}

/// One edit of the input.
#[derive(Debug, Clone)]
enum Op {
    Flip(usize, u8),
    Insert(usize, u8),
    Delete(usize, usize),
    Truncate(usize),
    RepeatLine(usize),
    Delimiter(usize, u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Op::Flip(i, b)),
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Op::Insert(i, b)),
        (any::<usize>(), 1usize..64).prop_map(|(i, n)| Op::Delete(i, n)),
        any::<usize>().prop_map(Op::Truncate),
        any::<usize>().prop_map(Op::RepeatLine),
        (
            any::<usize>(),
            prop::sample::select(b",\"|^~\\&\r\n{}[]:\x00\xff".to_vec())
        )
            .prop_map(|(i, b)| Op::Delimiter(i, b)),
    ]
}

fn mutate(mut b: Vec<u8>, ops: &[Op]) -> Vec<u8> {
    for o in ops {
        let n = b.len().max(1);
        match *o {
            Op::Flip(i, x) if !b.is_empty() => b[i % n] ^= x | 1,
            Op::Insert(i, x) | Op::Delimiter(i, x) => b.insert(i % (b.len() + 1), x),
            Op::Delete(i, k) if !b.is_empty() => {
                let s = i % n;
                let e = (s + k).min(b.len());
                b.drain(s..e);
            }
            Op::Truncate(i) => b.truncate(i % (b.len() + 1)),
            Op::RepeatLine(i) if !b.is_empty() => {
                let s = i % n;
                let e = b[s..]
                    .iter()
                    .position(|&c| c == b'\n')
                    .map_or(b.len(), |p| s + p + 1);
                let line = b[s..e].to_vec();
                b.splice(s..s, line);
            }
            _ => {}
        }
    }
    b
}

fn parse(kind: FeedKind, bytes: &[u8]) -> usize {
    let mut report = Report::default();
    let mut fr = report.for_file("fuzz");
    if kind == FeedKind::Roster {
        return roster::read(bytes, &mut fr).len();
    }
    let mut n = 0;
    feeds::read(kind, bytes, &mut fr, &mut |_| n += 1);
    n
}

macro_rules! target {
    ($name:ident, $kind:expr, $file:expr) => {
        mod $name {
            use super::*;
            proptest! {
                #![proptest_config(ProptestConfig { cases: cases(), failure_persistence: None, ..ProptestConfig::default() })]
                #[test]
                fn arbitrary_bytes(b in prop::collection::vec(any::<u8>(), 0..4096)) {
                    parse($kind, &b);
                }
                #[test]
                fn mutated_sample(ops in prop::collection::vec(op(), 1..24)) {
                    let b = mutate(sample($file), &ops);
                    parse($kind, &b);
                }
            }
        }
    };
}

target!(roster_csv, FeedKind::Roster, "members.csv");
target!(claims_csv, FeedKind::Claims, "claims.csv");
target!(pharmacy_csv, FeedKind::Pharmacy, "pharmacy.csv");
target!(fhir_ndjson, FeedKind::FhirNdjson, "eob.ndjson");
target!(hie_ndjson, FeedKind::FhirNdjson, "hie/Observation.ndjson");
target!(hl7_oru, FeedKind::Hl7, "labs.hl7");

#[test]
fn the_samples_parse_whole() {
    assert!(parse(FeedKind::Claims, &sample("claims.csv")) > 10);
    assert!(parse(FeedKind::Hl7, &sample("labs.hl7")) > 5);
    assert!(parse(FeedKind::FhirNdjson, &sample("eob.ndjson")) > 5);
}

/// This thread's CPU time in seconds (Linux: utime + stime of /proc/thread-self/stat, in the
/// kernel's 100 Hz ticks), so that a budget means work done, whatever else the machine runs.
fn thread_cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap_or_default();
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 of the line: 11 and 12 after the name.
    (ticks(11) + ticks(12)) / 100.0
}

#[test]
#[ignore = "long fuzz run: P360_FUZZ_SECONDS CPU-seconds per parser (2 by default)"]
fn long_run() {
    use proptest::test_runner::{Config, TestRunner};
    let budget: f64 = std::env::var("P360_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2.0);
    let targets = [
        ("roster_csv", FeedKind::Roster, "members.csv"),
        ("claims_csv", FeedKind::Claims, "claims.csv"),
        ("pharmacy_csv", FeedKind::Pharmacy, "pharmacy.csv"),
        ("eob_ndjson", FeedKind::FhirNdjson, "eob.ndjson"),
        ("hie_ndjson", FeedKind::FhirNdjson, "hie/Observation.ndjson"),
        ("hl7_oru", FeedKind::Hl7, "labs.hl7"),
    ];
    // P360_FUZZ_TARGETS=a,b runs only those, so parsers can share the cores as processes.
    let only = std::env::var("P360_FUZZ_TARGETS").unwrap_or_default();
    let chosen = |name: &str| only.is_empty() || only.split(',').any(|t| t.trim() == name);
    for (name, kind, file) in targets.into_iter().filter(|t| chosen(t.0)) {
        let base = sample(file);
        let inputs = prop_oneof![
            prop::collection::vec(any::<u8>(), 0..4096),
            prop::collection::vec(op(), 1..24).prop_map(move |ops| mutate(base.clone(), &ops)),
        ];
        const ROUND: u32 = 5_000;
        let config = Config {
            cases: ROUND,
            failure_persistence: None,
            ..Config::default()
        };
        let start = thread_cpu_seconds();
        let mut cases = 0u64;
        while thread_cpu_seconds() - start < budget {
            // A fresh runner per round: a runner counts its successes across calls, so a
            // reused one stops generating after its first round. Each new one draws its own seed.
            let mut runner = TestRunner::new(config.clone());
            // A panic in the parser fails the round; proptest shrinks it to a small input.
            if let Err(e) = runner.run(&inputs, |b| {
                parse(kind, &b);
                Ok(())
            }) {
                panic!("{name}: {e}");
            }
            cases += u64::from(ROUND);
        }
        #[allow(clippy::print_stdout)]
        {
            println!(
                "fuzz {name}: {cases} cases in {:.1} CPU-s, 0 panics",
                thread_cpu_seconds() - start
            );
        }
    }
}
