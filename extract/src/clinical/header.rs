//! Header fields, whatever the layout: `Label: value` pairs, grid cells (`Patient | value |
//! DOB | value`, no colons), a row of labels above a row of values, a letter's `RE:` line and
//! signature, and the collection date a letter names in its text.
//!
//! Lines are split into **cells** at gaps wider than a word space (a grid cell, a tab stop);
//! labels come from one vocabulary, matched on normalised words with one OCR slip allowed on
//! longer labels. A bare label (no colon) counts only as a whole cell, so `PATIENT REPORT` or
//! `Patient was admitted` never reads as a label; a label ending with a colon counts anywhere.

use super::sections::{Section, heading};
use super::text::{find_date, parse_person};
use super::{DocumentKind, Field, Header, PageLine, Source};
use crate::terminology::normalize;
use chrono::NaiveDate;

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
    /// A second-choice provider (PCP, referring): used when no ordering/attending one is named.
    OtherProvider,
    /// The date a report or letter was issued: the document date only when nothing better is.
    Reported,
    /// Printed but not wanted (accession, received…): still ends the value before it.
    Other,
}

/// Normalised label words (see [`normalize`]) and what they label.
const LABELS: &[(&str, Label)] = &[
    ("patient", Label::Name),
    ("patient name", Label::Name),
    ("name", Label::Name),
    ("pt name", Label::Name),
    ("patient s name", Label::Name),
    ("member", Label::Name),
    ("member name", Label::Name),
    ("re", Label::Name),
    ("regarding", Label::Name),
    ("dob", Label::Dob),
    ("d o b", Label::Dob),
    ("date of birth", Label::Dob),
    ("birth date", Label::Dob),
    ("birthdate", Label::Dob),
    ("born", Label::Dob),
    ("sex", Label::Sex),
    ("gender", Label::Sex),
    ("mrn", Label::Mrn),
    ("medical record", Label::Mrn),
    ("medical record no", Label::Mrn),
    ("medical record number", Label::Mrn),
    ("med rec", Label::Mrn),
    ("med rec no", Label::Mrn),
    ("chart", Label::Mrn),
    ("chart no", Label::Mrn),
    ("chart number", Label::Mrn),
    ("patient id", Label::Mrn),
    ("patient no", Label::Mrn),
    ("patient number", Label::Mrn),
    ("member id", Label::Mrn),
    ("member no", Label::Mrn),
    ("member number", Label::Mrn),
    ("hospital no", Label::Mrn),
    ("hospital number", Label::Mrn),
    ("hosp no", Label::Mrn),
    ("unit no", Label::Mrn),
    ("record", Label::Mrn),
    ("record no", Label::Mrn),
    ("collected", Label::Collected),
    ("collected on", Label::Collected),
    ("collection date", Label::Collected),
    ("collection", Label::Collected),
    ("date collected", Label::Collected),
    ("date of collection", Label::Collected),
    ("specimen collected", Label::Collected),
    ("sample collected", Label::Collected),
    ("sample date", Label::Collected),
    ("specimen date", Label::Collected),
    ("drawn", Label::Collected),
    ("date drawn", Label::Collected),
    ("visit date", Label::Visit),
    ("date of visit", Label::Visit),
    ("date of service", Label::Visit),
    ("service date", Label::Visit),
    ("dos", Label::Visit),
    ("encounter date", Label::Visit),
    ("appointment date", Label::Visit),
    ("seen on", Label::Visit),
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
    ("reviewed", Label::ListDate),
    ("as of", Label::ListDate),
    ("ordering physician", Label::Provider),
    ("ordering provider", Label::Provider),
    ("ordering clinician", Label::Provider),
    ("ordering doctor", Label::Provider),
    ("ordered by", Label::Provider),
    ("requesting clinician", Label::Provider),
    ("requesting physician", Label::Provider),
    ("requesting doctor", Label::Provider),
    ("requested by", Label::Provider),
    ("physician", Label::Provider),
    ("provider", Label::Provider),
    ("attending", Label::Provider),
    ("attending physician", Label::Provider),
    ("consultant", Label::Provider),
    ("reviewed by", Label::Provider),
    ("seen by", Label::Provider),
    ("clinician", Label::Provider),
    ("doctor", Label::Provider),
    ("treating physician", Label::Provider),
    ("prescriber", Label::Provider),
    ("referring physician", Label::OtherProvider),
    ("referring", Label::OtherProvider),
    ("referred by", Label::OtherProvider),
    ("pcp", Label::OtherProvider),
    ("primary care", Label::OtherProvider),
    ("primary care physician", Label::OtherProvider),
    ("received", Label::Other),
    ("date received", Label::Other),
    ("reported", Label::Reported),
    ("report date", Label::Reported),
    ("date reported", Label::Reported),
    ("report issued", Label::Reported),
    ("issued", Label::Reported),
    ("printed", Label::Other),
    ("accession", Label::Other),
    ("accession no", Label::Other),
    ("lab no", Label::Other),
    ("specimen no", Label::Other),
    ("account", Label::Other),
    ("account no", Label::Other),
    ("acct", Label::Other),
    ("encounter", Label::Other),
    ("encounter no", Label::Other),
    ("fasting", Label::Other),
    ("age", Label::Other),
    ("phone", Label::Other),
    ("tel", Label::Other),
    ("fax", Label::Other),
    ("clia", Label::Other),
    ("room", Label::Other),
    ("ward", Label::Other),
    ("bed", Label::Other),
    ("specimen", Label::Other),
    ("specimen type", Label::Other),
    ("page", Label::Other),
    ("lab director", Label::Other),
    ("diagnosis", Label::Other),
    ("insurance", Label::Other),
    ("location", Label::Other),
    ("department", Label::Other),
    ("status", Label::Other),
];

