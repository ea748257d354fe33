//! Bad input: every kind of bad record the feeds can carry, in one batch, is a line of the
//! batch report naming its file and line (or record) without quoting a value, and everything
//! else in the batch is applied exactly as without the bad records.

use p360_enrich::run::{self, BatchResult, Options};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

fn sample() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/feeds/sample/batch")
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).expect("mkdir");
    for e in fs::read_dir(from).expect("read_dir") {
        let e = e.expect("entry");
        let p = e.path();
        if p.is_dir() {
            copy_dir(&p, &to.join(e.file_name()));
        } else {
            fs::copy(&p, to.join(e.file_name())).expect("copy");
        }
    }
}

fn append(path: &Path, bytes: &[u8]) {
    let mut f = fs::OpenOptions::new()
        .append(true)
        .open(path)
        .expect("open");
    f.write_all(bytes).expect("append");
}

fn run_batch(batch: &Path, out: &Path) -> BatchResult {
    let members = batch.join("members.csv");
    let inputs = run::inputs(&members, &[batch.to_path_buf()]).expect("inputs");
    let opts = Options {
        jobs: 2,
        recorded: "2025-06-30T00:00:00Z".into(),
    };
    let r = run::run(&members, &inputs, out, &opts, &|_| {}).expect("run");
    run::write(out, &r, &opts.recorded).expect("write");
    r
}

/// Link lines without their identity number (which depends on what else the batch holds).
fn links(out: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_to_string(out.join("links.ndjson"))
        .expect("links")
        .lines()
        .map(|l| {
            let mut v: serde_json::Value = serde_json::from_str(l).expect("link json");
            if let Some(o) = v.as_object_mut() {
                o.remove("identity");
            }
            v.to_string()
        })
        .collect();
    v.sort();
    v
}

