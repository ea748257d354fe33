//! Medications: in medication sections, a line that starts with a known drug (generic or brand),
//! then its strength, form and directions; directions printed on the next line are joined.
//! Drugs under `Discontinued` / `STOP taking` are stopped; allergies are never medications.

use super::sections::{Section, heading};
use super::text::find_date;
use super::{MedicationMention, MedicationState, PageLine};
use crate::terminology::rxnorm;
use regex::Regex;
use std::sync::OnceLock;

const FORMS: &[&str] = &[
    "orally disintegrating tablet",
    "extended release tablet",
    "delayed release capsule",
    "chewable tablet",
    "hfa inhaler",
    "pen injector",
    "nasal spray",
    "inhalation powder",
    "oral solution",
    "oral suspension",
    "eye drops",
    "ophthalmic solution",
    "transdermal patch",
    "tablet",
    "tablets",
    "capsule",
    "capsules",
    "inhaler",
    "pen",
    "injection",
    "solution",
    "suspension",
    "cream",
    "ointment",
    "gel",
    "patch",
    "drops",
    "spray",
    "suppository",
    "syrup",
    "lozenge",
    "powder",
    "softgel",
    "vial",
];

const SIG_VERBS: &[&str] = &[
    "take", "inhale", "inject", "apply", "use", "dissolve", "instill", "place", "chew", "spray",
    "insert", "give", "swallow", "dilute", "mix",
];

fn strength_regex() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(r"(?i)\b\d+(?:\.\d+)?(?:\s*-\s*\d+(?:\.\d+)?)?\s*(?:mg|mcg|g|ml|units?|iu|meq|%)(?:\s*/\s*(?:\d+(?:\.\d+)?\s*)?(?:ml|actuation|act|spray|hr|h|dose|g))?\b")
            .unwrap_or_else(|e| panic!("bad built-in regex: {e}"))
    })
}

fn is_sig_start(word: &str) -> bool {
    let w = word
        .trim_matches(|c: char| !c.is_alphabetic())
        .to_lowercase();
    SIG_VERBS.contains(&w.as_str())
}

pub(crate) fn extract(
    lines: &[PageLine<'_>],
    sections: &[Section],
) -> (Vec<MedicationMention>, Vec<String>) {
    let drugs = rxnorm::table();
    let mut out: Vec<MedicationMention> = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let state = match sections[i] {
            Section::Medications => MedicationState::Active,
            Section::StoppedMedications => MedicationState::Stopped,
            _ => continue,
        };
        let words = line.words();
        let start = heading(line).map(|(_, after)| after).unwrap_or(0);
        if start >= words.len() {
            continue;
        }
        // Directions on their own line belong to the drug above.
        if is_sig_start(words[start]) {
            if let Some(last) = out.last_mut()
                && last.sig.is_none()
            {
                last.sig = Some(clean_sig(&words[start..].join(" ")));
            }
            continue;
        }
        // Skip bullets and marks a photo's edge adds before the name.
        let found = (start..(start + 3).min(words.len())).find_map(|s| {
            if s > start && words[s - 1].chars().filter(|c| c.is_alphanumeric()).count() > 2 {
                return None;
            }
            drugs
                .lookup_prefix(&words[s..])
                .map(|(d, n, score)| (s, d, n, score))
        });
        let Some((from, drug, n, score)) = found else {
            continue;
        };
        let rest = words[from + n..].join(" ");
        let strength = strength_regex().find(&rest).map(|m| m.as_str().to_string());
        let rest_lower = rest.to_lowercase();
        let form = FORMS
            .iter()
            .filter_map(|f| rest_lower.find(f).map(|at| (at, *f)))
            .min_by_key(|(at, f)| (*at, usize::MAX - f.len()))
            .map(|(_, f)| f.to_string());
        let sig = sig_of(&rest);
        let mut source = line.source(from, words.len());
        source.confidence *= score as f32;
        if drug.rxcui.is_none() {
            source.confidence = source.confidence.min(0.8);
        }
        let text = match &sig {
            Some(s) => rest
                .split(s.as_str())
                .next()
                .unwrap_or(&rest)
                .trim()
                .trim_end_matches(['-', '—'])
                .trim()
                .to_string(),
            None => rest.trim().to_string(),
        };
        let text = format!("{} {}", words[from..from + n].join(" "), text)
            .trim()
            .to_string();
        if out
            .iter()
            .any(|m| m.ingredient == drug.ingredient && m.state == state)
        {
            continue;
        }
        out.push(MedicationMention {
            text,
            ingredient: drug.ingredient.to_string(),
            rxcui: drug.rxcui.map(str::to_string),
            strength,
            form,
            sig,
            state,
            source,
        });
    }
    // A drug both listed and stopped (a reconciliation) is stopped.
    let stopped: Vec<String> = out
        .iter()
        .filter(|m| m.state == MedicationState::Stopped)
        .map(|m| m.ingredient.clone())
        .collect();
    out.retain(|m| m.state == MedicationState::Stopped || !stopped.contains(&m.ingredient));
    (out, Vec::new())
}

/// The directions: after ` - `, or from the first sig verb; a trailing start date and prescriber
/// (medication-list tables) cut off.
fn sig_of(rest: &str) -> Option<String> {
    let from = rest.find(" - ").map(|i| i + 3).or_else(|| {
        rest.split_whitespace()
            .position(is_sig_start)
            .and_then(|k| rest.split_whitespace().nth(k))
            .and_then(|w| rest.find(w))
    })?;
    let sig = clean_sig(&rest[from..]);
    (!sig.is_empty()).then_some(sig)
}

fn clean_sig(s: &str) -> String {
    let s = match find_date(s) {
        Some((_, r)) => &s[..r.start],
        None => s,
    };
    s.trim_matches(|c: char| c.is_whitespace() || c == '‘' || c == '\'' || c == '"')
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directions_are_cut_from_dates_and_prescribers() {
        assert_eq!(
            sig_of("tablet 500mg ‘Take 1 tablet by mouth twice daily with meals 02-18-2023 Quinlan, Anika PA-C").as_deref(),
            Some("Take 1 tablet by mouth twice daily with meals")
        );
        assert_eq!(
            sig_of("500 mg capsule - Take 1 capsule by mouth twice daily for 10 days").as_deref(),
            Some("Take 1 capsule by mouth twice daily for 10 days")
        );
        assert_eq!(
            strength_regex()
                .find("160-4.5 mcg/actuation inhaler")
                .map(|m| m.as_str()),
            Some("160-4.5 mcg/actuation")
        );
    }
}
