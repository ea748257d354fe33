//! Tips for the patient: open care gaps, facts to confirm, and three trends (rising HbA1c,
//! blood pressure above range, a refill that looks overdue). Each tip carries the facts it
//! rests on and says why it is shown. Texts are short, plain and calm: they suggest talking
//! with the care team, never what to conclude.

use crate::engine::{Evidence, MeasureResult, Status};
use crate::record::{Item, ItemKind, PatientRecord};
use chrono::{Duration, NaiveDate};
use p360_model::{CodeSystem, Coding};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Tip {
    /// Hex SHA-256 of the kind and what it is about, so recomputing gives the same id.
    pub id: String,
    /// `care_gap`, `rising_trend`, `above_range` or `refill_overdue`.
    pub kind: String,
    pub measure_id: Option<String>,
    pub title: String,
    pub text: String,
    /// "Why am I seeing this": which facts, from where.
    pub why: String,
    pub evidence: Vec<Evidence>,
    pub created_for: NaiveDate,
}

/// HbA1c laboratory codes (VSAC 2.16.840.1.113883.3.464.1003.198.12.1013). The GMI, an
/// estimate from glucose monitors, is not mixed into the lab trend.
const HBA1C: &[&str] = &["4548-4", "4549-2", "17855-8", "17856-6", "96595-4"];
const SYSTOLIC: &str = "8480-6";
const DIASTOLIC: &str = "8462-4";
/// Encounter classes whose readings are not everyday readings (as CMS165 leaves them out).
const ACUTE_CLASSES: &[&str] = &["EMER", "IMP", "ACUTE", "NONAC", "PRENC", "SS"];

const TREND_YEARS_DAYS: i64 = 730;
const BP_RECENT_DAYS: i64 = 365;
const REFILL_DEFAULT_SUPPLY_DAYS: i64 = 30;
const REFILL_GRACE_DAYS: i64 = 7;
const REFILL_RECENT_DAYS: i64 = 180;

const CONFIRM_TITLE: &str = "Please check a result we read";
const CONFIRM_TEXT: &str = "We read some facts from a photo or file you sent. Please check that we read them right. Then we can tell if this check-up item is done.";
const GAP_FALLBACK_TEXT: &str =
    "A check-up item may be due. Ask your care team if it is right for you.";
const TREND_TITLE: &str = "Your blood sugar tests (HbA1c)";
const TREND_TEXT: &str = "Your last three blood sugar tests (HbA1c) went up each time. This can happen for many reasons. Your care team can help you look at why. You can ask about it at your next visit.";
const BP_TITLE: &str = "Your blood pressure readings";
const BP_TEXT: &str = "Your last three blood pressure readings were above the usual goal. Many things can raise a reading, like stress or pain. Share them with your care team. They can help you decide what to do next.";
const REFILL_TEXT: &str = "It may be time to refill this medicine. If you still take it, your pharmacy can help. If your care team changed or stopped it, you can skip this.";

