//! The patient as the measures see them: birth date, sex, and one flat [`Item`] per clinical
//! fact, with every coding kept so that a value set can match any of them.

use chrono::{Datelike, NaiveDate};
use p360_model::{ClinicalStatus, Coding, Fact, FactBody, MedicationStatus, Status, Value, When};
use serde::{Deserialize, Serialize};

/// Administrative sex, as far as the record states it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sex {
    Female,
    Male,
    #[default]
    Unknown,
}

impl Sex {
    /// Reads the spellings feeds and FHIR use (`F`, `female`, `M`, `male`, any case); anything
    /// else, including `other`, is unknown: a sex-specific measure then cannot be decided.
    pub fn parse(raw: &str) -> Sex {
        match raw.trim().to_ascii_lowercase().as_str() {
            "f" | "female" | "woman" | "w" => Sex::Female,
            "m" | "male" | "man" => Sex::Male,
            _ => Sex::Unknown,
        }
    }
}

/// What kind of fact an item came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemKind {
    Observation,
    Condition,
    Medication,
    Procedure,
    Immunization,
    Encounter,
}

/// One fact, flattened for measure logic.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Item {
    pub fact_id: String,
    pub kind: ItemKind,
    /// Every coding of the fact (for encounters: visit codes, then the diagnoses addressed).
    pub codes: Vec<Coding>,
    pub display: Option<String>,
    /// Effective / onset / first fill or start / performed / occurred / encounter day.
    pub date: NaiveDate,
    /// Medication: last fill (or period end); procedures and encounters: period end.
    pub end: Option<NaiveDate>,
    pub value: Option<f64>,
    pub unit: Option<String>,
    /// Condition clinical status active / medication status active; true for the rest.
    pub active: bool,
    /// Encounters only: the class as the feed gave it (`AMB`, `EMER`, `IMP`…).
    pub encounter_class: Option<String>,
    /// Provenance source kinds (`payor_feed`, `ocr`, `manual_entry`…), each once.
    pub sources: Vec<String>,
    /// The fact is `Confirmed` (OCR awaiting the patient's review is not).
    pub confirmed: bool,
}

impl Item {
    /// The last day the item holds, when it is bounded: conditions and medications that are
    /// still active with no end are open (None); everything else ends on `end` or its day.
    pub fn last_day(&self) -> Option<NaiveDate> {
        let ongoing = self.active
            && self.end.is_none()
            && matches!(self.kind, ItemKind::Condition | ItemKind::Medication);
        if ongoing {
            None
        } else {
            Some(self.end.unwrap_or(self.date).max(self.date))
        }
    }
}

/// The record the engine evaluates.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PatientRecord {
    pub birth_date: Option<NaiveDate>,
    pub sex: Sex,
    pub items: Vec<Item>,
}

impl PatientRecord {
    /// Skips entered-in-error facts, allergies and documents: allergies carry no date a
    /// measure can use here, and a document is the container, not the fact.
    pub fn from_facts(birth_date: Option<NaiveDate>, sex: Sex, facts: &[Fact]) -> Self {
        let items = facts.iter().filter_map(item_of).collect();
        Self {
            birth_date,
            sex,
            items,
        }
    }

    /// Age in completed years on `day` (a 29 February birthday falls on 1 March in other
    /// years); None without a birth date or before birth.
    pub fn age_on(&self, day: NaiveDate) -> Option<u32> {
        let months = self.age_months_on(day)?;
        Some(months / 12)
    }

    /// Age in completed months on `day` (for infant criteria such as "6 months and older").
    pub fn age_months_on(&self, day: NaiveDate) -> Option<u32> {
        let birth = self.birth_date?;
        if day < birth {
            return None;
        }
        let mut months =
            (day.year() - birth.year()) * 12 + day.month() as i32 - birth.month() as i32;
        if day.day() < birth.day() {
            months -= 1;
        }
        u32::try_from(months).ok()
    }
}

fn period_end(w: &When) -> Option<NaiveDate> {
    match w {
        When::Period { end, .. } => *end,
        _ => None,
    }
}

