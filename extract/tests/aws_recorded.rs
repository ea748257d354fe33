//! The Textract and Comprehend Medical adapters against a local HTTP endpoint that answers in
//! each service's documented wire format (no local server emulates their output: moto's Textract
//! returns empty blocks and it has no Comprehend Medical). The real SDK clients send real
//! requests; what comes back is parsed by the SDK and mapped by the adapters.
//!
//! Textract speaks AWS JSON 1.1 (`POST /`, `X-Amz-Target`); Comprehend Medical's SDK speaks
//! Smithy RPC v2 CBOR (`POST /service/<service>/operation/<operation>`, CBOR bodies).
//! Textract's answers are `tests/data/textract-*.json` (`scripts/gen-textract-fixture.py`);
//! Comprehend Medical's are built per request by finding the expected phrases in the text the
//! adapter sent, so that offsets are real offsets into that text.
#![cfg(feature = "aws")]
#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::post;
use p360_extract::clinical::{self, LabValue};
use p360_extract::comprehend::ComprehendMedical;
use p360_extract::layout::{BBox, Engine, Layout, Line, Page, Word};
use p360_extract::ocr::textract::{TextractMode, TextractOcr};
use p360_extract::ocr::{Ocr, OcrError};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};

#[derive(Clone, Default)]
struct Recorded {
    requests: Arc<Mutex<Vec<(String, Value)>>>,
    /// Answer Textract with this error code instead.
    fail_with: Option<(StatusCode, &'static str)>,
}

fn data(name: &str) -> Value {
    let path = format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// `BeginOffset`/`EndOffset` of `phrase` in `text`, in characters.
fn offsets(text: &str, phrase: &str) -> Option<(usize, usize)> {
    let at = text.find(phrase)?;
    let begin = text[..at].chars().count();
    Some((begin, begin + phrase.chars().count()))
}

fn icd10cm_answer(text: &str) -> Value {
    let mut entities = Vec::new();
    let known = [
        (
            "Type 2 diabetes mellitus",
            "E11.9",
            "Type 2 diabetes mellitus without complications",
            None,
        ),
        (
            "hypertension",
            "I10",
            "Essential (primary) hypertension",
            None,
        ),
        (
            "chest pain",
            "R07.9",
            "Chest pain, unspecified",
            Some("NEGATION"),
        ),
        (
            "colon cancer",
            "C18.9",
            "Malignant neoplasm of colon, unspecified",
            Some("PERTAINS_TO_FAMILY"),
        ),
    ];
    for (id, (phrase, code, description, t)) in known.iter().enumerate() {
        let Some((b, e)) = offsets(text, phrase) else {
            continue;
        };
        let mut traits = vec![json!({"Name": "DIAGNOSIS", "Score": 0.93})];
        if let Some(t) = t {
            traits.push(json!({"Name": t, "Score": 0.88}));
        }
        entities.push(json!({
            "Id": id, "Text": phrase, "Category": "MEDICAL_CONDITION", "Type": "DX_NAME",
            "Score": 0.97, "BeginOffset": b, "EndOffset": e, "Attributes": [], "Traits": traits,
            "ICD10CMConcepts": [
                {"Description": description, "Code": code, "Score": 0.81},
                {"Description": "Other", "Code": "R69", "Score": 0.05}
            ]
        }));
    }
    json!({"Entities": entities, "ModelVersion": "0.1.0"})
}

fn rxnorm_answer(text: &str) -> Value {
    let mut entities = Vec::new();
    let known = [
        (
            "Metformin",
            "500 mg",
            "tablet",
            "twice daily",
            "861007",
            "metformin hydrochloride 500 MG Oral Tablet",
            None,
        ),
        (
            "Lipitor",
            "20 mg",
            "tablet",
            "at bedtime",
            "617314",
            "atorvastatin 20 MG Oral Tablet [Lipitor]",
            None,
        ),
        (
            "warfarin",
            "5 mg",
            "tablet",
            "daily",
            "855332",
            "warfarin sodium 5 MG Oral Tablet",
            Some("PAST_HISTORY"),
        ),
    ];
    for (id, (name, strength, form, freq, code, description, t)) in known.iter().enumerate() {
        let Some((b, e)) = offsets(text, name) else {
            continue;
        };
        let mut attributes = Vec::new();
        for (kind, value) in [("STRENGTH", strength), ("FORM", form), ("FREQUENCY", freq)] {
            if let Some((ab, ae)) = offsets(text, value) {
                attributes.push(json!({
                    "Type": kind, "Score": 0.9, "RelationshipScore": 0.95, "Id": 100 + id,
                    "BeginOffset": ab, "EndOffset": ae, "Text": value, "Traits": []
                }));
            }
        }
        let traits: Vec<Value> = t.iter().map(|t| json!({"Name": t, "Score": 0.8})).collect();
        entities.push(json!({
            "Id": id, "Text": name, "Category": "MEDICATION",
            "Type": if *name == "Lipitor" { "BRAND_NAME" } else { "GENERIC_NAME" },
            "Score": 0.96, "BeginOffset": b, "EndOffset": e, "Attributes": attributes,
            "Traits": traits,
            "RxNormConcepts": [{"Description": description, "Code": code, "Score": 0.7}]
        }));
    }
    json!({"Entities": entities, "ModelVersion": "0.1.0"})
}

async fn endpoint(
    State(state): State<Recorded>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> axum::response::Response {
    let target = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    state
        .requests
        .lock()
        .unwrap()
        .push((target.clone(), request.clone()));
    let json_type = [("content-type", "application/x-amz-json-1.1")];
    if let Some((status, code)) = state.fail_with {
        let body = json!({"__type": code, "Message": "refused by the test endpoint"});
        return (status, json_type, body.to_string()).into_response();
    }
    let answer = match target.as_str() {
        "Textract.AnalyzeDocument" => data("textract-analyze.json"),
        "Textract.DetectDocumentText" => data("textract-detect.json"),
        _ => return (StatusCode::BAD_REQUEST, json_type, "{}".to_string()).into_response(),
    };
    (StatusCode::OK, json_type, answer.to_string()).into_response()
}

/// JSON → CBOR, with scores as single-precision floats (the shapes' `Float`; the SDK refuses
/// doubles there) and offsets as integers.
fn to_cbor(v: &Value) -> ciborium::Value {
    use ciborium::Value as C;
    match v {
        Value::Null => C::Null,
        Value::Bool(b) => C::Bool(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => C::Integer(i.into()),
            None => C::Float(f64::from(n.as_f64().unwrap_or(0.0) as f32)),
        },
        Value::String(t) => C::Text(t.clone()),
        Value::Array(items) => C::Array(items.iter().map(to_cbor).collect()),
        Value::Object(map) => C::Map(
            map.iter()
                .map(|(k, v)| (C::Text(k.clone()), to_cbor(v)))
                .collect(),
        ),
    }
}

async fn rpc_v2_cbor(
    State(state): State<Recorded>,
    Path((service, operation)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> axum::response::Response {
    let request: Value = ciborium::from_reader(&body[..]).unwrap_or(Value::Null);
    let target = format!("{service}.{operation}");
    state
        .requests
        .lock()
        .unwrap()
        .push((target.clone(), request.clone()));
    let text = request["Text"].as_str().unwrap_or("");
    let answer = match target.as_str() {
        "ComprehendMedical_20181030.InferICD10CM" => icd10cm_answer(text),
        "ComprehendMedical_20181030.InferRxNorm" => rxnorm_answer(text),
        _ => return StatusCode::BAD_REQUEST.into_response(),
    };
    let mut out = Vec::new();
    ciborium::into_writer(&to_cbor(&answer), &mut out).unwrap();
    (
        StatusCode::OK,
        [
            ("content-type", "application/cbor"),
            ("smithy-protocol", "rpc-v2-cbor"),
        ],
        out,
    )
        .into_response()
}

async fn serve(state: Recorded) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new()
        .route("/", post(endpoint))
        .route(
            "/service/{service}/operation/{operation}",
            post(rpc_v2_cbor),
        )
        .with_state(state);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

fn textract(url: &str, mode: TextractMode) -> TextractOcr {
    use aws_sdk_textract::config::{BehaviorVersion, Credentials, Region, retry::RetryConfig};
    let conf = aws_sdk_textract::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(url)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "test"))
        .retry_config(RetryConfig::disabled())
        .build();
    TextractOcr::new(aws_sdk_textract::Client::from_conf(conf), mode)
}

fn comprehend(url: &str) -> ComprehendMedical {
    use aws_sdk_comprehendmedical::config::{BehaviorVersion, Credentials, Region};
    let conf = aws_sdk_comprehendmedical::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(url)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "test"))
        .build();
    ComprehendMedical::new(aws_sdk_comprehendmedical::Client::from_conf(conf))
}

/// A blank letter page at 200 dpi: the endpoint does not look at the pixels.
fn page_png() -> Vec<u8> {
    let img = image::GrayImage::from_pixel(1700, 2200, image::Luma([255u8]));
    let mut out = Vec::new();
    image::DynamicImage::ImageLuma8(img)
        .write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
        .unwrap();
    out
}

#[tokio::test]
async fn analyze_document_tables_and_forms_become_lines_the_extractor_reads() {
    let state = Recorded::default();
    let url = serve(state.clone()).await;
    let layout = textract(&url, TextractMode::Analyze)
        .read(&page_png())
        .await
        .expect("layout");

    let requests = state.requests.lock().unwrap().clone();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].0, "Textract.AnalyzeDocument");
    assert_eq!(requests[0].1["FeatureTypes"], json!(["TABLES", "FORMS"]));
    assert!(requests[0].1["Document"]["Bytes"].as_str().unwrap().len() > 100);

    assert_eq!(layout.engine.name, "textract");
    let page = &layout.pages[0];
    assert_eq!((page.width, page.height), (1700, 2200));
    let first = &page.lines[0].words[0];
    assert_eq!(first.text, "NORTHSIDE");
    assert_eq!(
        (first.bbox.x, first.bbox.y),
        (136, 110),
        "fractions become pixels"
    );
    assert!((first.confidence - 0.992).abs() < 1e-3);
    // The curled row is one line, thanks to the table structure.
    assert!(
        page.lines
            .iter()
            .any(|l| l.text() == "Hemoglobin A1c 6.1 % 4.0-5.6 H"),
        "{:?}",
        page.lines.iter().map(Line::text).collect::<Vec<_>>()
    );

    let extraction = clinical::extract(&layout);
    let lab = |loinc: &str| {
        extraction
            .labs
            .iter()
            .find(|l| l.loinc == loinc)
            .unwrap_or_else(|| panic!("no {loinc}"))
    };
    let glucose = lab("2345-7");
    assert!(matches!(glucose.value, LabValue::Quantity { value, .. } if value == 112.0));
    assert_eq!(glucose.ucum.as_deref(), Some("mg/dL"));
    assert_eq!(glucose.flag.as_deref(), Some("H"));
    let a1c = lab("4548-4");
    assert!(matches!(a1c.value, LabValue::Quantity { value, .. } if value == 6.1));
    assert_eq!(a1c.ucum.as_deref(), Some("%"));
    assert!(matches!(lab("2951-2").value, LabValue::Quantity { value, .. } if value == 140.0));
    assert!(matches!(lab("2160-0").value, LabValue::Quantity { value, .. } if value == 0.9));
    // The name printed under its label is tied to it by the form pair.
    let name = extraction.header.patient.as_ref().expect("patient name");
    assert_eq!(name.value.family.to_uppercase(), "DOE");
    assert_eq!(
        extraction
            .header
            .birth_date
            .as_ref()
            .map(|d| d.value.to_string()),
        Some("1961-03-14".into())
    );
    assert_eq!(
        extraction.header.date.as_ref().map(|d| d.value.to_string()),
        Some("2026-02-10".into())
    );
}

