//! The whole system in AWS mode against an AWS-compatible endpoint (moto, started by
//! `scripts/moto.sh` and named by `P360_TEST_AWS_ENDPOINT`; credentials from the usual
//! `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` variables): raw documents in S3, SQS queues,
//! the S3 photo drop fed by real bucket notifications. Same code as local mode, other config.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions
#![cfg(feature = "aws")]

use object_store::{ObjectStoreExt, PutPayload};
use p360::config::{QueueKind, StoreKind};
use p360::{Config, System};
use p360_identity::Role;
use p360_identity::users::NewUser;
use p360_queue::sqs::SqsQueue;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

fn endpoint() -> String {
    std::env::var("P360_TEST_AWS_ENDPOINT")
        .expect("P360_TEST_AWS_ENDPOINT must name a moto server (scripts/moto.sh start prints it)")
}

fn png(seed: u8) -> Vec<u8> {
    let img = image::GrayImage::from_fn(48, 48, |x, y| image::Luma([((x * y) as u8) ^ seed]));
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

async fn documents(
    http: &reqwest::Client,
    base: &str,
    patient: &str,
    token: &str,
    n: usize,
) -> serde_json::Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let v: serde_json::Value = http
            .get(format!("{base}/v1/patients/{patient}/documents"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if v["documents"].as_array().map_or(0, Vec::len) >= n {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "documents not registered: {v}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn aws_mode_end_to_end() {
    let endpoint = endpoint();
    let run = &uuid::Uuid::new_v4().simple().to_string()[..8];
    let (raw_bucket, drop_bucket) = (format!("p360-raw-{run}"), format!("p360-drop-{run}"));
    let http = reqwest::Client::new();
    for b in [&raw_bucket, &drop_bucket] {
        let r = http.put(format!("{endpoint}/{b}")).send().await.unwrap();
        assert!(r.status().is_success(), "create bucket: {}", r.status());
    }

    let dir = tempfile::tempdir().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut config = Config {
        data_dir: dir.path().join("data"),
        ..Config::default()
    };
    config.api.listen = listener.local_addr().unwrap();
    config.drop_folder.enabled = false;
    config.aws.endpoint_url = Some(endpoint.clone());
    config.queue.kind = QueueKind::Sqs;
    config.queue.sqs_prefix = format!("p360-{run}-");
    config.store.kind = StoreKind::S3;
    config.store.bucket = Some(raw_bucket.clone());
    config.store.drop_bucket = Some(drop_bucket.clone());

    let system = System::build(config.clone()).await.unwrap();

    // The drop bucket notifies the s3-drop queue of new objects under drop/.
    let sdk = p360::aws::sdk_config(&config.aws).await;
    let arn = SqsQueue::from_conf(&sdk, config.queue.sqs_prefix.clone())
        .arn(p360::system::S3_DROP_QUEUE)
        .await
        .unwrap();
    let notification = format!(
        "<NotificationConfiguration><QueueConfiguration><Id>p360-drop</Id><Queue>{arn}</Queue>\
         <Event>s3:ObjectCreated:*</Event><Filter><S3Key><FilterRule><Name>prefix</Name>\
         <Value>drop/</Value></FilterRule></S3Key></Filter></QueueConfiguration></NotificationConfiguration>"
    );
    let r = http
        .put(format!("{endpoint}/{drop_bucket}?notification"))
        .body(notification)
        .send()
        .await
        .unwrap();
    assert!(
        r.status().is_success(),
        "notification config: {}",
        r.status()
    );

    let dir_users = system.directory.clone().unwrap();
    let jane = dir_users
        .add(NewUser {
            username: "jane",
            password: "correct horse battery",
            role: Role::Patient,
            patient_id: None,
        })
        .unwrap();
    let patient = jane.patient_id.clone().unwrap();
    let token = system
        .issuer
        .as_ref()
        .unwrap()
        .issue(&jane.principal())
        .unwrap();
    let shutdown = CancellationToken::new();
    let base = format!("http://{}", config.api.listen);
    let server = tokio::spawn(system.serve(listener, shutdown.clone()));

    // 1. Upload through the API: stored in the raw bucket, registered via SQS.
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(png(1)).file_name("a.png"),
    );
    let r = http
        .post(format!("{base}/v1/patients/{patient}/documents"))
        .bearer_auth(&token)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    documents(&http, &base, patient.as_str(), &token, 1).await;

    // 2. The S3 photo drop: an object under drop/<patient>/ arrives as a document too.
    let drop_store = p360::aws::s3_store(&config.aws, &drop_bucket).unwrap();
    let key = format!("drop/{patient}/phone photo.png");
    drop_store
        .put(
            &object_store::path::Path::from(key.as_str()),
            PutPayload::from(png(2)),
        )
        .await
        .unwrap();
    let list = documents(&http, &base, patient.as_str(), &token, 2).await;
    let channels: Vec<_> = list["documents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["channel"].as_str().unwrap().to_owned())
        .collect();
    assert!(channels.contains(&"s3_drop".to_owned()), "{channels:?}");

    // The dropped object was consumed; the raw copy is readable back through the API.
    let gone = drop_store
        .head(&object_store::path::Path::from(key.as_str()))
        .await;
    assert!(matches!(gone, Err(object_store::Error::NotFound { .. })));
    let doc = list["documents"][0]["document_id"].as_str().unwrap();
    let content = http
        .get(format!(
            "{base}/v1/patients/{patient}/documents/{doc}/content"
        ))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(content.status(), 200);

    // 3. Junk in the drop is moved aside with its reason, not lost and not ingested.
    let junk = format!("drop/{patient}/notes.png");
    drop_store
        .put(
            &object_store::path::Path::from(junk.as_str()),
            PutPayload::from_static(b"not an image"),
        )
        .await
        .unwrap();
    let reason = object_store::path::Path::from(format!("rejected/{junk}.reason.txt").as_str());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let text = loop {
        if let Ok(r) = drop_store.get(&reason).await {
            break String::from_utf8(r.bytes().await.unwrap().to_vec()).unwrap();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "junk was not rejected"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(text.contains("unsupported file type"), "{text}");

    shutdown.cancel();
    server.await.unwrap().unwrap();
}

/// The access ledger's checkpoints in a bucket with S3 Object Lock (COMPLIANCE retention), as
/// `infra/` deploys it: written with the checksum such a bucket demands, read back by
/// `verify`, and a locked version cannot be deleted.
#[tokio::test]
async fn ledger_checkpoints_land_in_an_object_lock_bucket() {
    let endpoint = endpoint();
    let run = &uuid::Uuid::new_v4().simple().to_string()[..8];
    let bucket = format!("p360-ledger-{run}");
    let http = reqwest::Client::new();
    let r = http
        .put(format!("{endpoint}/{bucket}"))
        .header("x-amz-bucket-object-lock-enabled", "true")
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "create bucket: {}", r.status());
    let lock = "<ObjectLockConfiguration><ObjectLockEnabled>Enabled</ObjectLockEnabled><Rule>\
                <DefaultRetention><Mode>COMPLIANCE</Mode><Days>1</Days></DefaultRetention></Rule>\
                </ObjectLockConfiguration>";
    let r = http
        .put(format!("{endpoint}/{bucket}?object-lock"))
        .body(lock)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "object lock: {}", r.status());

    let dir = tempfile::tempdir().unwrap();
    let mut config = Config {
        data_dir: dir.path().join("data"),
        ..Config::default()
    };
    config.aws.endpoint_url = Some(endpoint.clone());
    config.consent.checkpoint_bucket = Some(bucket.clone());
    let (_, ledger) = p360::system::build_consent(&config).await.unwrap();
    for i in 0..3 {
        ledger
            .append(p360_consent::ledger::Access {
                at: chrono::Utc::now(),
                patient: p360_events::PatientId::parse("pat-1").unwrap(),
                actor: format!("dr-{i}"),
                role: "provider".into(),
                action: "read".into(),
                resource_types: vec![],
                resource_ids: vec![],
                resource_count: 0,
                grant_id: None,
                purpose: None,
                outcome: "deny".into(),
                rule: "no_grant".into(),
                break_glass: false,
            })
            .unwrap();
    }
    let (_, checkpoints) = p360::system::build_stores(&config).unwrap();
    let cp = p360_consent::checkpoint::write(&ledger, &*checkpoints, chrono::Utc::now())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(cp.seq, 3);
    let report = p360_consent::checkpoint::verify(&ledger, &*checkpoints)
        .await
        .unwrap();
    assert!(report.ok(), "{}", report.summary());
    assert!(
        report.summary().contains("complete up to checkpoint"),
        "{}",
        report.summary()
    );

    // The locked version stays: deleting it is refused.
    let key = "ledger/checkpoints/00000000000000000003.json";
    let versions = http
        .get(format!("{endpoint}/{bucket}?versions&prefix={key}"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let version = versions
        .split("<VersionId>")
        .nth(1)
        .and_then(|v| v.split("</VersionId>").next())
        .expect("a version of the checkpoint");
    let r = http
        .delete(format!("{endpoint}/{bucket}/{key}?versionId={version}"))
        .send()
        .await
        .unwrap();
    assert!(
        r.status().is_client_error(),
        "a locked checkpoint was deleted: {}",
        r.status()
    );
}
