//! Code crosswalks the feeds need: vaccine product CPT → CVX, RxNorm clinical drug →
//! ingredient, and drug names → ingredient. The tables are data files with their sources.

use std::collections::HashMap;
use std::sync::OnceLock;

/// CVX of a vaccine product CPT code (CPT vaccine product codes as CDC's CPT–CVX mapping
/// gives them).
pub fn vaccine_cvx(cpt: &str) -> Option<&'static str> {
    Some(match cpt {
        "90686" => "150", // influenza, quadrivalent, preservative free
        "90688" => "158", // influenza, quadrivalent, injectable
        "90682" => "185", // influenza, recombinant, quadrivalent
        "90662" => "135", // influenza, high dose
        "90715" => "115", // Tdap
        "90714" => "113", // Td, preservative free
        "90732" => "33",  // pneumococcal polysaccharide PPSV23
        "90670" => "133", // pneumococcal conjugate PCV13
        "90671" => "215", // pneumococcal conjugate PCV15
        "90677" => "216", // pneumococcal conjugate PCV20
        "90750" => "187", // zoster, recombinant
        "90707" => "03",  // MMR
        "90716" => "21",  // varicella
        "90746" => "43",  // hepatitis B, adult
        "90632" => "52",  // hepatitis A, adult
        "90651" => "165", // HPV9
        _ => return None,
    })
}

struct Tables {
    /// SCD RxCUI → IN RxCUI.
    scd: HashMap<String, String>,
    /// Folded ingredient name (one or two words) → IN RxCUI.
    names: HashMap<String, String>,
    /// IN RxCUI → its name.
    ingredients: HashMap<String, String>,
}

fn tables() -> &'static Tables {
    static T: OnceLock<Tables> = OnceLock::new();
    T.get_or_init(|| {
        let rows = |text: &'static str| {
            text.lines()
                .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
                .map(|l| l.split('\t').map(str::trim).collect::<Vec<_>>())
        };
        let scd = rows(include_str!("../data/clinical_drugs.tsv"))
            .filter(|r| r.len() == 2)
            .map(|r| (r[0].to_string(), r[1].to_string()))
            .collect();
        let mut names = HashMap::new();
        let mut ingredients = HashMap::new();
        for r in rows(include_str!("../data/ingredients.tsv")) {
            if let Some(n) = r.get(1) {
                ingredients.insert(r[0].to_string(), n.to_string());
            }
            for n in r.iter().skip(1) {
                names.insert(n.to_ascii_lowercase(), r[0].to_string());
            }
        }
        Tables {
            scd,
            names,
            ingredients,
        }
    })
}

/// The ingredient of a clinical drug (SCD) RxCUI, when the shipped table knows it.
pub fn scd_ingredient(scd: &str) -> Option<&'static str> {
    tables().scd.get(scd).map(String::as_str)
}

/// Whether the shipped table knows this RxCUI as an ingredient.
pub fn ingredient_by_code(rxcui: &str) -> bool {
    tables().ingredients.contains_key(rxcui)
}

/// The name of an ingredient RxCUI, when the shipped table knows it.
pub fn ingredient_name(rxcui: &str) -> Option<&'static str> {
    tables().ingredients.get(rxcui).map(String::as_str)
}

/// The ingredient a drug description starts with: `METFORMIN HCL 500 MG TABLET` → 6809,
/// `insulin glargine 100 unit/mL` → 274783 (two-word names are tried first).
pub fn ingredient_by_name(text: &str) -> Option<&'static str> {
    let words: Vec<String> = text
        .split(|c: char| !c.is_ascii_alphabetic())
        .filter(|w| !w.is_empty())
        .map(str::to_ascii_lowercase)
        .take(3)
        .collect();
    let t = tables();
    if words.len() >= 2
        && let Some(c) = t.names.get(&format!("{} {}", words[0], words[1]))
    {
        return Some(c);
    }
    words
        .first()
        .and_then(|w| t.names.get(w))
        .map(String::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drugs_resolve_to_ingredients() {
        assert_eq!(
            ingredient_by_name("METFORMIN HCL 500 MG TABLET"),
            Some("6809")
        );
        assert_eq!(
            ingredient_by_name("Insulin Glargine 100 UNT/ML"),
            Some("274783")
        );
        assert_eq!(
            ingredient_by_name("fluoxetine 20 MG Oral Capsule"),
            Some("4493")
        );
        assert_eq!(ingredient_by_name("UNKNOWNIUM 5 MG"), None);
        assert_eq!(scd_ingredient("314231"), Some("36567"));
        assert_eq!(vaccine_cvx("90686"), Some("150"));
    }
}
