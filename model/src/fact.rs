//! Facts: what the record knows, each with its provenance and status.

use crate::coding::{CodeSystem, Coding};
use crate::provenance::Provenance;
use chrono::{DateTime, NaiveDate, Utc};
use p360_events::{DocumentId, PatientId};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;

/// Review status of a fact.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Extracted with less than full confidence: waiting for the patient's review.
    Unconfirmed,
    Confirmed,
    /// Retracted; kept so that the retraction is visible and travels to the lake.
    EnteredInError,
}

/// A fact's id: derived from what the fact says (see [`Fact::identity_key`]), so that writing
/// the same fact twice, from any source, yields the same id.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct FactId(String);

impl FactId {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn parse(raw: &str) -> Result<Self, p360_events::EventError> {
        p360_events::check_token("FactId", raw)?;
        Ok(Self(raw.to_owned()))
    }
}

impl fmt::Display for FactId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// When a fact holds: an instant, a day, or a period.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum When {
    Instant(DateTime<Utc>),
    Date(NaiveDate),
    Period {
        start: NaiveDate,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        end: Option<NaiveDate>,
    },
}

impl When {
    /// The day the fact starts: used for matching, ordering and lake partitions.
    pub fn day(&self) -> NaiveDate {
        match self {
            When::Instant(t) => t.date_naive(),
            When::Date(d) => *d,
            When::Period { start, .. } => *start,
        }
    }

    /// The FHIR dateTime / date string.
    pub fn fhir_start(&self) -> String {
        match self {
            When::Instant(t) => t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            When::Date(d) => d.to_string(),
            When::Period { start, .. } => start.to_string(),
        }
    }
}

/// `<`, `<=`, `>=`, `>` before a number, as labs print (`<0.5`, `>1000`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Comparator {
    #[serde(rename = "<")]
    Lt,
    #[serde(rename = "<=")]
    Le,
    #[serde(rename = ">=")]
    Ge,
    #[serde(rename = ">")]
    Gt,
}

impl Comparator {
    pub fn as_str(self) -> &'static str {
        match self {
            Comparator::Lt => "<",
            Comparator::Le => "<=",
            Comparator::Ge => ">=",
            Comparator::Gt => ">",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "<" => Some(Comparator::Lt),
            "<=" => Some(Comparator::Le),
            ">=" => Some(Comparator::Ge),
            ">" => Some(Comparator::Gt),
            _ => None,
        }
    }
}

/// An observation's value.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum Value {
    Quantity {
        value: f64,
        /// UCUM code.
        unit: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        comparator: Option<Comparator>,
    },
    /// A result printed as text (`POS`, `Negative`, `trace`).
    Text {
        text: String,
    },
    Coded {
        coding: Coding,
    },
}

/// The normal range printed beside a result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReferenceRange {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub low: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub high: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// As printed, when it is not a simple low–high (e.g. `<100`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

/// The abnormal flag (FHIR v3 ObservationInterpretation codes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Interpretation {
    #[serde(rename = "N")]
    Normal,
    #[serde(rename = "H")]
    High,
    #[serde(rename = "L")]
    Low,
    #[serde(rename = "A")]
    Abnormal,
    #[serde(rename = "HH")]
    CriticalHigh,
    #[serde(rename = "LL")]
    CriticalLow,
}

impl Interpretation {
    pub fn code(self) -> &'static str {
        match self {
            Interpretation::Normal => "N",
            Interpretation::High => "H",
            Interpretation::Low => "L",
            Interpretation::Abnormal => "A",
            Interpretation::CriticalHigh => "HH",
            Interpretation::CriticalLow => "LL",
        }
    }

    pub fn from_code(code: &str) -> Option<Self> {
        match code {
            "N" => Some(Interpretation::Normal),
            "H" => Some(Interpretation::High),
            "L" => Some(Interpretation::Low),
            "A" => Some(Interpretation::Abnormal),
            "HH" => Some(Interpretation::CriticalHigh),
            "LL" => Some(Interpretation::CriticalLow),
            _ => None,
        }
    }
}

/// The kind of an observation (FHIR observation-category).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ObservationKind {
    Laboratory,
    VitalSigns,
    /// A daily summary from a wearable (steps, resting heart rate…).
    Activity,
}

