//! The embedded durable queue: one SQLite database in WAL mode, written by one thread.
//!
//! # Why a single writer thread
//! SQLite allows one writer at a time, and a durable commit costs an fsync (milliseconds on this
//! class of disk). Every operation (send, receive, ack, nack, extend…) is a command on a channel;
//! the writer drains whatever is waiting, applies it all in **one** transaction (each operation
//! under its own savepoint, so one failing operation does not undo the others) and commits once.
//! That is group commit: under load, hundreds of sends and acks share one fsync, and with a
//! single caller the latency is one commit. Callers get their reply only after the commit, so a
//! returned `send` is durable and a returned `ack` will not be redelivered.
//!
//! # Layout
//! - `queues`: declared queues and their policies (so a second process, e.g. `p360 dlq`, knows them);
//! - `messages`: live messages; `lease` is the current holder's token, `visible_at` the time the
//!   message may be delivered (again);
//! - `acked`: ids acked within the dedup window, so a re-sent duplicate is dropped;
//! - `dead_letters`: messages that exhausted their attempts, with the last error.

use crate::{
    DeadLetter, Delivery, NackOutcome, OutgoingMessage, Queue, QueueError, QueuePolicy, QueueStats,
    Receipt, Result,
};
use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::{Notify, oneshot};

/// Most operations applied in one transaction; bounds commit latency under a flood.
const MAX_GROUP: usize = 1024;
/// Fallback poll while waiting in `receive`: catches retries whose backoff ran out and messages
/// sent by another process, which the in-process notification does not see.
const IDLE_POLL: Duration = Duration::from_millis(200);
/// Longest error text kept with a dead letter.
const MAX_ERROR_LEN: usize = 2048;

/// Durability of each commit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Durability {
    /// `synchronous=FULL`: every commit is fsynced; survives power loss.
    #[default]
    Full,
    /// `synchronous=NORMAL`: survives a process crash (kill -9), not a power loss. For tests
    /// and benchmarks that want to see the cost of fsync.
    Normal,
}

/// Handle to the embedded queue. Cheap to clone; all clones share the writer thread.
#[derive(Clone)]
pub struct EmbeddedQueue {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    tx: mpsc::Sender<Command>,
    /// Woken after a commit that made messages visible.
    arrivals: Notify,
    /// Transactions committed and operations applied: their ratio is the group-commit factor.
    commits: AtomicU64,
    ops: AtomicU64,
}

/// Counters of the writer thread.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WriterStats {
    pub commits: u64,
    pub ops: u64,
}

impl std::fmt::Debug for EmbeddedQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedQueue")
            .field("path", &self.inner.path)
            .finish()
    }
}

enum Op {
    Declare {
        queue: String,
        policy: QueuePolicy,
    },
    Send {
        queue: String,
        messages: Vec<OutgoingMessage>,
    },
    Receive {
        queue: String,
        max: usize,
        visibility: Duration,
    },
    Ack {
        queue: String,
        id: String,
        receipt: Receipt,
    },
    Nack {
        queue: String,
        id: String,
        receipt: Receipt,
        error: String,
        /// Dead-letter now instead of retrying.
        give_up: bool,
    },
    Extend {
        queue: String,
        id: String,
        receipt: Receipt,
        visibility: Duration,
    },
    DeadLetters {
        queue: String,
        limit: usize,
    },
    Replay {
        queue: String,
        id: Option<String>,
    },
    Stats {
        queue: String,
    },
    ListQueues,
}

enum Reply {
    Unit,
    Sent(bool),
    Deliveries(Vec<Delivery>),
    Nack(NackOutcome),
    Dead(Vec<DeadLetter>),
    Count(usize),
    Stats(QueueStats),
    Queues(Vec<String>),
}

struct Command {
    op: Op,
    reply: oneshot::Sender<Result<Reply>>,
}

