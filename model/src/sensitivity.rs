//! Which facts are sensitive, and in which category: the basis of "excluded unless the patient
//! names them". Decided from codes (ICD-10-CM ranges, LOINC tests, RxNorm ingredients by name),
//! the way security-labeling services tag records; a fact whose code is in none of these lists
//! is not sensitive.
//!
//! Sources: ICD-10-CM chapter and block boundaries (F, O, A50–A64, B20, Z14–Z15, Z21, Z30–Z3A);
//! LOINC codes of HIV, STI and pregnancy tests; drug classes (opioid use disorder and alcohol
//! use disorder treatment, antiretrovirals, antipsychotics, mood stabilizers) by ingredient.

use crate::coding::CodeSystem;
use crate::fact::{Category, FactBody};

/// ICD-10-CM: (code prefix, category); first match wins, so narrower prefixes come first.
const ICD10CM: &[(&str, Category)] = &[
    // Mental and behavioural disorders due to psychoactive substance use.
    ("F10", Category::SubstanceUse),
    ("F11", Category::SubstanceUse),
    ("F12", Category::SubstanceUse),
    ("F13", Category::SubstanceUse),
    ("F14", Category::SubstanceUse),
    ("F15", Category::SubstanceUse),
    ("F16", Category::SubstanceUse),
    ("F17", Category::SubstanceUse),
    ("F18", Category::SubstanceUse),
    ("F19", Category::SubstanceUse),
    ("F", Category::BehavioralHealth),
    ("R45.851", Category::BehavioralHealth),
    ("T14.91", Category::BehavioralHealth),
    ("B20", Category::HivSti),
    ("Z21", Category::HivSti),
    ("Z20.6", Category::HivSti),
    ("R75", Category::HivSti),
    ("B97.35", Category::HivSti),
    ("A5", Category::HivSti),
    ("A60", Category::HivSti),
    ("A63", Category::HivSti),
    ("A64", Category::HivSti),
    ("O", Category::SexualReproductiveHealth),
    ("Z3", Category::SexualReproductiveHealth),
    ("N96", Category::SexualReproductiveHealth),
    ("N97", Category::SexualReproductiveHealth),
    ("Z14", Category::Genetic),
    ("Z15", Category::Genetic),
    ("Z84.81", Category::Genetic),
];

/// LOINC tests whose mere presence is sensitive.
const LOINC: &[(&str, Category)] = &[
    ("7917-8", Category::HivSti),                    // HIV 1 Ab
    ("68961-2", Category::HivSti),                   // HIV 1 Ab
    ("75622-1", Category::HivSti),                   // HIV 1+2 Ab + HIV 1 p24 Ag
    ("56888-1", Category::HivSti),                   // HIV 1+2 Ab + HIV 1 p24 Ag
    ("25836-8", Category::HivSti),                   // HIV 1 RNA
    ("20447-9", Category::HivSti),                   // HIV 1 RNA
    ("21613-5", Category::HivSti),                   // Chlamydia trachomatis DNA
    ("24111-7", Category::HivSti),                   // Neisseria gonorrhoeae DNA
    ("20507-0", Category::HivSti),                   // Reagin Ab (RPR)
    ("5292-8", Category::HivSti),                    // Reagin Ab (VDRL)
    ("2106-3", Category::SexualReproductiveHealth),  // hCG, urine
    ("2118-8", Category::SexualReproductiveHealth),  // hCG, serum (qualitative)
    ("21198-7", Category::SexualReproductiveHealth), // hCG, serum (quantitative)
];

/// Ingredients (lower case) by class.
const DRUGS: &[(&str, Category)] = &[
    ("buprenorphine", Category::SubstanceUse),
    ("methadone", Category::SubstanceUse),
    ("naltrexone", Category::SubstanceUse),
    ("disulfiram", Category::SubstanceUse),
    ("acamprosate", Category::SubstanceUse),
    ("varenicline", Category::SubstanceUse),
    ("tenofovir", Category::HivSti),
    ("emtricitabine", Category::HivSti),
    ("dolutegravir", Category::HivSti),
    ("bictegravir", Category::HivSti),
    ("raltegravir", Category::HivSti),
    ("efavirenz", Category::HivSti),
    ("rilpivirine", Category::HivSti),
    ("abacavir", Category::HivSti),
    ("lamivudine", Category::HivSti),
    ("zidovudine", Category::HivSti),
    ("darunavir", Category::HivSti),
    ("cabotegravir", Category::HivSti),
    ("lithium", Category::BehavioralHealth),
    ("clozapine", Category::BehavioralHealth),
    ("olanzapine", Category::BehavioralHealth),
    ("quetiapine", Category::BehavioralHealth),
    ("risperidone", Category::BehavioralHealth),
    ("aripiprazole", Category::BehavioralHealth),
    ("haloperidol", Category::BehavioralHealth),
    ("ziprasidone", Category::BehavioralHealth),
    ("lurasidone", Category::BehavioralHealth),
    ("paliperidone", Category::BehavioralHealth),
];

/// The sensitive category of a fact, if it has one.
pub fn sensitive_category(body: &FactBody) -> Option<Category> {
    match body {
        FactBody::Condition(c) => c
            .code
            .iter()
            .filter(|c| c.system == CodeSystem::Icd10Cm)
            .find_map(|c| icd10cm(&c.code)),
        FactBody::Observation(o) => o
            .code
            .iter()
            .filter(|c| c.system == CodeSystem::Loinc)
            .find_map(|c| LOINC.iter().find(|(l, _)| *l == c.code).map(|(_, k)| *k)),
        FactBody::Medication(m) => {
            let names = std::iter::once(m.text.to_lowercase()).chain(
                m.code
                    .iter()
                    .filter_map(|c| c.display.as_ref().map(|d| d.to_lowercase())),
            );
            names
                .flat_map(|n| {
                    DRUGS
                        .iter()
                        .filter(move |(d, _)| n.contains(d))
                        .map(|(_, k)| *k)
                })
                .next()
        }
        _ => None,
    }
}

fn icd10cm(code: &str) -> Option<Category> {
    let code = code.to_ascii_uppercase();
    ICD10CM
        .iter()
        .find(|(prefix, _)| code.starts_with(prefix))
        .map(|(_, k)| *k)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_ranges_pick_the_narrowest_category() {
        assert_eq!(icd10cm("F11.20"), Some(Category::SubstanceUse));
        assert_eq!(icd10cm("F32.9"), Some(Category::BehavioralHealth));
        assert_eq!(icd10cm("B20"), Some(Category::HivSti));
        assert_eq!(icd10cm("A54.00"), Some(Category::HivSti));
        assert_eq!(icd10cm("O24.419"), Some(Category::SexualReproductiveHealth));
        assert_eq!(icd10cm("Z15.01"), Some(Category::Genetic));
        assert_eq!(icd10cm("E11.9"), None);
        assert_eq!(icd10cm("I10"), None);
        assert_eq!(icd10cm("A41.9"), None, "sepsis is not an STI");
    }
}
