//! The local runner: drives one stage from its queue with tokio tasks.
//!
//! Per message: decode → `handle` → publish outputs → ack, while a heartbeat extends the
//! message's visibility so a long job is not redelivered under its feet. Up to
//! `concurrency` messages are handled at once.
//!
//! Shutdown (the token is cancelled on SIGINT/SIGTERM): stop receiving; let in-flight messages
//! finish for up to `grace`; release whatever is still running (make it visible again at once)
//! so another worker takes it over without waiting for the visibility timeout. Nothing is acked
//! that was not finished, so a kill -9 at any point loses nothing either: the message simply
//! becomes visible again.

use crate::{RunnerMetrics, Stage, StageError, envelopes};
use p360_events::Envelope;
use p360_queue::{Delivery, NackOutcome, Publisher, Queue, QueueError};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// Tuning of one stage's runner.
#[derive(Clone, Debug)]
pub struct RunnerConfig {
    /// Messages handled at once.
    pub concurrency: usize,
    /// Visibility timeout per receive; the heartbeat renews it every third of it.
    pub visibility: Duration,
    /// Longest wait of one receive call (also the shutdown reaction time).
    pub poll_wait: Duration,
    /// How long in-flight messages may run on after shutdown begins.
    pub grace: Duration,
}

impl Default for RunnerConfig {
    fn default() -> Self {
        Self {
            concurrency: 4,
            visibility: Duration::from_secs(60),
            poll_wait: Duration::from_secs(1),
            grace: Duration::from_secs(20),
        }
    }
}

/// Everything a runner needs besides the stage.
#[derive(Clone, Debug)]
pub struct Wiring {
    pub queue: Arc<dyn Queue>,
    pub publisher: Arc<dyn Publisher>,
    pub metrics: RunnerMetrics,
}

/// Runs `stage` until `shutdown` is cancelled and in-flight work is finished or released.
pub async fn run(
    stage: Arc<dyn Stage>,
    wiring: Wiring,
    config: RunnerConfig,
    shutdown: CancellationToken,
) {
    let name = stage.name();
    let slots = Arc::new(Semaphore::new(config.concurrency.max(1)));
    let hard_stop = CancellationToken::new();
    let mut tasks = JoinSet::new();
    tracing::info!(
        stage = name,
        concurrency = config.concurrency,
        "stage started"
    );

    while !shutdown.is_cancelled() {
        let first = tokio::select! {
            p = slots.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            () = shutdown.cancelled() => break,
        };
        let free = 1 + slots.available_permits();
        // Short waits, and no cancellation mid-call: a receive cut off after the queue leased
        // messages would strand them until their visibility ran out.
        let deliveries = match wiring
            .queue
            .receive(name, free, config.visibility, config.poll_wait)
            .await
        {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(stage = name, error = %e, "receive failed; retrying");
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_secs(1)) => {}
                    () = shutdown.cancelled() => {}
                }
                continue;
            }
        };
        let mut permit = Some(first);
        for delivery in deliveries {
            let Some(p) = permit
                .take()
                .or_else(|| slots.clone().try_acquire_owned().ok())
            else {
                // Cannot happen (we asked for at most `free`); release rather than overrun.
                release(&*wiring.queue, name, &delivery).await;
                continue;
            };
            let span = tracing::info_span!("message", stage = name, message_id = %delivery.id, attempt = delivery.attempt);
            tasks.spawn(
                process(
                    stage.clone(),
                    wiring.clone(),
                    config.clone(),
                    delivery,
                    p,
                    hard_stop.clone(),
                )
                .instrument(span),
            );
        }
        while tasks.try_join_next().is_some() {}
    }

    tracing::info!(stage = name, in_flight = tasks.len(), "stage stopping");
    let drained = tokio::time::timeout(config.grace, async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            stage = name,
            in_flight = tasks.len(),
            "grace period over; releasing in-flight messages"
        );
        hard_stop.cancel();
        while tasks.join_next().await.is_some() {}
    }
    tracing::info!(stage = name, "stage stopped");
}

/// Makes a held message visible again at once.
async fn release(queue: &dyn Queue, name: &str, delivery: &Delivery) {
    if let Err(e) = queue.extend(name, delivery, Duration::ZERO).await {
        tracing::warn!(stage = name, error = %e, "release failed; the message reappears after its visibility timeout");
    }
}

async fn process(
    stage: Arc<dyn Stage>,
    wiring: Wiring,
    config: RunnerConfig,
    delivery: Delivery,
    _slot: OwnedSemaphorePermit,
    hard_stop: CancellationToken,
) {
    let name = stage.name();
    let queue = &*wiring.queue;
    let label = crate::metrics::StageLabel {
        stage: name.to_owned(),
    };
    let in_flight = wiring.metrics.in_flight.get_or_create(&label).clone();
    in_flight.inc();
    let started = Instant::now();

    let work = async {
        let env = Envelope::from_json(&delivery.body)
            .map_err(|e| StageError::Permanent(e.to_string()))?;
        let outputs = stage.handle(&env).await?;
        let outputs = envelopes(name, &env, outputs);
        wiring
            .publisher
            .publish(&outputs)
            .await
            .map_err(|e| StageError::Transient(format!("publishing outputs: {e}")))
    };
    let heartbeat = async {
        let every = (config.visibility / 3).max(Duration::from_millis(100));
        loop {
            tokio::time::sleep(every).await;
            if let Err(e) = queue.extend(name, &delivery, config.visibility).await {
                tracing::warn!(error = %e, "visibility extension failed");
            }
        }
    };
    let result = tokio::select! {
        r = work => Some(r),
        () = heartbeat => None,
        () = hard_stop.cancelled() => None,
    };

    let outcome = match result {
        None => {
            release(queue, name, &delivery).await;
            "released"
        }
        Some(Ok(())) => match queue.ack(name, &delivery).await {
            Ok(()) => "ok",
            Err(QueueError::LeaseLost { .. }) => {
                // Someone else holds it now and will redo the work; our outputs had
                // deterministic ids, so theirs are duplicates and get dropped.
                tracing::warn!("lease lost before ack");
                "lease_lost"
            }
            Err(e) => {
                tracing::warn!(error = %e, "ack failed; the message will be redelivered");
                "ack_failed"
            }
        },
        Some(Err(e)) if e.is_permanent() => {
            tracing::error!(error = %e, "permanent failure; dead-lettering");
            match queue.dead_letter(name, &delivery, &e.to_string()).await {
                Ok(()) => "dead_letter",
                Err(qe) => {
                    tracing::warn!(error = %qe, "dead-lettering failed");
                    "ack_failed"
                }
            }
        }
        Some(Err(e)) => match queue.nack(name, &delivery, &e.to_string()).await {
            Ok(NackOutcome::Retrying { after }) => {
                tracing::warn!(error = %e, retry_in_ms = after.as_millis() as u64, "handling failed; will retry");
                "retry"
            }
            Ok(NackOutcome::DeadLettered) => {
                tracing::error!(error = %e, "handling failed on the last attempt; dead-lettered");
                "dead_letter"
            }
            Err(qe) => {
                tracing::warn!(error = %qe, "nack failed; the message reappears after its visibility timeout");
                "ack_failed"
            }
        },
    };
    wiring.metrics.outcome(name, outcome);
    wiring
        .metrics
        .handle_seconds
        .get_or_create(&label)
        .observe(started.elapsed().as_secs_f64());
    in_flight.dec();
}