fn item_of(fact: &Fact) -> Option<Item> {
    if fact.status == Status::EnteredInError {
        return None;
    }
    // Facts without a date of their own (an undated problem-list entry) are placed on the day
    // we first recorded them: later than the truth, never earlier.
    let recorded = fact
        .provenance
        .iter()
        .map(|p| p.recorded.date_naive())
        .min();
    let (kind, codes, display, date, end, value, unit, active, class) = match &fact.body {
        FactBody::Observation(o) => {
            let (value, unit) = match &o.value {
                Some(Value::Quantity { value, unit, .. }) => (Some(*value), Some(unit.clone())),
                _ => (None, None),
            };
            let display = o.code.iter().find_map(|c| c.display.clone());
            (
                ItemKind::Observation,
                o.code.clone(),
                display,
                o.effective.day(),
                period_end(&o.effective),
                value,
                unit,
                true,
                None,
            )
        }
        FactBody::Condition(c) => (
            ItemKind::Condition,
            c.code.clone(),
            c.code.iter().find_map(|c| c.display.clone()),
            c.onset.or(c.recorded).or(recorded)?,
            None,
            None,
            None,
            c.clinical_status == ClinicalStatus::Active,
            None,
        ),
        FactBody::Medication(m) => {
            let date = m.effective.as_ref().map(When::day).or(recorded)?;
            (
                ItemKind::Medication,
                m.code.clone(),
                Some(m.text.clone()),
                date,
                m.effective.as_ref().and_then(period_end),
                None,
                None,
                m.status == MedicationStatus::Active,
                None,
            )
        }
        FactBody::Procedure(p) => (
            ItemKind::Procedure,
            p.code.clone(),
            p.code.iter().find_map(|c| c.display.clone()),
            p.performed.day(),
            period_end(&p.performed),
            None,
            None,
            true,
            None,
        ),
        FactBody::Immunization(i) => (
            ItemKind::Immunization,
            i.vaccine.clone(),
            i.vaccine.iter().find_map(|c| c.display.clone()),
            i.occurred.day(),
            None,
            None,
            None,
            true,
            None,
        ),
        FactBody::Encounter(e) => {
            let codes: Vec<Coding> = e.kind.iter().chain(&e.reason).cloned().collect();
            (
                ItemKind::Encounter,
                codes,
                e.kind.iter().find_map(|c| c.display.clone()),
                e.period.day(),
                period_end(&e.period),
                None,
                None,
                true,
                Some(e.class.clone()),
            )
        }
        FactBody::Allergy(_) | FactBody::Document(_) => return None,
    };
    let mut sources: Vec<String> = Vec::new();
    for p in &fact.provenance {
        let s = p.source_kind.as_str();
        if !sources.iter().any(|x| x == s) {
            sources.push(s.to_owned());
        }
    }
    Some(Item {
        fact_id: fact.id.as_str().to_owned(),
        kind,
        codes,
        display,
        date,
        end,
        value,
        unit,
        active,
        encounter_class: class,
        sources,
        confirmed: fact.status == Status::Confirmed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};
    use p360_model::{
        CodeSystem, Condition, Medication, Observation, ObservationKind, Provenance, SourceKind,
    };

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    // The patient id type lives in p360-events; built through serde to need no extra dependency.
    fn patient<T: serde::de::DeserializeOwned>() -> T {
        serde_json::from_value(serde_json::json!("pat-1")).unwrap()
    }

    fn prov(kind: SourceKind) -> Provenance {
        Provenance::new(
            kind,
            "src-1",
            Utc.with_ymd_and_hms(2025, 6, 1, 0, 0, 0).unwrap(),
        )
    }

    fn hba1c(value: f64, on: &str, status: Status) -> Fact {
        Fact::new(
            patient(),
            FactBody::Observation(Observation {
                kind: ObservationKind::Laboratory,
                code: vec![
                    Coding::new(CodeSystem::Loinc, "4548-4", Some("Hemoglobin A1c")),
                    Coding::new(CodeSystem::Loinc, "17856-6", None),
                ],
                value: Some(Value::Quantity {
                    value,
                    unit: "%".into(),
                    comparator: None,
                }),
                effective: When::Date(day(on)),
                reference_range: None,
                interpretation: None,
            }),
            status,
            prov(SourceKind::Ocr),
        )
    }

    #[test]
    fn entered_in_error_skipped_and_codings_kept() {
        let kept = hba1c(8.1, "2025-03-01", Status::Unconfirmed);
        let retracted = hba1c(12.0, "2025-04-01", Status::EnteredInError);
        let r = PatientRecord::from_facts(None, Sex::Unknown, &[kept.clone(), retracted]);
        assert_eq!(r.items.len(), 1);
        let it = &r.items[0];
        assert_eq!(it.fact_id, kept.id.as_str());
        assert_eq!(it.codes.len(), 2, "every coding kept");
        assert_eq!(it.codes[1].code, "17856-6");
        assert_eq!(it.value, Some(8.1));
        assert_eq!(it.unit.as_deref(), Some("%"));
        assert!(!it.confirmed);
        assert_eq!(it.sources, vec!["ocr".to_owned()]);
        assert_eq!(it.date, day("2025-03-01"));
    }

    #[test]
    fn medication_period_and_condition_status() {
        let mut med = Fact::new(
            patient(),
            FactBody::Medication(Medication {
                code: vec![Coding::new(CodeSystem::RxNorm, "83367", None)],
                text: "Atorvastatin".into(),
                strength: None,
                form: None,
                dosage: None,
                status: MedicationStatus::Active,
                effective: Some(When::Period {
                    start: day("2025-01-05"),
                    end: Some(day("2025-05-02")),
                }),
            }),
            Status::Confirmed,
            prov(SourceKind::PayorFeed),
        );
        med.attach(Provenance::new(
            SourceKind::PayorFeed,
            "src-2",
            Utc.with_ymd_and_hms(2025, 6, 2, 0, 0, 0).unwrap(),
        ));
        let cond = Fact::new(
            patient(),
            FactBody::Condition(Condition {
                code: vec![Coding::new(CodeSystem::Icd10Cm, "E11.9", None)],
                clinical_status: ClinicalStatus::Resolved,
                onset: None,
                recorded: None,
            }),
            Status::Confirmed,
            prov(SourceKind::ManualEntry),
        );
        let r = PatientRecord::from_facts(None, Sex::Female, &[med, cond]);
        assert_eq!(r.items.len(), 2);
        let m = &r.items[0];
        assert_eq!(
            (m.kind, m.date, m.end),
            (
                ItemKind::Medication,
                day("2025-01-05"),
                Some(day("2025-05-02"))
            )
        );
        assert!(m.active && m.confirmed);
        assert_eq!(
            m.sources,
            vec!["payor_feed".to_owned()],
            "one entry per source kind"
        );
        let c = &r.items[1];
        assert!(!c.active, "resolved is not active");
        assert_eq!(
            c.date,
            day("2025-06-01"),
            "undated condition placed on its recorded day"
        );
        assert_eq!(c.last_day(), Some(day("2025-06-01")));
    }

    #[test]
    fn encounter_keeps_class_and_diagnoses() {
        let visit = Fact::new(
            patient(),
            FactBody::Encounter(p360_model::Encounter {
                class: "EMER".into(),
                kind: vec![Coding::new(CodeSystem::Cpt, "99284", None)],
                period: When::Period {
                    start: day("2025-03-01"),
                    end: Some(day("2025-03-02")),
                },
                reason: vec![Coding::new(CodeSystem::Icd10Cm, "I10", None)],
                note: None,
                practitioner_npi: None,
            }),
            Status::Confirmed,
            prov(SourceKind::PayorFeed),
        );
        let r = PatientRecord::from_facts(None, Sex::Male, &[visit]);
        let e = &r.items[0];
        assert_eq!(e.kind, ItemKind::Encounter);
        assert_eq!(e.encounter_class.as_deref(), Some("EMER"));
        let codes: Vec<&str> = e.codes.iter().map(|c| c.code.as_str()).collect();
        assert_eq!(codes, ["99284", "I10"]);
        assert_eq!(e.end, Some(day("2025-03-02")));
    }

    #[test]
    fn ages() {
        let r = PatientRecord {
            birth_date: Some(day("2000-02-29")),
            ..PatientRecord::default()
        };
        assert_eq!(r.age_on(day("2001-02-28")), Some(0));
        assert_eq!(r.age_on(day("2001-03-01")), Some(1));
        assert_eq!(r.age_on(day("2004-02-29")), Some(4));
        assert_eq!(r.age_on(day("1999-12-31")), None);
        assert_eq!(r.age_months_on(day("2000-08-29")), Some(6));
        assert_eq!(r.age_months_on(day("2000-08-28")), Some(5));
        assert_eq!(PatientRecord::default().age_on(day("2025-01-01")), None);
    }

    #[test]
    fn sex_spellings() {
        assert_eq!(Sex::parse("F"), Sex::Female);
        assert_eq!(Sex::parse(" female "), Sex::Female);
        assert_eq!(Sex::parse("M"), Sex::Male);
        assert_eq!(Sex::parse("Male"), Sex::Male);
        assert_eq!(Sex::parse("other"), Sex::Unknown);
        assert_eq!(Sex::parse(""), Sex::Unknown);
    }
}
