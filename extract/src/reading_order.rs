//! Reading order from line segments, for any engine: rows, then page columns.
//!
//! An engine's own segmentation fails both ways on medical forms: it cuts one table row into
//! separate blocks (label cells here, value cells there, read far apart), and it joins the two
//! columns of a two-column page into one line. So we rebuild the order ourselves:
//!
//! 1. **Rows.** Segments are chained left to right into rows: a segment joins the row whose
//!    rightmost segment overlaps it vertically by half a line and ends left of it. Chaining to the
//!    rightmost segment, not the row's whole box, follows a row that drifts with skew or curl.
//! 2. **Page columns.** A vertical gutter that stays free of text over a run of rows is a page
//!    column boundary when the text beside it is organised independently: both sides carry
//!    section headings (`Labs at Discharge | Discharge Diagnoses`) or the right side does on
//!    several rows. A table's column gaps are gutters too, but its cells are never headings, so
//!    tables stay whole rows. Inside a column band the left column is read before the right.

use crate::layout::{BBox, Line, Word};

/// Chains segments into rows (see the module docs). Input order does not matter.
pub fn rows(mut segments: Vec<Line>) -> Vec<Line> {
    segments.retain(|s| !s.words.is_empty());
    segments.sort_by_key(|s| (s.bbox.x, s.bbox.y));
    let mut rows: Vec<Vec<Line>> = Vec::new();
    for seg in segments {
        let best = rows
            .iter_mut()
            .filter(|r| {
                let last = r.last().map(|l| l.bbox).unwrap_or_default();
                last.right() <= seg.bbox.x + seg.text_height() / 2
                    && overlap(&last, &seg.bbox) * 2 > last.height.min(seg.bbox.height)
            })
            .min_by_key(|r| {
                let last = r.last().map(|l| l.bbox).unwrap_or_default();
                (
                    seg.bbox.x.saturating_sub(last.right()),
                    last.center_y().abs_diff(seg.bbox.center_y()),
                )
            });
        match best {
            Some(r) => r.push(seg),
            None => rows.push(vec![seg]),
        }
    }
    let mut out: Vec<Line> = rows
        .into_iter()
        .map(|r| Line::new(r.into_iter().flat_map(|l| l.words).collect::<Vec<Word>>()))
        .collect();
    out.sort_by_key(|l| (l.bbox.y, l.bbox.x));
    out
}

fn overlap(a: &BBox, b: &BBox) -> u32 {
    a.bottom().min(b.bottom()).saturating_sub(a.y.max(b.y))
}

/// Orders rows for reading, splitting two-column bands at their gutter. `is_heading` tells a
/// section heading (the caller's vocabulary) from other text.
pub fn order(rows: Vec<Line>, page_width: u32, is_heading: &dyn Fn(&Line) -> bool) -> Vec<Line> {
    let Some((x, from, to)) = page_gutter(&rows, page_width, is_heading) else {
        return rows;
    };
    let mut out = Vec::with_capacity(rows.len() + 8);
    let mut left = Vec::new();
    let mut right = Vec::new();
    for (i, row) in rows.into_iter().enumerate() {
        if i < from || i > to {
            if i > to && (!left.is_empty() || !right.is_empty()) {
                out.append(&mut left);
                out.append(&mut right);
            }
            out.push(row);
            continue;
        }
        let (l, r): (Vec<Word>, Vec<Word>) = row.words.into_iter().partition(|w| w.bbox.x < x);
        if !l.is_empty() {
            left.push(Line::new(l));
        }
        if !r.is_empty() {
            right.push(Line::new(r));
        }
    }
    out.append(&mut left);
    out.append(&mut right);
    out
}

/// The split of the left part of `row` at `x` and the right part, if the row has words on both
/// sides and none crossing `x`.
fn split_at(row: &Line, x: u32) -> Option<(Line, Line)> {
    if row.words.iter().any(|w| w.bbox.x < x && w.bbox.right() > x) {
        return None;
    }
    let (l, r): (Vec<Word>, Vec<Word>) = row.words.iter().cloned().partition(|w| w.bbox.x < x);
    (!l.is_empty() && !r.is_empty()).then(|| (Line::new(l), Line::new(r)))
}

