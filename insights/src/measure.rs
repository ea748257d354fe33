//! Quality-measure definitions as data. Each measure is a JSON file in `measures/` (compiled
//! in, listed in [`DEFINITIONS`]), read into [`Measure`]: who is in the population (age, sex,
//! a denominator criterion), who is excluded, what meets the numerator, and the value sets
//! the criteria name. A measure of a shape the criteria below can express needs no Rust.
//!
//! Criteria (`"kind"`): `has` (an item of a value set in a window, optionally with a value
//! test, a minimum count of distinct days, active only), `latest` (the latest day with every
//! component, its lowest or highest value per component compared to a threshold), `age`,
//! `all_of`, `any_of`, `not`. Windows are anchored on the measurement period's start or end.

use crate::record::{ItemKind, Sex};
use chrono::{Months, NaiveDate};
use p360_model::{CodeSystem, Coding};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::OnceLock;

/// Why a measure definition cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum MeasureError {
    #[error("measure definition does not parse: {0}")]
    Parse(#[from] serde_json::Error),
    #[error("measure {measure}: {reason}")]
    Invalid { measure: String, reason: String },
    #[error("measures/{file}.json: {source}")]
    File {
        file: &'static str,
        #[source]
        source: Box<MeasureError>,
    },
}

/// One measure.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Measure {
    /// Stable id (`cms122`), also the file name.
    pub id: String,
    pub title: String,
    /// The specification followed, with its version and performance period.
    pub source: String,
    pub url: String,
    pub version: String,
    /// What the measure checks, in plain words for the patient.
    pub description: String,
    /// A numerator hit is bad (CMS122: poor control).
    #[serde(default)]
    pub inverse: bool,
    #[serde(default)]
    pub age: Option<AgeRange>,
    /// Only patients of this sex are in the population.
    #[serde(default)]
    pub sex: Option<Sex>,
    /// The rest of the initial population (a diagnosis…); none: age and sex alone.
    #[serde(default)]
    pub denominator: Option<Criterion>,
    pub numerator: Criterion,
    #[serde(default)]
    pub exclusions: Vec<Exclusion>,
    /// Denominator exceptions: remove the patient only when the numerator is not met.
    #[serde(default)]
    pub exceptions: Vec<Exclusion>,
    pub value_sets: BTreeMap<String, ValueSet>,
    pub tip: TipText,
    /// What of the specification this definition could not express, and p360's choices.
    #[serde(default)]
    pub notes: Vec<String>,
}

/// An age criterion, in completed years (or months) on a day of the period.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgeRange {
    #[serde(default)]
    pub min_years: Option<u32>,
    #[serde(default)]
    pub max_years: Option<u32>,
    #[serde(default)]
    pub min_months: Option<u32>,
    pub at: PeriodPoint,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PeriodPoint {
    PeriodStart,
    PeriodEnd,
}

/// A day relative to the measurement period: `anchor` moved by years, months and days.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Anchor {
    pub anchor: PeriodPoint,
    #[serde(default)]
    pub years: i32,
    #[serde(default)]
    pub months: i32,
    #[serde(default)]
    pub days: i64,
}

impl Anchor {
    pub fn resolve(&self, start: NaiveDate, end: NaiveDate) -> Option<NaiveDate> {
        let base = match self.anchor {
            PeriodPoint::PeriodStart => start,
            PeriodPoint::PeriodEnd => end,
        };
        let months = self.years.checked_mul(12)?.checked_add(self.months)?;
        let moved = if months >= 0 {
            base.checked_add_months(Months::new(months.unsigned_abs()))?
        } else {
            base.checked_sub_months(Months::new(months.unsigned_abs()))?
        };
        moved.checked_add_signed(chrono::Duration::days(self.days))
    }
}

/// Which days count: `from` and `to` inclusive, either open when absent.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Window {
    #[serde(default)]
    pub from: Option<Anchor>,
    #[serde(default)]
    pub to: Option<Anchor>,
    #[serde(default)]
    pub test: WindowTest,
}