/// Every text a tip can show, for the reading-level check.
pub fn all_texts() -> Vec<String> {
    let mut out: Vec<String> = [
        CONFIRM_TEXT,
        GAP_FALLBACK_TEXT,
        TREND_TEXT,
        BP_TEXT,
        REFILL_TEXT,
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    for m in crate::measure::all() {
        out.push(m.tip.text.clone());
        out.extend(m.tip.text_when_present.clone());
    }
    out
}

fn tip_id(parts: &[&str]) -> String {
    hex::encode(Sha256::digest(parts.join("\u{1f}").as_bytes()))
}

/// Where a fact came from, for "why am I seeing this".
fn source_words(sources: &[String]) -> String {
    let words: Vec<&str> = sources
        .iter()
        .map(|s| match s.as_str() {
            "payor_feed" => "your health plan's records",
            "ocr" => "a photo you sent",
            "patient_upload" => "a file you sent",
            "manual_entry" => "what you entered",
            "device" => "your device",
            "fhir_store" => "your health records",
            "provider" => "your care team",
            _ => "your records",
        })
        .fold(Vec::new(), |mut acc, w| {
            if !acc.contains(&w) {
                acc.push(w);
            }
            acc
        });
    if words.is_empty() {
        "your records".to_owned()
    } else {
        words.join(" and ")
    }
}

fn facts_why(evidence: &[Evidence]) -> String {
    evidence
        .iter()
        .map(|e| {
            let what = e.display.as_deref().unwrap_or(&e.code);
            format!("{what} on {} (from {})", e.date, source_words(&e.sources))
        })
        .collect::<Vec<_>>()
        .join("; ")
}

pub fn tips(record: &PatientRecord, results: &[MeasureResult], as_of: NaiveDate) -> Vec<Tip> {
    let mut out = Vec::new();
    for r in results {
        match r.status {
            Status::Gap => out.push(gap_tip(r, as_of)),
            Status::InsufficientData => out.extend(confirm_tip(record, r, as_of)),
            Status::Met | Status::Excluded | Status::NotApplicable => {}
        }
    }
    // Trends rest on confirmed facts only: a misread photo must not start a worry.
    let known: Vec<&Item> = record
        .items
        .iter()
        .filter(|i| i.confirmed && i.date <= as_of)
        .collect();
    out.extend(rising_hba1c(&known, as_of));
    out.extend(bp_above_range(&known, as_of));
    out.extend(refills_overdue(&known, as_of));
    out
}

fn gap_tip(r: &MeasureResult, as_of: NaiveDate) -> Tip {
    let measure = crate::measure::by_id(&r.measure_id);
    // Something was found but does not meet the goal (an HbA1c above 9 %): not "no test".
    let present = r
        .evidence
        .iter()
        .any(|e| e.role == "latest" && e.value.is_some());
    let (title, text) = match measure {
        Some(m) => {
            let text = match (&m.tip.text_when_present, present) {
                (Some(t), true) => t.clone(),
                _ => m.tip.text.clone(),
            };
            (m.tip.title.clone(), text)
        }
        None => ("A check-up item".to_owned(), GAP_FALLBACK_TEXT.to_owned()),
    };
    let source = measure.map_or_else(
        || format!("the quality measure {}", r.measure_id),
        |m| format!("the quality measure \"{}\" ({})", m.title, m.source),
    );
    let found = if r.evidence.is_empty() {
        String::new()
    } else {
        format!(" We found: {}.", facts_why(&r.evidence))
    };
    let why = format!(
        "Based on {source}, checked with your records up to {as_of}. It needs {}.{found}",
        r.missing.join("; or ")
    );
    Tip {
        id: tip_id(&["care_gap", &r.measure_id, &r.period_start.to_string()]),
        kind: "care_gap".to_owned(),
        measure_id: Some(r.measure_id.clone()),
        title,
        text,
        why,
        evidence: r.evidence.clone(),
        created_for: as_of,
    }
}

/// Insufficient data that the patient can settle by confirming facts read from their files.
fn confirm_tip(record: &PatientRecord, r: &MeasureResult, as_of: NaiveDate) -> Option<Tip> {
    let pending: Vec<&Evidence> = r
        .evidence
        .iter()
        .filter(|e| {
            record
                .items
                .iter()
                .any(|i| i.fact_id == e.fact_id && !i.confirmed)
        })
        .collect();
    if pending.is_empty() {
        return None;
    }
    let mut ids: Vec<&str> = pending.iter().map(|e| e.fact_id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    let mut parts = vec!["care_gap", "confirm", r.measure_id.as_str()];
    parts.extend(ids);
    let title = crate::measure::by_id(&r.measure_id).map_or_else(
        || CONFIRM_TITLE.to_owned(),
        |m| format!("{CONFIRM_TITLE}: {}", m.tip.title),
    );
    let evidence: Vec<Evidence> = pending.into_iter().cloned().collect();
    Some(Tip {
        id: tip_id(&parts),
        kind: "care_gap".to_owned(),
        measure_id: Some(r.measure_id.clone()),
        title,
        text: CONFIRM_TEXT.to_owned(),
        why: format!(
            "These facts are waiting for your review: {}. Until you confirm them we cannot tell if {} is done.",
            facts_why(&evidence),
            r.measure_id
        ),
        evidence,
        created_for: as_of,
    })
}

fn loinc_of<'i>(item: &'i Item, codes: &[&str]) -> Option<&'i Coding> {
    item.codes
        .iter()
        .find(|c| c.system == CodeSystem::Loinc && codes.contains(&c.code.as_str()))
}

