//! Printed units → UCUM codes. Spellings from lab printouts (`mEq/L`, `x10E3/uL`, `K/uL`,
//! `10^3/uL`, `IU/L`, `mcg`), OCR slips folded (`ulU/mL`, `10%3/uL`, `mg/dl`).

/// (printed spelling, folded for lookup, UCUM code)
const UNITS: &[(&str, &str)] = &[
    ("mg/dL", "mg/dL"),
    ("g/dL", "g/dL"),
    ("g/L", "g/L"),
    ("mg/L", "mg/L"),
    ("ug/L", "ug/L"),
    ("mcg/L", "ug/L"),
    ("ng/L", "ng/L"),
    ("mmol/L", "mmol/L"),
    ("umol/L", "umol/L"),
    ("µmol/L", "umol/L"),
    ("nmol/L", "nmol/L"),
    ("pmol/L", "pmol/L"),
    ("mEq/L", "meq/L"),
    ("meq/L", "meq/L"),
    ("U/L", "U/L"),
    ("IU/L", "[IU]/L"),
    ("U/mL", "U/mL"),
    ("mU/L", "mU/L"),
    ("mIU/L", "m[IU]/L"),
    ("mIU/mL", "m[IU]/mL"),
    ("uIU/mL", "u[IU]/mL"),
    ("µIU/mL", "u[IU]/mL"),
    ("microIU/mL", "u[IU]/mL"),
    ("%", "%"),
    ("ng/mL", "ng/mL"),
    ("ng/dL", "ng/dL"),
    ("pg/mL", "pg/mL"),
    ("ug/dL", "ug/dL"),
    ("mcg/dL", "ug/dL"),
    ("µg/dL", "ug/dL"),
    ("ug/mL", "ug/mL"),
    ("fL", "fL"),
    ("pg", "pg"),
    ("x10E3/uL", "10*3/uL"),
    ("x10^3/uL", "10*3/uL"),
    ("10^3/uL", "10*3/uL"),
    ("10*3/uL", "10*3/uL"),
    ("10E3/uL", "10*3/uL"),
    ("K/uL", "10*3/uL"),
    ("K/µL", "10*3/uL"),
    ("thou/uL", "10*3/uL"),
    ("10^9/L", "10*9/L"),
    ("x10E9/L", "10*9/L"),
    ("x10E6/uL", "10*6/uL"),
    ("x10^6/uL", "10*6/uL"),
    ("10^6/uL", "10*6/uL"),
    ("10*6/uL", "10*6/uL"),
    ("10E6/uL", "10*6/uL"),
    ("M/uL", "10*6/uL"),
    ("mill/uL", "10*6/uL"),
    ("10^12/L", "10*12/L"),
    ("/uL", "/uL"),
    ("cells/uL", "/uL"),
    ("mL/min/1.73m2", "mL/min/{1.73_m2}"),
    ("mL/min/1.73 m2", "mL/min/{1.73_m2}"),
    ("mL/min/1.73m^2", "mL/min/{1.73_m2}"),
    ("mm/hr", "mm/h"),
    ("mm/h", "mm/h"),
    ("sec", "s"),
    ("seconds", "s"),
    ("s", "s"),
    ("mg/g", "mg/g"),
    ("mg/g creat", "mg/g"),
    ("mOsm/kg", "mosm/kg"),
    ("mmHg", "mm[Hg]"),
    ("mm Hg", "mm[Hg]"),
    ("ratio", "{ratio}"),
    ("mmol/mol", "mmol/mol"),
];

