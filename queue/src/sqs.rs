//! Amazon SQS adapter (feature `aws`).
//!
//! Mapping of the port onto SQS:
//! - a queue `q` is the SQS queue `<prefix>q`, with a dead-letter queue `<prefix>q-dlq`
//!   attached by a redrive policy (`maxReceiveCount` = max attempts + 2): a backstop for
//!   consumers that crash in a loop before they can `nack`;
//! - the message id travels as the `p360_id` message attribute (SQS assigns its own ids);
//! - `nack` changes the visibility to the backoff; on the last attempt it moves the message to
//!   the DLQ itself, with the error in the `p360_error` attribute, so dead letters keep their
//!   error (a redrive would lose it);
//! - `replay` moves messages from the DLQ back to the source queue.

use crate::{
    DeadLetter, Delivery, NackOutcome, OutgoingMessage, Queue, QueueError, QueuePolicy, QueueStats,
    Receipt, Result,
};
use async_trait::async_trait;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::error::DisplayErrorContext;
use aws_sdk_sqs::types::{
    MessageAttributeValue, MessageSystemAttributeName, QueueAttributeName,
    SendMessageBatchRequestEntry,
};
use std::collections::{BTreeSet, HashMap};
use std::time::Duration;
use tokio::sync::RwLock;

const ATTR_ID: &str = "p360_id";
const ATTR_ERROR: &str = "p360_error";
const ATTR_ATTEMPTS: &str = "p360_attempts";
/// SQS limits: 10 messages per batch call, 20 s long poll, 12 h visibility.
const SQS_BATCH: usize = 10;
const SQS_MAX_WAIT_S: i32 = 20;
const SQS_MAX_VISIBILITY_S: u64 = 12 * 3600;

#[derive(Clone, Debug)]
struct Urls {
    main: String,
    dlq: String,
}

/// The SQS queue adapter.
#[derive(Debug)]
pub struct SqsQueue {
    client: Client,
    prefix: String,
    urls: RwLock<HashMap<String, Urls>>,
    policies: RwLock<HashMap<String, QueuePolicy>>,
}

fn unavailable<E: std::error::Error>(op: &str, e: E) -> QueueError {
    QueueError::Unavailable(format!("sqs {op}: {}", DisplayErrorContext(e)))
}

/// Visibility in whole seconds, rounded up, within SQS's range.
fn secs(d: Duration) -> i32 {
    let s = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    i32::try_from(s.min(SQS_MAX_VISIBILITY_S)).unwrap_or(i32::MAX)
}

impl SqsQueue {
    /// `prefix` namespaces the queues of one deployment (e.g. `p360-prod-`).
    pub fn new(client: Client, prefix: impl Into<String>) -> Self {
        Self {
            client,
            prefix: prefix.into(),
            urls: RwLock::default(),
            policies: RwLock::default(),
        }
    }

    pub fn from_conf(conf: &aws_config::SdkConfig, prefix: impl Into<String>) -> Self {
        Self::new(Client::new(conf), prefix)
    }

    /// The SQS queue URL of queue `q` (for wiring EventBridge targets and S3 notifications).
    pub async fn url(&self, queue: &str) -> Result<String> {
        Ok(self.urls(queue).await?.main)
    }

    /// The ARN of queue `q`.
    pub async fn arn(&self, queue: &str) -> Result<String> {
        let url = self.url(queue).await?;
        self.arn_of(&url).await
    }

    async fn arn_of(&self, url: &str) -> Result<String> {
        let out = self
            .client
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .map_err(|e| unavailable("GetQueueAttributes", e))?;
        out.attributes()
            .and_then(|a| a.get(&QueueAttributeName::QueueArn))
            .cloned()
            .ok_or_else(|| QueueError::Unavailable("sqs returned no QueueArn".into()))
    }

    async fn urls(&self, queue: &str) -> Result<Urls> {
        if let Some(u) = self.urls.read().await.get(queue) {
            return Ok(u.clone());
        }
        // Not declared by this process (e.g. the `p360 dlq` command): look the queues up.
        let lookup = |name: String| async move {
            self.client
                .get_queue_url()
                .queue_name(name)
                .send()
                .await
                .map_err(|_| QueueError::UnknownQueue {
                    queue: queue.to_owned(),
                })
                .and_then(|o| {
                    o.queue_url
                        .ok_or_else(|| QueueError::Unavailable("sqs returned no queue url".into()))
                })
        };
        let urls = Urls {
            main: lookup(format!("{}{queue}", self.prefix)).await?,
            dlq: lookup(format!("{}{queue}-dlq", self.prefix)).await?,
        };
        self.urls
            .write()
            .await
            .insert(queue.to_owned(), urls.clone());
        Ok(urls)
    }