fn now_ms() -> i64 {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn db_err(e: rusqlite::Error) -> QueueError {
    QueueError::Unavailable(format!("sqlite: {e}"))
}

impl EmbeddedQueue {
    /// Opens (or creates) the queue database at `path` and starts its writer thread.
    pub fn open(path: impl AsRef<Path>, durability: Durability) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| {
                QueueError::Unavailable(format!("cannot create {}: {e}", dir.display()))
            })?;
        }
        let conn = Connection::open(&path).map_err(db_err)?;
        let sync = match durability {
            Durability::Full => "FULL",
            Durability::Normal => "NORMAL",
        };
        conn.execute_batch(&format!(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous={sync}; PRAGMA busy_timeout=10000;
             CREATE TABLE IF NOT EXISTS queues (
                name TEXT PRIMARY KEY, max_attempts INTEGER NOT NULL,
                backoff_base_ms INTEGER NOT NULL, backoff_max_ms INTEGER NOT NULL,
                dedup_window_ms INTEGER NOT NULL);
             CREATE TABLE IF NOT EXISTS messages (
                seq INTEGER PRIMARY KEY AUTOINCREMENT,
                queue TEXT NOT NULL, msg_id TEXT NOT NULL, body TEXT NOT NULL,
                attempts INTEGER NOT NULL DEFAULT 0,
                visible_at INTEGER NOT NULL, enqueued_at INTEGER NOT NULL,
                lease INTEGER, last_error TEXT,
                UNIQUE (queue, msg_id));
             CREATE INDEX IF NOT EXISTS messages_ready ON messages (queue, visible_at);
             CREATE TABLE IF NOT EXISTS acked (
                queue TEXT NOT NULL, msg_id TEXT NOT NULL, expires_at INTEGER NOT NULL,
                PRIMARY KEY (queue, msg_id)) WITHOUT ROWID;
             CREATE TABLE IF NOT EXISTS dead_letters (
                seq INTEGER PRIMARY KEY AUTOINCREMENT,
                queue TEXT NOT NULL, msg_id TEXT NOT NULL, body TEXT NOT NULL,
                attempts INTEGER NOT NULL, last_error TEXT NOT NULL, failed_at INTEGER NOT NULL,
                UNIQUE (queue, msg_id));"
        ))
        .map_err(db_err)?;
        let policies = load_policies(&conn)?;
        let (tx, rx) = mpsc::channel();
        let inner = Arc::new(Inner {
            path,
            tx,
            arrivals: Notify::new(),
            commits: AtomicU64::new(0),
            ops: AtomicU64::new(0),
        });
        let weak = Arc::downgrade(&inner);
        std::thread::Builder::new()
            .name("p360-queue-writer".into())
            .spawn(move || Writer { conn, policies }.run(rx, weak))
            .map_err(|e| QueueError::Unavailable(format!("cannot start writer thread: {e}")))?;
        Ok(Self { inner })
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Commits and operations so far in this process.
    pub fn writer_stats(&self) -> WriterStats {
        WriterStats {
            commits: self.inner.commits.load(Ordering::Relaxed),
            ops: self.inner.ops.load(Ordering::Relaxed),
        }
    }

    async fn call(&self, op: Op) -> Result<Reply> {
        let (reply, rx) = oneshot::channel();
        self.inner
            .tx
            .send(Command { op, reply })
            .map_err(|_| QueueError::Unavailable("queue writer stopped".into()))?;
        rx.await
            .map_err(|_| QueueError::Unavailable("queue writer stopped".into()))?
    }

    /// Names of all declared queues.
    pub async fn queues(&self) -> Result<Vec<String>> {
        match self.call(Op::ListQueues).await? {
            Reply::Queues(q) => Ok(q),
            _ => unreachable_reply(),
        }
    }
}

fn unreachable_reply<T>() -> Result<T> {
    Err(QueueError::Unavailable(
        "queue writer gave a reply of the wrong kind".into(),
    ))
}

fn load_policies(conn: &Connection) -> Result<HashMap<String, QueuePolicy>> {
    let mut stmt = conn
        .prepare("SELECT name, max_attempts, backoff_base_ms, backoff_max_ms, dedup_window_ms FROM queues")
        .map_err(db_err)?;
    let rows = stmt
        .query_map([], |r| {
            let dur = |i: usize| -> rusqlite::Result<Duration> {
                Ok(Duration::from_millis(
                    u64::try_from(r.get::<_, i64>(i)?).unwrap_or(0),
                ))
            };
            Ok((
                r.get::<_, String>(0)?,
                QueuePolicy {
                    max_attempts: u32::try_from(r.get::<_, i64>(1)?).unwrap_or(1),
                    backoff_base: dur(2)?,
                    backoff_max: dur(3)?,
                    dedup_window: dur(4)?,
                },
            ))
        })
        .map_err(db_err)?;
    rows.collect::<rusqlite::Result<_>>().map_err(db_err)
}

