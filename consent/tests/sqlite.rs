//! The SQLite consent store passes the conformance suite.

use p360_consent::SqliteConsentStore;
use std::sync::Arc;

#[tokio::test]
async fn sqlite_store_passes_the_conformance_suite() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteConsentStore::open(&dir.path().join("consent.db")).expect("open");
    p360_consent::testsuite::run(Arc::new(store), "").await;
}
