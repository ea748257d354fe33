//! The access ledger: every access to a record (permitted or refused) appended to a log the
//! patient reads, tamper-evident.
//!
//! Each entry carries the hash of the one before it and its own hash, an HMAC-SHA256 under a
//! key kept outside the database: editing, deleting or reordering entries breaks the chain, and
//! rewriting the whole chain needs the key. SQLite triggers refuse updates and deletes, so the
//! application itself cannot change history. `verify` walks the chain; `p360 ledger verify`
//! runs it.
//!
//! The ledger is also an outbox: each entry is mirrored to the lake as an AccessRecorded event
//! ([`access_event`], its id derived from the entry), and `published` marks the entries sent.
//! Whatever a failed publish left unmarked is sent again by [`Ledger::unpublished`]'s caller;
//! the event id makes a second send harmless. `published` is the only column that may change.

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use p360_events::PatientId;
use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

type HmacSha256 = Hmac<Sha256>;

/// The hash before the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("ledger unavailable: {0}")]
    Unavailable(String),
    #[error("ledger key: {0}")]
    Key(String),
}

/// What happened, as recorded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Access {
    pub at: DateTime<Utc>,
    pub patient: PatientId,
    /// The user id of who accessed.
    pub actor: String,
    pub role: String,
    /// `read` or `write`.
    pub action: String,
    /// Resource types touched (`Observation`, `DocumentReference`, …).
    pub resource_types: Vec<String>,
    /// Ids of the resources touched (capped; `resource_count` says how many there were).
    pub resource_ids: Vec<String>,
    pub resource_count: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purpose: Option<String>,
    /// `permit` or `deny`.
    pub outcome: String,
    /// The decision's rule (`grant`, `owner`, `grant_revoked`, …).
    pub rule: String,
    #[serde(default)]
    pub break_glass: bool,
}

/// A stored entry: the access, its place in the chain and its hashes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub seq: u64,
    #[serde(flatten)]
    pub access: Access,
    pub prev_hash: String,
    pub hash: String,
}

/// The newest entry of the chain: its sequence number and hash.
pub type Head = (u64, String);

/// Ids kept per entry; a listing of thousands keeps its count, not every id.
pub const MAX_IDS: usize = 200;

/// The outcome of a verification.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Verification {
    pub entries: u64,
    pub head: String,
    /// The first entry that does not verify, and why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub broken_at: Option<(u64, String)>,
}

#[derive(Clone)]
pub struct Ledger {
    conn: Arc<Mutex<Connection>>,
    key: Arc<Vec<u8>>,
    /// Appends from the API go through one writer thread that commits every access waiting
    /// in one transaction (group commit): one fsync for many concurrent readers, where one
    /// each made them queue behind each other's fsync.
    queue: std::sync::mpsc::Sender<Pending>,
}

struct Pending {
    access: Access,
    reply: tokio::sync::oneshot::Sender<Result<Entry, LedgerError>>,
}

/// Accesses committed together at most.
const GROUP: usize = 256;

/// The writer thread: waits for one access, takes whatever else is waiting, appends them all
/// in one transaction and answers each. Ends when every `Ledger` handle is gone.
fn writer(conn: Arc<Mutex<Connection>>, key: Arc<Vec<u8>>, rx: std::sync::mpsc::Receiver<Pending>) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < GROUP {
            match rx.try_recv() {
                Ok(p) => batch.push(p),
                Err(_) => break,
            }
        }
        let (accesses, replies): (Vec<Access>, Vec<_>) =
            batch.into_iter().map(|p| (p.access, p.reply)).unzip();
        let mut guard = conn.lock().unwrap_or_else(|p| p.into_inner());
        match append_all(&mut guard, &key, accesses) {
            Ok(entries) => {
                for (reply, entry) in replies.into_iter().zip(entries) {
                    let _ = reply.send(Ok(entry));
                }
            }
            Err(e) => {
                let why = e.to_string();
                for reply in replies {
                    let _ = reply.send(Err(LedgerError::Unavailable(why.clone())));
                }
            }
        }
    }
}

