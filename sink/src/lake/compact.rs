//! Compaction: rewrites a day's small files as one, drops the rows of members who withdrew
//! from analytics (their `consent_changes` rows stay, so that views keep excluding them),
//! and keeps one row per `change_id` (a repeated delivery).
//!
//! It runs inside the lake sink's flusher, between flushes (the ledger has one writer), and
//! goes through the ledger like a flush: a `pending` entry naming the new file, the file,
//! the entry `committed` with the files it replaces, then those files are deleted. A crash
//! before the commit is rolled back like a flush; after it, the next run deletes the replaced
//! files still there (meanwhile a row may be visible twice, and readers keep one per
//! `change_id`).

use super::ledger::{Entry, Ledger, State};
use super::tables::Table;
use arrow_array::{Array, BooleanArray, RecordBatch, StringArray};
use bytes::Bytes;
use chrono::Utc;
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

/// What a compaction did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Compacted {
    pub partitions: usize,
    pub files_read: usize,
    pub files_written: usize,
    /// Rows of withdrawn members dropped.
    pub withdrawn_rows: usize,
    /// Rows dropped as repeats of a change already kept.
    pub duplicate_rows: usize,
}

/// Tables whose rows belong to a member's analytics data (the consent log is not: it is what
/// keeps the member out).
fn purgeable(t: Table) -> bool {
    t != Table::ConsentChanges
}

/// The patient keys whose latest consent row withdraws from population analytics.
pub async fn withdrawn(
    store: &Arc<dyn ObjectStore>,
    prefix: &str,
) -> Result<HashSet<String>, String> {
    let mut latest: BTreeMap<String, (i64, bool)> = BTreeMap::new();
    for file in files_of(store, prefix, Table::ConsentChanges).await? {
        for batch in read(store, &file).await? {
            let keys = strings(&batch, "patient_key")?;
            let at = batch
                .column_by_name("changed_at")
                .and_then(|c| {
                    c.as_any()
                        .downcast_ref::<arrow_array::TimestampMicrosecondArray>()
                })
                .ok_or("consent_changes.changed_at is not a timestamp")?;
            let population = batch
                .column_by_name("population_analytics")
                .and_then(|c| c.as_any().downcast_ref::<BooleanArray>())
                .ok_or("consent_changes.population_analytics is not boolean")?;
            for i in 0..batch.num_rows() {
                let entry = latest
                    .entry(keys.value(i).to_owned())
                    .or_insert((i64::MIN, true));
                if at.value(i) >= entry.0 {
                    *entry = (at.value(i), population.value(i));
                }
            }
        }
    }
    Ok(latest
        .into_iter()
        .filter(|(_, (_, opted_in))| !opted_in)
        .map(|(k, _)| k)
        .collect())
}

