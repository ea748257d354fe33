//! A payor batch through `p360 serve`: submitted into the object store, announced by the feed
//! watcher, resolved by the enrich stage, written by the graph writer and copied to the lake;
//! the member reads it in `$everything` with one Provenance per source record. Submitting the
//! same batch again changes nothing.

mod common;

use common::Sandbox;
use p360_events::PatientId;
use p360_identity::Role;
use p360_identity::users::NewUser;
use std::path::Path;
use std::time::Duration;

const MEMBER: &str = "M015690458";

fn truth_facts(member: &str) -> usize {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/feeds/sample/truth/facts.json");
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(p).expect("truth")).expect("truth json");
    v["members"][member]["facts"].as_array().map_or(0, Vec::len)
}

async fn everything(sb: &Sandbox, token: &str) -> Vec<serde_json::Value> {
    let b = sb
        .get_json(
            &format!("/fhir/Patient/{MEMBER}/$everything?_count=1000"),
            token,
        )
        .await;
    b["entry"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|e| e["resource"].clone())
        .collect()
}

#[tokio::test]
async fn a_payor_batch_reaches_the_graph_and_the_lake_once() {
    let sb = Sandbox::start().await;
    sb.directory
        .add(NewUser {
            username: "ivan",
            password: "correct horse battery",
            role: Role::Patient,
            patient_id: Some(PatientId::parse(MEMBER).unwrap()),
        })
        .unwrap();
    let token = sb.login("ivan").await;
    let (objects, _) = p360::system::build_stores(&sb.config).unwrap();
    let batch = Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/feeds/sample/batch");
    let (_, new) = p360_enrich::intake::submit(&*objects, &batch, "B2025-06", "synthetic")
        .await
        .unwrap();
    assert!(new);

    let want = truth_facts(MEMBER);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let resources = loop {
        let r = everything(&sb, &token).await;
        let facts = r
            .iter()
            .filter(|x| !matches!(x["resourceType"].as_str(), Some("Provenance" | "Patient")))
            .count();
        if facts >= want {
            break r;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{facts} of {want} facts in $everything"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let facts: Vec<&serde_json::Value> = resources
        .iter()
        .filter(|x| !matches!(x["resourceType"].as_str(), Some("Provenance" | "Patient")))
        .collect();
    assert_eq!(facts.len(), want, "one resource per de-duplicated fact");
    // "Confirmed by N sources": a Provenance per source record, naming it.
    let provenance: Vec<&serde_json::Value> = resources
        .iter()
        .filter(|x| x["resourceType"] == "Provenance")
        .collect();
    assert!(
        provenance.len() > facts.len(),
        "some facts have several sources"
    );
    assert!(provenance.iter().all(|p| {
        p["entity"][0]["what"]["identifier"]["value"]
            .as_str()
            .is_some_and(|v| v.starts_with("B2025-06/") && v.contains('#'))
    }));

    // The lake holds every condition of the batch (163 in the truth).
    common::wait_for_lake_rows(&sb, "conditions", 163).await;
    // The stage's counts on /metrics (kinds only, no ids).
    let metrics = sb
        .http
        .get(sb.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        "p360_feed_batches_total 1",
        "p360_feed_records_total{kind=\"linked\"} 1359",
        "p360_feed_facts_total{kind=\"new\"} 1446",
    ] {
        assert!(metrics.lines().any(|l| l == line), "{line} not in /metrics");
    }

    // The same batch again: nothing new.
    let (_, new) = p360_enrich::intake::submit(&*objects, &batch, "B2025-06", "synthetic")
        .await
        .unwrap();
    assert!(!new);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(everything(&sb, &token).await.len(), resources.len());
    assert_eq!(common::lake_rows(&sb, "conditions").len(), 163);
    sb.stop().await;
}

/// Source record ids (`<batch>/<file>#<record>`) per fact resource (`Type/id`) in a
/// `$everything` answer, from its Provenance resources.
fn sources_by_fact(
    resources: &[serde_json::Value],
) -> std::collections::BTreeMap<String, Vec<String>> {
    let mut out: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for p in resources
        .iter()
        .filter(|x| x["resourceType"] == "Provenance")
    {
        let target = p["target"][0]["reference"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let ids = p["entity"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| e["what"]["identifier"]["value"].as_str().map(str::to_owned));
        out.entry(target).or_default().extend(ids);
    }
    for r in resources
        .iter()
        .filter(|x| !matches!(x["resourceType"].as_str(), Some("Provenance" | "Patient")))
    {
        let key = format!(
            "{}/{}",
            r["resourceType"].as_str().unwrap_or_default(),
            r["id"].as_str().unwrap_or_default()
        );
        out.entry(key).or_default();
    }
    out
}

#[tokio::test]
async fn unlinking_a_source_removes_exactly_its_facts_and_tombstones_them_in_the_lake() {
    let sb = Sandbox::start().await;
    sb.directory
        .add(NewUser {
            username: "ivan",
            password: "correct horse battery",
            role: Role::Patient,
            patient_id: Some(PatientId::parse(MEMBER).unwrap()),
        })
        .unwrap();
    sb.user("ada", Role::Admin);
    let token = sb.login("ivan").await;
    let admin = sb.login("ada").await;
    let (objects, _) = p360::system::build_stores(&sb.config).unwrap();
    let batch = Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/feeds/sample/batch");
    p360_enrich::intake::submit(&*objects, &batch, "B-undo", "synthetic")
        .await
        .unwrap();
    let want = truth_facts(MEMBER);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let before = loop {
        let r = everything(&sb, &token).await;
        if sources_by_fact(&r).len() >= want {
            break sources_by_fact(&r);
        }
        assert!(tokio::time::Instant::now() < deadline, "batch not applied");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };

    // The member's identity (of those the matcher linked) whose sources support both facts
    // of its own and facts other sources confirm: the case where exactness matters.
    let ids = p360_enrich::decisions::identities(
        &*objects,
        &p360_events::BatchId::parse("B-undo").unwrap(),
    )
    .await
    .unwrap();
    let (line, only, shared) = ids
        .iter()
        .filter(|l| l.member_id == MEMBER && l.decision == "linked")
        .map(|l| {
            let mine: std::collections::HashSet<&str> =
                l.sources.iter().map(String::as_str).collect();
            let only: Vec<String> = before
                .iter()
                .filter(|(_, s)| !s.is_empty() && s.iter().all(|x| mine.contains(x.as_str())))
                .map(|(f, _)| f.clone())
                .collect();
            let shared: Vec<String> = before
                .iter()
                .filter(|(_, s)| {
                    s.iter().any(|x| mine.contains(x.as_str()))
                        && s.iter().any(|x| !mine.contains(x.as_str()))
                })
                .map(|(f, _)| f.clone())
                .collect();
            (l, only, shared)
        })
        .max_by_key(|(_, o, s)| o.len().min(s.len()))
        .expect("the member has linked identities");
    assert!(
        !only.is_empty() && !shared.is_empty(),
        "the sample member has an identity with both kinds of facts"
    );

    let r = sb
        .http
        .post(sb.url("/v1/feeds/B-undo/unlink"))
        .bearer_auth(&admin)
        .json(&serde_json::json!({ "identity": line.identity }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let decision: serde_json::Value = r.json().await.unwrap();
    assert_eq!(decision["action"], "unlink");
    assert_eq!(decision["member_id"], MEMBER);
    assert!(
        decision["decided_by"]
            .as_str()
            .is_some_and(|s| !s.is_empty())
    );
    // A second unlink of the same identity is refused: it is no longer linked.
    let again = sb
        .http
        .post(sb.url("/v1/feeds/B-undo/unlink"))
        .bearer_auth(&admin)
        .json(&serde_json::json!({ "identity": line.identity }))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 409);
    // The member cannot decide on the payor's links.
    let forbidden = sb
        .http
        .post(sb.url("/v1/feeds/B-undo/unlink"))
        .bearer_auth(&token)
        .json(&serde_json::json!({ "identity": line.identity }))
        .send()
        .await
        .unwrap();
    assert_eq!(forbidden.status(), 403);

    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let after = loop {
        let a = sources_by_fact(&everything(&sb, &token).await);
        if only.iter().all(|f| !a.contains_key(f)) {
            break a;
        }
        assert!(tokio::time::Instant::now() < deadline, "facts not removed");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let gone: std::collections::HashSet<&str> = line.sources.iter().map(String::as_str).collect();
    assert_eq!(
        after.len(),
        before.len() - only.len(),
        "only its own facts went"
    );
    for f in &shared {
        let left = &after[f];
        assert!(!left.is_empty(), "{f} keeps its other sources");
        assert!(
            left.iter().all(|s| !gone.contains(s.as_str())),
            "{f} lost the unlinked sources"
        );
        assert_eq!(
            left.len(),
            before[f]
                .iter()
                .filter(|s| !gone.contains(s.as_str()))
                .count()
        );
    }
    for (f, s) in after.iter().filter(|(f, _)| !shared.contains(f)) {
        assert_eq!(s, &before[f], "{f} is untouched");
    }

    // The lake: each removed fact tombstoned (a `removed` change with no sources left), each
    // fact that kept other sources re-copied with its new source count.
    let removed: std::collections::HashSet<String> = only
        .iter()
        .filter_map(|f| f.split_once('/').map(|(_, id)| id.to_owned()))
        .collect();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let rows = common::lake_rows(&sb, "graph_changes");
        let tombstones: std::collections::HashSet<String> = rows
            .iter()
            .filter(|r| r["change_kind"] == "removed" && r["source_count"] == 0)
            .filter_map(|r| r["fact_id"].as_str().map(str::to_owned))
            .collect();
        let detached = rows
            .iter()
            .filter(|r| r["change_kind"] == "source_detached")
            .count();
        if tombstones == removed && detached == shared.len() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "lake: {} of {} tombstones, {detached} of {} detached",
            tombstones.intersection(&removed).count(),
            removed.len(),
            shared.len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Accepting a held identity applies its held facts to the candidate, once: the lake
    // shows one change per held fact under the decision's event.
    let queue = sb.get_json("/v1/feeds/B-undo/review", &admin).await;
    let items = queue["items"].as_array().cloned().unwrap_or_default();
    assert!(items.iter().all(|i| i["state"] == "review"));
    let Some(held) = items
        .iter()
        .filter(|i| i["held_facts"].as_u64().unwrap_or(0) > 0)
        .max_by_key(|i| i["held_facts"].as_u64())
    else {
        sb.stop().await;
        return;
    };
    let r = sb
        .http
        .post(sb.url(&format!("/v1/feeds/B-undo/review/{}", held["identity"])))
        .bearer_auth(&admin)
        .json(&serde_json::json!({ "decision": "accept" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let d: serde_json::Value = r.json().await.unwrap();
    let event = d["event_id"]
        .as_str()
        .expect("an accept with facts causes an event")
        .to_owned();
    let want = held["held_facts"].as_u64().unwrap() as usize;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let n = common::lake_rows(&sb, "graph_changes")
            .iter()
            .filter(|r| r["commit_id"] == event.as_str())
            .count();
        if n == want {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{n} of {want} held facts applied"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let after = sb.get_json("/v1/feeds/B-undo/review", &admin).await;
    let item = after["items"]
        .as_array()
        .and_then(|v| {
            v.iter()
                .find(|i| i["identity"] == held["identity"])
                .cloned()
        })
        .expect("still listed");
    assert_eq!(item["state"], "accepted");
    assert_eq!(item["decisions"][0]["action"], "accept");
    sb.stop().await;
}
