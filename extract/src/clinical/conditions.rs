//! Diagnoses: only from diagnosis sections (assessment, problem list, discharge diagnoses) and
//! `Diagnosis (ICD-10):` lines; symptoms and negations in the narrative are never the patient's
//! conditions. Inside a diagnosis item, negation and context words (`rule out`, `no`,
//! `family history of`) skip the item.

use super::sections::{Section, heading};
use super::{ConditionMention, PageLine};
use crate::terminology::{icd10cm, normalize};
use regex::Regex;
use std::sync::OnceLock;

const DESCRIPTION_MATCH: f64 = 0.8;

/// Words before a diagnosis that make it not the patient's current condition (NegEx-style:
/// they open the item). Words inside official descriptions (`not elsewhere classified`,
/// `without complications`) are not triggers because they do not open it.
const PRE_NEGATIONS: &[&str] = &[
    "no",
    "not",
    "denies",
    "denied",
    "negative for",
    "rule out",
    "ruled out",
    "r o",
    "ro",
    "without evidence of",
    "no evidence of",
    "family history",
    "family history of",
    "fh",
    "history of",
    "hx of",
    "h o",
    "mother with",
    "father with",
    "brother with",
    "sister with",
    "possible",
    "suspected",
    "probable",
    "concern for",
    "evaluate for",
    "screening for",
];
/// Words after a diagnosis that do the same (`PE ruled out`, `pneumonia, resolved`).
const POST_NEGATIONS: &[&str] = &["ruled out", "resolved", "excluded", "negative", "unlikely"];

fn negated(text: &str) -> Option<&'static str> {
    let n = format!("{} ", normalize(text));
    PRE_NEGATIONS
        .iter()
        .find(|w| n.starts_with(&format!("{w} ")))
        .or_else(|| {
            POST_NEGATIONS
                .iter()
                .find(|w| format!(" {n}").contains(&format!(" {w} ")))
        })
        .copied()
}

fn code_regex() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    // A letter (or a digit OCR put for one) + 2 characters, optional dot + up to 4: the dot form
    // is required when the first character is a digit, so that `100` is never a code.
    RE.get_or_init(|| {
        Regex::new(
            r"\b([A-Z][0-9OIlSB][0-9A-Z](?:\.[0-9A-Z]{1,4})?|[0-9][0-9][0-9A-Z]\.[0-9A-Z]{1,4})\b",
        )
        .unwrap_or_else(|e| panic!("bad built-in regex: {e}"))
    })
}

/// The item without its number, label (`Principal:`), trailing comment (` - Counseled …`) and
/// code in parentheses.
fn item_text(s: &str) -> String {
    static LEAD: OnceLock<Regex> = OnceLock::new();
    let lead = LEAD.get_or_init(|| {
        Regex::new(r"^[^A-Za-z0-9]*(?:\d{1,2}[.)]\s*)?(?:(?i:principal|secondary|primary|chronic problem|problem)\s*:\s*)?")
            .unwrap_or_else(|e| panic!("bad built-in regex: {e}"))
    });
    let s = lead.replace(s, "");
    let s = s.split(" - ").next().unwrap_or(&s);
    let s = s.split(" — ").next().unwrap_or(s);
    let s = code_regex().replace_all(s, "");
    s.replace("()", "")
        .trim_matches(|c: char| !c.is_alphanumeric() && c != ')')
        .trim()
        .to_string()
}

pub(crate) fn extract(
    lines: &[PageLine<'_>],
    sections: &[Section],
) -> (Vec<ConditionMention>, Vec<String>) {
    let mut out: Vec<ConditionMention> = Vec::new();
    let mut skipped = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let words = line.words();
        let (in_section, start) = match heading(line) {
            Some((Section::Diagnoses, after)) if after < words.len() => (true, after),
            Some(_) => continue,
            None => (sections[i] == Section::Diagnoses, 0),
        };
        if !in_section {
            continue;
        }
        let raw = words[start..].join(" ");
        // Several diagnoses on one line are separated by semicolons.
        for part in raw.split(';') {
            let Some(mention) = item(part, line, start, words.len(), &mut skipped) else {
                continue;
            };
            if !out.iter().any(|c| c.icd10cm == mention.icd10cm) {
                out.push(mention);
            }
        }
    }
    (out, skipped)
}

fn item(
    raw: &str,
    line: &PageLine<'_>,
    start: usize,
    end: usize,
    skipped: &mut Vec<String>,
) -> Option<ConditionMention> {
    let table = icd10cm::table();
    if raw.trim().is_empty() {
        return None;
    }
    let description = item_text(raw);
    if let Some(w) = negated(&description) {
        skipped.push(format!(
            "diagnosis item skipped: '{w}' (page {})",
            line.page
        ));
        return None;
    }
    let by_text = table.match_description(&description, DESCRIPTION_MATCH);
    // A printed code, repaired for OCR slips. A code-like first word without a dot (`110` for
    // `I10`) is taken only when the description beside it agrees.
    let first = raw.split_whitespace().next().unwrap_or("");
    let printed = code_regex()
        .find_iter(raw)
        .find_map(|m| table.resolve_printed(m.as_str()))
        .or_else(|| {
            let hit = table.resolve_printed(first.trim_matches(|c: char| !c.is_alphanumeric()))?;
            by_text
                .as_ref()
                .is_some_and(|m| m.code == hit.0)
                .then_some(hit)
        });
    let mut source = line.source(start, end);
    let (code, display, code_printed) = match (printed, by_text) {
        (Some((code, desc, _)), Some(m)) => {
            if !m.code.starts_with(&code[..3]) {
                // Code and words disagree (a misread digit, or a note): the printed code wins
                // but the patient is asked.
                source.confidence = source.confidence.min(0.6);
            }
            (code.to_string(), desc.to_string(), true)
        }
        (Some((code, desc, _)), None) => (code.to_string(), desc.to_string(), true),
        (None, Some(m)) => {
            source.confidence *= m.score as f32;
            (m.code, m.display, false)
        }
        (None, None) => return None,
    };
    Some(ConditionMention {
        text: description,
        icd10cm: code,
        display,
        code_printed,
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn item_text_drops_numbering_labels_comments_and_codes() {
        assert_eq!(item_text("1. J02.9 - Acute pharyngitis, unspecified"), "");
        assert_eq!(
            item_text("2. Secondary: Unspecified asthma, uncomplicated"),
            "Unspecified asthma, uncomplicated"
        );
        assert_eq!(
            item_text(
                "4. Unspecified atrial fibrillation (148.91) - Counseled on lifestyle changes."
            ),
            "Unspecified atrial fibrillation"
        );
        assert_eq!(negated("Rule out pulmonary embolism"), Some("rule out"));
        assert_eq!(negated("Essential (primary) hypertension"), None);
    }
}
