//! Amazon EventBridge publisher (feature `aws`): fan-out on AWS.
//!
//! Each envelope becomes one entry: `Source` = the envelope's `source`, `DetailType` = its
//! CloudEvents `type`, `Detail` = the whole envelope. Rules on the bus (declared in `infra/`)
//! route by `detail-type` to each stage's SQS queue, which then receives the EventBridge event
//! with the envelope under `detail`; `Envelope::from_json` unwraps it.

use crate::{Publisher, QueueError, Result};
use async_trait::async_trait;
use aws_sdk_eventbridge::Client;
use aws_sdk_eventbridge::error::DisplayErrorContext;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use p360_events::Envelope;

/// PutEvents takes at most 10 entries per call.
const PUT_EVENTS_BATCH: usize = 10;
/// Failed entries (throttling, internal errors) are retried this many times.
const ENTRY_RETRIES: usize = 3;

#[derive(Debug, Clone)]
pub struct EventBridgePublisher {
    client: Client,
    bus: String,
}

impl EventBridgePublisher {
    pub fn new(client: Client, bus: impl Into<String>) -> Self {
        Self {
            client,
            bus: bus.into(),
        }
    }

    pub fn from_conf(conf: &aws_config::SdkConfig, bus: impl Into<String>) -> Self {
        Self::new(Client::new(conf), bus)
    }

    fn entry(&self, env: &Envelope) -> PutEventsRequestEntry {
        PutEventsRequestEntry::builder()
            .event_bus_name(&self.bus)
            .source(&env.source)
            .detail_type(env.event_type().as_str())
            .detail(env.to_json())
            .time(aws_sdk_eventbridge::primitives::DateTime::from_millis(
                env.time.timestamp_millis(),
            ))
            .build()
    }
}

#[async_trait]
impl Publisher for EventBridgePublisher {
    async fn publish(&self, events: &[Envelope]) -> Result<()> {
        for chunk in events.chunks(PUT_EVENTS_BATCH) {
            let mut pending: Vec<PutEventsRequestEntry> =
                chunk.iter().map(|e| self.entry(e)).collect();
            for round in 0..=ENTRY_RETRIES {
                let out = self
                    .client
                    .put_events()
                    .set_entries(Some(pending.clone()))
                    .send()
                    .await
                    .map_err(|e| {
                        QueueError::Unavailable(format!(
                            "eventbridge PutEvents: {}",
                            DisplayErrorContext(e)
                        ))
                    })?;
                if out.failed_entry_count() == 0 {
                    pending.clear();
                    break;
                }
                // Results are positional: keep the entries that failed, retry them.
                let results = out.entries();
                let failed: Vec<_> = pending
                    .iter()
                    .zip(results)
                    .filter(|(_, r)| r.error_code().is_some())
                    .map(|(e, _)| e.clone())
                    .collect();
                let code = results
                    .iter()
                    .find_map(|r| r.error_code())
                    .unwrap_or("unknown")
                    .to_owned();
                pending = failed;
                if round == ENTRY_RETRIES {
                    return Err(QueueError::Unavailable(format!(
                        "eventbridge PutEvents: {} entries still failing ({code})",
                        pending.len()
                    )));
                }
                tokio::time::sleep(std::time::Duration::from_millis(100 << round)).await;
            }
        }
        Ok(())
    }
}
