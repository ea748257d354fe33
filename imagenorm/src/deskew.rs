//! Residual skew by projection profiles.
//!
//! After rectification the sheet's edges are upright, but a scan (no sheet edges to use) or a
//! page printed askew still leans. Text lines are the most reliable horizontal in a document:
//! rotate the dark pixels of a small, flattened, binarised copy by candidate angles and keep the
//! angle whose row histogram has the sharpest steps (sum of squared differences of adjacent
//! bins: a line's top and bottom edges fall into single rows only at the right angle; the plain
//! sum of squares has a flat top as wide as the lines are thick). Coarse 0.5° steps over ±15°,
//! then 0.1° and 0.02° around the best.

use crate::flatten::background;
use crate::plane::Plane;

/// The search range, degrees either way.
pub(crate) const MAX_DEGREES: f32 = 15.0;

/// The counter-clockwise rotation (degrees, as seen on screen) that levels the text lines of
/// `page`; 0 when there is too little text to tell. `valid` marks pixels that are page (not
/// fill from outside the photo).
pub(crate) fn estimate(page: &Plane, valid: &[bool]) -> f32 {
    let (w, h) = (page.w, page.h);
    if w < 16 || h < 16 {
        return 0.0;
    }
    // Dark = clearly below the local paper level, so a shadow does not count as text. The
    // paper level is estimated on a 4× smaller copy (only its slow variation matters here).
    const SHRINK: usize = 4;
    let small = page.shrink(SHRINK);
    let small_valid: Vec<bool> = (0..small.w * small.h)
        .map(|i| {
            let (x, y) = ((i % small.w) * SHRINK, (i / small.w) * SHRINK);
            valid[(y + SHRINK / 2).min(h - 1) * w + (x + SHRINK / 2).min(w - 1)]
        })
        .collect();
    let bg = background(&small, Some(&small_valid), 2);
    let (mx, my) = (w / 50, h / 50);
    let (cx, cy) = (w as f32 / 2.0, h as f32 / 2.0);
    let mut dark = Vec::new();
    for y in my..h - my {
        for x in mx..w - mx {
            let i = y * w + x;
            let paper = bg.sample(
                (x as f32 + 0.5) / SHRINK as f32,
                (y as f32 + 0.5) / SHRINK as f32,
            );
            if valid[i] && paper > 8.0 && page.data[i] < 0.7 * paper {
                dark.push((x as f32 + 0.5 - cx, y as f32 + 0.5 - cy));
            }
        }
    }
    // Too little ink to measure, or a mostly dark image (a photo of something else).
    if dark.len() < 200 || dark.len() > w * h / 3 {
        return 0.0;
    }
    // Rows of a quarter pixel, each point in its nearest one, then a Gaussian of half a pixel:
    // fine enough to resolve a drift of one pixel across the page, smooth enough that points on
    // the pixel grid (all in one row at exactly 0°) are not favoured.
    const SUB: f32 = 4.0;
    let bins = ((w + h) as f32 * 2.0 * SUB) as usize + 16;
    let offset = (w + h) as f32 * SUB + 8.0;
    let kernel: Vec<f32> = (-6i32..=6)
        .map(|k| (-(k as f32 / 2.0).powi(2) / 2.0).exp())
        .collect();
    let mut hist = vec![0.0f32; bins];
    let mut smooth = vec![0.0f32; bins];
    // The coarse stages look at every 4th / 2nd point: the score's shape over whole degrees
    // does not need them all.
    let mut score = |deg: f32, every: usize| -> f64 {
        let (s, c) = deg.to_radians().sin_cos();
        hist.iter_mut().for_each(|b| *b = 0.0);
        for &(x, y) in dark.iter().step_by(every) {
            let r = ((y * c - x * s) * SUB + offset).round();
            if r >= 0.0 && (r as usize) < bins {
                hist[r as usize] += 1.0;
            }
        }
        for i in 6..bins - 6 {
            smooth[i] = kernel
                .iter()
                .zip(&hist[i - 6..=i + 6])
                .map(|(k, v)| k * v)
                .sum();
        }
        smooth
            .windows(2)
            .map(|p| {
                let d = f64::from(p[1] - p[0]);
                d * d
            })
            .sum()
    };
    let mut best_in = |from: f32, to: f32, step: f32, every: usize| -> f32 {
        let mut best = (f64::MIN, 0.0f32);
        let n = ((to - from) / step).round() as i32;
        for k in 0..=n {
            let a = from + k as f32 * step;
            let s = score(a, every);
            if s > best.0 {
                best = (s, a);
            }
        }
        best.1
    };
    let coarse = best_in(-MAX_DEGREES, MAX_DEGREES, 0.5, 4);
    let mid = best_in(coarse - 0.5, coarse + 0.5, 0.1, 2);
    let fine = best_in(mid - 0.1, mid + 0.1, 0.02, 1);
    // Lines with slope angle `fine` (y down) level out under a counter-clockwise turn by it.
    fine
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Text-like broken bars every 18 px, with slope angle `deg` (y down).
    fn bars(deg: f32, w: usize, h: usize) -> Plane {
        let t = deg.to_radians().tan();
        let mut p = Plane::new(w, h, 230.0);
        for y in 0..h {
            for x in 0..w {
                let yy = y as f32 - (x as f32 - w as f32 / 2.0) * t;
                let on = (yy as i64).rem_euclid(18) < 5 && x > w / 10 && x < w * 9 / 10;
                if on && (x / 7) % 5 != 0 {
                    p.data[y * w + x] = 40.0;
                }
            }
        }
        p
    }

    #[test]
    fn finds_known_angles_within_a_quarter_degree() {
        for deg in [-12.0f32, -3.3, -0.6, 0.0, 0.4, 1.7, 4.2, 9.5, 14.0] {
            let p = bars(deg, 600, 780);
            let valid = vec![true; p.w * p.h];
            let got = estimate(&p, &valid);
            assert!((got - deg).abs() <= 0.25, "true {deg}, estimated {got}");
        }
    }

    #[test]
    fn blank_and_dark_pages_give_zero() {
        let blank = Plane::new(300, 400, 240.0);
        assert_eq!(estimate(&blank, &vec![true; 300 * 400]), 0.0);
        let dark = Plane::new(300, 400, 10.0);
        assert_eq!(estimate(&dark, &vec![true; 300 * 400]), 0.0);
        assert_eq!(estimate(&Plane::new(3, 3, 0.0), &[true; 9]), 0.0);
    }
}
