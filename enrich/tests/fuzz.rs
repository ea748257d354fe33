//! Fuzz harness for every feed parser, on stable Rust: proptest feeds each parser arbitrary
//! bytes and mutated copies of the sample files (bytes flipped, inserted, deleted, lines cut
//! and repeated, delimiters injected). A panic fails the case and proptest shrinks it.
//! CI runs a short pass (256 cases per target); longer runs set `PROPTEST_CASES`, e.g.
//! `PROPTEST_CASES=200000 cargo test --release -p p360-enrich --test fuzz`.

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
