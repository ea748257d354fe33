//! An [`Extraction`] as model facts (what the graph stores) and as a FHIR R4 Bundle (what
//! `p360 extract` writes), each fact with per-field provenance: document, page, box, engine.

use crate::clinical::{Extraction, LabValue, MedicationState, PersonName};
use crate::layout::Engine;
use chrono::{DateTime, NaiveDate, Utc};
use p360_events::{DocumentId, PatientId};
use p360_model::{
    ClinicalStatus, CodeSystem, Coding, Comparator, Condition, Fact, FactBody, Interpretation,
    Medication, MedicationStatus, Observation, ObservationKind, Producer, Provenance,
    ReferenceRange, SourceKind, Status, Value, When,
};
use serde_json::{Value as Json, json};

/// Facts at or above this confidence enter the record confirmed; below it they wait for the
/// patient's review.
pub const CONFIRM_AT: f32 = 0.9;

/// What the facts are about and where they were read.
pub struct Context<'a> {
    pub patient: &'a PatientId,
    pub document: &'a DocumentId,
    pub engine: &'a Engine,
    pub recorded: DateTime<Utc>,
    /// Used when the document prints no date of its own.
    pub fallback_date: NaiveDate,
}

fn provenance(ctx: &Context<'_>, src: &crate::clinical::Source) -> Provenance {
    let mut p = Provenance::new(SourceKind::Ocr, ctx.document.to_string(), ctx.recorded);
    p.document = Some(ctx.document.clone());
    p.page = Some(src.page);
    p.region = Some(src.bbox.into());
    p.producer = Some(Producer {
        name: format!("p360-extract+{}", ctx.engine.name),
        version: format!("{}+{}", env!("CARGO_PKG_VERSION"), ctx.engine.version),
    });
    p.confidence = Some((src.confidence * 100.0).round() / 100.0);
    p
}

fn status(confidence: f32) -> Status {
    if confidence >= CONFIRM_AT {
        Status::Confirmed
    } else {
        Status::Unconfirmed
    }
}

/// The facts of an extraction (labs, conditions, medications).
pub fn to_facts(x: &Extraction, ctx: &Context<'_>) -> Vec<Fact> {
    let day = x
        .header
        .date
        .as_ref()
        .map(|d| d.value)
        .unwrap_or(ctx.fallback_date);
    let mut out = Vec::new();
    for lab in &x.labs {
        let value = match &lab.value {
            LabValue::Quantity { value, comparator } => Value::Quantity {
                value: *value,
                unit: lab.ucum.clone().unwrap_or_else(|| "1".into()),
                comparator: comparator.as_deref().and_then(Comparator::parse),
            },
            LabValue::Text { text } => Value::Text { text: text.clone() },
        };
        let body = FactBody::Observation(Observation {
            kind: ObservationKind::Laboratory,
            code: vec![Coding::new(
                CodeSystem::Loinc,
                &lab.loinc,
                Some(&lab.display),
            )],
            value: Some(value),
            effective: When::Date(lab.date.unwrap_or(day)),
            reference_range: (lab.ref_low.is_some()
                || lab.ref_high.is_some()
                || lab.ref_text.is_some())
            .then(|| ReferenceRange {
                low: lab.ref_low,
                high: lab.ref_high,
                unit: lab.ucum.clone(),
                text: lab.ref_text.clone(),
            }),
            interpretation: lab.flag.as_deref().and_then(Interpretation::from_code),
        });
        out.push(Fact::new(
            ctx.patient.clone(),
            body,
            status(lab.source.confidence),
            provenance(ctx, &lab.source),
        ));
    }
    for c in &x.conditions {
        let body = FactBody::Condition(Condition {
            code: vec![Coding::new(
                CodeSystem::Icd10Cm,
                &c.icd10cm,
                Some(&c.display),
            )],
            clinical_status: ClinicalStatus::Active,
            onset: None,
            recorded: Some(day),
        });
        out.push(Fact::new(
            ctx.patient.clone(),
            body,
            status(c.source.confidence),
            provenance(ctx, &c.source),
        ));
    }
    for m in &x.medications {
        let body = FactBody::Medication(Medication {
            code: m
                .rxcui
                .iter()
                .map(|c| Coding::new(CodeSystem::RxNorm, c, Some(&m.ingredient)))
                .collect(),
            text: m.text.clone(),
            strength: m.strength.clone(),
            form: m.form.clone(),
            dosage: m.sig.clone(),
            status: match m.state {
                MedicationState::Active => MedicationStatus::Active,
                MedicationState::Stopped => MedicationStatus::Stopped,
            },
            effective: Some(When::Date(day)),
        });
        out.push(Fact::new(
            ctx.patient.clone(),
            body,
            status(m.source.confidence),
            provenance(ctx, &m.source),
        ));
    }
    out
}

