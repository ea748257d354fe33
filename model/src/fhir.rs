//! FHIR R4 JSON, both ways.
//!
//! Out: [`to_resource`] maps a fact to its resource (Observation, Condition,
//! MedicationStatement, Procedure, AllergyIntolerance, Immunization, Encounter,
//! DocumentReference), [`provenance_resources`] its sources to Provenance resources,
//! [`patient_resource`] and [`bundle`] complete an export. Output is checked by an independent
//! validator (PyPI `fhir.resources`, R4 4.0.1 models) in `model/tests/fhir_validator.rs`.
//!
//! In: [`from_resource`] reads the same resource types into a fact, refusing what the record
//! must not hold with an error naming the field: unknown code systems, malformed codes, units
//! that are not UCUM, dates in the future, a subject that is not the patient.

use crate::coding::{CodeSystem, Coding};
use crate::fact::*;
use crate::provenance::{Provenance, SourceKind};
use crate::ucum;
use chrono::{DateTime, NaiveDate, Utc};
use p360_events::{DocumentId, PatientId};
use serde_json::{Value as Json, json};

/// Where a resource is wrong and why. `path` is a FHIRPath-like location
/// (`Observation.valueQuantity.unit`); the message never quotes free text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct FhirError {
    pub path: String,
    pub message: String,
}

fn err(path: impl Into<String>, message: impl Into<String>) -> FhirError {
    FhirError {
        path: path.into(),
        message: message.into(),
    }
}

const INTERPRETATION_SYSTEM: &str =
    "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation";
const OBS_CATEGORY_SYSTEM: &str = "http://terminology.hl7.org/CodeSystem/observation-category";
const CONDITION_CLINICAL_SYSTEM: &str = "http://terminology.hl7.org/CodeSystem/condition-clinical";
const CONDITION_VERIFICATION_SYSTEM: &str =
    "http://terminology.hl7.org/CodeSystem/condition-ver-status";
const ACT_CODE_SYSTEM: &str = "http://terminology.hl7.org/CodeSystem/v3-ActCode";
const NPI_SYSTEM: &str = "http://hl7.org/fhir/sid/us-npi";
/// p360 extension carrying a fact's review status.
pub const STATUS_EXTENSION: &str = "https://p360.dev/fhir/StructureDefinition/fact-status";

fn codeable(codes: &[Coding], text: Option<&str>) -> Json {
    let mut v = json!({ "coding": codes.iter().map(Coding::to_fhir).collect::<Vec<_>>() });
    if let Some(t) = text {
        v["text"] = t.into();
    }
    v
}

/// Condition / AllergyIntolerance `verificationStatus` code of a fact's review status.
fn verification_code(status: Status) -> &'static str {
    match status {
        Status::Confirmed => "confirmed",
        Status::Unconfirmed => "unconfirmed",
        Status::EnteredInError => "entered-in-error",
    }
}

fn subject(patient: &PatientId) -> Json {
    json!({ "reference": format!("Patient/{patient}") })
}

fn status_extension(status: Status) -> Json {
    let code = match status {
        Status::Unconfirmed => "unconfirmed",
        Status::Confirmed => "confirmed",
        Status::EnteredInError => "entered-in-error",
    };
    json!([{ "url": STATUS_EXTENSION, "valueCode": code }])
}

fn when_to(field: &str, when: &When, out: &mut serde_json::Map<String, Json>) {
    match when {
        When::Period { start, end } => {
            let mut p = json!({ "start": start.to_string() });
            if let Some(e) = end {
                p["end"] = e.to_string().into();
            }
            out.insert(format!("{field}Period"), p);
        }
        other => {
            out.insert(format!("{field}DateTime"), other.fhir_start().into());
        }
    }
}

fn quantity(value: f64, unit: &str, comparator: Option<Comparator>) -> Json {
    let mut q = json!({
        "value": value, "unit": unit, "system": CodeSystem::Ucum.uri(), "code": unit,
    });
    if let Some(c) = comparator {
        q["comparator"] = c.as_str().into();
    }
    q
}

