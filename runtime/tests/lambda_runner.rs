//! The Lambda runner, driven directly with an SQS event fixture (no emulator needed).
#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions
#![cfg(feature = "lambda")]

mod common;

use aws_lambda_events::event::sqs::SqsEvent;
use common::{Probe, document};
use p360_events::Envelope;
use p360_queue::Publisher;
use std::sync::Mutex;

#[derive(Debug, Default)]
struct Collect(Mutex<Vec<Envelope>>);

#[async_trait::async_trait]
impl Publisher for Collect {
    async fn publish(&self, events: &[Envelope]) -> p360_queue::Result<()> {
        self.0.lock().unwrap().extend_from_slice(events);
        Ok(())
    }
}

fn fixture() -> SqsEvent {
    let raw = include_str!("../testdata/sqs-event.json");
    let mut event: serde_json::Value = serde_json::from_str(raw).unwrap();
    // Fill the bodies with real envelopes; the rest of the record is AWS's shape verbatim.
    let bodies = [
        document("doc-1").to_json(),
        document("doc-poison").to_json(),
        "{\"not\": \"an envelope\"}".to_owned(),
        document("doc-flaky").to_json(),
    ];
    for (record, body) in event["Records"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .zip(bodies)
    {
        record["body"] = serde_json::Value::String(body);
    }
    serde_json::from_value(event).unwrap()
}

#[tokio::test]
async fn sqs_batch_reports_only_the_failed_records() {
    let probe = Probe::default();
    let publisher = Collect::default();
    let response = p360_runtime::lambda::handle_batch(&probe, &publisher, None, fixture()).await;
    let mut failed: Vec<_> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    failed.sort();
    // poison + undecodable (permanent, no queue to dead-letter into) + flaky (transient).
    assert_eq!(failed, ["msg-2", "msg-3", "msg-4"]);
    {
        let published = publisher.0.lock().unwrap();
        assert_eq!(published.len(), 1);
        assert_eq!(published[0].causationid, Some(document("doc-1").id));
    }

    // SQS redelivers the flaky record; it fails once more, then succeeds.
    let mut retry = fixture();
    retry
        .records
        .retain(|r| r.message_id.as_deref() == Some("msg-4"));
    let r1 = p360_runtime::lambda::handle_batch(&probe, &publisher, None, retry.clone()).await;
    assert_eq!(r1.batch_item_failures.len(), 1);
    let r2 = p360_runtime::lambda::handle_batch(&probe, &publisher, None, retry).await;
    assert!(r2.batch_item_failures.is_empty());
    assert_eq!(publisher.0.lock().unwrap().len(), 2);
}
