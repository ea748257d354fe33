//! The review queue and undoing links, over the enrich stage's output for the sample batch on
//! an in-memory object store: accept, reject and unlink are recorded with who and when, allowed
//! only from the states they make sense in, and cause exactly the events that apply them; the
//! outbox hands back a decision whose event was not marked sent, with the same event id.

use chrono::Utc;
use object_store::memory::InMemory;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};
use p360_enrich::decisions::{self, Action, DecisionError, LinkState};
use p360_enrich::intake;
use p360_enrich::stage::EnrichStage;
use p360_events::{BatchId, Envelope, Event};
use p360_model::Fact;
use p360_runtime::Stage;
use std::path::Path;
use std::sync::Arc;

async fn resolved_sample() -> (Arc<dyn ObjectStore>, BatchId) {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/feeds/sample/batch");
    intake::submit(&*store, &dir, "B-rev", "synthetic")
        .await
        .expect("submit");
    let (id, batch) = intake::pending(&*store).await.expect("pending").remove(0);
    EnrichStage::new(store.clone(), 2)
        .handle(&Envelope::new(
            id,
            "/p360/feeds",
            Event::FeedBatchReceived(batch),
        ))
        .await
        .expect("stage");
    (store, BatchId::parse("B-rev").expect("id"))
}

#[tokio::test]
async fn accept_reject_and_unlink_follow_the_identity_state() {
    let (store, batch) = resolved_sample().await;
    let lines = decisions::identities(&*store, &batch)
        .await
        .expect("identities");
    let queue = decisions::queue(&*store, &batch).await.expect("queue");
    assert!(
        !queue.is_empty(),
        "the sample holds some records for review"
    );
    assert!(
        queue
            .iter()
            .all(|i| i["state"] == "review" && i["candidates"].is_array())
    );
    assert_eq!(
        lines.iter().filter(|l| l.decision == "review").count(),
        queue.len(),
        "each held identity is listed once"
    );

    // Accept the held identity with the most facts: its held facts go to the candidate.
    let held = lines
        .iter()
        .filter(|l| l.decision == "review")
        .max_by_key(|l| l.held_facts)
        .expect("a held identity");
    let now = Utc::now();
    let (d, event) = decisions::decide(
        &*store,
        &batch,
        held.identity,
        Action::Accept,
        "usr-ada",
        now,
    )
    .await
    .expect("accept");
    assert_eq!(
        (d.action, d.seq, d.decided_by.as_str()),
        (Action::Accept, 0, "usr-ada")
    );
    assert_eq!(d.decided_at, now);
    assert_eq!(d.member_id, held.member_id);
    match (held.held_facts, event) {
        (0, None) => {}
        (n, Some(e)) => {
            let Event::FactsResolved(r) = &e.event else {
                panic!(
                    "accept causes FactsResolved, not {:?}",
                    e.event.event_type()
                )
            };
            assert_eq!(r.patient_id.as_str(), held.member_id);
            assert_eq!(r.fact_count as usize, n);
            let bytes = store
                .get(&ObjectPath::from(r.facts.key.as_str()))
                .await
                .expect("held facts")
                .bytes()
                .await
                .expect("bytes");
            let facts: Vec<Fact> = serde_json::from_slice(&bytes).expect("facts");
            assert_eq!(facts.len(), n);
            assert!(
                facts
                    .iter()
                    .flat_map(|f| &f.provenance)
                    .all(|p| held.sources.contains(&p.source_id))
            );
            assert_eq!(Some(e.id), d.event_id);
        }
        (n, None) => panic!("{n} held facts and no event"),
    }
    // Accepting twice, or rejecting what was accepted, is refused with the state.
    for action in [Action::Accept, Action::Reject] {
        let e = decisions::decide(&*store, &batch, held.identity, action, "usr-ada", now)
            .await
            .expect_err("not allowed");
        assert!(
            matches!(
                e,
                DecisionError::NotAllowed {
                    state: LinkState::Accepted,
                    ..
                }
            ),
            "{e}"
        );
    }
    // An accepted link can be undone: its sources leave the member's facts.
    let (d, event) = decisions::decide(
        &*store,
        &batch,
        held.identity,
        Action::Unlink,
        "usr-bob",
        now,
    )
    .await
    .expect("unlink");
    assert_eq!(d.seq, 1);
    if let Some(e) = event {
        let Event::SourcesDetached(s) = &e.event else {
            panic!("unlink causes SourcesDetached")
        };
        assert_eq!(s.sources, held.sources);
    }
    let history = decisions::history(&*store, &batch, held.identity)
        .await
        .expect("history");
    assert_eq!(history.len(), 2);
    assert_eq!(decisions::state(held, &history), LinkState::Unlinked);

    // A linked identity: unlink once (SourcesDetached with its sources), then refused.
    let linked = lines
        .iter()
        .filter(|l| l.decision == "linked")
        .max_by_key(|l| l.sources.len())
        .expect("a linked identity");
    let (_, event) = decisions::decide(
        &*store,
        &batch,
        linked.identity,
        Action::Unlink,
        "usr-ada",
        now,
    )
    .await
    .expect("unlink");
    let Some(Event::SourcesDetached(s)) = event.map(|e| e.event) else {
        panic!("unlink causes SourcesDetached")
    };
    assert_eq!(s.patient_id.as_str(), linked.member_id);
    assert_eq!(s.sources, linked.sources);
    assert!(
        s.sources
            .iter()
            .all(|x| x.starts_with("B-rev/") && x.contains('#'))
    );
    let e = decisions::decide(
        &*store,
        &batch,
        linked.identity,
        Action::Unlink,
        "usr-ada",
        now,
    )
    .await
    .expect_err("twice");
    assert!(matches!(
        e,
        DecisionError::NotAllowed {
            state: LinkState::Unlinked,
            ..
        }
    ));
    // Reject applies to held identities only.
    let e = decisions::decide(
        &*store,
        &batch,
        linked.identity,
        Action::Reject,
        "usr-ada",
        now,
    )
    .await
    .expect_err("reject a link");
    assert!(matches!(e, DecisionError::NotAllowed { .. }));
    // Unknown identities and batches are named as such.
    assert!(matches!(
        decisions::decide(&*store, &batch, 999_999, Action::Unlink, "usr-ada", now).await,
        Err(DecisionError::UnknownIdentity(..))
    ));
    assert!(matches!(
        decisions::decide(
            &*store,
            &BatchId::parse("B-none").expect("id"),
            1,
            Action::Unlink,
            "usr-ada",
            now
        )
        .await,
        Err(DecisionError::NotResolved(_))
    ));
}