/// Folds a unit as OCR may print it: case, `µ`/`mc` → `u`, `l`/`I`/`1` after `u` → `i`,
/// `%` misread for `*` in exponents, spaces dropped.
fn key(s: &str) -> String {
    let mut k: String = s
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_lowercase()
        .replace(['µ', 'μ'], "u")
        .replace("mcg", "ug");
    // Exponents: `x10E3`, `x10^3`, `10*3`, and OCR's `10%3` / `10A3` for `10^3`.
    for from in ["x10^", "x10*", "x10e", "10^", "10e", "10%", "10a"] {
        k = k.replace(from, "10*");
    }
    k.replace("ulu", "uiu")
        .replace("u1u", "uiu")
        .replace("u|u", "uiu")
        .replace("mlu", "miu")
        .replace("/di", "/dl")
        .replace("/dt", "/dl")
}

/// The UCUM code of a printed unit, if it is one we know.
pub fn to_ucum(printed: &str) -> Option<&'static str> {
    let k = key(printed);
    UNITS
        .iter()
        .find(|(p, _)| key(p) == k)
        .map(|(_, ucum)| *ucum)
        .or_else(|| {
            // Dimensionless forms printed as `{ratio}`/`{INR}` already are UCUM.
            let raw = printed.trim();
            (raw.starts_with('{') && raw.ends_with('}')).then_some("{ratio}")
        })
}

/// The unit among `expected` (UCUM codes the test is reported in) that a garbled printed unit
/// is closest to (`x1043/UL` → `10*3/uL`, `g/dt.` → `g/dL`), when close enough to be that unit
/// and no other: knowing which test the row is for narrows a misread to a few candidates.
pub fn closest(printed: &str, expected: &[&str]) -> Option<&'static str> {
    let k = key(printed.trim_end_matches(['.', ',', ';', ':', '|']));
    // A unit has a slash, a percent sign or an exponent; a word (`Fasting`, `Negative`) is not one.
    if k.len() < 2 || !k.contains(['/', '%', '*']) {
        return None;
    }
    let mut best: Option<(usize, &'static str)> = None;
    let mut tie = false;
    for (spelling, ucum) in UNITS.iter().filter(|(_, u)| expected.contains(u)) {
        let d = strsim::levenshtein(&k, &key(spelling));
        match best {
            Some((b, u)) if d == b && u != *ucum => tie = true,
            Some((b, _)) if d >= b => {}
            _ => {
                best = Some((d, ucum));
                tie = false;
            }
        }
    }
    let (d, ucum) = best?;
    (!tie && d <= (k.chars().count() / 3).max(1)).then_some(ucum)
}

/// Whether `s` could be a unit (to split `41.0%` and to recognise a unit column).
pub fn is_unit(s: &str) -> bool {
    to_ucum(s).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printed_and_misread_spellings_map_to_ucum() {
        for (printed, ucum) in [
            ("mEq/L", "meq/L"),
            ("x10E3/uL", "10*3/uL"),
            ("K/uL", "10*3/uL"),
            ("10^3/uL", "10*3/uL"),
            ("10%3/uL", "10*3/uL"),
            ("ulU/mL", "u[IU]/mL"),
            ("X10E3/uL", "10*3/uL"),
            ("10A3/uL", "10*3/uL"),
            ("uIU/mL", "u[IU]/mL"),
            ("IU/L", "[IU]/L"),
            ("mg/dl", "mg/dL"),
            ("mcg/dL", "ug/dL"),
            ("10^6/uL", "10*6/uL"),
        ] {
            assert_eq!(to_ucum(printed), Some(ucum), "{printed}");
        }
        assert_eq!(to_ucum("mg"), None);
        let cbc = ["10*3/uL", "10*9/L"];
        assert_eq!(closest("x1043/UL", &cbc), Some("10*3/uL"));
        assert_eq!(closest("X10%3/pL", &cbc), Some("10*3/uL"));
        assert_eq!(closest("g/dt.", &["g/dL", "g/L"]), Some("g/dL"));
        assert_eq!(closest("Fasting", &["mg/dL"]), None);
        assert_eq!(closest("ng/mL", &["mg/dL"]), None);
        assert_eq!(to_ucum("Fasting"), None);
    }
}
