//! UCUM units, through the `ucum-units` crate (a conformance-tested UCUM implementation):
//! a unit that does not parse, or names an unknown atom, is refused.

/// Why a unit is not UCUM. The message names the unit (units are not patient data).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{unit}' is not a UCUM unit: {reason}")]
pub struct UnitError {
    pub unit: String,
    pub reason: String,
}

/// Checks a UCUM unit code (case-sensitive, as FHIR requires).
pub fn parse(unit: &str) -> Result<(), UnitError> {
    if unit.is_empty() || unit.len() > 64 {
        return Err(UnitError {
            unit: unit.chars().take(64).collect(),
            reason: "a unit has 1 to 64 characters".into(),
        });
    }
    ucum::validate(unit).map_err(|e| UnitError {
        unit: unit.to_owned(),
        reason: e.to_string(),
    })
}

/// Converts `value` from one unit to another, if they measure the same thing.
pub fn convert(value: f64, from: &str, to: &str) -> Option<f64> {
    ucum::convert(value, from, to).ok()
}

/// Relative difference under which two results are one: what rounding to the printed
/// precision and a unit conversion can introduce, well below any clinical difference.
pub const RELATIVE_TOLERANCE: f64 = 0.005;

/// Whether two quantities state the same value, allowing unit conversion and rounding.
pub fn same_quantity(a: (f64, &str), b: (f64, &str)) -> bool {
    if a.1 == b.1 {
        return within(a.0, b.0);
    }
    // Into the first one's unit (handles affine units such as Cel and [degF]).
    convert(b.0, b.1, a.1).is_some_and(|vb| within(a.0, vb))
}

fn within(a: f64, b: f64) -> bool {
    (a - b).abs() <= RELATIVE_TOLERANCE * a.abs().max(b.abs())
}

#[cfg(test)]
mod tests {
    #[test]
    fn quantities_match_across_units_within_tolerance() {
        use super::same_quantity;
        assert!(same_quantity((81.5, "kg"), (179.7, "[lb_av]")));
        assert!(same_quantity((126.0, "mg/dL"), (1.26, "g/L")));
        assert!(same_quantity((7.2, "%"), (7.2, "%")));
        assert!(same_quantity((37.0, "Cel"), (98.6, "[degF]")));
        assert!(!same_quantity((7.2, "%"), (7.4, "%")));
        assert!(!same_quantity((81.5, "kg"), (81.5, "m")));
        assert!(
            !same_quantity((126.0, "mg/dL"), (7.0, "mmol/L")),
            "no molar mass"
        );
        assert!(!same_quantity((0.0, "kg"), (0.1, "kg")));
        assert!(same_quantity((0.0, "kg"), (0.0, "g")));
    }

    #[test]
    fn common_lab_units_parse_and_junk_does_not() {
        for u in [
            "mg/dL",
            "mmol/L",
            "%",
            "10*3/uL",
            "g/dL",
            "mL/min/{1.73_m2}",
            "[IU]/L",
            "mm[Hg]",
            "kg",
            "/min",
            "Cel",
            "U/L",
            "ng/mL",
            "1",
        ] {
            assert!(super::parse(u).is_ok(), "{u}");
        }
        for u in ["", "mg/", "milligrams", "MG/DL", "furlongs"] {
            assert!(super::parse(u).is_err(), "{u}");
        }
        let mmol = super::convert(100.0, "mg/dL", "g/L").unwrap();
        assert!((mmol - 1.0).abs() < 1e-9);
    }
}
