//! The layout model every OCR engine maps onto: pages → lines → words, each with a bounding box
//! in pixels of the page image as stored (after orientation), and a confidence.
//!
//! Tesseract's TSV rows and Textract's LINE/WORD blocks both become this; extraction reads only
//! this, so it never knows which engine ran.

use serde::{Deserialize, Serialize};

/// A rectangle in pixels, origin top-left.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BBox {
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
}

impl BBox {
    pub fn right(&self) -> u32 {
        self.x + self.width
    }

    pub fn bottom(&self) -> u32 {
        self.y + self.height
    }

    pub fn center_y(&self) -> u32 {
        self.y + self.height / 2
    }

    /// The smallest box holding both.
    pub fn union(&self, other: &BBox) -> BBox {
        if self.width == 0 && self.height == 0 {
            return *other;
        }
        let x = self.x.min(other.x);
        let y = self.y.min(other.y);
        BBox {
            x,
            y,
            width: self.right().max(other.right()) - x,
            height: self.bottom().max(other.bottom()) - y,
        }
    }

    /// The box around several.
    pub fn around<'a>(boxes: impl IntoIterator<Item = &'a BBox>) -> BBox {
        boxes
            .into_iter()
            .fold(BBox::default(), |acc, b| acc.union(b))
    }
}

