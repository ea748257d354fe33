//! The HealthLake export adapter against a local endpoint that answers in HealthLake's wire
//! format (AWS JSON 1.0: `POST /`, `X-Amz-Target: HealthLake.<Operation>`; shapes from the
//! API reference), as no local server emulates HealthLake (moto has none). The real SDK
//! client sends real, signed requests; the endpoint checks them, "writes" the export's parts
//! into the bucket (an in-memory store, or S3 on moto when `P360_TEST_AWS_ENDPOINT` is set)
//! as HealthLake lays them out, and the adapter gathers them into one file per type.
#![cfg(feature = "aws")]
#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

use aws_sdk_healthlake::config::{BehaviorVersion, Credentials, Region};
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use p360_fhirstore::FhirStoreError;
use p360_fhirstore::healthlake::{ExportRequest, HealthLakeExport, Polling};
use serde_json::{Value, json};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const DATASTORE: &str = "0123456789abcdef0123456789abcdef";
const JOB: &str = "9b9a51943afaedd0a8c0c26c49135a31";
const ROLE: &str = "arn:aws:iam::123456789012:role/p360-healthlake-export";
const KMS: &str = "arn:aws:kms:us-east-1:123456789012:key/d330e7fc-b56c-4216-a250-f4c43ef46e83";

#[derive(Clone, Copy, PartialEq)]
enum Ends {
    /// IN_PROGRESS twice, then COMPLETED.
    Completed,
    CompletedWithErrors,
    Failed,
    Never,
    /// StartFHIRExportJob is refused.
    Refused,
}

#[derive(Clone)]
struct Fake {
    ends: Ends,
    bucket: Arc<dyn ObjectStore>,
    /// The output folder's key prefix inside the bucket.
    prefix: String,
    describes: Arc<AtomicUsize>,
    problems: Arc<Mutex<Vec<String>>>,
}

impl Fake {
    fn check(&self, ok: bool, what: &str) {
        if !ok {
            self.problems.lock().unwrap().push(what.to_string());
        }
    }
}

fn json_1_0(status: StatusCode, body: Value) -> Response {
    (
        status,
        [("content-type", "application/x-amz-json-1.0")],
        body.to_string(),
    )
        .into_response()
}

fn resource_line(kind: &str, id: &str) -> String {
    json!({"resourceType": kind, "id": id, "subject": {"reference": "Patient/p1"}}).to_string()
}

async fn write_export(fake: &Fake) {
    let folder = format!("{}/{DATASTORE}-FHIR_EXPORT-{JOB}", fake.prefix);
    let parts = [
        (
            "Patient/Patient-0.ndjson",
            format!("{}\n", json!({"resourceType": "Patient", "id": "p1"})),
        ),
        (
            "Condition/Condition-0.ndjson",
            format!(
                "{}\n{}\n",
                resource_line("Condition", "c1"),
                resource_line("Condition", "c2")
            ),
        ),
        // The last line without its newline: the next part must still start a line.
        (
            "Condition/Condition-1.ndjson",
            resource_line("Condition", "c3"),
        ),
        (
            "Condition/Condition-2.ndjson",
            format!("{}\n", resource_line("Condition", "c4")),
        ),
        (
            "Observation/Observation-0.ndjson",
            format!("{}\n", resource_line("Observation", "o1")),
        ),
    ];
    for (key, body) in parts {
        fake.bucket
            .put(
                &ObjectPath::from(format!("{folder}/{key}")),
                PutPayload::from(body),
            )
            .await
            .unwrap();
    }
    // Another job's output beside it is not ours.
    fake.bucket
        .put(
            &ObjectPath::from(format!(
                "{}/{DATASTORE}-FHIR_EXPORT-otherjob/Patient/Patient-0.ndjson",
                fake.prefix
            )),
            PutPayload::from(format!(
                "{}\n",
                json!({"resourceType": "Patient", "id": "zz"})
            )),
        )
        .await
        .unwrap();
}

