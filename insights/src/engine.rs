//! Evaluates a [`Measure`] on a [`PatientRecord`] for the calendar year of `as_of`.
//!
//! Criteria are three-valued (true, false, unknown): a birth date or sex the record lacks makes
//! a criterion unknown rather than false, so "we have no data" never becomes "you have no gap".
//! The measure is decided twice, on confirmed facts only and on every fact; when the two
//! disagree, only unconfirmed facts (OCR awaiting review) would decide it, and the result says
//! which facts to confirm instead of asserting either answer.

use crate::measure::{
    AgeRange, Criterion, Has, Latest, Measure, PeriodPoint, SameDay, Window, WindowTest,
};
use crate::record::{Item, ItemKind, PatientRecord, Sex};
use chrono::{Datelike, NaiveDate};
use p360_model::Coding;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// Where a patient stands on a measure.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Met,
    Gap,
    Excluded,
    /// The record lacks what decides it (birth date, sex, or only unconfirmed facts would).
    InsufficientData,
    /// Not in the initial population (age, sex, no qualifying diagnosis): not a denominator.
    NotApplicable,
}

/// A fact that decided part of a result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    pub fact_id: String,
    /// `denominator`, `numerator`, `exclusion` or `latest` (the reading a threshold was
    /// applied to).
    pub role: String,
    pub date: NaiveDate,
    pub code: String,
    /// The code system's URI.
    pub system: String,
    pub display: Option<String>,
    pub value: Option<f64>,
    pub unit: Option<String>,
    pub sources: Vec<String>,
    /// The criterion of the measure it satisfied.
    pub criterion: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MeasureResult {
    pub measure_id: String,
    pub version: String,
    pub period_start: NaiveDate,
    pub period_end: NaiveDate,
    pub status: Status,
    pub evidence: Vec<Evidence>,
    /// Plain words for what data would decide it (insufficient data) or close it (gap).
    pub missing: Vec<String>,
    pub exclusion_reason: Option<String>,
    /// One line; names no patient data beyond the evidence.
    pub summary: String,
}

/// The measurement period: the calendar year containing `as_of`.
pub fn period_for(as_of: NaiveDate) -> (NaiveDate, NaiveDate) {
    let y = as_of.year();
    // 1 January and 31 December exist in every year chrono can hold.
    let start = NaiveDate::from_ymd_opt(y, 1, 1).unwrap_or(as_of);
    let end = NaiveDate::from_ymd_opt(y, 12, 31).unwrap_or(as_of);
    (start, end)
}

/// Every compiled-in measure.
pub fn evaluate_all(record: &PatientRecord, as_of: NaiveDate) -> Vec<MeasureResult> {
    crate::measure::all()
        .iter()
        .map(|m| evaluate(m, record, as_of))
        .collect()
}

pub fn evaluate(measure: &Measure, record: &PatientRecord, as_of: NaiveDate) -> MeasureResult {
    let (start, end) = period_for(as_of);
    // Nothing dated after as_of is known at as_of.
    let known: Vec<&Item> = record.items.iter().filter(|i| i.date <= as_of).collect();
    let confirmed: Vec<&Item> = known.iter().copied().filter(|i| i.confirmed).collect();
    let ctx = |items| Ctx {
        m: measure,
        record,
        items,
        start,
        end,
        as_of,
    };
    let sure = decide(&ctx(confirmed));
    let with_unconfirmed = if known.iter().all(|i| i.confirmed) {
        None
    } else {
        Some(decide(&ctx(known)))
    };
    let decision = match with_unconfirmed {
        Some(all) if all.status != sure.status => pending_confirmation(measure, record, sure, all),
        _ => sure,
    };
    let summary = summary(measure, &decision);
    MeasureResult {
        measure_id: measure.id.clone(),
        version: measure.version.clone(),
        period_start: start,
        period_end: end,
        status: decision.status,
        evidence: decision.evidence,
        missing: decision.missing,
        exclusion_reason: decision.exclusion_reason,
        summary,
    }
}

