//! The DynamoDB consent store passes the same conformance suite as the SQLite one, against a
//! moto server (`scripts/moto.sh`, named by `P360_TEST_AWS_ENDPOINT`).
#![cfg(feature = "aws")]

use p360_consent::dynamodb::DynamoConsentStore;
use std::sync::Arc;

#[tokio::test]
#[ignore = "needs a moto server: P360_TEST_AWS_ENDPOINT (scripts/test.sh starts one)"]
async fn dynamodb_store_passes_the_conformance_suite() {
    let endpoint = std::env::var("P360_TEST_AWS_ENDPOINT")
        .expect("P360_TEST_AWS_ENDPOINT must name a moto server (scripts/moto.sh start prints it)");
    let conf = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .load()
        .await;
    let run = uuid::Uuid::new_v4().simple().to_string();
    let store = DynamoConsentStore::from_conf(&conf, format!("p360-consent-{run}"));
    store.ensure_table().await.expect("table");
    store
        .ensure_table()
        .await
        .expect("ensuring twice is harmless");
    p360_consent::testsuite::run(Arc::new(store), &format!("{}-", &run[..8])).await;
}
