//! Ingest against the embedded queue and a local object store.

use crate::content::tests::png;
use crate::drop_folder::{DropFolder, ScanReport};
use crate::{DocumentRegister, IngestService, RegisterStage};
use bytes::Bytes;
use object_store::local::LocalFileSystem;
use p360_events::{Channel, Envelope, Event, EventType, PatientId};
use p360_queue::embedded::{Durability, EmbeddedQueue};
use p360_queue::{Queue, QueuePolicy, QueuePublisher, Routes};
use p360_runtime::Stage;
use std::sync::Arc;
use std::time::Duration;

pub(crate) struct Env {
    pub dir: tempfile::TempDir,
    pub queue: Arc<EmbeddedQueue>,
    pub service: IngestService,
    pub store: Arc<dyn object_store::ObjectStore>,
}

pub(crate) async fn env() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let queue = Arc::new(EmbeddedQueue::open(dir.path().join("q.db"), Durability::Normal).unwrap());
    queue
        .declare("register", QueuePolicy::default())
        .await
        .unwrap();
    let mut routes = Routes::new();
    routes.subscribe(EventType::DocumentReceived, "register");
    let publisher = Arc::new(QueuePublisher::new(queue.clone(), routes));
    std::fs::create_dir_all(dir.path().join("store")).unwrap();
    let store = Arc::new(LocalFileSystem::new_with_prefix(dir.path().join("store")).unwrap());
    let service = IngestService::new(store.clone(), publisher, Default::default());
    Env {
        dir,
        queue,
        service,
        store,
    }
}

async fn received(queue: &EmbeddedQueue) -> Vec<Envelope> {
    let mut out = Vec::new();
    loop {
        let batch = queue
            .receive("register", 100, Duration::from_secs(30), Duration::ZERO)
            .await
            .unwrap();
        if batch.is_empty() {
            return out;
        }
        for d in batch {
            out.push(Envelope::from_json(&d.body).unwrap());
            queue.ack("register", &d).await.unwrap();
        }
    }
}

#[tokio::test]
async fn uploads_are_stored_announced_and_idempotent_per_patient() {
    let e = env().await;
    let a = PatientId::parse("pat-a").unwrap();
    let b = PatientId::parse("pat-b").unwrap();
    let img = Bytes::from(png(64, 48));
    let first = e
        .service
        .ingest(&a, img.clone(), Channel::Upload, None)
        .await
        .unwrap();
    assert!(!first.duplicate);
    assert!(first.object.key.starts_with("raw/pat-a/"));
    assert!(e.dir.path().join("store").join(&first.object.key).exists());
    let again = e
        .service
        .ingest(&a, img.clone(), Channel::Upload, None)
        .await
        .unwrap();
    assert!(again.duplicate);
    assert_eq!(again.document_id, first.document_id);
    let other = e
        .service
        .ingest(&b, img, Channel::Upload, None)
        .await
        .unwrap();
    assert_ne!(
        other.document_id, first.document_id,
        "patients never share documents"
    );

    let events = received(&e.queue).await;
    assert_eq!(
        events.len(),
        2,
        "the duplicate upload emitted no second event"
    );
    let Event::DocumentReceived(doc) = &events[0].event else {
        panic!("wrong event type")
    };
    assert_eq!(doc.object.media_type, "image/png");
    assert_eq!(doc.object.size, first.object.size);
}

#[tokio::test]
async fn refused_content_stores_and_emits_nothing() {
    let e = env().await;
    let a = PatientId::parse("pat-a").unwrap();
    let err = e
        .service
        .ingest(
            &a,
            Bytes::from_static(b"MZ\x90\x00 not a photo"),
            Channel::Upload,
            None,
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("unsupported file type"), "{err}");
    assert!(received(&e.queue).await.is_empty());
    assert!(!e.dir.path().join("store/raw").exists());
}

#[tokio::test]
async fn drop_folder_ingests_settled_files_and_rejects_bad_ones() {
    let e = env().await;
    let root = e.dir.path().join("drop");
    std::fs::create_dir_all(root.join("pat-a")).unwrap();
    std::fs::create_dir_all(root.join("not a patient")).unwrap();
    std::fs::write(root.join("pat-a/lab.png"), png(64, 64)).unwrap();
    std::fs::write(
        root.join("pat-a/notes.png"),
        b"this is text with a .png name",
    )
    .unwrap();
    std::fs::write(root.join("pat-a/.partial"), b"being copied").unwrap();
    std::fs::write(root.join("not a patient/x.png"), png(40, 40)).unwrap();
    let folder = DropFolder::new(&root, e.service.clone(), Duration::ZERO);
    let report = folder.scan_once().await.unwrap();
    assert_eq!(
        report,
        ScanReport {
            accepted: 1,
            rejected: 2,
            deferred: 0
        }
    );
    assert!(
        !root.join("pat-a/lab.png").exists(),
        "ingested files are removed"
    );
    assert!(
        root.join("pat-a/.partial").exists(),
        "hidden files are left alone"
    );
    let reason =
        std::fs::read_to_string(root.join(".rejected/pat-a/notes.png.reason.txt")).unwrap();
    assert!(reason.contains("unsupported file type"), "{reason}");
    assert!(root.join(".rejected/not a patient/x.png").exists());
    assert_eq!(received(&e.queue).await.len(), 1);

    // A file still being written (modified just now) waits for the settle time.
    std::fs::write(root.join("pat-a/fresh.png"), png(64, 65)).unwrap();
    let slow = DropFolder::new(&root, e.service.clone(), Duration::from_secs(3600));
    assert_eq!(slow.scan_once().await.unwrap(), ScanReport::default());
}

#[tokio::test]
async fn register_stage_applies_each_event_once() {
    let e = env().await;
    let register = DocumentRegister::open(&e.dir.path().join("documents.db")).unwrap();
    let stage = RegisterStage::new(register.clone(), e.store.clone());
    let a = PatientId::parse("pat-a").unwrap();
    e.service
        .ingest(&a, Bytes::from(png(64, 48)), Channel::Upload, None)
        .await
        .unwrap();
    let event = received(&e.queue).await.remove(0);
    let first = stage.handle(&event).await.unwrap();
    let again = stage.handle(&event).await.unwrap(); // redelivery
    assert_eq!(
        first, again,
        "the same document fact event on every delivery"
    );
    let [p360_events::Event::FactsExtracted(f)] = first.as_slice() else {
        panic!("one FactsExtracted: {first:?}")
    };
    assert_eq!(f.fact_count, 1);
    let stored = object_store::ObjectStoreExt::get(
        &*e.store,
        &object_store::path::Path::from(f.facts.key.as_str()),
    )
    .await
    .unwrap()
    .bytes()
    .await
    .unwrap();
    let facts: Vec<p360_model::Fact> = serde_json::from_slice(&stored).unwrap();
    assert_eq!(facts[0].body.resource_type(), "DocumentReference");
    let docs = register.list(&a).unwrap();
    assert_eq!(docs.len(), 1);
    assert_eq!(docs[0].applied, 1);
    assert_eq!(docs[0].status, "received");
    let other = PatientId::parse("pat-b").unwrap();
    let id = p360_events::DocumentId::parse(&docs[0].document_id).unwrap();
    assert!(
        register.get(&other, &id).unwrap().is_none(),
        "no cross-patient reads"
    );
    assert!(register.get(&a, &id).unwrap().is_some());
}