async fn endpoint(
    State(fake): State<Fake>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let header = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    fake.check(
        header("content-type") == "application/x-amz-json-1.0",
        "content-type is awsJson1_0",
    );
    let auth = header("authorization");
    fake.check(
        auth.starts_with("AWS4-HMAC-SHA256 ")
            && auth.contains("/us-east-1/healthlake/aws4_request"),
        "SigV4 for healthlake",
    );
    match header("x-amz-target").as_str() {
        "HealthLake.StartFHIRExportJob" => {
            fake.check(request["DatastoreId"] == DATASTORE, "DatastoreId");
            fake.check(request["DataAccessRoleArn"] == ROLE, "DataAccessRoleArn");
            let s3 = &request["OutputDataConfig"]["S3Configuration"];
            fake.check(
                s3["S3Uri"] == format!("s3://p360-exports/{}/", fake.prefix),
                "S3Uri",
            );
            fake.check(s3["KmsKeyId"] == KMS, "KmsKeyId");
            fake.check(request["JobName"] == "p360-nightly", "JobName");
            fake.check(
                request["ClientToken"]
                    .as_str()
                    .is_some_and(|t| !t.is_empty()),
                "ClientToken",
            );
            if fake.ends == Ends::Refused {
                return json_1_0(
                    StatusCode::FORBIDDEN,
                    json!({"__type": "AccessDeniedException", "Message": "not authorized to perform healthlake:StartFHIRExportJob"}),
                );
            }
            write_export(&fake).await;
            json_1_0(
                StatusCode::OK,
                json!({"DatastoreId": DATASTORE, "JobId": JOB, "JobStatus": "SUBMITTED"}),
            )
        }
        "HealthLake.DescribeFHIRExportJob" => {
            fake.check(
                request["DatastoreId"] == DATASTORE && request["JobId"] == JOB,
                "Describe names the job",
            );
            let n = fake.describes.fetch_add(1, Ordering::SeqCst);
            let (status, message) = match (fake.ends, n) {
                (_, 0) => ("SUBMITTED", None),
                (Ends::Never, _) | (_, 1) => ("IN_PROGRESS", None),
                (Ends::Completed, _) => ("COMPLETED", None),
                (Ends::CompletedWithErrors, _) => (
                    "COMPLETED_WITH_ERRORS",
                    Some("2 resources could not be exported"),
                ),
                (Ends::Failed, _) => (
                    "FAILED",
                    Some("HealthLake could not write to the S3 bucket"),
                ),
                (Ends::Refused, _) => ("FAILED", None),
            };
            let mut props = json!({
                "DatastoreId": DATASTORE, "JobId": JOB, "JobName": "p360-nightly", "JobStatus": status,
                "SubmitTime": 1.7e9,
                "OutputDataConfig": {"S3Configuration": {"S3Uri": format!("s3://p360-exports/{}/", fake.prefix), "KmsKeyId": KMS}},
                "DataAccessRoleArn": ROLE
            });
            if let Some(m) = message {
                props["Message"] = json!(m);
                props["EndTime"] = json!(1.7e9 + 60.0);
            }
            json_1_0(StatusCode::OK, json!({"ExportJobProperties": props}))
        }
        _ => json_1_0(
            StatusCode::BAD_REQUEST,
            json!({"__type": "UnknownOperationException"}),
        ),
    }
}

async fn fake(ends: Ends, bucket: Arc<dyn ObjectStore>, prefix: &str) -> (HealthLakeExport, Fake) {
    let fake = Fake {
        ends,
        bucket,
        prefix: prefix.to_string(),
        describes: Arc::default(),
        problems: Arc::default(),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let app = Router::new().fallback(endpoint).with_state(fake.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let conf = aws_sdk_healthlake::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(url)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("AKIDP360TEST", "test", None, None, "test"))
        .build();
    let adapter =
        HealthLakeExport::new(aws_sdk_healthlake::Client::from_conf(conf)).with_polling(Polling {
            timeout: Duration::from_secs(10),
            first_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(40),
        });
    (adapter, fake)
}

fn request(prefix: &str) -> ExportRequest {
    ExportRequest {
        datastore_id: DATASTORE.into(),
        output_s3_uri: format!("s3://p360-exports/{prefix}/"),
        kms_key_id: KMS.into(),
        data_access_role_arn: ROLE.into(),
        job_name: Some("p360-nightly".into()),
        client_token: Some("p360-nightly-2024-01-01".into()),
    }
}

async fn exports_are_gathered_into_one_file_per_type(bucket: Arc<dyn ObjectStore>, prefix: &str) {
    let (adapter, fake) = fake(Ends::Completed, bucket, prefix).await;
    let tmp = tempfile::tempdir().unwrap();
    let exported = adapter
        .export_to(&request(prefix), fake.bucket.as_ref(), tmp.path())
        .await
        .unwrap();
    assert!(
        fake.problems.lock().unwrap().is_empty(),
        "{:?}",
        fake.problems.lock().unwrap()
    );
    assert_eq!(
        fake.describes.load(Ordering::SeqCst),
        3,
        "SUBMITTED, IN_PROGRESS, COMPLETED"
    );
    assert_eq!(exported.job_id, JOB);
    assert_eq!(exported.with_errors, None);
    assert_eq!(exported.collected.parts, 5);
    let counts: Vec<(&str, u64)> = exported
        .collected
        .written
        .counts
        .iter()
        .map(|(k, v)| (k.as_str(), *v))
        .collect();
    assert_eq!(
        counts,
        [("Condition", 4), ("Observation", 1), ("Patient", 1)]
    );

    let mut names: Vec<String> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["Condition.ndjson", "Observation.ndjson", "Patient.ndjson"]
    );
    let conditions = std::fs::read_to_string(tmp.path().join("Condition.ndjson")).unwrap();
    let ids: Vec<String> = conditions
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(
        ids,
        ["c1", "c2", "c3", "c4"],
        "parts in order, concatenated"
    );

    // The bulk NDJSON feed parser reads the folder.
    let mut report = p360_enrich::report::Report::default();
    let mut people = 0;
    for name in &names {
        let path = tmp.path().join(name);
        let kind = p360_enrich::feeds::FeedKind::detect(&path)
            .unwrap()
            .unwrap();
        let mut file_report = report.for_file(name);
        p360_enrich::feeds::read(
            kind,
            std::fs::File::open(&path).unwrap(),
            &mut file_report,
            &mut |i| {
                people += usize::from(matches!(i, p360_enrich::feeds::Item::Person(_)));
            },
        );
    }
    assert_eq!(people, 1);
    assert_eq!(report.records.values().sum::<u64>(), 6);
}