/// Normalises a label candidate: `Hospital No.:` → `hospital no`, `Medical Record #` →
/// `medical record`, `Patient's` → `patient s`.
fn key(words: &[&str]) -> String {
    let k = normalize(&words.join(" "));
    k.strip_suffix(" number")
        .filter(|_| !LABELS.iter().any(|(l, _)| *l == k))
        .map(|s| format!("{s} no"))
        .unwrap_or(k)
}

fn label_of(words: &[&str]) -> Option<Label> {
    let k = key(words);
    if k.is_empty() {
        return None;
    }
    if let Some((_, l)) = LABELS.iter().find(|(l, _)| *l == k) {
        return Some(*l);
    }
    // One OCR slip (`Coliected`, `Physlcian`, `Patent` with its `i` lost) on labels long
    // enough not to collide.
    (k.len() >= 6)
        .then(|| {
            LABELS
                .iter()
                .find(|(l, _)| l.len() >= 7 && strsim::levenshtein(l, &k) == 1)
                .map(|(_, l)| *l)
        })
        .flatten()
}

/// The word ranges of a line's cells: words separated by more than a word space.
fn cells(line: &PageLine<'_>) -> Vec<std::ops::Range<usize>> {
    let words = &line.line.words;
    let h = line.line.text_height().max(1);
    let mut out = Vec::new();
    let mut start = 0;
    for i in 1..words.len() {
        let gap = words[i].bbox.x.saturating_sub(words[i - 1].bbox.right());
        if gap * 10 > h * 9 {
            out.push(start..i);
            start = i;
        }
    }
    if !words.is_empty() {
        out.push(start..words.len());
    }
    out
}

/// A label at word `i` of `words` (within one cell): its kind and span. `bare`: the label
/// may lack a colon (it then has to fill the rest of the cell).
fn label_at(words: &[&str], i: usize, bare: bool) -> Option<(Label, usize)> {
    for n in (1..=5.min(words.len() - i)).rev() {
        let span = &words[i..i + n];
        let last = span[n - 1];
        let colon = last.ends_with(':');
        let whole = i + n == words.len();
        if !(colon || bare && whole) {
            continue;
        }
        if let Some(label) = label_of(span) {
            return Some((label, n));
        }
    }
    // An unknown `Something:` still ends the value before it.
    let w = words[i];
    (w.chars().count() > 2
        && w.ends_with(':')
        && w.trim_end_matches(':').chars().all(char::is_alphabetic))
    .then_some((Label::Other, 1))
}

struct Pair {
    label: Label,
    value: String,
    source: Source,
}

struct Found {
    label: Label,
    /// Word index where the label starts and where its value starts.
    at: usize,
    value_from: usize,
}

/// Labels found on a line, in order, with where each value begins.
fn labels_on(line: &PageLine<'_>) -> Vec<Found> {
    let words = line.words();
    let mut out = Vec::new();
    for cell in cells(line) {
        let cw = &words[cell.clone()];
        let mut i = 0;
        while i < cw.len() {
            match label_at(cw, i, i == 0) {
                Some((label, n)) => {
                    out.push(Found {
                        label,
                        at: cell.start + i,
                        value_from: cell.start + i + n,
                    });
                    i += n;
                }
                None => i += 1,
            }
        }
    }
    out
}

/// `label value` pairs on one line: a value runs to the next label (or the end of the line),
/// and a label whose cell holds no value takes the next cell.
fn inline_pairs(line: &PageLine<'_>) -> Vec<Pair> {
    let words = line.words();
    let found = labels_on(line);
    let mut out = Vec::new();
    for (k, f) in found.iter().enumerate() {
        let end = found.get(k + 1).map(|n| n.at).unwrap_or(words.len());
        if f.value_from < end {
            out.push(Pair {
                label: f.label,
                value: words[f.value_from..end].join(" "),
                source: line.source(f.value_from, end),
            });
        }
    }
    out
}

