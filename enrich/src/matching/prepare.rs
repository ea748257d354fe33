//! A person in the form comparisons use: folded names with their nickname groups and phonetic
//! codes, a generation suffix pulled out of the name fields, contact fields in one spelling.

use crate::person::{
    Person, Sex, fold_email, fold_name, fold_phone, fold_street, fold_suffix, fold_zip, name_parts,
};
use chrono::{Datelike, NaiveDate};
use rphonetic::{DoubleMetaphone, Encoder};
use std::collections::HashMap;
use std::sync::OnceLock;

#[derive(Clone, Debug, Default)]
pub struct Prepared {
    pub first: String,
    pub first_groups: Vec<u16>,
    pub first_code: String,
    pub middle: String,
    pub last: String,
    /// Parts of a compound family name and other family names (maiden, former).
    pub last_alts: Vec<String>,
    pub last_code: String,
    pub suffix: Option<String>,
    pub birth: Option<NaiveDate>,
    pub sex: Option<Sex>,
    pub street: Option<String>,
    /// The house number of the street line.
    pub house: Option<String>,
    pub zip: Option<String>,
    pub phone: Option<String>,
    pub email: Option<String>,
}

const SUFFIXES: &[&str] = &["jr", "sr", "ii", "iii", "iv", "v"];

/// Nickname groups: `bob` and `robert` share one.
fn nicknames() -> &'static HashMap<String, Vec<u16>> {
    static T: OnceLock<HashMap<String, Vec<u16>>> = OnceLock::new();
    T.get_or_init(|| {
        let mut m: HashMap<String, Vec<u16>> = HashMap::new();
        let lines = include_str!("../../data/nicknames.tsv")
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty());
        for (g, line) in lines.enumerate() {
            for name in line.split('\t') {
                let g = u16::try_from(g).unwrap_or(u16::MAX);
                m.entry(fold_name(name)).or_default().push(g);
            }
        }
        m
    })
}

pub fn phonetic(s: &str) -> String {
    if s.is_empty() {
        return String::new();
    }
    DoubleMetaphone::default().encode(s)
}

impl Prepared {
    pub fn new(p: &Person) -> Prepared {
        let mut first_tokens: Vec<String> = p
            .first
            .as_deref()
            .unwrap_or_default()
            .split([' ', '.'])
            .map(fold_name)
            .filter(|t| !t.is_empty())
            .collect();
        let mut middle = p.middle.as_deref().map(fold_name).unwrap_or_default();
        // `GEORGE W` in a first-name field: the second token is the middle name.
        if first_tokens.len() > 1 && middle.is_empty() {
            middle = first_tokens.remove(1);
        }
        let first = first_tokens.into_iter().next().unwrap_or_default();
        let mut suffix = p.suffix.as_deref().and_then(fold_suffix);
        // `BENNETT JR` in a family-name field: the last token is the suffix.
        let raw_last = p.last.as_deref().unwrap_or_default();
        let mut last_words: Vec<&str> = raw_last
            .split([' ', ','])
            .filter(|w| !w.is_empty())
            .collect();
        if last_words.len() > 1
            && let Some(s) = last_words.last().and_then(|w| fold_suffix(w))
            && SUFFIXES.contains(&s.as_str())
        {
            last_words.pop();
            suffix.get_or_insert(s);
        }
        let last_joined = last_words.join(" ");
        let last = fold_name(&last_joined);
        let mut last_alts = name_parts(&last_joined);
        if last_alts.len() < 2 {
            last_alts.clear();
        }
        for o in &p.other_last {
            let f = fold_name(o);
            if !f.is_empty() && f != last {
                last_alts.push(f);
            }
            last_alts.extend(name_parts(o).into_iter().filter(|x| x != &last));
        }
        let street = p.street.as_deref().and_then(fold_street);
        let house = street
            .as_deref()
            .and_then(|s| s.split(' ').next())
            .filter(|h| h.bytes().any(|b| b.is_ascii_digit()))
            .map(str::to_string);
        let groups = nicknames().get(&first).cloned().unwrap_or_default();
        Prepared {
            first_code: phonetic(&first),
            first_groups: groups,
            first,
            middle,
            last_code: phonetic(&last),
            last,
            last_alts,
            suffix,
            birth: p.birth,
            sex: p.sex,
            street,
            house,
            zip: p.zip.as_deref().and_then(fold_zip),
            phone: p.phone.as_deref().and_then(fold_phone),
            email: p.email.as_deref().and_then(fold_email),
        }
    }

    /// The birth date with day and month swapped, when that is a date and differs.
    pub fn birth_swapped(&self) -> Option<NaiveDate> {
        let b = self.birth?;
        if b.day() == b.month() || b.day() > 12 {
            return None;
        }
        NaiveDate::from_ymd_opt(b.year(), b.day(), b.month())
    }

    /// The blocking keys this person is found under. A pair is compared when the two share
    /// at least one key; the keys are chosen so that any one field may be wrong or missing.
    pub fn blocking_keys(&self, query: bool) -> Vec<String> {
        let mut k = Vec::with_capacity(8);
        let initial = self.first.chars().next();
        if let Some(b) = self.birth {
            k.push(format!("d:{b}"));
            if query && let Some(s) = self.birth_swapped() {
                k.push(format!("d:{s}"));
            }
            if !self.last_code.is_empty() {
                k.push(format!("ly:{}:{}", self.last_code, b.year()));
            }
            if !self.first.is_empty() {
                k.push(format!("fmd:{}:{}-{}", self.first, b.month(), b.day()));
            }
        }
        if let Some(i) = initial
            && !self.last_code.is_empty()
        {
            k.push(format!("il:{i}:{}", self.last_code));
            for alt in &self.last_alts {
                k.push(format!("il:{i}:{}", phonetic(alt)));
            }
        }
        if let Some(p) = &self.phone {
            k.push(format!("p:{p}"));
        }
        if let Some(e) = &self.email {
            k.push(format!("e:{e}"));
        }
        if let (Some(z), Some(h)) = (&self.zip, &self.house) {
            k.push(format!("a:{z}:{h}"));
        }
        k
    }
}
