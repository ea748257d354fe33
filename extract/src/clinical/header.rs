//! Header fields: `Label: value` pairs on a line, or a row of labels above a row of values
//! (portal prints), read wherever they appear before the first section.

use super::sections::{Section, heading};
use super::text::{find_date, parse_person};
use super::{DocumentKind, Field, Header, PageLine, Source};
use crate::terminology::normalize;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Label {
    Name,
    Dob,
    Sex,
    Mrn,
    Collected,
    Visit,
    Discharge,
    Admission,
    ListDate,
    Provider,
    /// Printed but not wanted (accession, received, PCP…): still delimits the previous value.
    Other,
}

const LABELS: &[(&str, Label)] = &[
    ("patient", Label::Name),
    ("patient name", Label::Name),
    ("name", Label::Name),
    ("member", Label::Name),
    ("dob", Label::Dob),
    ("d o b", Label::Dob),
    ("date of birth", Label::Dob),
    ("birth date", Label::Dob),
    ("birthdate", Label::Dob),
    ("sex", Label::Sex),
    ("gender", Label::Sex),
    ("mrn", Label::Mrn),
    ("mrn #", Label::Mrn),
    ("medical record", Label::Mrn),
    ("medical record #", Label::Mrn),
    ("medical record number", Label::Mrn),
    ("med rec #", Label::Mrn),
    ("chart", Label::Mrn),
    ("chart #", Label::Mrn),
    ("chart number", Label::Mrn),
    ("patient id", Label::Mrn),
    ("member id", Label::Mrn),
    ("record #", Label::Mrn),
    ("collected", Label::Collected),
    ("collection date", Label::Collected),
    ("date collected", Label::Collected),
    ("specimen collected", Label::Collected),
    ("collection", Label::Collected),
    ("visit date", Label::Visit),
    ("date of visit", Label::Visit),
    ("date of service", Label::Visit),
    ("dos", Label::Visit),
    ("encounter date", Label::Visit),
    ("discharge date", Label::Discharge),
    ("date of discharge", Label::Discharge),
    ("discharged", Label::Discharge),
    ("admission date", Label::Admission),
    ("admit date", Label::Admission),
    ("date of admission", Label::Admission),
    ("admitted", Label::Admission),
    ("date", Label::ListDate),
    ("list date", Label::ListDate),
    ("date reviewed", Label::ListDate),
    ("ordering physician", Label::Provider),
    ("ordering provider", Label::Provider),
    ("ordered by", Label::Provider),
    ("physician", Label::Provider),
    ("provider", Label::Provider),
    ("attending", Label::Provider),
    ("attending physician", Label::Provider),
    ("reviewed by", Label::Provider),
    ("seen by", Label::Provider),
    ("clinician", Label::Provider),
    ("doctor", Label::Provider),
    ("received", Label::Other),
    ("reported", Label::Other),
    ("accession", Label::Other),
    ("accession #", Label::Other),
    ("account", Label::Other),
    ("account #", Label::Other),
    ("encounter", Label::Other),
    ("encounter #", Label::Other),
    ("pcp", Label::Other),
    ("primary care", Label::Other),
    ("fasting", Label::Other),
    ("age", Label::Other),
    ("phone", Label::Other),
    ("fax", Label::Other),
    ("clia", Label::Other),
    ("clia #", Label::Other),
    ("room", Label::Other),
    ("specimen", Label::Other),
    ("page", Label::Other),
    ("printed", Label::Other),
    ("lab director", Label::Other),
    ("diagnosis", Label::Other),
];

fn label_of(words: &[&str]) -> Option<Label> {
    // `#` is dropped by normalising, so `Chart #` and `Chart` are one label.
    let k = normalize(&words.join(" "));
    LABELS
        .iter()
        .find(|(l, _)| l.trim_end_matches(" #") == k)
        .map(|(_, label)| *label)
}

/// A label starting at word `i`: its kind and how many words it spans. `colon`: the label must
/// end with a colon (inline pairs); else it must be a whole known label (label rows).
fn label_at(words: &[&str], i: usize, colon: bool) -> Option<(Label, usize)> {
    for n in (1..=4.min(words.len() - i)).rev() {
        let span = &words[i..i + n];
        let last = span[n - 1];
        if colon && !last.ends_with(':') {
            continue;
        }
        let mut cleaned: Vec<&str> = span.to_vec();
        let trimmed = last.trim_end_matches(':');
        cleaned[n - 1] = trimmed;
        if cleaned[n - 1].is_empty() {
            cleaned.pop();
            if cleaned.is_empty() {
                continue;
            }
        }
        if let Some(label) = label_of(&cleaned) {
            return Some((label, n));
        }
    }
    // An unknown `Something:` still ends the value before it.
    let w = words[i];
    (colon && w.len() > 1 && w.ends_with(':') && w.chars().all(|c| c.is_alphabetic() || c == ':'))
        .then_some((Label::Other, 1))
}

struct Pair<'a> {
    label: Label,
    value: Vec<&'a str>,
    source: Source,
}

