//! The API end to end: uploads flow to the document register; every kind of bad input and bad
//! credential gets a clear 4xx (never a 500); nobody but the patient reads the record yet.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

mod common;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::{Sandbox, file, png, sample};
use p360_identity::Role;
use reqwest::StatusCode;
use reqwest::multipart::Form;
use serde_json::Value;
use std::time::Duration;

/// Every error response is JSON with a code and a message, and never a 500.
async fn error_of(resp: reqwest::Response, status: StatusCode) -> String {
    assert_eq!(resp.status(), status, "unexpected status");
    let body: Value = resp.json().await.expect("error bodies are JSON");
    assert!(body["error"].is_string(), "{body}");
    body["message"].as_str().expect("a message").to_owned()
}

#[tokio::test]
async fn upload_flows_to_the_register_and_bad_input_gets_clear_errors() {
    let sb = Sandbox::start_with(|c| c.api.max_upload_bytes = 1_000_000).await;
    let jane = sb.user("jane", Role::Patient);
    let patient = jane.patient_id.clone().unwrap();
    let token = sb.login("jane").await;
    let docs = sb.url(&format!("/v1/patients/{patient}/documents"));

    // A real sample document: 201, then listed with status "received".
    let r = sb
        .http
        .post(&docs)
        .bearer_auth(&token)
        .multipart(file(sample("doc_002.png"), "lab.png", "image/png"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let created: Value = r.json().await.unwrap();
    let doc_id = created["document_id"].as_str().unwrap().to_owned();
    assert_eq!(created["media_type"], "image/png");
    let list = sb.wait_for_documents(patient.as_str(), &token, 1).await;
    assert_eq!(list["documents"][0]["document_id"], doc_id.as_str());
    assert_eq!(list["documents"][0]["status"], "received");
    assert_eq!(list["documents"][0]["channel"], "upload");

    // The same bytes again, under another name and declared type: the same document, 200.
    let r = sb
        .http
        .post(&docs)
        .bearer_auth(&token)
        .multipart(file(sample("doc_002.png"), "copy.jpg", "image/jpeg"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.json::<Value>().await.unwrap()["duplicate"], true);

    // The original bytes come back, byte for byte.
    let content = sb
        .http
        .get(sb.url(&format!(
            "/v1/patients/{patient}/documents/{doc_id}/content"
        )))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(content.headers()["content-type"], "image/png");
    assert_eq!(
        content.bytes().await.unwrap().to_vec(),
        sample("doc_002.png")
    );

    let post = |form: Form| {
        sb.http
            .post(&docs)
            .bearer_auth(&token)
            .multipart(form)
            .send()
    };

    let mut truncated = sample("doc_001.jpg");
    truncated.truncate(truncated.len() / 3);
    let msg = error_of(
        post(file(truncated, "photo.jpg", "image/jpeg"))
            .await
            .unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert!(msg.contains("corrupt or truncated"), "{msg}");

    let msg = error_of(
        post(file(b"just some text".to_vec(), "scan.png", "image/png"))
            .await
            .unwrap(),
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
    )
    .await;
    assert!(msg.contains("JPEG or PNG photo or a PDF"), "{msg}");

    let msg = error_of(
        post(file(png(1, 1, 0), "dot.png", "image/png"))
            .await
            .unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert!(msg.contains("too small"), "{msg}");

    let msg = error_of(
        post(file(vec![0xFF; 1_500_000], "huge.jpg", "image/jpeg"))
            .await
            .unwrap(),
        StatusCode::PAYLOAD_TOO_LARGE,
    )
    .await;
    assert!(msg.contains("limit"), "{msg}");

    let msg = error_of(
        post(Form::new().text("note", "no file here"))
            .await
            .unwrap(),
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert!(msg.contains("no field named 'file'"), "{msg}");

    let msg = error_of(
        sb.http
            .post(&docs)
            .bearer_auth(&token)
            .json(&serde_json::json!({"file": "base64?"}))
            .send()
            .await
            .unwrap(),
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
    )
    .await;
    assert!(msg.contains("multipart/form-data"), "{msg}");

    // Nothing was registered by the refused uploads.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let list = sb.wait_for_documents(patient.as_str(), &token, 1).await;
    assert_eq!(list["documents"].as_array().unwrap().len(), 1);
    sb.stop().await;
}

#[tokio::test]
async fn login_errors_are_clear_and_brute_force_is_throttled() {
    let sb = Sandbox::start().await;
    sb.user("jane", Role::Patient);
    let login = |body: &'static str, ct: &'static str| {
        sb.http
            .post(sb.url("/auth/token"))
            .header("content-type", ct)
            .body(body)
            .send()
    };
    let msg = error_of(
        login(
            r#"{"username": "jane", "password": "corr"#,
            "application/json",
        )
        .await
        .unwrap(),
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert!(msg.contains("not valid JSON"), "{msg}");
    let msg = error_of(
        login(
            r#"{"username": "jane", "password": 12345678}"#,
            "application/json",
        )
        .await
        .unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert!(msg.contains("\"password\": string"), "{msg}");
    assert!(!msg.contains("12345678"), "errors never echo input");
    error_of(
        login("username=jane", "application/x-www-form-urlencoded")
            .await
            .unwrap(),
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
    )
    .await;
    for _ in 0..5 {
        let msg = error_of(
            login(
                r#"{"username": "jane", "password": "wrong guess"}"#,
                "application/json",
            )
            .await
            .unwrap(),
            StatusCode::UNAUTHORIZED,
        )
        .await;
        assert_eq!(msg, "wrong username or password");
    }
    let msg = error_of(
        login(
            r#"{"username": "jane", "password": "correct horse battery"}"#,
            "application/json",
        )
        .await
        .unwrap(),
        StatusCode::TOO_MANY_REQUESTS,
    )
    .await;
    assert!(msg.contains("too many failed logins"), "{msg}");
    sb.stop().await;
}

#[tokio::test]
async fn only_the_patient_reads_their_record_and_bad_tokens_are_refused() {
    let sb = Sandbox::start().await;
    let jane = sb.user("jane", Role::Patient);
    sb.user("john", Role::Patient);
    sb.user("dr-who", Role::Provider);
    sb.user("analyst", Role::PayorAnalyst);
    let jane_pid = jane.patient_id.clone().unwrap();
    let jane_token = sb.login("jane").await;
    let john_token = sb.login("john").await;

    let up = sb
        .http
        .post(sb.url(&format!("/v1/patients/{jane_pid}/documents")))
        .bearer_auth(&jane_token)
        .multipart(file(png(64, 64, 7), "a.png", "image/png"))
        .send()
        .await
        .unwrap();
    assert_eq!(up.status(), StatusCode::CREATED);
    let doc_id = up.json::<Value>().await.unwrap()["document_id"]
        .as_str()
        .unwrap()
        .to_owned();
    sb.wait_for_documents(jane_pid.as_str(), &jane_token, 1)
        .await;

    let paths = [
        format!("/v1/patients/{jane_pid}/documents"),
        format!("/v1/patients/{jane_pid}/documents/{doc_id}"),
        format!("/v1/patients/{jane_pid}/documents/{doc_id}/content"),
    ];
    let get = |path: &str, token: Option<&str>| {
        let mut r = sb.http.get(sb.url(path));
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        r.send()
    };
    for path in &paths {
        assert_eq!(
            get(path, Some(&jane_token)).await.unwrap().status(),
            200,
            "{path}"
        );
        // Refused before any lookup, with the decision point's reason for each role.
        for (user, reason) in [
            ("john", "a patient may act only on their own record"),
            ("dr-who", "the patient has not granted this provider access"),
            (
                "analyst",
                "payor analysts see pseudonymized population data only, not records",
            ),
        ] {
            let t = sb.login(user).await;
            let msg = error_of(get(path, Some(&t)).await.unwrap(), StatusCode::FORBIDDEN).await;
            assert_eq!(msg, reason);
        }
        let r = get(path, None).await.unwrap();
        assert!(r.headers().contains_key("www-authenticate"));
        error_of(r, StatusCode::UNAUTHORIZED).await;
    }
    // Guessing: john asking for jane's real document and for a made-up one in jane's record
    // gets the same answer, so existence does not leak.
    let real = error_of(
        get(&paths[1], Some(&john_token)).await.unwrap(),
        StatusCode::FORBIDDEN,
    )
    .await;
    let fake = error_of(
        get(
            &format!("/v1/patients/{jane_pid}/documents/doc-made-up"),
            Some(&john_token),
        )
        .await
        .unwrap(),
        StatusCode::FORBIDDEN,
    )
    .await;
    assert_eq!(real, fake);
    // Nor can john upload into jane's record.
    let r = sb
        .http
        .post(sb.url(&paths[0]))
        .bearer_auth(&john_token)
        .multipart(file(png(64, 64, 9), "b.png", "image/png"))
        .send()
        .await
        .unwrap();
    error_of(r, StatusCode::FORBIDDEN).await;

    // Bad tokens.
    let now = chrono::Utc::now().timestamp();
    let expired = sb
        .issuer
        .issue_with(&jane.principal(), now - 7200, Duration::from_secs(60))
        .unwrap();
    let msg = error_of(
        get(&paths[0], Some(&expired)).await.unwrap(),
        StatusCode::UNAUTHORIZED,
    )
    .await;
    assert_eq!(msg, "invalid token: token expired");

    let payload = jane_token.split('.').nth(1).unwrap();
    let none = format!(
        "{}.{payload}.",
        URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#)
    );
    error_of(
        get(&paths[0], Some(&none)).await.unwrap(),
        StatusCode::UNAUTHORIZED,
    )
    .await;

    let other_key = p360_identity::issuer::Issuer::load_or_create(
        &sb.dir.path().join("rogue.pem"),
        sb.issuer.issuer(),
        "p360",
        Duration::from_secs(600),
    )
    .unwrap();
    let forged = other_key.issue(&jane.principal()).unwrap();
    error_of(
        get(&paths[0], Some(&forged)).await.unwrap(),
        StatusCode::UNAUTHORIZED,
    )
    .await;

    let wrong_aud = p360_identity::issuer::Issuer::load_or_create(
        &sb.config.data_dir.join("identity/signing-key.pem"),
        sb.issuer.issuer(),
        "another-app",
        Duration::from_secs(600),
    )
    .unwrap()
    .issue(&jane.principal())
    .unwrap();
    let msg = error_of(
        get(&paths[0], Some(&wrong_aud)).await.unwrap(),
        StatusCode::UNAUTHORIZED,
    )
    .await;
    assert_eq!(msg, "invalid token: wrong audience");

    // A disabled account's still-unexpired token stops working at once.
    sb.directory.disable(&jane.id).unwrap();
    let msg = error_of(
        get(&paths[0], Some(&jane_token)).await.unwrap(),
        StatusCode::UNAUTHORIZED,
    )
    .await;
    assert!(msg.contains("disabled or deleted"), "{msg}");

    let r = sb
        .http
        .get(sb.url("/v1/me"))
        .header("authorization", "Basic amFuZTpwdw==")
        .send()
        .await
        .unwrap();
    error_of(r, StatusCode::UNAUTHORIZED).await;
    sb.stop().await;
}

#[tokio::test]
async fn drop_folder_documents_reach_the_patient() {
    let sb = Sandbox::start().await;
    let jane = sb.user("jane", Role::Patient);
    let pid = jane.patient_id.clone().unwrap();
    let token = sb.login("jane").await;
    let folder = sb.config.drop_path().join(pid.as_str());
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::write(folder.join("visit.png"), sample("doc_014.png")).unwrap();
    std::fs::write(folder.join("meds.png"), sample("doc_022.png")).unwrap();
    let list = sb.wait_for_documents(pid.as_str(), &token, 2).await;
    for d in list["documents"].as_array().unwrap() {
        assert_eq!(d["channel"], "drop_folder");
    }
    assert!(!folder.join("visit.png").exists());
    sb.stop().await;
}

#[tokio::test]
async fn operations_endpoints() {
    let sb = Sandbox::start().await;
    let health: Value = sb
        .http
        .get(sb.url("/health"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["status"], "ok");
    let metrics = sb
        .http
        .get(sb.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("p360_queue_messages{queue=\"register\",state=\"dead\"}"),
        "{metrics}"
    );
    let disco: Value = sb
        .http
        .get(sb.url("/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(disco["issuer"], sb.base.as_str());
    let jwks: Value = sb
        .http
        .get(disco["jwks_uri"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(jwks["keys"][0]["alg"], "ES256");
    assert!(
        jwks["keys"][0].get("d").is_none(),
        "the JWKS never holds the private key"
    );
    sb.stop().await;
}

#[tokio::test]
async fn openapi_describes_every_route_and_is_valid() {
    let sb = Sandbox::start().await;
    let r = sb.http.get(sb.url("/openapi.json")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let doc: Value = r.json().await.unwrap();
    let routes = p360_e2e::declared_routes();
    assert!(routes.len() > 20, "{routes:?}");
    for (path, methods) in &routes {
        let item = &doc["paths"][path];
        assert!(item.is_object(), "{path} is not in the OpenAPI description");
        for m in methods {
            assert!(
                item[m].is_object(),
                "{m} {path} is not in the OpenAPI description"
            );
        }
    }
    let documented = doc["paths"].as_object().unwrap().len();
    assert_eq!(
        documented,
        routes.len(),
        "the description lists a route the router lacks"
    );

    // An independent validator (PyPI openapi-spec-validator) checks it against OpenAPI 3.1.
    let python = std::env::var("P360_FHIR_PYTHON")
        .expect("P360_FHIR_PYTHON must name the validators' Python (scripts/test.sh sets it up)");
    let file = sb.dir.path().join("openapi.json");
    std::fs::write(&file, doc.to_string()).unwrap();
    let out = std::process::Command::new(python)
        .args(["-c", "import sys; from openapi_spec_validator import validate; from openapi_spec_validator.readers import read_from_filename; validate(read_from_filename(sys.argv[1])[0]); print('valid')"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    sb.stop().await;
}