fn human_name(n: &PersonName) -> Json {
    json!({ "family": n.family, "given": n.given, "text": n.as_printed })
}

/// A FHIR R4 `collection` Bundle: Patient (as printed on the document), Practitioner,
/// DiagnosticReport (lab reports) or Encounter (visits, discharges), DocumentReference, and the
/// facts' resources.
pub fn to_bundle(x: &Extraction, facts: &[Fact], ctx: &Context<'_>, media_type: &str) -> Json {
    use crate::clinical::DocumentKind;
    let patient_ref = format!("Patient/{}", ctx.patient);
    let mut patient = json!({ "resourceType": "Patient", "id": ctx.patient.to_string() });
    if let Some(p) = &x.header.patient {
        patient["name"] = json!([human_name(&p.value)]);
    }
    if let Some(b) = &x.header.birth_date {
        patient["birthDate"] = b.value.to_string().into();
    }
    if let Some(s) = &x.header.sex {
        patient["gender"] = s.value.clone().into();
    }
    if let Some(m) = &x.header.mrn {
        patient["identifier"] = json!([{ "type": { "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR" }] }, "value": m.value }]);
    }
    let mut resources = vec![patient];
    let practitioner = x.header.provider.as_ref().map(|p| {
        json!({ "resourceType": "Practitioner", "id": format!("{}-provider", ctx.document), "name": [human_name(&p.value)] })
    });
    let performer = x.header.provider.as_ref().map(|p| {
        json!([{ "reference": format!("Practitioner/{}-provider", ctx.document), "display": format!("{} {}", p.value.given.join(" "), p.value.family) }])
    });
    if let Some(p) = practitioner {
        resources.push(p);
    }
    let date = x.header.date.as_ref().map(|d| d.value.to_string());
    let observations: Vec<Json> = facts
        .iter()
        .filter(|f| matches!(f.body, FactBody::Observation(_)))
        .map(|f| json!({ "reference": format!("Observation/{}", f.id) }))
        .collect();
    match x.kind {
        DocumentKind::LabReport | DocumentKind::Unknown if !observations.is_empty() => {
            let mut r = json!({
                "resourceType": "DiagnosticReport", "id": format!("{}-report", ctx.document),
                "status": "final", "code": { "coding": [{ "system": "http://loinc.org", "code": "11502-2", "display": "Laboratory report" }] },
                "subject": { "reference": patient_ref }, "result": observations,
            });
            if let Some(d) = &date {
                r["effectiveDateTime"] = d.clone().into();
            }
            if let Some(p) = &performer {
                r["performer"] = p.clone();
            }
            resources.push(r);
        }
        DocumentKind::VisitSummary | DocumentKind::DischargeSummary => {
            let class = if x.kind == DocumentKind::DischargeSummary {
                "IMP"
            } else {
                "AMB"
            };
            let mut r = json!({
                "resourceType": "Encounter", "id": format!("{}-encounter", ctx.document), "status": "finished",
                "class": { "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": class },
                "subject": { "reference": patient_ref },
            });
            if let Some(d) = &date {
                let start = x
                    .header
                    .admission_date
                    .as_ref()
                    .map(|a| a.value.to_string())
                    .unwrap_or_else(|| d.clone());
                r["period"] = json!({ "start": start, "end": d });
            }
            if let Some(p) = &performer {
                r["participant"] = json!([{ "individual": p[0] }]);
            }
            resources.push(r);
        }
        _ => {}
    }
    let mut docref = json!({
        "resourceType": "DocumentReference", "id": ctx.document.to_string(), "status": "current",
        "subject": { "reference": patient_ref },
        "content": [{ "attachment": { "contentType": media_type } }],
    });
    if let Some(d) = &date {
        docref["date"] = format!("{d}T00:00:00Z").into();
    }
    resources.push(docref);
    for f in facts {
        let mut r = p360_model::fhir::to_resource(f);
        r["subject"] = json!({ "reference": patient_ref });
        // FHIR readers (and the scorer) expect `<0.1` as printed text.
        if let FactBody::Observation(o) = &f.body
            && let Some(Value::Quantity {
                comparator: Some(c),
                value,
                ..
            }) = &o.value
            && let Some(obj) = r.as_object_mut()
        {
            obj.remove("valueQuantity");
            obj.insert(
                "valueString".into(),
                format!("{}{}", c.as_str(), value).into(),
            );
        }
        if let FactBody::Medication(m) = &f.body {
            let name = m
                .code
                .first()
                .and_then(|c| c.display.clone())
                .unwrap_or_else(|| m.text.clone());
            r["medicationCodeableConcept"]["text"] = m.text.clone().into();
            if m.code.is_empty() {
                r["medicationCodeableConcept"]["coding"] = json!([{ "display": name }]);
            }
        }
        resources.push(r);
    }
    p360_model::fhir::bundle("collection", resources, None, &[])
}
