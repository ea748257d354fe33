//! A FHIR bulk NDJSON folder being written: one `<ResourceType>.ndjson` per type, one resource
//! per line, which is what `p360_enrich::feeds` detects and parses. Files are written under
//! hidden `.<ResourceType>.ndjson.part` names and renamed only by [`NdjsonDir::finish`], so a
//! pull that fails half-way never leaves a folder that looks like a whole record.

use crate::error::FhirStoreError;
use serde_json::Value;
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use tokio::io::AsyncWriteExt;

/// More distinct resource types than FHIR R4 has (about 145): beyond this the server is not
/// sending FHIR, and each type is an open file.
pub const MAX_TYPES: usize = 200;

/// How many resources of each type were written, and how many were left out.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Written {
    /// Resource type → resources written (`Patient` → 1).
    pub counts: BTreeMap<String, u64>,
    /// Resources seen a second time (same type and id), for instance on two pages.
    pub duplicates: u64,
    /// Entries without a usable `resourceType` (not a name that can be a file).
    pub skipped: u64,
}

impl Written {
    pub fn total(&self) -> u64 {
        self.counts.values().sum()
    }
}

/// A resource type as FHIR names them: `[A-Z][A-Za-z]*`. Anything else would not be a type
/// and could not safely be a file name.
pub fn is_resource_type(s: &str) -> bool {
    let mut b = s.bytes();
    s.len() <= 64
        && b.next().is_some_and(|c| c.is_ascii_uppercase())
        && b.all(|c| c.is_ascii_alphabetic())
}

pub struct NdjsonDir {
    dir: PathBuf,
    files: BTreeMap<String, tokio::fs::File>,
    seen: HashSet<String>,
    written: Written,
    finished: bool,
}

impl NdjsonDir {
    /// Creates `dir` if needed. Files of the same names already there are replaced on
    /// [`finish`](Self::finish).
    pub async fn create(dir: &Path) -> Result<Self, FhirStoreError> {
        tokio::fs::create_dir_all(dir)
            .await
            .map_err(|e| write_error(dir, e))?;
        Ok(Self {
            dir: dir.to_path_buf(),
            files: BTreeMap::new(),
            seen: HashSet::new(),
            written: Written::default(),
            finished: false,
        })
    }

    fn part(&self, kind: &str) -> PathBuf {
        self.dir.join(format!(".{kind}.ndjson.part"))
    }

    /// Appends resources (one page's worth): grouped by type, so that each file gets one
    /// write per page. A resource with the same type and id as an earlier one is dropped.
    pub async fn append(
        &mut self,
        resources: impl IntoIterator<Item = Value>,
    ) -> Result<(), FhirStoreError> {
        let mut batches: BTreeMap<String, Vec<u8>> = BTreeMap::new();
        for r in resources {
            let Some(kind) = r["resourceType"].as_str().filter(|k| is_resource_type(k)) else {
                self.written.skipped += 1;
                continue;
            };
            if let Some(id) = r["id"].as_str()
                && !self.seen.insert(format!("{kind}/{id}"))
            {
                self.written.duplicates += 1;
                continue;
            }
            let kind = kind.to_string();
            let buf = batches.entry(kind.clone()).or_default();
            // Compact JSON has no raw newline: one resource, one line.
            serde_json::to_writer(&mut *buf, &r).map_err(|e| {
                write_error(&self.part(&kind), std::io::Error::other(e.to_string()))
            })?;
            buf.push(b'\n');
            *self.written.counts.entry(kind).or_default() += 1;
        }
        for (kind, buf) in batches {
            self.write(&kind, &buf).await?;
        }
        Ok(())
    }

    /// Appends raw NDJSON bytes (whole lines) to a type's file, as an export part holds them.
    pub async fn append_raw(&mut self, kind: &str, bytes: &[u8]) -> Result<(), FhirStoreError> {
        if !is_resource_type(kind) {
            return Err(FhirStoreError::BadName("resource type"));
        }
        self.write(kind, bytes).await
    }