/// Only unconfirmed facts would change the answer: name them (by kind and date, never by
/// value) so the patient can review them.
fn pending_confirmation(
    measure: &Measure,
    record: &PatientRecord,
    sure: Decision,
    all: Decision,
) -> Decision {
    let labels = measure.labels();
    let mut missing = Vec::new();
    for e in &all.evidence {
        let unconfirmed = record
            .items
            .iter()
            .any(|i| i.fact_id == e.fact_id && !i.confirmed);
        if !unconfirmed {
            continue;
        }
        let label = labels
            .get(e.criterion.as_str())
            .copied()
            .unwrap_or("result");
        let photo = e
            .sources
            .iter()
            .any(|s| s == "ocr" || s == "patient_upload");
        let text = if photo {
            format!("confirm the {label} read from your photo of {}", e.date)
        } else {
            format!("confirm the {label} from {}", e.date)
        };
        if !missing.contains(&text) {
            missing.push(text);
        }
    }
    if missing.is_empty() {
        missing.push("review the facts waiting for your confirmation".to_owned());
    }
    if sure.status == Status::InsufficientData {
        for m in sure.missing {
            if !missing.contains(&m) {
                missing.push(m);
            }
        }
    }
    Decision {
        status: Status::InsufficientData,
        evidence: all.evidence,
        missing,
        exclusion_reason: None,
    }
}

fn summary(m: &Measure, d: &Decision) -> String {
    match d.status {
        Status::Met => match d.evidence.iter().rev().find(|e| e.role != "denominator") {
            Some(e) => {
                let labels = m.labels();
                let what = labels
                    .get(e.criterion.as_str())
                    .copied()
                    .unwrap_or("result");
                format!("{}: met ({what} on {})", m.title, e.date)
            }
            None => format!("{}: met", m.title),
        },
        Status::Gap => match d.missing.first() {
            Some(what) => format!("{}: open gap, needs {what}", m.title),
            None => format!("{}: open gap", m.title),
        },
        Status::Excluded => format!(
            "{}: excluded ({})",
            m.title,
            d.exclusion_reason.as_deref().unwrap_or("exclusion")
        ),
        Status::InsufficientData => {
            format!(
                "{}: not enough data, needs {}",
                m.title,
                d.missing.join("; ")
            )
        }
        Status::NotApplicable => format!("{}: does not apply", m.title),
    }
}

struct Ctx<'a> {
    m: &'a Measure,
    record: &'a PatientRecord,
    items: Vec<&'a Item>,
    start: NaiveDate,
    end: NaiveDate,
    as_of: NaiveDate,
}

struct Decision {
    status: Status,
    evidence: Vec<Evidence>,
    missing: Vec<String>,
    exclusion_reason: Option<String>,
}

