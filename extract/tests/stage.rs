//! The extract stage end to end on real documents: facts out, outcome on the document, the
//! stored extraction for review; unreadable and mismatched documents recorded, not retried.

use chrono::{TimeZone, Utc};
use object_store::memory::InMemory;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStoreExt, PutPayload};
use p360_events::{
    Channel, DocumentId, DocumentReceived, Envelope, Event, EventId, ObjectRef, PatientId,
};
use p360_extract::ocr::tesseract::{LazyTesseract, TesseractConfig};
use p360_extract::stage::{ExtractStage, StoredExtraction, extraction_key};
use p360_ingest::register::{DocumentRegister, MemberDemographics};
use p360_runtime::Stage;
use std::sync::Arc;

struct Fixture {
    _dir: tempfile::TempDir,
    store: Arc<InMemory>,
    register: DocumentRegister,
    stage: ExtractStage,
    patient: PatientId,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let register = DocumentRegister::open(&dir.path().join("documents.db")).expect("register");
    let store = Arc::new(InMemory::new());
    let ocr = Arc::new(LazyTesseract::new(TesseractConfig {
        workers: 1,
        ..TesseractConfig::default()
    }));
    let stage = ExtractStage::new(store.clone(), ocr, register.clone());
    Fixture {
        _dir: dir,
        store,
        register,
        stage,
        patient: PatientId::parse("pat-1").expect("id"),
    }
}

async fn received(f: &Fixture, name: &str, bytes: Vec<u8>, register: bool) -> Envelope {
    let document_id = DocumentId::parse(&format!("doc-{name}")).expect("id");
    let key = format!("raw/{}/{document_id}", f.patient);
    let size = bytes.len() as u64;
    f.store
        .put(&ObjectPath::from(key.as_str()), PutPayload::from(bytes))
        .await
        .expect("put");
    let doc = DocumentReceived {
        document_id,
        patient_id: f.patient.clone(),
        object: ObjectRef {
            key,
            sha256: "00".repeat(32),
            size,
            media_type: "image/png".into(),
        },
        channel: Channel::Upload,
        uploaded_by: None,
        received_at: Utc
            .with_ymd_and_hms(2026, 1, 5, 10, 0, 0)
            .single()
            .expect("time"),
    };
    if register {
        f.register
            .apply_received(&EventId::random().to_string(), &doc)
            .expect("register");
    }
    Envelope::new(EventId::random(), "/test", Event::DocumentReceived(doc))
}

fn testdata(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/../testdata/documents/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .expect("fixture")
}

async fn status(f: &Fixture, name: &str) -> (String, Option<String>, u32) {
    let doc = f
        .register
        .get(
            &f.patient,
            &DocumentId::parse(&format!("doc-{name}")).expect("id"),
        )
        .expect("register")
        .expect("row");
    (doc.status, doc.status_detail, doc.facts)
}

#[tokio::test]
async fn a_lab_report_becomes_coded_facts_with_provenance_and_a_reviewable_extraction() {
    let f = fixture();
    let event = received(&f, "lab", testdata("doc_002.png"), true).await;
    let out = f.stage.handle(&event).await.expect("extract");
    let [Event::FactsExtracted(facts)] = out.as_slice() else {
        panic!("{out:?}")
    };
    assert_eq!(facts.fact_count, 12, "twelve results on doc_002");
    let (state, detail, count) = status(&f, "lab").await;
    assert!(state == "extracted" || state == "needs_review", "{state}");
    assert_eq!((detail, count), (None, 12));
    let stored: StoredExtraction = serde_json::from_slice(
        &f.store
            .get(&ObjectPath::from(
                extraction_key("pat-1", "doc-lab").as_str(),
            ))
            .await
            .expect("stored")
            .bytes()
            .await
            .expect("bytes"),
    )
    .expect("json");
    let creatinine = stored
        .extraction
        .labs
        .iter()
        .find(|l| l.loinc == "2160-0")
        .expect("creatinine");
    assert_eq!(creatinine.ucum.as_deref(), Some("mg/dL"));
    assert_eq!(creatinine.flag.as_deref(), Some("H"));
    let p = &stored.facts[0].provenance[0];
    assert_eq!(p.document.as_ref().map(|d| d.as_str()), Some("doc-lab"));
    assert!(p.region.is_some() && p.page == Some(1) && p.confidence.is_some());
    assert!(
        p.producer
            .as_ref()
            .is_some_and(|p| p.name.contains("tesseract"))
    );
    // Redelivery yields the same facts.
    let again = f.stage.handle(&event).await.expect("again");
    assert_eq!(format!("{again:?}"), format!("{out:?}"));
}

#[tokio::test]
async fn unreadable_documents_are_recorded_on_the_document_not_retried() {
    let f = fixture();
    let good = testdata("doc_002.png");
    let event = received(&f, "cut", good[..good.len() / 3].to_vec(), true).await;
    let out = f
        .stage
        .handle(&event)
        .await
        .expect("a bad file is not a stage failure");
    assert!(out.is_empty());
    let (state, detail, _) = status(&f, "cut").await;
    assert_eq!(state, "failed");
    assert!(
        detail
            .as_deref()
            .is_some_and(|d| d.contains("truncated or damaged")),
        "{detail:?}"
    );
}

#[tokio::test]
async fn an_outcome_that_arrives_before_the_register_shows_once_it_registers() {
    let f = fixture();
    let event = received(&f, "early", testdata("doc_002.png"), false).await;
    let out = f.stage.handle(&event).await.expect("extract");
    assert_eq!(
        out.len(),
        1,
        "extraction does not wait for the register stage"
    );
    let Event::DocumentReceived(doc) = &event.event else {
        unreachable!()
    };
    f.register
        .apply_received(&EventId::random().to_string(), doc)
        .expect("register");
    let (state, _, facts) = status(&f, "early").await;
    assert!(state == "needs_review" || state == "extracted", "{state}");
    assert!(facts > 0);
}

#[tokio::test]
async fn a_document_naming_someone_else_is_flagged_not_merged() {
    let f = fixture();
    f.register
        .set_demographics(
            &f.patient,
            &MemberDemographics {
                family: Some("Okonkwo".into()),
                given: Some("Ada".into()),
                birth_date: None,
            },
        )
        .expect("roster");
    let event = received(&f, "other", testdata("doc_002.png"), true).await;
    let out = f.stage.handle(&event).await.expect("extract");
    assert!(out.is_empty(), "no facts go to the graph");
    let (state, detail, count) = status(&f, "other").await;
    assert_eq!(state, "flagged");
    assert_eq!(
        detail.as_deref(),
        Some("the name on the document is not yours")
    );
    assert_eq!(count, 12);
    // The same document for its own patient is merged.
    f.register
        .set_demographics(
            &f.patient,
            &MemberDemographics {
                family: Some("Alvarez".into()),
                given: Some("Richard".into()),
                birth_date: None,
            },
        )
        .expect("roster");
    let event = received(&f, "own", testdata("doc_002.png"), true).await;
    assert_eq!(f.stage.handle(&event).await.expect("extract").len(), 1);
}
