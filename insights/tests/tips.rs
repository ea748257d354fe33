//! Tips: each kind fires when it should and stays quiet when it should not; ids are stable;
//! every text reads at grade 8 or below.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

use chrono::{Duration, NaiveDate};
use p360_insights::engine::{MeasureResult, Status, evaluate, evaluate_all};
use p360_insights::measure;
use p360_insights::record::{Item, ItemKind, PatientRecord, Sex};
use p360_insights::tips::{Tip, all_texts, reading_grade, tips};
use p360_model::{CodeSystem, Coding};

fn day(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

fn item(id: &str, kind: ItemKind, system: CodeSystem, code: &str, date: &str) -> Item {
    Item {
        fact_id: id.to_owned(),
        kind,
        codes: vec![Coding::new(system, code, None)],
        display: None,
        date: day(date),
        end: None,
        value: None,
        unit: None,
        active: true,
        encounter_class: None,
        sources: vec!["payor_feed".to_owned()],
        confirmed: true,
    }
}

fn lab(id: &str, code: &str, date: &str, value: f64, unit: &str) -> Item {
    Item {
        value: Some(value),
        unit: Some(unit.to_owned()),
        ..item(id, ItemKind::Observation, CodeSystem::Loinc, code, date)
    }
}

fn a1c(id: &str, date: &str, value: f64) -> Item {
    lab(id, "4548-4", date, value, "%")
}

fn bp(id: &str, date: &str, sys: f64, dia: f64) -> [Item; 2] {
    [
        lab(&format!("{id}s"), "8480-6", date, sys, "mm[Hg]"),
        lab(&format!("{id}d"), "8462-4", date, dia, "mm[Hg]"),
    ]
}

fn fill(id: &str, date: &str, end: Option<&str>) -> Item {
    Item {
        end: end.map(day),
        display: Some("Metformin 500 mg tablet".to_owned()),
        ..item(id, ItemKind::Medication, CodeSystem::RxNorm, "6809", date)
    }
}

fn record(items: Vec<Item>) -> PatientRecord {
    PatientRecord {
        birth_date: Some(day("1965-04-01")),
        sex: Sex::Female,
        items,
    }
}

fn of_kind<'t>(tips: &'t [Tip], kind: &str) -> Vec<&'t Tip> {
    tips.iter().filter(|t| t.kind == kind).collect()
}

fn all_tips(r: &PatientRecord, as_of: &str) -> Vec<Tip> {
    let as_of = day(as_of);
    tips(r, &evaluate_all(r, as_of), as_of)
}

fn assert_readable(ts: &[Tip]) {
    for t in ts {
        let g = reading_grade(&t.text);
        assert!(g <= 8.0, "grade {g:.1} for {:?}", t.text);
    }
}

#[test]
fn every_tip_text_reads_at_grade_8_or_below() {
    let texts = all_texts();
    assert!(texts.len() >= 12, "the texts of every measure and tip kind");
    for t in texts {
        let g = reading_grade(&t);
        assert!(g <= 8.0, "grade {g:.1}: {t}");
    }
}

#[test]
fn care_gap_tip_for_an_open_gap_only() {
    let as_of = day("2025-11-01");
    let m = measure::by_id("cms125").unwrap();
    // No mammogram: a gap, so a tip.
    let gap = evaluate(m, &record(vec![]), as_of);
    assert_eq!(gap.status, Status::Gap);
    let t = tips(&record(vec![]), std::slice::from_ref(&gap), as_of);
    assert_eq!(t.len(), 1);
    assert_eq!(t[0].kind, "care_gap");
    assert_eq!(t[0].measure_id.as_deref(), Some("cms125"));
    assert!(t[0].text.contains("mammogram"));
    assert!(t[0].why.contains("CMS125"), "{}", t[0].why);
    assert_eq!(t[0].created_for, as_of);
    assert_readable(&t);

    // Met, excluded, not applicable: no tip.
    let mammogram = item(
        "mg",
        ItemKind::Procedure,
        CodeSystem::Cpt,
        "77067",
        "2025-02-01",
    );
    let met = evaluate(m, &record(vec![mammogram]), as_of);
    assert_eq!(met.status, Status::Met);
    let hospice = item(
        "h",
        ItemKind::Procedure,
        CodeSystem::Cpt,
        "Q5003",
        "2025-02-01",
    );
    let excluded = evaluate(m, &record(vec![hospice]), as_of);
    assert_eq!(excluded.status, Status::Excluded);
    let man = PatientRecord {
        sex: Sex::Male,
        ..record(vec![])
    };
    let na = evaluate(m, &man, as_of);
    assert_eq!(na.status, Status::NotApplicable);
    assert!(tips(&record(vec![]), &[met, excluded, na], as_of).is_empty());
}