/// How an item's span (its day to its last day, open for what is still active) meets the
/// window: `overlaps` (CQL "overlaps" / "during" for one-day items) or `starts` (its first
/// day is in the window: "starts on or before end of the period").
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WindowTest {
    #[default]
    Overlaps,
    Starts,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    #[serde(rename = "<")]
    Lt,
    #[serde(rename = "<=")]
    Le,
    #[serde(rename = ">")]
    Gt,
    #[serde(rename = ">=")]
    Ge,
}

impl Op {
    pub fn holds(self, value: f64, threshold: f64) -> bool {
        match self {
            Op::Lt => value < threshold,
            Op::Le => value <= threshold,
            Op::Gt => value > threshold,
            Op::Ge => value >= threshold,
        }
    }
}

/// A value compared with a threshold in one of `units` (compared without case), or in a
/// unit `convert` can bring to the first of them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValueTest {
    pub op: Op,
    pub threshold: f64,
    pub units: Vec<String>,
    #[serde(default)]
    pub convert: Vec<Conversion>,
}

/// `value × factor + offset` from `unit` to the test's unit.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Conversion {
    pub unit: String,
    pub factor: f64,
    #[serde(default)]
    pub offset: f64,
}

impl ValueTest {
    /// The value in the test's unit; None when the unit is not one it can read.
    pub fn normalise(&self, value: f64, unit: Option<&str>) -> Option<f64> {
        let unit = unit.unwrap_or("").trim();
        if self.units.iter().any(|u| u.eq_ignore_ascii_case(unit)) {
            return Some(value);
        }
        self.convert
            .iter()
            .find(|c| c.unit.eq_ignore_ascii_case(unit))
            .map(|c| value * c.factor + c.offset)
    }

    /// Some(pass) or None when the unit cannot be read.
    pub fn check(&self, value: f64, unit: Option<&str>) -> Option<bool> {
        self.normalise(value, unit)
            .map(|v| self.op.holds(v, self.threshold))
    }
}

/// A leaf: some item of the value sets in the window.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Has {
    /// Unique within the measure; named in evidence as the criterion.
    pub id: String,
    /// Plain words for what it is ("mammogram").
    pub label: String,
    pub value_sets: Vec<String>,
    /// Empty: any kind.
    #[serde(default)]
    pub item_kinds: Vec<ItemKind>,
    pub window: Window,
    #[serde(default)]
    pub active_only: bool,
    /// Observations must carry a value (CQL `value is not null`).
    #[serde(default)]
    pub require_value: bool,
    #[serde(default)]
    pub value: Option<ValueTest>,
    /// Distinct days needed.
    #[serde(default = "one")]
    pub min_count: usize,
    /// What data would satisfy it; `{year}`, `{from}`, `{to}` are filled in.
    pub missing: String,
}

fn one() -> usize {
    1
}

/// One component of a `latest` criterion (HbA1c; systolic and diastolic pressure).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Component {
    pub value_sets: Vec<String>,
    pub test: ValueTest,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SameDay {
    #[default]
    Lowest,
    Highest,
}

/// A leaf: on the latest day in the window that has a reading of every component, each
/// component's lowest (or highest) value passes its test.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Latest {
    pub id: String,
    pub label: String,
    pub components: Vec<Component>,
    pub window: Window,
    /// Empty: observations.
    #[serde(default)]
    pub item_kinds: Vec<ItemKind>,
    #[serde(default)]
    pub same_day: SameDay,
    /// Readings on a day within an encounter of these classes do not count (CMS165: ED and
    /// inpatient).
    #[serde(default)]
    pub exclude_during_encounter_classes: Vec<String>,
    /// The outcome when no day has every component.
    pub if_none: bool,
    /// The outcome when the latest day's reading has no value.
    pub if_no_value: bool,
    pub missing: String,
    /// What would change the outcome once a reading exists (default: `missing`).
    #[serde(default)]
    pub missing_when_present: Option<String>,
}