/// Appends `accesses` in order, in one transaction: all of them or none.
fn append_all(
    conn: &mut Connection,
    key: &[u8],
    accesses: Vec<Access>,
) -> Result<Vec<Entry>, LedgerError> {
    let tx = conn.transaction().map_err(db)?;
    let last: Option<(i64, String)> = tx
        .query_row(
            "SELECT seq, hash FROM ledger ORDER BY seq DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()
        .map_err(db)?;
    let (mut seq, mut prev) = match last {
        Some((s, h)) => (u64::try_from(s).unwrap_or(0), h),
        None => (0, GENESIS.to_owned()),
    };
    let mut out = Vec::with_capacity(accesses.len());
    for mut access in accesses {
        access.resource_ids.truncate(MAX_IDS);
        seq += 1;
        let h = hash(key, &prev, &access, seq)?;
        let body =
            serde_json::to_string(&access).map_err(|e| LedgerError::Unavailable(e.to_string()))?;
        tx.execute(
            "INSERT INTO ledger (seq, patient, at, body, prev_hash, hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                i64::try_from(seq).unwrap_or(i64::MAX),
                access.patient.as_str(),
                timestamp(access.at),
                body,
                prev,
                h
            ],
        )
        .map_err(db)?;
        out.push(Entry {
            seq,
            access,
            prev_hash: std::mem::replace(&mut prev, h.clone()),
            hash: h,
        });
    }
    tx.commit().map_err(db)?;
    Ok(out)
}

fn db(e: rusqlite::Error) -> LedgerError {
    LedgerError::Unavailable(format!("sqlite: {e}"))
}

fn hash(key: &[u8], prev: &str, access: &Access, seq: u64) -> Result<String, LedgerError> {
    let mut mac = HmacSha256::new_from_slice(key).map_err(|e| LedgerError::Key(e.to_string()))?;
    mac.update(prev.as_bytes());
    mac.update(&seq.to_be_bytes());
    // Field order is fixed by the struct, so the encoding is canonical.
    let body = serde_json::to_vec(access).map_err(|e| LedgerError::Unavailable(e.to_string()))?;
    mac.update(&body);
    Ok(hex::encode(mac.finalize().into_bytes()))
}

impl Ledger {
    /// Opens the ledger at `path`, chaining with `key` (at least 32 bytes).
    pub fn open(path: &Path, key: Vec<u8>) -> Result<Self, LedgerError> {
        if key.len() < 32 {
            return Err(LedgerError::Key(
                "the key must have at least 32 bytes".into(),
            ));
        }
        let conn = Connection::open(path).map_err(db)?;
        conn.execute_batch(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA busy_timeout=10000;
             CREATE TABLE IF NOT EXISTS ledger (
                seq INTEGER PRIMARY KEY, patient TEXT NOT NULL, at TEXT NOT NULL,
                body TEXT NOT NULL, prev_hash TEXT NOT NULL, hash TEXT NOT NULL);
             CREATE INDEX IF NOT EXISTS ledger_patient ON ledger (patient, seq);
             CREATE TABLE IF NOT EXISTS ledger_published (seq INTEGER PRIMARY KEY);
             CREATE TRIGGER IF NOT EXISTS ledger_no_update BEFORE UPDATE ON ledger
               BEGIN SELECT RAISE(ABORT, 'the access ledger is append-only'); END;
             CREATE TRIGGER IF NOT EXISTS ledger_no_delete BEFORE DELETE ON ledger
               BEGIN SELECT RAISE(ABORT, 'the access ledger is append-only'); END;",
        )
        .map_err(db)?;
        let (conn, key) = (Arc::new(Mutex::new(conn)), Arc::new(key));
        let (queue, rx) = std::sync::mpsc::channel();
        let (c, k) = (conn.clone(), key.clone());
        std::thread::Builder::new()
            .name("ledger-writer".into())
            .spawn(move || writer(c, k, rx))
            .map_err(|e| LedgerError::Unavailable(format!("starting the ledger writer: {e}")))?;
        Ok(Self { conn, key, queue })
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Appends an access; returns the stored entry. Blocking (SQLite): call from
    /// `spawn_blocking` or use [`Ledger::record`].
    pub fn append(&self, access: Access) -> Result<Entry, LedgerError> {
        append_all(&mut self.lock(), &self.key, vec![access])?
            .pop()
            .ok_or_else(|| LedgerError::Unavailable("nothing appended".into()))
    }

    /// [`Ledger::append`] off the async runtime, committed together with the other accesses
    /// waiting at the same moment; returns when the entry is durable.
    pub async fn record(&self, access: Access) -> Result<Entry, LedgerError> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.queue
            .send(Pending { access, reply })
            .map_err(|_| LedgerError::Unavailable("the ledger writer has stopped".into()))?;
        answer
            .await
            .map_err(|_| LedgerError::Unavailable("the ledger writer has stopped".into()))?
    }