#[test]
fn hba1c_gap_text_depends_on_what_was_found() {
    let as_of = day("2025-11-01");
    let m = measure::by_id("cms122").unwrap();
    let dm = item(
        "dm",
        ItemKind::Condition,
        CodeSystem::Icd10Cm,
        "E11.9",
        "2019-01-01",
    );
    let none = record(vec![dm.clone()]);
    let high = record(vec![dm.clone(), a1c("a", "2025-05-01", 9.8)]);
    let fine = record(vec![dm, a1c("a", "2025-05-01", 7.1)]);
    let t_none = tips(&none, &[evaluate(m, &none, as_of)], as_of);
    let t_high = tips(&high, &[evaluate(m, &high, as_of)], as_of);
    let t_fine = tips(&fine, &[evaluate(m, &fine, as_of)], as_of);
    assert_eq!(t_none.len(), 1);
    assert_eq!(t_high.len(), 1);
    assert!(t_fine.is_empty(), "latest 7.1 is met: no tip");
    assert!(t_none[0].text.contains("could not find"));
    assert!(t_high[0].text.contains("higher than the goal"));
    assert!(
        !t_high[0].text.contains("9.8"),
        "values stay out of the text"
    );
    assert!(
        t_high[0]
            .evidence
            .iter()
            .any(|e| e.fact_id == "a" && e.role == "latest")
    );
    assert!(t_none[0].evidence.iter().all(|e| e.role == "denominator"));
    assert_eq!(t_none[0].id, t_high[0].id, "one gap per measure and year");
    assert_readable(&t_none);
    assert_readable(&t_high);
}

#[test]
fn confirm_tip_only_when_confirming_would_decide() {
    let as_of = day("2025-11-01");
    let m = measure::by_id("cms125").unwrap();
    let photo = Item {
        confirmed: false,
        sources: vec!["ocr".to_owned()],
        ..item(
            "mg",
            ItemKind::Procedure,
            CodeSystem::Cpt,
            "77067",
            "2025-02-01",
        )
    };
    let r = record(vec![photo]);
    let res = evaluate(m, &r, as_of);
    assert_eq!(res.status, Status::InsufficientData);
    let t = tips(&r, std::slice::from_ref(&res), as_of);
    assert_eq!(t.len(), 1);
    assert_eq!(t[0].kind, "care_gap");
    assert!(t[0].text.contains("check that we read"), "{}", t[0].text);
    assert_eq!(t[0].evidence.len(), 1);
    assert_readable(&t);

    // Insufficient for want of a birth date: nothing the patient can confirm, no tip.
    let undated = PatientRecord {
        birth_date: None,
        ..record(vec![])
    };
    let res = evaluate(m, &undated, as_of);
    assert_eq!(res.status, Status::InsufficientData);
    assert!(tips(&undated, &[res], as_of).is_empty());
}

