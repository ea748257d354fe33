//! The record: manual entry in, FHIR out (`Patient/$everything`, `Observation` search).

use crate::auth::Caller;
use crate::error::{ApiError, parse_json, patient_id, require_json};
use crate::{AppState, access};
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use chrono::{DateTime, NaiveDate, Utc};
use object_store::{ObjectStoreExt, PutPayload};
use p360_consent::{Action, Category, Decision};
use p360_events::{Envelope, Event, EventId, ManualEntrySubmitted, ObjectRef, PatientId};
use p360_model::fhir::{self, Demographics};
use p360_model::{Fact, FactBody, Provenance, SourceKind};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::HashMap;

/// The simple form of a manual observation: what a patient types on a phone.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SimpleObservation {
    /// LOINC code, e.g. `29463-7` (body weight).
    code: String,
    value: f64,
    /// UCUM unit, e.g. `kg`.
    unit: String,
    /// `YYYY-MM-DD`.
    date: String,
    #[serde(default)]
    display: Option<String>,
    /// `laboratory` (default) or `vital-signs`.
    #[serde(default)]
    category: Option<String>,
}

const SIMPLE_SHAPE: &str = r#"a FHIR Observation, or {"code": LOINC, "value": number, "unit": UCUM, "date": "YYYY-MM-DD"}"#;

/// `POST /v1/patients/{patient}/observations`: a FHIR Observation, or the simple form.
/// 202: accepted into the pipeline; the fact appears in the record when the graph writer has
/// run (milliseconds). Posting the same observation twice leaves one fact.
pub(crate) async fn add_observation(
    State(state): State<AppState>,
    Path(patient): Path<String>,
    caller: Caller,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let patient = patient_id(&patient)?;
    access::owner_only(&state, &caller, &patient, "write", "Observation").await?;
    require_json(&headers)?;
    let raw: Value = parse_json(&body, SIMPLE_SHAPE)?;
    let resource = if raw.get("resourceType").is_some() {
        if raw["resourceType"] != "Observation" {
            return Err(ApiError::Unprocessable(
                "resourceType: expected Observation".into(),
            ));
        }
        raw
    } else {
        let s: SimpleObservation = serde_json::from_value(raw).map_err(|_| {
            ApiError::Unprocessable(format!("the JSON body must be {SIMPLE_SHAPE}"))
        })?;
        // A typed code: say why it is wrong (a check-digit mismatch is usually a typo).
        p360_model::coding::check_loinc(&s.code).map_err(|e| {
            ApiError::Unprocessable(format!("Observation.code.coding[0].code: {e}"))
        })?;
        json!({
            "resourceType": "Observation",
            "status": "final",
            "category": [{ "coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                "code": s.category.as_deref().unwrap_or("laboratory"),
            }]}],
            "code": { "coding": [{ "system": "http://loinc.org", "code": s.code, "display": s.display }] },
            "subject": { "reference": format!("Patient/{patient}") },
            "effectiveDateTime": s.date,
            "valueQuantity": { "value": s.value, "unit": s.unit, "system": "http://unitsofmeasure.org", "code": s.unit },
        })
    };
    let now = state.clock.now();
    let source = Provenance {
        author: Some(caller.0.user_id.clone()),
        ..Provenance::new(SourceKind::ManualEntry, caller.0.user_id.as_str(), now)
    };
    let fact = fhir::from_resource(&patient, &resource, source, now)
        .map_err(|e| ApiError::Unprocessable(e.to_string()))?;
    // Typed by a person, with no lab behind it: refuse values no living human can have.
    if let FactBody::Observation(obs) = &fact.body {
        p360_model::plausibility::check_observation(obs)
            .map_err(|e| ApiError::Unprocessable(e.to_string()))?;
    }
    submit(&state, &caller, &patient, std::slice::from_ref(&fact), now).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "fact_id": fact.id, "status": "accepted" })),
    ))
}

