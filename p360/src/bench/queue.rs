//! `p360 bench queue`: throughput and latency of the embedded queue, enqueue → handle → ack,
//! beside a reference measured in the same run on the same disk: a plain SQLite loop that
//! inserts a batch and then selects and deletes it, with the same journal mode, `synchronous`
//! setting and batch size. The ratio is what matters (the machine is small and shared).

use super::{Measured, measured};
use anyhow::Context;
use p360_queue::embedded::{Durability, EmbeddedQueue};
use p360_queue::{OutgoingMessage, Queue, QueuePolicy};
use rusqlite::params;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct QueueBench {
    pub messages: usize,
    /// Messages per send and per receive.
    pub batch: usize,
    /// Concurrent consumers (like a stage's concurrency).
    pub consumers: usize,
    pub durability: Durability,
}

/// The queue under test: a producer sends batches while consumers receive, decode each
/// message as an event would be, and ack each message on its own (as the stage runner does).
pub async fn run_queue(cfg: &QueueBench, dir: &std::path::Path) -> anyhow::Result<(Measured, f64)> {
    let q = Arc::new(EmbeddedQueue::open(
        dir.join("bench-queue.db"),
        cfg.durability,
    )?);
    q.declare("bench", QueuePolicy::default()).await?;
    let start = Instant::now();
    let n = cfg.messages;
    let producer = {
        let q = q.clone();
        let batch = cfg.batch;
        tokio::spawn(async move {
            let mut i = 0;
            while i < n {
                let msgs: Vec<_> = (i..(i + batch).min(n))
                    .map(|k| OutgoingMessage {
                        id: format!("m{k}"),
                        body: format!("{{\"k\":{k},\"sent_ns\":{}}}", start.elapsed().as_nanos()),
                    })
                    .collect();
                i += msgs.len();
                q.send("bench", &msgs).await?;
            }
            anyhow::Ok(())
        })
    };
    let done = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut consumers = Vec::new();
    for _ in 0..cfg.consumers.max(1) {
        let q = q.clone();
        let done = done.clone();
        let batch = cfg.batch;
        consumers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            while done.load(std::sync::atomic::Ordering::Relaxed) < n {
                let got = q
                    .receive(
                        "bench",
                        batch,
                        Duration::from_secs(60),
                        Duration::from_millis(50),
                    )
                    .await?;
                let acks = got.iter().map(|d| {
                    let q = q.clone();
                    async move {
                        let v: serde_json::Value = serde_json::from_str(&d.body)?;
                        let sent = v["sent_ns"].as_u64().context("bench body")?;
                        q.ack("bench", d).await?;
                        let now = start.elapsed().as_nanos() as f64;
                        anyhow::Ok((now - sent as f64) / 1e6)
                    }
                });
                for l in futures::future::join_all(acks).await {
                    latencies.push(l?);
                }
                done.fetch_add(got.len(), std::sync::atomic::Ordering::Relaxed);
            }
            anyhow::Ok(latencies)
        }));
    }
    producer.await??;
    let mut latencies = Vec::with_capacity(n);
    for c in consumers {
        latencies.extend(c.await??);
    }
    let elapsed = start.elapsed();
    let stats = q.writer_stats();
    Ok((
        measured(n, elapsed, latencies),
        stats.ops as f64 / stats.commits.max(1) as f64,
    ))
}

/// The reference: the least work a durable SQLite queue must do per batch (one commit to
/// insert it, one to take it out), single-threaded, with no protocol around it.
pub fn run_reference(cfg: &QueueBench, dir: &std::path::Path) -> anyhow::Result<Measured> {
    let conn = rusqlite::Connection::open(dir.join("bench-reference.db"))?;
    let sync = match cfg.durability {
        Durability::Full => "FULL",
        Durability::Normal => "NORMAL",
    };
    conn.execute_batch(&format!(
        "PRAGMA journal_mode=WAL; PRAGMA synchronous={sync};
         CREATE TABLE q (seq INTEGER PRIMARY KEY AUTOINCREMENT, msg_id TEXT NOT NULL, body TEXT NOT NULL);"
    ))?;
    let start = Instant::now();
    let mut latencies = Vec::with_capacity(cfg.messages);
    let mut conn = conn;
    let mut i = 0;
    while i < cfg.messages {
        let end = (i + cfg.batch).min(cfg.messages);
        let sent = Instant::now();
        let tx = conn.transaction()?;
        {
            let mut ins = tx.prepare_cached("INSERT INTO q (msg_id, body) VALUES (?1, ?2)")?;
            for k in i..end {
                ins.execute(params![format!("m{k}"), format!("{{\"k\":{k}}}")])?;
            }
        }
        tx.commit()?;
        let tx = conn.transaction()?;
        {
            let mut sel = tx.prepare_cached("SELECT seq, body FROM q ORDER BY seq LIMIT ?1")?;
            let rows: Vec<(i64, String)> = sel
                .query_map([i64::try_from(cfg.batch)?], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<rusqlite::Result<_>>()?;
            let mut del = tx.prepare_cached("DELETE FROM q WHERE seq = ?1")?;
            for (seq, body) in rows {
                let _: serde_json::Value = serde_json::from_str(&body)?;
                del.execute([seq])?;
            }
        }
        tx.commit()?;
        let l = sent.elapsed().as_secs_f64() * 1e3;
        latencies.extend(std::iter::repeat_n(l, end - i));
        i = end;
    }
    Ok(measured(cfg.messages, start.elapsed(), latencies))
}