fn trend_evidence(item: &Item, coding: &Coding, criterion: &str) -> Evidence {
    Evidence {
        fact_id: item.fact_id.clone(),
        role: "latest".to_owned(),
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

/// The lowest reading of each day (as CMS122 and CMS165 read a day), oldest first.
fn lowest_per_day<'i>(
    items: impl Iterator<Item = (&'i Item, &'i Coding, f64)>,
) -> Vec<(NaiveDate, f64, &'i Item, &'i Coding)> {
    let mut by_day: BTreeMap<NaiveDate, (f64, &Item, &Coding)> = BTreeMap::new();
    for (item, coding, v) in items {
        let e = by_day.entry(item.date).or_insert((v, item, coding));
        if v < e.0 {
            *e = (v, item, coding);
        }
    }
    by_day
        .into_iter()
        .map(|(d, (v, i, c))| (d, v, i, c))
        .collect()
}

fn rising_hba1c(items: &[&Item], as_of: NaiveDate) -> Option<Tip> {
    let readings = lowest_per_day(items.iter().filter_map(|i| {
        let coding = loinc_of(i, HBA1C)?;
        let percent = i.unit.as_deref().is_some_and(|u| u.trim() == "%");
        Some((*i, coding, i.value.filter(|_| percent)?))
    }));
    let last3 = readings.get(readings.len().checked_sub(3)?..)?;
    let oldest = last3.first()?.0;
    if as_of - oldest > Duration::days(TREND_YEARS_DAYS) {
        return None;
    }
    if !last3.windows(2).all(|w| w[1].1 > w[0].1) {
        return None;
    }
    let evidence: Vec<Evidence> = last3
        .iter()
        .map(|(_, _, i, c)| trend_evidence(i, c, "hba1c_trend"))
        .collect();
    let mut parts = vec!["rising_trend"];
    parts.extend(evidence.iter().map(|e| e.fact_id.as_str()));
    Some(Tip {
        id: tip_id(&parts),
        kind: "rising_trend".to_owned(),
        measure_id: None,
        title: TREND_TITLE.to_owned(),
        text: TREND_TEXT.to_owned(),
        why: format!(
            "Your three most recent HbA1c results, each higher than the one before: {}.",
            facts_why(&evidence)
        ),
        evidence,
        created_for: as_of,
    })
}

fn mmhg(unit: Option<&str>) -> bool {
    // Feeds without a unit send "1"; blood pressure is reported in mmHg everywhere.
    match unit.map(str::trim) {
        None | Some("" | "1") => true,
        Some(u) => u.eq_ignore_ascii_case("mm[Hg]") || u.eq_ignore_ascii_case("mmHg"),
    }
}

fn bp_above_range(items: &[&Item], as_of: NaiveDate) -> Option<Tip> {
    let acute: Vec<(NaiveDate, NaiveDate)> = items
        .iter()
        .filter(|i| i.kind == ItemKind::Encounter)
        .filter(|i| {
            i.encounter_class.as_deref().is_some_and(|c| {
                ACUTE_CLASSES
                    .iter()
                    .any(|a| a.eq_ignore_ascii_case(c.trim()))
            })
        })
        .map(|i| (i.date, i.end.unwrap_or(i.date).max(i.date)))
        .collect();
    let acute = &acute;
    let readings = |code: &'static str| {
        lowest_per_day(items.iter().filter_map(move |i| {
            let coding = loinc_of(i, &[code])?;
            if acute.iter().any(|(f, t)| i.date >= *f && i.date <= *t) || !mmhg(i.unit.as_deref()) {
                return None;
            }
            Some((*i, coding, i.value?))
        }))
    };
    let sys: BTreeMap<NaiveDate, _> = readings(SYSTOLIC).into_iter().map(|r| (r.0, r)).collect();
    // Paired by day: a day counts when it has both numbers.
    let days: Vec<_> = readings(DIASTOLIC)
        .into_iter()
        .filter_map(|d| sys.get(&d.0).map(|s| (*s, d)))
        .collect();
    let last3 = days.get(days.len().checked_sub(3)?..)?;
    let newest = last3.last()?.0.0;
    if as_of - newest > Duration::days(BP_RECENT_DAYS) {
        return None;
    }
    if !last3.iter().all(|(s, d)| s.1 >= 140.0 || d.1 >= 90.0) {
        return None;
    }
    let evidence: Vec<Evidence> = last3
        .iter()
        .flat_map(|(s, d)| {
            [
                trend_evidence(s.2, s.3, "bp_above_range"),
                trend_evidence(d.2, d.3, "bp_above_range"),
            ]
        })
        .collect();
    let mut parts = vec!["above_range"];
    parts.extend(evidence.iter().map(|e| e.fact_id.as_str()));
    Some(Tip {
        id: tip_id(&parts),
        kind: "above_range".to_owned(),
        measure_id: None,
        title: BP_TITLE.to_owned(),
        text: BP_TEXT.to_owned(),
        why: format!(
            "Your three most recent blood pressure days each had a top number of 140 or more or a bottom number of 90 or more (emergency and hospital readings left out): {}.",
            facts_why(&evidence)
        ),
        evidence,
        created_for: as_of,
    })
}