struct Writer {
    conn: Connection,
    policies: HashMap<String, QueuePolicy>,
}

impl Writer {
    fn run(mut self, rx: mpsc::Receiver<Command>, inner: std::sync::Weak<Inner>) {
        let mut last_gc = Instant::now();
        // Ends when every handle is dropped (the channel closes).
        while let Ok(first) = rx.recv() {
            let mut batch = vec![first];
            while batch.len() < MAX_GROUP {
                match rx.try_recv() {
                    Ok(cmd) => batch.push(cmd),
                    Err(_) => break,
                }
            }
            let (replies, arrived) = self.apply_group(&batch);
            if let Some(inner) = inner.upgrade() {
                inner.commits.fetch_add(1, Ordering::Relaxed);
                inner.ops.fetch_add(batch.len() as u64, Ordering::Relaxed);
            }
            for (cmd, reply) in batch.into_iter().zip(replies) {
                // The caller may have gone (cancelled); its effect is committed either way.
                let _ = cmd.reply.send(reply);
            }
            if arrived && let Some(inner) = inner.upgrade() {
                inner.arrivals.notify_waiters();
            }
            if last_gc.elapsed() > Duration::from_secs(30) {
                last_gc = Instant::now();
                if let Err(e) = self
                    .conn
                    .execute("DELETE FROM acked WHERE expires_at < ?1", [now_ms()])
                {
                    tracing::warn!(error = %e, "queue dedup cleanup failed");
                }
            }
        }
    }

    /// Applies a group of commands in one transaction; returns one reply per command and
    /// whether any message became visible.
    fn apply_group(&mut self, batch: &[Command]) -> (Vec<Result<Reply>>, bool) {
        let now = now_ms();
        let mut arrived = false;
        let mut tx = match self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
        {
            Ok(tx) => tx,
            Err(e) => {
                let msg = format!("sqlite: {e}");
                return (
                    batch
                        .iter()
                        .map(|_| Err(QueueError::Unavailable(msg.clone())))
                        .collect(),
                    false,
                );
            }
        };
        let mut replies = Vec::with_capacity(batch.len());
        let mut declared = Vec::new();
        for cmd in batch {
            let result = (|| {
                // Dropping an uncommitted savepoint rolls back just this operation.
                let sp = tx.savepoint().map_err(db_err)?;
                let r = apply(&sp, &self.policies, &cmd.op, now);
                if r.is_ok() {
                    sp.commit().map_err(db_err)?;
                }
                r
            })();
            match (&cmd.op, &result) {
                (Op::Send { .. }, Ok(Reply::Sent(true))) => arrived = true,
                (Op::Nack { .. } | Op::Replay { .. }, Ok(_)) => arrived = true,
                (Op::Declare { queue, policy }, Ok(_)) => {
                    declared.push((queue.clone(), policy.clone()));
                }
                _ => {}
            }
            replies.push(result);
        }
        match tx.commit() {
            Ok(()) => {
                self.policies.extend(declared);
                (replies, arrived)
            }
            Err(e) => {
                let msg = format!("sqlite commit: {e}");
                (
                    replies
                        .into_iter()
                        .map(|_| Err(QueueError::Unavailable(msg.clone())))
                        .collect(),
                    false,
                )
            }
        }
    }
}

fn parse_receipt(receipt: &Receipt, id: &str) -> Result<(i64, i64)> {
    let lost = || QueueError::LeaseLost { id: id.to_owned() };
    let (seq, lease) = receipt.0.split_once(':').ok_or_else(lost)?;
    Ok((
        seq.parse().map_err(|_| lost())?,
        lease.parse().map_err(|_| lost())?,
    ))
}

fn policy<'a>(policies: &'a HashMap<String, QueuePolicy>, queue: &str) -> Result<&'a QueuePolicy> {
    policies.get(queue).ok_or_else(|| QueueError::UnknownQueue {
        queue: queue.to_owned(),
    })
}

