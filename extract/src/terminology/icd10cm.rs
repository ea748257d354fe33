//! ICD-10-CM: the full CMS code set (`data/icd10cm.tsv.gz`, ~98,000 codes, ~74,700 of them
//! billable, 7th-character codes included, with descriptions and inclusion terms) plus curated
//! clinical phrasings (`data/icd10cm-synonyms.tsv`).

use super::fold;
use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::sync::OnceLock;

const CODES_GZ: &[u8] = include_bytes!("../../data/icd10cm.tsv.gz");
const SYNONYMS: &str = include_str!("../../data/icd10cm-synonyms.tsv");

pub struct Icd10Cm {
    /// Code without dot, upper case → index in `entries`.
    index: HashMap<String, u32>,
    /// (code with dot, description, billable), in the tabular list's order.
    entries: Vec<(String, String, bool)>,
    /// Folded description / inclusion term / phrasing → index in `entries`.
    phrases: HashMap<String, u32>,
    /// Word → its index in `postings`. Words are interned so that the ~110,000 phrases cost a
    /// few integers each rather than a string per word.
    words: HashMap<String, u32>,
    /// Per word: the phrases (indices in `phrase_list`) containing it.
    postings: Vec<Vec<u32>>,
    /// Per phrase: (number of distinct words, index in `entries`).
    phrase_list: Vec<(u32, u32)>,
}

/// A description matched to a code.
#[derive(Debug, Clone, PartialEq)]
pub struct DescriptionMatch {
    pub code: String,
    pub display: String,
    /// 1.0 for an exact match of a description, term or phrasing.
    pub score: f64,
}

pub fn table() -> &'static Icd10Cm {
    static TABLE: OnceLock<Icd10Cm> = OnceLock::new();
    TABLE.get_or_init(load)
}

fn key(code: &str) -> String {
    code.chars()
        .filter(|c| *c != '.')
        .flat_map(char::to_uppercase)
        .collect()
}

fn load() -> Icd10Cm {
    let mut text = String::new();
    // The data is compiled in; a failure here would be a broken build, caught by the tests.
    let _ = flate2::read::GzDecoder::new(CODES_GZ).read_to_string(&mut text);
    let mut index = HashMap::new();
    let mut entries = Vec::new();
    let mut phrases = HashMap::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let cols: Vec<&str> = line.split('\t').collect();
        let [code, billable, desc, terms] = cols[..] else {
            continue;
        };
        let e = entries.len() as u32;
        // Rows come parent first, so a phrase shared with a 7th-character code stays the
        // parent's (the shorter description).
        phrases.entry(fold(desc)).or_insert(e);
        for t in terms.split('|').filter(|t| !t.is_empty()) {
            // "Asthma NOS" is how the index says "asthma, not otherwise specified".
            let t = t.trim_end_matches(" NOS");
            phrases.entry(fold(t)).or_insert(e);
        }
        index.insert(key(code), e);
        entries.push((code.to_string(), desc.to_string(), billable == "1"));
    }
    for line in SYNONYMS.lines().filter(|l| !l.starts_with('#')) {
        if let Some((phrase, code)) = line.split_once('\t')
            && let Some(&e) = index.get(&key(code))
        {
            // Curated phrasings win over inclusion terms.
            phrases.insert(fold(phrase), e);
        }
    }
    let mut words: HashMap<String, u32> = HashMap::new();
    let mut postings: Vec<Vec<u32>> = Vec::new();
    let mut phrase_list = Vec::with_capacity(phrases.len());
    for (p, &e) in &phrases {
        let mut ids: Vec<u32> = p
            .split(' ')
            .filter(|w| !w.is_empty())
            .map(|w| {
                *words.entry(w.to_string()).or_insert_with(|| {
                    postings.push(Vec::new());
                    postings.len() as u32 - 1
                })
            })
            .collect();
        ids.sort_unstable();
        ids.dedup();
        let idx = phrase_list.len() as u32;
        for &w in &ids {
            postings[w as usize].push(idx);
        }
        phrase_list.push((ids.len() as u32, e));
    }
    Icd10Cm {
        index,
        entries,
        phrases,
        words,
        postings,
        phrase_list,
    }
}

/// The digit OCR may have made into a letter.
fn as_digit(c: char) -> Option<char> {
    match c {
        'O' | 'D' => Some('0'),
        'I' | 'L' | '|' => Some('1'),
        'S' => Some('5'),
        'B' => Some('8'),
        'Z' => Some('2'),
        _ => None,
    }
}

/// The letter OCR may have made into a digit, in the 7th place (encounter A/D/S, fracture
/// types B–R).
fn as_letter(c: char) -> Option<char> {
    match c {
        '0' => Some('D'),
        '5' => Some('S'),
        '8' => Some('B'),
        _ => None,
    }
}

