//! Runner metrics (Prometheus). Labels are stage names and outcomes: never ids or patient data.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StageLabel {
    pub stage: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabel {
    pub stage: String,
    /// `ok`, `retry`, `dead_letter`, `lease_lost`.
    pub outcome: String,
}

/// Counters and gauges shared by all local runners of a process.
#[derive(Clone, Debug)]
pub struct RunnerMetrics {
    pub handled: Family<OutcomeLabel, Counter>,
    pub in_flight: Family<StageLabel, Gauge>,
    pub handle_seconds: Family<StageLabel, Histogram>,
}

impl Default for RunnerMetrics {
    fn default() -> Self {
        Self {
            handled: Family::default(),
            in_flight: Family::default(),
            handle_seconds: Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(0.001, 2.0, 16))
            }),
        }
    }
}

impl RunnerMetrics {
    /// Creates the metrics and registers them in `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let m = Self::default();
        registry.register(
            "stage_messages",
            "Messages a stage finished, by outcome (retry = failed and will be retried)",
            m.handled.clone(),
        );
        registry.register(
            "stage_in_flight",
            "Messages a stage is handling now",
            m.in_flight.clone(),
        );
        registry.register(
            "stage_handle_seconds",
            "Time to handle one message, publish its outputs and ack it",
            m.handle_seconds.clone(),
        );
        m
    }

    pub(crate) fn outcome(&self, stage: &str, outcome: &str) {
        self.handled
            .get_or_create(&OutcomeLabel {
                stage: stage.to_owned(),
                outcome: outcome.to_owned(),
            })
            .inc();
    }
}