    async fn policy(&self, queue: &str) -> QueuePolicy {
        self.policies
            .read()
            .await
            .get(queue)
            .cloned()
            .unwrap_or_default()
    }

    async fn send_to(
        &self,
        url: &str,
        messages: &[(OutgoingMessage, Option<(&str, u32)>)],
    ) -> Result<()> {
        for chunk in messages.chunks(SQS_BATCH) {
            let mut entries = Vec::with_capacity(chunk.len());
            for (i, (m, dead)) in chunk.iter().enumerate() {
                let mut b = SendMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .message_body(&m.body)
                    .message_attributes(ATTR_ID, string_attr(&m.id)?);
                if let Some((error, attempts)) = dead {
                    b = b
                        .message_attributes(ATTR_ERROR, string_attr(error)?)
                        .message_attributes(ATTR_ATTEMPTS, number_attr(*attempts)?);
                }
                entries.push(
                    b.build()
                        .map_err(|e| QueueError::Invalid(format!("sqs batch entry: {e}")))?,
                );
            }
            let out = self
                .client
                .send_message_batch()
                .queue_url(url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| unavailable("SendMessageBatch", e))?;
            if let Some(f) = out.failed().first() {
                return Err(QueueError::Unavailable(format!(
                    "sqs SendMessageBatch: {} of {} entries failed ({}: {})",
                    out.failed().len(),
                    chunk.len(),
                    f.code(),
                    f.message().unwrap_or("no message")
                )));
            }
        }
        Ok(())
    }

    /// Receives from a raw queue URL.
    async fn receive_url(
        &self,
        url: &str,
        max: usize,
        visibility: Duration,
        wait: Duration,
    ) -> Result<Vec<aws_sdk_sqs::types::Message>> {
        let out = self
            .client
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(i32::try_from(max.clamp(1, SQS_BATCH)).unwrap_or(10))
            .visibility_timeout(secs(visibility))
            .wait_time_seconds(
                i32::try_from(wait.as_secs())
                    .unwrap_or(SQS_MAX_WAIT_S)
                    .min(SQS_MAX_WAIT_S),
            )
            .message_attribute_names("All")
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .send()
            .await
            .map_err(|e| unavailable("ReceiveMessage", e))?;
        Ok(out.messages.unwrap_or_default())
    }

    async fn delete(&self, url: &str, receipt: &str) -> Result<()> {
        self.client
            .delete_message()
            .queue_url(url)
            .receipt_handle(receipt)
            .send()
            .await
            .map_err(|e| unavailable("DeleteMessage", e))?;
        Ok(())
    }

    /// Reads the DLQ without consuming it: messages are received with visibility 0, so they
    /// stay available; repeated receives are de-duplicated by id.
    async fn peek_dlq(&self, url: &str, limit: usize) -> Result<Vec<DeadLetter>> {
        let mut seen = BTreeSet::new();
        let mut out = Vec::new();
        let mut idle_rounds = 0;
        while out.len() < limit && idle_rounds < 3 {
            let batch = self
                .receive_url(url, SQS_BATCH, Duration::ZERO, Duration::ZERO)
                .await?;
            let mut new = 0;
            for m in batch {
                let letter = dead_letter(&m);
                if seen.insert(letter.id.clone()) {
                    new += 1;
                    out.push(letter);
                }
            }
            idle_rounds = if new == 0 { idle_rounds + 1 } else { 0 };
        }
        out.truncate(limit);
        Ok(out)
    }
}

fn string_attr(v: &str) -> Result<MessageAttributeValue> {
    MessageAttributeValue::builder()
        .data_type("String")
        .string_value(v)
        .build()
        .map_err(|e| QueueError::Invalid(format!("sqs attribute: {e}")))
}

