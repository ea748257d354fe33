//! One fact of every kind, as the pipeline would produce them.
#![allow(clippy::unwrap_used, dead_code, unreachable_pub)]

use chrono::{DateTime, NaiveDate, Utc};
use p360_events::{DocumentId, PatientId, UserId};
use p360_model::*;

pub fn patient() -> PatientId {
    PatientId::parse("pat-0001").unwrap()
}

pub fn at() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-03-18T08:15:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

pub fn day(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

pub fn ocr_source() -> Provenance {
    Provenance {
        document: Some(DocumentId::parse("doc-7f3a").unwrap()),
        page: Some(1),
        region: Some(BoundingBox {
            x: 120,
            y: 840,
            width: 900,
            height: 38,
        }),
        producer: Some(Producer {
            name: "p360-extract".into(),
            version: "0.1.0".into(),
        }),
        confidence: Some(0.93),
        ..Provenance::new(SourceKind::Ocr, "doc-7f3a", at())
    }
}

pub fn manual_source() -> Provenance {
    Provenance {
        author: Some(UserId::parse("usr-0001").unwrap()),
        ..Provenance::new(SourceKind::ManualEntry, "usr-0001", at())
    }
}

pub fn bodies() -> Vec<FactBody> {
    vec![
        FactBody::Observation(Observation {
            kind: ObservationKind::Laboratory,
            code: vec![Coding::new(
                CodeSystem::Loinc,
                "4548-4",
                Some("Hemoglobin A1c/Hemoglobin.total in Blood"),
            )],
            value: Some(Value::Quantity {
                value: 7.2,
                unit: "%".into(),
                comparator: None,
            }),
            effective: When::Date(day("2026-03-17")),
            reference_range: Some(ReferenceRange {
                low: Some(4.0),
                high: Some(5.6),
                unit: Some("%".into()),
                text: None,
            }),
            interpretation: Some(Interpretation::High),
        }),
        FactBody::Observation(Observation {
            kind: ObservationKind::Laboratory,
            code: vec![Coding::new(
                CodeSystem::Loinc,
                "1988-5",
                Some("C reactive protein"),
            )],
            value: Some(Value::Quantity {
                value: 0.5,
                unit: "mg/dL".into(),
                comparator: Some(Comparator::Lt),
            }),
            effective: When::Instant(at()),
            reference_range: Some(ReferenceRange {
                low: None,
                high: None,
                unit: None,
                text: Some("<1.0".into()),
            }),
            interpretation: None,
        }),
        FactBody::Observation(Observation {
            kind: ObservationKind::VitalSigns,
            code: vec![Coding::new(
                CodeSystem::Loinc,
                "29463-7",
                Some("Body weight"),
            )],
            value: Some(Value::Quantity {
                value: 81.5,
                unit: "kg".into(),
                comparator: None,
            }),
            effective: When::Date(day("2026-03-01")),
            reference_range: None,
            interpretation: None,
        }),
        FactBody::Observation(Observation {
            kind: ObservationKind::Laboratory,
            code: vec![Coding::new(
                CodeSystem::Loinc,
                "5196-1",
                Some("Hepatitis B surface Ag"),
            )],
            value: Some(Value::Text {
                text: "Negative".into(),
            }),
            effective: When::Date(day("2026-02-10")),
            reference_range: None,
            interpretation: Some(Interpretation::Normal),
        }),
        FactBody::Condition(Condition {
            code: vec![Coding::new(
                CodeSystem::Icd10Cm,
                "E11.9",
                Some("Type 2 diabetes mellitus without complications"),
            )],
            clinical_status: ClinicalStatus::Active,
            onset: Some(day("2019-06-01")),
            recorded: Some(day("2026-03-17")),
        }),
        FactBody::Medication(Medication {
            code: vec![Coding::new(CodeSystem::RxNorm, "6809", Some("metformin"))],
            text: "Metformin 500 mg tablet".into(),
            strength: None,
            form: None,
            dosage: Some("1 tablet by mouth twice daily".into()),
            status: MedicationStatus::Active,
            effective: Some(When::Period {
                start: day("2019-06-01"),
                end: None,
            }),
        }),
        FactBody::Procedure(Procedure {
            code: vec![Coding::new(
                CodeSystem::Cpt,
                "45378",
                Some("Colonoscopy, diagnostic"),
            )],
            performed: When::Date(day("2024-05-02")),
        }),
        FactBody::Allergy(Allergy {
            code: vec![Coding::new(
                CodeSystem::RxNorm,
                "7980",
                Some("penicillin G"),
            )],
            text: "Penicillin".into(),
            reaction: Some("hives".into()),
            recorded: Some(day("2015-01-20")),
        }),
        FactBody::Immunization(Immunization {
            vaccine: vec![Coding::new(
                CodeSystem::Cvx,
                "140",
                Some("Influenza, seasonal, injectable, preservative free"),
            )],
            occurred: When::Date(day("2025-10-04")),
        }),
        FactBody::Encounter(Encounter {
            class: "AMB".into(),
            kind: vec![Coding::new(
                CodeSystem::SnomedCt,
                "185349003",
                Some("Encounter for check up"),
            )],
            period: When::Period {
                start: day("2026-03-17"),
                end: Some(day("2026-03-17")),
            },
            reason: vec![Coding::new(CodeSystem::Icd10Cm, "E11.9", None)],
            note: None,
            practitioner_npi: Some("1245319599".into()),
        }),
        FactBody::Document(Document {
            document_id: DocumentId::parse("doc-7f3a").unwrap(),
            media_type: "image/jpeg".into(),
            sha256: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855".into(),
            size: 48213,
            kind: vec![Coding::new(
                CodeSystem::Loinc,
                "11502-2",
                Some("Laboratory report"),
            )],
            // DocumentReference.date is an instant in FHIR.
            date: When::Instant(at()),
        }),
    ]
}

pub fn facts() -> Vec<Fact> {
    bodies()
        .into_iter()
        .map(|b| {
            let mut f = Fact::new(patient(), b, Status::Unconfirmed, ocr_source());
            f.attach(manual_source());
            f
        })
        .collect()
}
