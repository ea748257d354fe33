//! Clinical extraction over a [`Layout`]: the header (patient, dates, provider), lab results,
//! diagnoses and medications, each with a confidence and the page region it came from.
//!
//! General methods, not per-layout rules: lines are classified by section headings; header
//! fields are read as `label: value` pairs or as a row of labels above a row of values (aligned
//! by x); results are read from any line that starts with a known analyte name, by classifying
//! the tokens after it (value, unit, range, flag) in whatever order they are printed; names and
//! units are matched against the terminology tables with OCR slips folded and fuzzy matching.

mod conditions;
mod header;
mod labs;
mod medications;
pub mod nlp;
mod sections;
pub mod text;

use crate::layout::{BBox, Layout, Line};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
pub use text::PersonName;

/// Where a field was read: page and box, and how sure we are (0–1).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Source {
    pub page: u32,
    pub bbox: BBox,
    pub confidence: f32,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Field<T> {
    pub value: T,
    #[serde(flatten)]
    pub source: Source,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DocumentKind {
    LabReport,
    VisitSummary,
    MedicationList,
    DischargeSummary,
    Unknown,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Header {
    pub patient: Option<Field<PersonName>>,
    pub birth_date: Option<Field<NaiveDate>>,
    pub sex: Option<Field<String>>,
    /// Medical record / member number as printed.
    pub mrn: Option<Field<String>>,
    /// The document's clinical date: collection (labs), visit, list, or discharge date.
    pub date: Option<Field<NaiveDate>>,
    pub admission_date: Option<Field<NaiveDate>>,
    /// Ordering / seeing / reviewing / attending provider.
    pub provider: Option<Field<PersonName>>,
    /// The lab, clinic or hospital named at the top of the page.
    pub organization: Option<Field<String>>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum LabValue {
    Quantity {
        value: f64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        comparator: Option<String>,
    },
    Text {
        text: String,
    },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LabResult {
    pub name_as_printed: String,
    pub loinc: String,
    pub display: String,
    pub value: LabValue,
    /// The value exactly as printed (`<0.5`, `1.97`).
    pub value_text: String,
    pub unit_as_printed: Option<String>,
    pub ucum: Option<String>,
    pub ref_low: Option<f64>,
    pub ref_high: Option<f64>,
    pub ref_text: Option<String>,
    /// `H`, `L`, `A` (abnormal) as printed or derived.
    pub flag: Option<String>,
    /// The date of this result when its section names one (results reviewed on …).
    pub date: Option<NaiveDate>,
    #[serde(flatten)]
    pub source: Source,
    /// Why confidence is lowered, for the reviewer (`value repaired`, `unit missing`…).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConditionMention {
    pub text: String,
    pub icd10cm: String,
    pub display: String,
    /// Whether the code was printed (else mapped from the description).
    pub code_printed: bool,
    #[serde(flatten)]
    pub source: Source,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MedicationState {
    Active,
    Stopped,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MedicationMention {
    pub text: String,
    pub ingredient: String,
    pub rxcui: Option<String>,
    pub strength: Option<String>,
    pub form: Option<String>,
    pub sig: Option<String>,
    pub state: MedicationState,
    #[serde(flatten)]
    pub source: Source,
}

/// Everything read from one document.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Extraction {
    pub kind: DocumentKind,
    pub header: Header,
    pub labs: Vec<LabResult>,
    pub conditions: Vec<ConditionMention>,
    pub medications: Vec<MedicationMention>,
    /// Mentions deliberately not taken as the patient's conditions (negated, family history,
    /// ruled out): kept so that the reviewer can see what was skipped and why.
    pub skipped: Vec<String>,
}

/// A line with the page it is on.
#[derive(Clone, Copy)]
pub(crate) struct PageLine<'a> {
    pub page: u32,
    pub line: &'a Line,
}

impl PageLine<'_> {
    pub(crate) fn words(&self) -> Vec<&str> {
        self.line.words.iter().map(|w| w.text.as_str()).collect()
    }

    pub(crate) fn source(&self, from: usize, to: usize) -> Source {
        let words =
            &self.line.words[from.min(self.line.words.len())..to.min(self.line.words.len())];
        let words = if words.is_empty() {
            &self.line.words[..]
        } else {
            words
        };
        Source {
            page: self.page,
            bbox: BBox::around(words.iter().map(|w| &w.bbox)),
            confidence: words.iter().map(|w| w.confidence).fold(1.0, f32::min),
        }
    }
}

/// Every line of the layout, in reading order, with its page.
pub(crate) fn page_lines(layout: &Layout) -> Vec<PageLine<'_>> {
    layout
        .pages
        .iter()
        .flat_map(|p| {
            p.lines.iter().map(move |line| PageLine {
                page: p.number,
                line,
            })
        })
        .collect()
}

/// Whether a line is a section heading (for reading-order analysis).
pub fn is_heading(line: &Line) -> bool {
    sections::heading(&PageLine { page: 1, line })
        .is_some_and(|(_, after)| after == line.words.len())
}

/// The layout in reading order: segments chained into rows, two-column bands split at their
/// gutter (see [`crate::reading_order`]).
pub fn in_reading_order(layout: &Layout) -> Layout {
    let mut out = layout.clone();
    for page in &mut out.pages {
        let segments = std::mem::take(&mut page.lines);
        let rows = crate::reading_order::rows(segments);
        page.lines = crate::reading_order::order(rows, page.width, &is_heading);
    }
    out
}

/// Runs every extractor over the layout (read in [`in_reading_order`]).
pub fn extract(layout: &Layout) -> Extraction {
    let ordered = in_reading_order(layout);
    let lines = page_lines(&ordered);
    let sections = sections::classify(&lines);
    let kind = sections::document_kind(&lines);
    let header = header::extract(&lines, &sections, kind);
    let labs = labs::extract(&lines, &sections);
    let (conditions, mut skipped) = conditions::extract(&lines, &sections);
    let (medications, more) = medications::extract(&lines, &sections);
    skipped.extend(more);
    Extraction {
        kind,
        header,
        labs,
        conditions,
        medications,
        skipped,
    }
}