fn number_attr(v: u32) -> Result<MessageAttributeValue> {
    MessageAttributeValue::builder()
        .data_type("Number")
        .string_value(v.to_string())
        .build()
        .map_err(|e| QueueError::Invalid(format!("sqs attribute: {e}")))
}

fn attr<'a>(m: &'a aws_sdk_sqs::types::Message, name: &str) -> Option<&'a str> {
    m.message_attributes()
        .and_then(|a| a.get(name))
        .and_then(|v| v.string_value())
}

fn receive_count(m: &aws_sdk_sqs::types::Message) -> u32 {
    m.attributes()
        .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
        .and_then(|v| v.parse().ok())
        .unwrap_or(1)
}

fn delivery(m: aws_sdk_sqs::types::Message) -> Delivery {
    let id = attr(&m, ATTR_ID)
        .map(str::to_owned)
        .or_else(|| m.message_id.clone())
        .unwrap_or_default();
    let attempt = receive_count(&m);
    Delivery {
        id,
        attempt,
        receipt: Receipt(m.receipt_handle.unwrap_or_default()),
        body: m.body.unwrap_or_default(),
    }
}

fn dead_letter(m: &aws_sdk_sqs::types::Message) -> DeadLetter {
    DeadLetter {
        id: attr(m, ATTR_ID)
            .or(m.message_id())
            .unwrap_or_default()
            .to_owned(),
        body: m.body().unwrap_or_default().to_owned(),
        attempts: attr(m, ATTR_ATTEMPTS)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| receive_count(m)),
        last_error: attr(m, ATTR_ERROR)
            .unwrap_or("moved by the SQS redrive policy (consumer did not report an error)")
            .to_owned(),
        failed_at_ms: 0,
    }
}

#[async_trait]
impl Queue for SqsQueue {
    async fn declare(&self, queue: &str, policy: QueuePolicy) -> Result<()> {
        let dlq_name = format!("{}{queue}-dlq", self.prefix);
        let dlq = self
            .client
            .create_queue()
            .queue_name(&dlq_name)
            .attributes(QueueAttributeName::MessageRetentionPeriod, "1209600")
            .send()
            .await
            .map_err(|e| unavailable("CreateQueue", e))?
            .queue_url
            .ok_or_else(|| QueueError::Unavailable("sqs returned no queue url".into()))?;
        let dlq_arn = self.arn_of(&dlq).await?;
        let redrive = serde_json::json!({
            "deadLetterTargetArn": dlq_arn,
            "maxReceiveCount": policy.max_attempts.saturating_add(2),
        });
        let main = self
            .client
            .create_queue()
            .queue_name(format!("{}{queue}", self.prefix))
            .send()
            .await
            .map_err(|e| unavailable("CreateQueue", e))?
            .queue_url
            .ok_or_else(|| QueueError::Unavailable("sqs returned no queue url".into()))?;
        // Set separately so re-declaring an existing queue updates its policy.
        self.client
            .set_queue_attributes()
            .queue_url(&main)
            .attributes(QueueAttributeName::RedrivePolicy, redrive.to_string())
            .send()
            .await
            .map_err(|e| unavailable("SetQueueAttributes", e))?;
        self.urls
            .write()
            .await
            .insert(queue.to_owned(), Urls { main, dlq });
        self.policies.write().await.insert(queue.to_owned(), policy);
        Ok(())
    }

    async fn send(&self, queue: &str, messages: &[OutgoingMessage]) -> Result<()> {
        let url = self.urls(queue).await?.main;
        let plain: Vec<_> = messages.iter().map(|m| (m.clone(), None)).collect();
        self.send_to(&url, &plain).await
    }

    async fn receive(
        &self,
        queue: &str,
        max: usize,
        visibility: Duration,
        wait: Duration,
    ) -> Result<Vec<Delivery>> {
        let url = self.urls(queue).await?.main;
        Ok(self
            .receive_url(&url, max, visibility, wait)
            .await?
            .into_iter()
            .map(delivery)
            .collect())
    }

    async fn ack(&self, queue: &str, delivery: &Delivery) -> Result<()> {
        let url = self.urls(queue).await?.main;
        self.delete(&url, &delivery.receipt.0).await
    }

