//! The offline output: `links.ndjson` lines and one FHIR R4 Bundle per member, each fact a
//! resource with one Provenance naming every source record.

use crate::feeds::roster::Member;
use crate::person::Sex;
use crate::resolve::{FactType, MemberFacts, ResolvedFact};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

pub const MEMBER_ID_SYSTEM: &str = "https://payor.example/member-id";
pub const FEED_RECORD_SYSTEM: &str = "urn:p360:feed-record";
const NPI: &str = "http://hl7.org/fhir/sid/us-npi";
const UCUM: &str = "http://unitsofmeasure.org";

/// Vital-sign LOINC codes (the FHIR vital signs profile's), for the Observation category.
const VITALS: &[&str] = &[
    "85354-9", "8480-6", "8462-4", "8867-4", "29463-7", "39156-5", "8302-2", "8310-5", "9279-1",
    "59408-5", "2708-6",
];

/// Whether a LOINC code is a vital sign (the Observation's category).
pub fn is_vital(loinc: &str) -> bool {
    VITALS.contains(&loinc)
}

/// One `links.ndjson` line. `identity` numbers the distinct demographics the matcher decided
/// on (records with the same ones share the decision, and a review or unlink applies to all).
pub fn link_line(
    source: &str,
    record: &str,
    member: Option<&str>,
    decision: &str,
    score: Option<f64>,
    identity: u32,
) -> String {
    let v = json!({
        "source": source,
        "record": record,
        "member_id": member,
        "decision": decision,
        "score": score,
        "identity": identity,
    });
    v.to_string()
}

/// A stable resource id from the member and the fact's key.
fn fact_id(member: &str, key: &str) -> String {
    let d = Sha256::digest(format!("{member}\u{1f}{key}").as_bytes());
    hex::encode(&d[..12])
}

fn coding(system: &str, code: &str, display: &Option<String>) -> Value {
    let mut c = json!({ "system": system, "code": code });
    if let Some(d) = display {
        c["display"] = d.clone().into();
    }
    c
}

fn resource(member: &str, id: &str, f: &ResolvedFact) -> Value {
    let subject = json!({ "reference": format!("Patient/{member}") });
    let date = f.date.map(|d| d.to_string());
    let code = json!({ "coding": [coding(&f.system, &f.code, &f.display)] });
    match f.kind {
        FactType::Condition => json!({
            "resourceType": "Condition", "id": id,
            "clinicalStatus": { "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active" }] },
            "verificationStatus": { "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/condition-ver-status", "code": "confirmed" }] },
            "code": code, "subject": subject, "onsetDateTime": date,
        }),
        FactType::Observation => {
            let category = if is_vital(&f.code) {
                "vital-signs"
            } else {
                "laboratory"
            };
            let mut q = json!({ "value": f.value });
            if let Some(c) = &f.comparator {
                q["comparator"] = c.clone().into();
            }
            if let Some(u) = &f.unit {
                q["unit"] = u.clone().into();
                q["system"] = UCUM.into();
                q["code"] = u.clone().into();
            }
            json!({
                "resourceType": "Observation", "id": id, "status": "final",
                "category": [{ "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": category }] }],
                "code": code, "subject": subject, "effectiveDateTime": date, "valueQuantity": q,
            })
        }
        FactType::Medication => {
            let mut period = json!({ "start": date });
            if let Some(last) = f.fills.iter().next_back() {
                period["end"] = last.to_string().into();
            }
            let mut r = json!({
                "resourceType": "MedicationStatement", "id": id, "status": "active",
                "medicationCodeableConcept": code, "subject": subject, "effectivePeriod": period,
            });
            if !f.fills.is_empty() {
                r["note"] = json!([{ "text": format!("{} pharmacy fills", f.fills.len()) }]);
            }
            r
        }
        FactType::Encounter => {
            let mut r = json!({
                "resourceType": "Encounter", "id": id, "status": "finished",
                "class": { "system": f.system, "code": f.code },
                "subject": subject, "period": { "start": date },
            });
            if let Some(npi) = &f.npi {
                r["participant"] =
                    json!([{ "individual": { "identifier": { "system": NPI, "value": npi } } }]);
            }
            if let Some(v) = &f.visit_code {
                r["type"] = json!([{ "coding": [{ "system": crate::resolve::CPT, "code": v }] }]);
            }
            r
        }
        FactType::Procedure => json!({
            "resourceType": "Procedure", "id": id, "status": "completed",
            "code": code, "subject": subject, "performedDateTime": date,
        }),
        FactType::Immunization => json!({
            "resourceType": "Immunization", "id": id, "status": "completed",
            "vaccineCode": code, "patient": subject, "occurrenceDateTime": date,
        }),
        FactType::Allergy => {
            let mut r = json!({
                "resourceType": "AllergyIntolerance", "id": id,
                "clinicalStatus": { "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical", "code": "active" }] },
                "verificationStatus": { "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification", "code": "confirmed" }] },
                "code": code, "patient": subject,
            });
            if let Some(d) = date {
                r["recordedDate"] = d.into();
            }
            r
        }
    }
}

fn patient(m: &Member) -> Value {
    let p = &m.person;
    let mut r = json!({
        "resourceType": "Patient", "id": m.member_id,
        "identifier": [{
            "type": { "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MB" }] },
            "system": MEMBER_ID_SYSTEM, "value": m.member_id,
        }],
    });
    let mut name = json!({ "use": "official" });
    if let Some(l) = &p.last {
        name["family"] = l.clone().into();
    }
    let given: Vec<&String> = p.first.iter().chain(p.middle.iter()).collect();
    if !given.is_empty() {
        name["given"] = json!(given);
    }
    if let Some(s) = &p.suffix {
        name["suffix"] = json!([s]);
    }
    r["name"] = json!([name]);
    if let Some(b) = p.birth {
        r["birthDate"] = b.to_string().into();
    }
    r["gender"] = match p.sex {
        Some(Sex::Male) => "male",
        Some(Sex::Female) => "female",
        None => "unknown",
    }
    .into();
    r
}

/// The member's record as a FHIR R4 `collection` Bundle. `recorded` stamps the Provenance.
pub fn bundle(m: &Member, facts: &MemberFacts, recorded: &str) -> Value {
    let mut entries = vec![
        json!({ "fullUrl": format!("urn:p360:Patient:{}", m.member_id), "resource": patient(m) }),
    ];
    for (key, f) in &facts.facts {
        let id = fact_id(&m.member_id, key);
        let r = resource(&m.member_id, &id, f);
        let kind = r["resourceType"].as_str().unwrap_or("Resource").to_string();
        entries.push(json!({ "fullUrl": format!("urn:p360:{kind}:{id}"), "resource": r }));
        let entity: Vec<Value> = f
            .sources
            .iter()
            .map(|s| json!({ "role": "source", "what": { "identifier": { "system": FEED_RECORD_SYSTEM, "value": s } } }))
            .collect();
        entries.push(json!({
            "fullUrl": format!("urn:p360:Provenance:prov-{id}"),
            "resource": {
                "resourceType": "Provenance", "id": format!("prov-{id}"),
                "target": [{ "reference": format!("{kind}/{id}") }],
                "recorded": recorded,
                "agent": [{
                    "type": { "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/provenance-participant-type", "code": "assembler" }] },
                    "who": { "display": "p360 enrich" },
                }],
                "entity": entity,
            }
        }));
    }
    json!({
        "resourceType": "Bundle",
        "type": "collection",
        "timestamp": recorded,
        "entry": entries,
    })
}
