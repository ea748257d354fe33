//! Review flags: parts of the page where the photo, not the document, may have hidden text.
//!
//! * **Shadow** — where the paper level is far below the page's typical paper level, contrast
//!   and signal-to-noise are low even after flattening.
//! * **Glare** — where the paper level reaches saturation on a page whose paper is otherwise
//!   clearly grey: a blown-out reflection that may have erased print.
//! * **Curl** — a sheet side that is not straight (curled or folded sheet): perspective
//!   correction with four corners leaves the text there bent.
//!
//! Flags are advisory; nothing is changed because of them.

use serde::{Deserialize, Serialize};

use crate::flatten::Flattened;
use crate::plane::quantile;

/// An axis-aligned box in output-page pixels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BBox {
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
}

impl BBox {
    /// The same box after the page (of size `w`×`h` before the turn) is turned clockwise by
    /// `turns` quarter turns, as [`crate::rotate_quarters`] does.
    pub fn rotated(self, turns: u8, w: u32, h: u32) -> BBox {
        let mut b = self;
        let (mut w, mut h) = (w, h);
        for _ in 0..turns % 4 {
            b = BBox {
                x: h.saturating_sub(b.y.saturating_add(b.height)),
                y: b.x,
                width: b.height,
                height: b.width,
            };
            (w, h) = (h, w);
        }
        let _ = w;
        b
    }
}

/// A region to review, in output-page pixels.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Flag {
    /// Blown-out reflection: print may be missing.
    Glare { bbox: BBox },
    /// Deep shadow: low contrast, noisy even after flattening.
    Shadow { bbox: BBox },
    /// A sheet side bows by `deviation_px` (curl or fold): lines near it may be bent.
    Curl { bbox: BBox, deviation_px: f32 },
}

impl Flag {
    pub fn bbox(&self) -> BBox {
        match self {
            Flag::Glare { bbox } | Flag::Shadow { bbox } | Flag::Curl { bbox, .. } => *bbox,
        }
    }

    fn with_bbox(&self, bbox: BBox) -> Flag {
        match self {
            Flag::Glare { .. } => Flag::Glare { bbox },
            Flag::Shadow { .. } => Flag::Shadow { bbox },
            Flag::Curl { deviation_px, .. } => Flag::Curl {
                bbox,
                deviation_px: *deviation_px,
            },
        }
    }

    /// The flag after a clockwise quarter-turn rotation of the page (`w`×`h` before it).
    pub fn rotated(&self, turns: u8, w: u32, h: u32) -> Flag {
        self.with_bbox(self.bbox().rotated(turns, w, h))
    }
}

/// Shadow: paper below this fraction of the page's lit paper level.
const SHADOW_RATIO: f32 = 0.5;
/// Glare: paper level at least this while the typical paper is below `GLARE_PAPER_MAX`.
const GLARE_LEVEL: f32 = 250.0;
const GLARE_PAPER_MAX: f32 = 225.0;
/// Regions smaller than this fraction of the page are not flagged.
const MIN_AREA: f32 = 0.005;

/// Shadow and glare flags from the paper-level grid of a flattened page.
pub(crate) fn photometric(f: &Flattened, w: u32, h: u32) -> Vec<Flag> {
    let p = &f.paper;
    let levels: Vec<f32> = p
        .data
        .iter()
        .zip(&f.valid)
        .filter(|&(_, &v)| v)
        .map(|(&b, _)| b)
        .collect();
    if levels.is_empty() {
        return Vec::new();
    }
    // The lit paper: a shadow may cover half the page.
    let typical = quantile(&levels, 0.9);
    let mut flags = Vec::new();
    let shadow: Vec<bool> = f
        .closed
        .data
        .iter()
        .zip(&f.valid)
        .map(|(&b, &v)| v && b < SHADOW_RATIO * typical)
        .collect();
    for (bbox, cells) in regions(&shadow, p.w, p.h, f.cell, w, h) {
        // A dark printed block (logo, filled header) is no shadow: its outline is sharp in the
        // unsmoothed paper level, a shadow's is soft.
        if !sharp_outline(&f.closed, &shadow, &cells, 0.25 * typical) {
            flags.push(Flag::Shadow { bbox });
        }
    }
    if typical < GLARE_PAPER_MAX {
        let glare: Vec<bool> = p
            .data
            .iter()
            .zip(&f.valid)
            .map(|(&b, &v)| v && b >= GLARE_LEVEL)
            .collect();
        for (bbox, _) in regions(&glare, p.w, p.h, f.cell, w, h) {
            flags.push(Flag::Glare { bbox });
        }
    }
    flags
}