/// Stores facts entered through the API and announces them (ManualEntrySubmitted) to the
/// graph writer.
async fn submit(
    state: &AppState,
    caller: &Caller,
    patient: &PatientId,
    facts: &[Fact],
    now: DateTime<Utc>,
) -> Result<(), ApiError> {
    let Some(fact) = facts.first() else {
        return Ok(());
    };
    let event_id = EventId::random();
    let key = format!("entries/{patient}/{event_id}.json");
    let bytes = serde_json::to_vec(facts).map_err(|e| ApiError::Internal(e.to_string()))?;
    let size = bytes.len() as u64;
    state
        .ingest
        .store()
        .put(
            &object_store::path::Path::from(key.as_str()),
            PutPayload::from(bytes),
        )
        .await
        .map_err(|e| ApiError::Unavailable(format!("storing an entry: {e}")))?;
    let effective_date = fact.body.day().unwrap_or_else(|| now.date_naive());
    let event = Envelope::new(
        event_id,
        "/p360/api/manual-entry",
        Event::ManualEntrySubmitted(ManualEntrySubmitted {
            patient_id: patient.clone(),
            entered_by: caller.0.user_id.clone(),
            entry: ObjectRef {
                key,
                sha256: String::new(),
                size,
                media_type: "application/json".into(),
            },
            effective_date,
        }),
    );
    state
        .publisher
        .publish(&[event])
        .await
        .map_err(|e| ApiError::Unavailable(format!("publishing an entry: {e}")))?;
    Ok(())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Coded {
    code: String,
    #[serde(default)]
    display: Option<String>,
    /// For procedures: `cpt` (default) or `snomed`.
    #[serde(default)]
    system: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Episode {
    /// v3 ActCode: `AMB` (default), `IMP`, `EMER`, `VR`.
    #[serde(default)]
    class: Option<String>,
    /// `YYYY-MM-DD`.
    start: String,
    #[serde(default)]
    end: Option<String>,
    /// ICD-10-CM.
    #[serde(default)]
    diagnoses: Vec<Coded>,
    #[serde(default)]
    procedures: Vec<Coded>,
    #[serde(default)]
    note: Option<String>,
}

const EPISODE_SHAPE: &str = r#"{"class"?: "AMB"|"IMP"|"EMER"|"VR", "start": "YYYY-MM-DD", "end"?: "YYYY-MM-DD", "diagnoses"?: [{"code": ICD-10-CM, "display"?}], "procedures"?: [{"code", "system"?: "cpt"|"snomed", "display"?}], "note"?: string}"#;

/// `POST /v1/patients/{patient}/episodes`: a provider with a write grant (or the patient)
/// adds an encounter with its diagnoses and procedures; it enters the graph with the author
/// as provenance. 202 with the new facts' ids.
pub(crate) async fn add_episode(
    State(state): State<AppState>,
    Path(patient): Path<String>,
    caller: Caller,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let patient = patient_id(&patient)?;
    let decision =
        access::authorize(&state, &caller, &patient, Action::Write(Category::Episodes)).await?;
    require_json(&headers)?;
    let ep: Episode = parse_json(&body, EPISODE_SHAPE)?;
    let class = ep.class.unwrap_or_else(|| "AMB".into());
    if !matches!(class.as_str(), "AMB" | "IMP" | "EMER" | "VR") {
        return Err(ApiError::Unprocessable(
            "class: one of AMB, IMP, EMER, VR".into(),
        ));
    }
    let icd = |c: &Coded| json!({"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": c.code, "display": c.display}]});
    let mut resources = vec![json!({
        "resourceType": "Encounter",
        "status": "finished",
        "class": {"code": class},
        "subject": {"reference": format!("Patient/{patient}")},
        "period": {"start": ep.start, "end": ep.end},
        "reasonCode": ep.diagnoses.iter().map(icd).collect::<Vec<_>>(),
    })];
    for d in &ep.diagnoses {
        resources.push(json!({
            "resourceType": "Condition",
            "clinicalStatus": {"coding": [{"code": "active"}]},
            "code": icd(d),
            "subject": {"reference": format!("Patient/{patient}")},
            "onsetDateTime": ep.start,
            "recordedDate": ep.start,
        }));
    }
    for p in &ep.procedures {
        let system = match p.system.as_deref() {
            None | Some("cpt") => "http://www.ama-assn.org/go/cpt",
            Some("snomed") => "http://snomed.info/sct",
            Some(_) => {
                return Err(ApiError::Unprocessable(
                    "procedures[].system: cpt or snomed".into(),
                ));
            }
        };
        resources.push(json!({
            "resourceType": "Procedure",
            "status": "completed",
            "code": {"coding": [{"system": system, "code": p.code, "display": p.display}]},
            "subject": {"reference": format!("Patient/{patient}")},
            "performedDateTime": ep.start,
        }));
    }
    let now = state.clock.now();
    let kind = if caller.0.role == p360_events::Role::Provider {
        SourceKind::Provider
    } else {
        SourceKind::ManualEntry
    };
    let mut facts = Vec::with_capacity(resources.len());
    for r in &resources {
        let source = Provenance {
            author: Some(caller.0.user_id.clone()),
            ..Provenance::new(kind, caller.0.user_id.as_str(), now)
        };
        let mut fact = fhir::from_resource(&patient, r, source, now)
            .map_err(|e| ApiError::Unprocessable(e.to_string()))?;
        if let FactBody::Encounter(e) = &mut fact.body {
            e.note = ep.note.clone();
        }
        facts.push(fact);
    }
    submit(&state, &caller, &patient, &facts, now).await?;
    let ids: Vec<String> = facts.iter().map(|f| f.id.to_string()).collect();
    let mut kinds: Vec<&str> = facts.iter().map(|f| f.body.resource_type()).collect();
    kinds.dedup();
    access::record(
        &state,
        &caller,
        &patient,
        &decision,
        "write",
        &kinds,
        ids.clone(),
    )
    .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "fact_ids": ids, "status": "accepted" })),
    ))
}

