//! Publishing events: the fan-out from an event type to the queues of the stages that
//! subscribe to it. Embedded, [`QueuePublisher`] sends to each subscribed queue itself; on AWS
//! the same routing is done by EventBridge rules (see `eventbridge`), declared in `infra/`.

use crate::{OutgoingMessage, Queue, Result};
use async_trait::async_trait;
use p360_events::{Envelope, EventType};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Publishes events durably: when `publish` returns, every subscriber will receive them.
#[async_trait]
pub trait Publisher: Send + Sync + std::fmt::Debug {
    async fn publish(&self, events: &[Envelope]) -> Result<()>;
}

/// Which queues receive which event types.
#[derive(Clone, Debug, Default)]
pub struct Routes {
    by_type: BTreeMap<EventType, Vec<String>>,
}

impl Routes {
    pub fn new() -> Self {
        Self::default()
    }

    /// Delivers events of `event_type` to `queue` as well.
    pub fn subscribe(&mut self, event_type: EventType, queue: impl Into<String>) -> &mut Self {
        let queue = queue.into();
        let subs = self.by_type.entry(event_type).or_default();
        if !subs.contains(&queue) {
            subs.push(queue);
        }
        self
    }

    pub fn queues_for(&self, event_type: EventType) -> &[String] {
        self.by_type.get(&event_type).map_or(&[], Vec::as_slice)
    }

    /// Every queue that some route delivers to.
    pub fn queues(&self) -> Vec<String> {
        let mut all: Vec<String> = self.by_type.values().flatten().cloned().collect();
        all.sort();
        all.dedup();
        all
    }
}

/// A publisher that sends each event to the queues subscribed to its type, through a [`Queue`].
/// Events nobody subscribes to are dropped (logged at debug): publishing must not depend on
/// which stages a deployment runs.
#[derive(Clone, Debug)]
pub struct QueuePublisher {
    queue: Arc<dyn Queue>,
    routes: Arc<Routes>,
}

impl QueuePublisher {
    pub fn new(queue: Arc<dyn Queue>, routes: Routes) -> Self {
        Self {
            queue,
            routes: Arc::new(routes),
        }
    }

    pub fn routes(&self) -> &Routes {
        &self.routes
    }
}

#[async_trait]
impl Publisher for QueuePublisher {
    async fn publish(&self, events: &[Envelope]) -> Result<()> {
        let mut per_queue: BTreeMap<&str, Vec<OutgoingMessage>> = BTreeMap::new();
        for env in events {
            let subs = self.routes.queues_for(env.event_type());
            if subs.is_empty() {
                tracing::debug!(event_id = %env.id, event_type = %env.event_type(), "no subscriber");
            }
            for q in subs {
                per_queue.entry(q).or_default().push(OutgoingMessage {
                    id: env.id.to_string(),
                    body: env.to_json(),
                });
            }
        }
        for (q, msgs) in per_queue {
            self.queue.send(q, &msgs).await?;
        }
        Ok(())
    }
}