/// A criterion tree.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Criterion {
    Has(Has),
    Latest(Latest),
    Age(AgeRange),
    AllOf {
        of: Vec<Criterion>,
        #[serde(default)]
        missing: Option<String>,
    },
    AnyOf {
        of: Vec<Criterion>,
        /// One phrase for all the ways to satisfy it (else each child's is listed).
        #[serde(default)]
        missing: Option<String>,
    },
    Not {
        of: Box<Criterion>,
    },
}

impl Criterion {
    /// Every leaf with an id (has, latest), depth first.
    pub fn leaves(&self) -> Vec<(&str, &str)> {
        let mut out = Vec::new();
        self.walk(&mut out);
        out
    }

    fn walk<'a>(&'a self, out: &mut Vec<(&'a str, &'a str)>) {
        match self {
            Criterion::Has(h) => out.push((&h.id, &h.label)),
            Criterion::Latest(l) => out.push((&l.id, &l.label)),
            Criterion::Age(_) => {}
            Criterion::AllOf { of, .. } | Criterion::AnyOf { of, .. } => {
                for c in of {
                    c.walk(out);
                }
            }
            Criterion::Not { of } => of.walk(out),
        }
    }

    fn value_set_refs<'a>(&'a self, out: &mut Vec<&'a str>) {
        match self {
            Criterion::Has(h) => out.extend(h.value_sets.iter().map(String::as_str)),
            Criterion::Latest(l) => {
                for c in &l.components {
                    out.extend(c.value_sets.iter().map(String::as_str));
                }
            }
            Criterion::Age(_) => {}
            Criterion::AllOf { of, .. } | Criterion::AnyOf { of, .. } => {
                for c in of {
                    c.value_set_refs(out);
                }
            }
            Criterion::Not { of } => of.value_set_refs(out),
        }
    }

    fn windows<'a>(&'a self, out: &mut Vec<(&'a str, &'a Window)>) {
        match self {
            Criterion::Has(h) => out.push((&h.id, &h.window)),
            Criterion::Latest(l) => out.push((&l.id, &l.window)),
            Criterion::Age(_) => {}
            Criterion::AllOf { of, .. } | Criterion::AnyOf { of, .. } => {
                for c in of {
                    c.windows(out);
                }
            }
            Criterion::Not { of } => of.windows(out),
        }
    }
}

/// A denominator exclusion or exception.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Exclusion {
    pub id: String,
    /// Plain words, shown as the result's exclusion reason.
    pub reason: String,
    pub criterion: Criterion,
}

/// The patient-facing tip for an open gap.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TipText {
    pub title: String,
    /// When nothing was found.
    pub text: String,
    /// When something was found that does not meet the goal (an HbA1c above 9 %).
    #[serde(default)]
    pub text_when_present: Option<String>,
}

/// How an include's codes match a coding's code.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Match {
    #[default]
    Exact,
    /// The code starts with one of them (ICD-10-CM categories whose whole subtree is in the
    /// value set); dots are ignored on both sides.
    Prefix,
}

/// Codes of one system in a value set.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Include {
    pub system: CodeSystem,
    #[serde(rename = "match", default)]
    pub matching: Match,
    pub codes: Vec<String>,
    /// Where these codes come from when not from the value set's expansion (e.g. claims
    /// codes p360 adds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawValueSet {
    name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    oid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    source: Option<String>,
    include: Vec<Include>,
}

/// A named set of codes (a VSAC value set where `oid` is given), indexed for lookup.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawValueSet", into = "RawValueSet")]
pub struct ValueSet {
    pub name: String,
    pub oid: Option<String>,
    /// The expansion it was taken from.
    pub source: Option<String>,
    pub include: Vec<Include>,
    exact: HashSet<(CodeSystem, String)>,
    prefixes: Vec<(CodeSystem, String)>,
}

/// Codes compared as written, except ICD-10-CM (dots dropped) and case everywhere.
fn normalise_code(system: &CodeSystem, code: &str) -> String {
    let code = code.trim().to_ascii_uppercase();
    if *system == CodeSystem::Icd10Cm {
        code.replace('.', "")
    } else {
        code
    }
}

impl TryFrom<RawValueSet> for ValueSet {
    type Error = String;