impl From<BBox> for p360_model::BoundingBox {
    fn from(b: BBox) -> Self {
        p360_model::BoundingBox {
            x: b.x,
            y: b.y,
            width: b.width,
            height: b.height,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Word {
    pub text: String,
    pub bbox: BBox,
    /// 0.0–1.0.
    pub confidence: f32,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Line {
    pub words: Vec<Word>,
    pub bbox: BBox,
}

impl Line {
    pub fn new(words: Vec<Word>) -> Self {
        let bbox = BBox::around(words.iter().map(|w| &w.bbox));
        Self { words, bbox }
    }

    pub fn text(&self) -> String {
        let mut out = String::new();
        for (i, w) in self.words.iter().enumerate() {
            if i > 0 {
                out.push(' ');
            }
            out.push_str(&w.text);
        }
        out
    }

    /// Median word height: the line's font size in pixels.
    pub fn text_height(&self) -> u32 {
        let mut h: Vec<u32> = self.words.iter().map(|w| w.bbox.height).collect();
        h.sort_unstable();
        h.get(h.len() / 2).copied().unwrap_or(0)
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Page {
    /// 1-based.
    pub number: u32,
    pub width: u32,
    pub height: u32,
    pub lines: Vec<Line>,
    /// Degrees the image was rotated by before recognition (deskew), for the record.
    #[serde(default)]
    pub deskew_degrees: f32,
    /// Clockwise quarter turns applied to the stored image before deskew (a page scanned
    /// upside down, a photo taken sideways); boxes are on the turned page.
    #[serde(default)]
    pub quarter_turns: u8,
    /// The page found in a photo and rectified (corners, size, residual skew), to draw review
    /// crops on the same pixels; `None` when the image was read as stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub normalization: Option<p360_imagenorm::Params>,
}

/// The engine that read a document, for provenance.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Engine {
    pub name: String,
    pub version: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Layout {
    pub engine: Engine,
    pub pages: Vec<Page>,
    /// Pages that could not be read while the others were (a damaged page of a PDF): named on
    /// the document so that the patient can send that page again.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failed_pages: Vec<PageFailure>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PageFailure {
    pub page: u32,
    /// The reason as shown to the patient (no content).
    pub reason: String,
}

impl Layout {
    /// Mean word confidence over the document (0 when there are no words).
    pub fn mean_confidence(&self) -> f32 {
        let (sum, n) = self
            .pages
            .iter()
            .flat_map(|p| &p.lines)
            .flat_map(|l| &l.words)
            .fold((0.0, 0usize), |(s, n), w| (s + w.confidence, n + 1));
        if n == 0 { 0.0 } else { sum / n as f32 }
    }

    pub fn word_count(&self) -> usize {
        self.pages
            .iter()
            .flat_map(|p| &p.lines)
            .map(|l| l.words.len())
            .sum()
    }
}

/// Groups words into lines by vertical overlap, left to right: for engines (and pages) whose
/// own line grouping splits a table row into cells.
pub fn group_lines(mut words: Vec<Word>) -> Vec<Line> {
    words.sort_by_key(|w| (w.bbox.center_y(), w.bbox.x));
    let mut lines: Vec<Vec<Word>> = Vec::new();
    for w in words {
        let joined = lines.iter_mut().rev().take(3).find(|l| {
            let b = BBox::around(l.iter().map(|w| &w.bbox));
            let overlap = b.bottom().min(w.bbox.bottom()) as i64 - b.y.max(w.bbox.y) as i64;
            overlap * 2 > w.bbox.height.min(b.height) as i64
        });
        match joined {
            Some(l) => l.push(w),
            None => lines.push(vec![w]),
        }
    }
    let mut out: Vec<Line> = lines
        .into_iter()
        .map(|mut l| {
            l.sort_by_key(|w| w.bbox.x);
            Line::new(l)
        })
        .collect();
    out.sort_by_key(|l| l.bbox.y);
    out
}

/// Character cell of a text-only page: a text layer (PDF) or a plain-text transcript has no
/// pixel boxes, so each character gets one of these, which keeps the column gaps that separate
/// table cells (two or more spaces) as gaps in x.
const TEXT_CELL_WIDTH: u32 = 12;
const TEXT_LINE_HEIGHT: u32 = 30;

/// A page made from text lines (a PDF text layer, a transcript): words at their character
/// columns, one line per text line, full confidence (the text is what the document says).
pub fn page_from_text(number: u32, text: &str) -> Page {
    let mut lines = Vec::new();
    let mut widest = 0usize;
    for (row, raw) in text.lines().enumerate() {
        let chars: Vec<char> = raw.chars().collect();
        widest = widest.max(chars.len());
        let mut words = Vec::new();
        let mut col = 0usize;
        while col < chars.len() {
            if chars[col].is_whitespace() {
                col += 1;
                continue;
            }
            let start = col;
            while col < chars.len() && !chars[col].is_whitespace() {
                col += 1;
            }
            let cell = |n: usize| u32::try_from(n).unwrap_or(u32::MAX / 2);
            words.push(Word {
                text: chars[start..col].iter().collect(),
                bbox: BBox {
                    x: cell(start).saturating_mul(TEXT_CELL_WIDTH),
                    y: cell(row).saturating_mul(TEXT_LINE_HEIGHT),
                    width: cell(col - start).saturating_mul(TEXT_CELL_WIDTH),
                    height: TEXT_LINE_HEIGHT * 2 / 3,
                },
                confidence: 1.0,
            });
        }
        if !words.is_empty() {
            lines.push(Line::new(words));
        }
    }
    let rows = u32::try_from(text.lines().count()).unwrap_or(u32::MAX / 2);
    Page {
        number,
        width: u32::try_from(widest)
            .unwrap_or(u32::MAX / 2)
            .saturating_mul(TEXT_CELL_WIDTH)
            .max(1),
        height: rows.saturating_mul(TEXT_LINE_HEIGHT).max(1),
        lines,
        deskew_degrees: 0.0,
        quarter_turns: 0,
        normalization: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(text: &str, x: u32, y: u32) -> Word {
        Word {
            text: text.into(),
            bbox: BBox {
                x,
                y,
                width: 40,
                height: 20,
            },
            confidence: 0.9,
        }
    }

    #[test]
    fn text_pages_keep_words_at_their_columns() {
        let p = page_from_text(1, "Sodium  141  mmol/L\n\nK 4.1");
        assert_eq!(p.lines.len(), 2);
        assert_eq!(p.lines[0].text(), "Sodium 141 mmol/L");
        assert_eq!(p.lines[0].words[1].bbox.x, 8 * TEXT_CELL_WIDTH);
        assert!(p.lines[1].bbox.y > p.lines[0].bbox.y);
    }

    #[test]
    fn cells_of_one_row_become_one_line_in_reading_order() {
        let lines = group_lines(vec![
            w("mg/dL", 300, 103),
            w("Glucose", 10, 100),
            w("Sodium", 10, 140),
            w("95", 200, 98),
        ]);
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].text(), "Glucose 95 mg/dL");
        assert_eq!(lines[1].text(), "Sodium");
    }
}
