#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions
mod common;

use common::{Probe, document};
use p360_events::{Envelope, EventType};
use p360_queue::embedded::{Durability, EmbeddedQueue};
use p360_queue::{Publisher, Queue, QueuePolicy, QueuePublisher, Routes};
use p360_runtime::local::{RunnerConfig, Wiring, run};
use p360_runtime::{RunnerMetrics, Stage};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

struct Setup {
    queue: Arc<EmbeddedQueue>,
    publisher: Arc<QueuePublisher>,
    _dir: tempfile::TempDir,
}

async fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let queue = Arc::new(EmbeddedQueue::open(dir.path().join("q.db"), Durability::Normal).unwrap());
    let policy = QueuePolicy {
        max_attempts: 3,
        backoff_base: Duration::from_millis(50),
        backoff_max: Duration::from_millis(200),
        ..QueuePolicy::default()
    };
    queue.declare("probe", policy.clone()).await.unwrap();
    queue.declare("downstream", policy).await.unwrap();
    let mut routes = Routes::new();
    routes
        .subscribe(EventType::DocumentReceived, "probe")
        .subscribe(EventType::GraphChanged, "downstream");
    let publisher = Arc::new(QueuePublisher::new(queue.clone(), routes));
    Setup {
        queue,
        publisher,
        _dir: dir,
    }
}

async fn drain(queue: &dyn Queue, name: &str) -> Vec<Envelope> {
    let mut out = Vec::new();
    loop {
        let batch = queue
            .receive(
                name,
                100,
                Duration::from_secs(30),
                Duration::from_millis(200),
            )
            .await
            .unwrap();
        if batch.is_empty() {
            return out;
        }
        for d in batch {
            out.push(Envelope::from_json(&d.body).unwrap());
            queue.ack(name, &d).await.unwrap();
        }
    }
}

#[tokio::test]
async fn runner_handles_retries_dead_letters_and_stops_gracefully() {
    let s = setup().await;
    let probe = Arc::new(Probe::default());
    let mut inputs: Vec<Envelope> = (0..50).map(|i| document(&format!("doc-{i}"))).collect();
    inputs.push(document("doc-poison"));
    inputs.push(document("doc-flaky"));
    s.publisher.publish(&inputs).await.unwrap();
    // Redelivered duplicates (same event id) are dropped by the queue.
    s.publisher.publish(&inputs[..5]).await.unwrap();

    let shutdown = CancellationToken::new();
    let wiring = Wiring {
        queue: s.queue.clone(),
        publisher: s.publisher.clone(),
        metrics: RunnerMetrics::default(),
    };
    let config = RunnerConfig {
        concurrency: 4,
        visibility: Duration::from_secs(5),
        poll_wait: Duration::from_millis(100),
        grace: Duration::from_secs(5),
    };
    let runner = tokio::spawn(run(probe.clone(), wiring.clone(), config, shutdown.clone()));

    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let stats = s.queue.stats("probe").await.unwrap();
        if stats.ready + stats.in_flight + stats.delayed == 0 && stats.dead == 1 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "pipeline did not settle: {stats:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    shutdown.cancel();
    runner.await.unwrap();

    let handled = probe.handled.lock().unwrap().clone();
    assert_eq!(
        handled.len(),
        51,
        "50 good + the flaky one after its retries"
    );
    assert!(handled.values().all(|&n| n == 1), "each event handled once");

    let outputs = drain(&*s.queue, "downstream").await;
    assert_eq!(outputs.len(), 51, "one output per handled input");
    for out in &outputs {
        let cause = out.causationid.expect("outputs name their cause");
        assert!(inputs.iter().any(|i| i.id == cause));
    }

    let dead = s.queue.dead_letters("probe", 10).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].last_error, "permanent: poison document");
    assert_eq!(dead[0].attempts, 1, "permanent failures are not retried");

    let ok = wiring
        .metrics
        .handled
        .get_or_create(&p360_runtime::metrics::OutcomeLabel {
            stage: "probe".into(),
            outcome: "retry".into(),
        })
        .get();
    assert_eq!(ok, 2, "the flaky document was retried twice");
}

