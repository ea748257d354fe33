//! The REST client against a scripted local HTTP server: paging, servers that loop, HTTP
//! errors and retries, answers that are not Bundles or not JSON, links to other hosts, the
//! authentication headers, and that errors never quote the search value.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::IntoResponse;
use p360_fhirstore::{Auth, FhirClient, FhirStoreError, Limits, NdjsonDir};
use serde_json::{Value, json};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The answer to one request: status and body, from the path-and-query and the request count.
type Script = Arc<dyn Fn(&str, usize) -> (u16, String) + Send + Sync>;

#[derive(Clone)]
struct Server {
    script: Script,
    hits: Arc<AtomicUsize>,
    requests: Arc<Mutex<Vec<(String, HeaderMap)>>>,
}

async fn answer(State(s): State<Server>, uri: Uri, headers: HeaderMap) -> impl IntoResponse {
    let pq = uri
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();
    let n = s.hits.fetch_add(1, Ordering::SeqCst);
    s.requests.lock().unwrap().push((pq.clone(), headers));
    let (status, body) = (s.script)(&pq, n);
    (
        StatusCode::from_u16(status).unwrap(),
        [("content-type", "application/fhir+json")],
        body,
    )
}

async fn serve(
    script: impl Fn(&str, usize) -> (u16, String) + Send + Sync + 'static,
) -> (String, Server) {
    let server = Server {
        script: Arc::new(script),
        hits: Arc::default(),
        requests: Arc::default(),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/fhir", listener.local_addr().unwrap());
    let app = Router::new().fallback(answer).with_state(server.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, server)
}

fn bundle(resources: &[Value], next: Option<&str>) -> String {
    let mut b = json!({
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": resources.iter().map(|r| json!({"resource": r, "search": {"mode": "match"}})).collect::<Vec<_>>(),
        "link": [{"relation": "self", "url": "ignored"}],
    });
    if let Some(n) = next {
        b["link"]
            .as_array_mut()
            .unwrap()
            .push(json!({"relation": "next", "url": n}));
    }
    b.to_string()
}

fn patient(id: &str) -> Value {
    json!({"resourceType": "Patient", "id": id, "name": [{"family": "Doe", "given": ["Jane"]}],
           "birthDate": "1970-01-02",
           "identifier": [{"system": "https://payor.example/member-id", "value": "M123"}]})
}

fn condition(id: &str) -> Value {
    json!({"resourceType": "Condition", "id": id, "subject": {"reference": "Patient/p1"},
           "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "E11.9"}]},
           "onsetDateTime": "2023-04-05"})
}

fn fast() -> Limits {
    Limits {
        retries: 1,
        backoff: Duration::from_millis(5),
        timeout: Duration::from_secs(5),
        ..Limits::default()
    }
}

fn files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

/// A member on three pages: the search finds the Patient, `$everything` pages with a
/// relative then an absolute next link.
fn member_server(pq: &str, _: usize) -> (u16, String) {
    let path = pq.split('?').next().unwrap_or_default();
    match path {
        "/fhir/Patient" => (200, bundle(&[patient("p1")], None)),
        "/fhir/Patient/p1/$everything" => (
            200,
            bundle(&[patient("p1"), condition("c1")], Some("everything-page-2?page=2")),
        ),
        "/fhir/Patient/p1/everything-page-2" => (
            200,
            // c1 again (a server whose pages overlap), and an outcome entry that is no resource.
            bundle(&[condition("c1"), condition("c2")], Some("/fhir/p3?page=3")),
        ),
        "/fhir/p3" => (
            200,
            json!({"resourceType": "Bundle", "type": "searchset", "entry": [
                {"resource": condition("c3")},
                {"resource": {"resourceType": "OperationOutcome", "issue": []}, "search": {"mode": "outcome"}}
            ]})
            .to_string(),
        ),
        _ => (404, String::new()),
    }
}

#[tokio::test]
async fn a_member_is_pulled_across_pages_into_ndjson_the_feed_parser_reads() {
    let (base, server) = serve(member_server).await;
    let tmp = tempfile::tempdir().unwrap();
    let client = FhirClient::new(&base).unwrap().with_limits(fast());
    let pulled = client
        .pull_member("https://payor.example/member-id", "M123", tmp.path())
        .await
        .unwrap();
    assert_eq!(pulled.patient_id, "p1");
    assert_eq!(pulled.pages, 3);
    assert_eq!(pulled.written.counts["Patient"], 1);
    assert_eq!(pulled.written.counts["Condition"], 3);
    assert_eq!(pulled.written.duplicates, 1);
    assert_eq!(files(tmp.path()), ["Condition.ndjson", "Patient.ndjson"]);

    let requests = server.requests.lock().unwrap();
    assert!(
        requests[0]
            .0
            .starts_with("/fhir/Patient?identifier=https%3A%2F%2Fpayor.example%2Fmember-id%7CM123"),
        "{}",
        requests[0].0
    );
    assert!(
        requests[1]
            .0
            .starts_with("/fhir/Patient/p1/$everything?_count=100")
    );
    assert_eq!(requests[1].1["accept"], "application/fhir+json");
    assert!(requests[1].1.get("authorization").is_none());
    drop(requests);

    // What p360 enrich makes of it: one person-record with its member id, three conditions.
    let mut report = p360_enrich::report::Report::default();
    let mut items = Vec::new();
    for name in files(tmp.path()) {
        let path = tmp.path().join(&name);
        let kind = p360_enrich::feeds::FeedKind::detect(&path).unwrap();
        assert_eq!(kind, Some(p360_enrich::feeds::FeedKind::FhirNdjson));
        let mut file_report = report.for_file(&name);
        p360_enrich::feeds::read(
            p360_enrich::feeds::FeedKind::FhirNdjson,
            std::fs::File::open(&path).unwrap(),
            &mut file_report,
            &mut |item| items.push(item),
        );
    }
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    let persons: Vec<_> = items
        .iter()
        .filter_map(|i| match i {
            p360_enrich::feeds::Item::Person(p) => Some(p),
            _ => None,
        })
        .collect();
    assert_eq!(persons.len(), 1);
    assert_eq!(persons[0].member_id.as_deref(), Some("M123"));
    let statements = items
        .iter()
        .filter(|i| matches!(i, p360_enrich::feeds::Item::Statement(_)))
        .count();
    assert_eq!(statements, 3);
}

#[tokio::test]
async fn a_next_link_to_a_page_already_read_is_a_loop() {
    let (base, _) = serve(|_, _| {
        (
            200,
            bundle(&[condition("c1")], Some("/fhir/Condition?_count=100")),
        )
    })
    .await;
    let tmp = tempfile::tempdir().unwrap();
    let client = FhirClient::new(&base).unwrap().with_limits(fast());
    let mut out = NdjsonDir::create(tmp.path()).await.unwrap();
    let err = client.search("Condition", &[], &mut out).await.unwrap_err();
    assert!(matches!(err, FhirStoreError::Loop { .. }), "{err}");
    assert!(!err.is_retryable());
    assert!(err.to_string().contains("(page 2)"), "{err}");
    drop(out);
    assert!(files(tmp.path()).is_empty(), "parts are removed");
}

#[tokio::test]
async fn the_same_page_under_new_links_is_a_loop() {
    // The server ignores the page token: new URLs, same entries.
    let (base, _) = serve(|_, n| {
        (
            200,
            bundle(
                &[condition("c1"), condition("c2")],
                Some(&format!("/fhir/Condition?page={n}")),
            ),
        )
    })
    .await;
    let tmp = tempfile::tempdir().unwrap();
    let client = FhirClient::new(&base).unwrap().with_limits(fast());
    let mut out = NdjsonDir::create(tmp.path()).await.unwrap();
    let err = client.search("Condition", &[], &mut out).await.unwrap_err();
    assert!(matches!(err, FhirStoreError::Loop { .. }), "{err}");
}

#[tokio::test]
async fn pages_are_capped() {
    let (base, _) = serve(|_, n| {
        (
            200,
            bundle(
                &[condition(&format!("c{n}"))],
                Some(&format!("/fhir/Condition?page={n}")),
            ),
        )
    })
    .await;
    let tmp = tempfile::tempdir().unwrap();
    let client = FhirClient::new(&base).unwrap().with_limits(Limits {
        max_pages: 4,
        ..fast()
    });
    let mut out = NdjsonDir::create(tmp.path()).await.unwrap();
    let err = client.search("Condition", &[], &mut out).await.unwrap_err();
    assert!(
        matches!(err, FhirStoreError::TooManyPages { limit: 4, ref at } if at.page == 5),
        "{err}"
    );
}

#[tokio::test]
async fn a_next_link_to_another_host_is_not_followed() {
    let (base, _) = serve(|_, _| {
        (
            200,
            bundle(
                &[condition("c1")],
                Some("http://elsewhere.example/fhir/Condition?page=2"),
            ),
        )
    })
    .await;
    let tmp = tempfile::tempdir().unwrap();
    let client = FhirClient::new(&base)
        .unwrap()
        .with_auth(Auth::Bearer("tok".into()))
        .with_limits(fast());
    let mut out = NdjsonDir::create(tmp.path()).await.unwrap();
    let err = client.search("Condition", &[], &mut out).await.unwrap_err();
    assert!(matches!(err, FhirStoreError::ForeignLink { .. }), "{err}");
}

#[tokio::test]
async fn http_errors_name_the_status_and_place_but_no_value() {
    let (base, server) = serve(|_, _| {
        (
            404,
            json!({"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "not-found", "diagnostics": "no Patient with identifier M123"}]}).to_string(),
        )
    })
    .await;
    let client = FhirClient::new(&base).unwrap().with_limits(fast());
    let err = client
        .find_patient("https://payor.example/member-id", "M123")
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(err, FhirStoreError::Status { status: 404, .. }),
        "{text}"
    );
    assert!(!err.is_retryable());
    assert_eq!(
        text,
        "GET /fhir/Patient?identifier=&_count= (page 1): HTTP 404 (not-found)"
    );
    assert!(!text.contains("M123") && !text.contains("payor.example"));
    assert_eq!(
        server.hits.load(Ordering::SeqCst),
        1,
        "a 404 is not retried"
    );
}

#[tokio::test]
async fn server_errors_are_retried_then_reported_retryable() {
    let (base, server) = serve(|_, _| (503, String::new())).await;
    let client = FhirClient::new(&base).unwrap().with_limits(fast());
    let err = client.find_patient("s", "v").await.unwrap_err();
    assert!(
        matches!(err, FhirStoreError::Status { status: 503, .. }),
        "{err}"
    );
    assert!(err.is_retryable());
    assert_eq!(
        server.hits.load(Ordering::SeqCst),
        2,
        "one try and one retry"
    );

    // A blip: the retry succeeds.
    let (base, _) = serve(|_, n| {
        if n == 0 {
            (429, String::new())
        } else {
            (200, bundle(&[patient("p1")], None))
        }
    })
    .await;
    let client = FhirClient::new(&base).unwrap().with_limits(fast());
    assert_eq!(client.find_patient("s", "v").await.unwrap(), "p1");
}

#[tokio::test]
async fn answers_that_are_not_bundles_are_refused() {
    for (body, expect) in [
        (
            "{\"resourceType\": \"Bundle\", \"entry\": [",
            "JSON ends early",
        ),
        ("<html>gateway</html>", "not JSON"),
        (
            "{\"resourceType\": \"Patient\", \"id\": \"p1\"}",
            "not a FHIR Bundle",
        ),
        (
            "{\"resourceType\": \"OperationOutcome\"}",
            "OperationOutcome",
        ),
        (
            "{\"resourceType\": \"Bundle\", \"entry\": {}}",
            "entry is not an array",
        ),
    ] {
        let (base, _) = serve(move |_, _| (200, body.to_string())).await;
        let client = FhirClient::new(&base).unwrap().with_limits(fast());
        let err = client.find_patient("s", "v").await.unwrap_err();
        assert!(matches!(err, FhirStoreError::BadResponse { .. }), "{err}");
        assert!(err.to_string().contains(expect), "{err}");
        assert!(!err.is_retryable());
    }
}

#[tokio::test]
async fn oversized_pages_are_refused() {
    let (base, _) = serve(|_, _| (200, bundle(&[patient(&"x".repeat(60))], None))).await;
    let client = FhirClient::new(&base).unwrap().with_limits(Limits {
        max_page_bytes: 100,
        ..fast()
    });
    let err = client.find_patient("s", "v").await.unwrap_err();
    assert!(
        matches!(err, FhirStoreError::PageTooLarge { limit: 100, .. }),
        "{err}"
    );
}

#[tokio::test]
async fn no_patient_or_two_are_refused() {
    let (base, _) = serve(|_, _| (200, bundle(&[], None))).await;
    let client = FhirClient::new(&base).unwrap().with_limits(fast());
    assert!(matches!(
        client.find_patient("s", "v").await,
        Err(FhirStoreError::NoPatient)
    ));
    let (base, _) = serve(|_, _| (200, bundle(&[patient("p1"), patient("p2")], None))).await;
    let client = FhirClient::new(&base).unwrap().with_limits(fast());
    assert!(matches!(
        client.find_patient("s", "v").await,
        Err(FhirStoreError::AmbiguousPatient(2))
    ));
}

#[tokio::test]
async fn a_server_that_is_down_is_a_retryable_transport_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}/fhir", listener.local_addr().unwrap());
    drop(listener);
    let client = FhirClient::new(&base).unwrap().with_limits(fast());
    let err = client.find_patient("s", "secret-value").await.unwrap_err();
    assert!(matches!(err, FhirStoreError::Transport { .. }), "{err}");
    assert!(err.is_retryable());
    assert!(!err.to_string().contains("secret-value"), "{err}");
}