/// A row of bare labels (`Patient  DOB  Sex`) over a row of values: each value cell goes to
/// the label whose column starts nearest at or left of it.
fn column_pairs(labels: &PageLine<'_>, values: &PageLine<'_>) -> Vec<Pair> {
    let words = labels.words();
    let found = labels_on(labels);
    let all_labels = found.len() >= 2
        && found
            .iter()
            .all(|f| f.value_from == words.len() || found.iter().any(|g| g.at == f.value_from));
    if !all_labels || !labels_on(values).is_empty() {
        return Vec::new();
    }
    let cols: Vec<(u32, Label)> = found
        .iter()
        .map(|f| (labels.line.words[f.at].bbox.x, f.label))
        .collect();
    let tolerance = labels.line.text_height() * 2;
    let vwords = values.words();
    let mut grouped: Vec<(Label, Vec<usize>)> = cols.iter().map(|(_, l)| (*l, vec![])).collect();
    let value_cells = cells(values);
    // As many value cells as labels: one each, in order (robust to a value printed wider than
    // its label or shifted by a photo's perspective); else by column position.
    let same_count = value_cells.len() == cols.len();
    for (k, cell) in value_cells.into_iter().enumerate() {
        let x = values.line.words[cell.start].bbox.x;
        let col = if same_count {
            k
        } else {
            cols.iter()
                .rposition(|(cx, _)| *cx <= x + tolerance)
                .unwrap_or(0)
        };
        grouped[col].1.extend(cell);
    }
    grouped
        .into_iter()
        .filter(|(_, idx)| !idx.is_empty())
        .map(|(label, idx)| {
            let (from, to) = (idx[0], idx[idx.len() - 1] + 1);
            Pair {
                label,
                value: vwords[from..to].join(" "),
                source: values.source(from, to),
            }
        })
        .collect()
}

/// A person's name from a header value: up to a date or a parenthesis, with at least one given
/// name and letters only (a heading word or an id is not a name).
fn person(text: &str) -> Option<super::PersonName> {
    let end = [
        find_date(text).map(|(_, r)| r.start),
        text.find('('),
        text.find(|c: char| c.is_ascii_digit()),
    ]
    .into_iter()
    .flatten()
    .min()
    .unwrap_or(text.len());
    let name = text[..end].trim();
    let p = parse_person(name)?;
    let letters = |s: &str| s.chars().all(|c| c.is_alphabetic() || "-'. ".contains(c));
    (letters(&p.family) && p.given.iter().all(|g| letters(g))).then_some(p)
}

fn sex_of(text: &str) -> Option<&'static str> {
    let v = normalize(text);
    let first = v.split_whitespace().next().unwrap_or("");
    match first {
        "f" | "female" | "woman" => Some("female"),
        "m" | "male" | "man" => Some("male"),
        _ => None,
    }
}

fn mrn_of(text: &str) -> Option<String> {
    let id = text
        .split_whitespace()
        .next()
        .unwrap_or("")
        .trim_matches(|c: char| !c.is_alphanumeric());
    (id.len() >= 4 && id.chars().filter(char::is_ascii_digit).count() >= 3).then(|| id.to_string())
}

