//! Terminology tables shipped with the code (`extract/data/`): lab analytes → LOINC, printed units
//! → UCUM, ICD-10-CM (the full CMS code set), and common drugs → RxNorm ingredients. Loaded once,
//! on first use.

pub mod icd10cm;
pub mod labs;
pub mod rxnorm;
pub mod units;

/// Lower-case words of `s`, punctuation dropped, for comparing names as printed with names in a
/// table.
pub fn normalize(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut space = true;
    for c in s.chars() {
        if c.is_alphanumeric() {
            out.extend(c.to_lowercase());
            space = false;
        } else if !space {
            out.push(' ');
            space = true;
        }
    }
    out.trim_end().to_string()
}

/// [`normalize`], then the letters OCR confuses folded together (`1`/`i`/`l`, `0`/`o`), so that
/// `HbAlc` finds `HbA1c`. For names only: never for numbers.
pub fn fold(s: &str) -> String {
    normalize(s)
        .chars()
        .map(|c| match c {
            '1' | 'i' | '|' | '!' => 'l',
            '0' => 'o',
            other => other,
        })
        .collect()
}

/// Similarity of two folded names, 0–1 (normalised Levenshtein).
pub fn similarity(a: &str, b: &str) -> f64 {
    strsim::normalized_levenshtein(a, b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folding_absorbs_ocr_confusions() {
        assert_eq!(fold("HbAlc"), fold("HbA1c"));
        assert_eq!(normalize("Glucose,  Serum"), "glucose serum");
        assert_eq!(fold("CO2, Total"), "co2 total");
    }
}