/// The medicine a fill belongs to: its RxNorm code, else its first code, else its name.
fn medicine_key(item: &Item) -> String {
    item.codes
        .iter()
        .find(|c| c.system == CodeSystem::RxNorm)
        .or_else(|| item.codes.first())
        .map(|c| format!("{}|{}", c.system.uri(), c.code))
        .or_else(|| item.display.as_ref().map(|d| d.to_lowercase()))
        .unwrap_or_else(|| item.fact_id.clone())
}

fn median_days(gaps: &mut [i64]) -> Option<i64> {
    if gaps.is_empty() {
        return None;
    }
    gaps.sort_unstable();
    let n = gaps.len();
    Some(if n % 2 == 1 {
        gaps[n / 2]
    } else {
        (gaps[n / 2 - 1] + gaps[n / 2]) / 2
    })
}

fn refills_overdue(items: &[&Item], as_of: NaiveDate) -> Vec<Tip> {
    let mut groups: BTreeMap<String, Vec<&Item>> = BTreeMap::new();
    for i in items.iter().filter(|i| i.kind == ItemKind::Medication) {
        groups.entry(medicine_key(i)).or_default().push(i);
    }
    let mut out = Vec::new();
    for (key, group) in groups {
        // Known fill days: each fact's first fill and last fill (feeds keep only those two of
        // a run of fills), none after as_of.
        let mut fills: Vec<NaiveDate> = group
            .iter()
            .flat_map(|i| [Some(i.date), i.end])
            .flatten()
            .filter(|d| *d <= as_of)
            .collect();
        fills.sort_unstable();
        fills.dedup();
        let Some(&last_fill) = fills.last() else {
            continue;
        };
        let Some(latest) = group
            .iter()
            .max_by_key(|i| (i.end.unwrap_or(i.date), i.date, i.fact_id.clone()))
        else {
            continue;
        };
        if !latest.active || as_of - last_fill > Duration::days(REFILL_RECENT_DAYS) {
            continue;
        }
        let mut gaps: Vec<i64> = fills.windows(2).map(|w| (w[1] - w[0]).num_days()).collect();
        let supply = median_days(&mut gaps).unwrap_or(REFILL_DEFAULT_SUPPLY_DAYS);
        let due = last_fill + Duration::days(supply + REFILL_GRACE_DAYS);
        if due >= as_of {
            continue;
        }
        let name = latest
            .display
            .clone()
            .or_else(|| latest.codes.iter().find_map(|c| c.display.clone()))
            .unwrap_or_else(|| "your medicine".to_owned());
        let coding = latest.codes.first().cloned().unwrap_or_else(|| {
            Coding::new(
                CodeSystem::RxNorm,
                key.rsplit('|').next().unwrap_or(""),
                None,
            )
        });
        let mut ev = trend_evidence(latest, &coding, "refill_overdue");
        ev.date = last_fill;
        let mut ids: Vec<&str> = group.iter().map(|i| i.fact_id.as_str()).collect();
        ids.sort_unstable();
        let last = last_fill.to_string();
        let mut parts = vec!["refill_overdue"];
        parts.extend(ids);
        parts.push(&last);
        out.push(Tip {
            id: tip_id(&parts),
            kind: "refill_overdue".to_owned(),
            measure_id: None,
            title: format!("Time to refill {name}?"),
            text: REFILL_TEXT.to_owned(),
            why: format!(
                "The last fill we know of was on {last_fill} (from {}). Fills came about every {supply} days, so the next one was due by {due} (with {REFILL_GRACE_DAYS} extra days), and the medicine is still listed as active.",
                source_words(&latest.sources)
            ),
            evidence: vec![ev],
            created_for: as_of,
        });
    }
    out
}

