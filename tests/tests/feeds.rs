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