async fn facts_of(state: &AppState, patient: &PatientId) -> Result<Vec<Fact>, ApiError> {
    p360_graph::facts::read_patient(&*state.graph, patient)
        .await
        .map_err(|e| ApiError::Unavailable(e.to_string()))
}

fn parse_day(v: &str, name: &str) -> Result<NaiveDate, ApiError> {
    NaiveDate::parse_from_str(v.get(..10).unwrap_or(v), "%Y-%m-%d")
        .map_err(|_| ApiError::BadRequest(format!("{name}: expected a date YYYY-MM-DD")))
}

fn page_params(q: &HashMap<String, String>) -> Result<(usize, usize), ApiError> {
    let count = match q.get("_count") {
        Some(c) => c
            .parse::<usize>()
            .ok()
            .filter(|c| (1..=1000).contains(c))
            .ok_or_else(|| ApiError::BadRequest("_count: a number from 1 to 1000".into()))?,
        None => 100,
    };
    let offset = match q.get("_offset") {
        Some(o) => o
            .parse::<usize>()
            .map_err(|_| ApiError::BadRequest("_offset: a non-negative number".into()))?,
        None => 0,
    };
    Ok((count, offset))
}

/// A searchset bundle of `facts[offset..offset+count]` with their Provenance, `total`
/// counting every match, and `self`/`next` links.
fn searchset(
    base: &str,
    query: &HashMap<String, String>,
    facts: &[Fact],
    extra: Vec<Value>,
) -> Result<Value, ApiError> {
    let (count, offset) = page_params(query)?;
    let page: Vec<Fact> = facts.iter().skip(offset).take(count).cloned().collect();
    page_bundle(base, query, facts.len(), &page, extra)
}

/// A searchset bundle of one page of `total` matches, with their Provenance and
/// `self`/`next` links.
fn page_bundle(
    base: &str,
    query: &HashMap<String, String>,
    total: usize,
    page: &[Fact],
    extra: Vec<Value>,
) -> Result<Value, ApiError> {
    let (count, offset) = page_params(query)?;
    let mut resources = extra;
    for f in page {
        resources.push(fhir::to_resource(f));
        resources.extend(fhir::provenance_resources(f));
    }
    let link = |off: usize| {
        let mut q: Vec<(String, String)> = query
            .iter()
            .filter(|(k, _)| k.as_str() != "_offset")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        q.push(("_offset".into(), off.to_string()));
        q.sort();
        let qs: Vec<String> = q
            .iter()
            .map(|(k, v)| format!("{k}={}", urlencode(v)))
            .collect();
        format!("{base}?{}", qs.join("&"))
    };
    let mut links = vec![("self", link(offset))];
    if offset + count < total {
        links.push(("next", link(offset + count)));
    }
    Ok(fhir::bundle(
        "searchset",
        resources,
        Some(total as u64),
        &links,
    ))
}

