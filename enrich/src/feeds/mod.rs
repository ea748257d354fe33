//! Streaming parsers, one per feed format. Each reads its file once, front to back, holding one
//! record at a time, and hands out [`Item`]s: person-records (who a record is about), clinical
//! statements (what it says) and the claim bookkeeping (voids, NDC → ingredient) that decides
//! which statements count. Bad records go to the [`FileReport`] and the file goes on.

pub mod claims;
mod csvfile;
pub mod fhir;
pub mod hl7;
pub mod pharmacy;
pub mod roster;

use crate::person::Person;
use crate::report::FileReport;
use chrono::NaiveDate;
use std::io::{BufRead, Read};
use std::path::Path;

/// A record that identifies a person: it has to be matched to a member (or to nobody).
#[derive(Clone, Debug, PartialEq)]
pub struct PersonRecord {
    /// The record key of the output contract (`C22070500001:2`, a Patient id, MSH-10).
    pub key: String,
    /// The payor member id the record carries, if any (current or previous).
    pub member_id: Option<String>,
    pub person: Person,
}

/// Whose statement it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Subject {
    /// The person-record of the same file with this key (a claim line, a fill, a message).
    Record(String),
    /// A FHIR Patient of the same folder, by resource id (EOBs, HIE resources).
    Patient(String),
}

/// One clinical statement of one record, not yet resolved into a fact.
#[derive(Clone, Debug, PartialEq)]
pub struct Statement {
    pub subject: Subject,
    /// The record that states it, as the output contract names sources: `<claim_id>` for
    /// claims.csv (the claim, not the line), the EOB or resource id, MSH-10.
    pub record: String,
    /// The claim whose validity it depends on: void claims produce no facts.
    pub claim: Option<String>,
    pub draft: Draft,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Draft {
    Condition {
        /// ICD-10-CM with its dot.
        code: String,
        display: Option<String>,
        date: NaiveDate,
    },
    Observation {
        loinc: String,
        display: Option<String>,
        value: f64,
        comparator: Option<String>,
        /// UCUM code.
        unit: Option<String>,
        date: NaiveDate,
    },
    Medication {
        /// RxNorm ingredient RxCUI, when the record says that is what it is.
        ingredient: Option<String>,
        /// Other RxNorm codes the record gives (ingredient or clinical drug, not said which):
        /// resolved to an ingredient later.
        rxnorm: Vec<String>,
        ndc: Option<String>,
        name: Option<String>,
        date: NaiveDate,
        /// A dispensing (pharmacy fill) rather than an order or statement.
        fill: bool,
    },
    Encounter {
        /// v3 ActCode class: AMB, EMER, VR, IMP.
        class: String,
        date: NaiveDate,
        npi: Option<String>,
        /// The visit code (CPT), when known.
        kind: Option<String>,
    },
    Procedure {
        cpt: String,
        date: NaiveDate,
    },
    Immunization {
        cvx: String,
        date: NaiveDate,
    },
    Allergy {
        system: String,
        code: String,
        display: Option<String>,
        date: Option<NaiveDate>,
    },
}

/// What a parser hands out.
#[derive(Clone, Debug, PartialEq)]
pub enum Item {
    Person(PersonRecord),
    Statement(Statement),
    /// This claim (or fill) produces no facts: it was reversed, replaced or denied. Feeds name
    /// reversals after their originals, so voids are collected in a first pass.
    Void(String),
    /// An NDC and its ingredient, as a pharmacy row states them; rows without the ingredient
    /// are resolved through these.
    NdcIngredient {
        ndc: String,
        rxcui: String,
    },
}

/// The formats p360 reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FeedKind {
    Roster,
    Claims,
    Pharmacy,
    /// FHIR R4 NDJSON: bulk export, CARIN BB EOBs and their Patients, HealthLake exports.
    FhirNdjson,
    Hl7,
}

impl FeedKind {
    /// Recognises a feed by its name and its first line (a CSV's header). `None`: not a feed.
    pub fn detect(path: &Path) -> std::io::Result<Option<FeedKind>> {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_ascii_lowercase();
        if name.starts_with('_') || name.starts_with('.') {
            return Ok(None);
        }
        let ext = name.rsplit('.').next().unwrap_or_default();
        match ext {
            "ndjson" | "jsonl" => return Ok(Some(FeedKind::FhirNdjson)),
            "hl7" | "oru" => return Ok(Some(FeedKind::Hl7)),
            "csv" => {}
            _ => return Ok(None),
        }
        let mut head = Vec::new();
        std::io::BufReader::new(std::fs::File::open(path)?)
            .take(64 * 1024)
            .read_until(b'\n', &mut head)?;
        let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
        let cols: Vec<&str> = head.trim().split(',').map(str::trim).collect();
        let has = |c: &str| cols.contains(&c);
        Ok(Some(if has("procedure_code") || has("diagnosis_1") {
            FeedKind::Claims
        } else if has("ndc") || has("fill_date") {
            FeedKind::Pharmacy
        } else if has("plan_id") || has("coverage_start") {
            FeedKind::Roster
        } else {
            // A CSV of unknown shape is still reported, as the claims parser's column check.
            FeedKind::Claims
        }))
    }
}

