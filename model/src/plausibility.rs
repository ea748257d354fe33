//! Plausibility of the values a person types in.
//!
//! A manual entry has no laboratory behind it: a slipped finger gives 815 kg, a wrong unit
//! 98.6 Cel, a test of the API 1e308. [`check_observation`] refuses a quantity that is not a
//! finite number, and, for the common codes in [`LIMITS`], one outside what a living human
//! can have once converted into the code's canonical unit, or one in a unit that does not
//! measure what the code measures. The bounds are generous (recorded extremes, not reference
//! ranges): they catch typos, never an abnormal result. Codes not in the table get only
//! [`MAX_MAGNITUDE`]: without knowing the quantity no tighter bound is safe.
//!
//! Meant for manual entries; documents and feeds report what a laboratory measured.

use crate::coding::CodeSystem;
use crate::fact::{Observation, Value};
use crate::ucum;

/// The range a LOINC-coded quantity can take in a living human.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limit {
    pub code: &'static str,
    /// What was measured, as messages name it.
    pub name: &'static str,
    /// Canonical UCUM unit; `low` and `high` are in it.
    pub unit: &'static str,
    pub low: f64,
    pub high: f64,
}

const fn limit(
    code: &'static str,
    name: &'static str,
    unit: &'static str,
    low: f64,
    high: f64,
) -> Limit {
    Limit {
        code,
        name,
        unit,
        low,
        high,
    }
}

/// Codes a patient types, with the range physically possible. Units are LOINC's example UCUM
/// units (`extract/data/labs.tsv` uses the same). Bounds widen the recorded extremes noted
/// beside them (Guinness World Records, case reports); every code's check digit is tested.
pub const LIMITS: &[Limit] = &[
    // Heaviest recorded ~635 kg (J. B. Minnoch); smallest surviving newborns ~0.21 kg.
    limit("29463-7", "body weight", "kg", 0.2, 700.0),
    limit("3141-9", "body weight", "kg", 0.2, 700.0),
    // Tallest recorded 272 cm (R. Wadlow); extremely premature newborns ~25 cm.
    limit("8302-2", "body height", "cm", 15.0, 300.0),
    // Minnoch ~186 kg/m2; a 0.2 kg newborn of 20 cm is ~5 kg/m2.
    limit("39156-5", "body mass index", "kg/m2", 2.0, 250.0),
    // Up to 480/350 mm[Hg] measured intra-arterially during heavy lifting (MacDougall 1985).
    limit("8480-6", "systolic blood pressure", "mm[Hg]", 20.0, 500.0),
    limit("8462-4", "diastolic blood pressure", "mm[Hg]", 5.0, 400.0),
    // ~600/min reported in pre-excited tachycardia; deep bradycardia is under 20/min.
    limit("8867-4", "heart rate", "/min", 5.0, 600.0),
    // Survived 13.7 Cel (A. Bågenholm) and 46.5 Cel (W. Jones).
    limit("8310-5", "body temperature", "Cel", 10.0, 47.0),
    limit("8331-1", "oral temperature", "Cel", 10.0, 47.0),
    // Apnoea aside, from a few breaths a minute to newborns' tachypnoea well above 100.
    limit("9279-1", "respiratory rate", "/min", 1.0, 200.0),
    // A saturation cannot exceed 100 %.
    limit("2708-6", "oxygen saturation", "%", 1.0, 100.0),
    limit("59408-5", "oxygen saturation", "%", 1.0, 100.0),
    // Highest recorded 2656 mg/dL = 147.6 mmol/L (M. P. Buonocore, 2008).
    limit("2345-7", "glucose", "mg/dL", 1.0, 3000.0),
    limit("2339-0", "glucose", "mg/dL", 1.0, 3000.0),
    limit("41653-7", "glucose", "mg/dL", 1.0, 3000.0),
    limit("14749-6", "glucose", "mmol/L", 0.05, 170.0),
    limit("15074-8", "glucose", "mmol/L", 0.05, 170.0),
    // HbA1c above 20 % is reported; 2–25 % is about 0–250 mmol/mol (IFCC).
    limit("4548-4", "HbA1c", "%", 2.0, 25.0),
    limit("59261-8", "HbA1c", "mmol/mol", 1.0, 260.0),
    // Lipids: homozygous familial hypercholesterolaemia exceeds 1000 mg/dL of cholesterol;
    // lipoprotein lipase deficiency exceeds 20 000 mg/dL of triglycerides.
    limit("2093-3", "total cholesterol", "mg/dL", 20.0, 4000.0),
    limit("14647-2", "total cholesterol", "mmol/L", 0.5, 105.0),
    limit("13457-7", "LDL cholesterol", "mg/dL", 0.0, 3000.0),
    limit("18262-6", "LDL cholesterol", "mg/dL", 0.0, 3000.0),
    limit("22748-8", "LDL cholesterol", "mmol/L", 0.0, 80.0),
    limit("2085-9", "HDL cholesterol", "mg/dL", 1.0, 300.0),
    limit("14646-4", "HDL cholesterol", "mmol/L", 0.02, 8.0),
    limit("2571-8", "triglycerides", "mg/dL", 1.0, 50000.0),
    limit("14927-8", "triglycerides", "mmol/L", 0.01, 565.0),
    // Acute kidney injury and rhabdomyolysis reach a few tens of mg/dL.
    limit("2160-0", "creatinine", "mg/dL", 0.05, 100.0),
    limit("14682-9", "creatinine", "umol/L", 4.0, 8800.0),
    // The formulas give under 5 on dialysis and under 200 in hyperfiltration.
    limit("33914-3", "eGFR", "mL/min/{1.73_m2}", 0.1, 300.0),
    limit("62238-1", "eGFR", "mL/min/{1.73_m2}", 0.1, 300.0),
    limit("98979-8", "eGFR", "mL/min/{1.73_m2}", 0.1, 300.0),
    // Ultramarathons stay under 200 000 steps a day. Any count unit (1, {#}) converts.
    limit("55423-8", "step count", "{steps}", 0.0, 200_000.0),
    limit("41950-7", "steps in 24 hours", "/d", 0.0, 200_000.0),
];

