//! The p360 RDF vocabulary and IRI scheme.
//!
//! | IRI | what |
//! |---|---|
//! | `https://p360.dev/patient/{patient}` | the patient's named graph (and the patient node in it) |
//! | `…/patient/{patient}/fact/{fact}` | a fact; its class is `p360:Observation`, `p360:Condition`, … |
//! | `…/fact/{fact}/source/{key}` | one provenance link of a fact (`p360:Source`) |
//! | `…/patient/{patient}/document/{document}` | a stored document |
//!
//! Properties (`p360:` = `https://p360.dev/ns#`): `patient category status code day value unit
//! comparator text identity json source` on facts; `sourceKind sourceId document page region
//! confidence recorded producer author confirmedBy json` on sources. Codes are IRIs of their
//! systems (LOINC `http://loinc.org/rdf/…`, ICD-10-CM / RxNorm / CVX / CPT BioPortal PURLs,
//! SNOMED CT `http://snomed.info/id/…`, UCUM units under `http://unitsofmeasure.org/`), so a
//! query for "every A1c" is one triple pattern. `p360:json` keeps the fact's (and each
//! source's) full content, so a read returns exactly what was written even for fields the
//! triples do not spell out.
//!
//! Every IRI is derived from ids, never minted at random: writing the same fact twice writes
//! the same triples, which RDF's set semantics make a no-op.

use p360_events::{DocumentId, PatientId};
use p360_model::{CodeSystem, Coding, FactId};
use sha2::{Digest, Sha256};

pub const NS: &str = "https://p360.dev/ns#";
const BASE: &str = "https://p360.dev/patient/";

/// `p360:<local>` as a full IRI.
pub fn p(local: &str) -> String {
    format!("{NS}{local}")
}

pub fn patient_graph(patient: &PatientId) -> String {
    format!("{BASE}{patient}")
}

pub fn fact(patient: &PatientId, fact: &FactId) -> String {
    format!("{BASE}{patient}/fact/{fact}")
}

/// The patient and fact ids of a fact IRI made by [`fact`].
pub fn parse_fact(iri: &str) -> Option<(PatientId, FactId)> {
    let (patient, fact) = iri.strip_prefix(BASE)?.split_once("/fact/")?;
    Some((PatientId::parse(patient).ok()?, FactId::parse(fact).ok()?))
}

/// The provenance node of `source_key` (see `Provenance::source_key`) on a fact.
pub fn source(patient: &PatientId, fact_id: &FactId, source_key: &str) -> String {
    let h = hex::encode(Sha256::digest(source_key.as_bytes()));
    format!("{}/source/{}", fact(patient, fact_id), &h[..16])
}

pub fn document(patient: &PatientId, doc: &DocumentId) -> String {
    format!("{BASE}{patient}/document/{doc}")
}

/// The IRI of a code in its system.
pub fn code(c: &Coding) -> String {
    let base = match c.system {
        CodeSystem::Loinc => "http://loinc.org/rdf/",
        CodeSystem::Icd10Cm => "http://purl.bioontology.org/ontology/ICD10CM/",
        CodeSystem::RxNorm => "http://purl.bioontology.org/ontology/RXNORM/",
        CodeSystem::SnomedCt => "http://snomed.info/id/",
        CodeSystem::Cvx => "http://purl.bioontology.org/ontology/CVX/",
        CodeSystem::Cpt => "http://purl.bioontology.org/ontology/CPT/",
        CodeSystem::Ndc => "http://hl7.org/fhir/sid/ndc/",
        CodeSystem::Ucum => "http://unitsofmeasure.org/",
    };
    format!("{base}{}", percent(&c.code))
}

/// A UCUM unit's IRI.
pub fn unit(ucum: &str) -> String {
    format!("http://unitsofmeasure.org/{}", percent(ucum))
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
fn percent(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iris_are_deterministic_and_safe() {
        let pid = PatientId::parse("pat-1").unwrap();
        assert_eq!(patient_graph(&pid), "https://p360.dev/patient/pat-1");
        assert_eq!(
            unit("mL/min/{1.73_m2}"),
            "http://unitsofmeasure.org/mL%2Fmin%2F%7B1.73_m2%7D"
        );
        let a1c = Coding::new(CodeSystem::Loinc, "4548-4", None);
        assert_eq!(code(&a1c), "http://loinc.org/rdf/4548-4");
        let f = FactId::parse("obs-1").unwrap();
        assert_eq!(source(&pid, &f, "ocr:doc-1"), source(&pid, &f, "ocr:doc-1"));
        assert_ne!(source(&pid, &f, "ocr:doc-1"), source(&pid, &f, "ocr:doc-2"));
    }
}