    /// Marks an entry as mirrored to the lake.
    pub fn mark_published(&self, seq: u64) -> Result<(), LedgerError> {
        self.lock()
            .execute(
                "INSERT OR IGNORE INTO ledger_published (seq) VALUES (?1)",
                [i64::try_from(seq).unwrap_or(i64::MAX)],
            )
            .map_err(db)?;
        Ok(())
    }

    /// Entries not yet mirrored that were appended before `older_than` (so an append whose own
    /// publish is still under way is left to it), oldest first.
    pub fn unpublished(
        &self,
        older_than: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Entry>, LedgerError> {
        self.entries(
            "SELECT l.seq, l.body, l.prev_hash, l.hash FROM ledger l
             LEFT JOIN ledger_published p ON p.seq = l.seq
             WHERE p.seq IS NULL AND l.at < ?1 ORDER BY l.seq LIMIT ?2",
            params![
                timestamp(older_than),
                i64::try_from(limit).unwrap_or(i64::MAX)
            ],
        )
    }

    /// A patient's entries, newest first, from `before` (exclusive) back.
    pub fn for_patient(
        &self,
        patient: &PatientId,
        before: Option<u64>,
        limit: usize,
    ) -> Result<Vec<Entry>, LedgerError> {
        self.entries(
            "SELECT seq, body, prev_hash, hash FROM ledger
             WHERE patient = ?1 AND seq < ?2 ORDER BY seq DESC LIMIT ?3",
            params![
                patient.as_str(),
                before.map_or(i64::MAX, |b| i64::try_from(b).unwrap_or(i64::MAX)),
                i64::try_from(limit).unwrap_or(i64::MAX)
            ],
        )
    }

    /// The entries a query of (seq, body, prev_hash, hash) selects.
    fn entries(&self, sql: &str, args: impl rusqlite::Params) -> Result<Vec<Entry>, LedgerError> {
        Self::entries_of(&self.lock(), sql, args)
    }

    fn entries_of(
        conn: &Connection,
        sql: &str,
        args: impl rusqlite::Params,
    ) -> Result<Vec<Entry>, LedgerError> {
        let mut stmt = conn.prepare_cached(sql).map_err(db)?;
        let rows = stmt
            .query_map(args, |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                ))
            })
            .map_err(db)?
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(db)?;
        rows.into_iter().map(entry_of).collect()
    }

    /// The newest entry's sequence number and hash (`None` while the ledger is empty).
    pub fn head(&self) -> Result<Option<Head>, LedgerError> {
        Self::head_of(&self.lock())
    }

    fn head_of(conn: &Connection) -> Result<Option<Head>, LedgerError> {
        conn.query_row(
            "SELECT seq, hash FROM ledger ORDER BY seq DESC LIMIT 1",
            [],
            |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)),
        )
        .optional()
        .map_err(db)
        .map(|h| h.map(|(seq, hash)| (u64::try_from(seq).unwrap_or(0), hash)))
    }

    /// The stored hash of entry `seq`, if there is one.
    pub fn hash_at(&self, seq: u64) -> Result<Option<String>, LedgerError> {
        self.lock()
            .query_row(
                "SELECT hash FROM ledger WHERE seq = ?1",
                [i64::try_from(seq).unwrap_or(i64::MAX)],
                |r| r.get(0),
            )
            .optional()
            .map_err(db)
    }

    /// A patient's entries (as [`Ledger::for_patient`]) together with the head of the whole
    /// chain at the moment they were read, so the patient can later check that what they saw
    /// is still part of the chain.
    pub fn for_patient_at_head(
        &self,
        patient: &PatientId,
        before: Option<u64>,
        limit: usize,
    ) -> Result<(Vec<Entry>, Option<Head>), LedgerError> {
        let conn = self.lock();
        let entries = Self::entries_of(
            &conn,
            "SELECT seq, body, prev_hash, hash FROM ledger
             WHERE patient = ?1 AND seq < ?2 ORDER BY seq DESC LIMIT ?3",
            params![
                patient.as_str(),
                before.map_or(i64::MAX, |b| i64::try_from(b).unwrap_or(i64::MAX)),
                i64::try_from(limit).unwrap_or(i64::MAX)
            ],
        )?;
        Ok((entries, Self::head_of(&conn)?))
    }

    /// Break-glass entries (the sessions opened and every access under them) recorded at or
    /// after `since`, oldest first: what an administrator reviews.
    pub fn break_glass_since(
        &self,
        since: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Entry>, LedgerError> {
        self.entries(
            "SELECT seq, body, prev_hash, hash FROM ledger
             WHERE at >= ?1 AND json_extract(body, '$.break_glass') = 1 ORDER BY seq LIMIT ?2",
            params![timestamp(since), i64::try_from(limit).unwrap_or(i64::MAX)],
        )
    }

    /// Walks the whole chain: sequence without gaps, each entry's `prev_hash` equal to the hash
    /// before it, each hash recomputed under the key, and the indexed columns (`patient`, `at`:
    /// what the patient's view selects on) equal to the hashed content, so an entry cannot be
    /// re-attributed to another patient by editing a column.
    pub fn verify(&self) -> Result<Verification, LedgerError> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare("SELECT seq, patient, at, body, prev_hash, hash FROM ledger ORDER BY seq")
            .map_err(db)?;
        let mut rows = stmt.query([]).map_err(db)?;
        let mut expected_seq = 1u64;
        let mut prev = GENESIS.to_owned();
        let mut n = 0u64;
        while let Some(r) = rows.next().map_err(db)? {
            let raw_seq: i64 = r.get(0).map_err(db)?;
            let patient: String = r.get(1).map_err(db)?;
            let at: String = r.get(2).map_err(db)?;
            let body: String = r.get(3).map_err(db)?;
            let stored_prev: String = r.get(4).map_err(db)?;
            let stored_hash: String = r.get(5).map_err(db)?;
            let broken = |seq: u64, why: String| Verification {
                entries: n,
                head: prev.clone(),
                broken_at: Some((seq, why)),
            };
            // A tampered sequence number can be anything SQLite stores, zero and negative
            // numbers included.
            let seq = match u64::try_from(raw_seq) {
                Ok(s) if s >= expected_seq => s,
                _ => {
                    return Ok(broken(
                        expected_seq,
                        format!("an entry is numbered {raw_seq}, out of sequence"),
                    ));
                }
            };
            if seq != expected_seq {
                return Ok(broken(
                    expected_seq,
                    format!("entries {expected_seq} to {} are missing", seq - 1),
                ));
            }
            if stored_prev != prev {
                return Ok(broken(
                    seq,
                    "it does not chain to the entry before it".into(),
                ));
            }
            let access: Access = match serde_json::from_str(&body) {
                Ok(a) => a,
                Err(_) => return Ok(broken(seq, "its content is unreadable".into())),
            };
            if hash(&self.key, &prev, &access, seq)? != stored_hash {
                return Ok(broken(seq, "its content does not match its hash".into()));
            }
            if patient != access.patient.as_str() {
                return Ok(broken(
                    seq,
                    "its patient column differs from the hashed entry (re-attributed)".into(),
                ));
            }
            if at != timestamp(access.at) {
                return Ok(broken(
                    seq,
                    "its time column differs from the hashed entry".into(),
                ));
            }
            prev = stored_hash;
            expected_seq += 1;
            n += 1;
        }
        Ok(Verification {
            entries: n,
            head: prev,
            broken_at: None,
        })
    }

    /// The key's MAC over `parts` (checkpoints are signed with the ledger's key).
    pub(crate) fn mac(&self, parts: &[&[u8]]) -> Result<String, LedgerError> {
        let mut mac =
            HmacSha256::new_from_slice(&self.key).map_err(|e| LedgerError::Key(e.to_string()))?;
        for p in parts {
            mac.update(&(p.len() as u64).to_be_bytes());
            mac.update(p);
        }
        Ok(hex::encode(mac.finalize().into_bytes()))
    }
}