fn urlencode(v: &str) -> String {
    v.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// `GET /fhir/Patient/{id}/$everything` with `_type`, `_since`, `start`, `end`, `_count`,
/// `_offset`. The patient reads everything; anyone else reads only the categories the
/// decision point permits now, filtered before counting and paging (totals never reveal what
/// is hidden), and every page they read is in the patient's ledger.
///
/// Both read the same way: filter and page on the fact index, then read only the page's
/// facts. The matching ids are kept as a snapshot for the `next` links, bound to the patient,
/// the filters, the caller and the categories permitted; every page asks the decision point
/// again, so a revocation refuses the very next page and a narrowed grant (other categories)
/// finds no snapshot and searches afresh.
pub(crate) async fn everything(
    State(state): State<AppState>,
    Path(patient): Path<String>,
    caller: Caller,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let patient = patient_id(&patient)?;
    let owner = caller.0.owns(&patient);
    let granted = if owner {
        None
    } else {
        Some(readable(&state, &caller, &patient).await?)
    };
    let allowed: Option<&[Category]> = granted.as_ref().map(|(a, _)| a.as_slice());
    let types: Option<Vec<String>> = q
        .get("_type")
        .map(|t| t.split(',').map(|s| s.trim().to_owned()).collect());
    let (since, start, end) = time_filters(&q)?;
    let filters = {
        let mut f: Vec<String> = q
            .iter()
            .filter(|(k, _)| !matches!(k.as_str(), "_offset" | "_count" | "_snapshot"))
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        f.sort();
        if let Some(allowed) = allowed {
            let cats: Vec<&str> = allowed.iter().map(|c| c.as_str()).collect();
            f.push(format!("@reader={}", caller.0.user_id));
            f.push(format!("@categories={}", cats.join(",")));
        }
        f.join("&")
    };
    let snapshot = q.get("_snapshot").and_then(|t| {
        state
            .snapshots
            .get(t, &patient, &filters)
            .map(|ids| (t.clone(), ids))
    });
    let (token, matching) = match snapshot {
        Some(found) => found,
        None => {
            let index = index_for(&state, &patient, allowed.is_some()).await?;
            let ids: Vec<p360_model::FactId> = index
                .into_iter()
                .filter(|f| allowed.is_none_or(|a| f.category.is_some_and(|c| a.contains(&c))))
                .filter(|f| {
                    types
                        .as_ref()
                        .is_none_or(|t| t.iter().any(|t| t == f.resource_type))
                })
                .filter(|f| since.is_none_or(|s| f.last_recorded.is_some_and(|r| r >= s)))
                .filter(|f| match f.day {
                    Some(d) => start.is_none_or(|s| d >= s) && end.is_none_or(|e| d <= e),
                    None => start.is_none() && end.is_none(),
                })
                .map(|f| f.id)
                .collect();
            let token = state.snapshots.put(&patient, filters, ids.clone());
            (token, std::sync::Arc::new(ids))
        }
    };
    let include_patient = owner
        && types
            .as_ref()
            .is_none_or(|t| t.iter().any(|t| t == "Patient"));
    let extra = if include_patient {
        vec![fhir::patient_resource(&patient, &Demographics::default())]
    } else {
        Vec::new()
    };
    let (count, offset) = page_params(&q)?;
    let page: Vec<(PatientId, p360_model::FactId)> = matching
        .iter()
        .skip(offset)
        .take(count)
        .map(|id| (patient.clone(), id.clone()))
        .collect();
    let mut facts = p360_graph::facts::read_many(&*state.graph, &page)
        .await
        .map_err(|e| ApiError::Unavailable(e.to_string()))?;
    if let Some((allowed, decision)) = &granted {
        // The index said these are permitted; the facts themselves say so too (a fact whose
        // category the index could not tell is never shown).
        facts.retain(|f| allowed.contains(&f.body.consent_category()));
        let mut kinds: Vec<&str> = facts.iter().map(|f| f.body.resource_type()).collect();
        kinds.sort_unstable();
        kinds.dedup();
        access::record(
            &state,
            &caller,
            &patient,
            decision,
            "read",
            &kinds,
            facts.iter().map(|f| f.id.to_string()).collect(),
        )
        .await?;
    }
    let base = format!("/fhir/Patient/{patient}/$everything");
    let mut links = q.clone();
    links.insert("_snapshot".into(), token);
    Ok(Json(page_bundle(
        &base,
        &links,
        matching.len(),
        &facts,
        extra,
    )?))
}

/// The patient's fact index; with `categories`, each fact's consent category too. Categories
/// are remembered per fact (a fact's body never changes under its id, and the sensitivity
/// tables only change with the binary), so only a record with facts not seen before costs a
/// read of the bodies.
async fn index_for(
    state: &AppState,
    patient: &PatientId,
    categories: bool,
) -> Result<Vec<p360_graph::facts::IndexEntry>, ApiError> {
    let unavailable = |e: p360_graph::GraphError| ApiError::Unavailable(e.to_string());
    let mut index = p360_graph::facts::index_patient(&*state.graph, patient)
        .await
        .map_err(unavailable)?;
    if !categories || state.categories.fill(patient, &mut index) {
        return Ok(index);
    }
    let index = p360_graph::facts::index_patient_with(&*state.graph, patient, true)
        .await
        .map_err(unavailable)?;
    state.categories.remember(patient, &index);
    Ok(index)
}

type TimeFilters = (Option<DateTime<Utc>>, Option<NaiveDate>, Option<NaiveDate>);

/// `_since`, `start`, `end`.
fn time_filters(q: &HashMap<String, String>) -> Result<TimeFilters, ApiError> {
    let since = match q.get("_since") {
        Some(s) => Some(
            DateTime::parse_from_rfc3339(s)
                .map_err(|_| {
                    ApiError::BadRequest(
                        "_since: expected an instant like 2026-03-18T00:00:00Z".into(),
                    )
                })?
                .with_timezone(&Utc),
        ),
        None => None,
    };
    let start = q.get("start").map(|s| parse_day(s, "start")).transpose()?;
    let end = q.get("end").map(|s| parse_day(s, "end")).transpose()?;
    Ok((since, start, end))
}

/// The categories the caller may read now; refused (and recorded) when there is none.
async fn readable(
    state: &AppState,
    caller: &Caller,
    patient: &PatientId,
) -> Result<(Vec<Category>, Decision), ApiError> {
    let actions: Vec<Action> = Category::ALL.into_iter().map(Action::Read).collect();
    let decisions = access::decide_all(state, caller, patient, &actions).await?;
    let allowed: Vec<Category> = Category::ALL
        .into_iter()
        .zip(&decisions)
        .filter(|(_, d)| d.permit)
        .map(|(c, _)| c)
        .collect();
    match decisions.iter().find(|d| d.permit) {
        Some(d) => Ok((allowed, d.clone())),
        None => {
            let d = decisions[0].clone();
            access::deny(state, caller, patient, &d, actions[0]).await?;
            Err(ApiError::Forbidden(d.reason))
        }
    }
}

/// `GET /fhir/Observation?patient={id}&code=[system|]code`.
pub(crate) async fn search_observations(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let raw = q
        .get("patient")
        .or_else(|| q.get("subject"))
        .ok_or_else(|| ApiError::BadRequest("patient: required (patient=<id>)".into()))?;
    let patient = patient_id(raw.strip_prefix("Patient/").unwrap_or(raw))?;
    let (allowed, decision) = readable(&state, &caller, &patient).await?;
    let code = q.get("code").map(|c| match c.split_once('|') {
        Some((system, code)) => (Some(system.to_owned()), code.to_owned()),
        None => (None, c.clone()),
    });
    let facts: Vec<Fact> = facts_of(&state, &patient)
        .await?
        .into_iter()
        .filter(|f| matches!(f.body, FactBody::Observation(_)))
        .filter(|f| allowed.contains(&f.body.consent_category()))
        .filter(|f| match (&code, &f.body) {
            (None, _) => true,
            (Some((system, code)), FactBody::Observation(o)) => o
                .code
                .iter()
                .any(|c| &c.code == code && system.as_deref().is_none_or(|s| s == c.system.uri())),
            _ => false,
        })
        .collect();
    let (count, offset) = page_params(&q)?;
    access::record(
        &state,
        &caller,
        &patient,
        &decision,
        "read",
        &["Observation"],
        facts
            .iter()
            .skip(offset)
            .take(count)
            .map(|f| f.id.to_string())
            .collect(),
    )
    .await?;
    Ok(Json(searchset(
        "/fhir/Observation",
        &q,
        &facts,
        Vec::new(),
    )?))
}
