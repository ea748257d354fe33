//! A synthetic payor population, deterministic by seed, written to a lake through the sink's
//! own row builders and Parquet encoder (the same files as production), for the dashboards'
//! tests and benchmarks and the care-gap bench.
//!
//! Shaped like a regional commercial + Medicare Advantage book: age and sex by market, plans,
//! states, coverage spans with joins, terminations and plan switches; chronic conditions with
//! age-dependent prevalence and the usual correlations (obesity -> diabetes, diabetes ->
//! CKD...); labs that agree with the conditions (HbA1c 1-4 times a year for most diabetics,
//! with ~15-20 % of latest results above 9 %), blood pressure at visits, medications, claims
//! encounters, screenings, flu shots, analytics consent with a few withdrawals, and the lake's
//! irregularities (corrections, removals, repeated deliveries). The rates are plausible US
//! figures rounded, not a model fit to any real plan.

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveTime, TimeZone, Utc};
use p360_events::{AnalyticsConsentChanged, PatientId};
use p360_insights::engine::{self, MeasureResult, Status as GapStatus};
use p360_insights::record::{PatientRecord, Sex};
use p360_model::{
    ClinicalStatus, CodeSystem, Coding, Condition, Encounter, Fact, FactBody, Immunization,
    Medication, MedicationStatus, Observation, ObservationKind, Procedure, Provenance, SourceKind,
    Status, Value, When,
};
use p360_sink::lake::pseudonym::Pseudonymizer;
use p360_sink::lake::tables::{self, CareGapRow, ChangeRow, MemberRow, Partitions};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::{BTreeSet, HashSet};
use std::path::Path;

/// How many members, which seed, and the day the data ends (nothing is dated later).
#[derive(Clone, Debug)]
pub struct Config {
    pub members: usize,
    pub seed: u64,
    pub as_of: NaiveDate,
}

/// One synthetic member: enrolment, consent history and record.
#[derive(Clone, Debug)]
pub struct Member {
    pub patient_id: PatientId,
    pub patient_key: String,
    pub birth_date: NaiveDate,
    /// `female` or `male`.
    pub sex: &'static str,
    pub plan: &'static str,
    /// The plan before a switch at the start of the report year (an older roster row).
    pub previous_plan: Option<&'static str>,
    pub region: &'static str,
    pub coverage_start: NaiveDate,
    pub coverage_end: Option<NaiveDate>,
    /// Analytics choices in order: (when, population analytics, personalised tips).
    pub consent: Vec<(DateTime<Utc>, bool, bool)>,
    /// The facts the record holds now, each with the day the lake got it.
    pub facts: Vec<(Fact, DateTime<Utc>)>,
    /// Facts the lake got and later lost: (fact, when added, when retracted, removed rather
    /// than marked entered-in-error).
    pub retracted: Vec<(Fact, DateTime<Utc>, DateTime<Utc>, bool)>,
    /// The CCW-style conditions the member has (active), for checking the dashboards.
    pub conditions: BTreeSet<&'static str>,
}

impl Member {
    /// Whether the member's latest choice opts in to population analytics (no row: not in).
    pub fn in_analytics(&self) -> bool {
        self.consent.last().is_some_and(|c| c.1)
    }

    /// The record the care-gap engine evaluates.
    pub fn record(&self) -> PatientRecord {
        let facts: Vec<Fact> = self.facts.iter().map(|(f, _)| f.clone()).collect();
        PatientRecord::from_facts(Some(self.birth_date), Sex::parse(self.sex), &facts)
    }
}

#[derive(Clone, Debug)]
pub struct Population {
    pub as_of: NaiveDate,
    pub seed: u64,
    pub members: Vec<Member>,
}