fn apply(
    tx: &rusqlite::Connection,
    policies: &HashMap<String, QueuePolicy>,
    op: &Op,
    now: i64,
) -> Result<Reply> {
    match op {
        Op::Declare { queue, policy } => {
            if queue.is_empty() || queue.len() > 80 {
                return Err(QueueError::Invalid(
                    "queue names have 1 to 80 characters".into(),
                ));
            }
            tx.execute(
                "INSERT INTO queues (name, max_attempts, backoff_base_ms, backoff_max_ms, dedup_window_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (name) DO UPDATE SET max_attempts = ?2, backoff_base_ms = ?3,
                   backoff_max_ms = ?4, dedup_window_ms = ?5",
                params![
                    queue,
                    i64::from(policy.max_attempts.max(1)),
                    ms(policy.backoff_base),
                    ms(policy.backoff_max),
                    ms(policy.dedup_window)
                ],
            )
            .map_err(db_err)?;
            Ok(Reply::Unit)
        }
        Op::Send { queue, messages } => {
            policy(policies, queue)?;
            let mut stmt = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO messages (queue, msg_id, body, visible_at, enqueued_at)
                     SELECT ?1, ?2, ?3, ?4, ?4
                     WHERE NOT EXISTS (SELECT 1 FROM acked WHERE queue = ?1 AND msg_id = ?2 AND expires_at >= ?4)
                       AND NOT EXISTS (SELECT 1 FROM dead_letters WHERE queue = ?1 AND msg_id = ?2)",
                )
                .map_err(db_err)?;
            let mut inserted = false;
            for m in messages {
                inserted |= stmt
                    .execute(params![queue, m.id, m.body, now])
                    .map_err(db_err)?
                    > 0;
            }
            Ok(Reply::Sent(inserted))
        }
        Op::Receive {
            queue,
            max,
            visibility,
        } => {
            policy(policies, queue)?;
            let mut select = tx
                .prepare_cached(
                    "SELECT seq, msg_id, body, attempts FROM messages
                     WHERE queue = ?1 AND visible_at <= ?2 ORDER BY visible_at, seq LIMIT ?3",
                )
                .map_err(db_err)?;
            let rows: Vec<(i64, String, String, i64)> = select
                .query_map(
                    params![queue, now, i64::try_from(*max).unwrap_or(i64::MAX)],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
                )
                .map_err(db_err)?
                .collect::<rusqlite::Result<_>>()
                .map_err(db_err)?;
            let mut lease_stmt = tx
                .prepare_cached(
                    "UPDATE messages SET attempts = attempts + 1, visible_at = ?2, lease = ?3 WHERE seq = ?1",
                )
                .map_err(db_err)?;
            let until = now.saturating_add(ms(*visibility));
            let mut out = Vec::with_capacity(rows.len());
            for (seq, id, body, attempts) in rows {
                let lease: i64 = rand::random::<i64>() & i64::MAX;
                lease_stmt
                    .execute(params![seq, until, lease])
                    .map_err(db_err)?;
                out.push(Delivery {
                    id,
                    body,
                    receipt: Receipt(format!("{seq}:{lease}")),
                    attempt: u32::try_from(attempts + 1).unwrap_or(u32::MAX),
                });
            }
            Ok(Reply::Deliveries(out))
        }
        Op::Ack { queue, id, receipt } => {
            let p = policy(policies, queue)?;
            let (seq, lease) = parse_receipt(receipt, id)?;
            let n = tx
                .prepare_cached(
                    "DELETE FROM messages WHERE seq = ?1 AND lease = ?2 AND queue = ?3 AND msg_id = ?4",
                )
                .map_err(db_err)?
                .execute(params![seq, lease, queue, id])
                .map_err(db_err)?;
            if n == 0 {
                return Err(QueueError::LeaseLost { id: id.clone() });
            }
            tx.prepare_cached(
                "INSERT OR REPLACE INTO acked (queue, msg_id, expires_at) VALUES (?1, ?2, ?3)",
            )
            .map_err(db_err)?
            .execute(params![queue, id, now.saturating_add(ms(p.dedup_window))])
            .map_err(db_err)?;
            Ok(Reply::Unit)
        }
        Op::Nack {
            queue,
            id,
            receipt,
            error,
            give_up,
        } => {
            let p = policy(policies, queue)?;
            let (seq, lease) = parse_receipt(receipt, id)?;
            let attempts: Option<i64> = tx
                .query_row(
                    "SELECT attempts FROM messages WHERE seq = ?1 AND lease = ?2 AND queue = ?3",
                    params![seq, lease, queue],
                    |r| r.get(0),
                )
                .optional()
                .map_err(db_err)?;
            let attempts = attempts.ok_or_else(|| QueueError::LeaseLost { id: id.clone() })?;
            let error: String = error.chars().take(MAX_ERROR_LEN).collect();
            if *give_up || attempts >= i64::from(p.max_attempts) {
                tx.execute(
                    "INSERT INTO dead_letters (queue, msg_id, body, attempts, last_error, failed_at)
                     SELECT queue, msg_id, body, attempts, ?2, ?3 FROM messages WHERE seq = ?1
                     ON CONFLICT (queue, msg_id) DO UPDATE SET body = excluded.body,
                       attempts = excluded.attempts, last_error = excluded.last_error,
                       failed_at = excluded.failed_at",
                    params![seq, error, now],
                )
                .map_err(db_err)?;
                tx.execute("DELETE FROM messages WHERE seq = ?1", [seq])
                    .map_err(db_err)?;
                Ok(Reply::Nack(NackOutcome::DeadLettered))
            } else {
                let after = p.backoff(u32::try_from(attempts).unwrap_or(u32::MAX));
                tx.execute(
                    "UPDATE messages SET visible_at = ?2, lease = NULL, last_error = ?3 WHERE seq = ?1",
                    params![seq, now.saturating_add(ms(after)), error],
                )
                .map_err(db_err)?;
                Ok(Reply::Nack(NackOutcome::Retrying { after }))
            }
        }
        Op::Extend {
            queue,
            id,
            receipt,
            visibility,
        } => {
            let (seq, lease) = parse_receipt(receipt, id)?;
            let n = tx
                .execute(
                    "UPDATE messages SET visible_at = ?3 WHERE seq = ?1 AND lease = ?2 AND queue = ?4",
                    params![seq, lease, now.saturating_add(ms(*visibility)), queue],
                )
                .map_err(db_err)?;
            if n == 0 {
                return Err(QueueError::LeaseLost { id: id.clone() });
            }
            Ok(Reply::Unit)
        }
        Op::DeadLetters { queue, limit } => {
            policy(policies, queue)?;
            let mut stmt = tx
                .prepare_cached(
                    "SELECT msg_id, body, attempts, last_error, failed_at FROM dead_letters
                     WHERE queue = ?1 ORDER BY seq LIMIT ?2",
                )
                .map_err(db_err)?;
            let rows = stmt
                .query_map(
                    params![queue, i64::try_from(*limit).unwrap_or(i64::MAX)],
                    |r| {
                        Ok(DeadLetter {
                            id: r.get(0)?,
                            body: r.get(1)?,
                            attempts: u32::try_from(r.get::<_, i64>(2)?).unwrap_or(0),
                            last_error: r.get(3)?,
                            failed_at_ms: r.get(4)?,
                        })
                    },
                )
                .map_err(db_err)?
                .collect::<rusqlite::Result<_>>()
                .map_err(db_err)?;
            Ok(Reply::Dead(rows))
        }
        Op::Replay { queue, id } => {
            policy(policies, queue)?;
            let filter = "queue = ?1 AND (?2 IS NULL OR msg_id = ?2)";
            // A replayed message must not be mistaken for a duplicate of its acked twin.
            tx.execute(
                &format!("DELETE FROM acked WHERE (queue, msg_id) IN (SELECT queue, msg_id FROM dead_letters WHERE {filter})"),
                params![queue, id],
            )
            .map_err(db_err)?;
            let moved = tx
                .execute(
                    &format!(
                        "INSERT OR IGNORE INTO messages (queue, msg_id, body, attempts, visible_at, enqueued_at, last_error)
                         SELECT queue, msg_id, body, 0, ?3, ?3, last_error FROM dead_letters WHERE {filter} ORDER BY seq"
                    ),
                    params![queue, id, now],
                )
                .map_err(db_err)?;
            tx.execute(
                &format!("DELETE FROM dead_letters WHERE {filter}"),
                params![queue, id],
            )
            .map_err(db_err)?;
            Ok(Reply::Count(moved))
        }
        Op::Stats { queue } => {
            policy(policies, queue)?;
            let (ready, in_flight, delayed): (i64, i64, i64) = tx
                .query_row(
                    "SELECT
                       COALESCE(SUM(visible_at <= ?2), 0),
                       COALESCE(SUM(visible_at > ?2 AND lease IS NOT NULL), 0),
                       COALESCE(SUM(visible_at > ?2 AND lease IS NULL), 0)
                     FROM messages WHERE queue = ?1",
                    params![queue, now],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .map_err(db_err)?;
            let dead: i64 = tx
                .query_row(
                    "SELECT COUNT(*) FROM dead_letters WHERE queue = ?1",
                    [queue],
                    |r| r.get(0),
                )
                .map_err(db_err)?;
            let u = |v: i64| u64::try_from(v).unwrap_or(0);
            Ok(Reply::Stats(QueueStats {
                ready: u(ready),
                in_flight: u(in_flight),
                delayed: u(delayed),
                dead: u(dead),
            }))
        }
        Op::ListQueues => {
            let mut names: Vec<String> = policies.keys().cloned().collect();
            names.sort();
            Ok(Reply::Queues(names))
        }
    }
}

