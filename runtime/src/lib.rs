//! Stages and the runners that drive them.
//!
//! A [`Stage`] is the unit of pipeline logic: it handles one event and returns the events it
//! causes. It knows nothing of queues, processes or Lambda. Two runners drive any stage:
//!
//! - [`local::run`]: tokio tasks in one process (`p360 serve`, `p360 worker <stage>`);
//! - [`lambda::handle_batch`] (feature `lambda`): one Lambda per stage, SQS event in, partial
//!   batch failures out.
//!
//! # Contract between a stage and its runner
//! - The runner wraps each output in an envelope whose id is derived from the input's id, the
//!   stage name and the output's position ([`p360_events::Envelope::child`]). A stage must
//!   return the same outputs in the same order when it handles the same event again, so a
//!   redelivered input republishes identical events, which the queue or the consumer drops.
//! - The runner acks the input only after the outputs are published durably.
//! - Side effects outside the outputs (writes to a store) must be idempotent on the event id.
//! - [`StageError::Transient`] is retried with backoff; [`StageError::Permanent`] goes to the
//!   dead-letter queue at once, with its message. Messages never contain patient data.

#[cfg(feature = "lambda")]
pub mod lambda;
pub mod local;
pub mod metrics;

pub use metrics::RunnerMetrics;

use async_trait::async_trait;
use p360_events::{Envelope, Event, EventType};

/// Why handling failed. The message is logged and stored with a dead letter: ids only.
#[derive(Clone, Debug, thiserror::Error)]
pub enum StageError {
    /// May succeed later (a store is down, a timeout): retried with backoff.
    #[error("transient: {0}")]
    Transient(String),
    /// Will never succeed (invalid content, a broken invariant): dead-lettered at once.
    #[error("permanent: {0}")]
    Permanent(String),
}

impl StageError {
    pub fn is_permanent(&self) -> bool {
        matches!(self, StageError::Permanent(_))
    }
}

/// A pipeline stage. See the crate docs for the contract.
#[async_trait]
pub trait Stage: Send + Sync + 'static {
    /// Stable name: the stage's queue, its metrics label, and part of its output ids.
    fn name(&self) -> &'static str;

    /// The event types this stage consumes.
    fn subscribes(&self) -> &'static [EventType];

    /// Handles one event; returns the events it causes, in a deterministic order.
    async fn handle(&self, event: &Envelope) -> Result<Vec<Event>, StageError>;
}

/// Wraps a stage's outputs in envelopes caused by `input`.
pub fn envelopes(stage: &str, input: &Envelope, outputs: Vec<Event>) -> Vec<Envelope> {
    outputs
        .into_iter()
        .enumerate()
        .map(|(i, e)| input.child(stage, u32::try_from(i).unwrap_or(u32::MAX), e))
        .collect()
}