/// Whether most of the region's outline cells sit on a step of more than `step` in `level`
/// (difference across two cells).
fn sharp_outline(level: &crate::plane::Plane, mask: &[bool], cells: &[usize], step: f32) -> bool {
    let (gw, gh) = (level.w, level.h);
    let (mut outline, mut sharp) = (0usize, 0usize);
    for &i in cells {
        let (x, y) = (i % gw, i / gw);
        if x == 0 || y == 0 || x + 1 >= gw || y + 1 >= gh {
            continue;
        }
        let edge = !mask[i - 1] || !mask[i + 1] || !mask[i - gw] || !mask[i + gw];
        if !edge {
            continue;
        }
        outline += 1;
        let dx = (level.data[i + 1] - level.data[i - 1]).abs();
        let dy = (level.data[i + gw] - level.data[i - gw]).abs();
        if dx.max(dy) > step {
            sharp += 1;
        }
    }
    outline > 0 && sharp * 2 > outline
}

/// Bounding boxes (output pixels) and cells of the 8-connected regions of `mask` large enough
/// to matter.
fn regions(
    mask: &[bool],
    gw: usize,
    gh: usize,
    cell: usize,
    w: u32,
    h: u32,
) -> Vec<(BBox, Vec<usize>)> {
    let mut seen = vec![false; mask.len()];
    let mut out = Vec::new();
    let min = ((gw * gh) as f32 * MIN_AREA).max(4.0) as usize;
    for start in 0..mask.len() {
        if !mask[start] || seen[start] {
            continue;
        }
        seen[start] = true;
        let mut stack = vec![start];
        let mut cells = Vec::new();
        let (mut x0, mut y0, mut x1, mut y1, mut n) = (usize::MAX, usize::MAX, 0, 0, 0usize);
        while let Some(i) = stack.pop() {
            let (x, y) = (i % gw, i / gw);
            n += 1;
            cells.push(i);
            x0 = x0.min(x);
            y0 = y0.min(y);
            x1 = x1.max(x);
            y1 = y1.max(y);
            for dy in -1i64..=1 {
                for dx in -1i64..=1 {
                    let (nx, ny) = (x as i64 + dx, y as i64 + dy);
                    if nx < 0 || ny < 0 || nx >= gw as i64 || ny >= gh as i64 {
                        continue;
                    }
                    let j = ny as usize * gw + nx as usize;
                    if mask[j] && !seen[j] {
                        seen[j] = true;
                        stack.push(j);
                    }
                }
            }
        }
        if n >= min {
            let bbox = clip(
                (x0 * cell) as f64,
                (y0 * cell) as f64,
                ((x1 + 1) * cell) as f64,
                ((y1 + 1) * cell) as f64,
                w,
                h,
            );
            out.push((bbox, cells));
        }
    }
    out
}

/// The box `[x0, x1) × [y0, y1)` clipped to a `w`×`h` page.
pub(crate) fn clip(x0: f64, y0: f64, x1: f64, y1: f64, w: u32, h: u32) -> BBox {
    let cl = |v: f64, hi: u32| v.clamp(0.0, f64::from(hi)).round() as u32;
    let (ax, ay) = (cl(x0.min(x1), w), cl(y0.min(y1), h));
    let (bx, by) = (cl(x0.max(x1), w), cl(y0.max(y1), h));
    BBox {
        x: ax,
        y: ay,
        width: bx - ax,
        height: by - ay,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boxes_turn_with_the_page() {
        let b = BBox {
            x: 10,
            y: 20,
            width: 30,
            height: 40,
        };
        // 100×200 page turned clockwise: (x, y) -> (h - 1 - y, x).
        let r = b.rotated(1, 100, 200);
        assert_eq!(
            r,
            BBox {
                x: 140,
                y: 10,
                width: 40,
                height: 30
            }
        );
        assert_eq!(b.rotated(4, 100, 200), b);
        assert_eq!(b.rotated(2, 100, 200), r.rotated(1, 200, 100));
        assert_eq!(
            b.rotated(2, 100, 200),
            BBox {
                x: 60,
                y: 140,
                width: 30,
                height: 40
            }
        );
    }
}
