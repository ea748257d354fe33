//! Fact resolution: the statements of a member's linked records folded into one fact per key,
//! every stating record kept as a source ("confirmed by N sources").
//!
//! | fact | key | date |
//! |---|---|---|
//! | condition | ICD-10-CM code | earliest source |
//! | medication | RxNorm ingredient | earliest; fills kept as history |
//! | allergy | system + code | earliest |
//! | observation | LOINC + day (values agree within 1 %, after UCUM conversion) | the day |
//! | encounter | day + provider NPI | the day |
//! | procedure | CPT + day | the day |
//! | immunization | CVX + day | the day |

use crate::codes;
use crate::feeds::{Draft, Statement};
use chrono::NaiveDate;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FactType {
    Condition,
    Observation,
    Medication,
    Encounter,
    Procedure,
    Immunization,
    Allergy,
}

impl FactType {
    pub const ALL: [FactType; 7] = [
        FactType::Condition,
        FactType::Observation,
        FactType::Medication,
        FactType::Encounter,
        FactType::Procedure,
        FactType::Immunization,
        FactType::Allergy,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FactType::Condition => "condition",
            FactType::Observation => "observation",
            FactType::Medication => "medication",
            FactType::Encounter => "encounter",
            FactType::Procedure => "procedure",
            FactType::Immunization => "immunization",
            FactType::Allergy => "allergy",
        }
    }
}

/// One de-duplicated fact of one member.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ResolvedFact {
    pub kind: FactType,
    pub system: String,
    pub code: String,
    pub display: Option<String>,
    pub date: Option<NaiveDate>,
    pub value: Option<f64>,
    pub comparator: Option<String>,
    pub unit: Option<String>,
    /// Encounter class (v3 ActCode).
    pub class: Option<String>,
    pub npi: Option<String>,
    /// The visit code of an encounter.
    pub visit_code: Option<String>,
    /// Fill dates of a medication.
    pub fills: BTreeSet<NaiveDate>,
    /// `<source file>#<record>` of every record that states it.
    pub sources: BTreeSet<String>,
}

/// What is needed to judge statements: void claims and the NDC → ingredient pairs the feeds
/// state (collected in the first pass).
#[derive(Default, Debug)]
pub struct Context {
    pub voids: HashSet<String>,
    pub ndc: HashMap<String, String>,
    /// Ingredient RxCUIs the feeds name as such (pharmacy `rxnorm_ingredient`).
    pub ingredients: HashSet<String>,
}

/// Why a statement made no fact.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Skipped {
    /// Its claim is void (reversed, replaced or denied).
    Void,
    /// A drug whose ingredient could not be determined.
    NoIngredient,
}

/// The facts of one member, by key.
#[derive(Default, Debug, Clone)]
pub struct MemberFacts {
    pub facts: BTreeMap<String, ResolvedFact>,
    /// Statements folded into an existing fact.
    pub merged: u64,
}

pub const ICD10CM: &str = "http://hl7.org/fhir/sid/icd-10-cm";
pub const LOINC: &str = "http://loinc.org";
pub const RXNORM: &str = "http://www.nlm.nih.gov/research/umls/rxnorm";
pub const CPT: &str = "http://www.ama-assn.org/go/cpt";
pub const CVX: &str = "http://hl7.org/fhir/sid/cvx";
pub const ACT_CODE: &str = "http://terminology.hl7.org/CodeSystem/v3-ActCode";

impl Context {
    /// The ingredient RxCUI of a medication statement.
    fn ingredient(
        &self,
        ingredient: &Option<String>,
        rxnorm: &[String],
        ndc: &Option<String>,
        name: &Option<String>,
    ) -> Option<String> {
        if let Some(i) = ingredient {
            return Some(i.clone());
        }
        if let Some(c) = rxnorm
            .iter()
            .find(|c| self.ingredients.contains(*c) || codes::ingredient_by_code(c))
        {
            return Some(c.clone());
        }
        if let Some(i) = rxnorm.iter().find_map(|c| codes::scd_ingredient(c)) {
            return Some(i.to_string());
        }
        if let Some(i) = ndc.as_ref().and_then(|n| self.ndc.get(n)) {
            return Some(i.clone());
        }
        if let Some(i) = name.as_deref().and_then(codes::ingredient_by_name) {
            return Some(i.to_string());
        }
        // An RxNorm code we cannot place: kept as given (most feeds send the ingredient).
        rxnorm.first().cloned()
    }
}

fn blank(kind: FactType, system: &str, code: String) -> ResolvedFact {
    ResolvedFact {
        kind,
        system: system.to_string(),
        code,
        display: None,
        date: None,
        value: None,
        comparator: None,
        unit: None,
        class: None,
        npi: None,
        visit_code: None,
        fills: BTreeSet::new(),
        sources: BTreeSet::new(),
    }
}

