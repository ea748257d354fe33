//! The conformance suite every [`Queue`] adapter must pass (feature `testsuite`).
//!
//! Each check declares its own queue named `<prefix>-<check>`, so the suite can run against a
//! shared server (moto) without interference. Timings are generous lower bounds on visibility,
//! never upper bounds on speed.

use crate::{NackOutcome, OutgoingMessage, Queue, QueuePolicy};
use std::collections::BTreeSet;
use std::time::Duration;

fn msg(id: &str) -> OutgoingMessage {
    OutgoingMessage {
        id: id.to_owned(),
        body: format!("{{\"n\":\"{id}\"}}"),
    }
}

fn fast_retry(max_attempts: u32) -> QueuePolicy {
    QueuePolicy {
        max_attempts,
        backoff_base: Duration::from_millis(100),
        backoff_max: Duration::from_secs(1),
        ..QueuePolicy::default()
    }
}

/// Runs every check.
pub async fn run_all(q: &dyn Queue, prefix: &str) {
    round_trip(q, prefix).await;
    large_batches(q, prefix).await;
    visibility_timeout_redelivers(q, prefix).await;
    extend_keeps_a_message_hidden(q, prefix).await;
    retries_then_dead_letter_then_replay(q, prefix).await;
    poison_message_does_not_block_others(q, prefix).await;
    permanent_failure_dead_letters_at_once(q, prefix).await;
    receive_waits_for_arrivals(q, prefix).await;
}

/// Receives until `n` distinct messages were collected or `timeout` passed.
async fn collect(q: &dyn Queue, queue: &str, n: usize, timeout: Duration) -> Vec<crate::Delivery> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut got = Vec::new();
    let mut ids = BTreeSet::new();
    while got.len() < n && tokio::time::Instant::now() < deadline {
        for d in q
            .receive(queue, 10, Duration::from_secs(30), Duration::from_secs(1))
            .await
            .expect("receive")
        {
            if ids.insert(d.id.clone()) {
                got.push(d);
            }
        }
    }
    got
}

pub async fn round_trip(q: &dyn Queue, prefix: &str) {
    let name = format!("{prefix}-roundtrip");
    q.declare(&name, QueuePolicy::default())
        .await
        .expect("declare");
    q.send(&name, &[msg("a"), msg("b"), msg("c")])
        .await
        .expect("send");
    let got = collect(q, &name, 3, Duration::from_secs(10)).await;
    let ids: BTreeSet<_> = got.iter().map(|d| d.id.as_str()).collect();
    assert_eq!(ids, BTreeSet::from(["a", "b", "c"]));
    for d in &got {
        assert_eq!(d.attempt, 1, "first delivery of {}", d.id);
        assert_eq!(d.body, format!("{{\"n\":\"{}\"}}", d.id), "body intact");
        q.ack(&name, d).await.expect("ack");
    }
    let again = q
        .receive(&name, 10, Duration::from_secs(30), Duration::ZERO)
        .await
        .expect("receive");
    assert!(again.is_empty(), "acked messages are gone");
    let stats = q.stats(&name).await.expect("stats");
    assert_eq!((stats.ready, stats.in_flight, stats.dead), (0, 0, 0));
}

pub async fn large_batches(q: &dyn Queue, prefix: &str) {
    let name = format!("{prefix}-batches");
    q.declare(&name, QueuePolicy::default())
        .await
        .expect("declare");
    let msgs: Vec<_> = (0..25).map(|i| msg(&format!("m{i}"))).collect();
    q.send(&name, &msgs).await.expect("send 25 at once");
    let got = collect(q, &name, 25, Duration::from_secs(20)).await;
    assert_eq!(got.len(), 25);
    for d in &got {
        q.ack(&name, d).await.expect("ack");
    }
}

pub async fn visibility_timeout_redelivers(q: &dyn Queue, prefix: &str) {
    let name = format!("{prefix}-visibility");
    q.declare(&name, QueuePolicy::default())
        .await
        .expect("declare");
    q.send(&name, &[msg("v")]).await.expect("send");
    let first = q
        .receive(&name, 1, Duration::from_secs(1), Duration::from_secs(5))
        .await
        .expect("receive");
    assert_eq!(first.len(), 1);
    let hidden = q
        .receive(&name, 1, Duration::from_secs(1), Duration::ZERO)
        .await
        .expect("receive");
    assert!(hidden.is_empty(), "held message is hidden");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let again = q
        .receive(&name, 1, Duration::from_secs(30), Duration::from_secs(5))
        .await
        .expect("receive");
    assert_eq!(again.len(), 1, "redelivered after its visibility ran out");
    assert_eq!(again[0].id, "v");
    assert_eq!(again[0].attempt, 2);
    q.ack(&name, &again[0]).await.expect("ack");
}

pub async fn extend_keeps_a_message_hidden(q: &dyn Queue, prefix: &str) {
    let name = format!("{prefix}-extend");
    q.declare(&name, QueuePolicy::default())
        .await
        .expect("declare");
    q.send(&name, &[msg("x")]).await.expect("send");
    let d = q
        .receive(&name, 1, Duration::from_secs(1), Duration::from_secs(5))
        .await
        .expect("receive")
        .remove(0);
    q.extend(&name, &d, Duration::from_secs(5))
        .await
        .expect("extend");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let hidden = q
        .receive(&name, 1, Duration::from_secs(1), Duration::ZERO)
        .await
        .expect("receive");
    assert!(hidden.is_empty(), "extended message stays hidden");
    q.ack(&name, &d).await.expect("ack with the extended lease");
}

