//! The GraphStore conformance suite against an independent SPARQL 1.1 server (Virtuoso,
//! started by `scripts/virtuoso.sh`, named by `P360_TEST_SPARQL_ENDPOINT`). Ignored in plain
//! `cargo test` for want of the server; `scripts/test.sh` runs it.

use p360_graph::remote::RemoteStore;

#[tokio::test]
#[ignore = "needs a SPARQL 1.1 server: run by scripts/test.sh"]
async fn remote_store_passes_the_conformance_suite() {
    let endpoint = std::env::var("P360_TEST_SPARQL_ENDPOINT").expect(
        "P360_TEST_SPARQL_ENDPOINT must name a SPARQL 1.1 endpoint (scripts/virtuoso.sh start prints it)",
    );
    let store = RemoteStore::new(&endpoint, &endpoint);
    let run = format!("r{}", std::process::id());
    p360_graph::testsuite::run_all(&store, &run).await;
}
