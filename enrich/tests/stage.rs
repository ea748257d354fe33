//! Feed intake and the enrich stage on an in-memory object store: a batch submitted, announced
//! once, resolved into one FactsResolved per member with facts, the report readable; the same
//! batch again changes nothing, the same id with other content is refused.

use object_store::memory::InMemory;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};
use p360_enrich::intake::{self, IntakeError};
use p360_enrich::stage::EnrichStage;
use p360_events::{Envelope, Event};
use p360_model::Fact;
use p360_runtime::Stage;
use std::path::Path;
use std::sync::Arc;

fn sample() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/feeds/sample/batch")
}

#[tokio::test]
async fn a_submitted_batch_becomes_facts_per_member_once() {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let (manifest, new) = intake::submit(&*store, &sample(), "B2025-06", "synthetic-payor")
        .await
        .expect("submit");
    assert!(new);
    assert_eq!(manifest.files.len(), 13, "roster + 12 feeds");

    let pending = intake::pending(&*store).await.expect("pending");
    assert_eq!(pending.len(), 1);
    let (id, batch) = pending[0].clone();
    intake::mark_received(&*store, &batch).await.expect("mark");
    assert!(
        intake::pending(&*store).await.expect("pending").is_empty(),
        "announced once"
    );

    // The same folder again: nothing changes, the announcement would be the same event.
    let (_, new) = intake::submit(&*store, &sample(), "B2025-06", "synthetic-payor")
        .await
        .expect("resubmit");
    assert!(!new);
    assert!(intake::pending(&*store).await.expect("pending").is_empty());

    let stage = EnrichStage::new(store.clone(), 2);
    let envelope = Envelope::new(id, "/p360/feeds", Event::FeedBatchReceived(batch));
    let first = stage.handle(&envelope).await.expect("handle");
    let mut events = first.clone();
    // The roster's profiles, once per batch, for the lake and the insights stage.
    let enrolled: Vec<Event> = events
        .extract_if(.., |e| matches!(e, Event::MembersEnrolled(_)))
        .collect();
    let [Event::MembersEnrolled(m)] = enrolled.as_slice() else {
        panic!("one MembersEnrolled per batch, got {}", enrolled.len())
    };
    let profiles = store
        .get(&ObjectPath::from(m.profiles.key.as_str()))
        .await
        .expect("profiles")
        .bytes()
        .await
        .expect("profiles");
    assert_eq!(
        profiles
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .count(),
        m.count as usize
    );
    assert!(m.count >= 40);
    assert_eq!(events.len(), 40, "one FactsResolved per member with facts");
    let mut facts = 0;
    let mut multi = 0;
    for e in &events {
        let Event::FactsResolved(r) = e else {
            panic!("{e:?}")
        };
        let bytes = store
            .get(&ObjectPath::from(r.facts.key.as_str()))
            .await
            .expect("facts")
            .bytes()
            .await
            .expect("bytes");
        let list: Vec<Fact> = serde_json::from_slice(&bytes).expect("facts json");
        assert_eq!(list.len(), r.fact_count as usize);
        assert!(list.iter().all(|f| f.patient == r.patient_id));
        facts += list.len();
        multi += list.iter().filter(|f| f.provenance.len() > 1).count();
    }
    assert_eq!(facts, 1446, "the truth's fact count");
    assert_eq!(multi, 393, "the truth's multi-source facts");
    let report = store
        .get(&ObjectPath::from("feeds/B2025-06/_report.json"))
        .await
        .expect("report")
        .bytes()
        .await
        .expect("bytes");
    let report: serde_json::Value = serde_json::from_slice(&report).expect("report json");
    assert_eq!(report["summary"]["records"], 1366);
    assert_eq!(report["summary"]["linked"], 1359);

    // Redelivery: the same outputs.
    let again = stage.handle(&envelope).await.expect("handle again");
    assert_eq!(again, first);
}

#[tokio::test]
async fn a_batch_id_reused_with_other_content_is_refused() {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let tmp = tempfile::tempdir().expect("tmp");
    std::fs::write(
        tmp.path().join("members.csv"),
        "member_id,first_name,last_name,birth_date,sex\nM1,A,B,2000-01-01,F\n",
    )
    .expect("write");
    intake::submit(&*store, tmp.path(), "B1", "x")
        .await
        .expect("first");
    std::fs::write(
        tmp.path().join("members.csv"),
        "member_id,first_name,last_name,birth_date,sex\nM2,C,D,2000-01-01,M\n",
    )
    .expect("write");
    let e = intake::submit(&*store, tmp.path(), "B1", "x")
        .await
        .expect_err("conflict");
    assert!(matches!(e, IntakeError::Conflict(_)), "{e}");
    let kept = store
        .get(&ObjectPath::from("feeds/B1/members.csv"))
        .await
        .expect("kept")
        .bytes()
        .await
        .expect("bytes");
    assert!(
        kept.starts_with(b"member_id") && kept.ends_with(b"M1,A,B,2000-01-01,F\n"),
        "the stored batch is untouched"
    );
    assert!(matches!(
        intake::submit(&*store, tmp.path(), "../x", "x").await,
        Err(IntakeError::BadId(_))
    ));
}