impl ObservationKind {
    pub fn code(self) -> &'static str {
        match self {
            ObservationKind::Laboratory => "laboratory",
            ObservationKind::VitalSigns => "vital-signs",
            ObservationKind::Activity => "activity",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Observation {
    pub kind: ObservationKind,
    /// LOINC first; other codings may follow.
    pub code: Vec<Coding>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Value>,
    pub effective: When,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference_range: Option<ReferenceRange>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interpretation: Option<Interpretation>,
}

/// Whether a condition is current.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClinicalStatus {
    Active,
    Resolved,
    Inactive,
}

impl ClinicalStatus {
    pub fn code(self) -> &'static str {
        match self {
            ClinicalStatus::Active => "active",
            ClinicalStatus::Resolved => "resolved",
            ClinicalStatus::Inactive => "inactive",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Condition {
    /// ICD-10-CM first.
    pub code: Vec<Coding>,
    pub clinical_status: ClinicalStatus,
    /// Onset or first record; the identity date for matching.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub onset: Option<NaiveDate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recorded: Option<NaiveDate>,
}

/// Whether a medication is being taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MedicationStatus {
    Active,
    Stopped,
    Completed,
}

impl MedicationStatus {
    pub fn code(self) -> &'static str {
        match self {
            MedicationStatus::Active => "active",
            MedicationStatus::Stopped => "stopped",
            MedicationStatus::Completed => "completed",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Medication {
    /// RxNorm ingredient (or clinical drug) first.
    pub code: Vec<Coding>,
    /// As written: `Metformin 500 mg tablet`.
    pub text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strength: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub form: Option<String>,
    /// The instructions as written (`1 tab PO BID`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dosage: Option<String>,
    pub status: MedicationStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effective: Option<When>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Procedure {
    pub code: Vec<Coding>,
    pub performed: When,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Allergy {
    /// The substance (RxNorm or SNOMED CT); `text` when uncoded.
    pub code: Vec<Coding>,
    pub text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reaction: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recorded: Option<NaiveDate>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Immunization {
    /// CVX.
    pub vaccine: Vec<Coding>,
    pub occurred: When,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Encounter {
    /// v3 ActCode: `AMB` ambulatory, `IMP` inpatient, `EMER` emergency, `VR` virtual.
    pub class: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kind: Vec<Coding>,
    pub period: When,
    /// Diagnoses addressed, as codes (ICD-10-CM).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reason: Vec<Coding>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// The practitioner who saw the patient, by NPI (claims and HIE encounters name one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub practitioner_npi: Option<String>,
}

/// A stored document (the photo or PDF itself).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Document {
    pub document_id: DocumentId,
    pub media_type: String,
    pub sha256: String,
    pub size: u64,
    /// LOINC document type, e.g. 11502-2 laboratory report, when known.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kind: Vec<Coding>,
    pub date: When,
}

/// What a fact says.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "resource")]
pub enum FactBody {
    Observation(Observation),
    Condition(Condition),
    Medication(Medication),
    Procedure(Procedure),
    Allergy(Allergy),
    Immunization(Immunization),
    Encounter(Encounter),
    Document(Document),
}

/// Consent categories a fact falls in (a grant names which it covers). The last five are
/// sensitive: shared only when the patient names them ([`crate::sensitivity`] assigns them).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    Labs,
    Vitals,
    Conditions,
    Medications,
    Procedures,
    Allergies,
    Immunizations,
    Episodes,
    Documents,
    BehavioralHealth,
    SubstanceUse,
    SexualReproductiveHealth,
    HivSti,
    Genetic,
}

impl Category {
    pub const ALL: [Category; 14] = [
        Category::Labs,
        Category::Vitals,
        Category::Conditions,
        Category::Medications,
        Category::Procedures,
        Category::Allergies,
        Category::Immunizations,
        Category::Episodes,
        Category::Documents,
        Category::BehavioralHealth,
        Category::SubstanceUse,
        Category::SexualReproductiveHealth,
        Category::HivSti,
        Category::Genetic,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Category::Labs => "labs",
            Category::Vitals => "vitals",
            Category::Conditions => "conditions",
            Category::Medications => "medications",
            Category::Procedures => "procedures",
            Category::Allergies => "allergies",
            Category::Immunizations => "immunizations",
            Category::Episodes => "episodes",
            Category::Documents => "documents",
            Category::BehavioralHealth => "behavioral_health",
            Category::SubstanceUse => "substance_use",
            Category::SexualReproductiveHealth => "sexual_reproductive_health",
            Category::HivSti => "hiv_sti",
            Category::Genetic => "genetic",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }

    pub fn is_sensitive(self) -> bool {
        matches!(
            self,
            Category::BehavioralHealth
                | Category::SubstanceUse
                | Category::SexualReproductiveHealth
                | Category::HivSti
                | Category::Genetic
        )
    }
}

impl std::fmt::Display for Category {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FactBody {
    /// The kind of record this is (never a sensitive category: see [`FactBody::consent_category`]).
    pub fn category(&self) -> Category {
        match self {
            FactBody::Observation(o) => match o.kind {
                ObservationKind::Laboratory => Category::Labs,
                ObservationKind::VitalSigns | ObservationKind::Activity => Category::Vitals,
            },
            FactBody::Condition(_) => Category::Conditions,
            FactBody::Medication(_) => Category::Medications,
            FactBody::Procedure(_) => Category::Procedures,
            FactBody::Allergy(_) => Category::Allergies,
            FactBody::Immunization(_) => Category::Immunizations,
            FactBody::Encounter(_) => Category::Episodes,
            FactBody::Document(_) => Category::Documents,
        }
    }

    /// The category consent decides on: the sensitive category its code falls in, if any,
    /// else its kind.
    pub fn consent_category(&self) -> Category {
        crate::sensitivity::sensitive_category(self).unwrap_or_else(|| self.category())
    }

    /// The FHIR resource type this fact maps to.
    pub fn resource_type(&self) -> &'static str {
        match self {
            FactBody::Observation(_) => "Observation",
            FactBody::Condition(_) => "Condition",
            FactBody::Medication(_) => "MedicationStatement",
            FactBody::Procedure(_) => "Procedure",
            FactBody::Allergy(_) => "AllergyIntolerance",
            FactBody::Immunization(_) => "Immunization",
            FactBody::Encounter(_) => "Encounter",
            FactBody::Document(_) => "DocumentReference",
        }
    }

    /// The main code, used for identity and search.
    pub fn primary_code(&self) -> Option<&Coding> {
        match self {
            FactBody::Observation(o) => o.code.first(),
            FactBody::Condition(c) => c.code.first(),
            FactBody::Medication(m) => m.code.first(),
            FactBody::Procedure(p) => p.code.first(),
            FactBody::Allergy(a) => a.code.first(),
            FactBody::Immunization(i) => i.vaccine.first(),
            FactBody::Encounter(e) => e.kind.first(),
            FactBody::Document(d) => d.kind.first(),
        }
    }

    /// The day a fact is about (None for facts without a date, e.g. an undated allergy).
    pub fn day(&self) -> Option<NaiveDate> {
        match self {
            FactBody::Observation(o) => Some(o.effective.day()),
            FactBody::Condition(c) => c.onset.or(c.recorded),
            FactBody::Medication(m) => m.effective.as_ref().map(When::day),
            FactBody::Procedure(p) => Some(p.performed.day()),
            FactBody::Allergy(a) => a.recorded,
            FactBody::Immunization(i) => Some(i.occurred.day()),
            FactBody::Encounter(e) => Some(e.period.day()),
            FactBody::Document(d) => Some(d.date.day()),
        }
    }
}

/// One fact of one patient's record.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Fact {
    pub id: FactId,
    pub patient: PatientId,
    pub status: Status,
    pub body: FactBody,
    /// Every source that stated this fact (at least one).
    pub provenance: Vec<Provenance>,
}

impl Fact {
    /// A fact with its id derived from its content.
    pub fn new(patient: PatientId, body: FactBody, status: Status, provenance: Provenance) -> Self {
        let id = Self::derive_id(&patient, &body);
        Self {
            id,
            patient,
            status,
            body,
            provenance: vec![provenance],
        }
    }

    /// What makes two statements "the same fact": patient, kind, primary code, day, and (for
    /// results) the value. Sources, confidence and display texts are not part of it.
    pub fn identity_key(patient: &PatientId, body: &FactBody) -> String {
        let code = body
            .primary_code()
            .map(|c| format!("{}|{}", c.system.uri(), c.code))
            .unwrap_or_else(|| match body {
                FactBody::Medication(m) => format!("text|{}", m.text.to_lowercase()),
                FactBody::Allergy(a) => format!("text|{}", a.text.to_lowercase()),
                FactBody::Document(d) => format!("sha256|{}", d.sha256),
                _ => "uncoded".into(),
            });
        let day = body.day().map(|d| d.to_string()).unwrap_or_default();
        let value = match body {
            FactBody::Observation(o) => match &o.value {
                Some(Value::Quantity {
                    value,
                    unit,
                    comparator,
                }) => format!(
                    "{}{}{unit}",
                    comparator.map_or("", Comparator::as_str),
                    format_number(*value)
                ),
                Some(Value::Text { text }) => text.to_lowercase(),
                Some(Value::Coded { coding }) => format!("{}|{}", coding.system.uri(), coding.code),
                None => String::new(),
            },
            FactBody::Document(d) => d.document_id.to_string(),
            _ => String::new(),
        };
        format!(
            "{patient}\u{1f}{}\u{1f}{code}\u{1f}{day}\u{1f}{value}",
            body.resource_type()
        )
    }

    pub fn derive_id(patient: &PatientId, body: &FactBody) -> FactId {
        let digest = Sha256::digest(Self::identity_key(patient, body).as_bytes());
        let prefix = match body {
            FactBody::Observation(_) => "obs",
            FactBody::Condition(_) => "cond",
            FactBody::Medication(_) => "med",
            FactBody::Procedure(_) => "proc",
            FactBody::Allergy(_) => "alg",
            FactBody::Immunization(_) => "imm",
            FactBody::Encounter(_) => "enc",
            FactBody::Document(_) => "docref",
        };
        FactId(format!("{prefix}-{}", &hex::encode(digest)[..24]))
    }

    /// Whether `other` states the same fact as `self` with a value that differs only within
    /// tolerance (another unit, another rounding): same patient, kind, primary code and day,
    /// and equivalent quantities. Exact duplicates are found by id already.
    pub fn matches_within_tolerance(&self, other: &Fact) -> bool {
        let (FactBody::Observation(a), FactBody::Observation(b)) = (&self.body, &other.body) else {
            return false;
        };
        if self.patient != other.patient
            || self.body.primary_code().map(|c| (&c.system, &c.code))
                != other.body.primary_code().map(|c| (&c.system, &c.code))
            || self.body.day() != other.body.day()
        {
            return false;
        }
        match (&a.value, &b.value) {
            (
                Some(Value::Quantity {
                    value: va,
                    unit: ua,
                    comparator: ca,
                }),
                Some(Value::Quantity {
                    value: vb,
                    unit: ub,
                    comparator: cb,
                }),
            ) => ca == cb && crate::ucum::same_quantity((*va, ua), (*vb, ub)),
            _ => false,
        }
    }

    /// Attaches another source's statement; returns false if that source was already attached.
    pub fn attach(&mut self, provenance: Provenance) -> bool {
        let key = provenance.source_key();
        if self.provenance.iter().any(|p| p.source_key() == key) {
            return false;
        }
        self.provenance.push(provenance);
        true
    }
}

/// Shortest decimal text of a number (`7.20` and `7.2` are one value).
pub fn format_number(v: f64) -> String {
    let s = format!("{v}");
    if s.contains('e') {
        format!("{v:.6}")
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_owned()
    } else {
        s
    }
}

/// True if the code belongs to the system expected for this kind of fact.
pub fn expects(body: &FactBody) -> &'static [CodeSystem] {
    match body {
        FactBody::Observation(_) => &[CodeSystem::Loinc, CodeSystem::SnomedCt],
        FactBody::Condition(_) => &[CodeSystem::Icd10Cm, CodeSystem::SnomedCt],
        FactBody::Medication(_) => &[CodeSystem::RxNorm, CodeSystem::Ndc],
        FactBody::Procedure(_) => &[CodeSystem::Cpt, CodeSystem::SnomedCt, CodeSystem::Icd10Cm],
        FactBody::Allergy(_) => &[CodeSystem::RxNorm, CodeSystem::SnomedCt],
        FactBody::Immunization(_) => &[CodeSystem::Cvx],
        FactBody::Encounter(_) => &[CodeSystem::SnomedCt, CodeSystem::Cpt],
        FactBody::Document(_) => &[CodeSystem::Loinc],
    }
}