#[tokio::test]
async fn detect_document_text_maps_words_without_tables() {
    let state = Recorded::default();
    let url = serve(state.clone()).await;
    let layout = textract(&url, TextractMode::Detect)
        .read(&page_png())
        .await
        .expect("layout");
    assert_eq!(
        state.requests.lock().unwrap()[0].0,
        "Textract.DetectDocumentText"
    );
    assert_eq!(layout.engine.version, "DetectDocumentText");
    let words: Vec<&Word> = layout.pages[0]
        .lines
        .iter()
        .flat_map(|l| &l.words)
        .collect();
    assert!(words.iter().any(|w| w.text == "Glucose"));
    assert!(
        words
            .iter()
            .all(|w| w.bbox.right() <= 1700 && w.bbox.bottom() <= 2200)
    );
    let extraction = clinical::extract(&layout);
    assert!(extraction.labs.iter().any(|l| l.loinc == "2345-7"));
}

#[tokio::test]
async fn textract_refusals_are_the_documents_fault_and_outages_are_retried() {
    let state = Recorded {
        fail_with: Some((StatusCode::BAD_REQUEST, "UnsupportedDocumentException")),
        ..Recorded::default()
    };
    let url = serve(state).await;
    let err = textract(&url, TextractMode::Analyze)
        .read(&page_png())
        .await
        .unwrap_err();
    assert!(matches!(err, OcrError::Document(_)), "{err}");

    let state = Recorded {
        fail_with: Some((StatusCode::INTERNAL_SERVER_ERROR, "InternalServerError")),
        ..Recorded::default()
    };
    let url = serve(state).await;
    let err = textract(&url, TextractMode::Analyze)
        .read(&page_png())
        .await
        .unwrap_err();
    assert!(matches!(err, OcrError::Engine(_)), "{err}");
}