#[tokio::test]
async fn redelivered_input_republishes_identical_outputs() {
    let s = setup().await;
    let probe = Probe::default();
    let input = document("doc-a");
    let first = p360_runtime::envelopes("probe", &input, probe.handle(&input).await.unwrap());
    let second = p360_runtime::envelopes("probe", &input, probe.handle(&input).await.unwrap());
    assert_eq!(first[0].id, second[0].id);
    s.publisher.publish(&first).await.unwrap();
    s.publisher.publish(&second).await.unwrap();
    assert_eq!(drain(&*s.queue, "downstream").await.len(), 1);
}

/// A stage that never finishes: shutdown must release its message, not ack it or strand it.
struct Stuck;

#[async_trait::async_trait]
impl Stage for Stuck {
    fn name(&self) -> &'static str {
        "probe"
    }
    fn subscribes(&self) -> &'static [EventType] {
        &[EventType::DocumentReceived]
    }
    async fn handle(
        &self,
        _: &Envelope,
    ) -> Result<Vec<p360_events::Event>, p360_runtime::StageError> {
        std::future::pending().await
    }
}

#[tokio::test]
async fn shutdown_releases_work_that_outlives_the_grace_period() {
    let s = setup().await;
    s.publisher.publish(&[document("doc-slow")]).await.unwrap();
    let shutdown = CancellationToken::new();
    let wiring = Wiring {
        queue: s.queue.clone(),
        publisher: s.publisher.clone(),
        metrics: RunnerMetrics::default(),
    };
    let config = RunnerConfig {
        concurrency: 1,
        visibility: Duration::from_secs(600),
        poll_wait: Duration::from_millis(100),
        grace: Duration::from_millis(200),
    };
    let runner = tokio::spawn(run(Arc::new(Stuck), wiring, config, shutdown.clone()));
    while s.queue.stats("probe").await.unwrap().in_flight == 0 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    shutdown.cancel();
    runner.await.unwrap();
    // Visible again at once, despite the 10-minute visibility timeout.
    let again = s
        .queue
        .receive("probe", 1, Duration::from_secs(30), Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].attempt, 2);
}

/// Poison input: a message that fails on every attempt goes to the dead-letter queue after the
/// configured attempts, with its last error, while the others keep flowing; once the cause is
/// fixed, replaying it works.
#[tokio::test]
async fn always_failing_message_is_dead_lettered_and_replayed() {
    let s = setup().await; // max_attempts = 3
    let probe = Arc::new(Probe::default());
    let shutdown = CancellationToken::new();
    let wiring = Wiring {
        queue: s.queue.clone(),
        publisher: s.publisher.clone(),
        metrics: RunnerMetrics::default(),
    };
    let config = RunnerConfig {
        concurrency: 2,
        visibility: Duration::from_secs(5),
        poll_wait: Duration::from_millis(50),
        grace: Duration::from_secs(5),
    };
    let runner = tokio::spawn(run(probe.clone(), wiring.clone(), config, shutdown.clone()));
    let mut inputs = vec![document("doc-broken")];
    inputs.extend((0..30).map(|i| document(&format!("doc-ok-{i}"))));
    s.publisher.publish(&inputs).await.unwrap();

    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while s.queue.stats("probe").await.unwrap().dead == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "never dead-lettered"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let dead = s.queue.dead_letters("probe", 10).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].attempts, 3);
    assert_eq!(dead[0].last_error, "transient: store rejects this document");
    assert_eq!(Envelope::from_json(&dead[0].body).unwrap().id, inputs[0].id);
    while probe.handled.lock().unwrap().len() < 30 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "good messages stalled"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    probe.fixed.store(true, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(s.queue.replay("probe", Some(&dead[0].id)).await.unwrap(), 1);
    while !probe.handled.lock().unwrap().contains_key(&inputs[0].id) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "replayed message not handled"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    shutdown.cancel();
    runner.await.unwrap();
    assert_eq!(s.queue.stats("probe").await.unwrap().dead, 0);
    assert_eq!(drain(&*s.queue, "downstream").await.len(), 31);
}
