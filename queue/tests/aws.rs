//! The queue conformance suite and the EventBridge fan-out against an AWS-compatible endpoint
//! (moto server), started by `scripts/moto.sh` and named by `P360_TEST_AWS_ENDPOINT`.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions
#![cfg(feature = "aws")]

use aws_config::BehaviorVersion;
use p360_events::{Envelope, EventId, EventType};
use p360_queue::eventbridge::EventBridgePublisher;
use p360_queue::sqs::SqsQueue;
use p360_queue::{Publisher, Queue, QueuePolicy, testsuite};
use std::time::Duration;

async fn conf() -> aws_config::SdkConfig {
    let endpoint = std::env::var("P360_TEST_AWS_ENDPOINT")
        .expect("P360_TEST_AWS_ENDPOINT must name a moto server (scripts/moto.sh start prints it)");
    aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_sqs::config::Credentials::new(
            "test", "test", None, None, "static",
        ))
        .load()
        .await
}

fn unique(prefix: &str) -> String {
    format!(
        "{prefix}{}-",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    )
}

#[tokio::test]
async fn sqs_passes_the_queue_conformance_suite() {
    let q = SqsQueue::from_conf(&conf().await, unique("p360t"));
    testsuite::run_all(&q, "c").await;
}

#[tokio::test]
async fn eventbridge_rules_fan_out_to_sqs() {
    let conf = conf().await;
    let q = SqsQueue::from_conf(&conf, unique("p360eb"));
    q.declare("extract", QueuePolicy::default()).await.unwrap();
    let arn = q.arn("extract").await.unwrap();

    let eb = aws_sdk_eventbridge::Client::new(&conf);
    let bus = format!("p360-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    eb.create_event_bus().name(&bus).send().await.unwrap();
    let pattern = serde_json::json!({"detail-type": [EventType::DocumentReceived.as_str()]});
    eb.put_rule()
        .name("to-extract")
        .event_bus_name(&bus)
        .event_pattern(pattern.to_string())
        .send()
        .await
        .unwrap();
    eb.put_targets()
        .rule("to-extract")
        .event_bus_name(&bus)
        .targets(
            aws_sdk_eventbridge::types::Target::builder()
                .id("extract-queue")
                .arn(arn)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();

    let doc = sample_document_received();
    let other = sample_graph_changed();
    // 12 events: more than one PutEvents batch.
    let mut events = vec![other];
    for i in 0..11u32 {
        let mut e = doc.clone();
        e.id = EventId::derived(doc.id, "t", i);
        events.push(e);
    }
    EventBridgePublisher::from_conf(&conf, &bus)
        .publish(&events)
        .await
        .unwrap();

    let mut got = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while got.len() < 11 && tokio::time::Instant::now() < deadline {
        for d in q
            .receive(
                "extract",
                10,
                Duration::from_secs(30),
                Duration::from_secs(1),
            )
            .await
            .unwrap()
        {
            let env = Envelope::from_json(&d.body).expect("EventBridge-wrapped envelope decodes");
            assert_eq!(
                env.event_type(),
                EventType::DocumentReceived,
                "rule filtered"
            );
            got.push(env.id);
            q.ack("extract", &d).await.unwrap();
        }
    }
    got.sort();
    got.dedup();
    assert_eq!(got.len(), 11);
}

fn sample_document_received() -> Envelope {
    let body = r#"{"specversion":"1.0","id":"00000000-0000-0000-0000-000000000001","source":"/p360/test",
      "time":"2026-03-18T08:15:00Z","datacontenttype":"application/json","schemaversion":1,
      "correlationid":"00000000-0000-0000-0000-000000000001","patientid":"pat-1",
      "type":"p360.document.received","data":{"document_id":"doc-1","patient_id":"pat-1",
      "object":{"key":"raw/pat-1/x.png","sha256":"00","size":1,"media_type":"image/png"},
      "channel":"upload","received_at":"2026-03-18T08:15:00Z"}}"#;
    Envelope::from_json(body).unwrap()
}

fn sample_graph_changed() -> Envelope {
    let body = r#"{"specversion":"1.0","id":"00000000-0000-0000-0000-000000000002","source":"/p360/test",
      "time":"2026-03-18T08:15:00Z","schemaversion":1,
      "correlationid":"00000000-0000-0000-0000-000000000002",
      "type":"p360.graph.changed","data":{"patient_id":"pat-1","commit_id":"c1",
      "committed_at":"2026-03-18T08:15:00Z","changes":[]}}"#;
    Envelope::from_json(body).unwrap()
}

/// The redrive policy is the backstop for consumers that crash before they can nack: SQS
/// itself moves a message received `max_attempts + 2` times without an ack to the DLQ.
#[tokio::test]
async fn sqs_redrive_policy_catches_consumers_that_never_report() {
    let q = SqsQueue::from_conf(&conf().await, unique("p360rd"));
    let policy = QueuePolicy {
        max_attempts: 1,
        ..QueuePolicy::default()
    };
    q.declare("crashy", policy).await.unwrap();
    q.send(
        "crashy",
        &[p360_queue::OutgoingMessage {
            id: "m1".into(),
            body: "{}".into(),
        }],
    )
    .await
    .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let mut receives = 0;
    while q.stats("crashy").await.unwrap().dead == 0 {
        assert!(tokio::time::Instant::now() < deadline, "never redriven");
        // Take the message and "crash": no ack, no nack; it reappears after 1 s.
        receives += q
            .receive("crashy", 1, Duration::from_secs(1), Duration::from_secs(2))
            .await
            .unwrap()
            .len();
    }
    assert_eq!(receives, 3, "moved after max_attempts + 2 receives");
    let dead = q.dead_letters("crashy", 10).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].id, "m1");
    assert!(
        dead[0].last_error.contains("redrive"),
        "{}",
        dead[0].last_error
    );
}
