//! Small text helpers shared by the extractors: dates, numbers, names, section headings.

use crate::terminology::normalize;
use chrono::NaiveDate;
use regex::Regex;
use std::sync::OnceLock;

fn re(cell: &'static OnceLock<Regex>, pattern: &str) -> &'static Regex {
    cell.get_or_init(|| Regex::new(pattern).unwrap_or_else(|e| panic!("bad built-in regex: {e}")))
}

/// The first date in `s`: `MM/DD/YYYY`, `MM-DD-YYYY`, `YYYY-MM-DD`, `Jan 15, 2024`,
/// `15-Jan-2024`, `January 15 2024`. Returns the date and the byte range it spans.
pub fn find_date(s: &str) -> Option<(NaiveDate, std::ops::Range<usize>)> {
    static NUMERIC: OnceLock<Regex> = OnceLock::new();
    static ISO: OnceLock<Regex> = OnceLock::new();
    static MONTH_FIRST: OnceLock<Regex> = OnceLock::new();
    static DAY_FIRST: OnceLock<Regex> = OnceLock::new();
    let mut found: Vec<(NaiveDate, std::ops::Range<usize>)> = Vec::new();
    for c in re(
        &NUMERIC,
        r"\b(\d{1,2})([/\-.])(\d{1,2})[/\-.](\d{4}|\d{2})\b",
    )
    .captures_iter(s)
    {
        let (a, b, y) = (num(&c[1]), num(&c[3]), year(&c[4]));
        // Month first (US) unless the first number cannot be a month or the separator is a dot
        // (`05.03.2024`, the European way).
        let (m, d) = if a > 12 || (&c[2] == "." && b <= 12) {
            (b, a)
        } else {
            (a, b)
        };
        if let Some(date) = NaiveDate::from_ymd_opt(y, m, d) {
            found.push((date, c.get(0).map(|m| m.range()).unwrap_or_default()));
        }
    }
    for c in re(&ISO, r"\b(\d{4})-(\d{2})-(\d{2})\b").captures_iter(s) {
        if let Some(date) = NaiveDate::from_ymd_opt(num(&c[1]) as i32, num(&c[2]), num(&c[3])) {
            found.push((date, c.get(0).map(|m| m.range()).unwrap_or_default()));
        }
    }
    for c in re(
        &MONTH_FIRST,
        r"(?i)\b([A-Z][a-z]{2,8})\.?\s+(\d{1,2})(?:st|nd|rd|th)?,?\s+(\d{4})\b",
    )
    .captures_iter(s)
    {
        if let (Some(m), d, y) = (month(&c[1]), num(&c[2]), num(&c[3]) as i32)
            && let Some(date) = NaiveDate::from_ymd_opt(y, m, d)
        {
            found.push((date, c.get(0).map(|m| m.range()).unwrap_or_default()));
        }
    }
    for c in re(
        &DAY_FIRST,
        r"(?i)\b(\d{1,2})(?:st|nd|rd|th)?(?:\s+of)?[\s\-/.]([A-Z][a-z]{2,8})\.?[\s\-,/.]+(\d{4}|\d{2})\b",
    )
    .captures_iter(s)
    {
        if let (d, Some(m), y) = (num(&c[1]), month(&c[2]), year(&c[3]))
            && let Some(date) = NaiveDate::from_ymd_opt(y, m, d)
        {
            found.push((date, c.get(0).map(|m| m.range()).unwrap_or_default()));
        }
    }
    found.into_iter().min_by_key(|(_, r)| r.start)
}

fn num(s: &str) -> u32 {
    s.parse().unwrap_or(0)
}

fn year(s: &str) -> i32 {
    let y: i32 = s.parse().unwrap_or(0);
    if s.len() == 2 {
        // Two-digit years: a document date or a birth date; the pivot keeps both plausible.
        if y > 40 { 1900 + y } else { 2000 + y }
    } else {
        y
    }
}

fn month(s: &str) -> Option<u32> {
    let m = s.to_lowercase();
    let names = [
        "january",
        "february",
        "march",
        "april",
        "may",
        "june",
        "july",
        "august",
        "september",
        "october",
        "november",
        "december",
    ];
    // `Mar`, `March`, `Sept`: a prefix of the month's name, never a longer word (`Marchetti`).
    names
        .iter()
        .position(|n| m.len() >= 3 && n.starts_with(m.as_str()))
        .map(|i| i as u32 + 1)
}

/// A number as printed, tolerating OCR's letters for digits (`O` → 0, `S` → 5, `l`/`I` → 1) in a
/// token that has digits. `None` for anything that is not a number.
pub fn parse_number(s: &str) -> Option<f64> {
    let cleaned: String = s
        .chars()
        .map(|c| match c {
            'O' | 'o' => '0',
            'S' | 's' => '5',
            'l' | 'I' => '1',
            other => other,
        })
        .collect();
    if !s.chars().any(|c| c.is_ascii_digit()) {
        return None;
    }
    if !cleaned
        .chars()
        .all(|c| c.is_ascii_digit() || c == '.' || c == ',')
    {
        return None;
    }
    // `1,245` is a thousands separator in lab printouts.
    let cleaned = cleaned.replace(',', "");
    if cleaned.matches('.').count() > 1 || cleaned.ends_with('.') || cleaned.starts_with('.') {
        return None;
    }
    cleaned.parse().ok()
}

/// Decimal places as printed (`0.400` → 3).
pub fn decimals(s: &str) -> usize {
    s.split_once('.')
        .map(|(_, f)| f.chars().take_while(char::is_ascii_digit).count())
        .unwrap_or(0)
}

/// A person's name as printed (`PRESCOTT, CAROL M`, `Janet L. Calloway`, `Rosa Castellanos, MD`,
/// `WHITFIELD, ANIKA PA-C`), split into family and given names, credentials dropped.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PersonName {
    pub family: String,
    pub given: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
    pub as_printed: String,
}