impl Icd10Cm {
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Every code: (code with dot, description, billable), in the tabular list's order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str, bool)> {
        self.entries
            .iter()
            .map(|(c, d, b)| (c.as_str(), d.as_str(), *b))
    }

    fn entry(&self, e: u32) -> Option<(&str, &str, bool)> {
        self.entries
            .get(e as usize)
            .map(|(c, d, b)| (c.as_str(), d.as_str(), *b))
    }

    /// The code with its dot and its description, if `code` is in the code set.
    pub fn get(&self, code: &str) -> Option<(&str, &str, bool)> {
        self.index.get(&key(code)).and_then(|&e| self.entry(e))
    }

    /// A printed code, repaired for OCR slips (`I1O` → `I10`, `E1l.9` → `E11.9`,
    /// `S72.OO1A` → `S72.001A`): of the repairs that are real codes, a billable one first, then
    /// the one changing fewest characters.
    pub fn resolve_printed(&self, printed: &str) -> Option<(&str, &str, bool)> {
        if let Some(hit) = self.get(printed) {
            return Some(hit);
        }
        let mut chars: Vec<char> = key(printed).chars().collect();
        if chars.len() < 3 || chars.len() > 7 {
            return None;
        }
        // The first character is a letter; the second and third are digits but for a few
        // categories (C7A, M1A, Z3A); later ones are either.
        chars[0] = match chars[0] {
            '0' => 'O',
            '1' => 'I',
            '5' => 'S',
            '8' => 'B',
            c => c,
        };
        // Each character with its possible repair: at most two choices each, so at most 64
        // candidates.
        let choices: Vec<(char, Option<char>)> = chars
            .iter()
            .enumerate()
            .map(|(i, &c)| match i {
                0 => (c, None),
                6 => (c, as_digit(c).or_else(|| as_letter(c))),
                _ => (c, as_digit(c)),
            })
            .collect();
        // ((not billable, characters changed), entry): the least wins.
        let mut best: Option<((bool, u32), u32)> = None;
        for mask in 0u32..(1 << choices.len()) {
            let mut code = String::with_capacity(choices.len());
            let mut changed = 0;
            let mut possible = true;
            for (i, &(c, repair)) in choices.iter().enumerate() {
                match ((mask >> i) & 1 == 1, repair) {
                    (false, _) => code.push(c),
                    (true, Some(r)) => {
                        code.push(r);
                        changed += 1;
                    }
                    (true, None) => possible = false,
                }
            }
            if !possible {
                continue;
            }
            if let Some(&e) = self.index.get(&code) {
                let billable = self.entries.get(e as usize).is_some_and(|c| c.2);
                let rank = (!billable, changed);
                if best.is_none_or(|(r, _)| rank < r) {
                    best = Some((rank, e));
                }
            }
        }
        best.and_then(|(_, e)| self.entry(e))
    }

    /// Maps a diagnosis as written to a code: exact description, inclusion term or phrasing
    /// first; else the phrase sharing most words (Dice over word sets ≥ `min`), billable codes
    /// preferred on ties, then the code first in the tabular list (so the answer never depends
    /// on hash order).
    pub fn match_description(&self, text: &str, min: f64) -> Option<DescriptionMatch> {
        let folded = fold(text);
        if folded.is_empty() {
            return None;
        }
        let hit = |e: u32, score: f64| {
            self.entry(e).map(|(c, d, _)| DescriptionMatch {
                code: c.to_string(),
                display: d.to_string(),
                score,
            })
        };
        if let Some(&e) = self.phrases.get(&folded) {
            return hit(e, 1.0);
        }
        let query: HashSet<&str> = folded.split(' ').filter(|w| !w.is_empty()).collect();
        // Words in common per phrase, counted through the postings: a common word ("of") is in
        // tens of thousands of phrases, so no per-phrase set is built.
        let mut common = vec![0u32; self.phrase_list.len()];
        let mut touched = Vec::new();
        for w in &query {
            let Some(&id) = self.words.get(*w) else {
                continue;
            };
            for &p in self
                .postings
                .get(id as usize)
                .map(Vec::as_slice)
                .unwrap_or_default()
            {
                let n = &mut common[p as usize];
                if *n == 0 {
                    touched.push(p);
                }
                *n += 1;
            }
        }
        let mut best: Option<(f64, bool, u32)> = None;
        for p in touched {
            let (len, e) = self.phrase_list[p as usize];
            let dice = 2.0 * common[p as usize] as f64 / (query.len() as u32 + len) as f64;
            let billable = self.entries.get(e as usize).is_some_and(|c| c.2);
            let better = match best {
                None => true,
                Some((s, b, be)) => {
                    let tie = (dice - s).abs() < 1e-9;
                    dice > s + 1e-9 || (tie && ((billable && !b) || (billable == b && e < be)))
                }
            };
            if better {
                best = Some((dice, billable, e));
            }
        }
        let (score, _, e) = best?;
        (score >= min).then(|| hit(e, score)).flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_descriptions_and_phrasings() {
        let t = table();
        assert!(t.len() > 40_000, "{}", t.len());
        assert_eq!(t.get("e119").map(|c| c.0), Some("E11.9"));
        assert_eq!(t.resolve_printed("I1O").map(|c| c.0), Some("I10"));
        assert_eq!(t.resolve_printed("N18.3l").map(|c| c.0), Some("N18.31"));
        let m = |s| t.match_description(s, 0.8).map(|m| m.code);
        assert_eq!(
            m("Essential (primary) hypertension").as_deref(),
            Some("I10")
        );
        assert_eq!(m("Hypertension").as_deref(), Some("I10"));
        assert_eq!(
            m("Type 2 diabetes mellitus without complications").as_deref(),
            Some("E11.9")
        );
        assert_eq!(
            m("Gastro-esophageal reflux disease without esophagitis").as_deref(),
            Some("K21.9")
        );
        assert_eq!(
            m("Acute pancreatitis without necrosis or infection, unspecified").as_deref(),
            Some("K85.90")
        );
        assert_eq!(m("Kestrel Avenue"), None);
    }
}