/// What [`Population::write_lake`] wrote.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LakeStats {
    pub files: usize,
    pub rows: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("encoding a {table} file: {what}")]
    Encode { table: &'static str, what: String },
    #[error("writing the lake: {0}")]
    Io(#[from] std::io::Error),
}

/// Plans: (id, Medicare Advantage, share of members).
const PLANS: [(&str, bool, f64); 5] = [
    ("COM-PPO", false, 0.30),
    ("COM-HMO", false, 0.25),
    ("COM-HDHP", false, 0.15),
    ("MA-HMO", true, 0.18),
    ("MA-PPO", true, 0.12),
];

/// A mid-Atlantic book of business: state and share.
const REGIONS: [(&str, f64); 8] = [
    ("PA", 0.30),
    ("OH", 0.18),
    ("NJ", 0.14),
    ("NY", 0.10),
    ("MD", 0.10),
    ("DE", 0.06),
    ("WV", 0.06),
    ("VA", 0.06),
];

impl Population {
    /// Generates `config.members` members. The same config always gives the same members,
    /// whatever the number of threads.
    pub fn generate(config: &Config) -> Population {
        let key = Pseudonymizer::new(key_of(config.seed));
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let chunk = config.members.div_ceil(threads).max(1);
        let mut members = Vec::with_capacity(config.members);
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..config.members)
                .step_by(chunk)
                .map(|start| {
                    let key = &key;
                    s.spawn(move || {
                        (start..(start + chunk).min(config.members))
                            .map(|i| generate_member(config, key, i))
                            .collect::<Vec<Member>>()
                    })
                })
                .collect();
            for h in handles {
                // A panic in a generator thread is a bug here; surface it as one.
                members.extend(h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)));
            }
        });
        Population {
            as_of: config.as_of,
            seed: config.seed,
            members,
        }
    }

    /// Every member's record, by patient key (the care-gap bench's input).
    pub fn records(&self) -> Vec<(String, PatientRecord)> {
        self.members
            .iter()
            .map(|m| (m.patient_key.clone(), m.record()))
            .collect()
    }

    /// Writes the population to `lake` as the lake sink would: members, consent changes, the
    /// facts' change rows (graph_changes and the typed tables) and care gaps from
    /// [`engine::evaluate_all`], computed a month before `as_of` and on `as_of`.
    pub fn write_lake(&self, lake: &Path) -> Result<LakeStats, WriteError> {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let chunk = self.members.len().div_ceil(threads).max(1);
        let results: Vec<Result<LakeStats, WriteError>> = std::thread::scope(|s| {
            let handles: Vec<_> = self
                .members
                .chunks(chunk)
                .enumerate()
                .map(|(n, members)| {
                    s.spawn(move || {
                        let mut parts = Partitions::new();
                        for m in members {
                            self.add_member(&mut parts, m);
                        }
                        write_partitions(lake, &parts, &format!("synthetic-{}-{n}", self.seed))
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
                .collect()
        });
        let mut stats = LakeStats::default();
        for r in results {
            let r = r?;
            stats.files += r.files;
            stats.rows += r.rows;
        }
        Ok(stats)
    }

    /// Records that member `index` withdrew from population analytics at `at` (one new
    /// consent_changes file, as the sink writes on AnalyticsConsentChanged).
    pub fn withdraw(
        &mut self,
        lake: &Path,
        index: usize,
        at: DateTime<Utc>,
    ) -> Result<(), WriteError> {
        let m = &mut self.members[index];
        let tips = m.consent.last().is_some_and(|c| c.2);
        m.consent.push((at, false, tips));
        let mut parts = Partitions::new();
        add_consent(&mut parts, m, m.consent.len() - 1);
        write_partitions(
            lake,
            &parts,
            &format!("withdrawal-{index}-{}", at.timestamp()),
        )?;
        Ok(())
    }

    fn add_member(&self, parts: &mut Partitions, m: &Member) {
        let window = window_start(self.as_of);
        let enrolled = m.coverage_start.max(window);
        let roster = |day: NaiveDate, plan: &str, end: Option<NaiveDate>| MemberRow {
            patient_key: m.patient_key.clone(),
            batch_id: format!("roster-{}", day.format("%Y%m%d")),
            recorded_at: at(day, 4),
            birth_date: Some(m.birth_date),
            sex: Some(m.sex.to_owned()),
            plan_id: Some(plan.to_owned()),
            region: Some(m.region.to_owned()),
            coverage_start: Some(m.coverage_start),
            coverage_end: end,
        };
        let first_plan = m.previous_plan.unwrap_or(m.plan);
        tables::add_member(
            parts,
            &roster(enrolled - Duration::days(3), first_plan, None),
        );
        if m.previous_plan.is_some() {
            let switch = year_start(self.as_of.year());
            tables::add_member(parts, &roster(switch - Duration::days(3), m.plan, None));
        }
        if let Some(end) = m.coverage_end {
            tables::add_member(parts, &roster(end + Duration::days(1), m.plan, Some(end)));
        }
        for i in 0..m.consent.len() {
            add_consent(parts, m, i);
        }
        for (n, (fact, when)) in m.facts.iter().enumerate() {
            let row = change(m, fact, *when, "added");
            tables::add_change(parts, &row, Some(fact));
            // A repeated delivery now and then: the reader must count it once.
            if n % 97 == 13 {
                tables::add_change(parts, &row, Some(fact));
            }
            // A second source attached later (the member uploaded the same lab report).
            if n % 11 == 5 && *when < at(self.as_of, 0) - Duration::days(10) {
                let mut both = fact.clone();
                both.attach(Provenance::new(
                    SourceKind::PatientUpload,
                    format!("upload-{}", m.patient_key),
                    *when + Duration::days(7),
                ));
                let later = change(m, &both, *when + Duration::days(7), "source_attached");
                tables::add_change(parts, &later, Some(&both));
            }
        }
        for (fact, added, gone, removed) in &m.retracted {
            tables::add_change(parts, &change(m, fact, *added, "added"), Some(fact));
            if *removed {
                tables::add_change(parts, &change(m, fact, *gone, "removed"), None);
            } else {
                let mut wrong = fact.clone();
                wrong.status = Status::EnteredInError;
                tables::add_change(
                    parts,
                    &change(m, &wrong, *gone, "status_changed"),
                    Some(&wrong),
                );
            }
        }
        let record = m.record();
        // Care gaps on as_of, and for one member in eight also a month earlier (the views
        // must take the latest); evaluating the measures is most of the generation's time.
        let earlier = m.patient_key.ends_with(['0', '8']);
        for days_before in [30, 0] {
            if days_before > 0 && !earlier {
                continue;
            }
            let as_of = self.as_of - Duration::days(days_before);
            let computed_at = at(as_of, 5);
            let id = format!("gaps-{}", as_of.format("%Y%m%d"));
            for r in engine::evaluate_all(&record, as_of) {
                tables::add_care_gap(parts, &gap_row(m, &id, computed_at, &r));
            }
        }
    }
}

fn add_consent(parts: &mut Partitions, m: &Member, i: usize) {
    let (changed_at, analytics, tips) = m.consent[i];
    let change = AnalyticsConsentChanged {
        patient_id: m.patient_id.clone(),
        population_analytics: analytics,
        personalized_tips: tips,
        changed_at,
        change_id: format!("c{i}"),
    };
    tables::add_consent_change(parts, &m.patient_key, &change);
}

fn change(m: &Member, fact: &Fact, when: DateTime<Utc>, kind: &str) -> ChangeRow {
    ChangeRow {
        patient_key: m.patient_key.clone(),
        commit_id: format!("feed-{}", when.format("%Y%m%d%H%M")),
        committed_at: when,
        fact_id: fact.id.to_string(),
        category: fact.body.category().to_string(),
        change_kind: kind.to_owned(),
        analytics_consent: m.in_analytics(),
    }
}

fn gap_row(m: &Member, computation: &str, at: DateTime<Utc>, r: &MeasureResult) -> CareGapRow {
    let status = match r.status {
        GapStatus::Met => "met",
        GapStatus::Gap => "gap",
        GapStatus::Excluded => "excluded",
        GapStatus::InsufficientData => "insufficient_data",
        GapStatus::NotApplicable => "not_applicable",
    };
    CareGapRow {
        patient_key: m.patient_key.clone(),
        computation_id: computation.to_owned(),
        computed_at: at,
        measure_id: r.measure_id.clone(),
        measure_version: r.version.clone(),
        period_start: r.period_start,
        period_end: r.period_end,
        status: status.to_owned(),
        evidence_fact_ids: r.evidence.iter().map(|e| e.fact_id.clone()).collect(),
        evidence_date: r.evidence.iter().map(|e| e.date).max(),
        evidence_value: r
            .evidence
            .iter()
            .find(|e| e.role == "latest")
            .and_then(|e| e.value),
        exclusion_reason: r.exclusion_reason.clone(),
        missing: (!r.missing.is_empty()).then(|| r.missing.join("; ")),
    }
}

/// Encodes each partition to `<lake>/<table>/year=/month=/day=/part-<batch>.parquet`.
pub fn write_partitions(
    lake: &Path,
    parts: &Partitions,
    batch: &str,
) -> Result<LakeStats, WriteError> {
    let mut stats = LakeStats::default();
    for ((table, day), rows) in parts {
        if rows.is_empty() {
            continue;
        }
        let bytes = p360_sink::lake::encode(rows).map_err(|what| WriteError::Encode {
            table: table.name(),
            what,
        })?;
        let dir = lake.join(table.name()).join(format!(
            "year={:04}/month={:02}/day={:02}",
            day.year(),
            day.month(),
            day.day()
        ));
        std::fs::create_dir_all(&dir)?;
        // Written aside and renamed, so that a reader never lists a half-written file.
        let path = dir.join(format!("part-{batch}.parquet"));
        let tmp = dir.join(format!(".part-{batch}.parquet.tmp"));
        std::fs::write(&tmp, &bytes)?;
        std::fs::rename(&tmp, &path)?;
        stats.files += 1;
        stats.rows += rows.len();
    }
    Ok(stats)
}

fn key_of(seed: u64) -> [u8; 32] {
    let mut key = [0u8; 32];
    for (i, b) in key.iter_mut().enumerate() {
        *b = (seed.rotate_left(i as u32 * 7) as u8) ^ (i as u8).wrapping_mul(151);
    }
    key
}

fn at(day: NaiveDate, hour: u32) -> DateTime<Utc> {
    let t = NaiveTime::from_hms_opt(hour, 0, 0).unwrap_or_default();
    Utc.from_utc_datetime(&day.and_time(t))
}

fn year_start(year: i32) -> NaiveDate {
    NaiveDate::from_ymd_opt(year, 1, 1).unwrap_or_default()
}

/// The data starts on 1 January of the year before `as_of`'s.
fn window_start(as_of: NaiveDate) -> NaiveDate {
    year_start(as_of.year() - 1)
}

/// When the lake gets a fact dated `day`: the monthly claims batch on the 5th of the next
/// month (history before the window comes with the first batch), never after `as_of`.
fn arrival(day: NaiveDate, as_of: NaiveDate) -> DateTime<Utc> {
    let window = window_start(as_of);
    let first = if day < window { window } else { day };
    let (y, m) = if first.month() == 12 {
        (first.year() + 1, 1)
    } else {
        (first.year(), first.month() + 1)
    };
    let batch = NaiveDate::from_ymd_opt(y, m, 5).unwrap_or(first);
    at(batch.min(as_of), 6)
}

/// A random source with the few distributions the generator needs.
struct Draw(StdRng);

impl Draw {
    fn chance(&mut self, p: f64) -> bool {
        self.0.random::<f64>() < p
    }

    fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.0.random::<f64>()
    }

    /// Box-Muller.
    fn normal(&mut self, mean: f64, sd: f64) -> f64 {
        let u1 = self.0.random::<f64>().max(f64::MIN_POSITIVE);
        let u2 = self.0.random::<f64>();
        mean + sd * (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }

    /// Knuth's method: fine for the small means used here.
    fn poisson(&mut self, mean: f64) -> u32 {
        let limit = (-mean).exp();
        let mut k = 0;
        let mut p = 1.0;
        loop {
            p *= self.0.random::<f64>();
            if p <= limit || k >= 60 {
                return k;
            }
            k += 1;
        }
    }

    fn pick<T: Copy>(&mut self, items: &[(T, f64)]) -> T {
        let total: f64 = items.iter().map(|i| i.1).sum();
        let mut x = self.uniform(0.0, total);
        for (item, w) in items {
            if x < *w {
                return *item;
            }
            x -= w;
        }
        items[items.len() - 1].0
    }

    fn day_between(&mut self, from: NaiveDate, to: NaiveDate) -> NaiveDate {
        let span = (to - from).num_days().max(0);
        from + Duration::days(self.0.random_range(0..=span))
    }
}

/// A member's facts under construction: one fact per identity.
struct Record<'a> {
    patient: PatientId,
    as_of: NaiveDate,
    seen: HashSet<String>,
    facts: Vec<(Fact, DateTime<Utc>)>,
    retracted: Vec<(Fact, DateTime<Utc>, DateTime<Utc>, bool)>,
    draw: &'a mut Draw,
}

impl Record<'_> {
    /// Adds a fact dated `day`; true when the record keeps it (new, and not later retracted).
    fn add(&mut self, body: FactBody, day: NaiveDate) -> bool {
        if day > self.as_of {
            return false;
        }
        let when = arrival(day, self.as_of);
        let source = format!("claims-{}", when.format("%Y%m"));
        let fact = Fact::new(
            self.patient.clone(),
            body,
            Status::Confirmed,
            Provenance::new(SourceKind::PayorFeed, source, when),
        );
        if !self.seen.insert(fact.id.to_string()) {
            return false; // the same fact twice (same code, day and value) is one fact
        }
        // About 1 in 150 facts is later corrected away: retracted, or its only source undone.
        let gone = when + Duration::days(20);
        if gone < at(self.as_of, 0) && self.draw.chance(1.0 / 150.0) {
            let removed = self.draw.chance(0.5);
            self.retracted.push((fact, when, gone, removed));
            false
        } else {
            self.facts.push((fact, when));
            true
        }
    }

    fn lab(&mut self, loinc: &str, display: &str, value: f64, unit: &str, day: NaiveDate) {
        self.add(
            FactBody::Observation(Observation {
                kind: ObservationKind::Laboratory,
                code: coding(CodeSystem::Loinc, loinc, display),
                value: quantity(value, unit),
                effective: When::Date(day),
                reference_range: None,
                interpretation: None,
            }),
            day,
        );
    }

    fn procedure(&mut self, cpt: &str, display: &str, day: NaiveDate) {
        self.add(
            FactBody::Procedure(Procedure {
                code: coding(CodeSystem::Cpt, cpt, display),
                performed: When::Date(day),
            }),
            day,
        );
    }
}

fn coding(system: CodeSystem, code: &str, display: &str) -> Vec<Coding> {
    vec![Coding::new(system, code, Some(display))]
}

fn quantity(value: f64, unit: &str) -> Option<Value> {
    Some(Value::Quantity {
        value,
        unit: unit.to_owned(),
        comparator: None,
    })
}

fn round(v: f64, places: i32) -> f64 {
    let f = 10f64.powi(places);
    (v * f).round() / f
}

fn age_on(birth: NaiveDate, day: NaiveDate) -> i32 {
    let mut age = day.year() - birth.year();
    if (day.month(), day.day()) < (birth.month(), birth.day()) {
        age -= 1;
    }
    age
}

/// A chronic condition: CCW name, ICD-10-CM code and display.
struct Dx {
    name: &'static str,
    code: &'static str,
    display: &'static str,
}

const fn dx(name: &'static str, code: &'static str, display: &'static str) -> Dx {
    Dx {
        name,
        code,
        display,
    }
}

fn generate_member(config: &Config, key: &Pseudonymizer, index: usize) -> Member {
    let mixed = config.seed ^ (index as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let mut draw = Draw(StdRng::seed_from_u64(mixed));
    let d = &mut draw;
    let as_of = config.as_of;
    let window = window_start(as_of);
    let patient_id = PatientId::parse(&format!("syn-{:x}-{index:07}", config.seed))
        .unwrap_or_else(|_| PatientId::random());
    let patient_key = key.patient_key(patient_id.as_str());

    // Enrolment.
    let plan_items: Vec<((&'static str, bool), f64)> =
        PLANS.iter().map(|(p, ma, w)| ((*p, *ma), *w)).collect();
    let (plan, medicare) = d.pick(&plan_items);
    let age_bucket: (i32, i32) = if medicare {
        d.pick(&[
            ((45, 64), 0.03),
            ((65, 69), 0.28),
            ((70, 74), 0.27),
            ((75, 79), 0.20),
            ((80, 84), 0.13),
            ((85, 95), 0.09),
        ])
    } else {
        d.pick(&[
            ((0, 17), 0.24),
            ((18, 26), 0.10),
            ((27, 44), 0.30),
            ((45, 64), 0.34),
            ((65, 70), 0.02),
        ])
    };
    let age = d.0.random_range(age_bucket.0..=age_bucket.1);
    let birth_date = as_of
        - Duration::days(i64::from(age) * 365 + d.0.random_range(0..365) + i64::from(age / 4));
    let age = age_on(birth_date, as_of);
    let sex = if d.chance(if medicare { 0.56 } else { 0.505 }) {
        "female"
    } else {
        "male"
    };
    let region = d.pick(&REGIONS);
    let first_of = |day: NaiveDate| day.with_day(1).unwrap_or(day);
    let coverage_start = if d.chance(0.8) {
        // Enrolled before the data starts, from the 1st of some month.
        let years = d.0.random_range(0..8);
        first_of(d.day_between(
            window - Duration::days(365 * years + 365),
            window - Duration::days(1),
        ))
    } else {
        first_of(d.day_between(window, as_of))
    };
    let coverage_start = if medicare && age == 65 {
        // Aged in to Medicare: coverage from the month of the 65th birthday.
        let b65 = birth_date
            .with_year(birth_date.year() + 65)
            .unwrap_or(birth_date + Duration::days(65 * 365));
        first_of(b65)
    } else {
        coverage_start.max(first_of(birth_date))
    };
    let coverage_end = if d.chance(0.07) {
        let day = d.day_between(coverage_start.max(window), as_of - Duration::days(1));
        // The last day of that month, not after as_of.
        let next = first_of(day + Duration::days(32));
        Some(
            (next - Duration::days(1))
                .min(as_of - Duration::days(1))
                .max(coverage_start),
        )
    } else {
        None
    };
    // A plan switch at new year is only for members still covered then (its roster row would
    // otherwise be the latest and reopen coverage that had ended).
    let switches = coverage_start < year_start(as_of.year())
        && coverage_end.is_none_or(|e| e >= year_start(as_of.year()));
    let previous_plan = (switches && d.chance(0.04)).then(|| {
        let same_market: Vec<(&'static str, f64)> = PLANS
            .iter()
            .filter(|(p, ma, _)| *ma == medicare && *p != plan)
            .map(|(p, _, w)| (*p, *w))
            .collect();
        d.pick(&same_market)
    });

    // Analytics consent: ~86 % in at the end, a few withdrawals, some never asked.
    // Sign-ups come in weekly app campaigns (also keeps the lake's day partitions few).
    let weeks = ((as_of - window).num_days() + 196) / 7;
    let signup_day = window - Duration::days(196) + Duration::days(7 * d.0.random_range(0..weeks));
    let registered = at(signup_day, 12) + Duration::minutes(d.0.random_range(0..600));
    let tips = d.chance(0.7);
    let later = registered + Duration::days(d.0.random_range(1..60));
    let consent: Vec<(DateTime<Utc>, bool, bool)> = match d.uniform(0.0, 1.0) {
        x if x < 0.83 => vec![(registered, true, tips)],
        x if x < 0.86 => vec![(registered, false, tips), (later, true, tips)],
        x if x < 0.88 => vec![(registered, true, tips), (later, false, tips)],
        x if x < 0.92 => vec![(registered, false, false)],
        _ => vec![],
    };
    let later_cap = at(as_of, 0);
    let consent = consent
        .into_iter()
        .map(|(t, a, p)| (t.min(later_cap - Duration::hours(1)), a, p))
        .collect();

    // Latent risks.
    let adult = age >= 18;
    let smoker = adult && d.chance(if age >= 65 { 0.09 } else { 0.15 });
    let obese = d.chance(if adult { 0.36 } else { 0.15 });
    let frail = d.normal(0.0, 1.0);
    let risk = (0.25 * frail).exp();
    let band = |a: &[(i32, f64)]| -> f64 {
        a.iter()
            .rev()
            .find(|(from, _)| age >= *from)
            .map_or(0.0, |(_, p)| *p)
    };
    let roll = |d: &mut Draw, p: f64| d.chance((p * risk).min(0.95));

    let htn = roll(
        d,
        band(&[
            (0, 0.003),
            (18, 0.06),
            (35, 0.15),
            (45, 0.28),
            (55, 0.42),
            (65, 0.58),
            (75, 0.68),
        ]) * if obese { 1.5 } else { 1.0 },
    );
    let diabetes_p = band(&[(0, 0.003), (18, 0.035), (45, 0.12), (65, 0.21), (75, 0.23)])
        * if obese { 2.0 } else { 0.75 }
        * if htn { 1.4 } else { 1.0 };
    let diabetes = roll(d, diabetes_p);
    let type1 = diabetes && (age < 30 || d.chance(0.05));
    let lipids = roll(
        d,
        band(&[(18, 0.07), (45, 0.26), (65, 0.42)])
            * if diabetes { 1.6 } else { 1.0 }
            * if htn { 1.3 } else { 1.0 },
    );
    let ckd = roll(
        d,
        band(&[(18, 0.015), (65, 0.09), (75, 0.16)])
            * if diabetes { 2.6 } else { 1.0 }
            * if htn { 1.5 } else { 1.0 },
    );
    let esrd = ckd && d.chance(0.03);
    let ihd = roll(
        d,
        band(&[(35, 0.01), (45, 0.04), (65, 0.12), (75, 0.18)])
            * if diabetes { 1.8 } else { 1.0 }
            * if lipids { 1.5 } else { 1.0 }
            * if smoker { 1.6 } else { 1.0 },
    );
    let hf = roll(
        d,
        band(&[(30, 0.004), (65, 0.045), (75, 0.10)])
            * if ihd { 3.0 } else { 1.0 }
            * if htn { 1.4 } else { 1.0 }
            * if ckd { 1.5 } else { 1.0 },
    );
    let copd = roll(
        d,
        band(&[(40, 0.03), (65, 0.09)]) * if smoker { 4.0 } else { 0.5 },
    );
    let asthma = roll(
        d,
        band(&[(2, 0.08), (18, 0.075)]) * if smoker { 1.3 } else { 1.0 },
    );
    let depression = roll(
        d,
        band(&[(12, 0.05), (18, 0.085)]) * if sex == "female" { 1.5 } else { 0.75 },
    );
    let obesity_coded = obese && d.chance(if adult { 0.45 } else { 0.3 });
    let afib = roll(d, band(&[(45, 0.015), (65, 0.08), (75, 0.12)]));
    let stroke = roll(d, band(&[(45, 0.005), (65, 0.03)]));
    let osteoporosis = roll(
        d,
        band(&[(50, 0.03), (65, if sex == "female" { 0.16 } else { 0.03 })]),
    );
    let colon_cancer_history = age >= 55 && d.chance(0.008);

    let mut dxs: Vec<Dx> = Vec::new();
    let mut push = |flag: bool, choices: &[Dx]| {
        if flag {
            let c = &choices[d.0.random_range(0..choices.len())];
            dxs.push(dx(c.name, c.code, c.display));
        }
    };
    push(
        htn && !ckd,
        &[dx(
            "hypertension",
            "I10",
            "Essential (primary) hypertension",
        )],
    );
    push(
        htn && ckd,
        &[dx(
            "hypertension",
            "I12.9",
            "Hypertensive chronic kidney disease with stage 1 through stage 4 chronic kidney disease, or unspecified chronic kidney disease",
        )],
    );
    push(
        type1,
        &[
            dx(
                "diabetes",
                "E10.9",
                "Type 1 diabetes mellitus without complications",
            ),
            dx(
                "diabetes",
                "E10.65",
                "Type 1 diabetes mellitus with hyperglycemia",
            ),
        ],
    );
    push(
        diabetes && !type1 && ckd,
        &[dx(
            "diabetes",
            "E11.22",
            "Type 2 diabetes mellitus with diabetic chronic kidney disease",
        )],
    );
    push(
        diabetes && !type1 && !ckd,
        &[
            dx(
                "diabetes",
                "E11.9",
                "Type 2 diabetes mellitus without complications",
            ),
            dx(
                "diabetes",
                "E11.65",
                "Type 2 diabetes mellitus with hyperglycemia",
            ),
            dx(
                "diabetes",
                "E11.40",
                "Type 2 diabetes mellitus with diabetic neuropathy, unspecified",
            ),
        ],
    );
    push(
        lipids,
        &[
            dx("hyperlipidemia", "E78.5", "Hyperlipidemia, unspecified"),
            dx(
                "hyperlipidemia",
                "E78.00",
                "Pure hypercholesterolemia, unspecified",
            ),
            dx("hyperlipidemia", "E78.2", "Mixed hyperlipidemia"),
        ],
    );
    push(
        ckd && !esrd,
        &[
            dx(
                "chronic_kidney_disease",
                "N18.31",
                "Chronic kidney disease, stage 3a",
            ),
            dx(
                "chronic_kidney_disease",
                "N18.32",
                "Chronic kidney disease, stage 3b",
            ),
            dx(
                "chronic_kidney_disease",
                "N18.4",
                "Chronic kidney disease, stage 4 (severe)",
            ),
        ],
    );
    push(
        esrd,
        &[dx(
            "chronic_kidney_disease",
            "N18.6",
            "End stage renal disease",
        )],
    );
    push(
        ihd,
        &[dx(
            "ischemic_heart_disease",
            "I25.10",
            "Atherosclerotic heart disease of native coronary artery without angina pectoris",
        )],
    );
    push(
        hf,
        &[
            dx("heart_failure", "I50.9", "Heart failure, unspecified"),
            dx(
                "heart_failure",
                "I50.22",
                "Chronic systolic (congestive) heart failure",
            ),
        ],
    );
    push(
        copd,
        &[dx(
            "copd",
            "J44.9",
            "Chronic obstructive pulmonary disease, unspecified",
        )],
    );
    push(
        asthma,
        &[
            dx("asthma", "J45.909", "Unspecified asthma, uncomplicated"),
            dx(
                "asthma",
                "J45.20",
                "Mild intermittent asthma, uncomplicated",
            ),
        ],
    );
    push(
        depression,
        &[
            dx(
                "depression",
                "F32.9",
                "Major depressive disorder, single episode, unspecified",
            ),
            dx(
                "depression",
                "F33.1",
                "Major depressive disorder, recurrent, moderate",
            ),
        ],
    );
    push(
        obesity_coded,
        &[
            dx("obesity", "E66.9", "Obesity, unspecified"),
            dx(
                "obesity",
                "E66.01",
                "Morbid (severe) obesity due to excess calories",
            ),
        ],
    );
    push(
        afib,
        &[dx(
            "atrial_fibrillation",
            "I48.91",
            "Unspecified atrial fibrillation",
        )],
    );
    push(
        stroke,
        &[dx("stroke", "I63.9", "Cerebral infarction, unspecified")],
    );
    push(
        osteoporosis,
        &[dx(
            "osteoporosis",
            "M81.0",
            "Age-related osteoporosis without current pathological fracture",
        )],
    );
    push(
        colon_cancer_history,
        &[dx(
            "cancer_history",
            "Z85.038",
            "Personal history of other malignant neoplasm of large intestine",
        )],
    );

    let mut has: BTreeSet<&'static str> = BTreeSet::new();
    let mut rec = Record {
        patient: patient_id.clone(),
        as_of,
        seen: HashSet::new(),
        facts: Vec::new(),
        retracted: Vec::new(),
        draw: d,
    };
    // Covered days with data: claims come only while covered.
    let from = coverage_start.max(window);
    let to = coverage_end.unwrap_or(as_of).min(as_of);
    let covered = from <= to;

    let mut active_codes: Vec<&'static str> = Vec::new();
    for x in &dxs {
        // Most conditions started years ago; about one in ten in the data's window.
        let earliest = birth_date + Duration::days(365);
        let onset = if rec.draw.chance(0.1) && covered {
            rec.draw.day_between(from, to)
        } else {
            let back = rec.draw.0.random_range(30..(365 * 12));
            (window - Duration::days(back)).max(earliest)
        };
        // A depression or asthma episode may be over: resolved conditions are not prevalent.
        let resolved = matches!(x.name, "depression" | "asthma") && rec.draw.chance(0.15);
        let status = if resolved {
            ClinicalStatus::Resolved
        } else {
            ClinicalStatus::Active
        };
        let recorded = onset.max(from.min(to));
        let kept = rec.add(
            FactBody::Condition(Condition {
                code: coding(CodeSystem::Icd10Cm, x.code, x.display),
                clinical_status: status,
                onset: Some(onset),
                recorded: Some(recorded),
            }),
            recorded,
        );
        if kept && !resolved && x.name != "cancer_history" {
            has.insert(x.name);
            active_codes.push(x.code);
        }
    }
    let n_chronic = has.len() as f64;

    // Medications, started with (or after) the condition and still taken.
    let mut meds: Vec<(&str, &str, &str)> = Vec::new();
    if diabetes && !type1 && rec.draw.chance(0.78) {
        meds.push(("6809", "metformin", "Metformin 500 MG Oral Tablet"));
    }
    if type1 || (diabetes && rec.draw.chance(0.22)) {
        meds.push((
            "274783",
            "insulin glargine",
            "Insulin glargine 100 UNT/ML Injectable Solution",
        ));
    }
    if diabetes && !type1 && rec.draw.chance(0.15) {
        meds.push((
            "1991302",
            "semaglutide",
            "Semaglutide 1 MG/DOSE Pen Injector",
        ));
    }
    let on_statin = (ihd && rec.draw.chance(0.85))
        || (lipids && rec.draw.chance(0.65))
        || (diabetes && (40..=75).contains(&age) && rec.draw.chance(0.55));
    if on_statin {
        if ihd || rec.draw.chance(0.3) {
            meds.push(("617311", "atorvastatin", "Atorvastatin 40 MG Oral Tablet"));
        } else if rec.draw.chance(0.5) {
            meds.push(("617310", "atorvastatin", "Atorvastatin 20 MG Oral Tablet"));
        } else {
            meds.push(("198211", "simvastatin", "Simvastatin 40 MG Oral Tablet"));
        }
    }
    if htn && rec.draw.chance(0.5) {
        meds.push(("314076", "lisinopril", "Lisinopril 10 MG Oral Tablet"));
    }
    if htn && rec.draw.chance(0.3) {
        meds.push(("197361", "amlodipine", "Amlodipine 5 MG Oral Tablet"));
    }
    if copd && rec.draw.chance(0.6) {
        meds.push((
            "69120",
            "tiotropium",
            "Tiotropium 18 MCG Inhalation Capsule",
        ));
    }
    if asthma && rec.draw.chance(0.7) {
        meds.push((
            "435",
            "albuterol",
            "Albuterol 0.09 MG/ACTUAT Metered Dose Inhaler",
        ));
    }
    if depression && rec.draw.chance(0.55) {
        meds.push(("36437", "sertraline", "Sertraline 50 MG Oral Tablet"));
    }
    if hf && rec.draw.chance(0.7) {
        meds.push(("4603", "furosemide", "Furosemide 40 MG Oral Tablet"));
    }
    if afib && rec.draw.chance(0.6) {
        meds.push(("1364430", "apixaban", "Apixaban 5 MG Oral Tablet"));
    }
    if covered {
        for (code, ingredient, text) in meds {
            let start = rec
                .draw
                .day_between(from - Duration::days(400), to)
                .max(birth_date);
            let stopped = rec.draw.chance(0.08);
            let end = stopped.then(|| rec.draw.day_between(start.max(from), to));
            rec.add(
                FactBody::Medication(Medication {
                    code: coding(CodeSystem::RxNorm, code, ingredient),
                    text: text.to_owned(),
                    strength: None,
                    form: None,
                    dosage: None,
                    status: if stopped {
                        MedicationStatus::Stopped
                    } else {
                        MedicationStatus::Active
                    },
                    effective: Some(When::Period {
                        start: start.max(from - Duration::days(400)),
                        end,
                    }),
                }),
                start.max(from.min(to)),
            );
        }
    }

    // Claims encounters and what happens at them, year by year while covered.
    let elderly = age >= 65;
    let mut office_days: Vec<NaiveDate> = Vec::new();
    let mut acute_days: BTreeSet<NaiveDate> = BTreeSet::new();
    if covered {
        let years = (to - from).num_days() as f64 / 365.25;
        let npi = |d: &mut Draw| {
            format!(
                "1{:09}",
                d.0.random_range(0..4000u32) * 24_977 % 1_000_000_000
            )
        };
        let visits = [
            (
                "AMB",
                "99213",
                "Office visit, established patient, low complexity",
                1.4 + 0.8 * n_chronic
                    + if elderly { 1.5 } else { 0.0 }
                    + if age < 18 { 1.5 } else { 0.0 },
            ),
            (
                "VR",
                "99442",
                "Telephone evaluation and management, 11-20 minutes",
                if adult { 0.3 } else { 0.1 },
            ),
            (
                "EMER",
                "99284",
                "Emergency department visit, moderate to high severity",
                0.12 + 0.06 * n_chronic + if age >= 75 { 0.15 } else { 0.0 },
            ),
            (
                "IMP",
                "99223",
                "Initial hospital inpatient care, high complexity",
                0.025 + 0.03 * n_chronic + if elderly { 0.06 } else { 0.0 },
            ),
        ];
        for (class, cpt, display, per_year) in visits {
            let n = rec.draw.poisson(per_year * risk * years);
            for _ in 0..n {
                let day = rec.draw.day_between(from, to);
                let end = (class == "IMP")
                    .then(|| (day + Duration::days(rec.draw.0.random_range(1..8))).min(as_of));
                let reason = if active_codes.is_empty() || rec.draw.chance(0.3) {
                    if adult { "Z00.00" } else { "Z00.129" }
                } else {
                    active_codes[rec.draw.0.random_range(0..active_codes.len())]
                };
                match class {
                    "AMB" => office_days.push(day),
                    "EMER" | "IMP" => {
                        acute_days.insert(day);
                    }
                    _ => {}
                }
                let practitioner = npi(rec.draw);
                rec.add(
                    FactBody::Encounter(Encounter {
                        class: class.to_owned(),
                        kind: coding(CodeSystem::Cpt, cpt, display),
                        period: When::Period { start: day, end },
                        reason: coding(CodeSystem::Icd10Cm, reason, "reason"),
                        note: None,
                        practitioner_npi: Some(practitioner),
                    }),
                    day,
                );
            }
        }
    }

    // Labs.
    let years_covered: Vec<(NaiveDate, NaiveDate)> = if covered {
        (from.year()..=to.year())
            .map(|y| {
                (
                    year_start(y).max(from),
                    NaiveDate::from_ymd_opt(y, 12, 31).unwrap_or(to).min(to),
                )
            })
            .filter(|(a, b)| a <= b)
            .collect()
    } else {
        Vec::new()
    };
    // A diabetic's usual control: latest results above 9 % for about one in six.
    let control = rec.draw.normal(7.6, 1.5).clamp(5.4, 14.0);
    for &(a, b) in &years_covered {
        let part = ((b - a).num_days() + 1) as f64 / 365.0;
        if diabetes {
            let tests = rec
                .draw
                .pick(&[(0u32, 0.12), (1, 0.25), (2, 0.32), (3, 0.20), (4, 0.11)]);
            let tests = ((f64::from(tests) * part).round() as u32)
                .max(u32::from(tests > 0 && rec.draw.chance(part)));
            for _ in 0..tests {
                let day = rec.draw.day_between(a, b);
                let pct = round((control + rec.draw.normal(0.0, 0.4)).clamp(4.5, 15.5), 1);
                if rec.draw.chance(0.03) {
                    // Some labs report IFCC units.
                    let ifcc = ((pct - 2.152) / 0.09148).round();
                    rec.lab(
                        "4548-4",
                        "Hemoglobin A1c/Hemoglobin.total in Blood",
                        ifcc,
                        "mmol/mol",
                        day,
                    );
                } else if rec.draw.chance(0.15) {
                    rec.lab(
                        "17856-6",
                        "Hemoglobin A1c/Hemoglobin.total in Blood by HPLC",
                        pct,
                        "%",
                        day,
                    );
                } else {
                    rec.lab(
                        "4548-4",
                        "Hemoglobin A1c/Hemoglobin.total in Blood",
                        pct,
                        "%",
                        day,
                    );
                }
            }
        } else if age >= 35 && rec.draw.chance(0.08 * part) {
            let day = rec.draw.day_between(a, b);
            let pct = round(rec.draw.normal(5.5, 0.3).clamp(4.3, 6.4), 1);
            rec.lab(
                "4548-4",
                "Hemoglobin A1c/Hemoglobin.total in Blood",
                pct,
                "%",
                day,
            );
        }
        let egfr_p = if ckd {
            0.85
        } else if diabetes {
            0.7
        } else if htn {
            0.4
        } else if elderly {
            0.3
        } else {
            0.05
        };
        if adult && rec.draw.chance(egfr_p * part) {
            let day = rec.draw.day_between(a, b);
            let value = if esrd {
                rec.draw.uniform(6.0, 14.0)
            } else if ckd {
                rec.draw.uniform(18.0, 58.0)
            } else {
                (105.0 - 0.7 * f64::from((age - 30).max(0)) + rec.draw.normal(0.0, 10.0))
                    .clamp(60.0, 130.0)
            };
            rec.lab("98979-8", "Glomerular filtration rate/1.73 sq M.predicted [Volume Rate/Area] in Serum, Plasma or Blood by Creatinine-based formula (CKD-EPI 2021)", value.round(), "mL/min/{1.73_m2}", day);
        }
        let uacr_p = if diabetes {
            0.4
        } else if ckd {
            0.5
        } else {
            0.02
        };
        if adult && rec.draw.chance(uacr_p * part) {
            let day = rec.draw.day_between(a, b);
            let median = if diabetes || ckd { 22.0 } else { 8.0 };
            let value = round(median * rec.draw.normal(0.0, 1.0).exp(), 1);
            rec.lab(
                "9318-7",
                "Albumin/Creatinine [Mass Ratio] in Urine",
                value,
                "mg/g{creat}",
                day,
            );
        }
        let ldl_p = if lipids || diabetes || ihd {
            0.7
        } else if age >= 40 {
            0.25
        } else {
            0.03
        };
        if adult && rec.draw.chance(ldl_p * part) {
            let day = rec.draw.day_between(a, b);
            let mean = if on_statin {
                95.0
            } else if lipids {
                145.0
            } else {
                115.0
            };
            let value = rec.draw.normal(mean, 28.0).clamp(35.0, 260.0).round();
            rec.lab(
                "13457-7",
                "Cholesterol in LDL [Mass/volume] in Serum or Plasma by calculation",
                value,
                "mg/dL",
                day,
            );
        }
    }

    // Blood pressure at office visits (not in the ED or hospital), mostly for hypertensives.
    let (sys_mean, dia_mean) = if htn {
        if rec.draw.chance(0.62) {
            (rec.draw.normal(128.0, 6.0), rec.draw.normal(78.0, 5.0))
        } else {
            (rec.draw.normal(149.0, 8.0), rec.draw.normal(92.0, 5.0))
        }
    } else {
        (rec.draw.normal(118.0, 9.0), rec.draw.normal(74.0, 6.0))
    };
    for day in &office_days {
        if acute_days.contains(day) || !adult || !rec.draw.chance(if htn { 0.8 } else { 0.3 }) {
            continue;
        }
        for (loinc, display, mean, sd) in [
            ("8480-6", "Systolic blood pressure", sys_mean, 8.0),
            ("8462-4", "Diastolic blood pressure", dia_mean, 6.0),
        ] {
            let v = rec.draw.normal(mean, sd).clamp(70.0, 220.0).round();
            rec.add(
                FactBody::Observation(Observation {
                    kind: ObservationKind::VitalSigns,
                    code: coding(CodeSystem::Loinc, loinc, display),
                    value: quantity(v, "mm[Hg]"),
                    effective: When::Date(*day),
                    reference_range: None,
                    interpretation: None,
                }),
                *day,
            );
        }
    }

    // Screenings and flu shots (history before the window comes from earlier claims).
    if sex == "female" && (40..=76).contains(&age) {
        for y in (as_of.year() - 2)..=as_of.year() {
            if rec.draw.chance(if age >= 50 { 0.58 } else { 0.45 }) {
                let day = rec.draw.day_between(
                    year_start(y),
                    NaiveDate::from_ymd_opt(y, 12, 31)
                        .unwrap_or(as_of)
                        .min(as_of),
                );
                rec.procedure("77067", "Screening mammography, bilateral", day);
            }
        }
    }
    if (45..=76).contains(&age) {
        if rec.draw.chance(0.55) {
            let day = rec.draw.day_between(as_of - Duration::days(3650), as_of);
            rec.procedure("45378", "Colonoscopy, flexible, diagnostic", day);
        } else if covered && rec.draw.chance(0.2) {
            let day = rec
                .draw
                .day_between(from.max(year_start(as_of.year())), to.max(from));
            rec.procedure("82274", "Fecal occult blood test, immunoassay (FIT)", day);
        }
    }
    let flu_p = match age {
        0..=17 => 0.55,
        18..=49 => 0.33,
        50..=64 => 0.47,
        _ => 0.68,
    };
    for season in (as_of.year() - 1)..=as_of.year() {
        let start = NaiveDate::from_ymd_opt(season, 9, 1).unwrap_or(as_of);
        let end = NaiveDate::from_ymd_opt(season + 1, 2, 28)
            .unwrap_or(as_of)
            .min(as_of);
        if start <= end && age >= 1 && rec.draw.chance(flu_p) {
            let day = rec.draw.day_between(start, end);
            let (cvx, display) = if age >= 65 {
                ("197", "Influenza, high-dose, quadrivalent")
            } else {
                (
                    "150",
                    "Influenza, injectable, quadrivalent, preservative free",
                )
            };
            rec.add(
                FactBody::Immunization(Immunization {
                    vaccine: coding(CodeSystem::Cvx, cvx, display),
                    occurred: When::Date(day),
                }),
                day,
            );
        }
    }

    let Record {
        facts, retracted, ..
    } = rec;
    Member {
        patient_id,
        patient_key,
        birth_date,
        sex,
        plan,
        previous_plan,
        region,
        coverage_start,
        coverage_end,
        consent,
        facts,
        retracted,
        conditions: has,
    }
}