/// The FHIR resource of a fact.
pub fn to_resource(fact: &Fact) -> Json {
    let mut r = serde_json::Map::new();
    r.insert("resourceType".into(), fact.body.resource_type().into());
    r.insert("id".into(), fact.id.as_str().into());
    r.insert("extension".into(), status_extension(fact.status));
    // A retracted fact keeps its resource, with FHIR's own retraction status.
    let lifecycle = |normal: &str| -> Json {
        if fact.status == Status::EnteredInError {
            "entered-in-error".into()
        } else {
            normal.into()
        }
    };
    match &fact.body {
        FactBody::Observation(o) => {
            r.insert("status".into(), lifecycle("final"));
            r.insert(
                "category".into(),
                json!([{ "coding": [{ "system": OBS_CATEGORY_SYSTEM, "code": o.kind.code() }] }]),
            );
            r.insert("code".into(), codeable(&o.code, None));
            r.insert("subject".into(), subject(&fact.patient));
            when_to("effective", &o.effective, &mut r);
            match &o.value {
                Some(Value::Quantity {
                    value,
                    unit,
                    comparator,
                }) => {
                    r.insert("valueQuantity".into(), quantity(*value, unit, *comparator));
                }
                Some(Value::Text { text }) => {
                    r.insert("valueString".into(), text.clone().into());
                }
                Some(Value::Coded { coding }) => {
                    r.insert(
                        "valueCodeableConcept".into(),
                        codeable(std::slice::from_ref(coding), None),
                    );
                }
                None => {}
            }
            if let Some(i) = o.interpretation {
                r.insert(
                    "interpretation".into(),
                    json!([{ "coding": [{ "system": INTERPRETATION_SYSTEM, "code": i.code() }] }]),
                );
            }
            if let Some(rr) = &o.reference_range {
                let mut range = serde_json::Map::new();
                let unit = rr.unit.clone().or_else(|| match &o.value {
                    Some(Value::Quantity { unit, .. }) => Some(unit.clone()),
                    _ => None,
                });
                let simple = |v: f64| match &unit {
                    Some(u) => quantity(v, u, None),
                    None => json!({ "value": v }),
                };
                if let Some(l) = rr.low {
                    range.insert("low".into(), simple(l));
                }
                if let Some(h) = rr.high {
                    range.insert("high".into(), simple(h));
                }
                if let Some(t) = &rr.text {
                    range.insert("text".into(), t.clone().into());
                }
                r.insert("referenceRange".into(), json!([range]));
            }
        }
        FactBody::Condition(c) => {
            r.insert(
                "clinicalStatus".into(),
                json!({ "coding": [{ "system": CONDITION_CLINICAL_SYSTEM, "code": c.clinical_status.code() }] }),
            );
            let verification = verification_code(fact.status);
            r.insert(
                "verificationStatus".into(),
                json!({ "coding": [{ "system": CONDITION_VERIFICATION_SYSTEM, "code": verification }] }),
            );
            r.insert("code".into(), codeable(&c.code, None));
            r.insert("subject".into(), subject(&fact.patient));
            if let Some(d) = c.onset {
                r.insert("onsetDateTime".into(), d.to_string().into());
            }
            if let Some(d) = c.recorded {
                r.insert("recordedDate".into(), d.to_string().into());
            }
        }
        FactBody::Medication(m) => {
            r.insert("status".into(), lifecycle(m.status.code()));
            r.insert(
                "medicationCodeableConcept".into(),
                codeable(&m.code, Some(&m.text)),
            );
            r.insert("subject".into(), subject(&fact.patient));
            if let Some(w) = &m.effective {
                when_to("effective", w, &mut r);
            }
            let mut dosage = Vec::new();
            if let Some(d) = &m.dosage {
                dosage.push(json!({ "text": d }));
            }
            if !dosage.is_empty() {
                r.insert("dosage".into(), Json::Array(dosage));
            }
            let mut notes = Vec::new();
            if let Some(s) = &m.strength {
                notes.push(json!({ "text": format!("strength: {s}") }));
            }
            if let Some(f) = &m.form {
                notes.push(json!({ "text": format!("form: {f}") }));
            }
            if !notes.is_empty() {
                r.insert("note".into(), Json::Array(notes));
            }
        }
        FactBody::Procedure(p) => {
            r.insert("status".into(), lifecycle("completed"));
            r.insert("code".into(), codeable(&p.code, None));
            r.insert("subject".into(), subject(&fact.patient));
            when_to("performed", &p.performed, &mut r);
        }
        FactBody::Allergy(a) => {
            r.insert(
                "clinicalStatus".into(),
                json!({ "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical", "code": "active" }] }),
            );
            let verification = verification_code(fact.status);
            r.insert(
                "verificationStatus".into(),
                json!({ "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification", "code": verification }] }),
            );
            r.insert("code".into(), codeable(&a.code, Some(&a.text)));
            r.insert("patient".into(), subject(&fact.patient));
            if let Some(d) = a.recorded {
                r.insert("recordedDate".into(), d.to_string().into());
            }
            if let Some(reaction) = &a.reaction {
                r.insert(
                    "reaction".into(),
                    json!([{ "description": reaction, "manifestation": [{ "text": reaction }] }]),
                );
            }
        }
        FactBody::Immunization(i) => {
            r.insert("status".into(), lifecycle("completed"));
            r.insert("vaccineCode".into(), codeable(&i.vaccine, None));
            r.insert("patient".into(), subject(&fact.patient));
            r.insert("occurrenceDateTime".into(), i.occurred.fhir_start().into());
        }
        FactBody::Encounter(e) => {
            r.insert("status".into(), lifecycle("finished"));
            r.insert(
                "class".into(),
                json!({ "system": ACT_CODE_SYSTEM, "code": e.class }),
            );
            if !e.kind.is_empty() {
                r.insert("type".into(), json!([codeable(&e.kind, None)]));
            }
            r.insert("subject".into(), subject(&fact.patient));
            let mut period = serde_json::Map::new();
            when_to("", &e.period, &mut period);
            let p = period
                .remove("Period")
                .unwrap_or_else(|| json!({ "start": e.period.fhir_start() }));
            r.insert("period".into(), p);
            if let Some(npi) = &e.practitioner_npi {
                r.insert(
                    "participant".into(),
                    json!([{ "individual": { "identifier": { "system": NPI_SYSTEM, "value": npi } } }]),
                );
            }
            if !e.reason.is_empty() {
                r.insert(
                    "reasonCode".into(),
                    Json::Array(
                        e.reason
                            .iter()
                            .map(|c| codeable(std::slice::from_ref(c), None))
                            .collect(),
                    ),
                );
            }
        }
        FactBody::Document(d) => {
            r.insert("status".into(), lifecycle("current"));
            if !d.kind.is_empty() {
                r.insert("type".into(), codeable(&d.kind, None));
            }
            r.insert("subject".into(), subject(&fact.patient));
            let date = match &d.date {
                When::Instant(t) => t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                other => format!("{}T00:00:00Z", other.day()),
            };
            r.insert("date".into(), date.into());
            r.insert(
                "content".into(),
                json!([{ "attachment": {
                    "contentType": d.media_type,
                    "size": d.size,
                    "hash": base64_digest(&d.sha256),
                }}]),
            );
            // The image's URL depends on the API's address: the read path adds
            // `attachment.url`; the identifier names the document wherever it is served.
            r.insert(
                "identifier".into(),
                json!([{ "system": "urn:p360:document", "value": d.document_id.to_string() }]),
            );
        }
    }
    Json::Object(r)
}

