//! The CSV side shared by the roster, claims and pharmacy parsers: the `csv` crate reads
//! records (quoting, embedded commas); this checks the column set and turns each row into
//! named UTF-8 fields, reporting rows of the wrong width or encoding.

use super::Item;
use crate::person::parse_day;
use crate::report::FileReport;
use chrono::NaiveDate;
use std::collections::HashMap;
use std::io::Read;

/// One row by column name.
pub(crate) struct Row<'a> {
    pub(crate) line: u64,
    fields: Vec<&'a str>,
    cols: &'a HashMap<String, usize>,
}

impl Row<'_> {
    /// The trimmed field, `""` when the column is absent.
    pub(crate) fn get(&self, col: &str) -> &str {
        self.cols
            .get(col)
            .and_then(|&i| self.fields.get(i))
            .map_or("", |s| s.trim())
    }

    /// `Some(field)` unless empty.
    pub(crate) fn opt(&self, col: &str) -> Option<&str> {
        let v = self.get(col);
        (!v.is_empty()).then_some(v)
    }
}

/// Reads `input` as CSV with a header row holding at least `required`, calling `each` per
/// good row. A header without the required columns is one problem for the whole file.
pub(crate) fn read_rows(
    input: impl Read,
    required: &[&str],
    report: &mut FileReport<'_>,
    each: &mut dyn FnMut(&Row<'_>, &mut FileReport<'_>),
) {
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .from_reader(input);
    let header = match rdr.byte_headers() {
        Ok(h) => h.clone(),
        Err(_) => {
            report.file("the header row could not be read");
            return;
        }
    };
    let mut cols = HashMap::new();
    for (i, name) in header.iter().enumerate() {
        let name = String::from_utf8_lossy(name)
            .trim()
            .trim_start_matches('\u{feff}')
            .to_ascii_lowercase();
        cols.insert(name, i);
    }
    let missing: Vec<&str> = required
        .iter()
        .copied()
        .filter(|c| !cols.contains_key(*c))
        .collect();
    if !missing.is_empty() {
        report.file(format!("wrong column set: missing {}", missing.join(", ")));
        return;
    }
    let width = header.len();
    let mut record = csv::ByteRecord::new();
    loop {
        match rdr.read_byte_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line());
                report.line(line, "malformed CSV row (quoting)");
                // The reader cannot resynchronise after some I/O errors: stop on those.
                if !matches!(
                    e.kind(),
                    csv::ErrorKind::UnequalLengths { .. } | csv::ErrorKind::Utf8 { .. }
                ) {
                    break;
                }
                continue;
            }
        }
        let line = record.position().map_or(0, |p| p.line());
        report.counted();
        if record.len() != width {
            report.line(
                line,
                format!(
                    "row has {} fields, the header has {width} (malformed or truncated row)",
                    record.len()
                ),
            );
            continue;
        }
        let mut fields = Vec::with_capacity(width);
        let mut bad = None;
        for (i, f) in record.iter().enumerate() {
            match std::str::from_utf8(f) {
                Ok(s) => fields.push(s),
                Err(_) => {
                    bad = Some(i);
                    break;
                }
            }
        }
        if let Some(i) = bad {
            let col = header
                .get(i)
                .map(|h| String::from_utf8_lossy(h).into_owned())
                .unwrap_or_default();
            report.line(
                line,
                format!("column {col} is not UTF-8 text (wrong encoding)"),
            );
            continue;
        }
        each(
            &Row {
                line,
                fields,
                cols: &cols,
            },
            report,
        );
    }
}

/// The claim bookkeeping shared by claims and pharmacy rows: a reversal voids itself and the
/// claim it names, a denial voids itself, and (where `paid_replaces`) a paid claim naming an
/// original replaces it. `Some(paid)`, or `None` for a status that is none of the three
/// (reported under `key`).
pub(crate) fn claim_status(
    row: &Row<'_>,
    claim: &str,
    key: &str,
    paid_replaces: bool,
    report: &mut FileReport<'_>,
    sink: &mut dyn FnMut(Item),
) -> Option<bool> {
    let original = row.opt("original_claim_id");
    let status = row.get("claim_status").to_ascii_lowercase();
    let (voids_original, voids_self) = match status.as_str() {
        "paid" => (paid_replaces, false),
        "reversed" => (true, true),
        "denied" => (false, true),
        _ => {
            report.record(key, "claim_status is not paid, denied or reversed");
            return None;
        }
    };
    if voids_original && let Some(o) = original {
        sink(Item::Void(o.to_string()));
    }
    if voids_self {
        sink(Item::Void(claim.to_string()));
    }
    Some(status == "paid")
}

/// The patient's birth date of a claim row; a present but unreadable one is reported.
pub(crate) fn birth_date(
    row: &Row<'_>,
    key: &str,
    report: &mut FileReport<'_>,
) -> Option<NaiveDate> {
    let raw = row.opt("patient_birth_date")?;
    let birth = parse_day(raw);
    if birth.is_none() {
        report.record(key, "patient_birth_date is not a date");
    }
    birth
}
