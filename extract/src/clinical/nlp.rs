//! The clinical NLP port: an external service (Amazon Comprehend Medical on AWS) that codes the
//! diagnoses and medications of a document's text, in place of the built-in readers.
//!
//! Only the text of diagnosis and medication sections is sent (sections found by the built-in
//! classifier), never the header: the service sees no name, birth date or member number.
//! Entities come back as character offsets into that text; they are mapped back to the words
//! they cover, so every coded fact keeps its page, box and OCR confidence. Labs and the header
//! stay with the built-in readers in both modes (the services have no LOINC linking).

use super::sections::{Section, classify, heading};
use super::{ConditionMention, Extraction, MedicationMention, MedicationState, PageLine, Source};
use crate::layout::{BBox, Layout};
use crate::terminology::{icd10cm, rxnorm};
use async_trait::async_trait;
use std::ops::Range;

/// Comprehend Medical's InferICD10CM / InferRxNorm accept up to 10,000 characters a call.
pub const MAX_CHARS: usize = 10_000;

/// A coded mention found by the service in the text it was given.
#[derive(Clone, Debug, PartialEq)]
pub struct NlpEntity {
    /// Character offsets into the text sent.
    pub span: Range<usize>,
    pub code: Option<String>,
    pub description: Option<String>,
    /// 0–1: the lower of the mention's and the code's scores.
    pub score: f32,
    /// Why the mention is not the patient's current fact (`NEGATION`, `PERTAINS_TO_FAMILY`,
    /// `HYPOTHETICAL`, `PAST_HISTORY`), when the service marked it so.
    pub excluded_by: Option<String>,
    pub strength: Option<String>,
    pub form: Option<String>,
    /// Dosage, route and frequency, as printed, joined.
    pub sig: Option<String>,
}

#[derive(Debug, Clone, thiserror::Error)]
#[error("clinical NLP ({service}): {message}")]
pub struct NlpError {
    pub service: &'static str,
    pub message: String,
}

#[async_trait]
pub trait ClinicalNlp: Send + Sync {
    fn name(&self) -> &'static str;
    async fn diagnoses(&self, text: &str) -> Result<Vec<NlpEntity>, NlpError>;
    async fn medications(&self, text: &str) -> Result<Vec<NlpEntity>, NlpError>;
}

/// Where each word of the sent text came from.
struct WordAt {
    chars: Range<usize>,
    page: u32,
    bbox: BBox,
    confidence: f32,
    section: Section,
}

/// The text of some sections, with the position of every word.
#[derive(Default)]
struct SectionText {
    text: String,
    chars: usize,
    words: Vec<WordAt>,
}

impl SectionText {
    fn push_line(&mut self, line: &PageLine<'_>, from: usize, section: Section) {
        if !self.text.is_empty() {
            self.text.push('\n');
            self.chars += 1;
        }
        for (i, w) in line.line.words.iter().enumerate().skip(from) {
            if i > from {
                self.text.push(' ');
                self.chars += 1;
            }
            let n = w.text.chars().count();
            self.words.push(WordAt {
                chars: self.chars..self.chars + n,
                page: line.page,
                bbox: w.bbox,
                confidence: w.confidence,
                section,
            });
            self.text.push_str(&w.text);
            self.chars += n;
        }
    }

    /// Cuts the text at line ends into pieces the service accepts; each piece's offset.
    fn chunks(&self) -> Vec<(usize, String)> {
        let mut out = Vec::new();
        let (mut start, mut current, mut n) = (0usize, String::new(), 0usize);
        for line in self.text.split('\n') {
            let len = line.chars().count();
            if n > 0 && n + 1 + len > MAX_CHARS {
                out.push((start, std::mem::take(&mut current)));
                start += n + 1;
                n = 0;
            }
            if n > 0 {
                current.push('\n');
                n += 1;
            }
            // A single line longer than the limit is cut (never happens on real pages).
            let line: String = line.chars().take(MAX_CHARS).collect();
            n += line.chars().count();
            current.push_str(&line);
            if len > MAX_CHARS {
                out.push((start, std::mem::take(&mut current)));
                start += len + 1;
                n = 0;
            }
        }
        if n > 0 {
            out.push((start, current));
        }
        out
    }

    /// The words an entity covers: its source, and the section of its first word.
    fn source(&self, span: &Range<usize>) -> Option<(Source, Section)> {
        let covered: Vec<&WordAt> = self
            .words
            .iter()
            .filter(|w| w.chars.start < span.end && span.start < w.chars.end)
            .collect();
        let first = covered.first()?;
        let same_page: Vec<&&WordAt> = covered.iter().filter(|w| w.page == first.page).collect();
        Some((
            Source {
                page: first.page,
                bbox: BBox::around(same_page.iter().map(|w| &w.bbox)),
                confidence: covered.iter().map(|w| w.confidence).fold(1.0, f32::min),
            },
            first.section,
        ))
    }