/// `Attachment.hash` is base64Binary; we put the SHA-256 there (and in the identifier).
fn base64_digest(hex_digest: &str) -> String {
    use base64::Engine;
    hex::decode(hex_digest)
        .map(|b| base64::engine::general_purpose::STANDARD.encode(b))
        .unwrap_or_default()
}

/// One Provenance resource per source of the fact.
pub fn provenance_resources(fact: &Fact) -> Vec<Json> {
    fact.provenance
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let mut agent_who = json!({ "display": format!("{}:{}", p.source_kind.as_str(), p.source_id) });
            if let Some(author) = &p.author {
                agent_who = json!({ "identifier": { "system": "urn:p360:user", "value": author.to_string() } });
            }
            let mut r = json!({
                "resourceType": "Provenance",
                "id": format!("{}-src{}", fact.id, i),
                "target": [{ "reference": format!("{}/{}", fact.body.resource_type(), fact.id) }],
                "recorded": p.recorded.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                "agent": [{
                    "type": { "coding": [{
                        "system": "http://terminology.hl7.org/CodeSystem/provenance-participant-type",
                        "code": if p.author.is_some() { "author" } else { "assembler" },
                    }]},
                    "who": agent_who,
                }],
            });
            if matches!(p.source_kind, SourceKind::PayorFeed | SourceKind::FhirStore) {
                // The record of the payor's feed that stated it: `<batch>/<file>#<record>`.
                r["entity"] = json!([{
                    "role": "source",
                    "what": { "identifier": { "system": "urn:p360:feed-record", "value": p.source_id } },
                }]);
            }
            if let Some(doc) = &p.document {
                let mut entity = json!({
                    "role": "source",
                    "what": { "identifier": { "system": "urn:p360:document", "value": doc.to_string() } },
                });
                let mut detail = Vec::new();
                if let Some(page) = p.page {
                    detail.push(format!("page {page}"));
                }
                if let Some(b) = p.region {
                    detail.push(format!("region {},{},{},{}", b.x, b.y, b.width, b.height));
                }
                if !detail.is_empty() {
                    entity["what"]["display"] = detail.join("; ").into();
                }
                r["entity"] = json!([entity]);
            }
            if let Some(prod) = &p.producer
                && let Some(a) = r["agent"].as_array_mut()
            {
                    a.push(json!({
                        "type": { "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/provenance-participant-type", "code": "performer" }] },
                        "who": { "display": format!("{} {}", prod.name, prod.version) },
                    }));
            }
            if let Some(c) = p.confidence {
                r["reason"] = json!([{ "text": format!("confidence {c:.2}") }]);
            }
            r
        })
        .collect()
}

