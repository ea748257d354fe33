//! The batch report: every record that could not be applied, by file and line or record key,
//! with a reason that never quotes a value (values are patient data).

use serde::Serialize;
use std::collections::BTreeMap;

/// One record that was not applied (or one part of it, such as a bad code on a claim line).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// The feed file, relative to the batch folder.
    pub file: String,
    /// `line 12`, `record C22070500001:2`, or `file` for a problem of the whole file.
    pub at: String,
    pub reason: String,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Report {
    pub problems: Vec<Problem>,
    /// Records read per file.
    pub records: BTreeMap<String, u64>,
}

/// Where problems of one file go; keeps at most `LIMIT` lines per file so that a file of
/// garbage cannot grow the report without bound (the count still grows).
pub struct FileReport<'a> {
    pub file: &'a str,
    report: &'a mut Report,
    kept: usize,
    pub dropped: u64,
}

const LIMIT: usize = 10_000;

impl Report {
    pub fn for_file<'a>(&'a mut self, file: &'a str) -> FileReport<'a> {
        FileReport {
            file,
            report: self,
            kept: 0,
            dropped: 0,
        }
    }
}

impl FileReport<'_> {
    pub fn line(&mut self, line: u64, reason: impl Into<String>) {
        self.push(format!("line {line}"), reason.into());
    }

    pub fn record(&mut self, key: &str, reason: impl Into<String>) {
        self.push(format!("record {key}"), reason.into());
    }

    pub fn file(&mut self, reason: impl Into<String>) {
        self.push("file".into(), reason.into());
    }

    pub fn counted(&mut self) {
        *self
            .report
            .records
            .entry(self.file.to_string())
            .or_default() += 1;
    }

    fn push(&mut self, at: String, reason: String) {
        if self.kept >= LIMIT {
            self.dropped += 1;
            return;
        }
        self.kept += 1;
        self.report.problems.push(Problem {
            file: self.file.to_string(),
            at,
            reason,
        });
    }
}

impl Drop for FileReport<'_> {
    fn drop(&mut self) {
        if self.dropped > 0 {
            self.report.problems.push(Problem {
                file: self.file.to_string(),
                at: "file".into(),
                reason: format!("{} more problems not listed", self.dropped),
            });
        }
    }
}