    /// Counts lines appended with [`append_raw`](Self::append_raw).
    pub fn count_raw(&mut self, kind: &str, lines: u64) {
        *self.written.counts.entry(kind.to_string()).or_default() += lines;
    }

    async fn write(&mut self, kind: &str, bytes: &[u8]) -> Result<(), FhirStoreError> {
        if !self.files.contains_key(kind) {
            if self.files.len() >= MAX_TYPES {
                return Err(FhirStoreError::TooManyTypes(MAX_TYPES));
            }
            let path = self.part(kind);
            let file = tokio::fs::File::create(&path)
                .await
                .map_err(|e| write_error(&path, e))?;
            self.files.insert(kind.to_string(), file);
        }
        let path = self.part(kind);
        if let Some(file) = self.files.get_mut(kind) {
            file.write_all(bytes)
                .await
                .map_err(|e| write_error(&path, e))?;
        }
        Ok(())
    }

    /// Flushes every file to disk and gives each its `<ResourceType>.ndjson` name.
    pub async fn finish(mut self) -> Result<Written, FhirStoreError> {
        let files = std::mem::take(&mut self.files);
        for (kind, mut file) in files {
            let part = self.part(&kind);
            // tokio completes writes in the background: flush before the data is final.
            file.flush().await.map_err(|e| write_error(&part, e))?;
            file.sync_all().await.map_err(|e| write_error(&part, e))?;
            drop(file);
            let done = self.dir.join(format!("{kind}.ndjson"));
            tokio::fs::rename(&part, &done)
                .await
                .map_err(|e| write_error(&done, e))?;
        }
        self.finished = true;
        Ok(std::mem::take(&mut self.written))
    }
}

impl Drop for NdjsonDir {
    /// A pull that did not finish leaves no parts behind.
    fn drop(&mut self) {
        if !self.finished {
            for kind in self.files.keys() {
                let _ = std::fs::remove_file(self.part(kind));
            }
        }
    }
}

fn write_error(path: &Path, source: std::io::Error) -> FhirStoreError {
    FhirStoreError::Write {
        file: path.display().to_string(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn resource_types_are_names() {
        assert!(is_resource_type("Patient"));
        assert!(is_resource_type("MedicationRequest"));
        assert!(!is_resource_type("patient"));
        assert!(!is_resource_type("../Patient"));
        assert!(!is_resource_type("Pat ient"));
        assert!(!is_resource_type(""));
    }

    #[tokio::test]
    async fn writes_one_file_per_type_and_only_on_finish() {
        let tmp = tempfile::tempdir().unwrap();
        let mut out = NdjsonDir::create(tmp.path()).await.unwrap();
        out.append(vec![
            json!({"resourceType": "Patient", "id": "p1"}),
            json!({"resourceType": "Condition", "id": "c1", "note": [{"text": "a\nb"}]}),
            json!({"resourceType": "Condition", "id": "c1"}),
            json!({"resourceType": "../x", "id": "z"}),
        ])
        .await
        .unwrap();
        assert!(!tmp.path().join("Patient.ndjson").exists());
        let written = out.finish().await.unwrap();
        assert_eq!(written.total(), 2);
        assert_eq!(written.duplicates, 1);
        assert_eq!(written.skipped, 1);
        let cond = std::fs::read_to_string(tmp.path().join("Condition.ndjson")).unwrap();
        assert_eq!(cond.lines().count(), 1);
        assert!(cond.contains(r"a\nb"));
        let names: Vec<_> = std::fs::read_dir(tmp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
    }

    #[tokio::test]
    async fn an_unfinished_folder_leaves_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let mut out = NdjsonDir::create(tmp.path()).await.unwrap();
        out.append(vec![json!({"resourceType": "Patient", "id": "p1"})])
            .await
            .unwrap();
        drop(out);
        assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
    }
}
