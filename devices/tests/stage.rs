//! The devices stage called directly: a batch is merged once, a redelivery answers the same,
//! the same samples again are duplicates, and a later sample of a day recomputes its summary
//! under the same fact id.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

use chrono::{DateTime, Utc};
use object_store::local::LocalFileSystem;
use object_store::{ObjectStore, ObjectStoreExt};
use p360_devices::store::{self, StoredRecord};
use p360_devices::{Device, DevicesStage, Metric, Sample};
use p360_events::{Event, PatientId, ReadingsChannel, UserId};
use p360_model::{Fact, FactBody, Value};
use p360_runtime::Stage;
use std::sync::Arc;

fn hr(start: &str, value: f64) -> Sample {
    Sample {
        device: "watch-1".into(),
        metric: Metric::HeartRate,
        start: DateTime::parse_from_rfc3339(start).unwrap(),
        end: None,
        value,
    }
}

async fn submit(objects: &dyn ObjectStore, samples: Vec<Sample>) -> store::Submission {
    let device = Device {
        id: "watch-1".into(),
        name: Some("Test Watch".into()),
        model: None,
    };
    store::submit(
        objects,
        &PatientId::parse("pat-1").unwrap(),
        &UserId::parse("usr-1").unwrap(),
        ReadingsChannel::Api,
        "/test",
        &[device],
        samples,
    )
    .await
    .unwrap()
}

async fn facts_of(objects: &dyn ObjectStore, out: &[Event]) -> Vec<Fact> {
    let Some(Event::FactsResolved(r)) = out.first() else {
        panic!("facts first: {out:?}")
    };
    let bytes = objects
        .get(&r.facts.key.as_str().into())
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

fn value(f: &Fact) -> f64 {
    let FactBody::Observation(o) = &f.body else {
        panic!("an observation")
    };
    let Some(Value::Quantity { value, .. }) = o.value else {
        panic!("a quantity")
    };
    value
}

fn stored(out: &[Event]) -> (u32, String) {
    match out.last() {
        Some(Event::DeviceReadingsStored(s)) => (s.sample_count, s.samples.key.clone()),
        other => panic!("stored last: {other:?}"),
    }
}

#[tokio::test]
async fn batches_merge_once_and_recompute_their_days() {
    let dir = tempfile::tempdir().unwrap();
    let objects: Arc<dyn ObjectStore> =
        Arc::new(LocalFileSystem::new_with_prefix(dir.path()).unwrap());
    let stage = DevicesStage::new(objects.clone());

    let first = submit(
        &*objects,
        vec![
            hr("2026-03-01T08:00:00-05:00", 60.0),
            hr("2026-03-01T20:00:00-05:00", 80.0),
            hr("2026-03-01T13:00:00Z", 60.0),
        ],
    )
    .await;
    assert_eq!((first.accepted, first.duplicates), (2, 1));
    let event = first.event.unwrap();
    let out = stage.handle(&event).await.unwrap();
    let facts = facts_of(&*objects, &out).await;
    assert_eq!(facts.len(), 1);
    assert_eq!(value(&facts[0]), 70.0);
    assert_eq!(stored(&out).0, 2);

    // Redelivered after the merge: the same answer, although every sample is stored now.
    let again = stage.handle(&event).await.unwrap();
    assert_eq!(stored(&again), stored(&out));
    assert_eq!(facts_of(&*objects, &again).await[0].id, facts[0].id);

    // The same samples again: nothing to store, no event.
    let dup = submit(&*objects, vec![hr("2026-03-01T08:00:00-05:00", 60.0)]).await;
    assert_eq!((dup.accepted, dup.duplicates), (0, 1));
    assert!(dup.event.is_none());

    // A later sample of the 1st: the day's summary is recomputed, under the same id.
    let later = submit(
        &*objects,
        vec![
            hr("2026-03-01T08:00:00-05:00", 60.0),
            hr("2026-03-01T12:00:00-05:00", 100.0),
        ],
    )
    .await;
    assert_eq!((later.accepted, later.duplicates), (1, 1));
    let out = stage.handle(&later.event.unwrap()).await.unwrap();
    let recomputed = facts_of(&*objects, &out).await;
    assert_eq!(recomputed.len(), 1);
    assert_eq!(recomputed[0].id, facts[0].id);
    assert_eq!(value(&recomputed[0]), 80.0);
    let (count, key) = stored(&out);
    assert_eq!(count, 1, "only the new sample goes to the lake");
    let record: StoredRecord = serde_json::from_slice(
        &objects
            .get(&key.as_str().into())
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(record.samples[0].value, 100.0);
    assert_eq!(record.samples[0].unit, "/min");
    assert!(record.stored_at <= Utc::now());
}

#[tokio::test]
async fn a_missing_batch_fails_permanently() {
    let dir = tempfile::tempdir().unwrap();
    let objects: Arc<dyn ObjectStore> =
        Arc::new(LocalFileSystem::new_with_prefix(dir.path()).unwrap());
    let sub = submit(&*objects, vec![hr("2026-03-01T08:00:00Z", 60.0)]).await;
    let event = sub.event.unwrap();
    let Event::DeviceReadingsReceived(r) = &event.event else {
        panic!("received")
    };
    objects
        .delete(&r.readings.key.as_str().into())
        .await
        .unwrap();
    let err = DevicesStage::new(objects.clone())
        .handle(&event)
        .await
        .unwrap_err();
    assert!(err.is_permanent(), "{err}");
}
