//! A bulk export's NDJSON parts in an object store, gathered into a local folder with one
//! `<ResourceType>.ndjson` per type. HealthLake writes
//! `<prefix>/<datastore-id>-FHIR_EXPORT-<job-id>/<ResourceType>/<ResourceType>-<n>.ndjson`;
//! each part is streamed to the end of its type's file (parts in numeric order), so memory
//! holds one chunk, not a part.

use crate::error::FhirStoreError;
use crate::ndjson::{NdjsonDir, Written, is_resource_type};
use futures::TryStreamExt;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};
use std::path::Path;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Collected {
    /// Lines per resource type (blank lines not counted).
    pub written: Written,
    /// Parts read.
    pub parts: usize,
    /// Objects under the prefix that are not NDJSON parts of a resource type (manifests,
    /// logs): left where they are.
    pub ignored: usize,
}

/// The resource type a part belongs to, from its path under the export folder:
/// `Condition/Condition-0.ndjson` (HealthLake), or `Condition-1.ndjson` / `Condition.ndjson`
/// directly in it (FHIR bulk data servers). Also the part's number, for ordering.
fn part_of(rel: &str) -> Option<(String, u64)> {
    let (dir, file) = match rel.rsplit_once('/') {
        Some((d, f)) => (Some(d), f),
        None => (None, rel),
    };
    let stem = file.strip_suffix(".ndjson")?;
    let (name, n) = match stem.rsplit_once('-') {
        Some((name, n)) if n.bytes().all(|b| b.is_ascii_digit()) && !n.is_empty() => {
            (name, n.parse().unwrap_or(u64::MAX))
        }
        _ => (stem, 0),
    };
    let kind = match dir {
        // Only one folder level, named as a type: anything deeper is not a part.
        Some(d) if is_resource_type(d) => d,
        Some(_) => return None,
        None => name,
    };
    is_resource_type(kind).then(|| (kind.to_string(), n))
}

fn store_error(path: &str, e: &object_store::Error) -> FhirStoreError {
    let (kind, retryable) = match e {
        object_store::Error::NotFound { .. } => ("not found".to_string(), false),
        object_store::Error::PermissionDenied { .. }
        | object_store::Error::Unauthenticated { .. } => ("access denied".to_string(), false),
        other => {
            let mut text = other.to_string();
            text.truncate(300);
            (text, true)
        }
    };
    FhirStoreError::Store {
        path: path.to_string(),
        kind,
        retryable,
    }
}

/// Reads every NDJSON part under `prefix` into `dir`. Finding none is not an error: an
/// export of an empty data store has none.
pub async fn collect(
    store: &dyn ObjectStore,
    prefix: &ObjectPath,
    dir: &Path,
) -> Result<Collected, FhirStoreError> {
    let metas: Vec<_> = store
        .list(Some(prefix))
        .try_collect()
        .await
        .map_err(|e| store_error(prefix.as_ref(), &e))?;
    let mut parts = Vec::new();
    let mut ignored = 0;
    for meta in metas {
        let full = meta.location.as_ref();
        let rel = full
            .strip_prefix(prefix.as_ref())
            .unwrap_or(full)
            .trim_start_matches('/');
        match part_of(rel) {
            Some((kind, n)) => parts.push((kind, n, meta.location)),
            None => ignored += 1,
        }
    }
    parts.sort_by(|a, b| (&a.0, a.1, a.2.as_ref()).cmp(&(&b.0, b.1, b.2.as_ref())));
    let mut out = NdjsonDir::create(dir).await?;
    for (kind, _, location) in &parts {
        let mut stream = store
            .get(location)
            .await
            .map_err(|e| store_error(location.as_ref(), &e))?
            .into_stream();
        let mut lines = 0u64;
        // Whether the line being read has anything on it, and whether the part ended with
        // a newline: the next part must start on a line of its own.
        let mut in_line = false;
        let mut last = b'\n';
        while let Some(chunk) = stream
            .try_next()
            .await
            .map_err(|e| store_error(location.as_ref(), &e))?
        {
            for &b in chunk.iter() {
                if b == b'\n' {
                    lines += u64::from(in_line);
                    in_line = false;
                } else if !b.is_ascii_whitespace() {
                    in_line = true;
                }
            }
            if let Some(&b) = chunk.last() {
                last = b;
            }
            out.append_raw(kind, &chunk).await?;
        }
        if last != b'\n' {
            out.append_raw(kind, b"\n").await?;
        }
        lines += u64::from(in_line);
        out.count_raw(kind, lines);
    }
    Ok(Collected {
        written: out.finish().await?,
        parts: parts.len(),
        ignored,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::PutPayload;
    use object_store::memory::InMemory;

    #[test]
    fn parts_are_named_by_their_folder_or_file() {
        assert_eq!(
            part_of("Condition/Condition-12.ndjson"),
            Some(("Condition".into(), 12))
        );
        assert_eq!(part_of("Patient-1.ndjson"), Some(("Patient".into(), 1)));
        assert_eq!(part_of("Patient.ndjson"), Some(("Patient".into(), 0)));
        assert_eq!(part_of("manifest.json"), None);
        assert_eq!(part_of("x/Patient/Patient-1.ndjson"), None);
        assert_eq!(part_of("errors/OperationOutcome-1.ndjson"), None);
    }

    #[tokio::test]
    async fn parts_are_concatenated_in_order_and_end_on_a_newline() {
        let store = InMemory::new();
        let put = async |k: &str, v: &str| {
            store
                .put(&ObjectPath::from(k), PutPayload::from(v.to_string()))
                .await
                .unwrap();
        };
        put("out/job/Patient/Patient-10.ndjson", "{\"id\":\"c\"}\n").await;
        put("out/job/Patient/Patient-2.ndjson", "{\"id\":\"b\"}").await;
        put("out/job/Patient/Patient-1.ndjson", "{\"id\":\"a\"}\n\n").await;
        put("out/job/manifest.json", "{}").await;
        put("other/Patient/Patient-1.ndjson", "{\"id\":\"z\"}\n").await;
        let tmp = tempfile::tempdir().unwrap();
        let got = collect(&store, &ObjectPath::from("out/job"), tmp.path())
            .await
            .unwrap();
        assert_eq!((got.parts, got.ignored, got.written.total()), (3, 1, 3));
        let text = std::fs::read_to_string(tmp.path().join("Patient.ndjson")).unwrap();
        assert_eq!(text, "{\"id\":\"a\"}\n\n{\"id\":\"b\"}\n{\"id\":\"c\"}\n");
    }
}