/// Reads one feed file, handing every item to `sink` and every bad record to `report`.
pub fn read(
    kind: FeedKind,
    input: impl Read,
    report: &mut FileReport<'_>,
    sink: &mut dyn FnMut(Item),
) {
    match kind {
        FeedKind::Claims => claims::read(input, report, sink),
        FeedKind::Pharmacy => pharmacy::read(input, report, sink),
        FeedKind::FhirNdjson => fhir::read(input, report, sink),
        FeedKind::Hl7 => hl7::read(input, report, sink),
        // The roster is read by `roster::read` into the member table, not as items.
        FeedKind::Roster => {}
    }
}

/// ICD-10-CM with its dot (`E119` → `E11.9`), if shaped like one.
pub fn dotted_icd10(raw: &str) -> Option<String> {
    let c: String = raw
        .trim()
        .chars()
        .filter(|c| *c != '.')
        .collect::<String>()
        .to_ascii_uppercase();
    // ICD-10-CM is ASCII; anything else is not a code (and byte slicing below needs ASCII).
    if !c.is_ascii() {
        return None;
    }
    let code = if c.len() > 3 {
        format!("{}.{}", &c[..3], &c[3..])
    } else {
        c
    };
    p360_model::CodeSystem::Icd10Cm
        .check_code(&code)
        .then_some(code)
}

/// A CPT or HCPCS level II code (`99213`, `G0121`, `0001U`).
pub fn valid_cpt(raw: &str) -> bool {
    let b = raw.as_bytes();
    b.len() == 5
        && b.iter().all(u8::is_ascii_alphanumeric)
        && (b[..4].iter().all(u8::is_ascii_digit)
            || (b[0].is_ascii_uppercase() && b[1..].iter().all(u8::is_ascii_digit)))
}

/// A 10-digit NPI whose Luhn check digit (over the `80840` prefix) is right.
pub fn valid_npi(raw: &str) -> bool {
    let b = raw.as_bytes();
    if b.len() != 10 || !b.iter().all(u8::is_ascii_digit) {
        return false;
    }
    let mut sum = 24; // the prefix 80840 contributes 24
    for (i, d) in b[..9].iter().rev().enumerate() {
        let mut v = u32::from(d - b'0');
        if i % 2 == 0 {
            v *= 2;
            if v > 9 {
                v -= 9;
            }
        }
        sum += v;
    }
    (10 - sum % 10) % 10 == u32::from(b[9] - b'0')
}

/// Claim kinds by procedure code: a visit (an encounter), a vaccine product (an immunization,
/// with its CVX), or anything else (a procedure).
pub enum LineKind {
    Visit,
    Vaccine(&'static str),
    Procedure,
}

pub fn line_kind(cpt: &str) -> LineKind {
    if let Some(cvx) = crate::codes::vaccine_cvx(cpt) {
        return LineKind::Vaccine(cvx);
    }
    match cpt.parse::<u32>() {
        Ok(99202..=99499 | 90791..=90792 | 90832..=90838) => LineKind::Visit,
        _ => LineKind::Procedure,
    }
}

/// Encounter class from a CMS place-of-service code.
pub fn class_from_pos(pos: &str) -> &'static str {
    match pos.trim() {
        "02" | "10" => "VR",
        "23" => "EMER",
        "21" => "IMP",
        _ => "AMB",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn icd10_gets_its_dot() {
        assert_eq!(dotted_icd10("E119").as_deref(), Some("E11.9"));
        assert_eq!(dotted_icd10("J45909").as_deref(), Some("J45.909"));
        assert_eq!(dotted_icd10("F32A").as_deref(), Some("F32.A"));
        assert_eq!(dotted_icd10("B20").as_deref(), Some("B20"));
        assert_eq!(dotted_icd10("E11.9").as_deref(), Some("E11.9"));
        assert_eq!(dotted_icd10("11E9"), None);
        assert_eq!(dotted_icd10(""), None);
        // Found by the long fuzz run: a multi-byte character where the dot goes.
        assert_eq!(dotted_icd10("IVÁN"), None);
        assert_eq!(dotted_icd10("E1É9"), None);
    }

    #[test]
    fn npi_check_digit() {
        assert!(valid_npi("1245319599"));
        assert!(!valid_npi("1245319598"));
        assert!(!valid_npi("12453195"));
    }

    #[test]
    fn procedure_codes_are_classified() {
        assert!(matches!(line_kind("99213"), LineKind::Visit));
        assert!(matches!(line_kind("90834"), LineKind::Visit));
        assert!(matches!(line_kind("90686"), LineKind::Vaccine("150")));
        assert!(matches!(line_kind("83036"), LineKind::Procedure));
        assert!(valid_cpt("G0121") && valid_cpt("0001U") && !valid_cpt("9921"));
    }
}
