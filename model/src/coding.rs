//! Codes and the code systems they belong to.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A code system, known by its canonical FHIR URI.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CodeSystem {
    /// Laboratory and clinical observations.
    Loinc,
    /// Units of measure.
    Ucum,
    /// US diagnoses.
    Icd10Cm,
    /// US clinical drugs and ingredients.
    RxNorm,
    SnomedCt,
    /// Vaccines administered.
    Cvx,
    /// US drug products (claims).
    Ndc,
    /// Procedures (claims).
    Cpt,
}

impl CodeSystem {
    pub const ALL: [CodeSystem; 8] = [
        CodeSystem::Loinc,
        CodeSystem::Ucum,
        CodeSystem::Icd10Cm,
        CodeSystem::RxNorm,
        CodeSystem::SnomedCt,
        CodeSystem::Cvx,
        CodeSystem::Ndc,
        CodeSystem::Cpt,
    ];

    /// The system URI used in FHIR `Coding.system`.
    pub fn uri(&self) -> &'static str {
        match self {
            CodeSystem::Loinc => "http://loinc.org",
            CodeSystem::Ucum => "http://unitsofmeasure.org",
            CodeSystem::Icd10Cm => "http://hl7.org/fhir/sid/icd-10-cm",
            CodeSystem::RxNorm => "http://www.nlm.nih.gov/research/umls/rxnorm",
            CodeSystem::SnomedCt => "http://snomed.info/sct",
            CodeSystem::Cvx => "http://hl7.org/fhir/sid/cvx",
            CodeSystem::Ndc => "http://hl7.org/fhir/sid/ndc",
            CodeSystem::Cpt => "http://www.ama-assn.org/go/cpt",
        }
    }

    /// Recognises a FHIR system URI.
    pub fn from_uri(uri: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.uri() == uri)
    }

    /// Whether `code` is shaped like a code of this system (not whether it exists).
    pub fn check_code(&self, code: &str) -> bool {
        let b = code.as_bytes();
        match self {
            // e.g. 4548-4: digits, a dash, one check digit.
            CodeSystem::Loinc => code.split_once('-').is_some_and(|(n, c)| {
                !n.is_empty()
                    && n.len() <= 7
                    && n.bytes().all(|d| d.is_ascii_digit())
                    && c.len() == 1
                    && c.bytes().all(|d| d.is_ascii_digit())
            }),
            // e.g. E11.9: a letter, two characters, then an optional dot and up to four more.
            CodeSystem::Icd10Cm => {
                b.len() >= 3
                    && b[0].is_ascii_uppercase()
                    && b[1].is_ascii_digit()
                    && b[2].is_ascii_alphanumeric()
                    && match code.get(3..) {
                        None | Some("") => true,
                        Some(rest) => rest.strip_prefix('.').is_some_and(|r| {
                            (1..=4).contains(&r.len())
                                && r.bytes().all(|c| c.is_ascii_alphanumeric())
                        }),
                    }
            }
            CodeSystem::RxNorm | CodeSystem::SnomedCt | CodeSystem::Cvx => {
                !b.is_empty() && b.len() <= 18 && b.iter().all(u8::is_ascii_digit)
            }
            CodeSystem::Ndc => !b.is_empty() && b.iter().all(|c| c.is_ascii_digit() || *c == b'-'),
            CodeSystem::Cpt => b.len() == 5 && b.iter().all(u8::is_ascii_alphanumeric),
            CodeSystem::Ucum => crate::ucum::parse(code).is_ok(),
        }
    }
}

impl fmt::Display for CodeSystem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.uri())
    }
}

/// One code: system + code (+ display text).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Coding {
    pub system: CodeSystem,
    pub code: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display: Option<String>,
}

impl Coding {
    pub fn new(system: CodeSystem, code: impl Into<String>, display: Option<&str>) -> Self {
        Self {
            system,
            code: code.into(),
            display: display.map(str::to_owned),
        }
    }

    /// The FHIR `Coding` JSON.
    pub fn to_fhir(&self) -> serde_json::Value {
        let mut v = serde_json::json!({ "system": self.system.uri(), "code": self.code });
        if let Some(d) = &self.display {
            v["display"] = d.clone().into();
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_shapes() {
        assert!(CodeSystem::Loinc.check_code("4548-4"));
        assert!(!CodeSystem::Loinc.check_code("4548"));
        assert!(CodeSystem::Icd10Cm.check_code("E11.9"));
        assert!(CodeSystem::Icd10Cm.check_code("I10"));
        assert!(CodeSystem::Icd10Cm.check_code("S72.001A"));
        assert!(!CodeSystem::Icd10Cm.check_code("e11.9"));
        assert!(!CodeSystem::Icd10Cm.check_code("E11."));
        assert!(CodeSystem::RxNorm.check_code("860975"));
        assert_eq!(
            CodeSystem::from_uri("http://hl7.org/fhir/sid/icd-10-cm"),
            Some(CodeSystem::Icd10Cm)
        );
        assert_eq!(CodeSystem::from_uri("http://example.org/codes"), None);
    }
}