fn inline_pairs<'a>(line: &PageLine<'a>) -> Vec<Pair<'a>> {
    let words: Vec<&'a str> = line.line.words.iter().map(|w| w.text.as_str()).collect();
    let mut starts = Vec::new();
    let mut i = 0;
    while i < words.len() {
        if let Some((label, n)) = label_at(&words, i, true) {
            starts.push((i, label, n));
            i += n;
        } else {
            i += 1;
        }
    }
    let mut out = Vec::new();
    for (k, &(i, label, n)) in starts.iter().enumerate() {
        let end = starts.get(k + 1).map(|s| s.0).unwrap_or(words.len());
        if i + n < end {
            out.push(Pair {
                label,
                value: words[i + n..end].to_vec(),
                source: line.source(i + n, end),
            });
        }
    }
    out
}

/// A row of bare labels (`Patient  DOB  Sex`) over a row of values: each value word goes to the
/// label whose column starts at or left of it.
fn column_pairs<'a>(labels: &PageLine<'a>, values: &PageLine<'a>) -> Vec<Pair<'a>> {
    let words: Vec<&str> = labels.words();
    let mut cols: Vec<(u32, Label)> = Vec::new();
    let mut i = 0;
    while i < words.len() {
        match label_at(&words, i, false) {
            Some((label, n)) => {
                cols.push((labels.line.words[i].bbox.x, label));
                i += n;
            }
            None => return Vec::new(),
        }
    }
    if cols.len() < 2 {
        return Vec::new();
    }
    let tolerance = labels.line.text_height() * 2;
    let mut grouped: Vec<(Label, Vec<usize>)> =
        cols.iter().map(|(_, l)| (*l, Vec::new())).collect();
    for (wi, w) in values.line.words.iter().enumerate() {
        let col = cols
            .iter()
            .rposition(|(x, _)| *x <= w.bbox.x + tolerance)
            .unwrap_or(0);
        grouped[col].1.push(wi);
    }
    grouped
        .into_iter()
        .filter(|(_, idx)| !idx.is_empty())
        .map(|(label, idx)| {
            let (from, to) = (idx[0], idx[idx.len() - 1] + 1);
            Pair {
                label,
                value: values.line.words[from..to]
                    .iter()
                    .map(|w| w.text.as_str())
                    .collect(),
                source: values.source(from, to),
            }
        })
        .collect()
}

pub(crate) fn extract(lines: &[PageLine<'_>], sections: &[Section], kind: DocumentKind) -> Header {
    let mut pairs = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        // Header fields are printed before the first section; a footer repeats some as noise.
        if sections[i] != Section::Header {
            if heading(line).is_some_and(|(_, after)| after < line.line.words.len()) {
                continue;
            }
            break;
        }
        let inline = inline_pairs(line);
        if inline.is_empty()
            && let Some(next) = lines.get(i + 1)
        {
            pairs.extend(column_pairs(line, next));
        }
        pairs.extend(inline);
    }
    let mut h = Header::default();
    let mut list_date = None;
    let mut collected = None;
    let mut visit = None;
    let mut discharge = None;
    for p in pairs {
        let text = p.value.join(" ");
        let text = text.trim_matches(|c: char| c == '|' || c == ':' || c.is_whitespace());
        let date = || {
            find_date(text).map(|(d, _)| Field {
                value: d,
                source: p.source.clone(),
            })
        };
        match p.label {
            Label::Name if h.patient.is_none() => {
                // `Prescott, Ingrid P.` possibly followed by a DOB on the same cell.
                let name_part = find_date(text)
                    .map(|(_, r)| &text[..r.start])
                    .unwrap_or(text);
                h.patient = parse_person(name_part).map(|value| Field {
                    value,
                    source: p.source.clone(),
                });
            }
            Label::Dob if h.birth_date.is_none() => h.birth_date = date(),
            Label::Sex if h.sex.is_none() => {
                let v = text.split_whitespace().next().unwrap_or("").to_lowercase();
                let sex = match v.chars().next() {
                    Some('f') => Some("female"),
                    Some('m') => Some("male"),
                    _ => None,
                };
                h.sex = sex.map(|s| Field {
                    value: s.to_string(),
                    source: p.source.clone(),
                });
            }
            Label::Mrn if h.mrn.is_none() => {
                let id = text
                    .split_whitespace()
                    .next()
                    .unwrap_or("")
                    .trim_matches(|c: char| !c.is_alphanumeric());
                if id.chars().any(|c| c.is_ascii_digit()) {
                    h.mrn = Some(Field {
                        value: id.to_string(),
                        source: p.source.clone(),
                    });
                }
            }
            Label::Collected if collected.is_none() => collected = date(),
            Label::Visit if visit.is_none() => visit = date(),
            Label::Discharge if discharge.is_none() => discharge = date(),
            Label::Admission if h.admission_date.is_none() => h.admission_date = date(),
            Label::ListDate if list_date.is_none() => list_date = date(),
            Label::Provider if h.provider.is_none() => {
                h.provider = parse_person(text).map(|value| Field {
                    value,
                    source: p.source.clone(),
                });
            }
            _ => {}
        }
    }
    h.date = match kind {
        DocumentKind::DischargeSummary => discharge.or(visit).or(list_date).or(collected),
        DocumentKind::LabReport => collected.or(list_date).or(visit),
        _ => visit.or(discharge).or(collected).or(list_date),
    };
    h.organization = lines.first().map(|l| {
        // The letterhead: the top line, up to a phone number or a document title.
        let words = l.words();
        let end = words
            .iter()
            .position(|w| w.starts_with('(') || w.chars().filter(char::is_ascii_digit).count() > 2)
            .unwrap_or(words.len());
        Field {
            value: words[..end].join(" "),
            source: l.source(0, end),
        }
    });
    h
}
