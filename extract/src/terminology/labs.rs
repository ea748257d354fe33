//! Lab analytes → LOINC (`data/labs.tsv`).

use super::{fold, similarity};
use std::collections::HashMap;
use std::sync::OnceLock;

const DATA: &str = include_str!("../../data/labs.tsv");

#[derive(Debug)]
pub struct LabCode {
    pub loinc: &'static str,
    pub analyte: &'static str,
    pub display: &'static str,
    /// UCUM units this code is reported in; the first is canonical.
    pub units: Vec<&'static str>,
}

pub struct LabTable {
    codes: Vec<LabCode>,
    /// Folded name → indexes into `codes` (an analyte name may map to several codes).
    names: HashMap<String, Vec<usize>>,
}

/// The best match of a printed name.
#[derive(Debug)]
pub struct NameMatch<'a> {
    pub candidates: Vec<&'a LabCode>,
    /// 1.0 for an exact (folded) match.
    pub score: f64,
}

pub fn table() -> &'static LabTable {
    static TABLE: OnceLock<LabTable> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut codes = Vec::new();
        let mut names: HashMap<String, Vec<usize>> = HashMap::new();
        for line in DATA
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        {
            let cols: Vec<&'static str> = line.split('\t').collect();
            let [loinc, analyte, display, units, synonyms] = cols[..] else {
                continue;
            };
            let idx = codes.len();
            codes.push(LabCode {
                loinc,
                analyte,
                display,
                units: units.split(',').collect(),
            });
            for name in synonyms.split('|') {
                let entry = names.entry(fold(name)).or_default();
                if !entry.contains(&idx) {
                    entry.push(idx);
                }
            }
        }
        LabTable { codes, names }
    })
}

impl LabTable {
    pub fn len(&self) -> usize {
        self.codes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.codes.is_empty()
    }

    pub fn by_loinc(&self, loinc: &str) -> Option<&LabCode> {
        self.codes.iter().find(|c| c.loinc == loinc)
    }

    /// Matches a printed test name: exact after folding, else the closest name at ≥ `min`
    /// similarity (OCR slips: `Creatinlne`, `HbAl1c`).
    pub fn lookup(&self, printed: &str, min: f64) -> Option<NameMatch<'_>> {
        let key = fold(printed);
        if key.is_empty() {
            return None;
        }
        if let Some(idx) = self.names.get(&key) {
            return Some(NameMatch {
                candidates: idx.iter().map(|&i| &self.codes[i]).collect(),
                score: 1.0,
            });
        }
        // Short names (`K`, `Na`, `LD`) must match exactly: one slip turns them into another.
        // The one slip let through is Tesseract's most common on small type, `c` read as `e`
        // (`Het` for `Hct`), and only when the name as printed is no known name itself.
        if key.len() < 5 {
            let recovered = key.replace('e', "c");
            return (recovered != key)
                .then(|| self.names.get(&recovered))
                .flatten()
                .map(|idx| NameMatch {
                    candidates: idx.iter().map(|&i| &self.codes[i]).collect(),
                    score: 0.9,
                });
        }
        let (best, score) = self
            .names
            .iter()
            .filter(|(name, _)| name.len() >= 5)
            .map(|(name, idx)| (idx, similarity(&key, name)))
            .max_by(|a, b| a.1.total_cmp(&b.1))?;
        (score >= min).then(|| NameMatch {
            candidates: best.iter().map(|&i| &self.codes[i]).collect(),
            score,
        })
    }
}

impl NameMatch<'_> {
    /// The code for a result reported in `ucum` (the code depends on the unit's kind of
    /// quantity), else the first candidate.
    pub fn code_for_unit(&self, ucum: Option<&str>) -> &LabCode {
        ucum.and_then(|u| self.candidates.iter().find(|c| c.units.contains(&u)))
            .or_else(|| self.candidates.first())
            .copied()
            .unwrap_or_else(|| unreachable_empty())
    }
}

fn unreachable_empty() -> &'static LabCode {
    // A NameMatch is built only from non-empty index lists.
    static NONE: OnceLock<LabCode> = OnceLock::new();
    NONE.get_or_init(|| LabCode {
        loinc: "",
        analyte: "",
        display: "",
        units: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_synonyms_and_slips_find_their_codes() {
        let t = table();
        assert!(t.len() > 100);
        let m = t.lookup("Glucose, Fasting", 0.85).expect("glucose");
        assert_eq!(m.code_for_unit(Some("mg/dL")).loinc, "2345-7");
        assert_eq!(m.code_for_unit(Some("mmol/L")).loinc, "14749-6");
        assert_eq!(
            t.lookup("HbAlc", 0.85).expect("a1c").candidates[0].loinc,
            "4548-4"
        );
        assert_eq!(
            t.lookup("Creatinlne", 0.85).expect("creat").candidates[0].loinc,
            "2160-0"
        );
        assert!(t.lookup("Kestrel Avenue", 0.85).is_none());
        // A short name read with `e` for `c` is found; other short slips are not.
        assert_eq!(
            t.lookup("Het", 0.85).expect("hct").candidates[0].loinc,
            "4544-3"
        );
        assert!(t.lookup("Hex", 0.85).is_none());
        // Every LOINC code has its check digit right (mod 10 algorithm).
        for c in &t.codes {
            assert!(loinc_check_digit_ok(c.loinc), "{}", c.loinc);
        }
    }

    fn loinc_check_digit_ok(code: &str) -> bool {
        let Some((body, check)) = code.split_once('-') else {
            return false;
        };
        let digits: Vec<u32> = body.chars().filter_map(|c| c.to_digit(10)).collect();
        let mut sum = 0;
        for (i, d) in digits.iter().rev().enumerate() {
            let v = if i % 2 == 0 { d * 2 } else { *d };
            sum += v / 10 + v % 10;
        }
        check.parse::<u32>().ok() == Some((10 - sum % 10) % 10)
    }
}