#[tokio::test]
async fn an_export_is_started_awaited_and_gathered() {
    let bucket: Arc<dyn ObjectStore> = Arc::new(object_store::memory::InMemory::new());
    exports_are_gathered_into_one_file_per_type(bucket, "exports/p360").await;
}

#[tokio::test]
#[ignore = "needs a moto server: P360_TEST_AWS_ENDPOINT (scripts/test.sh starts one)"]
async fn an_export_is_gathered_from_s3_on_moto() {
    let endpoint = std::env::var("P360_TEST_AWS_ENDPOINT")
        .expect("P360_TEST_AWS_ENDPOINT must name a moto server (scripts/moto.sh start prints it)");
    let bucket_name = format!("p360-hl-{}", std::process::id());
    // moto takes an unsigned CreateBucket.
    let resp = reqwest::Client::new()
        .put(format!("{endpoint}/{bucket_name}"))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{}", resp.status());
    let s3 = object_store::aws::AmazonS3Builder::new()
        .with_bucket_name(&bucket_name)
        .with_region("us-east-1")
        .with_access_key_id("test")
        .with_secret_access_key("test")
        .with_endpoint(&endpoint)
        .with_allow_http(true)
        .with_virtual_hosted_style_request(false)
        .build()
        .unwrap();
    exports_are_gathered_into_one_file_per_type(Arc::new(s3), "exports").await;
}

#[tokio::test]
async fn a_job_completed_with_errors_is_gathered_and_says_so() {
    let bucket: Arc<dyn ObjectStore> = Arc::new(object_store::memory::InMemory::new());
    let (adapter, fake) = fake(Ends::CompletedWithErrors, bucket, "x").await;
    let tmp = tempfile::tempdir().unwrap();
    let exported = adapter
        .export_to(&request("x"), fake.bucket.as_ref(), tmp.path())
        .await
        .unwrap();
    assert_eq!(
        exported.with_errors.as_deref(),
        Some("2 resources could not be exported")
    );
    assert_eq!(exported.collected.written.total(), 6);
}

#[tokio::test]
async fn a_failed_job_is_a_clear_error() {
    let bucket: Arc<dyn ObjectStore> = Arc::new(object_store::memory::InMemory::new());
    let (adapter, fake) = fake(Ends::Failed, bucket, "x").await;
    let tmp = tempfile::tempdir().unwrap();
    let err = adapter
        .export_to(&request("x"), fake.bucket.as_ref(), tmp.path())
        .await
        .unwrap_err();
    assert!(matches!(err, FhirStoreError::ExportFailed { .. }), "{err}");
    assert_eq!(
        err.to_string(),
        format!(
            "HealthLake export job {JOB} ended FAILED: HealthLake could not write to the S3 bucket"
        )
    );
    assert!(!err.is_retryable());
    assert_eq!(
        std::fs::read_dir(tmp.path()).unwrap().count(),
        0,
        "nothing gathered"
    );
}

#[tokio::test]
async fn a_job_that_does_not_finish_times_out() {
    let bucket: Arc<dyn ObjectStore> = Arc::new(object_store::memory::InMemory::new());
    let (adapter, fake) = fake(Ends::Never, bucket, "x").await;
    let adapter = adapter.with_polling(Polling {
        timeout: Duration::from_millis(300),
        first_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(40),
    });
    let tmp = tempfile::tempdir().unwrap();
    let err = adapter
        .export_to(&request("x"), fake.bucket.as_ref(), tmp.path())
        .await
        .unwrap_err();
    assert!(
        matches!(err, FhirStoreError::ExportTimeout { ref status, .. } if status == "IN_PROGRESS"),
        "{err}"
    );
    assert!(err.is_retryable());
    assert!(fake.describes.load(Ordering::SeqCst) >= 3);
}

#[tokio::test]
async fn a_refused_start_names_the_operation_and_code() {
    let bucket: Arc<dyn ObjectStore> = Arc::new(object_store::memory::InMemory::new());
    let (adapter, fake) = fake(Ends::Refused, bucket, "x").await;
    let tmp = tempfile::tempdir().unwrap();
    let err = adapter
        .export_to(&request("x"), fake.bucket.as_ref(), tmp.path())
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(
            err,
            FhirStoreError::HealthLake {
                operation: "StartFHIRExportJob",
                retryable: false,
                ..
            }
        ),
        "{text}"
    );
    assert!(text.contains("AccessDeniedException"), "{text}");
    assert_eq!(fake.describes.load(Ordering::SeqCst), 0);
}