/// Demographics of a Patient resource (from the member roster or a document header).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Demographics {
    pub family: Option<String>,
    pub given: Vec<String>,
    pub birth_date: Option<NaiveDate>,
    pub member_id: Option<String>,
}

pub fn patient_resource(patient: &PatientId, demo: &Demographics) -> Json {
    let mut r = json!({
        "resourceType": "Patient",
        "id": patient.to_string(),
        "identifier": [{ "system": "urn:p360:patient", "value": patient.to_string() }],
    });
    if let Some(m) = &demo.member_id
        && let Some(a) = r["identifier"].as_array_mut()
    {
        a.push(json!({ "system": "urn:p360:member-id", "value": m }));
    }
    if demo.family.is_some() || !demo.given.is_empty() {
        let mut name = json!({});
        if let Some(f) = &demo.family {
            name["family"] = f.clone().into();
        }
        if !demo.given.is_empty() {
            name["given"] = demo.given.clone().into();
        }
        r["name"] = json!([name]);
    }
    if let Some(b) = demo.birth_date {
        r["birthDate"] = b.to_string().into();
    }
    r
}

/// A Bundle of `resources` (`searchset` with `total` for searches, `collection` for exports).
pub fn bundle(
    kind: &str,
    resources: Vec<Json>,
    total: Option<u64>,
    links: &[(&str, String)],
) -> Json {
    let mut b = json!({
        "resourceType": "Bundle",
        "type": kind,
        "entry": resources.into_iter().map(|r| {
            let full_url = format!("urn:p360:{}:{}", r["resourceType"].as_str().unwrap_or("Resource"), r["id"].as_str().unwrap_or(""));
            json!({ "fullUrl": full_url, "resource": r })
        }).collect::<Vec<_>>(),
    });
    if let Some(t) = total {
        b["total"] = t.into();
    }
    if !links.is_empty() {
        b["link"] = links
            .iter()
            .map(|(rel, url)| json!({ "relation": rel, "url": url }))
            .collect();
    }
    b
}