/// The bound on any value of a code not in [`LIMITS`]: above it, even counts per litre stop
/// being something a person types, and f64 stops holding every integer (2^53 ≈ 9e15).
pub const MAX_MAGNITUDE: f64 = 1e15;

/// The limits of a LOINC code, if it is one a patient commonly types.
pub fn limits(code: &str) -> Option<&'static Limit> {
    LIMITS.iter().find(|l| l.code == code)
}

/// Why a typed value is refused. `path` is the FHIR field; the message names the quantity
/// and the expected range, never the value, unit or code entered (they are patient data).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct Implausible {
    pub path: &'static str,
    pub message: String,
}

const VALUE: &str = "Observation.valueQuantity.value";
const UNIT: &str = "Observation.valueQuantity.code";

/// Checks an observation a person entered: a quantity must be finite and, for every LOINC
/// code of it in [`LIMITS`], within that code's limits. Other values (text, coded) pass.
pub fn check_observation(obs: &Observation) -> Result<(), Implausible> {
    let Some(Value::Quantity { value, unit, .. }) = &obs.value else {
        return Ok(());
    };
    let mut known = obs
        .code
        .iter()
        .filter(|c| c.system == CodeSystem::Loinc)
        .filter_map(|c| limits(&c.code))
        .peekable();
    if known.peek().is_none() {
        return check_value(None, *value, unit);
    }
    known.try_for_each(|l| check_value(Some(l), *value, unit))
}

/// Checks `value` in `unit` as a result of the LOINC `code`.
pub fn check_quantity(code: &str, value: f64, unit: &str) -> Result<(), Implausible> {
    check_value(limits(code), value, unit)
}

fn check_value(bound: Option<&Limit>, value: f64, unit: &str) -> Result<(), Implausible> {
    if !value.is_finite() {
        return Err(implausible(VALUE, "must be a finite number".into()));
    }
    let Some(l) = bound else {
        return if value.abs() <= MAX_MAGNITUDE {
            Ok(())
        } else {
            Err(implausible(
                VALUE,
                format!("not a plausible value (expected at most {MAX_MAGNITUDE:e} in magnitude)"),
            ))
        };
    };
    let canonical = if unit == l.unit {
        value
    } else {
        ucum::convert(value, unit, l.unit).ok_or_else(|| {
            implausible(
                UNIT,
                format!(
                    "not a unit of {} (expected one convertible to {})",
                    l.name, l.unit
                ),
            )
        })?
    };
    // A conversion can overflow to infinity: the range refuses that too.
    if (l.low..=l.high).contains(&canonical) {
        Ok(())
    } else {
        Err(implausible(
            VALUE,
            format!(
                "not a plausible {} (expected {}–{} {})",
                l.name, l.low, l.high, l.unit
            ),
        ))
    }
}