#[test]
fn every_bad_record_is_reported_and_the_rest_applied() {
    let tmp = tempfile::tempdir().expect("tmp");
    let clean_out = tmp.path().join("clean-out");
    let clean = run_batch(&sample(), &clean_out);

    let batch = tmp.path().join("batch");
    copy_dir(&sample(), &batch);
    let claims = batch.join("claims.csv");
    let header = fs::read_to_string(&claims).expect("claims");
    let width = header.lines().next().expect("header").split(',').count();
    let row = |cells: &[(usize, &str)]| {
        let mut v = vec![String::new(); width];
        for (i, c) in cells {
            v[*i] = c.to_string();
        }
        v.join(",")
    };
    // A malformed row (too few fields), a bad diagnosis and procedure code on a paid claim,
    // a row that is not UTF-8, and a truncated last row.
    let bad_code = row(&[
        (0, "C99123100001"),
        (1, "1"),
        (2, "professional"),
        (4, "ANN"),
        (5, "DOE"),
        (6, "1980-01-01"),
        (7, "F"),
        (8, "2024-01-02"),
        (14, "11E9"),
        (26, "9921"),
        (32, "paid"),
    ]);
    append(&claims, b"C99123100009,1,professional\n");
    append(&claims, format!("{bad_code}\n").as_bytes());
    append(&claims, b"C99123100002,1,professional,,J\xe9R\xd4ME");
    append(&claims, ",".repeat(width - 5).as_bytes());
    append(&claims, b"\nC99123100003,1,profess");
    // A pharmacy extract with the wrong column set (no ndc column).
    fs::write(
        batch.join("pharmacy_extra.csv"),
        "claim_id,member_id,patient_first_name,patient_last_name,patient_birth_date,patient_sex,fill_date,drug_name,claim_status\nRX1,M1,A,B,2000-01-01,F,2024-01-01,X,paid\n",
    )
    .expect("write");
    // NDJSON: a bad line, an unknown resource type, a line that is not UTF-8, a truncated one.
    let eob = batch.join("eob.ndjson");
    append(&eob, b"{not json\n");
    append(&eob, b"{\"resourceType\":\"Basketball\",\"id\":\"x1\"}\n");
    append(
        &eob,
        b"{\"resourceType\":\"Patient\",\"id\":\"\xff\xfe\"}\n",
    );
    append(
        &eob,
        b"{\"resourceType\":\"ExplanationOfBenefit\",\"id\":\"eob-trunc",
    );
    // HL7: an unparsable segment inside a message, a message without MSH-10, a bad LOINC.
    let labs = batch.join("labs.hl7");
    append(&labs, b"MSH|^~\\&|LAB|X|P360|Y|20240101||ORU^R01^ORU_R01|RLBAD00001|P|2.5.1\rPID|1||L1^^^SYNREFLAB^PI||ROE^JANE||19800101|F\r%%garbage\rOBX|1|NM|1234-0^Bad^LN||7|%^%^UCUM|||||F|||20240101\n");
    append(&labs, b"MSH|^~\\&|LAB|X|P360|Y|20240101||ORU^R01^ORU_R01||P|2.5.1\rPID|1||L2^^^SYNREFLAB^PI||ROE^JOHN||19800101|M\n");

    let bad_out = tmp.path().join("bad-out");
    let bad = run_batch(&batch, &bad_out);
    let reasons: Vec<String> = bad
        .report
        .problems
        .iter()
        .map(|p| format!("{} {}: {}", p.file, p.at, p.reason))
        .collect();
    let has = |file: &str, text: &str| {
        assert!(
            bad.report
                .problems
                .iter()
                .any(|p| p.file == file && p.reason.contains(text)),
            "no '{text}' problem for {file}: {reasons:#?}"
        );
    };
    has("claims.csv", "row has 3 fields"); // malformed row
    has("claims.csv", "diagnosis_1 is not an ICD-10-CM code"); // bad code
    has("claims.csv", "procedure_code is not a CPT/HCPCS code");
    has("claims.csv", "not UTF-8 text (wrong encoding)");
    has("claims.csv", "truncated row"); // truncated file
    has("pharmacy_extra.csv", "wrong column set: missing ndc");
    has("eob.ndjson", "not valid JSON"); // bad NDJSON line
    has("eob.ndjson", "unsupported resource type");
    has("eob.ndjson", "wrong encoding");
    has("eob.ndjson", "truncated line");
    has("labs.hl7", "unparsable segment");
    has("labs.hl7", "without a control id");
    has("labs.hl7", "no valid LOINC");
    // Lines point where the problem is; no value is quoted.
    assert!(
        reasons.iter().any(|r| r.starts_with("claims.csv line ")),
        "{reasons:#?}"
    );
    for p in &bad.report.problems {
        for value in [
            "JéRÔME",
            "JEROME",
            "11E9",
            "9921",
            "ROE",
            "Basketball",
            "garbage",
        ] {
            assert!(
                !p.reason.contains(value) && !p.at.contains(value),
                "{p:?} quotes a value"
            );
        }
    }
    // Everything else applied as in the clean run: every clean link line is there, and each
    // member's record is the same.
    let (clean_links, bad_links) = (links(&clean_out), links(&bad_out));
    for l in &clean_links {
        assert!(bad_links.contains(l), "missing after bad input: {l}");
    }
    assert_eq!(clean.summary.facts, bad.summary.facts);
    assert_eq!(
        clean.summary.multi_source_facts,
        bad.summary.multi_source_facts
    );
    for (m, f) in &clean.facts {
        let b = &bad.facts[m];
        assert_eq!(f.facts, b.facts, "member {m}");
    }
}

#[test]
fn a_batch_run_twice_writes_the_same_output() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    run_batch(&sample(), &a);
    run_batch(&sample(), &b);
    for f in [
        "links.ndjson",
        "report.json",
        "summary.json",
        "review.ndjson",
    ] {
        assert_eq!(
            fs::read(a.join(f)).expect("a"),
            fs::read(b.join(f)).expect("b"),
            "{f}"
        );
    }
    for e in fs::read_dir(a.join("members")).expect("members") {
        let name = e.expect("entry").file_name();
        assert_eq!(
            fs::read(a.join("members").join(&name)).expect("a"),
            fs::read(b.join("members").join(&name)).expect("b"),
            "{name:?}"
        );
    }
}
