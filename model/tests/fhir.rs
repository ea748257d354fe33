//! FHIR mapping: round trips for every fact kind, identity of "the same fact", and clear errors.
#![allow(clippy::unwrap_used)]

mod samples;

use p360_model::fhir::{from_resource, to_resource};
use p360_model::*;
use samples::*;
use serde_json::json;

#[test]
fn every_kind_round_trips_through_fhir() {
    for fact in facts() {
        let resource = to_resource(&fact);
        assert_eq!(resource["id"], fact.id.as_str());
        let back = from_resource(&patient(), &resource, manual_source(), at()).unwrap();
        assert_eq!(
            back.body,
            strip_lossy(&fact.body),
            "{}",
            fact.body.resource_type()
        );
        assert_eq!(back.id, fact.id, "the same content gives the same id");
        assert_eq!(back.status, fact.status);
    }
}

/// Strength and form travel as free-text notes in MedicationStatement and are not read back
/// (extraction parses them from text again): compare without them.
fn strip_lossy(body: &FactBody) -> FactBody {
    let mut b = body.clone();
    match &mut b {
        FactBody::Medication(m) => {
            m.strength = None;
            m.form = None;
        }
        FactBody::Encounter(e) => e.note = None,
        _ => {}
    }
    b
}

#[test]
fn same_fact_from_two_sources_is_one_fact() {
    let body = bodies().remove(0);
    let mut from_photo = Fact::new(patient(), body.clone(), Status::Unconfirmed, ocr_source());
    let typed = Fact::new(patient(), body, Status::Confirmed, manual_source());
    assert_eq!(from_photo.id, typed.id);
    assert!(from_photo.attach(typed.provenance[0].clone()));
    assert!(
        !from_photo.attach(manual_source()),
        "the same source attaches once"
    );
    assert_eq!(from_photo.provenance.len(), 2);

    // A different value, day or patient is another fact.
    let mut other = bodies().remove(0);
    if let FactBody::Observation(o) = &mut other {
        o.value = Some(Value::Quantity {
            value: 7.3,
            unit: "%".into(),
            comparator: None,
        });
    }
    assert_ne!(Fact::derive_id(&patient(), &other), from_photo.id);
    let someone = p360_events::PatientId::parse("pat-0002").unwrap();
    assert_ne!(Fact::derive_id(&someone, &bodies()[0]), from_photo.id);
}

fn error_of(resource: serde_json::Value) -> String {
    from_resource(&patient(), &resource, manual_source(), at())
        .unwrap_err()
        .to_string()
}

#[test]
fn bad_resources_name_the_field() {
    let obs = |patch: serde_json::Value| {
        let mut r = json!({
            "resourceType": "Observation", "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "2345-7"}]},
            "subject": {"reference": "Patient/pat-0001"},
            "effectiveDateTime": "2026-03-17",
            "valueQuantity": {"value": 142, "unit": "mg/dL", "system": "http://unitsofmeasure.org", "code": "mg/dL"}
        });
        for (k, v) in patch.as_object().unwrap() {
            if v.is_null() {
                r.as_object_mut().unwrap().remove(k);
            } else {
                r[k] = v.clone();
            }
        }
        r
    };
    assert!(from_resource(&patient(), &obs(json!({})), manual_source(), at()).is_ok());
    assert_eq!(
        error_of(obs(
            json!({"code": {"coding": [{"system": "http://example.org/my-codes", "code": "GLU"}]}})
        )),
        "Observation.code.coding[0].system: unknown code system http://example.org/my-codes; p360 accepts LOINC, UCUM, ICD-10-CM, RxNorm, SNOMED CT, CVX, NDC and CPT"
    );
    assert_eq!(
        error_of(obs(
            json!({"code": {"coding": [{"system": "http://loinc.org", "code": "glucose"}]}})
        )),
        "Observation.code.coding[0].code: not a valid LOINC code"
    );
    let unit = error_of(obs(
        json!({"valueQuantity": {"value": 142, "code": "milligrams per deciliter"}}),
    ));
    assert!(
        unit.starts_with(
            "Observation.valueQuantity.code: 'milligrams per deciliter' is not a UCUM unit"
        ),
        "{unit}"
    );
    assert_eq!(
        error_of(obs(json!({"effectiveDateTime": "2099-01-01"}))),
        "Observation.effectiveDateTime: is in the future"
    );
    assert_eq!(
        error_of(obs(json!({"effectiveDateTime": "17/03/2026"}))),
        "Observation.effectiveDateTime: is not a FHIR date (YYYY-MM-DD) or dateTime with a time zone"
    );
    assert_eq!(
        error_of(obs(json!({"effectiveDateTime": null}))),
        "Observation.effective[x]: required: when was this measured?"
    );
    assert_eq!(
        error_of(obs(json!({"subject": {"reference": "Patient/pat-9999"}}))),
        "Observation.subject.reference: does not name this patient"
    );
    assert_eq!(
        error_of(json!({"resourceType": "Claim"})),
        "resourceType: Claim is not supported; expected Observation, Condition, MedicationStatement, Procedure, AllergyIntolerance, Immunization, Encounter or DocumentReference"
    );
    assert_eq!(
        error_of(json!({"status": "final"})),
        "resourceType: missing; expected a FHIR resource"
    );
    let cond = json!({"resourceType": "Condition", "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "diabetes"}]}});
    assert_eq!(
        error_of(cond),
        "Condition.code.coding[0].code: not a valid ICD-10-CM code"
    );
}

#[test]
fn ocr_facts_are_never_confirmed_by_the_machine() {
    let mut r = to_resource(&facts()[0]);
    r["extension"][0]["valueCode"] = "confirmed".into();
    let f = from_resource(&patient(), &r, ocr_source(), at()).unwrap();
    assert_eq!(f.status, Status::Unconfirmed);
}