#[test]
fn rising_hba1c_trend() {
    let rising = vec![
        a1c("a1", "2024-03-01", 6.9),
        a1c("a2", "2024-10-01", 7.4),
        a1c("a3", "2025-06-01", 8.1),
    ];
    let t = all_tips(&record(rising.clone()), "2025-11-01");
    let trend = of_kind(&t, "rising_trend");
    assert_eq!(trend.len(), 1);
    let ids: Vec<&str> = trend[0]
        .evidence
        .iter()
        .map(|e| e.fact_id.as_str())
        .collect();
    assert_eq!(ids, ["a1", "a2", "a3"]);
    assert_readable(&t);

    let up_down = vec![
        a1c("a1", "2024-03-01", 6.9),
        a1c("a2", "2024-10-01", 8.1),
        a1c("a3", "2025-06-01", 7.4),
    ];
    assert!(of_kind(&all_tips(&record(up_down), "2025-11-01"), "rising_trend").is_empty());
    let flat = vec![
        a1c("a1", "2024-03-01", 7.4),
        a1c("a2", "2024-10-01", 7.4),
        a1c("a3", "2025-06-01", 8.1),
    ];
    assert!(
        of_kind(&all_tips(&record(flat), "2025-11-01"), "rising_trend").is_empty(),
        "strictly increasing"
    );
    let two = rising[1..].to_vec();
    assert!(of_kind(&all_tips(&record(two), "2025-11-01"), "rising_trend").is_empty());
    // The oldest of the three more than two years back: too old to call a trend.
    assert!(
        of_kind(
            &all_tips(&record(rising.clone()), "2026-03-02"),
            "rising_trend"
        )
        .is_empty()
    );
    assert_eq!(
        of_kind(
            &all_tips(&record(rising.clone()), "2026-03-01"),
            "rising_trend"
        )
        .len(),
        1,
        "730 days is still within two years"
    );
    // An unconfirmed (photo) result does not start a trend.
    let mut unconfirmed = rising.clone();
    unconfirmed[2].confirmed = false;
    assert!(
        of_kind(
            &all_tips(&record(unconfirmed), "2025-11-01"),
            "rising_trend"
        )
        .is_empty()
    );
    // Results after as_of are not known yet.
    assert!(of_kind(&all_tips(&record(rising), "2025-05-31"), "rising_trend").is_empty());
}

#[test]
fn blood_pressure_above_range() {
    let mut high = Vec::new();
    high.extend(bp("b1", "2025-03-01", 144.0, 85.0));
    high.extend(bp("b2", "2025-06-01", 132.0, 92.0));
    high.extend(bp("b3", "2025-09-01", 150.0, 96.0));
    let t = all_tips(&record(high.clone()), "2025-11-01");
    let above = of_kind(&t, "above_range");
    assert_eq!(above.len(), 1);
    assert_eq!(above[0].evidence.len(), 6, "both numbers of each day");
    assert_readable(&t);

    // One of the last three in range: no tip.
    let mut mixed = high.clone();
    mixed.extend(bp("b4", "2025-10-01", 128.0, 82.0));
    assert!(of_kind(&all_tips(&record(mixed), "2025-11-01"), "above_range").is_empty());

    // Pairing by day: a day with only a systolic number is not a reading.
    let mut unpaired: Vec<Item> = high[..4].to_vec();
    unpaired.push(lab("s3", "8480-6", "2025-09-01", 150.0, "mm[Hg]"));
    assert!(of_kind(&all_tips(&record(unpaired), "2025-11-01"), "above_range").is_empty());

    // A normal reading in the emergency room does not count, nor does a high one.
    let mut ed = high.clone();
    ed.extend(bp("e", "2025-10-01", 120.0, 70.0));
    ed.push(Item {
        encounter_class: Some("EMER".to_owned()),
        ..item(
            "visit",
            ItemKind::Encounter,
            CodeSystem::Cpt,
            "99284",
            "2025-10-01",
        )
    });
    assert_eq!(
        of_kind(&all_tips(&record(ed), "2025-11-01"), "above_range").len(),
        1
    );

    // The latest reading more than a year old: stale, no tip.
    assert!(of_kind(&all_tips(&record(high), "2026-09-02"), "above_range").is_empty());
}

