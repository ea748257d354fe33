//! Checkpoints of the ledger's head, kept outside its database.
//!
//! The hash chain proves that no entry was edited, removed from the middle or reordered, but
//! not that the newest entries are all there: cut the tail and what is left is still a valid
//! chain. So the head (sequence number + hash) is written, periodically and at shutdown, as an
//! immutable object `ledger/checkpoints/<seq>.json` (create-only; on AWS in a bucket with
//! S3 Object Lock, where not even the account's root user can delete it before its retention
//! ends). [`verify`] walks the chain, then holds it against the newest checkpoint: a ledger
//! shorter than a checkpoint, or one whose entry at the checkpoint's number has another hash,
//! has lost or rewritten history. Entries after the newest checkpoint are chained but not yet
//! anchored, and the report says so.
//!
//! Locally the checkpoints are files in the data directory's object store: they catch
//! accidents and edits with SQLite tools, not someone who can also delete files there.

use crate::ledger::{Ledger, LedgerError, Verification};
use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use serde::{Deserialize, Serialize};

/// Where checkpoints live in the object store.
pub const PREFIX: &str = "ledger/checkpoints";

/// The head of the ledger at one moment, signed with the ledger key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub seq: u64,
    pub hash: String,
    pub at: DateTime<Utc>,
    /// HMAC-SHA256 under the ledger key over (seq, hash, at).
    pub mac: String,
}

fn key_of(seq: u64) -> Path {
    // Zero-padded, so the newest checkpoint is the greatest key.
    Path::from(format!("{PREFIX}/{seq:020}.json"))
}

fn mac(ledger: &Ledger, seq: u64, hash: &str, at: DateTime<Utc>) -> Result<String, LedgerError> {
    ledger.mac(&[
        b"p360-ledger-checkpoint",
        &seq.to_be_bytes(),
        hash.as_bytes(),
        at.to_rfc3339().as_bytes(),
    ])
}

fn store_error(e: object_store::Error) -> LedgerError {
    LedgerError::Unavailable(format!("checkpoint store: {e}"))
}

/// Writes a checkpoint of the current head, unless the ledger is empty. Writing the same head
/// twice is harmless (the object exists already and is left as it is). Blocking SQLite reads
/// happen on the caller's thread: call it from a blocking-tolerant context or accept a short
/// stall (it reads one row).
pub async fn write(
    ledger: &Ledger,
    store: &dyn ObjectStore,
    at: DateTime<Utc>,
) -> Result<Option<Checkpoint>, LedgerError> {
    let Some((seq, hash)) = ledger.head()? else {
        return Ok(None);
    };
    let cp = Checkpoint {
        mac: mac(ledger, seq, &hash, at)?,
        seq,
        hash,
        at,
    };
    let body = serde_json::to_vec(&cp).map_err(|e| LedgerError::Unavailable(e.to_string()))?;
    let opts = PutOptions {
        mode: PutMode::Create,
        ..PutOptions::default()
    };
    match store
        .put_opts(&key_of(seq), PutPayload::from(body), opts)
        .await
    {
        Ok(_) | Err(object_store::Error::AlreadyExists { .. }) => Ok(Some(cp)),
        Err(e) => Err(store_error(e)),
    }
}

/// The newest checkpoint, if any (and its object key).
pub async fn latest(store: &dyn ObjectStore) -> Result<Option<(String, Checkpoint)>, LedgerError> {
    let metas: Vec<_> = store
        .list(Some(&Path::from(PREFIX)))
        .try_collect()
        .await
        .map_err(store_error)?;
    let Some(newest) = metas
        .iter()
        .map(|m| &m.location)
        .filter(|l| l.as_ref().ends_with(".json"))
        .max_by(|a, b| a.as_ref().cmp(b.as_ref()))
    else {
        return Ok(None);
    };
    let bytes = store
        .get(newest)
        .await
        .map_err(store_error)?
        .bytes()
        .await
        .map_err(store_error)?;
    let cp: Checkpoint = serde_json::from_slice(&bytes)
        .map_err(|_| LedgerError::Unavailable(format!("checkpoint {newest} is unreadable")))?;
    Ok(Some((newest.to_string(), cp)))
}

/// What [`verify`] found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Report {
    /// The chain walk.
    pub chain: Verification,
    /// The newest checkpoint held against the chain, and its object key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<(String, Checkpoint)>,
    /// What is wrong, if anything: a broken chain, or a chain that disagrees with the
    /// checkpoint (truncated, rewritten) or a checkpoint the key did not sign.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

impl Report {
    pub fn ok(&self) -> bool {
        self.problem.is_none()
    }