    fn try_from(raw: RawValueSet) -> Result<Self, String> {
        let mut exact = HashSet::new();
        let mut prefixes = Vec::new();
        for inc in &raw.include {
            for code in &inc.codes {
                let shaped = match inc.matching {
                    // A category prefix is at least the three characters of a category.
                    Match::Prefix => code.len() >= 3 && inc.system.check_code(code),
                    Match::Exact => inc.system.check_code(code),
                };
                if !shaped {
                    return Err(format!(
                        "value set {:?}: {:?} is not a {:?} code",
                        raw.name, code, inc.system
                    ));
                }
                let key = (inc.system.clone(), normalise_code(&inc.system, code));
                match inc.matching {
                    Match::Exact => {
                        exact.insert(key);
                    }
                    Match::Prefix => prefixes.push(key),
                }
            }
        }
        Ok(Self {
            name: raw.name,
            oid: raw.oid,
            source: raw.source,
            include: raw.include,
            exact,
            prefixes,
        })
    }
}

impl From<ValueSet> for RawValueSet {
    fn from(v: ValueSet) -> Self {
        Self {
            name: v.name,
            oid: v.oid,
            source: v.source,
            include: v.include,
        }
    }
}

impl ValueSet {
    /// The first of `codes` in the set.
    pub fn matching<'a>(&self, codes: &'a [Coding]) -> Option<&'a Coding> {
        codes.iter().find(|c| self.contains(c))
    }

    pub fn contains(&self, coding: &Coding) -> bool {
        let code = normalise_code(&coding.system, &coding.code);
        if self.exact.contains(&(coding.system.clone(), code.clone())) {
            return true;
        }
        self.prefixes
            .iter()
            .any(|(s, p)| *s == coding.system && code.starts_with(p.as_str()))
    }

    /// Number of codes listed (exact and prefixes).
    pub fn len(&self) -> usize {
        self.exact.len() + self.prefixes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Measure {
    /// The leaf labels by criterion id, over the denominator, exclusions, exceptions and
    /// numerator.
    pub fn labels(&self) -> BTreeMap<&str, &str> {
        self.criteria()
            .into_iter()
            .flat_map(Criterion::leaves)
            .collect()
    }

    fn criteria(&self) -> Vec<&Criterion> {
        let mut all: Vec<&Criterion> = Vec::new();
        all.extend(self.denominator.iter());
        all.extend(self.exclusions.iter().map(|e| &e.criterion));
        all.extend(self.exceptions.iter().map(|e| &e.criterion));
        all.push(&self.numerator);
        all
    }

    fn invalid(&self, reason: impl Into<String>) -> MeasureError {
        MeasureError::Invalid {
            measure: self.id.clone(),
            reason: reason.into(),
        }
    }

    /// Checks what serde cannot: ids, references to value sets, windows that are not empty.
    pub fn validate(&self) -> Result<(), MeasureError> {
        let id_ok = !self.id.is_empty()
            && self
                .id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !id_ok {
            return Err(self.invalid("id must be lowercase letters, digits and _"));
        }
        let mut seen = BTreeSet::new();
        for (id, _) in self.criteria().into_iter().flat_map(Criterion::leaves) {
            if !seen.insert(id) {
                return Err(self.invalid(format!("criterion id {id:?} used twice")));
            }
        }
        let mut exclusion_ids = BTreeSet::new();
        for e in self.exclusions.iter().chain(&self.exceptions) {
            if !exclusion_ids.insert(e.id.as_str()) {
                return Err(self.invalid(format!("exclusion id {:?} used twice", e.id)));
            }
        }
        let mut refs = Vec::new();
        for c in self.criteria() {
            c.value_set_refs(&mut refs);
        }
        for r in &refs {
            if !self.value_sets.contains_key(*r) {
                return Err(self.invalid(format!("value set {r:?} is not defined")));
            }
        }
        for name in self.value_sets.keys() {
            if !refs.contains(&name.as_str()) {
                return Err(self.invalid(format!("value set {name:?} is never used")));
            }
        }
        for (name, vs) in &self.value_sets {
            if vs.is_empty() {
                return Err(self.invalid(format!("value set {name:?} has no codes")));
            }
        }
        // Windows are checked on one sample period: every period has the same shape.
        let (start, end) = (
            NaiveDate::from_ymd_opt(2025, 1, 1),
            NaiveDate::from_ymd_opt(2025, 12, 31),
        );
        let (Some(start), Some(end)) = (start, end) else {
            return Err(self.invalid("sample period"));
        };
        let mut windows = Vec::new();
        for c in self.criteria() {
            c.windows(&mut windows);
        }
        for (id, w) in windows {
            let from = w.from.as_ref().map(|a| a.resolve(start, end));
            let to = w.to.as_ref().map(|a| a.resolve(start, end));
            if from == Some(None) || to == Some(None) {
                return Err(self.invalid(format!("criterion {id:?}: window out of range")));
            }
            if let (Some(Some(f)), Some(Some(t))) = (from, to)
                && f > t
            {
                return Err(self.invalid(format!("criterion {id:?}: window ends before it starts")));
            }
        }
        self.validate_shapes()
    }

    fn validate_shapes(&self) -> Result<(), MeasureError> {
        fn check(c: &Criterion, m: &Measure) -> Result<(), MeasureError> {
            match c {
                Criterion::Has(h) if h.min_count == 0 => {
                    Err(m.invalid(format!("criterion {:?}: min_count 0", h.id)))
                }
                Criterion::Has(h) if h.value_sets.is_empty() => {
                    Err(m.invalid(format!("criterion {:?}: no value set", h.id)))
                }
                Criterion::Latest(l)
                    if l.components.is_empty()
                        || l.components.iter().any(|c| c.value_sets.is_empty()) =>
                {
                    Err(m.invalid(format!(
                        "criterion {:?}: a component without value set",
                        l.id
                    )))
                }
                Criterion::AllOf { of, .. } | Criterion::AnyOf { of, .. } => {
                    if of.is_empty() {
                        return Err(m.invalid("all_of / any_of with nothing in it"));
                    }
                    of.iter().try_for_each(|c| check(c, m))
                }
                Criterion::Not { of } => check(of, m),
                _ => Ok(()),
            }
        }
        self.criteria().into_iter().try_for_each(|c| check(c, self))
    }
}

/// Reads and checks one definition.
pub fn load(json: &str) -> Result<Measure, MeasureError> {
    let m: Measure = serde_json::from_str(json)?;
    m.validate()?;
    Ok(m)
}

/// The compiled-in definitions: (file id, JSON). Adding a measure is adding its file and
/// vectors and one line here.
pub const DEFINITIONS: &[(&str, &str)] = &[
    ("cms122", include_str!("../measures/cms122.json")),
    ("cms165", include_str!("../measures/cms165.json")),
    ("cms125", include_str!("../measures/cms125.json")),
    ("cms130", include_str!("../measures/cms130.json")),
    ("kidney", include_str!("../measures/kidney.json")),
    ("cms347", include_str!("../measures/cms347.json")),
    ("flu", include_str!("../measures/flu.json")),
];

struct Loaded {
    measures: Vec<Measure>,
    errors: Vec<MeasureError>,
}

fn loaded() -> &'static Loaded {
    static LOADED: OnceLock<Loaded> = OnceLock::new();
    LOADED.get_or_init(|| {
        let mut measures = Vec::new();
        let mut errors = Vec::new();
        for (file, json) in DEFINITIONS {
            let wrap = |e: MeasureError| MeasureError::File {
                file,
                source: Box::new(e),
            };
            match load(json) {
                Ok(m) if m.id == *file => measures.push(m),
                Ok(m) => errors.push(wrap(MeasureError::Invalid {
                    reason: format!("id differs from its file name {file:?}"),
                    measure: m.id,
                })),
                Err(e) => errors.push(wrap(e)),
            }
        }
        Loaded { measures, errors }
    })
}

