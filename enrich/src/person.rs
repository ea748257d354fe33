//! A person as a feed describes them, and the normalisation every comparison starts from.

use chrono::NaiveDate;
use unicode_normalization::UnicodeNormalization;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Sex {
    Male,
    Female,
}

impl Sex {
    /// `M`/`F`/`male`/`female`; anything else (`U`, `unknown`, empty) is "not given".
    pub fn parse(raw: &str) -> Option<Sex> {
        match raw.trim().to_ascii_lowercase().as_str() {
            "m" | "male" => Some(Sex::Male),
            "f" | "female" => Some(Sex::Female),
            _ => None,
        }
    }
}

/// Demographics of one person-record, as given (not yet normalised). Empty means not given.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Person {
    pub first: Option<String>,
    pub middle: Option<String>,
    pub last: Option<String>,
    pub suffix: Option<String>,
    /// Other family names the record gives (a maiden name, a former name).
    pub other_last: Vec<String>,
    pub birth: Option<NaiveDate>,
    pub sex: Option<Sex>,
    pub street: Option<String>,
    pub city: Option<String>,
    pub zip: Option<String>,
    pub phone: Option<String>,
    pub email: Option<String>,
}

/// `Some(trimmed)` unless empty.
pub fn given(raw: &str) -> Option<String> {
    let t = raw.trim();
    (!t.is_empty()).then(|| t.to_string())
}

/// Lower case, diacritics removed, only letters kept (`O'Brien` → `obrien`, `José` → `jose`).
pub fn fold_name(raw: &str) -> String {
    raw.nfd()
        .filter(|c| c.is_alphabetic())
        .flat_map(char::to_lowercase)
        .filter(char::is_ascii_lowercase)
        .collect()
}

/// The parts of a family name (`García-López` → `garcia`, `lopez`; `de la Cruz` → `delacruz`
/// as a whole plus its parts).
pub fn name_parts(raw: &str) -> Vec<String> {
    raw.split(['-', ' '])
        .map(fold_name)
        .filter(|p| p.len() > 1)
        .collect()
}

/// A generation suffix in one spelling: `JR.` → `jr`, `III` → `iii`, `2nd` → `ii`.
pub fn fold_suffix(raw: &str) -> Option<String> {
    let s: String = raw
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect::<String>()
        .to_ascii_lowercase();
    let s = match s.as_str() {
        "" => return None,
        "junior" => "jr",
        "senior" => "sr",
        "2nd" | "2" => "ii",
        "3rd" | "3" => "iii",
        "4th" | "4" => "iv",
        other => other,
    };
    Some(s.to_string())
}

/// Ten digits of a North American number (a leading country code 1 dropped), else none.
pub fn fold_phone(raw: &str) -> Option<String> {
    let digits: String = raw.chars().filter(char::is_ascii_digit).collect();
    let d = match digits.len() {
        11 if digits.starts_with('1') => &digits[1..],
        10 => &digits[..],
        _ => return None,
    };
    Some(d.to_string())
}

/// The first five digits of a ZIP code.
pub fn fold_zip(raw: &str) -> Option<String> {
    let digits: String = raw.chars().filter(char::is_ascii_digit).take(5).collect();
    (digits.len() == 5).then_some(digits)
}

pub fn fold_email(raw: &str) -> Option<String> {
    let t = raw.trim().to_ascii_lowercase();
    (t.contains('@') && t.len() > 3).then_some(t)
}

/// Street line in one spelling: lower case, punctuation dropped, USPS suffix and unit
/// abbreviations (`Street` → `st`, `Apartment` → `apt`), directions (`North` → `n`).
pub fn fold_street(raw: &str) -> Option<String> {
    let cleaned: String = raw
        .nfd()
        .filter(|c| c.is_alphanumeric() || c.is_whitespace() || *c == '#')
        .flat_map(char::to_lowercase)
        .collect();
    let words: Vec<&str> = cleaned
        .split_whitespace()
        .map(|w| match w {
            "street" => "st",
            "avenue" | "ave" | "av" => "ave",
            "road" => "rd",
            "drive" => "dr",
            "lane" => "ln",
            "place" => "pl",
            "court" => "ct",
            "boulevard" => "blvd",
            "circle" => "cir",
            "terrace" => "ter",
            "parkway" => "pkwy",
            "highway" => "hwy",
            "square" => "sq",
            "trail" => "trl",
            "way" => "way",
            "apartment" | "#" | "unit" | "suite" | "ste" => "apt",
            "north" => "n",
            "south" => "s",
            "east" => "e",
            "west" => "w",
            other => other,
        })
        .collect();
    (!words.is_empty()).then(|| words.join(" "))
}

/// An ISO date `YYYY-MM-DD`, or HL7's `YYYYMMDD[...]`; the day of a date-time.
pub fn parse_day(raw: &str) -> Option<NaiveDate> {
    let t = raw.trim();
    if t.len() >= 10 && t.as_bytes().get(4) == Some(&b'-') {
        return NaiveDate::parse_from_str(t.get(..10)?, "%Y-%m-%d").ok();
    }
    if t.len() >= 8 && t.as_bytes()[..8].iter().all(u8::is_ascii_digit) {
        return NaiveDate::parse_from_str(t.get(..8)?, "%Y%m%d").ok();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fold_to_letters() {
        assert_eq!(fold_name("José"), "jose");
        assert_eq!(fold_name("O'Brien"), "obrien");
        assert_eq!(fold_name("  MÜLLER "), "muller");
        assert_eq!(name_parts("García-López"), ["garcia", "lopez"]);
    }

    #[test]
    fn contact_fields_fold() {
        assert_eq!(fold_phone("(614) 555-0196").as_deref(), Some("6145550196"));
        assert_eq!(fold_phone("+1 614 555 0196").as_deref(), Some("6145550196"));
        assert_eq!(fold_phone("555-0196"), None);
        assert_eq!(fold_zip("45011-1234").as_deref(), Some("45011"));
        assert_eq!(
            fold_street("1926 Meadowlark Place").as_deref(),
            Some("1926 meadowlark pl")
        );
        assert_eq!(
            fold_street("1926 MEADOWLARK PL"),
            fold_street("1926 Meadowlark Place")
        );
        assert_eq!(fold_suffix("Jr.").as_deref(), Some("jr"));
        assert_eq!(fold_suffix(""), None);
    }

    #[test]
    fn days_parse_in_both_notations() {
        let d = NaiveDate::from_ymd_opt(2024, 3, 4);
        assert_eq!(parse_day("2024-03-04"), d);
        assert_eq!(parse_day("2024-03-04T14:05:00-05:00"), d);
        assert_eq!(parse_day("20240304140500-0500"), d);
        assert_eq!(parse_day("2024-13-04"), None);
        assert_eq!(parse_day("x"), None);
    }
}