    fn slice(&self, span: &Range<usize>) -> String {
        self.text
            .chars()
            .skip(span.start)
            .take(span.len())
            .collect()
    }
}

#[derive(Clone, Copy)]
enum Ask {
    Diagnoses,
    Medications,
}

/// Sends the text in pieces the service accepts; offsets come back relative to the whole text.
async fn run(
    text: &SectionText,
    nlp: &dyn ClinicalNlp,
    ask: Ask,
) -> Result<Vec<NlpEntity>, NlpError> {
    let mut out = Vec::new();
    for (offset, chunk) in text.chunks() {
        let found = match ask {
            Ask::Diagnoses => nlp.diagnoses(&chunk).await?,
            Ask::Medications => nlp.medications(&chunk).await?,
        };
        for mut e in found {
            e.span = e.span.start + offset..e.span.end + offset;
            out.push(e);
        }
    }
    Ok(out)
}

/// Replaces the built-in diagnoses and medications of `extraction` with the service's.
pub async fn refine(
    extraction: &mut Extraction,
    layout: &Layout,
    nlp: &dyn ClinicalNlp,
) -> Result<(), NlpError> {
    let lines = super::page_lines(layout);
    let sections = classify(&lines);
    let mut diagnoses = SectionText::default();
    let mut medications = SectionText::default();
    for (line, section) in lines.iter().zip(&sections) {
        // A heading's own words are not sent; what follows it on the line is.
        let (section, from) = match heading(line) {
            Some((s, after)) => (s, after),
            None => (*section, 0),
        };
        if from >= line.line.words.len() {
            continue;
        }
        match section {
            Section::Diagnoses => diagnoses.push_line(line, from, section),
            Section::Medications | Section::StoppedMedications => {
                medications.push_line(line, from, section)
            }
            _ => {}
        }
    }

    let mut conditions: Vec<ConditionMention> = Vec::new();
    let mut skipped = Vec::new();
    for e in run(&diagnoses, nlp, Ask::Diagnoses).await? {
        let Some((mut source, _)) = diagnoses.source(&e.span) else {
            continue;
        };
        if let Some(why) = &e.excluded_by {
            skipped.push(format!(
                "diagnosis skipped: {} per {} (page {})",
                why.to_lowercase(),
                nlp.name(),
                source.page
            ));
            continue;
        }
        let Some(code) = e.code.as_deref() else {
            continue;
        };
        // Our copy of the CMS code set names the code; a code it does not know is asked about.
        let (code, display) = match icd10cm::table().get(code) {
            Some((c, d, _)) => (c.to_owned(), d.to_owned()),
            None => {
                source.confidence = source.confidence.min(0.6);
                (code.to_owned(), e.description.clone().unwrap_or_default())
            }
        };
        source.confidence *= e.score;
        if conditions.iter().any(|c| c.icd10cm == code) {
            continue;
        }
        conditions.push(ConditionMention {
            text: diagnoses.slice(&e.span),
            icd10cm: code,
            display,
            code_printed: false,
            source,
        });
    }

    let mut meds: Vec<MedicationMention> = Vec::new();
    for e in run(&medications, nlp, Ask::Medications).await? {
        let Some((mut source, section)) = medications.source(&e.span) else {
            continue;
        };
        let text = medications.slice(&e.span);
        if let Some(why) = &e.excluded_by {
            skipped.push(format!(
                "medication skipped: {} per {} (page {})",
                why.to_lowercase(),
                nlp.name(),
                source.page
            ));
            continue;
        }
        let words: Vec<&str> = text.split_whitespace().collect();
        // The ingredient and its RxCUI from our table when it knows the name (the service's
        // concepts are mostly clinical drugs, strength and form included); else the service's.
        let (ingredient, rxcui) = match rxnorm::table().lookup_prefix(&words) {
            Some((drug, _, score)) => {
                source.confidence *= score as f32;
                (drug.ingredient.to_string(), drug.rxcui.map(str::to_string))
            }
            None => {
                source.confidence = source.confidence.min(0.7);
                (
                    e.description.clone().unwrap_or_else(|| text.to_lowercase()),
                    e.code.clone(),
                )
            }
        };
        source.confidence *= e.score;
        let state = if section == Section::StoppedMedications {
            MedicationState::Stopped
        } else {
            MedicationState::Active
        };
        if meds
            .iter()
            .any(|m| m.ingredient == ingredient && m.state == state)
        {
            continue;
        }
        meds.push(MedicationMention {
            text,
            ingredient,
            rxcui,
            strength: e.strength.clone(),
            form: e.form.clone(),
            sig: e.sig.clone(),
            state,
            source,
        });
    }
    let stopped: Vec<String> = meds
        .iter()
        .filter(|m| m.state == MedicationState::Stopped)
        .map(|m| m.ingredient.clone())
        .collect();
    meds.retain(|m| m.state == MedicationState::Stopped || !stopped.contains(&m.ingredient));

    extraction.conditions = conditions;
    extraction.medications = meds;
    extraction
        .skipped
        .retain(|s| !s.starts_with("diagnosis") && !s.starts_with("medication"));
    extraction.skipped.extend(skipped);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::{Line, Page, Word};

    fn line(text: &str, y: u32) -> Line {
        Line::new(
            text.split_whitespace()
                .enumerate()
                .map(|(i, t)| Word {
                    text: t.into(),
                    bbox: BBox {
                        x: 10 + 100 * i as u32,
                        y,
                        width: 90,
                        height: 20,
                    },
                    confidence: 0.95,
                })
                .collect(),
        )
    }

    /// Finds phrases in the text it is given, as a service would, with fixed codes.
    struct Phrases(Vec<(&'static str, &'static str, Option<&'static str>)>);

    impl Phrases {
        fn find(&self, text: &str) -> Vec<NlpEntity> {
            self.0
                .iter()
                .filter_map(|(phrase, code, excluded)| {
                    let at = text.find(phrase)?;
                    let start = text[..at].chars().count();
                    Some(NlpEntity {
                        span: start..start + phrase.chars().count(),
                        code: Some(code.to_string()),
                        description: None,
                        score: 0.9,
                        excluded_by: excluded.map(str::to_string),
                        strength: None,
                        form: None,
                        sig: None,
                    })
                })
                .collect()
        }
    }

    #[async_trait]
    impl ClinicalNlp for Phrases {
        fn name(&self) -> &'static str {
            "phrases"
        }
        async fn diagnoses(&self, text: &str) -> Result<Vec<NlpEntity>, NlpError> {
            assert!(!text.contains("DOE"), "the header must not be sent");
            Ok(self.find(text))
        }
        async fn medications(&self, text: &str) -> Result<Vec<NlpEntity>, NlpError> {
            Ok(self.find(text))
        }
    }

    #[tokio::test]
    async fn entities_map_back_to_words_and_exclusions_are_skipped() {
        let layout = Layout {
            failed_pages: Vec::new(),
            engine: crate::layout::Engine {
                name: "test".into(),
                version: "0".into(),
            },
            pages: vec![Page {
                number: 1,
                width: 1000,
                height: 1000,
                deskew_degrees: 0.0,
                quarter_turns: 0,
                normalization: None,
                lines: vec![
                    line("Patient: DOE, JANE", 10),
                    line("Assessment and Plan", 60),
                    line("1. Essential hypertension", 100),
                    line("2. Family history of stroke", 140),
                    line("Medications", 200),
                    line("Lisinopril 10 mg tablet daily", 240),
                ],
            }],
        };
        let mut extraction = crate::clinical::extract(&layout);
        let nlp = Phrases(vec![
            ("Essential hypertension", "I10", None),
            ("stroke", "I63.9", Some("PERTAINS_TO_FAMILY")),
            ("Lisinopril", "314076", None),
        ]);
        refine(&mut extraction, &layout, &nlp).await.unwrap();
        assert_eq!(extraction.conditions.len(), 1);
        let c = &extraction.conditions[0];
        assert_eq!(c.icd10cm, "I10");
        assert_eq!(c.text, "Essential hypertension");
        assert_eq!(c.source.bbox.y, 100);
        assert_eq!(
            c.source.bbox.x, 110,
            "the box starts at the entity's first word"
        );
        assert!(
            extraction
                .skipped
                .iter()
                .any(|s| s.contains("pertains_to_family"))
        );
        assert_eq!(extraction.medications.len(), 1);
        assert_eq!(extraction.medications[0].ingredient, "lisinopril");
        assert_eq!(extraction.medications[0].rxcui.as_deref(), Some("29046"));
        assert_eq!(extraction.medications[0].source.bbox.y, 240);
    }

    #[test]
    fn long_texts_are_cut_at_line_ends_with_their_offsets() {
        let mut t = SectionText::default();
        let long = "word ".repeat(1500);
        t.text = format!("{}\n{}\nlast", long.trim(), long.trim());
        let chunks = t.chunks();
        assert_eq!(chunks.len(), 2);
        assert!(chunks.iter().all(|(_, c)| c.chars().count() <= MAX_CHARS));
        let (offset, second) = &chunks[1];
        assert_eq!(
            t.text.chars().skip(*offset).take(4).collect::<String>(),
            second.chars().take(4).collect::<String>()
        );
    }
}