/// The stored form of an instant (fixed width, so it also sorts as text).
fn timestamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

fn entry_of(
    (seq, body, prev_hash, hash): (i64, String, String, String),
) -> Result<Entry, LedgerError> {
    Ok(Entry {
        seq: u64::try_from(seq).unwrap_or(0),
        access: serde_json::from_str(&body)
            .map_err(|e| LedgerError::Unavailable(format!("entry {seq} is unreadable: {e}")))?,
        prev_hash,
        hash,
    })
}

/// The lake's copy of an entry: an AccessRecorded event whose id derives from the entry, so
/// sending it twice is one row.
pub fn access_event(entry: &Entry) -> Result<p360_events::Envelope, LedgerError> {
    use p360_events::{AccessOutcome, AccessRecorded, Envelope, Event, EventId, Role, UserId};
    let a = &entry.access;
    let bad = |what: &str| LedgerError::Unavailable(format!("entry {}: {what}", entry.seq));
    let purpose = match a.purpose.as_deref() {
        Some(p) => crate::model::Purpose::parse(p)
            .map(|p| p.hl7_code())
            .ok_or_else(|| bad("unknown purpose"))?,
        None => "unspecified",
    };
    Ok(Envelope::new(
        EventId::for_key("access", &entry.seq.to_string()),
        "/p360/consent/ledger",
        Event::AccessRecorded(AccessRecorded {
            patient_id: a.patient.clone(),
            ledger_seq: entry.seq,
            actor_id: UserId::parse(&a.actor).map_err(|_| bad("bad actor id"))?,
            actor_role: Role::parse_user_role(&a.role).ok_or_else(|| bad("bad role"))?,
            grant_id: a.grant_id.clone(),
            resource_types: a.resource_types.clone(),
            purpose: purpose.to_owned(),
            outcome: if a.outcome == "permit" {
                AccessOutcome::Permit
            } else {
                AccessOutcome::Deny
            },
            break_glass: a.break_glass,
            at: a.at,
        }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn access(patient: &str, actor: &str) -> Access {
        Access {
            at: Utc::now(),
            patient: PatientId::parse(patient).unwrap(),
            actor: actor.into(),
            role: "provider".into(),
            action: "read".into(),
            resource_types: vec!["Observation".into()],
            resource_ids: vec!["f-1".into(), "f-2".into()],
            resource_count: 2,
            grant_id: Some("g-1".into()),
            purpose: Some("treatment".into()),
            outcome: "permit".into(),
            rule: "grant".into(),
            break_glass: false,
        }
    }

    #[test]
    fn a_chain_verifies_and_any_edit_breaks_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.db");
        let ledger = Ledger::open(&path, vec![7u8; 32]).unwrap();
        for i in 0..5 {
            ledger
                .append(access(if i % 2 == 0 { "pat-1" } else { "pat-2" }, "dr-1"))
                .unwrap();
        }
        let v = ledger.verify().unwrap();
        assert_eq!((v.entries, v.broken_at), (5, None));
        let mine = ledger
            .for_patient(&PatientId::parse("pat-1").unwrap(), None, 10)
            .unwrap();
        assert_eq!(mine.iter().map(|e| e.seq).collect::<Vec<_>>(), [5, 3, 1]);

        // The application cannot change history.
        let conn = Connection::open(&path).unwrap();
        assert!(
            conn.execute("DELETE FROM ledger WHERE seq = 2", [])
                .is_err()
        );
        assert!(
            conn.execute("UPDATE ledger SET body = '{}' WHERE seq = 2", [])
                .is_err()
        );
        // Someone with the file who drops the triggers is caught by the chain.
        conn.execute_batch("DROP TRIGGER ledger_no_update; DROP TRIGGER ledger_no_delete;")
            .unwrap();
        let body: String = conn
            .query_row("SELECT body FROM ledger WHERE seq = 3", [], |r| r.get(0))
            .unwrap();
        conn.execute(
            "UPDATE ledger SET body = ?1 WHERE seq = 3",
            [body.replace("dr-1", "dr-2")],
        )
        .unwrap();
        let v = ledger.verify().unwrap();
        assert_eq!(v.entries, 2);
        assert_eq!(v.broken_at.as_ref().map(|b| b.0), Some(3));
        assert!(v.broken_at.unwrap().1.contains("does not match its hash"));

        conn.execute("UPDATE ledger SET body = ?1 WHERE seq = 3", [body])
            .unwrap();
        assert_eq!(ledger.verify().unwrap().broken_at, None, "restored");
        conn.execute("DELETE FROM ledger WHERE seq = 4", [])
            .unwrap();
        let v = ledger.verify().unwrap();
        assert!(v.broken_at.unwrap().1.contains("missing"));

        // The outbox: entries older than the cut-off and not marked are to be sent.
        let later = Utc::now() + chrono::Duration::seconds(1);
        assert_eq!(ledger.unpublished(later, 10).unwrap().len(), 4);
        ledger.mark_published(1).unwrap();
        ledger.mark_published(1).unwrap();
        let left = ledger.unpublished(later, 10).unwrap();
        assert_eq!(left.iter().map(|e| e.seq).collect::<Vec<_>>(), [2, 3, 5]);
        let event = access_event(&left[0]).unwrap();
        assert_eq!(
            event.id,
            access_event(&left[0]).unwrap().id,
            "the same id every time"
        );
        assert!(
            ledger
                .unpublished(Utc::now() - chrono::Duration::hours(1), 10)
                .unwrap()
                .is_empty()
        );

        // Another key cannot have written this chain.
        let other = Ledger::open(&path, vec![8u8; 32]).unwrap();
        assert_eq!(other.verify().unwrap().broken_at.map(|b| b.0), Some(1));
    }

    /// A ledger with five entries and its triggers dropped, as someone with the file would.
    fn tamperable() -> (tempfile::TempDir, Ledger, Connection) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.db");
        let ledger = Ledger::open(&path, vec![7u8; 32]).unwrap();
        for i in 0..5 {
            ledger
                .append(access(if i % 2 == 0 { "pat-1" } else { "pat-2" }, "dr-1"))
                .unwrap();
        }
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch("DROP TRIGGER ledger_no_update; DROP TRIGGER ledger_no_delete;")
            .unwrap();
        (dir, ledger, conn)
    }

    fn broken(ledger: &Ledger) -> (u64, String) {
        ledger
            .verify()
            .unwrap()
            .broken_at
            .expect("tampering detected")
    }

    #[test]
    fn re_attributed_entries_and_their_times_are_caught() {
        let (_dir, ledger, conn) = tamperable();
        // Moving entry 3 to another patient hides it from pat-1's view: verify says so.
        conn.execute("UPDATE ledger SET patient = 'pat-9' WHERE seq = 3", [])
            .unwrap();
        let pat1 = PatientId::parse("pat-1").unwrap();
        assert_eq!(ledger.for_patient(&pat1, None, 10).unwrap().len(), 2);
        let (seq, why) = broken(&ledger);
        assert_eq!(seq, 3);
        assert!(why.contains("re-attributed"), "{why}");
        conn.execute("UPDATE ledger SET patient = 'pat-1' WHERE seq = 3", [])
            .unwrap();
        assert_eq!(ledger.verify().unwrap().broken_at, None);

        conn.execute(
            "UPDATE ledger SET at = '2020-01-01T00:00:00.000000Z' WHERE seq = 2",
            [],
        )
        .unwrap();
        let (seq, why) = broken(&ledger);
        assert_eq!(seq, 2);
        assert!(why.contains("time column"), "{why}");
    }

    #[test]
    fn reordered_entries_and_odd_numbers_are_caught() {
        let (_dir, ledger, conn) = tamperable();
        // Swap entries 2 and 3 (everything but their numbers).
        conn.execute_batch(
            "UPDATE ledger SET seq = -2 WHERE seq = 2;
             UPDATE ledger SET seq = 2 WHERE seq = 3;
             UPDATE ledger SET seq = 3 WHERE seq = -2;",
        )
        .unwrap();
        let (seq, why) = broken(&ledger);
        assert_eq!(seq, 2);
        assert!(why.contains("does not chain"), "{why}");

        // Numbers at or below zero (SQLite stores any integer) are reported, not underflowed.
        let (_dir, ledger, conn) = tamperable();
        conn.execute("UPDATE ledger SET seq = 0 WHERE seq = 1", [])
            .unwrap();
        let (seq, why) = broken(&ledger);
        assert_eq!(seq, 1);
        assert!(why.contains("numbered 0"), "{why}");
        conn.execute("UPDATE ledger SET seq = -5 WHERE seq = 0", [])
            .unwrap();
        assert!(broken(&ledger).1.contains("numbered -5"));
    }

    #[test]
    fn the_head_and_the_patient_view_are_read_together() {
        let (_dir, ledger, _conn) = tamperable();
        let pat2 = PatientId::parse("pat-2").unwrap();
        let (entries, head) = ledger.for_patient_at_head(&pat2, None, 10).unwrap();
        assert_eq!(entries.iter().map(|e| e.seq).collect::<Vec<_>>(), [4, 2]);
        let (seq, hash) = head.unwrap();
        assert_eq!(seq, 5);
        assert_eq!(ledger.hash_at(5).unwrap().as_deref(), Some(hash.as_str()));
        assert_eq!(ledger.head().unwrap(), Some((seq, hash)));
    }

    #[test]
    fn break_glass_entries_are_listed_for_review() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::open(&dir.path().join("ledger.db"), vec![7u8; 32]).unwrap();
        ledger.append(access("pat-1", "dr-1")).unwrap();
        let mut bg = access("pat-1", "dr-2");
        bg.break_glass = true;
        ledger.append(bg.clone()).unwrap();
        ledger.append(bg).unwrap();
        let since = Utc::now() - chrono::Duration::minutes(1);
        let got = ledger.break_glass_since(since, 10).unwrap();
        assert_eq!(got.iter().map(|e| e.seq).collect::<Vec<_>>(), [2, 3]);
        let later = Utc::now() + chrono::Duration::minutes(1);
        assert!(ledger.break_glass_since(later, 10).unwrap().is_empty());
    }
}
