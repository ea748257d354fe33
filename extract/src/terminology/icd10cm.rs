//! ICD-10-CM: the full CMS code set (`data/icd10cm.tsv.gz`, ~47,000 codes with descriptions and
//! inclusion terms) plus curated clinical phrasings (`data/icd10cm-synonyms.tsv`).

use super::fold;
use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::sync::OnceLock;

const CODES_GZ: &[u8] = include_bytes!("../../data/icd10cm.tsv.gz");
const SYNONYMS: &str = include_str!("../../data/icd10cm-synonyms.tsv");

pub struct Icd10Cm {
    /// Code without dot, upper case → (code with dot, description, billable).
    codes: HashMap<String, (String, String, bool)>,
    /// Folded description / inclusion term / phrasing → code without dot.
    phrases: HashMap<String, String>,
    /// Word → phrases containing it, for fuzzy matching.
    words: HashMap<String, Vec<usize>>,
    phrase_list: Vec<(Vec<String>, String)>,
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
    let mut codes = HashMap::new();
    let mut phrases = HashMap::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let cols: Vec<&str> = line.split('\t').collect();
        let [code, billable, desc, terms] = cols[..] else {
            continue;
        };
        let k = key(code);
        phrases.entry(fold(desc)).or_insert_with(|| k.clone());
        for t in terms.split('|').filter(|t| !t.is_empty()) {
            // "Asthma NOS" is how the index says "asthma, not otherwise specified".
            let t = t.trim_end_matches(" NOS");
            phrases.entry(fold(t)).or_insert_with(|| k.clone());
        }
        codes.insert(k, (code.to_string(), desc.to_string(), billable == "1"));
    }
    for line in SYNONYMS.lines().filter(|l| !l.starts_with('#')) {
        if let Some((phrase, code)) = line.split_once('\t') {
            // Curated phrasings win over inclusion terms.
            phrases.insert(fold(phrase), key(code));
        }
    }
    let mut phrase_list = Vec::with_capacity(phrases.len());
    let mut words: HashMap<String, Vec<usize>> = HashMap::new();
    for (p, code) in &phrases {
        let toks: Vec<String> = p.split(' ').map(str::to_string).collect();
        let idx = phrase_list.len();
        for t in toks.iter().collect::<HashSet<_>>() {
            words.entry(t.clone()).or_default().push(idx);
        }
        phrase_list.push((toks, code.clone()));
    }
    Icd10Cm {
        codes,
        phrases,
        words,
        phrase_list,
    }
}

impl Icd10Cm {
    pub fn len(&self) -> usize {
        self.codes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.codes.is_empty()
    }

    /// The code with its dot and its description, if `code` is in the code set.
    pub fn get(&self, code: &str) -> Option<(&str, &str, bool)> {
        self.codes
            .get(&key(code))
            .map(|(c, d, b)| (c.as_str(), d.as_str(), *b))
    }

    /// A printed code, repaired for OCR slips (`I1O` → `I10`, `E1l.9` → `E11.9`) when exactly one
    /// repair is a real code.
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
        let as_digit = |c: char| match c {
            'O' | 'D' => Some('0'),
            'I' | 'L' | '|' => Some('1'),
            'S' => Some('5'),
            'B' => Some('8'),
            'Z' => Some('2'),
            _ => None,
        };
        let mut variants: Vec<Vec<char>> = vec![chars.clone()];
        let all: Vec<char> = chars
            .iter()
            .enumerate()
            .map(|(i, &c)| if i > 0 { as_digit(c).unwrap_or(c) } else { c })
            .collect();
        variants.push(all);
        for i in 1..chars.len() {
            if let Some(d) = as_digit(chars[i]) {
                let mut v = chars.clone();
                v[i] = d;
                variants.push(v);
            }
        }
        variants
            .iter()
            .find_map(|v| self.get(&v.iter().collect::<String>()))
    }

    /// Maps a diagnosis as written to a code: exact description, inclusion term or phrasing
    /// first; else the phrase sharing most words (Dice over word sets ≥ `min`), billable codes
    /// preferred on ties.
    pub fn match_description(&self, text: &str, min: f64) -> Option<DescriptionMatch> {
        let folded = fold(text);
        if folded.is_empty() {
            return None;
        }
        let hit = |code: &str, score: f64| {
            self.codes.get(code).map(|(c, d, _)| DescriptionMatch {
                code: c.clone(),
                display: d.clone(),
                score,
            })
        };
        if let Some(code) = self.phrases.get(&folded) {
            return hit(code, 1.0);
        }
        let query: HashSet<&str> = folded.split(' ').collect();
        let mut seen = HashSet::new();
        let mut best: Option<(f64, bool, usize)> = None;
        for w in &query {
            for &i in self.words.get(*w).map(Vec::as_slice).unwrap_or_default() {
                if !seen.insert(i) {
                    continue;
                }
                let (toks, code) = &self.phrase_list[i];
                let set: HashSet<&str> = toks.iter().map(String::as_str).collect();
                let common = query.intersection(&set).count() as f64;
                let dice = 2.0 * common / (query.len() + set.len()) as f64;
                let billable = self.codes.get(code).is_some_and(|c| c.2);
                let better = match best {
                    None => true,
                    Some((s, b, _)) => {
                        dice > s + 1e-9 || ((dice - s).abs() < 1e-9 && billable && !b)
                    }
                };
                if better {
                    best = Some((dice, billable, i));
                }
            }
        }
        let (score, _, i) = best?;
        (score >= min)
            .then(|| hit(&self.phrase_list[i].1, score))
            .flatten()
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
