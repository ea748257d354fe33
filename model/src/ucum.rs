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

#[cfg(test)]
mod tests {
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