pub async fn retries_then_dead_letter_then_replay(q: &dyn Queue, prefix: &str) {
    let name = format!("{prefix}-dlq");
    q.declare(&name, fast_retry(3)).await.expect("declare");
    q.send(&name, &[msg("bad")]).await.expect("send");
    for attempt in 1..=3u32 {
        let d = q
            .receive(&name, 1, Duration::from_secs(30), Duration::from_secs(5))
            .await
            .expect("receive");
        assert_eq!(d.len(), 1, "attempt {attempt} delivered");
        assert_eq!(d[0].attempt, attempt);
        let outcome = q
            .nack(&name, &d[0], &format!("boom #{attempt}"))
            .await
            .expect("nack");
        if attempt < 3 {
            assert!(
                matches!(outcome, NackOutcome::Retrying { .. }),
                "{outcome:?}"
            );
        } else {
            assert_eq!(outcome, NackOutcome::DeadLettered);
        }
    }
    let dead = q.dead_letters(&name, 10).await.expect("dead letters");
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].id, "bad");
    assert_eq!(dead[0].attempts, 3);
    assert_eq!(dead[0].last_error, "boom #3");
    assert_eq!(dead[0].body, "{\"n\":\"bad\"}");
    assert_eq!(q.stats(&name).await.expect("stats").dead, 1);

    assert_eq!(q.replay(&name, None).await.expect("replay"), 1);
    let d = q
        .receive(&name, 1, Duration::from_secs(30), Duration::from_secs(5))
        .await
        .expect("receive");
    assert_eq!(d.len(), 1, "replayed message is delivered again");
    assert_eq!(d[0].id, "bad");
    assert_eq!(d[0].attempt, 1, "replay starts the attempts afresh");
    q.ack(&name, &d[0]).await.expect("ack");
    assert!(q.dead_letters(&name, 10).await.expect("dlq").is_empty());
}

pub async fn poison_message_does_not_block_others(q: &dyn Queue, prefix: &str) {
    let name = format!("{prefix}-poison");
    q.declare(&name, fast_retry(2)).await.expect("declare");
    let mut msgs = vec![msg("poison")];
    msgs.extend((0..10).map(|i| msg(&format!("ok{i}"))));
    q.send(&name, &msgs).await.expect("send");
    let mut acked = BTreeSet::new();
    let mut dead = false;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while (acked.len() < 10 || !dead) && tokio::time::Instant::now() < deadline {
        for d in q
            .receive(&name, 10, Duration::from_secs(30), Duration::from_secs(1))
            .await
            .expect("receive")
        {
            if d.id == "poison" {
                dead |= q.nack(&name, &d, "always fails").await.expect("nack")
                    == NackOutcome::DeadLettered;
            } else {
                q.ack(&name, &d).await.expect("ack");
                acked.insert(d.id);
            }
        }
    }
    assert_eq!(acked.len(), 10, "every good message was handled");
    assert!(dead, "the poison message was dead-lettered");
    let letters = q.dead_letters(&name, 10).await.expect("dlq");
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].id, "poison");
    assert_eq!(letters[0].last_error, "always fails");
}

pub async fn receive_waits_for_arrivals(q: &dyn Queue, prefix: &str) {
    let name = format!("{prefix}-wait");
    q.declare(&name, QueuePolicy::default())
        .await
        .expect("declare");
    let started = tokio::time::Instant::now();
    let (got, ()) = tokio::join!(
        q.receive(&name, 1, Duration::from_secs(30), Duration::from_secs(10)),
        async {
            tokio::time::sleep(Duration::from_millis(300)).await;
            q.send(&name, &[msg("late")]).await.expect("send");
        }
    );
    let got = got.expect("receive");
    assert_eq!(
        got.len(),
        1,
        "a waiting receive gets a message sent meanwhile"
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "returned on arrival, not at the end of the wait"
    );
    q.ack(&name, &got[0]).await.expect("ack");
}

pub async fn permanent_failure_dead_letters_at_once(q: &dyn Queue, prefix: &str) {
    let name = format!("{prefix}-permanent");
    q.declare(&name, QueuePolicy::default())
        .await
        .expect("declare");
    q.send(&name, &[msg("undecodable")]).await.expect("send");
    let d = q
        .receive(&name, 1, Duration::from_secs(30), Duration::from_secs(5))
        .await
        .expect("receive");
    assert_eq!(d.len(), 1);
    q.dead_letter(&name, &d[0], "body is not an envelope")
        .await
        .expect("dead letter");
    let letters = q.dead_letters(&name, 10).await.expect("dlq");
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].attempts, 1);
    assert_eq!(letters[0].last_error, "body is not an envelope");
    assert!(
        q.receive(&name, 1, Duration::from_secs(30), Duration::ZERO)
            .await
            .expect("receive")
            .is_empty()
    );
}
