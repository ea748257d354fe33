//! Lab results: a line that starts with a known analyte name, followed by its value, unit,
//! reference range and flag in any order (layouts print them in different orders and cells).

use super::sections::{Section, heading};
use super::text::{decimals, find_date, parse_number};
use super::{LabResult, LabValue, PageLine};
use crate::terminology::{labs, units};

const NAME_MATCH: f64 = 0.84;
const MAX_NAME_WORDS: usize = 7;

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Value {
        value: f64,
        comparator: Option<String>,
        text: String,
    },
    TextValue(String),
    Unit {
        printed: String,
        ucum: &'static str,
    },
    Range {
        low: Option<f64>,
        high: Option<f64>,
        text: String,
    },
    Flag(String),
    Other,
}

fn flag_of(w: &str) -> Option<&'static str> {
    match w
        .trim_matches(|c: char| "()*[].,;:|".contains(c))
        .to_uppercase()
        .as_str()
    {
        "H" | "HIGH" | "HI" => Some("H"),
        "L" | "LOW" | "LO" => Some("L"),
        "A" | "ABN" | "ABNORMAL" => Some("A"),
        "HH" | "CRIT" => Some("HH"),
        "LL" => Some("LL"),
        _ => None,
    }
}

fn text_value(w: &str) -> Option<&'static str> {
    match w.to_uppercase().trim_end_matches('.') {
        "POS" | "POSITIVE" => Some("Positive"),
        "NEG" | "NEGATIVE" => Some("Negative"),
        "REACTIVE" => Some("Reactive"),
        "NONREACTIVE" | "NON-REACTIVE" => Some("Non-reactive"),
        "DETECTED" => Some("Detected"),
        "TRACE" => Some("Trace"),
        _ => None,
    }
}

fn split_comparator(w: &str) -> (Option<String>, &str) {
    for c in ["<=", ">=", "≤", "≥", "<", ">"] {
        if let Some(rest) = w.strip_prefix(c) {
            let c = match c {
                "≤" => "<=",
                "≥" => ">=",
                other => other,
            };
            return (Some(c.to_string()), rest);
        }
    }
    (None, w)
}

fn parse_range(w: &str) -> Option<(Option<f64>, Option<f64>)> {
    let (cmp, rest) = split_comparator(w);
    if let Some(c) = cmp {
        let v = parse_number(rest)?;
        return Some(if c.starts_with('<') {
            (None, Some(v))
        } else {
            (Some(v), None)
        });
    }
    let (lo, hi) = rest.split_once('-')?;
    Some((Some(parse_number(lo)?), Some(parse_number(hi)?)))
}

/// Classifies the words after the name, joining split ranges (`30.0 - 100.0`) and splitting
/// glued units (`41.0%`, `500mg/dL`).
fn tokens(words: &[&str]) -> Vec<(Token, usize, usize)> {
    let mut out = Vec::new();
    let mut i = 0;
    let mut have_value = false;
    while i < words.len() {
        let w = words[i].trim_matches(|c: char| c == ',' || c == ';' || c == '|');
        // OCR reads a range's dash as `=`, `–`, `—` or `~`.
        let dashed = w.replace(['=', '–', '—', '~'], "-");
        let w = dashed.as_str();
        // `30.0 - 100.0` printed with spaces.
        if i + 2 < words.len()
            && matches!(words[i + 1], "-" | "=" | "–" | "—" | "~")
            && parse_number(w).is_some()
            && parse_number(words[i + 2]).is_some()
            && have_value
        {
            let text = format!("{w}-{}", words[i + 2]);
            if let Some((low, high)) = parse_range(&text) {
                out.push((
                    Token::Range {
                        low,
                        high,
                        text: format!("{w} - {}", words[i + 2]),
                    },
                    i,
                    i + 3,
                ));
                i += 3;
                continue;
            }
        }
        // `3.5-` `5.1`: a range split after its dash.
        if have_value
            && w.ends_with('-')
            && i + 1 < words.len()
            && let (Some(lo), Some(hi)) = (
                parse_number(w.trim_end_matches('-')),
                parse_number(words[i + 1]),
            )
        {
            out.push((
                Token::Range {
                    low: Some(lo),
                    high: Some(hi),
                    text: format!("{} - {}", w.trim_end_matches('-'), words[i + 1]),
                },
                i,
                i + 2,
            ));
            i += 2;
            continue;
        }
        if let Some(f) = flag_of(w) {
            out.push((Token::Flag(f.into()), i, i + 1));
        } else if let Some(ucum) = units::to_ucum(w) {
            out.push((
                Token::Unit {
                    printed: w.to_string(),
                    ucum,
                },
                i,
                i + 1,
            ));
        } else if !have_value && let Some(t) = text_value(w) {
            have_value = true;
            out.push((Token::TextValue(t.into()), i, i + 1));
        } else if !have_value && let Some((value, comparator, unit)) = value_with_unit(w) {
            have_value = true;
            out.push((
                Token::Value {
                    value,
                    comparator,
                    text: strip_unit(w, unit.clone()),
                },
                i,
                i + 1,
            ));
            if let Some((printed, ucum)) = unit {
                out.push((Token::Unit { printed, ucum }, i, i + 1));
            }
        } else if have_value && let Some((low, high)) = parse_range(w.trim_end_matches('%')) {
            out.push((
                Token::Range {
                    low,
                    high,
                    text: w.to_string(),
                },
                i,
                i + 1,
            ));
            if w.ends_with('%') && w.len() > 1 {
                out.push((
                    Token::Unit {
                        printed: "%".into(),
                        ucum: "%",
                    },
                    i,
                    i + 1,
                ));
            }
        } else {
            out.push((Token::Other, i, i + 1));
        }
        i += 1;
    }
    out
}