/// Flesch–Kincaid grade level: 0.39 × words per sentence + 11.8 × syllables per word − 15.59.
/// Syllables are counted as groups of vowels (y included), less a silent final e; a word has
/// at least one.
pub fn reading_grade(text: &str) -> f64 {
    let sentences = text
        .split(['.', '!', '?'])
        .filter(|s| s.chars().any(char::is_alphanumeric))
        .count()
        .max(1);
    let words: Vec<String> = text
        .split_whitespace()
        .map(|w| {
            w.chars()
                .filter(char::is_ascii_alphanumeric)
                .collect::<String>()
                .to_ascii_lowercase()
        })
        .filter(|w| !w.is_empty())
        .collect();
    if words.is_empty() {
        return 0.0;
    }
    let syllables: usize = words.iter().map(|w| syllables(w)).sum();
    let (w, s, y) = (words.len() as f64, sentences as f64, syllables as f64);
    0.39 * (w / s) + 11.8 * (y / w) - 15.59
}

fn syllables(word: &str) -> usize {
    let letters: Vec<char> = word.chars().filter(char::is_ascii_alphabetic).collect();
    if letters.is_empty() {
        // A number: counted as one syllable (a rough guess, and tip texts avoid numbers).
        return 1;
    }
    let vowel = |c: char| matches!(c, 'a' | 'e' | 'i' | 'o' | 'u' | 'y');
    let mut count = 0;
    let mut prev = false;
    for &c in &letters {
        let v = vowel(c);
        if v && !prev {
            count += 1;
        }
        prev = v;
    }
    let n = letters.len();
    // Silent final e ("care", "time"), but not "-le" ("table") or "-ee" ("see").
    if n > 2
        && letters[n - 1] == 'e'
        && letters[n - 2] != 'l'
        && !vowel(letters[n - 2])
        && count > 1
    {
        count -= 1;
    }
    count.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syllable_heuristic() {
        assert_eq!(syllables("care"), 1);
        assert_eq!(syllables("table"), 2);
        assert_eq!(syllables("medicine"), 3);
        assert_eq!(syllables("blood"), 1);
        assert_eq!(syllables("see"), 1);
        assert_eq!(syllables("pharmacy"), 3);
        assert_eq!(syllables("2025"), 1);
    }

    #[test]
    fn grade_levels_order_texts() {
        let easy = "The cat sat on the mat. It was warm.";
        let hard = "Comprehensive cardiovascular pharmacotherapeutic interventions necessitate individualized multidisciplinary consideration.";
        assert!(reading_grade(easy) < 2.0, "{}", reading_grade(easy));
        assert!(reading_grade(hard) > 16.0, "{}", reading_grade(hard));
        assert_eq!(reading_grade(""), 0.0);
    }

    #[test]
    fn median() {
        assert_eq!(median_days(&mut []), None);
        assert_eq!(median_days(&mut [30]), Some(30));
        assert_eq!(median_days(&mut [90, 28, 30]), Some(30));
        assert_eq!(median_days(&mut [28, 32, 30, 90]), Some(31));
    }
}
