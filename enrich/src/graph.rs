//! Resolved facts as the graph's facts: one `p360_model::Fact` per resolved fact, with one
//! Provenance per source record (`payor_feed`, `<batch>/<file>#<record>`), so that "confirmed by
//! N sources" is the length of its provenance and unlinking a source removes exactly its
//! entries.

use crate::resolve::{FactType, MemberFacts, ResolvedFact};
use chrono::{DateTime, Utc};
use p360_events::PatientId;
use p360_model::{
    Allergy, ClinicalStatus, CodeSystem, Coding, Comparator, Condition, Encounter, Fact, FactBody,
    FactId, Immunization, Medication, MedicationStatus, Observation, ObservationKind, Procedure,
    Producer, Provenance, SourceKind, Status, Value, When,
};
use sha2::{Digest, Sha256};

/// The fact's id: from the patient and the resolution key (not the date: a condition's onset
/// moves earlier when an older source arrives, and it must stay the same fact).
fn fact_id(patient: &PatientId, key: &str, kind: FactType) -> Option<FactId> {
    let d = Sha256::digest(format!("{patient}\u{1f}{key}").as_bytes());
    let prefix = match kind {
        FactType::Condition => "cond",
        FactType::Observation => "obs",
        FactType::Medication => "med",
        FactType::Encounter => "enc",
        FactType::Procedure => "proc",
        FactType::Immunization => "imm",
        FactType::Allergy => "alg",
    };
    FactId::parse(&format!("{prefix}-{}", &hex::encode(d)[..24])).ok()
}

fn coding(system: CodeSystem, f: &ResolvedFact) -> Coding {
    Coding::new(system, f.code.clone(), f.display.as_deref())
}

fn body(f: &ResolvedFact) -> Option<FactBody> {
    let date = f.date?;
    Some(match f.kind {
        FactType::Condition => FactBody::Condition(Condition {
            code: vec![coding(CodeSystem::Icd10Cm, f)],
            clinical_status: ClinicalStatus::Active,
            onset: Some(date),
            recorded: None,
        }),
        FactType::Observation => FactBody::Observation(Observation {
            kind: if crate::output::is_vital(&f.code) {
                ObservationKind::VitalSigns
            } else {
                ObservationKind::Laboratory
            },
            code: vec![coding(CodeSystem::Loinc, f)],
            value: f.value.map(|value| Value::Quantity {
                value,
                unit: f.unit.clone().unwrap_or_else(|| "1".into()),
                comparator: f.comparator.as_deref().and_then(Comparator::parse),
            }),
            effective: When::Date(date),
            reference_range: None,
            interpretation: None,
        }),
        FactType::Medication => FactBody::Medication(Medication {
            code: vec![coding(CodeSystem::RxNorm, f)],
            text: f
                .display
                .clone()
                .unwrap_or_else(|| format!("RxNorm {}", f.code)),
            strength: None,
            form: None,
            dosage: None,
            status: MedicationStatus::Active,
            effective: Some(When::Period {
                start: date,
                end: f.fills.iter().next_back().copied(),
            }),
        }),
        FactType::Encounter => FactBody::Encounter(Encounter {
            class: f.code.clone(),
            kind: f
                .visit_code
                .iter()
                .map(|c| Coding::new(CodeSystem::Cpt, c.clone(), None))
                .collect(),
            period: When::Date(date),
            reason: Vec::new(),
            note: None,
            practitioner_npi: f.npi.clone(),
        }),
        FactType::Procedure => FactBody::Procedure(Procedure {
            code: vec![coding(CodeSystem::Cpt, f)],
            performed: When::Date(date),
        }),
        FactType::Immunization => FactBody::Immunization(Immunization {
            vaccine: vec![coding(CodeSystem::Cvx, f)],
            occurred: When::Date(date),
        }),
        FactType::Allergy => FactBody::Allergy(Allergy {
            code: vec![coding(CodeSystem::from_uri(&f.system)?, f)],
            text: f.display.clone().unwrap_or_else(|| f.code.clone()),
            reaction: None,
            recorded: Some(date),
        }),
    })
}

/// The member's resolved facts as graph facts of `patient`, each source record of batch
/// `batch` one Provenance entry. Facts the model cannot hold (no date, an allergy coded in a
/// system it does not know) are counted in the second value.
pub fn facts(
    patient: &PatientId,
    mf: &MemberFacts,
    batch: &str,
    recorded: DateTime<Utc>,
) -> (Vec<Fact>, usize) {
    let mut out = Vec::with_capacity(mf.facts.len());
    let mut skipped = 0;
    for (key, f) in &mf.facts {
        let (Some(id), Some(body)) = (fact_id(patient, key, f.kind), body(f)) else {
            skipped += 1;
            continue;
        };
        let provenance = f
            .sources
            .iter()
            .map(|s| Provenance {
                producer: Some(Producer {
                    name: "p360-enrich".into(),
                    version: env!("CARGO_PKG_VERSION").into(),
                }),
                ..Provenance::new(SourceKind::PayorFeed, format!("{batch}/{s}"), recorded)
            })
            .collect();
        out.push(Fact {
            id,
            patient: patient.clone(),
            // The payor's records state facts outright (a paid claim, a lab's final result).
            status: Status::Confirmed,
            body,
            provenance,
        });
    }
    (out, skipped)
}