type GluedUnit = Option<(String, &'static str)>;

/// `5.2`, `<0.5`, `41.0%`, `>1000`: the number, its comparator and a unit glued to it.
fn value_with_unit(w: &str) -> Option<(f64, Option<String>, GluedUnit)> {
    let (cmp, rest) = split_comparator(w);
    if let Some(v) = parse_number(rest) {
        return Some((v, cmp, None));
    }
    let split = rest.find(|c: char| !(c.is_ascii_digit() || c == '.' || c == ','))?;
    let (num, unit) = rest.split_at(split);
    let v = parse_number(num)?;
    let ucum = units::to_ucum(unit)?;
    Some((v, cmp, Some((unit.to_string(), ucum))))
}

fn strip_unit(w: &str, unit: GluedUnit) -> String {
    match unit {
        Some((u, _)) => w.trim_end_matches(u.as_str()).to_string(),
        None => w.to_string(),
    }
}

/// Finds the analyte name at the start of a line (skipping up to two stray marks a photo's
/// edge adds), longest name first.
fn name_at(words: &[&str]) -> Option<(usize, usize, labs::NameMatch<'static>)> {
    let table = labs::table();
    for skip in 0..=2.min(words.len().saturating_sub(1)) {
        if skip > 0
            && words[skip - 1]
                .chars()
                .filter(|c| c.is_alphanumeric())
                .count()
                > 2
        {
            break;
        }
        let max = MAX_NAME_WORDS.min(words.len() - skip - 1);
        for n in (1..=max).rev() {
            let span = &words[skip..skip + n];
            // The name ends before the first number (names with digits, like `CO2`, `B12`, keep
            // them inside words).
            if span
                .iter()
                .any(|w| parse_number(w).is_some() || split_comparator(w).0.is_some())
            {
                continue;
            }
            let printed = span.join(" ");
            if let Some(m) = table.lookup(&printed, NAME_MATCH) {
                return Some((skip, skip + n, m));
            }
        }
    }
    None
}

pub(crate) fn extract(lines: &[PageLine<'_>], sections: &[Section]) -> Vec<LabResult> {
    let mut out = Vec::new();
    let mut section_date = None;
    for (i, line) in lines.iter().enumerate() {
        if let Some((s, _)) = heading(line) {
            section_date = (s == Section::Results)
                .then(|| find_date(&line.line.text()).map(|(d, _)| d))
                .flatten();
        }
        if matches!(
            sections[i],
            Section::Vitals
                | Section::Medications
                | Section::StoppedMedications
                | Section::Allergies
        ) {
            continue;
        }
        if let Some(mut r) = result(line) {
            r.date = section_date;
            out.push(r);
        }
    }
    out
}

fn result(line: &PageLine<'_>) -> Option<LabResult> {
    let words = line.words();
    let (from, to, name) = name_at(&words)?;
    let toks = tokens(&words[to..]);
    let mut value = None;
    let mut unit: Option<(String, &'static str)> = None;
    let mut range = None;
    let mut flag = None;
    let mut last = to;
    // Units any code of this analyte is reported in: a printed unit among them is preferred to
    // another unit-like token on the row, and a garbled one is read as its closest.
    let expected: Vec<&'static str> = name
        .candidates
        .iter()
        .flat_map(|c| c.units.iter().copied())
        .collect();
    let mut garbled = None;
    for (t, start, end) in &toks {
        match t {
            Token::Value { .. } | Token::TextValue(_) if value.is_none() => value = Some(t.clone()),
            Token::Unit { printed, ucum }
                if unit
                    .as_ref()
                    .is_none_or(|(_, u)| !expected.contains(u) && expected.contains(ucum)) =>
            {
                unit = Some((printed.clone(), *ucum))
            }
            Token::Other if value.is_some() && garbled.is_none() => {
                let w = words[to + start];
                if let Some(ucum) = units::closest(w, &expected) {
                    garbled = Some((w.to_string(), ucum));
                    last = to + end;
                }
                continue;
            }
            Token::Range { .. } if range.is_none() => range = Some(t.clone()),
            Token::Flag(f) if flag.is_none() && value.is_some() => flag = Some(f.clone()),
            Token::Other => continue,
            _ => {}
        }
        last = to + end;
    }
    let value = value?;
    let mut notes = Vec::new();
    if unit.as_ref().is_none_or(|(_, u)| !expected.contains(u))
        && let Some(g) = garbled
    {
        notes.push(format!("unit read as {} ({} printed)", g.1, g.0));
        unit = Some(g);
    }
    let ucum = unit.as_ref().map(|(_, u)| *u);
    let code = name.code_for_unit(ucum);
    let mut source = line.source(from, last);
    source.confidence *= name.score as f32;
    if !notes.is_empty() {
        source.confidence = source.confidence.min(0.8);
    }
    let (ref_low, ref_high, ref_text) = match &range {
        Some(Token::Range { low, high, text }) => (*low, *high, Some(text.clone())),
        _ => (None, None, None),
    };
    let (lab_value, value_text) = match value {
        Token::Value {
            mut value,
            comparator,
            text,
        } => {
            // A printed flag must agree with the value and the printed range (labs compute one
            // from the other). When they disagree and moving the decimal point makes them agree,
            // OCR dropped the point (`2179` for `2.179`): repair, and ask the patient to check.
            if comparator.is_none()
                && !text.contains('.')
                && let Some(fixed) = repair_decimal(
                    value,
                    ref_low,
                    ref_high,
                    flag.as_deref(),
                    ref_text.as_deref(),
                )
            {
                notes.push(format!("decimal point restored ({text} read)"));
                value = fixed;
                source.confidence = source.confidence.min(0.6);
            } else if !flag_agrees(value, ref_low, ref_high, flag.as_deref()) {
                notes.push("value, range and flag disagree".into());
                source.confidence = source.confidence.min(0.5);
            }
            let printed = if notes.iter().any(|n| n.starts_with("decimal")) {
                format_like(value, ref_text.as_deref())
            } else {
                text.clone()
            };
            (
                LabValue::Quantity {
                    value,
                    comparator: comparator.clone(),
                },
                format!("{}{}", comparator.unwrap_or_default(), printed),
            )
        }
        Token::TextValue(t) => (LabValue::Text { text: t.clone() }, t),
        _ => return None,
    };
    if unit.is_none()
        && !code
            .units
            .iter()
            .any(|u| u.starts_with('{') || *u == "1" || *u == "[pH]")
    {
        notes.push("no unit printed".into());
        source.confidence = source.confidence.min(0.7);
    }
    if ucum.is_some_and(|u| !code.units.contains(&u)) {
        notes.push("unit unusual for this test".into());
        source.confidence = source.confidence.min(0.7);
    }
    let flag = flag.or_else(|| derived_flag(&lab_value, ref_low, ref_high));
    Some(LabResult {
        name_as_printed: words[from..to].join(" "),
        loinc: code.loinc.to_string(),
        display: code.display.to_string(),
        value: lab_value,
        value_text,
        unit_as_printed: unit.as_ref().map(|(p, _)| p.clone()),
        ucum: ucum.map(str::to_string),
        ref_low,
        ref_high,
        ref_text,
        flag,
        date: None,
        source,
        notes,
    })
}

fn flag_agrees(v: f64, low: Option<f64>, high: Option<f64>, flag: Option<&str>) -> bool {
    if low.is_none() && high.is_none() {
        return true;
    }
    let above = high.is_some_and(|h| v > h);
    let below = low.is_some_and(|l| v < l);
    match flag {
        Some("H") | Some("HH") => above,
        Some("L") | Some("LL") => below,
        Some(_) => true,
        // No flag printed: in range (a few labs leave flags off; only gross misses count).
        None => !(high.is_some_and(|h| v > h * 3.0) || low.is_some_and(|l| v < l / 3.0)),
    }
}

fn repair_decimal(
    v: f64,
    low: Option<f64>,
    high: Option<f64>,
    flag: Option<&str>,
    range: Option<&str>,
) -> Option<f64> {
    if flag_agrees(v, low, high, flag) {
        return None;
    }
    let places = range.map(decimals).unwrap_or(1).max(1);
    (1..=3)
        .map(|k| v / 10f64.powi(k))
        .filter(|c| flag_agrees(*c, low, high, flag))
        .min_by_key(|c| (decimals(&format!("{c}")) as i64 - places as i64).unsigned_abs())
}

fn format_like(v: f64, range: Option<&str>) -> String {
    let places = range.map(decimals).unwrap_or(1);
    format!("{v:.places$}")
}

fn derived_flag(v: &LabValue, low: Option<f64>, high: Option<f64>) -> Option<String> {
    let LabValue::Quantity {
        value,
        comparator: None,
    } = v
    else {
        return None;
    };
    if high.is_some_and(|h| *value > h) {
        Some("H".into())
    } else if low.is_some_and(|l| *value < l) {
        Some("L".into())
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::{BBox, Line, Word};

    fn line(text: &str) -> Line {
        Line::new(
            text.split_whitespace()
                .enumerate()
                .map(|(i, t)| Word {
                    text: t.into(),
                    bbox: BBox {
                        x: i as u32 * 60,
                        y: 10,
                        width: 50,
                        height: 20,
                    },
                    confidence: 0.95,
                })
                .collect(),
        )
    }

    fn read(text: &str) -> Option<LabResult> {
        let l = line(text);
        result(&PageLine { page: 1, line: &l })
    }

    #[test]
    fn orders_of_value_unit_range_and_flag() {
        let r = read("Glucose, Fasting 72 mg/dL 65-99 mg/dL").expect("glucose");
        assert_eq!(
            (r.loinc.as_str(), r.ucum.as_deref(), r.ref_low, r.ref_high),
            ("2345-7", Some("mg/dL"), Some(65.0), Some(99.0))
        );
        let r = read("Creatinine 1.97 HIGH mg/dL 0.57-1.00").expect("creatinine");
        assert_eq!(
            (r.value.clone(), r.flag.as_deref()),
            (
                LabValue::Quantity {
                    value: 1.97,
                    comparator: None
                },
                Some("H")
            )
        );
        let r = read("Glucose, Fasting 203 H 70-99 mg/dL").expect("c layout");
        assert_eq!(r.flag.as_deref(), Some("H"));
        let r = read("Hct 41.0% 37.5-51.0%").expect("glued");
        assert_eq!(
            (r.loinc.as_str(), r.ucum.as_deref(), r.ref_high),
            ("4544-3", Some("%"), Some(51.0))
        );
        let r = read("Vitamin D, 25-OH, Total 23.1 LOW 30.0 - 100.0 ng/mL").expect("spaced range");
        assert_eq!(
            (r.loinc.as_str(), r.ref_low, r.ref_high, r.flag.as_deref()),
            ("1989-3", Some(30.0), Some(100.0), Some("L"))
        );
        let r = read("Triglyceride 141 <150 mg/dL").expect("open range");
        assert_eq!((r.ref_low, r.ref_high), (None, Some(150.0)));
        let r = read("Sodium 141 136-145 mEq/L").expect("meq");
        assert_eq!(r.ucum.as_deref(), Some("meq/L"));
        let r = read("CRP <0.5 0.0-4.9 mg/L").expect("comparator value");
        assert_eq!(
            r.value,
            LabValue::Quantity {
                value: 0.5,
                comparator: Some("<".into())
            }
        );
    }

    #[test]
    fn a_dropped_decimal_point_is_restored_and_marked_for_review() {
        let r = read("Thyroid Stimulating Hormone 2179 ulU/mL 0.400-4.200").expect("tsh");
        assert_eq!(
            r.value,
            LabValue::Quantity {
                value: 2.179,
                comparator: None
            }
        );
        assert_eq!(r.ucum.as_deref(), Some("u[IU]/mL"));
        assert!(r.source.confidence <= 0.6);
    }

    #[test]
    fn prose_and_vitals_are_not_results() {
        assert!(read("Return to clinic in 3 months.").is_none());
        assert!(read("3900 Kestrel Avenue, Sunnydale, CA 95264").is_none());
    }
}