/// Every compiled-in measure that loads. A definition that does not load is left out (and
/// listed by [`load_errors`], which the tests require to be empty) rather than taking the
/// service down.
pub fn all() -> &'static [Measure] {
    &loaded().measures
}

/// The definitions that failed to load.
pub fn load_errors() -> &'static [MeasureError] {
    &loaded().errors
}

pub fn by_id(id: &str) -> Option<&'static Measure> {
    all().iter().find(|m| m.id == id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_definition_loads() {
        let errors: Vec<String> = load_errors().iter().map(ToString::to_string).collect();
        assert!(errors.is_empty(), "{errors:#?}");
        assert_eq!(all().len(), DEFINITIONS.len());
        for id in [
            "cms122", "cms165", "cms125", "cms130", "kidney", "cms347", "flu",
        ] {
            assert!(by_id(id).is_some(), "{id}");
        }
    }

    #[test]
    fn prefix_and_exact_matching() {
        let vs: ValueSet = serde_json::from_value(serde_json::json!({
            "name": "t",
            "include": [
                {"system": "icd10_cm", "match": "prefix", "codes": ["E11"]},
                {"system": "icd10_cm", "codes": ["Z90.13"]},
                {"system": "cpt", "codes": ["G0105"]}
            ]
        }))
        .unwrap();
        let c = |s, code: &str| Coding::new(s, code, None);
        assert!(vs.contains(&c(CodeSystem::Icd10Cm, "E11.9")));
        assert!(vs.contains(&c(CodeSystem::Icd10Cm, "E119")));
        assert!(vs.contains(&c(CodeSystem::Icd10Cm, "e11.65")));
        assert!(!vs.contains(&c(CodeSystem::Icd10Cm, "E10.9")));
        assert!(vs.contains(&c(CodeSystem::Icd10Cm, "Z9013")));
        assert!(
            !vs.contains(&c(CodeSystem::Icd10Cm, "Z90.130")),
            "exact is exact"
        );
        assert!(
            !vs.contains(&c(CodeSystem::SnomedCt, "E11")),
            "system matters"
        );
        assert!(vs.contains(&c(CodeSystem::Cpt, "g0105")));
    }

    #[test]
    fn malformed_codes_and_references_are_refused() {
        let bad_loinc = serde_json::from_value::<ValueSet>(serde_json::json!({
            "name": "t", "include": [{"system": "loinc", "codes": ["4548-5"]}]
        }));
        assert!(bad_loinc.is_err(), "LOINC check digit");
        let json = include_str!("../measures/cms122.json");
        let mut v: serde_json::Value = serde_json::from_str(json).unwrap();
        v["value_sets"].as_object_mut().unwrap().remove("hba1c");
        let e = load(&v.to_string()).unwrap_err();
        assert!(e.to_string().contains("hba1c"), "{e}");
        let mut v: serde_json::Value = serde_json::from_str(json).unwrap();
        v["numerator"]["typo"] = serde_json::json!(1);
        assert!(load(&v.to_string()).is_err(), "unknown fields refused");
    }

    #[test]
    fn anchors() {
        let s = NaiveDate::from_ymd_opt(2025, 1, 1).unwrap();
        let e = NaiveDate::from_ymd_opt(2025, 12, 31).unwrap();
        let a = |anchor, years, months, days| Anchor {
            anchor,
            years,
            months,
            days,
        };
        let d = |y, m, dd| NaiveDate::from_ymd_opt(y, m, dd);
        assert_eq!(
            a(PeriodPoint::PeriodStart, -2, 9, 0).resolve(s, e),
            d(2023, 10, 1)
        );
        assert_eq!(
            a(PeriodPoint::PeriodStart, 0, 6, -1).resolve(s, e),
            d(2025, 6, 30)
        );
        assert_eq!(
            a(PeriodPoint::PeriodStart, -9, 0, 0).resolve(s, e),
            d(2016, 1, 1)
        );
        assert_eq!(
            a(PeriodPoint::PeriodEnd, 0, 0, 0).resolve(s, e),
            d(2025, 12, 31)
        );
        assert_eq!(
            a(PeriodPoint::PeriodStart, 0, -5, 0).resolve(s, e),
            d(2024, 8, 1)
        );
    }
}
