//! Drug names → RxNorm ingredients (`data/rxnorm.tsv`).

use super::{fold, similarity};
use std::collections::HashMap;
use std::sync::OnceLock;

const DATA: &str = include_str!("../../data/rxnorm.tsv");

#[derive(Debug)]
pub struct Drug {
    /// RxCUI of the ingredient; `None` when the table names the drug without a verified code.
    pub rxcui: Option<&'static str>,
    pub ingredient: &'static str,
}

pub struct DrugTable {
    drugs: Vec<Drug>,
    names: HashMap<String, usize>,
    /// Longest name in words, to bound the phrase search.
    max_words: usize,
}

pub fn table() -> &'static DrugTable {
    static TABLE: OnceLock<DrugTable> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut drugs = Vec::new();
        let mut names = HashMap::new();
        let mut max_words = 1;
        for line in DATA
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        {
            let cols: Vec<&'static str> = line.split('\t').collect();
            let [rxcui, ingredient, others] = cols[..] else {
                continue;
            };
            let idx = drugs.len();
            drugs.push(Drug {
                rxcui: (!rxcui.is_empty()).then_some(rxcui),
                ingredient,
            });
            for name in std::iter::once(ingredient).chain(others.split('|')) {
                let key = fold(name);
                max_words = max_words.max(key.split(' ').count());
                names.entry(key).or_insert(idx);
            }
        }
        DrugTable {
            drugs,
            names,
            max_words,
        }
    })
}

impl DrugTable {
    /// Finds a drug at the start of `words` (longest name first), allowing OCR slips in names of
    /// six letters or more. Returns the drug, how many words it took, and the match score.
    pub fn lookup_prefix(&self, words: &[&str]) -> Option<(&Drug, usize, f64)> {
        for n in (1..=self.max_words.min(words.len())).rev() {
            let key = fold(&words[..n].join(" "));
            if let Some(&i) = self.names.get(&key) {
                return Some((&self.drugs[i], n, 1.0));
            }
        }
        let first = fold(words.first()?);
        if first.len() < 6 {
            return None;
        }
        let (i, score) = self
            .names
            .iter()
            .filter(|(k, _)| !k.contains(' ') && k.len() >= 6)
            .map(|(k, &i)| (i, similarity(&first, k)))
            .max_by(|a, b| a.1.total_cmp(&b.1))?;
        (score >= 0.85).then(|| (&self.drugs[i], 1, score))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generics_brands_and_slips() {
        let t = table();
        let (d, n, _) = t
            .lookup_prefix(&["metoprolol", "succinate", "ER", "50", "mg"])
            .expect("metoprolol");
        assert_eq!((d.ingredient, d.rxcui, n), ("metoprolol", Some("6918"), 3));
        assert_eq!(
            t.lookup_prefix(&["Lipitor", "20", "mg"])
                .expect("brand")
                .0
                .ingredient,
            "atorvastatin"
        );
        assert_eq!(
            t.lookup_prefix(&["atorvastatln", "20"])
                .expect("slip")
                .0
                .ingredient,
            "atorvastatin"
        );
        assert_eq!(
            t.lookup_prefix(&["insulin", "glargine", "pen"])
                .expect("two words")
                .0
                .ingredient,
            "insulin glargine"
        );
        assert!(t.lookup_prefix(&["Take", "1", "tablet"]).is_none());
    }
}
