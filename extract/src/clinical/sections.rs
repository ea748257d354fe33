//! Section headings: which part of the document each line is in.

use super::{DocumentKind, PageLine};
use crate::terminology::normalize;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Section {
    Header,
    Diagnoses,
    Medications,
    StoppedMedications,
    Allergies,
    Results,
    Vitals,
    /// History, complaint, course, plan, comments: narrative that names symptoms and negations,
    /// never a source of the patient's conditions.
    Narrative,
}

/// Heading phrases (normalised) and the section they open. Longest match wins.
const HEADINGS: &[(&str, Section)] = &[
    ("discharge diagnoses", Section::Diagnoses),
    ("discharge diagnosis", Section::Diagnoses),
    ("diagnoses", Section::Diagnoses),
    ("diagnosis", Section::Diagnoses),
    ("assessment and plan", Section::Diagnoses),
    ("assessment plan", Section::Diagnoses),
    ("assessment", Section::Diagnoses),
    ("impression", Section::Diagnoses),
    ("problem list", Section::Diagnoses),
    ("active problems", Section::Diagnoses),
    ("principal diagnosis", Section::Diagnoses),
    ("final diagnoses", Section::Diagnoses),
    ("your medication list", Section::Medications),
    ("medication list", Section::Medications),
    ("current medications", Section::Medications),
    ("active medications", Section::Medications),
    ("home medications", Section::Medications),
    ("discharge medications", Section::Medications),
    ("medications", Section::Medications),
    ("new", Section::Medications),
    ("new medications", Section::Medications),
    ("continue", Section::Medications),
    ("continue taking", Section::Medications),
    ("start taking", Section::Medications),
    ("changed", Section::Medications),
    ("stop taking", Section::StoppedMedications),
    ("stop", Section::StoppedMedications),
    ("stopped", Section::StoppedMedications),
    ("stopped medications", Section::StoppedMedications),
    ("discontinued", Section::StoppedMedications),
    ("discontinued medications", Section::StoppedMedications),
    ("inactive medications", Section::StoppedMedications),
    ("allergies", Section::Allergies),
    ("allergy", Section::Allergies),
    ("drug allergies", Section::Allergies),
    ("results reviewed", Section::Results),
    ("results", Section::Results),
    ("labs at discharge", Section::Results),
    ("recent labs", Section::Results),
    ("laboratory results", Section::Results),
    ("lab results", Section::Results),
    ("labs", Section::Results),
    ("vital signs", Section::Vitals),
    ("vitals", Section::Vitals),
    ("history of present illness", Section::Narrative),
    ("hpi", Section::Narrative),
    ("chief complaint", Section::Narrative),
    ("reason for visit", Section::Narrative),
    ("review of systems", Section::Narrative),
    ("family history", Section::Narrative),
    ("social history", Section::Narrative),
    ("past medical history", Section::Narrative),
    ("hospital course", Section::Narrative),
    ("physical exam", Section::Narrative),
    ("plan", Section::Narrative),
    ("follow up", Section::Narrative),
    ("comments", Section::Narrative),
    ("instructions", Section::Narrative),
    ("patient instructions", Section::Narrative),
    ("interpretation", Section::Narrative),
    ("notes", Section::Narrative),
];

/// If the line opens a section: the section and the index of the first word after the heading
/// (a heading may carry content: `Family history: father with …`, `Diagnosis (ICD-10): E55.9 …`).
pub(crate) fn heading(line: &PageLine<'_>) -> Option<(Section, usize)> {
    let words = line.words();
    // A photo's edge can put a stray mark before a heading (`Bs Discharge Diagnoses`).
    let lead = usize::from(
        words.len() > 1
            && words[0].chars().count() <= 2
            && !words[0].chars().any(|c| c.is_ascii_digit()),
    );
    heading_from(&words[lead..])
        .map(|(s, after)| (s, after + lead))
        .or_else(|| {
            if lead == 1 {
                heading_from(&words)
            } else {
                None
            }
        })
}

fn heading_from(words: &[&str]) -> Option<(Section, usize)> {
    let mut best: Option<(Section, usize, usize)> = None;
    for n in 1..=words.len().min(5) {
        let raw = words[..n].join(" ");
        let ends_with_colon = raw.trim_end().ends_with(':');
        let head = normalize(raw.split('(').next().unwrap_or(&raw));
        let Some((_, section)) = HEADINGS.iter().find(|(h, _)| *h == head) else {
            continue;
        };
        // A heading is the whole line, or ends with a colon (or a parenthesised qualifier then a
        // colon), or is written in capitals.
        let whole = n == words.len();
        let paren_colon = words.get(n..).is_some_and(|rest| {
            rest.iter()
                .position(|w| w.ends_with(':'))
                .is_some_and(|i| i < 3 && rest[..=i].join(" ").starts_with('('))
        });
        let caps = raw
            .chars()
            .filter(|c| c.is_alphabetic())
            .all(|c| c.is_uppercase())
            && n == words.len();
        if whole || ends_with_colon || caps || paren_colon {
            let mut after = n;
            if paren_colon && let Some(i) = words[n..].iter().position(|w| w.ends_with(':')) {
                after = n + i + 1;
            }
            if best.is_none_or(|(_, len, _)| head.len() > len) {
                best = Some((*section, head.len(), after));
            }
        }
    }
    best.map(|(s, _, after)| (s, after))
}

/// The section of every line (the header until the first heading). A heading with content on
/// its own line (`Family history: father with …`, `Diagnosis (ICD-10): E55.9 …`) covers that
/// line only; a title near the top (`LABORATORY RESULTS`) does not end the header.
pub(crate) fn classify(lines: &[PageLine<'_>]) -> Vec<Section> {
    let mut current = Section::Header;
    lines
        .iter()
        .enumerate()
        .map(|(i, l)| match heading(l) {
            Some((s, after)) if after < l.line.words.len() => s,
            Some((_, _))
                if current == Section::Header
                    && i < 10
                    && lines.iter().skip(i + 1).take(3).any(names_patient) =>
            {
                Section::Header
            }
            Some((s, _)) => {
                current = s;
                s
            }
            None => current,
        })
        .collect()
}

/// A title (`LABORATORY RESULTS`) above the patient block is not a section.
fn names_patient(l: &PageLine<'_>) -> bool {
    let t = format!(" {} ", normalize(&l.line.text()));
    [" patient ", " name ", " dob ", " mrn ", " date of birth "]
        .iter()
        .any(|k| t.contains(k))
}

/// The kind of document, from its title words near the top.
pub(crate) fn document_kind(lines: &[PageLine<'_>]) -> DocumentKind {
    let top: String = lines
        .iter()
        .take(8)
        .map(|l| normalize(&l.line.text()))
        .collect::<Vec<_>>()
        .join(" ");
    let has = |s: &str| top.contains(s);
    if has("discharge summary") {
        DocumentKind::DischargeSummary
    } else if has("medication list") || has("medication reconciliation") || has("medications list")
    {
        DocumentKind::MedicationList
    } else if has("visit") || has("progress note") || has("office note") || has("clinic note") {
        DocumentKind::VisitSummary
    } else if has("lab") || has("pathology") || has("report") || has("results") {
        DocumentKind::LabReport
    } else {
        DocumentKind::Unknown
    }
}
