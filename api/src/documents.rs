//! Patient documents: upload, list, read.

use crate::AppState;
use crate::access::{authorize, record};
use crate::auth::Caller;
use crate::error::{ApiError, patient_id};
use axum::Json;
use axum::body::Body;
use axum::extract::multipart::MultipartRejection;
use axum::extract::{Multipart, Path, State};
use axum::http::{StatusCode, header};
use axum::response::Response;
use object_store::ObjectStoreExt;
use p360_consent::{Action, Category};
use p360_events::{Channel, DocumentId, PatientId};
use serde_json::{Value, json};

fn document_id(raw: &str) -> Result<DocumentId, ApiError> {
    DocumentId::parse(raw)
        .map_err(|_| ApiError::BadRequest("invalid document id in the path".into()))
}

/// `POST /v1/patients/{patient}/documents` (multipart/form-data, field `file`).
/// 201 for a new document, 200 when the same content was already uploaded.
pub(crate) async fn upload(
    State(state): State<AppState>,
    Path(patient): Path<String>,
    caller: Caller,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let patient = patient_id(&patient)?;
    crate::access::owner_only(&state, &caller, &patient, "write", "DocumentReference").await?;
    let mut multipart = multipart.map_err(|_| {
        ApiError::UnsupportedMediaType(
            "expected a multipart/form-data body with the document in a field named 'file'".into(),
        )
    })?;
    let limit = state.ingest.limits().max_bytes;
    let too_large =
        || ApiError::PayloadTooLarge(format!("the file exceeds the limit of {limit} bytes"));
    let mut file = None;
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => return Err(too_large()),
            Err(_) => return Err(ApiError::BadRequest("malformed multipart body".into())),
        };
        if field.name() == Some("file") {
            let bytes = field.bytes().await.map_err(|e| {
                if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    too_large()
                } else {
                    ApiError::BadRequest("the multipart body ended before the file did".into())
                }
            })?;
            file = Some(bytes);
        }
    }
    let bytes = file.ok_or_else(|| {
        ApiError::BadRequest("the multipart body has no field named 'file'".into())
    })?;
    let accepted = state
        .ingest
        .ingest(&patient, bytes, Channel::Upload, Some(&caller.0.user_id))
        .await?;
    let status = if accepted.duplicate {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((
        status,
        Json(json!({
            "document_id": accepted.document_id,
            "duplicate": accepted.duplicate,
            "media_type": accepted.object.media_type,
            "size": accepted.object.size,
            "sha256": accepted.object.sha256,
            "status": "received",
        })),
    ))
}

/// `GET /v1/patients/{patient}/documents`: newest first.
pub(crate) async fn list(
    State(state): State<AppState>,
    Path(patient): Path<String>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    let patient = patient_id(&patient)?;
    let decision = authorize(&state, &caller, &patient, Action::Read(Category::Documents)).await?;
    let register = state.register.clone();
    let p = patient.clone();
    let docs = tokio::task::spawn_blocking(move || register.list(&p))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .map_err(|e| ApiError::Unavailable(e.to_string()))?;
    record(
        &state,
        &caller,
        &patient,
        &decision,
        "read",
        &["DocumentReference"],
        docs.iter().map(|d| d.document_id.clone()).collect(),
    )
    .await?;
    Ok(Json(json!({ "documents": docs })))
}

/// The patient's own document (review and corrections are the patient's). `verb` is what the
/// caller attempts, for the ledger entry of a refusal.
pub(crate) async fn find(
    state: &AppState,
    caller: &Caller,
    patient: &str,
    document: &str,
    verb: &str,
) -> Result<p360_ingest::DocumentRecord, ApiError> {
    let patient = patient_id(patient)?;
    crate::access::owner_only(state, caller, &patient, verb, "DocumentReference").await?;
    lookup(state, patient, document).await
}

async fn lookup(
    state: &AppState,
    patient: PatientId,
    document: &str,
) -> Result<p360_ingest::DocumentRecord, ApiError> {
    let document = document_id(document)?;
    let register = state.register.clone();
    tokio::task::spawn_blocking(move || register.get(&patient, &document))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .map_err(|e| ApiError::Unavailable(e.to_string()))?
        .ok_or_else(|| ApiError::NotFound("no such document in this record".into()))
}

/// `GET /v1/patients/{patient}/documents/{document}`.
pub(crate) async fn get(
    State(state): State<AppState>,
    Path((patient, document)): Path<(String, String)>,
    caller: Caller,
) -> Result<Json<p360_ingest::DocumentRecord>, ApiError> {
    Ok(Json(
        read_document(&state, &caller, &patient, &document).await?,
    ))
}

/// A document read by the owner or under a grant that covers documents (recorded).
async fn read_document(
    state: &AppState,
    caller: &Caller,
    patient: &str,
    document: &str,
) -> Result<p360_ingest::DocumentRecord, ApiError> {
    let patient = patient_id(patient)?;
    let decision = authorize(state, caller, &patient, Action::Read(Category::Documents)).await?;
    let found = lookup(state, patient.clone(), document).await?;
    record(
        state,
        caller,
        &patient,
        &decision,
        "read",
        &["DocumentReference"],
        vec![found.document_id.clone()],
    )
    .await?;
    Ok(found)
}

/// `GET /v1/patients/{patient}/documents/{document}/content`: the original bytes.
pub(crate) async fn content(
    State(state): State<AppState>,
    Path((patient, document)): Path<(String, String)>,
    caller: Caller,
) -> Result<Response, ApiError> {
    let record = read_document(&state, &caller, &patient, &document).await?;
    let object = state
        .ingest
        .store()
        .get(&object_store::path::Path::from(record.object_key.as_str()))
        .await
        .map_err(|e| ApiError::Unavailable(format!("reading a stored document: {e}")))?;
    let bytes = object
        .bytes()
        .await
        .map_err(|e| ApiError::Unavailable(format!("reading a stored document: {e}")))?;
    Response::builder()
        .header(header::CONTENT_TYPE, record.media_type)
        .header(header::CACHE_CONTROL, "private, no-store")
        .header("x-content-type-options", "nosniff")
        .body(Body::from(bytes))
        .map_err(|e| ApiError::Internal(e.to_string()))
}