/// Compacts every partition with more than `min_files` files or with rows of a withdrawn
/// member. Only files of committed ledger entries are read (a flush in progress is not).
pub async fn compact(
    store: &Arc<dyn ObjectStore>,
    prefix: &str,
    min_files: usize,
) -> Result<Compacted, String> {
    let prefix = prefix.trim_end_matches('/');
    let ledger = Ledger::new(store.clone(), prefix);
    let entries = ledger.entries().await.map_err(|e| e.to_string())?;
    // Finish earlier compactions that crashed after their commit.
    let mut committed: HashSet<String> = HashSet::new();
    for e in &entries {
        if e.state == State::Committed {
            for old in &e.replaces {
                match store.delete(&Path::from(old.as_str())).await {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                    Err(err) => return Err(format!("deleting a compacted file: {err}")),
                }
            }
            committed.extend(e.files.iter().cloned());
        }
    }
    for e in &entries {
        for old in &e.replaces {
            committed.remove(old);
        }
    }
    let withdrawn = withdrawn(store, prefix).await?;
    let mut out = Compacted::default();
    for table in Table::ALL {
        let mut by_day: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for file in files_of(store, prefix, table).await? {
            if !committed.contains(&file) {
                continue;
            }
            let day = file
                .rsplit_once('/')
                .map(|(d, _)| d.to_owned())
                .unwrap_or_default();
            by_day.entry(day).or_default().push(file);
        }
        for (day, files) in by_day {
            let mut batches = Vec::new();
            for f in &files {
                batches.extend(read(store, f).await?);
            }
            let has_withdrawn = purgeable(table)
                && !withdrawn.is_empty()
                && batches.iter().any(|b| {
                    strings(b, "patient_key")
                        .is_ok_and(|k| k.iter().flatten().any(|v| withdrawn.contains(v)))
                });
            if files.len() <= min_files && !has_withdrawn {
                continue;
            }
            let mut seen = HashSet::new();
            let mut kept = Vec::new();
            for b in &batches {
                let keys = strings(b, "patient_key")?;
                let changes = strings(b, "change_id")?;
                let mut keep = Vec::with_capacity(b.num_rows());
                for i in 0..b.num_rows() {
                    let gone = purgeable(table) && withdrawn.contains(keys.value(i));
                    let repeat = !seen.insert(changes.value(i).to_owned());
                    out.withdrawn_rows += usize::from(gone);
                    out.duplicate_rows += usize::from(!gone && repeat);
                    keep.push(!gone && !repeat);
                }
                let filtered =
                    arrow_select::filter::filter_record_batch(b, &BooleanArray::from(keep))
                        .map_err(|e| e.to_string())?;
                if filtered.num_rows() > 0 {
                    kept.push(filtered);
                }
            }
            let batch_id = format!(
                "compact-{}-{}",
                Utc::now().format("%Y%m%dT%H%M%S"),
                hex::encode(rand::random::<[u8; 6]>())
            );
            let new_file = format!("{day}/part-{batch_id}.parquet");
            let mut entry = Entry {
                batch_id,
                state: State::Pending,
                created_at: Utc::now(),
                commits: Vec::new(),
                files: if kept.is_empty() {
                    Vec::new()
                } else {
                    vec![new_file.clone()]
                },
                replaces: Vec::new(),
            };
            ledger.write(&entry).await.map_err(|e| e.to_string())?;
            if !kept.is_empty() {
                let bytes = write(table, &kept)?;
                store
                    .put(&Path::from(new_file.as_str()), PutPayload::from(bytes))
                    .await
                    .map_err(|e| format!("writing {new_file}: {e}"))?;
                out.files_written += 1;
            }
            entry.state = State::Committed;
            entry.replaces = files.clone();
            ledger.write(&entry).await.map_err(|e| e.to_string())?;
            for f in &files {
                match store.delete(&Path::from(f.as_str())).await {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                    Err(e) => return Err(format!("deleting {f}: {e}")),
                }
            }
            out.partitions += 1;
            out.files_read += files.len();
        }
    }
    if out.partitions > 0 {
        tracing::info!(
            partitions = out.partitions,
            files_read = out.files_read,
            files_written = out.files_written,
            withdrawn_rows = out.withdrawn_rows,
            duplicate_rows = out.duplicate_rows,
            "lake compacted"
        );
    }
    Ok(out)
}

async fn files_of(
    store: &Arc<dyn ObjectStore>,
    prefix: &str,
    table: Table,
) -> Result<Vec<String>, String> {
    let dir = Path::from(format!("{}/{}", prefix.trim_end_matches('/'), table.name()));
    let metas: Vec<_> = store
        .list(Some(&dir))
        .try_collect()
        .await
        .map_err(|e| format!("listing {}: {e}", table.name()))?;
    let mut files: Vec<String> = metas
        .into_iter()
        .map(|m| m.location.to_string())
        .filter(|k| k.ends_with(".parquet"))
        .collect();
    files.sort();
    Ok(files)
}

async fn read(store: &Arc<dyn ObjectStore>, key: &str) -> Result<Vec<RecordBatch>, String> {
    let bytes: Bytes = store
        .get(&Path::from(key))
        .await
        .map_err(|e| format!("reading {key}: {e}"))?
        .bytes()
        .await
        .map_err(|e| format!("reading {key}: {e}"))?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)
        .and_then(|b| b.build())
        .map_err(|e| format!("{key} is not a readable Parquet file: {e}"))?;
    reader
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{key}: {e}"))
}

fn strings<'a>(batch: &'a RecordBatch, column: &str) -> Result<&'a StringArray, String> {
    batch
        .column_by_name(column)
        .and_then(|c| c.as_any().downcast_ref::<StringArray>())
        .ok_or_else(|| format!("column {column} missing or not a string"))
}

/// The rows as one file of the table's current schema (older files read as that schema: a
/// file of another one fails here, before anything is replaced).
fn write(table: Table, batches: &[RecordBatch]) -> Result<Bytes, String> {
    let schema = table.schema();
    let props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_created_by(format!("p360 {}", env!("CARGO_PKG_VERSION")))
        .build();
    let mut buf = Vec::new();
    let mut writer =
        ArrowWriter::try_new(&mut buf, schema.clone(), Some(props)).map_err(|e| e.to_string())?;
    for b in batches {
        let b = RecordBatch::try_new(schema.clone(), b.columns().to_vec()).map_err(|e| {
            format!(
                "{}: a file's columns differ from the table's schema: {e}",
                table.name()
            )
        })?;
        writer.write(&b).map_err(|e| e.to_string())?;
    }
    writer.close().map_err(|e| e.to_string())?;
    Ok(Bytes::from(buf))
}
