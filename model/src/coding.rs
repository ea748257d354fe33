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

    /// Whether `code` is shaped like a code of this system (not whether it exists). A LOINC
    /// code's check digit must also match: see [`check_loinc`].
    pub fn check_code(&self, code: &str) -> bool {
        let b = code.as_bytes();
        match self {
            CodeSystem::Loinc => check_loinc(code).is_ok(),
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

/// Why a string is not a LOINC code. The messages never quote the code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LoincError {
    #[error("not a valid LOINC code (expected digits, a hyphen and a check digit, e.g. 29463-7)")]
    Shape,
    /// Shaped right but the last digit does not match: most often a typo.
    #[error("not a valid LOINC code (check digit)")]
    CheckDigit,
}

/// Checks a LOINC code: up to seven digits, a hyphen, and their check digit (e.g. `4548-4`).
/// Every LOINC code carries one, so a mismatch is an error whatever the source.
pub fn check_loinc(code: &str) -> Result<(), LoincError> {
    let (base, check) = code.split_once('-').ok_or(LoincError::Shape)?;
    let &[c] = check.as_bytes() else {
        return Err(LoincError::Shape);
    };
    if !c.is_ascii_digit() {
        return Err(LoincError::Shape);
    }
    match loinc_check_digit(base) {
        None => Err(LoincError::Shape),
        Some(d) if d == c - b'0' => Ok(()),
        Some(_) => Err(LoincError::CheckDigit),
    }
}

/// The check digit of a LOINC code's digits (1 to 7 of them), by the "Mod 10" algorithm of
/// the LOINC Users' Guide: counting positions from the right, the digits in odd positions,
/// read as a number, are doubled; the digits in even positions are written in front; the
/// digits of the result are summed; the check digit takes that sum up to the next multiple
/// of 10. `12345` → 531 × 2 = 1062 → "42" + "1062" → 15 → 5.
pub fn loinc_check_digit(base: &str) -> Option<u8> {
    if base.is_empty() || base.len() > 7 || !base.bytes().all(|d| d.is_ascii_digit()) {
        return None;
    }
    let (mut odd, mut sum) = (0u32, 0u32);
    for (i, d) in base.bytes().enumerate() {
        let d = u32::from(d - b'0');
        if (base.len() - i) % 2 == 1 {
            odd = odd * 10 + d;
        } else {
            sum += d;
        }
    }
    let mut doubled = odd * 2;
    while doubled > 0 {
        sum += doubled % 10;
        doubled /= 10;
    }
    // At most 7 digits: the sum is small, and (10 - sum % 10) % 10 < 10.
    u8::try_from((10 - sum % 10) % 10).ok()
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
        assert!(!CodeSystem::Loinc.check_code("4548-5"), "wrong check digit");
        assert_eq!(
            CodeSystem::from_uri("http://hl7.org/fhir/sid/icd-10-cm"),
            Some(CodeSystem::Icd10Cm)
        );
        assert_eq!(CodeSystem::from_uri("http://example.org/codes"), None);
    }

    #[test]
    fn loinc_check_digits() {
        // The worked example of the LOINC Users' Guide.
        assert_eq!(loinc_check_digit("12345"), Some(5));
        for code in [
            "29463-7", "2345-7", "4548-4", "8480-6", "8462-4", "75622-1", "2093-3", "8302-2",
            "39156-5", "8867-4", "8310-5", "9279-1", "2708-6", "59408-5", "55423-8", "1-8",
        ] {
            assert_eq!(check_loinc(code), Ok(()), "{code}");
        }
        assert_eq!(check_loinc("29463-6"), Err(LoincError::CheckDigit));
        assert_eq!(loinc_check_digit("99999"), Some(5), "so 99999-9 is refused");
        assert_eq!(check_loinc("99999-9"), Err(LoincError::CheckDigit));
        // Swapped neighbouring digits (a common typo) change it too.
        assert_eq!(check_loinc("29436-7"), Err(LoincError::CheckDigit));
        for junk in [
            "",
            "-",
            "29463",
            "29463-",
            "-7",
            "29463-77",
            "29463-x",
            "2946a-7",
            "12345678-6",
            "+2946-7",
            " 2345-7",
            "weight",
        ] {
            assert_eq!(check_loinc(junk), Err(LoincError::Shape), "{junk:?}");
        }
        assert_eq!(loinc_check_digit("1234567"), Some(4));
        assert_eq!(loinc_check_digit("12345678"), None);
    }
}