fn implausible(path: &'static str, message: String) -> Implausible {
    Implausible { path, message }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::coding::{Coding, check_loinc};
    use crate::fact::{ObservationKind, When};

    fn obs(codes: &[&str], value: Option<Value>) -> Observation {
        Observation {
            kind: ObservationKind::VitalSigns,
            code: codes
                .iter()
                .map(|c| Coding::new(CodeSystem::Loinc, *c, None))
                .collect(),
            value,
            effective: When::Date(chrono::NaiveDate::MIN),
            reference_range: None,
            interpretation: None,
        }
    }

    fn quantity(value: f64, unit: &str) -> Option<Value> {
        Some(Value::Quantity {
            value,
            unit: unit.into(),
            comparator: None,
        })
    }

    #[test]
    fn the_table_is_well_formed() {
        let mut seen = std::collections::HashSet::new();
        for l in LIMITS {
            assert_eq!(check_loinc(l.code), Ok(()), "{}", l.code);
            assert!(seen.insert(l.code), "{} twice", l.code);
            assert!(ucum::parse(l.unit).is_ok(), "{}: {}", l.code, l.unit);
            assert!(l.low.is_finite() && l.high.is_finite() && l.low < l.high);
            assert!(l.high <= MAX_MAGNITUDE);
            // Both ends are accepted, just outside is not.
            assert_eq!(check_quantity(l.code, l.low, l.unit), Ok(()), "{}", l.code);
            assert_eq!(check_quantity(l.code, l.high, l.unit), Ok(()), "{}", l.code);
            assert!(check_quantity(l.code, l.high * 1.01 + 1.0, l.unit).is_err());
        }
        for code in [
            "29463-7", "8302-2", "39156-5", "8480-6", "8462-4", "8867-4", "8310-5", "9279-1",
            "2708-6", "59408-5", "2345-7", "2339-0", "41653-7", "4548-4", "2093-3", "13457-7",
            "18262-6", "2085-9", "2571-8", "2160-0", "33914-3", "62238-1", "98979-8", "55423-8",
        ] {
            assert!(limits(code).is_some(), "{code}");
        }
    }

    #[test]
    fn typos_are_refused_abnormal_results_are_not() {
        assert_eq!(check_quantity("29463-7", 81.5, "kg"), Ok(()));
        assert_eq!(
            check_quantity("29463-7", 0.9, "kg"),
            Ok(()),
            "a premature newborn"
        );
        assert_eq!(
            check_quantity("2345-7", 650.0, "mg/dL"),
            Ok(()),
            "very high, possible"
        );
        assert_eq!(check_quantity("8480-6", 240.0, "mm[Hg]"), Ok(()));
        assert_eq!(check_quantity("8310-5", 41.8, "Cel"), Ok(()));
        assert_eq!(check_quantity("55423-8", 0.0, "{steps}"), Ok(()));
        let e = check_quantity("29463-7", 1e308, "kg").unwrap_err();
        assert_eq!(
            e.to_string(),
            "Observation.valueQuantity.value: not a plausible body weight (expected 0.2–700 kg)"
        );
        assert!(!e.message.contains("1e308"), "never the value");
        assert!(check_quantity("29463-7", 815.0, "kg").is_err());
        assert!(check_quantity("29463-7", 0.0, "kg").is_err());
        assert!(check_quantity("29463-7", -80.0, "kg").is_err());
        assert!(
            check_quantity("8310-5", 98.6, "Cel").is_err(),
            "Fahrenheit typed as Cel"
        );
        assert!(check_quantity("2708-6", 101.0, "%").is_err());
        assert!(
            check_quantity("4548-4", 72.0, "%").is_err(),
            "7.2 without its dot"
        );
    }

    #[test]
    fn values_are_converted_into_the_canonical_unit() {
        assert_eq!(check_quantity("29463-7", 179.7, "[lb_av]"), Ok(()));
        assert_eq!(check_quantity("29463-7", 81_500.0, "g"), Ok(()));
        assert!(
            check_quantity("29463-7", 1800.0, "[lb_av]").is_err(),
            "816 kg"
        );
        assert_eq!(check_quantity("8302-2", 1.78, "m"), Ok(()));
        assert_eq!(check_quantity("8302-2", 70.0, "[in_i]"), Ok(()));
        assert_eq!(check_quantity("8310-5", 98.6, "[degF]"), Ok(()));
        assert!(check_quantity("8310-5", 986.0, "[degF]").is_err());
        assert_eq!(check_quantity("8480-6", 16.0, "kPa"), Ok(()));
        assert_eq!(check_quantity("2345-7", 1.26, "g/L"), Ok(()));
        assert_eq!(
            check_quantity("59408-5", 0.97, "1"),
            Ok(()),
            "a fraction is 97 %"
        );
        assert_eq!(check_quantity("98979-8", 85.0, "mL/min"), Ok(()));
        assert_eq!(check_quantity("8867-4", 1.2, "/s"), Ok(()), "72/min");
        // 1e308 lb is still 4.5e307 kg; 1e308 Mg (megagrams) overflows to infinity in kg.
        assert!(check_quantity("29463-7", 1e308, "[lb_av]").is_err());
        assert!(check_quantity("29463-7", 1e308, "Mg").is_err());
    }

    #[test]
    fn a_unit_that_measures_something_else_is_refused() {
        let e = check_quantity("29463-7", 81.5, "mmol/L").unwrap_err();
        assert_eq!(e.path, "Observation.valueQuantity.code");
        assert_eq!(
            e.message,
            "not a unit of body weight (expected one convertible to kg)"
        );
        assert!(check_quantity("29463-7", 81.5, "m").is_err());
        assert!(check_quantity("8302-2", 178.0, "kg").is_err());
        // Mass and substance concentrations need a molar mass: each has its own code.
        assert!(check_quantity("2345-7", 7.0, "mmol/L").is_err());
        assert_eq!(check_quantity("14749-6", 7.0, "mmol/L"), Ok(()));
        assert!(check_quantity("8867-4", 72.0, "kg").is_err());
        assert!(check_quantity("29463-7", 81.5, "not a unit").is_err());
    }

    #[test]
    fn values_must_be_finite_whatever_the_code() {
        for v in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            for code in ["29463-7", "2951-2", "1-8"] {
                let e = check_quantity(code, v, "kg").unwrap_err();
                assert_eq!(e.path, "Observation.valueQuantity.value");
                assert_eq!(e.message, "must be a finite number");
            }
        }
    }

    #[test]
    fn codes_not_in_the_table_get_the_broad_bound_only() {
        // Sodium is not in the table: any unit, any finite value up to MAX_MAGNITUDE.
        assert_eq!(check_quantity("2951-2", 140.0, "mmol/L"), Ok(()));
        assert_eq!(check_quantity("2951-2", -3.0, "mmol/L"), Ok(()));
        assert_eq!(check_quantity("2951-2", 140.0, "kg"), Ok(()));
        assert_eq!(check_quantity("26515-7", 2.5e11, "/L"), Ok(()), "platelets");
        let e = check_quantity("2951-2", 1e308, "mmol/L").unwrap_err();
        assert_eq!(
            e.to_string(),
            "Observation.valueQuantity.value: not a plausible value (expected at most 1e15 in magnitude)"
        );
        assert!(check_quantity("2951-2", -1e16, "mmol/L").is_err());
    }

    #[test]
    fn observations_are_checked_against_every_known_loinc_code() {
        assert_eq!(
            check_observation(&obs(&["29463-7"], quantity(81.5, "kg"))),
            Ok(())
        );
        assert!(check_observation(&obs(&["29463-7"], quantity(1e308, "kg"))).is_err());
        // A code not in the table beside one that is: the known one still applies.
        assert!(check_observation(&obs(&["2951-2", "29463-7"], quantity(1e308, "kg"))).is_err());
        assert!(check_observation(&obs(&["29463-7", "8302-2"], quantity(80.0, "kg"))).is_err());
        assert!(check_observation(&obs(&["2951-2"], quantity(1e308, "kg"))).is_err());
        assert!(check_observation(&obs(&["2951-2"], quantity(f64::NAN, "kg"))).is_err());
        // Another system's code alone: only the broad bound.
        let mut o = obs(&[], quantity(1e9, "kg"));
        o.code
            .push(Coding::new(CodeSystem::SnomedCt, "27113001", None));
        assert_eq!(check_observation(&o), Ok(()));
        let text = Some(Value::Text {
            text: "positive".into(),
        });
        assert_eq!(check_observation(&obs(&["29463-7"], text)), Ok(()));
        assert_eq!(check_observation(&obs(&["29463-7"], None)), Ok(()));
    }
}