fn earliest(a: Option<NaiveDate>, b: Option<NaiveDate>) -> Option<NaiveDate> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, y) => x.or(y),
    }
}

/// The id a statement's source record has in provenance: `<file>#<record>`.
pub fn source_id(file: &str, s: &Statement) -> String {
    format!("{file}#{}", s.record)
}

impl MemberFacts {
    /// Folds one statement in. `file` is the feed it came from (relative to the batch).
    pub fn add(&mut self, ctx: &Context, file: &str, s: &Statement) -> Result<(), Skipped> {
        if s.claim.as_ref().is_some_and(|c| ctx.voids.contains(c)) {
            return Err(Skipped::Void);
        }
        let (key, fresh) = match &s.draft {
            Draft::Condition {
                code,
                display,
                date,
            } => (
                format!("condition|{code}"),
                ResolvedFact {
                    display: display.clone(),
                    date: Some(*date),
                    ..blank(FactType::Condition, ICD10CM, code.clone())
                },
            ),
            Draft::Observation {
                loinc,
                display,
                value,
                comparator,
                unit,
                date,
            } => (
                format!("observation|{loinc}|{date}"),
                ResolvedFact {
                    display: display.clone(),
                    date: Some(*date),
                    value: Some(*value),
                    comparator: comparator.clone(),
                    unit: unit.clone(),
                    ..blank(FactType::Observation, LOINC, loinc.clone())
                },
            ),
            Draft::Medication {
                ingredient,
                rxnorm,
                ndc,
                name,
                date,
                fill,
            } => {
                let Some(code) = ctx.ingredient(ingredient, rxnorm, ndc, name) else {
                    return Err(Skipped::NoIngredient);
                };
                let mut f = ResolvedFact {
                    display: codes::ingredient_name(&code).map(str::to_string),
                    date: Some(*date),
                    ..blank(FactType::Medication, RXNORM, code.clone())
                };
                if *fill {
                    f.fills.insert(*date);
                }
                (format!("medication|{code}"), f)
            }
            Draft::Encounter {
                class,
                date,
                npi,
                kind,
            } => (
                format!("encounter|{date}|{}", npi.as_deref().unwrap_or("")),
                ResolvedFact {
                    date: Some(*date),
                    class: Some(class.clone()),
                    npi: npi.clone(),
                    visit_code: kind.clone(),
                    ..blank(FactType::Encounter, ACT_CODE, class.clone())
                },
            ),
            Draft::Procedure { cpt, date } => (
                format!("procedure|{cpt}|{date}"),
                ResolvedFact {
                    date: Some(*date),
                    ..blank(FactType::Procedure, CPT, cpt.clone())
                },
            ),
            Draft::Immunization { cvx, date } => (
                format!("immunization|{cvx}|{date}"),
                ResolvedFact {
                    date: Some(*date),
                    ..blank(FactType::Immunization, CVX, cvx.clone())
                },
            ),
            Draft::Allergy {
                system,
                code,
                display,
                date,
            } => (
                format!("allergy|{system}|{code}"),
                ResolvedFact {
                    display: display.clone(),
                    date: *date,
                    ..blank(FactType::Allergy, system, code.clone())
                },
            ),
        };
        let source = source_id(file, s);
        match self.facts.get_mut(&key) {
            Some(f) => {
                f.merge(fresh);
                f.sources.insert(source);
                self.merged += 1;
            }
            None => {
                let mut f = fresh;
                f.sources.insert(source);
                self.facts.insert(key, f);
            }
        }
        Ok(())
    }

    /// Folds another accumulator of the same member in (parallel passes).
    pub fn absorb(&mut self, other: MemberFacts) {
        self.merged += other.merged;
        for (k, f) in other.facts {
            match self.facts.get_mut(&k) {
                Some(mine) => {
                    self.merged += 1;
                    mine.merge(f);
                }
                None => {
                    self.facts.insert(k, f);
                }
            }
        }
    }
}

impl ResolvedFact {
    /// Another statement of the same fact: the earliest date wins (conditions, medications,
    /// allergies; the others share their day by key), fills accumulate, and what this fact
    /// lacks (a display, a unit, a class) is taken from the other; sources are united.
    fn merge(&mut self, other: ResolvedFact) {
        self.date = earliest(self.date, other.date);
        self.fills.extend(other.fills);
        self.sources.extend(other.sources);
        if self.display.is_none() {
            self.display = other.display;
        }
        if self.unit.is_none() {
            self.unit = other.unit;
        }
        if self.value.is_none() {
            self.value = other.value;
            self.comparator = other.comparator;
        }
        if self.visit_code.is_none() {
            self.visit_code = other.visit_code;
        }
    }
}