/// Which lines to read pairs from: the block before the first section, and any later line that
/// carries two or more labelled pairs (a demographics band below a logo, a footer with the MRN
/// repeated is harmless: the first value wins).
fn header_lines(lines: &[PageLine<'_>], sections: &[Section]) -> Vec<usize> {
    let mut out = Vec::new();
    let mut in_header = true;
    for (i, line) in lines.iter().enumerate() {
        if in_header && sections[i] != Section::Header {
            in_header = heading(line).is_some_and(|(_, after)| after < line.line.words.len());
        }
        if in_header || i < 12 || labels_on(line).len() >= 2 {
            out.push(i);
        }
    }
    out
}

/// `collected on 06-JAN-2023`, `samples drawn on …`: a collection date written in a letter.
fn collection_in_text(lines: &[PageLine<'_>]) -> Option<Field<NaiveDate>> {
    for line in lines {
        let text = line.line.text();
        let lower = text.to_lowercase();
        for cue in ["collected on", "drawn on", "collected", "drawn"] {
            if let Some(at) = lower.find(cue) {
                let after = &text[at + cue.len()..];
                if let Some((d, r)) = find_date(after)
                    && r.start <= 4
                {
                    return Some(Field {
                        value: d,
                        source: line.source(0, line.line.words.len()),
                    });
                }
            }
        }
    }
    None
}

/// The name under `Sincerely,` / `Regards,` (a letter's author), or after `Electronically
/// signed:` / `Signed by:`.
fn signer(lines: &[PageLine<'_>]) -> Option<Field<super::PersonName>> {
    for (i, line) in lines.iter().enumerate() {
        let t = normalize(&line.line.text());
        let closing = [
            "sincerely",
            "regards",
            "kind regards",
            "best regards",
            "yours sincerely",
        ];
        if closing.contains(&t.as_str())
            && let Some(next) = lines.get(i + 1)
            && let Some(p) = person(&next.line.text())
        {
            return Some(Field {
                value: p,
                source: next.source(0, next.line.words.len()),
            });
        }
    }
    None
}

fn at<T>(value: T, source: &Source) -> Field<T> {
    Field {
        value,
        source: source.clone(),
    }
}

pub(crate) fn extract(lines: &[PageLine<'_>], sections: &[Section], kind: DocumentKind) -> Header {
    let rows = header_lines(lines, sections);
    let mut pairs = Vec::new();
    for (k, &i) in rows.iter().enumerate() {
        let inline = inline_pairs(&lines[i]);
        let next = rows.get(k + 1).filter(|&&n| n == i + 1);
        let column = next
            .map(|&n| column_pairs(&lines[i], &lines[n]))
            .unwrap_or_default();
        if column.is_empty() {
            pairs.extend(inline);
        } else {
            pairs.extend(column);
        }
    }
    let mut h = Header::default();
    let mut dates: Vec<(Label, Field<NaiveDate>)> = Vec::new();
    let mut other_provider = None;
    for p in pairs {
        let text = p
            .value
            .trim_matches(|c: char| c == '|' || c == ':' || c.is_whitespace());
        let src = &p.source;
        match p.label {
            Label::Name if h.patient.is_none() => h.patient = person(text).map(|v| at(v, src)),
            Label::Dob if h.birth_date.is_none() => {
                h.birth_date = find_date(text).map(|(d, _)| at(d, src))
            }
            Label::Sex if h.sex.is_none() => h.sex = sex_of(text).map(|s| at(s.to_string(), src)),
            Label::Mrn if h.mrn.is_none() => h.mrn = mrn_of(text).map(|v| at(v, src)),
            Label::Provider if h.provider.is_none() => {
                h.provider = person(text).map(|v| at(v, src))
            }
            Label::OtherProvider if other_provider.is_none() => {
                other_provider = person(text).map(|v| at(v, src))
            }
            Label::Collected
            | Label::Visit
            | Label::Discharge
            | Label::Admission
            | Label::ListDate
            | Label::Reported => {
                if let Some((d, _)) = find_date(text)
                    && !dates.iter().any(|(l, _)| *l == p.label)
                {
                    dates.push((p.label, at(d, src)));
                }
            }
            _ => {}
        }
    }
    if h.provider.is_none() {
        h.provider = signer(lines).or(other_provider);
    }
    // Plausibility: a birth date is before every clinical date.
    if let Some(b) = &h.birth_date {
        let born = b.value;
        dates.retain(|(_, d)| d.value > born);
    }
    let take = |label: Label, dates: &mut Vec<(Label, Field<NaiveDate>)>| {
        dates
            .iter()
            .position(|(l, _)| *l == label)
            .map(|i| dates.remove(i).1)
    };
    let admission = take(Label::Admission, &mut dates);
    let collected = take(Label::Collected, &mut dates).or_else(|| {
        (kind == DocumentKind::LabReport)
            .then(|| collection_in_text(lines))
            .flatten()
    });
    let visit = take(Label::Visit, &mut dates);
    let discharge = take(Label::Discharge, &mut dates);
    let listed = take(Label::ListDate, &mut dates);
    let reported = take(Label::Reported, &mut dates);
    h.date = match kind {
        DocumentKind::DischargeSummary => discharge.or(visit).or(listed).or(collected),
        DocumentKind::LabReport => collected.or(visit).or(listed).or(reported),
        _ => visit.or(discharge).or(listed).or(collected).or(reported),
    };
    h.admission_date = admission;
    h.organization = lines.first().map(|l| {
        // The letterhead: the top line, up to a phone number or a document title.
        let words = l.words();
        let first_cell = cells(l).first().map(|c| c.end).unwrap_or(words.len());
        let end = words
            .iter()
            .position(|w| w.starts_with('(') || w.chars().filter(char::is_ascii_digit).count() > 2)
            .unwrap_or(words.len())
            .min(first_cell);
        Field {
            value: words[..end].join(" "),
            source: l.source(0, end),
        }
    });
    h
}
