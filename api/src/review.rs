//! Review of extracted facts: the patient lists what was read from a document (with the
//! confidence of each field and the region of the page it came from), sees that region, and
//! confirms, corrects or rejects each fact. Decisions go to the graph writer as manual entries;
//! corrections are logged on the extraction (who, when, old → new) and the corrected fact is
//! stated by the patient in its provenance.

use crate::AppState;
use crate::auth::Caller;
use crate::documents::find;
use crate::error::ApiError;
use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::Response;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStoreExt, PutPayload};
use p360_events::{Envelope, Event, EventId, ManualEntrySubmitted, ObjectRef};
use p360_extract::stage::{ReviewEntry, StoredExtraction, extraction_key};
use p360_model::{
    CodeSystem, Coding, Fact, FactBody, Provenance, SourceKind, Status, Value as FactValue,
};
use serde::Deserialize;
use serde_json::{Value, json};

async fn load(
    state: &AppState,
    patient: &str,
    document: &str,
) -> Result<StoredExtraction, ApiError> {
    let key = extraction_key(patient, document);
    let bytes = match state
        .ingest
        .store()
        .get(&ObjectPath::from(key.as_str()))
        .await
    {
        Ok(o) => o
            .bytes()
            .await
            .map_err(|e| ApiError::Unavailable(format!("reading an extraction: {e}")))?,
        Err(object_store::Error::NotFound { .. }) => {
            return Err(ApiError::NotFound(
                "nothing has been extracted from this document (yet)".into(),
            ));
        }
        Err(e) => return Err(ApiError::Unavailable(format!("reading an extraction: {e}"))),
    };
    // serde's message can quote the stored (patient) text: log where it broke, not what.
    serde_json::from_slice(&bytes).map_err(|e| {
        ApiError::Internal(format!(
            "stored extraction unreadable at line {}, column {}",
            e.line(),
            e.column()
        ))
    })
}

fn summary(f: &Fact) -> String {
    match &f.body {
        FactBody::Observation(o) => {
            let code = o.code.first().map(|c| c.code.as_str()).unwrap_or("");
            match &o.value {
                Some(FactValue::Quantity {
                    value,
                    unit,
                    comparator,
                }) => format!(
                    "{code} {}{value} {unit}",
                    comparator.map(|c| c.as_str()).unwrap_or("")
                ),
                Some(FactValue::Text { text }) => format!("{code} {text}"),
                _ => code.to_string(),
            }
        }
        FactBody::Condition(c) => c.code.first().map(|c| c.code.clone()).unwrap_or_default(),
        FactBody::Medication(m) => m.text.clone(),
        other => other.resource_type().to_string(),
    }
}

/// `GET /v1/patients/{patient}/documents/{document}/extraction`.
pub(crate) async fn list(
    State(state): State<AppState>,
    Path((patient, document)): Path<(String, String)>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    find(&state, &caller, &patient, &document, "read").await?;
    let stored = load(&state, &patient, &document).await?;
    let facts: Vec<Value> = stored
        .facts
        .iter()
        .map(|f| {
            let p = f.provenance.first();
            let decided = stored.reviews.iter().rev().find(|r| r.fact_id == f.id.as_str());
            json!({
                "fact_id": f.id,
                "resource_type": f.body.resource_type(),
                "summary": summary(f),
                "status": decided.map(|r| r.action.as_str()).unwrap_or(match f.status {
                    Status::Confirmed => "confirmed",
                    Status::Unconfirmed => "needs_review",
                    Status::EnteredInError => "rejected",
                }),
                "confidence": p.and_then(|p| p.confidence),
                "page": p.and_then(|p| p.page),
                "region": p.and_then(|p| p.region),
                "region_image": p.and_then(|p| Some((p.page?, p.region?))).map(|(page, r)| format!(
                    "/v1/patients/{patient}/documents/{document}/pages/{page}/image?x={}&y={}&width={}&height={}",
                    r.x, r.y, r.width, r.height
                )),
                "fact": f,
            })
        })
        .collect();
    Ok(Json(json!({
        "document_id": stored.document_id,
        "kind": stored.extraction.kind,
        "engine": stored.engine,
        "flagged": stored.flagged,
        "header": stored.extraction.header,
        "facts": facts,
        "skipped": stored.extraction.skipped,
        "reviews": stored.reviews,
    })))
}

#[derive(Deserialize)]
pub(crate) struct Region {
    x: Option<u32>,
    y: Option<u32>,
    width: Option<u32>,
    height: Option<u32>,
}