fn text_line(text: &str, y: u32) -> Line {
    Line::new(
        text.split_whitespace()
            .enumerate()
            .map(|(i, t)| Word {
                text: t.into(),
                bbox: BBox {
                    x: 40 + 120 * i as u32,
                    y,
                    width: 110,
                    height: 24,
                },
                confidence: 0.96,
            })
            .collect(),
    )
}

#[tokio::test]
async fn comprehend_medical_codes_diagnoses_and_medications_with_their_traits() {
    let state = Recorded::default();
    let url = serve(state.clone()).await;
    let layout = Layout {
        failed_pages: Vec::new(),
        engine: Engine {
            name: "tesseract".into(),
            version: "5".into(),
        },
        pages: vec![Page {
            number: 1,
            width: 1700,
            height: 2200,
            deskew_degrees: 0.0,
            quarter_turns: 0,
            normalization: None,
            lines: vec![
                text_line("Patient: DOE, JANE DOB: 03/14/1961", 40),
                text_line("Visit date: 02/10/2026", 80),
                text_line("Assessment and Plan", 200),
                text_line("1. Type 2 diabetes mellitus, on metformin", 240),
                text_line("2. Essential hypertension", 280),
                text_line("3. Denies chest pain", 320),
                text_line("4. Mother had colon cancer", 360),
                text_line("Current Medications", 440),
                text_line("Metformin 500 mg tablet twice daily", 480),
                text_line("Lipitor 20 mg tablet at bedtime", 520),
                text_line("warfarin 5 mg tablet daily (2019)", 560),
            ],
        }],
    };
    let mut extraction = clinical::extract(&layout);
    clinical::nlp::refine(&mut extraction, &layout, &comprehend(&url))
        .await
        .expect("refine");

    let requests = state.requests.lock().unwrap().clone();
    let targets: Vec<&str> = requests.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(
        targets,
        [
            "ComprehendMedical_20181030.InferICD10CM",
            "ComprehendMedical_20181030.InferRxNorm"
        ]
    );
    for (_, r) in &requests {
        let sent = r["Text"].as_str().unwrap();
        assert!(
            !sent.contains("DOE") && !sent.contains("1961"),
            "header sent: {sent}"
        );
    }

    let codes: Vec<&str> = extraction
        .conditions
        .iter()
        .map(|c| c.icd10cm.as_str())
        .collect();
    assert_eq!(
        codes,
        ["E11.9", "I10"],
        "negated and family mentions are skipped"
    );
    let dm = &extraction.conditions[0];
    assert_eq!(dm.text, "Type 2 diabetes mellitus");
    assert_eq!(dm.source.bbox.y, 240);
    assert_eq!(
        dm.source.bbox.x, 160,
        "box of the entity's words, not the item number"
    );
    assert!(dm.source.confidence <= 0.97 * 0.81 + 1e-3);
    assert!(extraction.skipped.iter().any(|s| s.contains("negation")));
    assert!(
        extraction
            .skipped
            .iter()
            .any(|s| s.contains("pertains_to_family"))
    );

    let meds: Vec<(&str, Option<&str>)> = extraction
        .medications
        .iter()
        .map(|m| (m.ingredient.as_str(), m.rxcui.as_deref()))
        .collect();
    assert_eq!(
        meds,
        [("metformin", Some("6809")), ("atorvastatin", Some("83367"))],
        "ingredients from the brand and generic names; past history skipped"
    );
    let metformin = &extraction.medications[0];
    assert_eq!(metformin.strength.as_deref(), Some("500 mg"));
    assert_eq!(metformin.sig.as_deref(), Some("twice daily"));
    assert_eq!(metformin.source.bbox.y, 480);
}