    /// One line for people: what verified, how far it is anchored, or what is wrong.
    pub fn summary(&self) -> String {
        if let Some(p) = &self.problem {
            return p.clone();
        }
        let n = self.chain.entries;
        match &self.checkpoint {
            None => format!(
                "ledger verified: {n} entries, head {}; no checkpoint yet, so a cut of the newest entries could not be detected",
                self.chain.head
            ),
            Some((key, cp)) if cp.seq == n => format!(
                "ledger verified: {n} entries, head {}; complete up to checkpoint {key} ({})",
                self.chain.head,
                cp.at.to_rfc3339()
            ),
            Some((key, cp)) => format!(
                "ledger verified: {n} entries, head {}; complete up to entry {} (checkpoint {key}, {}); entries {} to {n} are chained but not yet checkpointed",
                self.chain.head,
                cp.seq,
                cp.at.to_rfc3339(),
                cp.seq + 1
            ),
        }
    }
}

/// Walks the chain and holds it against the newest checkpoint.
pub async fn verify(ledger: &Ledger, store: &dyn ObjectStore) -> Result<Report, LedgerError> {
    let chain = ledger.verify()?;
    let checkpoint = latest(store).await?;
    let mut report = Report {
        problem: None,
        checkpoint: checkpoint.clone(),
        chain: chain.clone(),
    };
    if let Some((seq, why)) = &chain.broken_at {
        report.problem = Some(format!(
            "ledger broken at entry {seq}: {why} ({} entries before it verify)",
            chain.entries
        ));
        return Ok(report);
    }
    let Some((key, cp)) = checkpoint else {
        return Ok(report);
    };
    if mac(ledger, cp.seq, &cp.hash, cp.at)? != cp.mac {
        report.problem = Some(format!(
            "checkpoint {key} was not written with this ledger's key"
        ));
        return Ok(report);
    }
    if chain.entries < cp.seq {
        report.problem = Some(format!(
            "ledger truncated: it ends at entry {}, but checkpoint {key} ({}) records entry {}; entries {} to {} were removed",
            chain.entries,
            cp.at.to_rfc3339(),
            cp.seq,
            chain.entries + 1,
            cp.seq
        ));
        return Ok(report);
    }
    if ledger.hash_at(cp.seq)?.as_deref() != Some(cp.hash.as_str()) {
        report.problem = Some(format!(
            "ledger rewritten: entry {} differs from checkpoint {key} ({})",
            cp.seq,
            cp.at.to_rfc3339()
        ));
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::Access;
    use object_store::memory::InMemory;
    use p360_events::PatientId;

    fn access() -> Access {
        Access {
            at: Utc::now(),
            patient: PatientId::parse("pat-1").unwrap(),
            actor: "dr-1".into(),
            role: "provider".into(),
            action: "read".into(),
            resource_types: vec![],
            resource_ids: vec![],
            resource_count: 0,
            grant_id: None,
            purpose: None,
            outcome: "deny".into(),
            rule: "no_grant".into(),
            break_glass: false,
        }
    }

    #[tokio::test]
    async fn a_cut_tail_and_a_forged_checkpoint_are_caught() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.db");
        let ledger = Ledger::open(&path, vec![7u8; 32]).unwrap();
        let store = InMemory::new();
        assert!(write(&ledger, &store, Utc::now()).await.unwrap().is_none());
        let report = verify(&ledger, &store).await.unwrap();
        assert!(report.ok() && report.summary().contains("no checkpoint yet"));

        for _ in 0..4 {
            ledger.append(access()).unwrap();
        }
        let cp = write(&ledger, &store, Utc::now()).await.unwrap().unwrap();
        assert_eq!(cp.seq, 4);
        // The same head again is harmless; the object is immutable.
        write(&ledger, &store, Utc::now()).await.unwrap();
        ledger.append(access()).unwrap();
        let report = verify(&ledger, &store).await.unwrap();
        assert!(report.ok(), "{}", report.summary());
        assert!(
            report
                .summary()
                .contains("entries 5 to 5 are chained but not yet checkpointed"),
            "{}",
            report.summary()
        );

        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch("DROP TRIGGER ledger_no_delete; DELETE FROM ledger WHERE seq >= 3;")
            .unwrap();
        let report = verify(&ledger, &store).await.unwrap();
        assert!(!report.ok());
        assert!(
            report
                .summary()
                .contains("ledger truncated: it ends at entry 2")
                && report.summary().contains("entries 3 to 4 were removed"),
            "{}",
            report.summary()
        );

        // A checkpoint the key did not sign is reported as such.
        let mut fake = cp.clone();
        fake.seq = 99;
        store
            .put(
                &key_of(99),
                PutPayload::from(serde_json::to_vec(&fake).unwrap()),
            )
            .await
            .unwrap();
        let report = verify(&ledger, &store).await.unwrap();
        assert!(
            report
                .summary()
                .contains("not written with this ledger's key"),
            "{}",
            report.summary()
        );
    }
}