/// `GET …/pages/{page}/image[?x=&y=&width=&height=]`: the page as it was read (upright,
/// deskewed), or the region of it, as PNG, with a margin so the patient sees the context.
pub(crate) async fn page_image(
    State(state): State<AppState>,
    Path((patient, document, page)): Path<(String, String, u32)>,
    Query(region): Query<Region>,
    caller: Caller,
) -> Result<Response, ApiError> {
    let record = find(&state, &caller, &patient, &document, "read").await?;
    let stored = load(&state, &patient, &document).await?;
    let info = stored
        .pages
        .iter()
        .find(|p| p.number == page)
        .cloned()
        .ok_or_else(|| ApiError::NotFound(format!("the document has no page {page}")))?;
    let bytes = state
        .ingest
        .store()
        .get(&ObjectPath::from(record.object_key.as_str()))
        .await
        .map_err(|e| ApiError::Unavailable(format!("reading a stored document: {e}")))?
        .bytes()
        .await
        .map_err(|e| ApiError::Unavailable(format!("reading a stored document: {e}")))?;
    let png = tokio::task::spawn_blocking(move || -> Result<Vec<u8>, ApiError> {
        let pages = p360_extract::pages::decode(&bytes)
            .map_err(|e| ApiError::Unprocessable(e.to_string()))?;
        let img = pages
            .into_iter()
            .find(|p| p.number == page)
            .ok_or_else(|| ApiError::NotFound(format!("the document has no page {page}")))?
            .image;
        let img = match &info.normalization {
            Some(params) => p360_imagenorm::geometry(&image::DynamicImage::ImageLuma8(img), params),
            None => img,
        };
        let img = p360_extract::ocr::tesseract::turn(&img, info.quarter_turns);
        let img = p360_extract::preprocess::deskew(&img, info.deskew_degrees);
        let (w, h) = img.dimensions();
        let img = match (region.x, region.y, region.width, region.height) {
            (Some(x), Some(y), Some(rw), Some(rh)) => {
                let margin = rh.max(20);
                let x0 = x.saturating_sub(margin).min(w.saturating_sub(1));
                let y0 = y.saturating_sub(margin).min(h.saturating_sub(1));
                let x1 = x.saturating_add(rw).saturating_add(margin).min(w);
                let y1 = y.saturating_add(rh).saturating_add(margin).min(h);
                if x1 <= x0 || y1 <= y0 {
                    return Err(ApiError::Unprocessable(
                        "the region is outside the page".into(),
                    ));
                }
                image::imageops::crop_imm(&img, x0, y0, x1 - x0, y1 - y0).to_image()
            }
            (None, None, None, None) => img,
            _ => {
                return Err(ApiError::Unprocessable(
                    "give all of x, y, width and height, or none".into(),
                ));
            }
        };
        let mut out = std::io::Cursor::new(Vec::new());
        img.write_to(&mut out, image::ImageFormat::Png)
            .map_err(|e| ApiError::Internal(format!("encoding a page image: {e}")))?;
        Ok(out.into_inner())
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))??;
    Response::builder()
        .header(header::CONTENT_TYPE, "image/png")
        .header(header::CACHE_CONTROL, "private, no-store")
        .body(Body::from(png))
        .map_err(|e| ApiError::Internal(e.to_string()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Decision {
    /// `confirm`, `correct` or `reject`.
    action: String,
    /// Corrections: a result's value and UCUM unit, or a condition's ICD-10-CM code.
    value: Option<f64>,
    unit: Option<String>,
    code: Option<String>,
}

fn corrected(fact: &Fact, d: &Decision) -> Result<FactBody, ApiError> {
    let mut body = fact.body.clone();
    match &mut body {
        FactBody::Observation(o) => {
            let Some(FactValue::Quantity { value, unit, .. }) = &mut o.value else {
                return Err(ApiError::Unprocessable(
                    "only numeric results can be corrected".into(),
                ));
            };
            if let Some(v) = d.value {
                *value = v;
            }
            if let Some(u) = &d.unit {
                if p360_model::ucum::parse(u).is_err() {
                    return Err(ApiError::Unprocessable("unit: not a UCUM unit".into()));
                }
                *unit = u.clone();
            }
            if d.value.is_none() && d.unit.is_none() {
                return Err(ApiError::Unprocessable(
                    "a correction needs value and/or unit".into(),
                ));
            }
        }
        FactBody::Condition(c) => {
            let code = d.code.as_deref().ok_or_else(|| {
                ApiError::Unprocessable("a correction needs code (ICD-10-CM)".into())
            })?;
            let (code, display, _) = p360_extract::terminology::icd10cm::table()
                .get(code)
                .ok_or_else(|| ApiError::Unprocessable("code: not an ICD-10-CM code".into()))?;
            c.code = vec![Coding::new(CodeSystem::Icd10Cm, code, Some(display))];
        }
        _ => {
            return Err(ApiError::Unprocessable(
                "this kind of fact can be confirmed or rejected, not corrected".into(),
            ));
        }
    }
    Ok(body)
}

/// `POST …/extraction/{fact}`: `{"action": "confirm" | "reject" | "correct", value?, unit?, code?}`.
pub(crate) async fn decide(
    State(state): State<AppState>,
    Path((patient, document, fact_id)): Path<(String, String, String)>,
    caller: Caller,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> Result<(axum::http::StatusCode, Json<Value>), ApiError> {
    find(&state, &caller, &patient, &document, "write").await?;
    crate::error::require_json(&headers)?;
    let decision: Decision = crate::error::parse_json(
        &body,
        r#"{"action": "confirm"|"correct"|"reject", "value"?: number, "unit"?: UCUM, "code"?: ICD-10-CM}"#,
    )?;
    let mut stored = load(&state, &patient, &document).await?;
    let fact = stored
        .facts
        .iter()
        .find(|f| f.id.as_str() == fact_id)
        .cloned()
        .ok_or_else(|| ApiError::NotFound("no such fact in this extraction".into()))?;
    let now = state.clock.now();
    let user = caller.0.user_id.clone();
    let mut review = Provenance::new(SourceKind::ManualEntry, format!("review:{document}"), now);
    review.document = fact.provenance.first().and_then(|p| p.document.clone());
    review.author = Some(user.clone());
    review.confirmed_by = Some(user.clone());
    let mut entry = ReviewEntry {
        fact_id: fact_id.clone(),
        action: decision.action.clone(),
        by: user.to_string(),
        at: now,
        old: None,
        new: None,
        new_fact_id: None,
    };
    let out: Vec<Fact> = match decision.action.as_str() {
        "confirm" => {
            let mut f = fact.clone();
            f.status = Status::Confirmed;
            f.provenance.push(review);
            vec![f]
        }
        "reject" => {
            let mut f = fact.clone();
            f.status = Status::EnteredInError;
            f.provenance.push(review);
            vec![f]
        }
        "correct" => {
            let body = corrected(&fact, &decision)?;
            let mut old = fact.clone();
            old.status = Status::EnteredInError;
            old.provenance.push(review.clone());
            let new = Fact::new(old.patient.clone(), body, Status::Confirmed, review);
            entry.old = Some(summary(&fact));
            entry.new = Some(summary(&new));
            entry.new_fact_id = Some(new.id.to_string());
            vec![old, new]
        }
        _ => {
            return Err(ApiError::Unprocessable(
                "action: one of confirm, correct, reject".into(),
            ));
        }
    };
    let event_id = EventId::random();
    let key = format!("entries/{patient}/{event_id}.json");
    let bytes = serde_json::to_vec(&out).map_err(|e| ApiError::Internal(e.to_string()))?;
    let size = bytes.len() as u64;
    let store = state.ingest.store();
    store
        .put(&ObjectPath::from(key.as_str()), PutPayload::from(bytes))
        .await
        .map_err(|e| ApiError::Unavailable(format!("storing a review: {e}")))?;
    stored.reviews.push(entry.clone());
    let skey = extraction_key(&patient, &document);
    let sbytes = serde_json::to_vec(&stored).map_err(|e| ApiError::Internal(e.to_string()))?;
    store
        .put(&ObjectPath::from(skey.as_str()), PutPayload::from(sbytes))
        .await
        .map_err(|e| ApiError::Unavailable(format!("storing a review: {e}")))?;
    let event = Envelope::new(
        event_id,
        "/p360/api/review",
        Event::ManualEntrySubmitted(ManualEntrySubmitted {
            patient_id: fact.patient.clone(),
            entered_by: user,
            entry: ObjectRef {
                key,
                sha256: String::new(),
                size,
                media_type: "application/json".into(),
            },
            effective_date: fact.body.day().unwrap_or_else(|| now.date_naive()),
        }),
    );
    state
        .publisher
        .publish(&[event])
        .await
        .map_err(|e| ApiError::Unavailable(format!("publishing a review: {e}")))?;
    Ok((
        axum::http::StatusCode::ACCEPTED,
        Json(json!({ "review": entry })),
    ))
}