#[async_trait]
impl Queue for EmbeddedQueue {
    async fn declare(&self, queue: &str, policy: QueuePolicy) -> Result<()> {
        self.call(Op::Declare {
            queue: queue.to_owned(),
            policy,
        })
        .await
        .map(|_| ())
    }

    async fn send(&self, queue: &str, messages: &[OutgoingMessage]) -> Result<()> {
        if messages.is_empty() {
            return Ok(());
        }
        self.call(Op::Send {
            queue: queue.to_owned(),
            messages: messages.to_vec(),
        })
        .await
        .map(|_| ())
    }

    async fn receive(
        &self,
        queue: &str,
        max: usize,
        visibility: Duration,
        wait: Duration,
    ) -> Result<Vec<Delivery>> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            // Register interest before looking, so an arrival between the look and the wait
            // still wakes us.
            let notified = self.inner.arrivals.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            match self
                .call(Op::Receive {
                    queue: queue.to_owned(),
                    max: max.max(1),
                    visibility,
                })
                .await?
            {
                Reply::Deliveries(d) if !d.is_empty() => return Ok(d),
                Reply::Deliveries(_) => {}
                _ => return unreachable_reply(),
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Ok(Vec::new());
            }
            let nap = (deadline - now).min(IDLE_POLL);
            let _ = tokio::time::timeout(nap, notified).await;
        }
    }

    async fn ack(&self, queue: &str, delivery: &Delivery) -> Result<()> {
        self.call(Op::Ack {
            queue: queue.to_owned(),
            id: delivery.id.clone(),
            receipt: delivery.receipt.clone(),
        })
        .await
        .map(|_| ())
    }

    async fn nack(&self, queue: &str, delivery: &Delivery, error: &str) -> Result<NackOutcome> {
        match self
            .call(Op::Nack {
                queue: queue.to_owned(),
                id: delivery.id.clone(),
                receipt: delivery.receipt.clone(),
                error: error.to_owned(),
                give_up: false,
            })
            .await?
        {
            Reply::Nack(o) => Ok(o),
            _ => unreachable_reply(),
        }
    }

    async fn dead_letter(&self, queue: &str, delivery: &Delivery, error: &str) -> Result<()> {
        self.call(Op::Nack {
            queue: queue.to_owned(),
            id: delivery.id.clone(),
            receipt: delivery.receipt.clone(),
            error: error.to_owned(),
            give_up: true,
        })
        .await
        .map(|_| ())
    }

    async fn extend(&self, queue: &str, delivery: &Delivery, visibility: Duration) -> Result<()> {
        self.call(Op::Extend {
            queue: queue.to_owned(),
            id: delivery.id.clone(),
            receipt: delivery.receipt.clone(),
            visibility,
        })
        .await
        .map(|_| ())
    }

    async fn dead_letters(&self, queue: &str, limit: usize) -> Result<Vec<DeadLetter>> {
        match self
            .call(Op::DeadLetters {
                queue: queue.to_owned(),
                limit,
            })
            .await?
        {
            Reply::Dead(d) => Ok(d),
            _ => unreachable_reply(),
        }
    }

    async fn replay(&self, queue: &str, id: Option<&str>) -> Result<usize> {
        match self
            .call(Op::Replay {
                queue: queue.to_owned(),
                id: id.map(str::to_owned),
            })
            .await?
        {
            Reply::Count(n) => Ok(n),
            _ => unreachable_reply(),
        }
    }

    async fn stats(&self, queue: &str) -> Result<QueueStats> {
        match self
            .call(Op::Stats {
                queue: queue.to_owned(),
            })
            .await?
        {
            Reply::Stats(s) => Ok(s),
            _ => unreachable_reply(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testsuite;

    fn open(dir: &tempfile::TempDir) -> EmbeddedQueue {
        EmbeddedQueue::open(dir.path().join("q.db"), Durability::Normal).unwrap()
    }

    #[tokio::test]
    async fn conformance() {
        let dir = tempfile::tempdir().unwrap();
        let q = open(&dir);
        testsuite::run_all(&q, "emb").await;
    }

    #[tokio::test]
    async fn stale_receipt_loses_the_lease() {
        let dir = tempfile::tempdir().unwrap();
        let q = open(&dir);
        q.declare("q", QueuePolicy::default()).await.unwrap();
        q.send(
            "q",
            &[OutgoingMessage {
                id: "m".into(),
                body: "{}".into(),
            }],
        )
        .await
        .unwrap();
        let first = q
            .receive("q", 1, Duration::from_millis(50), Duration::ZERO)
            .await
            .unwrap()
            .remove(0);
        tokio::time::sleep(Duration::from_millis(80)).await;
        let second = q
            .receive("q", 1, Duration::from_secs(30), Duration::ZERO)
            .await
            .unwrap()
            .remove(0);
        assert_eq!(second.attempt, 2);
        assert!(matches!(
            q.ack("q", &first).await,
            Err(QueueError::LeaseLost { .. })
        ));
        q.ack("q", &second).await.unwrap();
    }

    #[tokio::test]
    async fn acked_ids_are_deduplicated_and_state_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let q = open(&dir);
            q.declare("q", QueuePolicy::default()).await.unwrap();
            let m = OutgoingMessage {
                id: "m1".into(),
                body: "{}".into(),
            };
            q.send("q", std::slice::from_ref(&m)).await.unwrap();
            let d = q
                .receive("q", 10, Duration::from_secs(30), Duration::ZERO)
                .await
                .unwrap();
            q.ack("q", &d[0]).await.unwrap();
            // A handler that crashed after sending but before acking sends again: dropped.
            q.send("q", &[m]).await.unwrap();
            q.send(
                "q",
                &[OutgoingMessage {
                    id: "m2".into(),
                    body: "{}".into(),
                }],
            )
            .await
            .unwrap();
        }
        let q = open(&dir);
        assert_eq!(q.queues().await.unwrap(), vec!["q".to_owned()]);
        let d = q
            .receive("q", 10, Duration::from_secs(30), Duration::ZERO)
            .await
            .unwrap();
        assert_eq!(d.iter().map(|d| d.id.as_str()).collect::<Vec<_>>(), ["m2"]);
    }

    #[tokio::test]
    async fn concurrent_senders_share_commits() {
        let dir = tempfile::tempdir().unwrap();
        let q = open(&dir);
        q.declare("q", QueuePolicy::default()).await.unwrap();
        let mut tasks = Vec::new();
        for t in 0..8 {
            let q = q.clone();
            tasks.push(tokio::spawn(async move {
                for i in 0..50 {
                    q.send(
                        "q",
                        &[OutgoingMessage {
                            id: format!("{t}-{i}"),
                            body: "{}".into(),
                        }],
                    )
                    .await
                    .unwrap();
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(q.stats("q").await.unwrap().ready, 400);
    }

    #[tokio::test]
    async fn unknown_queue_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let q = open(&dir);
        let err = q.stats("nope").await.unwrap_err();
        assert_eq!(err.to_string(), "queue nope is not declared");
    }
}