impl Decision {
    fn new(status: Status, evidence: Vec<Evidence>, missing: Vec<String>) -> Self {
        Self {
            status,
            evidence,
            missing,
            exclusion_reason: None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tri {
    True,
    False,
    Unknown,
}

impl Tri {
    fn from_bool(b: bool) -> Self {
        if b { Tri::True } else { Tri::False }
    }
}

/// A criterion's value, the facts behind it, and what data would change it (or, when
/// unknown, decide it).
struct Eval {
    tri: Tri,
    evidence: Vec<Evidence>,
    missing: Vec<String>,
}

impl Eval {
    fn new(tri: Tri) -> Self {
        Self {
            tri,
            evidence: Vec::new(),
            missing: Vec::new(),
        }
    }
}

fn push_unique(into: &mut Vec<String>, from: Vec<String>) {
    for m in from {
        if !into.contains(&m) {
            into.push(m);
        }
    }
}

fn decide(ctx: &Ctx<'_>) -> Decision {
    let m = ctx.m;
    // Initial population: age, sex, the rest of the denominator (three-valued all-of).
    let mut parts = Vec::new();
    if let Some(age) = &m.age {
        parts.push(eval_age(ctx, age));
    }
    if let Some(sex) = m.sex {
        parts.push(match ctx.record.sex {
            Sex::Unknown => Eval {
                missing: vec!["sex".to_owned()],
                ..Eval::new(Tri::Unknown)
            },
            s => Eval::new(Tri::from_bool(s == sex)),
        });
    }
    if let Some(d) = &m.denominator {
        parts.push(eval(ctx, d, "denominator"));
    }
    let population = combine_all(parts, None);
    match population.tri {
        Tri::False => return Decision::new(Status::NotApplicable, Vec::new(), Vec::new()),
        Tri::Unknown => {
            return Decision::new(Status::InsufficientData, Vec::new(), population.missing);
        }
        Tri::True => {}
    }
    let mut evidence = population.evidence;

    let mut undecided = Vec::new();
    for ex in &m.exclusions {
        let e = eval(ctx, &ex.criterion, "exclusion");
        match e.tri {
            Tri::True => {
                evidence.extend(e.evidence);
                return Decision {
                    exclusion_reason: Some(ex.reason.clone()),
                    ..Decision::new(Status::Excluded, evidence, Vec::new())
                };
            }
            Tri::Unknown => push_unique(&mut undecided, e.missing),
            Tri::False => {}
        }
    }
    if !undecided.is_empty() {
        return Decision::new(Status::InsufficientData, evidence, undecided);
    }

    let num = eval(ctx, &m.numerator, "numerator");
    evidence.extend(num.evidence);
    let met = match (m.inverse, num.tri) {
        (_, Tri::Unknown) => {
            return Decision::new(Status::InsufficientData, evidence, num.missing);
        }
        (false, t) => t == Tri::True,
        (true, t) => t == Tri::False,
    };
    if met {
        return Decision::new(Status::Met, evidence, Vec::new());
    }
    // Exceptions only remove patients who did not meet the numerator.
    let mut undecided = Vec::new();
    for ex in &m.exceptions {
        let e = eval(ctx, &ex.criterion, "exclusion");
        match e.tri {
            Tri::True => {
                evidence.extend(e.evidence);
                return Decision {
                    exclusion_reason: Some(ex.reason.clone()),
                    ..Decision::new(Status::Excluded, evidence, Vec::new())
                };
            }
            Tri::Unknown => push_unique(&mut undecided, e.missing),
            Tri::False => {}
        }
    }
    if !undecided.is_empty() {
        return Decision::new(Status::InsufficientData, evidence, undecided);
    }
    Decision::new(Status::Gap, evidence, num.missing)
}

fn eval(ctx: &Ctx<'_>, c: &Criterion, role: &str) -> Eval {
    match c {
        Criterion::Has(h) => eval_has(ctx, h, role),
        Criterion::Latest(l) => eval_latest(ctx, l),
        Criterion::Age(a) => eval_age(ctx, a),
        Criterion::AllOf { of, missing } => combine_all(
            of.iter().map(|c| eval(ctx, c, role)).collect(),
            missing.as_deref(),
        ),
        Criterion::AnyOf { of, missing } => combine_any(
            of.iter().map(|c| eval(ctx, c, role)).collect(),
            missing.as_deref(),
        ),
        Criterion::Not { of } => {
            let e = eval(ctx, of, role);
            let tri = match e.tri {
                Tri::True => Tri::False,
                Tri::False => Tri::True,
                Tri::Unknown => Tri::Unknown,
            };
            Eval { tri, ..e }
        }
    }
}

/// Kleene all-of: false if any is false, else unknown if any is unknown, else true.
fn combine_all(parts: Vec<Eval>, missing: Option<&str>) -> Eval {
    let tri = if parts.iter().any(|p| p.tri == Tri::False) {
        Tri::False
    } else if parts.iter().any(|p| p.tri == Tri::Unknown) {
        Tri::Unknown
    } else {
        Tri::True
    };
    let mut out = Eval::new(tri);
    for p in parts {
        // What decides it: the false parts when false, the unknown ones when unknown.
        let counts = match tri {
            Tri::True => true,
            Tri::False => p.tri == Tri::False,
            Tri::Unknown => p.tri == Tri::Unknown,
        };
        if counts {
            out.evidence.extend(p.evidence);
            push_unique(&mut out.missing, p.missing);
        }
    }
    if let (Some(m), Tri::False) = (missing, tri) {
        out.missing = vec![m.to_owned()];
    }
    out
}

/// Kleene any-of: true if any is true, else unknown if any is unknown, else false.
fn combine_any(parts: Vec<Eval>, missing: Option<&str>) -> Eval {
    let tri = if parts.iter().any(|p| p.tri == Tri::True) {
        Tri::True
    } else if parts.iter().any(|p| p.tri == Tri::Unknown) {
        Tri::Unknown
    } else {
        Tri::False
    };
    let mut out = Eval::new(tri);
    for p in parts {
        let counts = match tri {
            Tri::True => p.tri == Tri::True,
            Tri::False => true,
            Tri::Unknown => p.tri == Tri::Unknown,
        };
        if counts {
            out.evidence.extend(p.evidence);
            push_unique(&mut out.missing, p.missing);
        }
    }
    if let (Some(m), Tri::False) = (missing, tri) {
        out.missing = vec![m.to_owned()];
    }
    out
}

fn eval_age(ctx: &Ctx<'_>, a: &AgeRange) -> Eval {
    let day = match a.at {
        PeriodPoint::PeriodStart => ctx.start,
        PeriodPoint::PeriodEnd => ctx.end,
    };
    let Some(months) = ctx.record.age_months_on(day) else {
        if ctx.record.birth_date.is_none() {
            return Eval {
                missing: vec!["birth date".to_owned()],
                ..Eval::new(Tri::Unknown)
            };
        }
        // Born after the day: no age yet.
        return Eval::new(Tri::False);
    };
    let years = months / 12;
    let ok = a.min_years.is_none_or(|m| years >= m)
        && a.max_years.is_none_or(|m| years <= m)
        && a.min_months.is_none_or(|m| months >= m);
    Eval::new(Tri::from_bool(ok))
}

struct Span {
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
    test: WindowTest,
}

impl Ctx<'_> {
    fn span(&self, w: &Window) -> Span {
        let resolve = |a: &Option<crate::measure::Anchor>| {
            a.as_ref().and_then(|a| a.resolve(self.start, self.end))
        };
        Span {
            from: resolve(&w.from),
            to: resolve(&w.to),
            test: w.test,
        }
    }

    /// Fills `{year}`, `{from}`, `{to}` of a measure's "missing" text.
    fn fill(&self, text: &str, span: &Span) -> String {
        let day = |d: Option<NaiveDate>| d.map(|d| d.to_string()).unwrap_or_default();
        text.replace("{year}", &self.start.year().to_string())
            .replace("{from}", &day(span.from))
            .replace("{to}", &day(span.to))
    }
}

impl Span {
    fn admits(&self, item: &Item, as_of: NaiveDate) -> bool {
        let first = item.date;
        // What lies after as_of is not known yet; an open span reaches as_of.
        let last = item.last_day().unwrap_or(as_of).min(as_of).max(first);
        match self.test {
            WindowTest::Overlaps => {
                self.to.is_none_or(|t| first <= t) && self.from.is_none_or(|f| last >= f)
            }
            WindowTest::Starts => {
                self.from.is_none_or(|f| first >= f) && self.to.is_none_or(|t| first <= t)
            }
        }
    }

    fn contains_day(&self, d: NaiveDate) -> bool {
        self.from.is_none_or(|f| d >= f) && self.to.is_none_or(|t| d <= t)
    }
}

fn evidence(item: &Item, coding: &Coding, role: &str, criterion: &str) -> Evidence {
    Evidence {
        fact_id: item.fact_id.clone(),
        role: role.to_owned(),
        date: item.date,
        code: coding.code.clone(),
        system: coding.system.uri().to_owned(),
        display: coding.display.clone().or_else(|| item.display.clone()),
        value: item.value,
        unit: item.unit.clone(),
        sources: item.sources.clone(),
        criterion: criterion.to_owned(),
    }
}

/// The first coding of `item` in any of the named value sets.
fn matching<'i>(ctx: &Ctx<'_>, names: &[String], item: &'i Item) -> Option<&'i Coding> {
    names
        .iter()
        .filter_map(|n| ctx.m.value_sets.get(n))
        .find_map(|vs| vs.matching(&item.codes))
}

fn kind_ok(kinds: &[ItemKind], default: Option<ItemKind>, item: &Item) -> bool {
    if kinds.is_empty() {
        default.is_none_or(|k| k == item.kind)
    } else {
        kinds.contains(&item.kind)
    }
}

fn eval_has(ctx: &Ctx<'_>, h: &Has, role: &str) -> Eval {
    let span = ctx.span(&h.window);
    let mut hits: Vec<(&Item, &Coding)> = Vec::new();
    let mut unreadable = false;
    for item in &ctx.items {
        if !kind_ok(&h.item_kinds, None, item) || (h.active_only && !item.active) {
            continue;
        }
        let Some(coding) = matching(ctx, &h.value_sets, item) else {
            continue;
        };
        if !span.admits(item, ctx.as_of) {
            continue;
        }
        if (h.require_value || h.value.is_some())
            && item.kind == ItemKind::Observation
            && item.value.is_none()
        {
            continue;
        }
        if let Some(test) = &h.value {
            match item.value.map(|v| test.check(v, item.unit.as_deref())) {
                Some(Some(true)) => {}
                Some(None) => {
                    unreadable = true;
                    continue;
                }
                _ => continue,
            }
        }
        hits.push((item, coding));
    }
    hits.sort_by(|a, b| b.0.date.cmp(&a.0.date).then(a.0.fact_id.cmp(&b.0.fact_id)));
    let days: BTreeSet<NaiveDate> = hits.iter().map(|(i, _)| i.date).collect();
    if days.len() >= h.min_count {
        // The most recent ones make the case; one per distinct day.
        let mut seen = BTreeSet::new();
        let evidence = hits
            .iter()
            .filter(|(i, _)| seen.insert(i.date))
            .take(h.min_count)
            .map(|(i, c)| evidence(i, c, role, &h.id))
            .collect();
        return Eval {
            tri: Tri::True,
            evidence,
            missing: Vec::new(),
        };
    }
    if unreadable {
        let units = h
            .value
            .as_ref()
            .map(|t| t.units.join(" or "))
            .unwrap_or_default();
        return Eval {
            missing: vec![format!("a {} result in {units}", h.label)],
            ..Eval::new(Tri::Unknown)
        };
    }
    Eval {
        missing: vec![ctx.fill(&h.missing, &span)],
        ..Eval::new(Tri::False)
    }
}

/// A component's reading on the latest day.
enum Reading<'i> {
    Value(&'i Item, &'i Coding, bool),
    NoValue(Vec<(&'i Item, &'i Coding)>),
    Unreadable(Vec<(&'i Item, &'i Coding)>),
}

fn eval_latest(ctx: &Ctx<'_>, l: &Latest) -> Eval {
    let span = ctx.span(&l.window);
    // Days inside an encounter of an excluded class (ED, inpatient).
    let blocked: Vec<(NaiveDate, NaiveDate)> = ctx
        .items
        .iter()
        .filter(|i| i.kind == ItemKind::Encounter)
        .filter(|i| {
            i.encounter_class.as_deref().is_some_and(|c| {
                l.exclude_during_encounter_classes
                    .iter()
                    .any(|x| x.eq_ignore_ascii_case(c.trim()))
            })
        })
        .map(|i| (i.date, i.end.unwrap_or(i.date).max(i.date)))
        .collect();
    let mut per_component: Vec<BTreeMap<NaiveDate, Vec<(&Item, &Coding)>>> = Vec::new();
    for comp in &l.components {
        let mut by_day: BTreeMap<NaiveDate, Vec<(&Item, &Coding)>> = BTreeMap::new();
        for item in &ctx.items {
            if !kind_ok(&l.item_kinds, Some(ItemKind::Observation), item)
                || !span.contains_day(item.date)
                || blocked
                    .iter()
                    .any(|(f, t)| item.date >= *f && item.date <= *t)
            {
                continue;
            }
            if let Some(c) = matching(ctx, &comp.value_sets, item) {
                by_day.entry(item.date).or_default().push((item, c));
            }
        }
        per_component.push(by_day);
    }
    let latest_day = per_component
        .first()
        .and_then(|first| {
            first
                .keys()
                .rev()
                .find(|d| per_component.iter().all(|c| c.contains_key(d)))
        })
        .copied();
    let Some(day) = latest_day else {
        return Eval {
            missing: vec![ctx.fill(&l.missing, &span)],
            ..Eval::new(Tri::from_bool(l.if_none))
        };
    };
    let mut readings = Vec::new();
    for (comp, by_day) in l.components.iter().zip(&per_component) {
        let on_day = by_day.get(&day).cloned().unwrap_or_default();
        let mut best: Option<(f64, &Item, &Coding)> = None;
        let mut any_value = false;
        for (item, coding) in &on_day {
            let Some(v) = item.value else { continue };
            any_value = true;
            let Some(v) = comp.test.normalise(v, item.unit.as_deref()) else {
                continue;
            };
            let better = match (best, l.same_day) {
                (None, _) => true,
                (Some((b, ..)), SameDay::Lowest) => v < b,
                (Some((b, ..)), SameDay::Highest) => v > b,
            };
            if better {
                best = Some((v, item, coding));
            }
        }
        readings.push(match best {
            Some((v, item, coding)) => {
                Reading::Value(item, coding, comp.test.op.holds(v, comp.test.threshold))
            }
            None if any_value => Reading::Unreadable(on_day),
            None => Reading::NoValue(on_day),
        });
    }
    let mut evidence_out = Vec::new();
    let (mut no_value, mut unreadable, mut all_pass) = (false, false, true);
    for r in &readings {
        match r {
            Reading::Value(item, coding, pass) => {
                all_pass &= *pass;
                evidence_out.push(evidence(item, coding, "latest", &l.id));
            }
            Reading::NoValue(list) => {
                no_value = true;
                evidence_out.extend(list.iter().map(|(i, c)| evidence(i, c, "latest", &l.id)));
            }
            Reading::Unreadable(list) => {
                unreadable = true;
                evidence_out.extend(list.iter().map(|(i, c)| evidence(i, c, "latest", &l.id)));
            }
        }
    }
    let present = l.missing_when_present.as_deref().unwrap_or(&l.missing);
    let tri = if no_value {
        Tri::from_bool(l.if_no_value)
    } else if unreadable {
        let units: Vec<&str> = l
            .components
            .iter()
            .flat_map(|c| c.test.units.iter().map(String::as_str))
            .collect();
        return Eval {
            tri: Tri::Unknown,
            evidence: evidence_out,
            missing: vec![format!(
                "a {} result from {day} in {}",
                l.label,
                units.join(" or ")
            )],
        };
    } else {
        Tri::from_bool(all_pass)
    };
    Eval {
        tri,
        evidence: evidence_out,
        missing: vec![ctx.fill(present, &span)],
    }
}