// ---------------------------------------------------------------------------------------------
// In

/// Reads a FHIR resource into a fact of `patient`, stated by `provenance`. `now` bounds dates.
pub fn from_resource(
    patient: &PatientId,
    resource: &Json,
    provenance: Provenance,
    now: DateTime<Utc>,
) -> Result<Fact, FhirError> {
    let rt = resource
        .get("resourceType")
        .and_then(Json::as_str)
        .ok_or_else(|| err("resourceType", "missing; expected a FHIR resource"))?;
    let rd = Reader {
        rt,
        r: resource,
        now,
    };
    if let Some(s) = resource.get("subject").or_else(|| resource.get("patient")) {
        let field = if resource.get("subject").is_some() {
            "subject"
        } else {
            "patient"
        };
        let reference = s.get("reference").and_then(Json::as_str).unwrap_or("");
        if reference != format!("Patient/{patient}") && !reference.is_empty() {
            return Err(err(
                format!("{rt}.{field}.reference"),
                "does not name this patient",
            ));
        }
    }
    let status = match resource
        .get("extension")
        .and_then(Json::as_array)
        .and_then(|a| a.iter().find(|e| e["url"] == STATUS_EXTENSION))
        .and_then(|e| e["valueCode"].as_str())
    {
        Some("confirmed") => Status::Confirmed,
        Some("entered-in-error") => Status::EnteredInError,
        Some("unconfirmed") => Status::Unconfirmed,
        Some(_) => return Err(err(format!("{rt}.extension"), "unknown fact status")),
        // Sources that state facts outright (claims, FHIR stores, providers) are confirmed.
        None if provenance.confidence.is_some_and(|c| c < 1.0) => Status::Unconfirmed,
        None => Status::Confirmed,
    };
    let body = match rt {
        "Observation" => FactBody::Observation(rd.observation()?),
        "Condition" => FactBody::Condition(Condition {
            code: rd.codes("code", true)?,
            clinical_status: match rd.coded_text("clinicalStatus").as_deref() {
                None | Some("active") | Some("recurrence") | Some("relapse") => {
                    ClinicalStatus::Active
                }
                Some("resolved") | Some("remission") => ClinicalStatus::Resolved,
                Some("inactive") => ClinicalStatus::Inactive,
                Some(_) => return Err(err("Condition.clinicalStatus", "unknown clinical status")),
            },
            onset: rd.opt_date("onsetDateTime")?,
            recorded: rd.opt_date("recordedDate")?,
        }),
        "MedicationStatement" => {
            let concept = resource
                .get("medicationCodeableConcept")
                .ok_or_else(|| err("MedicationStatement.medicationCodeableConcept", "required"))?;
            let code = rd.codes_of(concept, "medicationCodeableConcept", false)?;
            let text = concept
                .get("text")
                .and_then(Json::as_str)
                .map(str::to_owned)
                .or_else(|| code.first().and_then(|c| c.display.clone()))
                .ok_or_else(|| {
                    err(
                        "MedicationStatement.medicationCodeableConcept",
                        "needs a coding or a text",
                    )
                })?;
            FactBody::Medication(Medication {
                code,
                text,
                strength: None,
                form: None,
                dosage: resource["dosage"][0]["text"].as_str().map(str::to_owned),
                status: match resource.get("status").and_then(Json::as_str) {
                    Some("active") | Some("intended") | Some("on-hold") | None => {
                        MedicationStatus::Active
                    }
                    Some("stopped") | Some("not-taken") => MedicationStatus::Stopped,
                    Some("completed") => MedicationStatus::Completed,
                    Some("entered-in-error") => MedicationStatus::Stopped,
                    Some(_) => return Err(err("MedicationStatement.status", "unknown status")),
                },
                effective: rd.opt_when("effective")?,
            })
        }
        "Procedure" => FactBody::Procedure(Procedure {
            code: rd.codes("code", true)?,
            performed: rd
                .opt_when("performed")?
                .ok_or_else(|| err("Procedure.performed[x]", "required"))?,
        }),
        "AllergyIntolerance" => {
            let concept = resource
                .get("code")
                .ok_or_else(|| err("AllergyIntolerance.code", "required"))?;
            let code = rd.codes_of(concept, "code", false)?;
            let text = concept
                .get("text")
                .and_then(Json::as_str)
                .map(str::to_owned)
                .or_else(|| code.first().and_then(|c| c.display.clone()))
                .ok_or_else(|| err("AllergyIntolerance.code", "needs a coding or a text"))?;
            FactBody::Allergy(Allergy {
                code,
                text,
                reaction: resource["reaction"][0]["description"]
                    .as_str()
                    .map(str::to_owned),
                recorded: rd.opt_date("recordedDate")?,
            })
        }
        "Immunization" => FactBody::Immunization(Immunization {
            vaccine: rd.codes("vaccineCode", true)?,
            occurred: rd
                .opt_when("occurrence")?
                .ok_or_else(|| err("Immunization.occurrence[x]", "required"))?,
        }),
        "Encounter" => FactBody::Encounter(Encounter {
            class: resource["class"]["code"]
                .as_str()
                .ok_or_else(|| err("Encounter.class.code", "required"))?
                .to_owned(),
            kind: match resource.get("type").and_then(|t| t.get(0)) {
                Some(t) => rd.codes_of(t, "type[0]", false)?,
                None => Vec::new(),
            },
            period: {
                let start = rd
                    .date_at(&resource["period"]["start"], "period.start")?
                    .ok_or_else(|| err("Encounter.period.start", "required"))?;
                let end = rd.date_at(&resource["period"]["end"], "period.end")?;
                When::Period { start, end }
            },
            reason: match resource.get("reasonCode").and_then(Json::as_array) {
                Some(a) => {
                    let mut out = Vec::new();
                    for (i, c) in a.iter().enumerate() {
                        out.extend(rd.codes_of(c, &format!("reasonCode[{i}]"), false)?);
                    }
                    out
                }
                None => Vec::new(),
            },
            note: None,
            practitioner_npi: resource["participant"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|p| p["individual"]["identifier"]["system"] == NPI_SYSTEM)
                .and_then(|p| p["individual"]["identifier"]["value"].as_str())
                .map(str::to_owned),
        }),
        "DocumentReference" => {
            let att = &resource["content"][0]["attachment"];
            let id = resource["identifier"]
                .as_array()
                .and_then(|a| a.iter().find(|i| i["system"] == "urn:p360:document"))
                .and_then(|i| i["value"].as_str())
                .ok_or_else(|| {
                    err(
                        "DocumentReference.identifier",
                        "needs the urn:p360:document identifier",
                    )
                })?;
            FactBody::Document(Document {
                document_id: DocumentId::parse(id)
                    .map_err(|_| err("DocumentReference.identifier.value", "not a document id"))?,
                media_type: att["contentType"]
                    .as_str()
                    .ok_or_else(|| {
                        err(
                            "DocumentReference.content[0].attachment.contentType",
                            "required",
                        )
                    })?
                    .to_owned(),
                sha256: att["hash"]
                    .as_str()
                    .map(|h| {
                        use base64::Engine;
                        base64::engine::general_purpose::STANDARD
                            .decode(h)
                            .map(hex::encode)
                            .map_err(|_| {
                                err("DocumentReference.content[0].attachment.hash", "not base64")
                            })
                    })
                    .transpose()?
                    .unwrap_or_default(),
                size: att["size"].as_u64().unwrap_or(0),
                kind: match resource.get("type") {
                    Some(t) => rd.codes_of(t, "type", false)?,
                    None => Vec::new(),
                },
                date: rd
                    .opt_when_at(&resource["date"], "date")?
                    .ok_or_else(|| err("DocumentReference.date", "required"))?,
            })
        }
        other => {
            return Err(err(
                "resourceType",
                format!(
                    "{other} is not supported; expected Observation, Condition, MedicationStatement, Procedure, AllergyIntolerance, Immunization, Encounter or DocumentReference"
                ),
            ));
        }
    };
    let mut fact = Fact::new(patient.clone(), body, status, provenance);
    if let Some(sk) = fact.provenance.first().map(|p| p.source_kind)
        && sk == SourceKind::Ocr
        && fact.status == Status::Confirmed
    {
        // OCR never confirms on its own; only a person does.
        fact.status = Status::Unconfirmed;
    }
    Ok(fact)
}