    async fn nack(&self, queue: &str, delivery: &Delivery, error: &str) -> Result<NackOutcome> {
        let urls = self.urls(queue).await?;
        let policy = self.policy(queue).await;
        if delivery.attempt >= policy.max_attempts {
            self.dead_letter(queue, delivery, error).await?;
            return Ok(NackOutcome::DeadLettered);
        }
        let after = policy.backoff(delivery.attempt);
        self.client
            .change_message_visibility()
            .queue_url(&urls.main)
            .receipt_handle(&delivery.receipt.0)
            .visibility_timeout(secs(after))
            .send()
            .await
            .map_err(|e| unavailable("ChangeMessageVisibility", e))?;
        Ok(NackOutcome::Retrying { after })
    }

    async fn dead_letter(&self, queue: &str, delivery: &Delivery, error: &str) -> Result<()> {
        let urls = self.urls(queue).await?;
        let error: String = error.chars().take(2048).collect();
        let msg = OutgoingMessage {
            id: delivery.id.clone(),
            body: delivery.body.clone(),
        };
        self.send_to(
            &urls.dlq,
            &[(msg, Some((error.as_str(), delivery.attempt)))],
        )
        .await?;
        self.delete(&urls.main, &delivery.receipt.0).await
    }

    async fn extend(&self, queue: &str, delivery: &Delivery, visibility: Duration) -> Result<()> {
        let url = self.urls(queue).await?.main;
        self.client
            .change_message_visibility()
            .queue_url(&url)
            .receipt_handle(&delivery.receipt.0)
            .visibility_timeout(secs(visibility))
            .send()
            .await
            .map_err(|e| unavailable("ChangeMessageVisibility", e))?;
        Ok(())
    }

    async fn dead_letters(&self, queue: &str, limit: usize) -> Result<Vec<DeadLetter>> {
        let url = self.urls(queue).await?.dlq;
        self.peek_dlq(&url, limit).await
    }

    async fn replay(&self, queue: &str, id: Option<&str>) -> Result<usize> {
        let urls = self.urls(queue).await?;
        let mut moved = 0;
        let mut skipped = BTreeSet::new();
        loop {
            let batch = self
                .receive_url(
                    &urls.dlq,
                    SQS_BATCH,
                    Duration::from_secs(30),
                    Duration::ZERO,
                )
                .await?;
            if batch.is_empty() {
                break;
            }
            let mut progressed = false;
            for m in batch {
                let letter = dead_letter(&m);
                if id.is_some_and(|want| want != letter.id) {
                    // Not ours: make it visible again at once for other readers.
                    if skipped.insert(letter.id.clone()) {
                        progressed = true;
                    }
                    self.client
                        .change_message_visibility()
                        .queue_url(&urls.dlq)
                        .receipt_handle(m.receipt_handle().unwrap_or_default())
                        .visibility_timeout(0)
                        .send()
                        .await
                        .map_err(|e| unavailable("ChangeMessageVisibility", e))?;
                    continue;
                }
                let msg = OutgoingMessage {
                    id: letter.id,
                    body: letter.body,
                };
                self.send_to(&urls.main, &[(msg, None)]).await?;
                self.delete(&urls.dlq, m.receipt_handle().unwrap_or_default())
                    .await?;
                moved += 1;
                progressed = true;
            }
            if !progressed {
                break;
            }
        }
        Ok(moved)
    }

    async fn stats(&self, queue: &str) -> Result<QueueStats> {
        let urls = self.urls(queue).await?;
        let count = |url: String| async move {
            let out = self
                .client
                .get_queue_attributes()
                .queue_url(url)
                .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
                .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
                .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesDelayed)
                .send()
                .await
                .map_err(|e| unavailable("GetQueueAttributes", e))?;
            let get = |k: QueueAttributeName| -> u64 {
                out.attributes()
                    .and_then(|a| a.get(&k))
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0)
            };
            Ok::<_, QueueError>((
                get(QueueAttributeName::ApproximateNumberOfMessages),
                get(QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
                get(QueueAttributeName::ApproximateNumberOfMessagesDelayed),
            ))
        };
        let (ready, in_flight, delayed) = count(urls.main).await?;
        let (dead_ready, dead_hidden, _) = count(urls.dlq).await?;
        Ok(QueueStats {
            ready,
            in_flight,
            delayed,
            dead: dead_ready + dead_hidden,
        })
    }
}