#[tokio::test]
async fn a_decision_whose_event_was_not_sent_is_handed_back_by_the_outbox() {
    let (store, batch) = resolved_sample().await;
    let lines = decisions::identities(&*store, &batch)
        .await
        .expect("identities");
    let linked = lines
        .iter()
        .find(|l| l.decision == "linked")
        .expect("linked");
    // Found by a person-record as links.ndjson names it.
    let links = store
        .get(&ObjectPath::from("feeds/B-rev/_links.ndjson"))
        .await
        .expect("links")
        .bytes()
        .await
        .expect("bytes");
    let first: serde_json::Value = String::from_utf8_lossy(&links)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|l| l["identity"] == linked.identity)
        .expect("a link line of the identity");
    let found = decisions::identity_of(
        &*store,
        &batch,
        first["source"].as_str().expect("source"),
        first["record"].as_str().expect("record"),
    )
    .await
    .expect("identity of a record");
    assert_eq!(found, linked.identity);

    let (d, event) = decisions::decide(
        &*store,
        &batch,
        linked.identity,
        Action::Unlink,
        "usr-ada",
        Utc::now(),
    )
    .await
    .expect("unlink");
    let event = event.expect("an event");
    // Not marked sent (a crash before or after publishing): the outbox has it, same id.
    let pending = decisions::pending(&*store, Utc::now())
        .await
        .expect("outbox");
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].0, d);
    assert_eq!(pending[0].1.id, event.id);
    assert_eq!(pending[0].1.event, event.event);
    decisions::sent(&*store, &d).await.expect("sent");
    assert!(
        decisions::pending(&*store, Utc::now())
            .await
            .expect("outbox")
            .is_empty()
    );
}