struct Reader<'a> {
    rt: &'a str,
    r: &'a Json,
    now: DateTime<Utc>,
}

impl Reader<'_> {
    fn path(&self, field: &str) -> String {
        format!("{}.{field}", self.rt)
    }

    fn codes(&self, field: &str, required: bool) -> Result<Vec<Coding>, FhirError> {
        match self.r.get(field) {
            Some(c) => {
                let codes = self.codes_of(c, field, false)?;
                if required && codes.is_empty() {
                    return Err(err(
                        self.path(field),
                        "needs at least one coding of a known system",
                    ));
                }
                Ok(codes)
            }
            None if required => Err(err(self.path(field), "required")),
            None => Ok(Vec::new()),
        }
    }

    fn codes_of(
        &self,
        concept: &Json,
        field: &str,
        _required: bool,
    ) -> Result<Vec<Coding>, FhirError> {
        let mut out = Vec::new();
        let Some(list) = concept.get("coding") else {
            return Ok(out);
        };
        let list = list
            .as_array()
            .ok_or_else(|| err(self.path(&format!("{field}.coding")), "must be an array"))?;
        for (i, c) in list.iter().enumerate() {
            let at = self.path(&format!("{field}.coding[{i}]"));
            let system = c["system"]
                .as_str()
                .ok_or_else(|| err(format!("{at}.system"), "required"))?;
            let system = CodeSystem::from_uri(system).ok_or_else(|| {
                err(
                    format!("{at}.system"),
                    format!("unknown code system {}; p360 accepts LOINC, UCUM, ICD-10-CM, RxNorm, SNOMED CT, CVX, NDC and CPT", truncate(system)),
                )
            })?;
            let code = c["code"]
                .as_str()
                .ok_or_else(|| err(format!("{at}.code"), "required"))?;
            if !system.check_code(code) {
                return Err(err(
                    format!("{at}.code"),
                    format!("not a valid {} code", system_name(&system)),
                ));
            }
            out.push(Coding::new(system, code, c["display"].as_str()));
        }
        Ok(out)
    }

    fn coded_text(&self, field: &str) -> Option<String> {
        self.r[field]["coding"][0]["code"]
            .as_str()
            .map(str::to_owned)
    }

    fn check_not_future(&self, day: NaiveDate, at: &str) -> Result<(), FhirError> {
        // One day of slack: a patient east of UTC may enter "today" before UTC's today.
        if day > (self.now + chrono::Duration::days(1)).date_naive() {
            return Err(err(self.path(at), "is in the future"));
        }
        Ok(())
    }

    fn date_at(&self, v: &Json, at: &str) -> Result<Option<NaiveDate>, FhirError> {
        Ok(self.opt_when_at(v, at)?.map(|w| w.day()))
    }

    fn opt_date(&self, field: &str) -> Result<Option<NaiveDate>, FhirError> {
        self.date_at(&self.r[field], field)
    }

    fn opt_when_at(&self, v: &Json, at: &str) -> Result<Option<When>, FhirError> {
        let Some(s) = v.as_str() else {
            return if v.is_null() {
                Ok(None)
            } else {
                Err(err(self.path(at), "must be a date or dateTime string"))
            };
        };
        let when = if let Ok(t) = DateTime::parse_from_rfc3339(s) {
            When::Instant(t.with_timezone(&Utc))
        } else if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
            When::Date(d)
        } else {
            return Err(err(
                self.path(at),
                "is not a FHIR date (YYYY-MM-DD) or dateTime with a time zone",
            ));
        };
        self.check_not_future(when.day(), at)?;
        Ok(Some(when))
    }

    /// `<field>DateTime` or `<field>Period`.
    fn opt_when(&self, field: &str) -> Result<Option<When>, FhirError> {
        let dt = format!("{field}DateTime");
        if let Some(w) = self.opt_when_at(&self.r[&dt], &dt)? {
            return Ok(Some(w));
        }
        let pf = format!("{field}Period");
        if let Some(p) = self.r.get(&pf) {
            let start = self
                .date_at(&p["start"], &format!("{pf}.start"))?
                .ok_or_else(|| err(self.path(&format!("{pf}.start")), "required"))?;
            let end = self.date_at(&p["end"], &format!("{pf}.end"))?;
            return Ok(Some(When::Period { start, end }));
        }
        Ok(None)
    }

    fn observation(&self) -> Result<Observation, FhirError> {
        let kind = match self.r["category"][0]["coding"][0]["code"].as_str() {
            Some("laboratory") | None => ObservationKind::Laboratory,
            Some("vital-signs") => ObservationKind::VitalSigns,
            Some("activity") => ObservationKind::Activity,
            Some(_) => {
                return Err(err(
                    "Observation.category",
                    "expected laboratory, vital-signs or activity",
                ));
            }
        };
        let code = self.codes("code", true)?;
        let effective = self.opt_when("effective")?.ok_or_else(|| {
            err(
                "Observation.effective[x]",
                "required: when was this measured?",
            )
        })?;
        let value = if let Some(q) = self.r.get("valueQuantity") {
            let v = q["value"]
                .as_f64()
                .ok_or_else(|| err("Observation.valueQuantity.value", "required, a number"))?;
            let unit = q["code"]
                .as_str()
                .or_else(|| q["unit"].as_str())
                .ok_or_else(|| err("Observation.valueQuantity.code", "required, a UCUM unit"))?;
            if let Some(sys) = q["system"].as_str()
                && sys != CodeSystem::Ucum.uri()
            {
                return Err(err(
                    "Observation.valueQuantity.system",
                    "units must be UCUM (http://unitsofmeasure.org)",
                ));
            }
            ucum::parse(unit).map_err(|e| err("Observation.valueQuantity.code", e.to_string()))?;
            let comparator = match q["comparator"].as_str() {
                None => None,
                Some(c) => Some(Comparator::parse(c).ok_or_else(|| {
                    err(
                        "Observation.valueQuantity.comparator",
                        "expected <, <=, >= or >",
                    )
                })?),
            };
            Some(Value::Quantity {
                value: v,
                unit: unit.to_owned(),
                comparator,
            })
        } else if let Some(s) = self.r.get("valueString") {
            Some(Value::Text {
                text: s
                    .as_str()
                    .ok_or_else(|| err("Observation.valueString", "must be a string"))?
                    .to_owned(),
            })
        } else if let Some(c) = self.r.get("valueCodeableConcept") {
            self.codes_of(c, "valueCodeableConcept", false)?
                .into_iter()
                .next()
                .map(|coding| Value::Coded { coding })
        } else {
            None
        };
        let interpretation = self.r["interpretation"][0]["coding"][0]["code"]
            .as_str()
            .and_then(Interpretation::from_code);
        let reference_range = self.r["referenceRange"].get(0).map(|rr| ReferenceRange {
            low: rr["low"]["value"].as_f64(),
            high: rr["high"]["value"].as_f64(),
            unit: rr["low"]["code"]
                .as_str()
                .or_else(|| rr["high"]["code"].as_str())
                .map(str::to_owned),
            text: rr["text"].as_str().map(str::to_owned),
        });
        Ok(Observation {
            kind,
            code,
            value,
            effective,
            reference_range,
            interpretation,
        })
    }
}

fn truncate(s: &str) -> String {
    s.chars().take(80).collect()
}

fn system_name(s: &CodeSystem) -> &'static str {
    match s {
        CodeSystem::Loinc => "LOINC",
        CodeSystem::Ucum => "UCUM",
        CodeSystem::Icd10Cm => "ICD-10-CM",
        CodeSystem::RxNorm => "RxNorm",
        CodeSystem::SnomedCt => "SNOMED CT",
        CodeSystem::Cvx => "CVX",
        CodeSystem::Ndc => "NDC",
        CodeSystem::Cpt => "CPT",
    }
}