const CREDENTIALS: &[&str] = &[
    "md", "do", "np", "pa", "pa c", "pac", "rn", "phd", "fnp", "fnp c", "fnp bc", "dnp", "aprn",
    "mbbs", "facp", "faafp", "pharmd", "rph", "dds", "od", "dpm", "cnm", "crnp", "anp", "msn",
];

fn is_credential(word: &str) -> bool {
    let w = normalize(word);
    !w.is_empty() && CREDENTIALS.contains(&w.as_str())
}

fn title_case(w: &str) -> String {
    let mut out = String::new();
    let mut upper = true;
    for c in w.chars() {
        if upper {
            out.extend(c.to_uppercase());
        } else {
            out.extend(c.to_lowercase());
        }
        upper = c == '-' || c == '\'';
    }
    out
}

const HONORIFICS: &[&str] = &["dr", "mr", "mrs", "ms", "miss", "prof"];

pub fn parse_person(printed: &str) -> Option<PersonName> {
    let printed = printed
        .trim()
        .trim_matches(|c: char| c == ',' || c == ';' || c == '|');
    let printed = match printed.split_once(' ') {
        Some((first, rest)) if HONORIFICS.contains(&normalize(first).as_str()) => rest.trim(),
        _ => printed,
    };
    let strip = |w: &str| -> String {
        w.trim_matches(|c: char| !c.is_alphanumeric() && c != '-' && c != '\'')
            .to_string()
    };
    let (family, given, credential) = match printed.split_once(',') {
        Some((before, after)) => {
            let after_words: Vec<&str> = after.split_whitespace().collect();
            let (names, creds): (Vec<&str>, Vec<&str>) =
                after_words.iter().partition(|w| !is_credential(w));
            if names.is_empty() {
                // `Given Middle Family, MD`
                let words: Vec<String> = before
                    .split_whitespace()
                    .map(strip)
                    .filter(|w| !w.is_empty())
                    .collect();
                let (family, given) = words.split_last()?;
                (
                    family.clone(),
                    given.to_vec(),
                    creds.first().map(|c| strip(c)),
                )
            } else {
                // `FAMILY, GIVEN MIDDLE CRED`
                let family = before
                    .split_whitespace()
                    .map(strip)
                    .collect::<Vec<_>>()
                    .join(" ");
                (
                    family,
                    names.iter().map(|w| strip(w)).collect(),
                    creds.first().map(|c| strip(c)),
                )
            }
        }
        None => {
            let mut words: Vec<&str> = printed.split_whitespace().collect();
            let mut credential = None;
            while let Some(last) = words.last() {
                if is_credential(last) {
                    credential = Some(strip(last));
                    words.pop();
                } else {
                    break;
                }
            }
            let words: Vec<String> = words
                .into_iter()
                .map(strip)
                .filter(|w| !w.is_empty())
                .collect();
            let (family, given) = words.split_last()?;
            (family.clone(), given.to_vec(), credential)
        }
    };
    let given: Vec<String> = given
        .into_iter()
        .filter(|g| !g.is_empty())
        .map(|g| title_case(&g))
        .collect();
    if family.is_empty() || given.is_empty() || !family.chars().any(char::is_alphabetic) {
        return None;
    }
    Some(PersonName {
        family: title_case(&family),
        given,
        credential,
        as_printed: printed.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_in_the_usual_printed_forms() {
        let d = |s: &str| find_date(s).map(|(d, _)| d.to_string());
        assert_eq!(d("DOB: 01/12/1990").as_deref(), Some("1990-01-12"));
        assert_eq!(d("11-05-2022 09:35").as_deref(), Some("2022-11-05"));
        assert_eq!(d("Dec 13, 2024").as_deref(), Some("2024-12-13"));
        assert_eq!(d("2024-06-06").as_deref(), Some("2024-06-06"));
        assert_eq!(d("on 15-Jan-2024").as_deref(), Some("2024-01-15"));
        assert_eq!(d("no date here 12/45/2020"), None);
        assert_eq!(d("14-FEB-1948 (Age 76)").as_deref(), Some("1948-02-14"));
        assert_eq!(d("31 MAR 1953").as_deref(), Some("1953-03-31"));
        assert_eq!(d("25/12/2023").as_deref(), Some("2023-12-25"));
        assert_eq!(d("05.03.2024").as_deref(), Some("2024-03-05"));
        assert_eq!(d("5th March 2024").as_deref(), Some("2024-03-05"));
        assert_eq!(d("March 5th, 2024").as_deref(), Some("2024-03-05"));
        assert_eq!(d("05-Mar-24").as_deref(), Some("2024-03-05"));
    }

    #[test]
    fn names_in_both_orders_without_credentials() {
        let p = parse_person("PRESCOTT, CAROL M").expect("name");
        assert_eq!(
            (p.family.as_str(), p.given.clone()),
            ("Prescott", vec!["Carol".to_string(), "M".into()])
        );
        let p = parse_person("Rosa Castellanos, MD").expect("name");
        assert_eq!(
            (p.family.as_str(), p.given.clone()),
            ("Castellanos", vec!["Rosa".to_string()])
        );
        let p = parse_person("WHITFIELD, ANIKA PA-C").expect("name");
        assert_eq!(
            (p.family.as_str(), p.given.clone(), p.credential.as_deref()),
            ("Whitfield", vec!["Anika".to_string()], Some("PA-C"))
        );
        let p = parse_person("Dr. Kieran Mahoney").expect("name");
        assert_eq!(
            (p.family.as_str(), p.given.clone()),
            ("Mahoney", vec!["Kieran".to_string()])
        );
        let p = parse_person("Janet L. Calloway").expect("name");
        assert_eq!(
            (p.family.as_str(), p.given.clone()),
            ("Calloway", vec!["Janet".to_string(), "L".into()])
        );
        assert_eq!(parse_number("1,245"), Some(1245.0));
        assert_eq!(parse_number("5.2"), Some(5.2));
        assert_eq!(parse_number("mg"), None);
        assert_eq!(parse_number("1S"), Some(15.0));
        assert_eq!(parse_number("Sl"), None);
        assert_eq!(parse_number("B12"), None);
    }
}
