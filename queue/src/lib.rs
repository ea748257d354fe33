//! The queue port and its adapters.
//!
//! # Contract (every adapter, checked by [`testsuite`])
//!
//! - **At-least-once.** A message received and not acknowledged before its visibility timeout
//!   runs out is delivered again, with `attempt` one higher. Consumers must be idempotent on the
//!   message id (the event id).
//! - **Ack after durable outputs.** A consumer acks only after everything the message caused is
//!   durable; `send` returns only when the messages are durable (fsynced or accepted by SQS).
//! - **Visibility.** `receive` hides each message for the given timeout; `extend` pushes the
//!   timeout out for long jobs while the consumer still holds the message.
//! - **Retries.** `nack` makes the message visible again after an exponential backoff; after
//!   [`QueuePolicy::max_attempts`] deliveries it goes to the queue's dead-letter queue together
//!   with the last error, and other messages keep flowing. `replay` puts dead letters back.
//! - **Dedup.** The embedded queue drops a message whose id the queue has already seen (within
//!   [`QueuePolicy::dedup_window`]), which makes redelivered handler outputs exactly-once. SQS
//!   standard queues do not dedup; consumers' idempotency covers that case.
//! - **Ordering** is not guaranteed.

pub mod embedded;
#[cfg(feature = "aws")]
pub mod eventbridge;
mod publish;
#[cfg(feature = "aws")]
pub mod sqs;
#[cfg(any(test, feature = "testsuite"))]
pub mod testsuite;

pub use publish::{Publisher, QueuePublisher, Routes};

use async_trait::async_trait;
use std::fmt;
use std::time::Duration;

/// Errors from a queue adapter. Messages carry ids and causes, never message bodies.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum QueueError {
    /// The receipt no longer holds the message: its visibility ran out and it was delivered
    /// again (or acked already). The caller's outputs stand; the new holder will redo the work.
    #[error("lease lost for message {id}: its visibility timeout expired before ack")]
    LeaseLost { id: String },
    #[error("queue {queue} is not declared")]
    UnknownQueue { queue: String },
    #[error("invalid request: {0}")]
    Invalid(String),
    /// Storage or network failure; retrying later may succeed.
    #[error("queue backend unavailable: {0}")]
    Unavailable(String),
}

impl QueueError {
    pub fn is_transient(&self) -> bool {
        matches!(self, QueueError::Unavailable(_))
    }
}

pub type Result<T, E = QueueError> = std::result::Result<T, E>;

/// Retry and dead-letter policy of one queue.
#[derive(Clone, Debug, PartialEq)]
pub struct QueuePolicy {
    /// Deliveries before a failing message is dead-lettered.
    pub max_attempts: u32,
    /// Delay before the first retry; doubles with each attempt (with ±20% jitter).
    pub backoff_base: Duration,
    /// Upper bound of the retry delay.
    pub backoff_max: Duration,
    /// How long the embedded queue remembers acked ids to drop duplicates.
    pub dedup_window: Duration,
}

impl Default for QueuePolicy {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            backoff_base: Duration::from_secs(1),
            backoff_max: Duration::from_secs(300),
            dedup_window: Duration::from_secs(24 * 3600),
        }
    }
}

impl QueuePolicy {
    /// Delay before the delivery after `attempt` failed deliveries.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let exp = attempt.saturating_sub(1).min(20);
        let base = self.backoff_base.saturating_mul(1u32 << exp);
        let capped = base.min(self.backoff_max);
        let jitter = rand::random_range(0.8..1.2);
        capped.mul_f64(jitter).min(self.backoff_max)
    }
}

/// A message to send. `id` is the dedup key (the event id).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutgoingMessage {
    pub id: String,
    pub body: String,
}

/// Proof of holding a received message; needed to ack, nack or extend it.
#[derive(Clone, PartialEq, Eq)]
pub struct Receipt(pub String);

impl fmt::Debug for Receipt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // SQS receipt handles are long; the tail is enough to tell them apart in a log.
        let tail = &self.0[self.0.len().saturating_sub(12)..];
        write!(f, "Receipt(…{tail})")
    }
}

/// A received message.
#[derive(Clone)]
pub struct Delivery {
    pub id: String,
    pub body: String,
    pub receipt: Receipt,
    /// 1 on first delivery.
    pub attempt: u32,
}

impl fmt::Debug for Delivery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Delivery")
            .field("id", &self.id)
            .field("attempt", &self.attempt)
            .finish_non_exhaustive()
    }
}

/// What a `nack` did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NackOutcome {
    /// Visible again after this delay.
    Retrying { after: Duration },
    /// Moved to the dead-letter queue.
    DeadLettered,
}

/// A message that exhausted its attempts.
#[derive(Clone)]
pub struct DeadLetter {
    pub id: String,
    pub body: String,
    pub attempts: u32,
    pub last_error: String,
    /// Milliseconds since the epoch.
    pub failed_at_ms: i64,
}

impl fmt::Debug for DeadLetter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeadLetter")
            .field("id", &self.id)
            .field("attempts", &self.attempts)
            .field("last_error", &self.last_error)
            .finish_non_exhaustive()
    }
}

/// Depth of one queue. SQS figures are approximate, as SQS reports them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QueueStats {
    /// Visible now.
    pub ready: u64,
    /// Received and not yet acked.
    pub in_flight: u64,
    /// Waiting for a retry backoff to pass.
    pub delayed: u64,
    /// In the dead-letter queue.
    pub dead: u64,
}

/// The queue port. See the crate docs for the contract.
#[async_trait]
pub trait Queue: Send + Sync + fmt::Debug {
    /// Creates the queue (and its dead-letter queue) if needed and sets its policy.
    async fn declare(&self, queue: &str, policy: QueuePolicy) -> Result<()>;

    /// Durably enqueues `messages` (any number; adapters batch as their backend requires).
    async fn send(&self, queue: &str, messages: &[OutgoingMessage]) -> Result<()>;

    /// Receives up to `max` messages, hiding each for `visibility`. Waits up to `wait` for the
    /// first message; returns an empty vector if none arrived.
    async fn receive(
        &self,
        queue: &str,
        max: usize,
        visibility: Duration,
        wait: Duration,
    ) -> Result<Vec<Delivery>>;

    /// Deletes a handled message.
    async fn ack(&self, queue: &str, delivery: &Delivery) -> Result<()>;

    /// Reports a failed attempt: retry after backoff, or dead-letter with `error`.
    async fn nack(&self, queue: &str, delivery: &Delivery, error: &str) -> Result<NackOutcome>;

    /// Moves a held message to the dead-letter queue at once, whatever its attempts: for
    /// failures that no retry can fix (undecodable body, invalid content).
    async fn dead_letter(&self, queue: &str, delivery: &Delivery, error: &str) -> Result<()>;

    /// Keeps a held message hidden for `visibility` from now.
    async fn extend(&self, queue: &str, delivery: &Delivery, visibility: Duration) -> Result<()>;

    /// Up to `limit` dead letters, oldest first.
    async fn dead_letters(&self, queue: &str, limit: usize) -> Result<Vec<DeadLetter>>;

    /// Moves dead letters back to the queue (all, or the one with `id`) with fresh attempts;
    /// returns how many moved.
    async fn replay(&self, queue: &str, id: Option<&str>) -> Result<usize>;

    async fn stats(&self, queue: &str) -> Result<QueueStats>;
}