#[test]
fn refill_overdue() {
    let as_of = day("2025-11-01");
    let monthly = |last: &str| {
        let last = day(last);
        (0..4)
            .map(|k| {
                let d = last - Duration::days(30 * (3 - k));
                fill(&format!("f{k}"), &d.to_string(), None)
            })
            .collect::<Vec<_>>()
    };
    // Fills every 30 days, the last 40 days ago: 30 + 7 grace < 40, overdue.
    let overdue = record(monthly(&(as_of - Duration::days(40)).to_string()));
    let t = all_tips(&overdue, "2025-11-01");
    let refill = of_kind(&t, "refill_overdue");
    assert_eq!(refill.len(), 1);
    assert!(refill[0].title.contains("Metformin"));
    assert!(refill[0].why.contains("every 30 days"), "{}", refill[0].why);
    assert_readable(&t);

    // 37 days: still within supply and grace.
    let on_time = record(monthly(&(as_of - Duration::days(37)).to_string()));
    assert!(of_kind(&all_tips(&on_time, "2025-11-01"), "refill_overdue").is_empty());

    // Stopped: no reminder.
    let mut stopped = monthly(&(as_of - Duration::days(40)).to_string());
    for f in &mut stopped {
        f.active = false;
    }
    assert!(of_kind(&all_tips(&record(stopped), "2025-11-01"), "refill_overdue").is_empty());

    // Last fill more than 180 days ago: long gone, no reminder.
    let old = record(monthly(&(as_of - Duration::days(181)).to_string()));
    assert!(of_kind(&all_tips(&old, "2025-11-01"), "refill_overdue").is_empty());

    // One fill: 30 days of supply assumed.
    let single = |ago: i64| {
        record(vec![fill(
            "f",
            &(as_of - Duration::days(ago)).to_string(),
            None,
        )])
    };
    assert_eq!(
        of_kind(&all_tips(&single(38), "2025-11-01"), "refill_overdue").len(),
        1
    );
    assert!(of_kind(&all_tips(&single(37), "2025-11-01"), "refill_overdue").is_empty());

    // Fills known from first/last-fill spans, 90 days apart: due 90 + 7 days after 30 June.
    let span = record(vec![
        fill("a", "2025-01-01", Some("2025-04-01")),
        fill("b", "2025-04-01", Some("2025-06-30")),
    ]);
    assert!(of_kind(&all_tips(&span, "2025-10-05"), "refill_overdue").is_empty());
    assert_eq!(
        of_kind(&all_tips(&span, "2025-10-06"), "refill_overdue").len(),
        1
    );
}

#[test]
fn ids_are_stable_and_distinct() {
    let mut items = vec![
        item(
            "dm",
            ItemKind::Condition,
            CodeSystem::Icd10Cm,
            "E11.9",
            "2019-01-01",
        ),
        a1c("a1", "2024-03-01", 6.9),
        a1c("a2", "2024-10-01", 7.4),
        a1c("a3", "2025-06-01", 9.6),
        fill("f", "2025-08-01", None),
    ];
    items.extend(bp("b1", "2025-03-01", 144.0, 85.0));
    items.extend(bp("b2", "2025-06-01", 132.0, 92.0));
    items.extend(bp("b3", "2025-09-01", 150.0, 96.0));
    let r = record(items);
    let first = all_tips(&r, "2025-11-01");
    let again = all_tips(&r.clone(), "2025-11-01");
    assert_eq!(first, again, "recomputing gives the same tips");
    let kinds: Vec<&str> = first.iter().map(|t| t.kind.as_str()).collect();
    for k in ["care_gap", "rising_trend", "above_range", "refill_overdue"] {
        assert!(kinds.contains(&k), "{k} in {kinds:?}");
    }
    let mut ids: Vec<&str> = first.iter().map(|t| t.id.as_str()).collect();
    assert!(
        ids.iter()
            .all(|i| i.len() == 64 && i.bytes().all(|b| b.is_ascii_hexdigit()))
    );
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), first.len(), "distinct ids");
    assert_readable(&first);
    // A later day gives the same gap id within the year, a new one the next year.
    let later = all_tips(&r, "2025-12-01");
    let gap_id = |ts: &[Tip], m: &str| {
        ts.iter()
            .find(|t| t.measure_id.as_deref() == Some(m))
            .map(|t| t.id.clone())
    };
    assert_eq!(gap_id(&first, "cms122"), gap_id(&later, "cms122"));
    let next_year = all_tips(&r, "2026-01-15");
    assert_ne!(gap_id(&first, "cms122"), gap_id(&next_year, "cms122"));
}

#[test]
fn results_without_a_compiled_measure_still_get_a_plain_tip() {
    let as_of = day("2025-11-01");
    let r = MeasureResult {
        measure_id: "local_measure".to_owned(),
        version: "1".to_owned(),
        period_start: day("2025-01-01"),
        period_end: day("2025-12-31"),
        status: Status::Gap,
        evidence: Vec::new(),
        missing: vec!["a test in 2025".to_owned()],
        exclusion_reason: None,
        summary: String::new(),
    };
    let t = tips(&record(vec![]), &[r], as_of);
    assert_eq!(t.len(), 1);
    assert_readable(&t);
}
