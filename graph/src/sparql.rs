//! Writing SPARQL text safely: every IRI and literal that comes from data goes through these
//! functions, so no value can break out of its term (an injection) or be mangled.

/// `<iri>`, percent-encoding what an IRI reference may not contain.
pub fn iri(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len() + 2);
    out.push('<');
    for c in raw.chars() {
        match c {
            '<' | '>' | '"' | '{' | '}' | '|' | '^' | '`' | '\\' | ' ' => {
                let mut buf = [0u8; 4];
                for b in c.encode_utf8(&mut buf).bytes() {
                    out.push_str(&format!("%{b:02X}"));
                }
            }
            c if c.is_control() => {
                let mut buf = [0u8; 4];
                for b in c.encode_utf8(&mut buf).bytes() {
                    out.push_str(&format!("%{b:02X}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('>');
    out
}

/// A string literal, with SPARQL's escapes.
pub fn string(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

pub const XSD: &str = "http://www.w3.org/2001/XMLSchema#";

/// A typed literal, e.g. `typed("2026-03-17", "date")`.
pub fn typed(value: &str, xsd_type: &str) -> String {
    format!("{}^^<{XSD}{xsd_type}>", string(value))
}

/// An `xsd:decimal` literal from a finite number (`None` for NaN or infinity).
pub fn decimal(v: f64) -> Option<String> {
    if !v.is_finite() {
        return None;
    }
    let mut s = p360_model::format_number(v);
    if !s.contains('.') {
        s.push_str(".0");
    }
    Some(typed(&s, "decimal"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_cannot_break_out() {
        assert_eq!(string("a\"b\\c\nd"), r#""a\"b\\c\nd""#);
        assert_eq!(iri("urn:x> <urn:evil"), "<urn:x%3E%20%3Curn:evil>");
        assert_eq!(decimal(7.2).unwrap(), format!("\"7.2\"^^<{XSD}decimal>"));
        assert_eq!(
            decimal(142.0).unwrap(),
            format!("\"142.0\"^^<{XSD}decimal>")
        );
        assert!(decimal(f64::NAN).is_none());
    }
}