#[tokio::test]
async fn bearer_tokens_are_sent() {
    let (base, server) = serve(|_, _| (200, bundle(&[patient("p1")], None))).await;
    let client = FhirClient::new(&base)
        .unwrap()
        .with_auth(Auth::Bearer("tok-1".into()))
        .with_limits(fast());
    client.find_patient("s", "v").await.unwrap();
    let requests = server.requests.lock().unwrap();
    assert_eq!(requests[0].1["authorization"], "Bearer tok-1");
}

#[cfg(feature = "aws")]
#[tokio::test]
async fn healthlake_requests_carry_a_sigv4_signature() {
    use aws_credential_types::Credentials;
    use aws_credential_types::provider::SharedCredentialsProvider;
    use p360_fhirstore::sigv4::{HEALTHLAKE, Signer};

    let (base, server) = serve(|_, _| (200, bundle(&[patient("p1")], None))).await;
    let creds = Credentials::new(
        "AKIDP360TEST",
        "not-a-secret",
        Some("session-token".into()),
        None,
        "test",
    );
    let signer = Signer::new(
        SharedCredentialsProvider::new(creds),
        "us-east-1",
        HEALTHLAKE,
    );
    let client = FhirClient::new(&base)
        .unwrap()
        .with_auth(Auth::SigV4(signer))
        .with_limits(fast());
    client
        .find_patient("https://payor.example/member-id", "M123")
        .await
        .unwrap();
    let requests = server.requests.lock().unwrap();
    let headers = &requests[0].1;
    let auth = headers["authorization"].to_str().unwrap();
    assert!(
        auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIDP360TEST/"),
        "{auth}"
    );
    assert!(
        auth.contains("/us-east-1/healthlake/aws4_request"),
        "{auth}"
    );
    assert!(
        auth.contains("SignedHeaders=") && auth.contains("Signature="),
        "{auth}"
    );
    assert!(headers.get("x-amz-date").is_some());
    assert_eq!(headers["x-amz-security-token"], "session-token");
}