/// Whether `row` splits at `x` into two headings (`BMP | Lipid Panel`) or into the same column
/// header twice (`Test Result Units | Test Result Units`).
fn introduces_two_columns(row: &Line, x: u32, is_heading: &dyn Fn(&Line) -> bool) -> bool {
    let Some((l, r)) = split_at(row, x) else {
        return false;
    };
    let words = |l: &Line| -> Vec<String> {
        l.words
            .iter()
            .map(|w| {
                w.text
                    .chars()
                    .filter(|c| c.is_alphabetic())
                    .collect::<String>()
                    .to_lowercase()
            })
            .filter(|w| !w.is_empty())
            .collect()
    };
    let (lw, rw) = (words(&l), words(&r));
    (is_heading(&l) && is_heading(&r)) || (lw.len() >= 2 && lw == rw)
}

/// The x of a page gutter and the first and last row index it spans.
fn page_gutter(
    rows: &[Line],
    page_width: u32,
    is_heading: &dyn Fn(&Line) -> bool,
) -> Option<(u32, usize, usize)> {
    const MIN_ROWS: usize = 6;
    let step = (page_width / 200).max(1);
    // A gutter is wider than a word space: text within a line height of x crosses it.
    let mut heights: Vec<u32> = rows.iter().map(Line::text_height).collect();
    heights.sort_unstable();
    let clear = heights.get(heights.len() / 2).copied().unwrap_or(0);
    let mut best: Option<(usize, u32, usize, usize)> = None;
    // Candidate gutters in the middle 70 % of the page.
    let mut x = page_width * 15 / 100;
    while x < page_width * 85 / 100 {
        // The longest run of rows none of whose words cross x (rows entirely on one side count).
        let mut start = 0;
        for i in 0..=rows.len() {
            let free = i < rows.len()
                && !rows[i]
                    .words
                    .iter()
                    .any(|w| w.bbox.x <= x + clear && w.bbox.right() + clear >= x);
            if free {
                continue;
            }
            if i - start >= MIN_ROWS {
                let run = &rows[start..i];
                let both = run
                    .iter()
                    .filter_map(|r| split_at(r, x))
                    .collect::<Vec<_>>();
                let paired = both.iter().any(|(l, r)| is_heading(l) && is_heading(r));
                let right_heads = both.iter().filter(|(_, r)| is_heading(r)).count()
                    + run
                        .iter()
                        .filter(|r| r.bbox.x >= x && is_heading(r))
                        .count();
                // Two tables side by side: the rows at the top of the run or just above it
                // (their headings, their column headers) split at x into two headings or the
                // same header twice; above the run they may come too close to x to leave it
                // clear. Those rows join the band.
                let introduced = (start.saturating_sub(2)..(start + 2).min(i))
                    .find(|&k| introduces_two_columns(&rows[k], x, is_heading));
                let independent = paired || right_heads >= 2 || introduced.is_some();
                let from = introduced.map_or(start, |k| k.min(start));
                let len = i - from;
                if both.len() * 2 >= run.len() && independent && best.is_none_or(|(n, ..)| len > n)
                {
                    best = Some((len, x, from, i - 1));
                }
            }
            start = i + 1;
        }
        x += step;
    }
    best.map(|(_, x, from, to)| (x, from, to))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(text: &str, x: u32, y: u32) -> Line {
        let mut cx = x;
        Line::new(
            text.split(' ')
                .map(|t| {
                    let w = Word {
                        text: t.into(),
                        bbox: BBox {
                            x: cx,
                            y,
                            width: 12 * t.len() as u32,
                            height: 20,
                        },
                        confidence: 0.9,
                    };
                    cx += 12 * t.len() as u32 + 10;
                    w
                })
                .collect(),
        )
    }

    fn heading(l: &Line) -> bool {
        let t = l.text();
        t.chars()
            .filter(|c| c.is_alphabetic())
            .all(char::is_uppercase)
    }

    #[test]
    fn cells_of_a_row_cut_into_blocks_become_one_row_despite_skew() {
        let r = rows(vec![
            seg("Sodium", 10, 100),
            seg("Potassium", 10, 130),
            seg("141 mmol/L", 400, 104),
            seg("4.1 mmol/L", 400, 134),
        ]);
        let t: Vec<String> = r.iter().map(Line::text).collect();
        assert_eq!(t, ["Sodium 141 mmol/L", "Potassium 4.1 mmol/L"]);
    }

    #[test]
    fn two_columns_with_their_own_headings_are_read_one_after_the_other() {
        let mut segs = vec![seg("Mercy Ridge Hospital Discharge Summary", 10, 10)];
        let left = [
            "LABS",
            "Sodium 143 mmol/L",
            "Potassium 4.3 mmol/L",
            "Glucose 89 mg/dL",
            "WBC 8.6 K/uL",
            "Hgb 13.2 g/dL",
            "Hct 40 %",
        ];
        let right = [
            "DIAGNOSES",
            "1. Hypothyroidism",
            "2. Hyperlipidemia",
            "COURSE",
            "Admitted for COPD",
            "and improved",
            "on steroids",
        ];
        for (i, (l, r)) in left.iter().zip(right.iter()).enumerate() {
            let y = 50 + 30 * i as u32;
            segs.push(seg(l, 10, y));
            segs.push(seg(r, 600, y));
        }
        let ordered = order(rows(segs), 1200, &heading);
        let t: Vec<String> = ordered.iter().map(Line::text).collect();
        assert_eq!(t[1], "LABS");
        assert_eq!(t[7], "Hct 40 %");
        assert_eq!(t[8], "DIAGNOSES");
    }

    #[test]
    fn two_tables_side_by_side_under_one_header_row_are_read_one_after_the_other() {
        // The header row repeats its columns on each side, too close to the gutter to leave it
        // clear; the result rows below it do.
        let mut segs = vec![
            seg("Test Result Units", 10, 20),
            seg("Test Result Units", 560, 20),
        ];
        for (i, (l, r)) in [
            ("Glucose 218 mg/dL", "Cholesterol 153 mg/dL"),
            ("BUN 17 mg/dL", "Triglyceride 97 mg/dL"),
            ("Creatinine 0.94 mg/dL", "HDL 52 mg/dL"),
            ("Sodium 142 mmol/L", "LDL 82 mg/dL"),
            ("Potassium 4.5 mmol/L", "VLDL 19 mg/dL"),
            ("Chloride 102 mmol/L", "Ratio 2.9 ratio"),
        ]
        .iter()
        .enumerate()
        {
            let y = 50 + 30 * i as u32;
            segs.push(seg(l, 10, y));
            segs.push(seg(r, 600, y));
        }
        let ordered = order(rows(segs), 1200, &|_: &Line| false);
        let t: Vec<String> = ordered.iter().map(Line::text).collect();
        assert_eq!(t[0], "Test Result Units", "{t:?}");
        assert_eq!(t[6], "Chloride 102 mmol/L", "{t:?}");
        assert_eq!(t[7], "Test Result Units", "{t:?}");
        assert_eq!(t[8], "Cholesterol 153 mg/dL", "{t:?}");
    }

    #[test]
    fn a_table_keeps_its_rows_whole() {
        let mut segs = vec![seg("LIPID PANEL", 10, 20)];
        for (i, r) in [
            "Cholesterol",
            "HDL",
            "LDL",
            "Triglycerides",
            "VLDL",
            "Ratio",
        ]
        .iter()
        .enumerate()
        {
            let y = 50 + 30 * i as u32;
            segs.push(seg(r, 10, y));
            segs.push(seg("120 mg/dL <200", 600, y));
        }
        let ordered = order(rows(segs), 1200, &heading);
        let t: Vec<String> = ordered.iter().map(Line::text).collect();
        assert!(ordered.iter().skip(1).all(|l| l.words.len() == 4), "{t:?}");
    }
}
