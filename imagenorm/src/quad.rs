//! Finding the sheet in a photo.
//!
//! A cast shadow often falls across both the sheet and the desk, so no brightness threshold
//! separates "paper" from "surround" everywhere (shadowed paper can be darker than lit wood).
//! What a shadow does not change is the *ratio* between paper and surround at the sheet's edge,
//! and a shadow's edge is soft while the sheet's edge is a step. So, on a downscaled copy:
//!
//! 1. take the gradient of log-brightness (ratio-invariant) and call its strong values edges;
//! 2. flood-fill from bright, edge-free seeds near the image centre through non-edge pixels:
//!    the flood covers the paper, stops at the sheet's border, flows around text, and passes
//!    through soft shadow edges; holes (text, tables) are filled;
//! 3. take the four corners as the extremes of the region along the diagonals, fit a line to
//!    each side's boundary points robustly (trimmed total least squares) and intersect them;
//! 4. refine each side on the full-resolution image by locating the brightness step along
//!    normals to the coarse side, and fit again; the spread of those edge points measures how
//!    far the side is from straight (curl);
//! 5. accept the quadrilateral only if it is plausible (size, convexity, angles, aspect, and
//!    agreement with the flooded region); a scan, where the page is the whole image, yields none.

use std::collections::VecDeque;

use image::GrayImage;

use crate::plane::Plane;

/// A page found in the input image (full-resolution coordinates).
#[derive(Clone, Debug)]
pub(crate) struct PageQuad {
    /// tl, tr, br, bl.
    pub(crate) corners: [(f64, f64); 4],
    /// For each side (top, right, bottom, left): how far its edge points stray from a straight
    /// line, full-resolution pixels (90th percentile of the distance).
    pub(crate) bow: [f64; 4],
    /// Side lengths, same order.
    pub(crate) lengths: [f64; 4],
}

/// Log-brightness steps steeper than this (per downscaled pixel, Sobel scale) stop the flood: a
/// ratio of about 1.12 between paper and surround across the blurred edge. Soft shadow edges
/// spread a larger ratio over many pixels and stay below it.
const EDGE: f32 = 0.05;

/// Finds the sheet. `small` is `full` box-downscaled by `factor`.
pub(crate) fn find_page(full: &GrayImage, small: &Plane, factor: f64) -> Option<PageQuad> {
    let (w, h) = (small.w, small.h);
    if w < 32 || h < 32 {
        return None;
    }
    let edges = edge_map(small);
    let mask = flood_page(small, &edges)?;
    let coarse = fit_sides(&mask, w, h)?;
    // Coarse lines to full-resolution coordinates.
    let coarse_full: [Line; 4] = coarse.map(|(l, _)| Line {
        c: (l.c.0 * factor, l.c.1 * factor),
        d: l.d,
    });
    // A side bowing further than the refinement reaches is seen in the coarse fit.
    let mut bow = coarse.map(|(_, spread)| spread * factor);
    let corners0 = intersect_all(&coarse_full)?;
    let reach = (3.0 * factor).max(6.0);
    let mut lines = coarse_full;
    for side in 0..4 {
        let (p0, p1) = (corners0[side], corners0[(side + 1) % 4]);
        if let Some((line, spread)) = refine_side(full, p0, p1, reach) {
            lines[side] = line;
            bow[side] = bow[side].max(spread);
        }
    }
    let corners = intersect_all(&lines)?;
    // The refinement must not wander away from the coarse fit.
    for i in 0..4 {
        if dist(corners[i], corners0[i]) > 2.0 * reach {
            return None;
        }
    }
    let lengths = [0, 1, 2, 3].map(|i| dist(corners[i], corners[(i + 1) % 4]));
    let quad = PageQuad {
        corners,
        bow,
        lengths,
    };
    plausible(
        &quad,
        full.width() as f64,
        full.height() as f64,
        &mask,
        w,
        h,
        factor,
    )
    .then_some(quad)
}

/// Strong log-brightness gradients (Sobel on a 3×3-smoothed log image).
fn edge_map(small: &Plane) -> Vec<bool> {
    let (w, h) = (small.w, small.h);
    let log = Plane {
        w,
        h,
        data: small.data.iter().map(|&v| (v + 8.0).ln()).collect(),
    }
    .box_blur(1);
    // Replicate the border once so that the 3×3 window needs no bounds checks.
    let (pw, ph) = (w + 2, h + 2);
    let mut pad = vec![0.0f32; pw * ph];
    for y in 0..ph {
        let sy = y.saturating_sub(1).min(h - 1);
        for x in 0..pw {
            let sx = x.saturating_sub(1).min(w - 1);
            pad[y * pw + x] = log.data[sy * w + sx];
        }
    }
    let limit = (8.0 * EDGE) * (8.0 * EDGE);
    let mut edges = vec![false; w * h];
    for y in 0..h {
        let (a, b, c) = (&pad[y * pw..], &pad[(y + 1) * pw..], &pad[(y + 2) * pw..]);
        for x in 0..w {
            let gx = a[x + 2] + 2.0 * b[x + 2] + c[x + 2] - a[x] - 2.0 * b[x] - c[x];
            let gy = c[x] + 2.0 * c[x + 1] + c[x + 2] - a[x] - 2.0 * a[x + 1] - a[x + 2];
            edges[y * w + x] = gx * gx + gy * gy > limit;
        }
    }
    edges
}

/// The paper region: flood from bright edge-free seeds in the central ninth through edge-free
/// pixels, then with its holes filled. `None` if there is no seed.
fn flood_page(small: &Plane, edges: &[bool]) -> Option<Vec<bool>> {
    let (w, h) = (small.w, small.h);
    let (x0, x1, y0, y1) = (w / 3, 2 * w / 3, h / 3, 2 * h / 3);
    let mut centre = Vec::new();
    for y in y0..y1 {
        for x in x0..x1 {
            if !edges[y * w + x] {
                centre.push(small.at(x, y));
            }
        }
    }
    if centre.len() < 16 {
        return None;
    }
    let bright = crate::plane::quantile(&centre, 0.6);
    let mut mask = vec![false; w * h];
    let mut queue = VecDeque::new();
    for y in y0..y1 {
        for x in x0..x1 {
            let i = y * w + x;
            if !edges[i] && small.data[i] >= bright {
                mask[i] = true;
                queue.push_back(i);
            }
        }
    }
    flood(&mut mask, &mut queue, w, h, |i| !edges[i]);
    // Fill holes: whatever the outside cannot reach without crossing the region is inside.
    let mut outside = vec![false; w * h];
    let mut queue = VecDeque::new();
    for i in 0..w * h {
        let (x, y) = (i % w, i / w);
        if (x == 0 || y == 0 || x == w - 1 || y == h - 1) && !mask[i] {
            outside[i] = true;
            queue.push_back(i);
        }
    }
    flood(&mut outside, &mut queue, w, h, |i| !mask[i]);
    Some(outside.iter().map(|&o| !o).collect())
}

/// 4-connected flood from `queue` into pixels where `open` holds.
fn flood(
    set: &mut [bool],
    queue: &mut VecDeque<usize>,
    w: usize,
    h: usize,
    open: impl Fn(usize) -> bool,
) {
    while let Some(i) = queue.pop_front() {
        let (x, y) = (i % w, i / w);
        let mut visit = |j: usize| {
            if !set[j] && open(j) {
                set[j] = true;
                queue.push_back(j);
            }
        };
        if x > 0 {
            visit(i - 1);
        }
        if x + 1 < w {
            visit(i + 1);
        }
        if y > 0 {
            visit(i - w);
        }
        if y + 1 < h {
            visit(i + w);
        }
    }
}

/// A line through `c` with unit direction `d`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Line {
    c: (f64, f64),
    d: (f64, f64),
}

impl Line {
    fn distance(&self, p: (f64, f64)) -> f64 {
        // Signed, positive to the left of `d` in y-down coordinates.
        (p.0 - self.c.0) * self.d.1 - (p.1 - self.c.1) * self.d.0
    }
}

fn dist(a: (f64, f64), b: (f64, f64)) -> f64 {
    ((a.0 - b.0).powi(2) + (a.1 - b.1).powi(2)).sqrt()
}

/// Total least squares with trimming: fit, drop points further than 2.5 robust sigmas (at
/// least 1 px), refit. Returns the line and the residuals of all points.
fn robust_line(points: &[(f64, f64)]) -> Option<(Line, Vec<f64>)> {
    let mut keep: Vec<(f64, f64)> = points.to_vec();
    let mut line = None;
    for _ in 0..4 {
        if keep.len() < 5 {
            return None;
        }
        let l = tls(&keep)?;
        let res: Vec<f64> = points.iter().map(|&p| l.distance(p).abs()).collect();
        let mut sorted = res.clone();
        sorted.sort_by(f64::total_cmp);
        let mad = sorted[sorted.len() / 2];
        let limit = (2.5 * 1.4826 * mad).max(1.0);
        keep = points
            .iter()
            .zip(&res)
            .filter(|&(_, &r)| r <= limit)
            .map(|(&p, _)| p)
            .collect();
        line = Some(l);
    }
    let l = line?;
    let res = points.iter().map(|&p| l.distance(p)).collect();
    Some((l, res))
}

fn tls(points: &[(f64, f64)]) -> Option<Line> {
    let n = points.len() as f64;
    let (mx, my) = points
        .iter()
        .fold((0.0, 0.0), |a, p| (a.0 + p.0 / n, a.1 + p.1 / n));
    let (mut sxx, mut sxy, mut syy) = (0.0, 0.0, 0.0);
    for p in points {
        let (dx, dy) = (p.0 - mx, p.1 - my);
        sxx += dx * dx;
        sxy += dx * dy;
        syy += dy * dy;
    }
    // Principal direction of the scatter.
    let theta = 0.5 * (2.0 * sxy).atan2(sxx - syy);
    let d = (theta.cos(), theta.sin());
    (mx.is_finite() && my.is_finite() && d.0.is_finite()).then_some(Line { c: (mx, my), d })
}

fn intersect(a: &Line, b: &Line) -> Option<(f64, f64)> {
    let den = a.d.0 * b.d.1 - a.d.1 * b.d.0;
    if den.abs() < 1e-6 {
        return None;
    }
    let t = ((b.c.0 - a.c.0) * b.d.1 - (b.c.1 - a.c.1) * b.d.0) / den;
    Some((a.c.0 + t * a.d.0, a.c.1 + t * a.d.1))
}

/// Corners tl, tr, br, bl from lines top, right, bottom, left.
fn intersect_all(l: &[Line; 4]) -> Option<[(f64, f64); 4]> {
    Some([
        intersect(&l[3], &l[0])?,
        intersect(&l[0], &l[1])?,
        intersect(&l[1], &l[2])?,
        intersect(&l[2], &l[3])?,
    ])
}

/// Coarse side lines (top, right, bottom, left) of the region, in downscaled pixels, each with
/// the 90th percentile of its boundary points' distance from it.
fn fit_sides(mask: &[bool], w: usize, h: usize) -> Option<[(Line, f64); 4]> {
    // Corners: extremes along the diagonals (valid for rotations well under 45°).
    let mut ext = [(f64::MAX, 0usize, 0usize); 4];
    let mut any = false;
    for y in 0..h {
        for x in 0..w {
            if !mask[y * w + x] {
                continue;
            }
            any = true;
            let (fx, fy) = (x as f64, y as f64);
            let keys = [fx + fy, -(fx - fy), -(fx + fy), -(fy - fx)];
            for (k, e) in keys.iter().zip(ext.iter_mut()) {
                if *k < e.0 {
                    *e = (*k, x, y);
                }
            }
        }
    }
    if !any {
        return None;
    }
    let [tl, tr, br, bl] = ext.map(|e| (e.1, e.2));
    // Per column the first / last region pixel, per row the first / last one.
    let mut top = vec![usize::MAX; w];
    let mut bottom = vec![usize::MAX; w];
    let mut left = vec![usize::MAX; h];
    let mut right = vec![usize::MAX; h];
    for y in 0..h {
        for x in 0..w {
            if mask[y * w + x] {
                if top[x] == usize::MAX {
                    top[x] = y;
                }
                bottom[x] = y;
                if left[y] == usize::MAX {
                    left[y] = x;
                }
                right[y] = x;
            }
        }
    }
    // Boundary points between two corners, 8 % trimmed at each end, on the outer pixel edge.
    let span = |a: usize, b: usize| {
        let (lo, hi) = (a.min(b), a.max(b));
        let trim = (hi - lo) / 12;
        (lo + trim)..=(hi - trim).max(lo + trim)
    };
    let collect_cols = |edge: &[usize], a: usize, b: usize, off: f64| -> Vec<(f64, f64)> {
        span(a, b)
            .filter(|&x| edge[x] != usize::MAX)
            .map(|x| (x as f64 + 0.5, edge[x] as f64 + off))
            .collect()
    };
    let collect_rows = |edge: &[usize], a: usize, b: usize, off: f64| -> Vec<(f64, f64)> {
        span(a, b)
            .filter(|&y| edge[y] != usize::MAX)
            .map(|y| (edge[y] as f64 + off, y as f64 + 0.5))
            .collect()
    };
    let fit = |points: Vec<(f64, f64)>| -> Option<(Line, f64)> {
        let (line, res) = robust_line(&points)?;
        let abs: Vec<f32> = res.iter().map(|r| r.abs() as f32).collect();
        Some((line, f64::from(crate::plane::quantile(&abs, 0.9))))
    };
    Some([
        fit(collect_cols(&top, tl.0, tr.0, 0.0))?,
        fit(collect_rows(&right, tr.1, br.1, 1.0))?,
        fit(collect_cols(&bottom, bl.0, br.0, 1.0))?,
        fit(collect_rows(&left, tl.1, bl.1, 0.0))?,
    ])
}

/// Bilinear sample of a grey image, clamped at the border.
fn sample(img: &GrayImage, x: f64, y: f64) -> f32 {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let fx = (x - 0.5).clamp(0.0, (w - 1) as f64);
    let fy = (y - 0.5).clamp(0.0, (h - 1) as f64);
    let (x0, y0) = (fx as usize, fy as usize);
    let (x1, y1) = ((x0 + 1).min(w - 1), (y0 + 1).min(h - 1));
    let (ax, ay) = ((fx - x0 as f64) as f32, (fy - y0 as f64) as f32);
    let raw = img.as_raw();
    let p = |x: usize, y: usize| f32::from(raw[y * w + x]);
    let top = p(x0, y0) + (p(x1, y0) - p(x0, y0)) * ax;
    let bottom = p(x0, y1) + (p(x1, y1) - p(x0, y1)) * ax;
    top + (bottom - top) * ay
}

/// Relocates the side `p0 → p1` (page on its right in y-down coordinates, i.e. corners in
/// clockwise order) on the full image: along normals at many points, the position of the
/// steepest inside-bright to outside-dark step within `reach` pixels. Returns the refitted line
/// and the 90th percentile of the edge points' distance from it.
fn refine_side(img: &GrayImage, p0: (f64, f64), p1: (f64, f64), reach: f64) -> Option<(Line, f64)> {
    let (w, h) = (img.width() as f64, img.height() as f64);
    let len = dist(p0, p1);
    if len < 20.0 || w < 2.0 || h < 2.0 {
        return None;
    }
    let d = ((p1.0 - p0.0) / len, (p1.1 - p0.1) / len);
    let out = (d.1, -d.0);
    let steps = reach.ceil() as i64;
    let samples = 120;
    let mut points = Vec::new();
    let mut tried = 0;
    let mut profile = Vec::with_capacity(2 * steps as usize + 1);
    for k in 0..samples {
        let t = 0.08 + 0.84 * k as f64 / (samples - 1) as f64;
        let c = (p0.0 + t * (p1.0 - p0.0), p0.1 + t * (p1.1 - p0.1));
        // Only where the whole profile lies inside the image (a sheet cut by the frame has no
        // edge to find there).
        let a = (c.0 - out.0 * reach, c.1 - out.1 * reach);
        let b = (c.0 + out.0 * reach, c.1 + out.1 * reach);
        let inside = |p: (f64, f64)| p.0 >= 1.0 && p.1 >= 1.0 && p.0 <= w - 1.0 && p.1 <= h - 1.0;
        if !inside(a) || !inside(b) {
            continue;
        }
        tried += 1;
        profile.clear();
        for s in -steps..=steps {
            // Average three points along the side against noise and text.
            let mut v = 0.0;
            for along in [-1.5, 0.0, 1.5] {
                v += sample(
                    img,
                    c.0 + out.0 * s as f64 + d.0 * along,
                    c.1 + out.1 * s as f64 + d.1 * along,
                );
            }
            profile.push((v / 3.0 + 8.0).ln());
        }
        let n = profile.len();
        let mut best = (0.0f32, 0usize);
        for i in 2..n.saturating_sub(2) {
            let dv = profile[i + 2] + profile[i + 1] - profile[i - 1] - profile[i - 2];
            if dv < best.0 {
                best = (dv, i);
            }
        }
        // Ratio of at least ~1.08 across the step.
        if best.0 > -0.15 {
            continue;
        }
        let i = best.1;
        let dv = |i: usize| profile[i + 2] + profile[i + 1] - profile[i - 1] - profile[i - 2];
        let mut off = 0.0;
        if i >= 3 && i + 3 < n {
            let (a, b, c2) = (dv(i - 1), dv(i), dv(i + 1));
            let den = a - 2.0 * b + c2;
            if den.abs() > 1e-6 {
                off = (0.5 * (a - c2) / den).clamp(-0.5, 0.5) as f64;
            }
        }
        // The 4-tap difference is centred on sample i.
        let s = i as f64 - steps as f64 + off;
        points.push((c.0 + out.0 * s, c.1 + out.1 * s));
    }
    if tried < samples / 3 || points.len() * 2 < tried {
        return None;
    }
    let (line, res) = robust_line(&points)?;
    // Keep the orientation of p0 → p1.
    let line = if line.d.0 * d.0 + line.d.1 * d.1 < 0.0 {
        Line {
            c: line.c,
            d: (-line.d.0, -line.d.1),
        }
    } else {
        line
    };
    let abs: Vec<f32> = res.iter().map(|r| r.abs() as f32).collect();
    let spread = f64::from(crate::plane::quantile(&abs, 0.9));
    Some((line, spread))
}

fn plausible(
    q: &PageQuad,
    w: f64,
    h: f64,
    mask: &[bool],
    mw: usize,
    mh: usize,
    factor: f64,
) -> bool {
    let c = &q.corners;
    if c.iter().any(|p| !p.0.is_finite() || !p.1.is_finite()) {
        return false;
    }
    // Corners may lie a little outside the frame (a sheet cut by it), not far.
    if c.iter()
        .any(|p| p.0 < -0.1 * w || p.1 < -0.1 * h || p.0 > 1.1 * w || p.1 > 1.1 * h)
    {
        return false;
    }
    // Convex with every angle within 60–120°.
    for i in 0..4 {
        let a = c[(i + 3) % 4];
        let b = c[i];
        let n = c[(i + 1) % 4];
        let u = (a.0 - b.0, a.1 - b.1);
        let v = (n.0 - b.0, n.1 - b.1);
        let (lu, lv) = (
            (u.0 * u.0 + u.1 * u.1).sqrt(),
            (v.0 * v.0 + v.1 * v.1).sqrt(),
        );
        if lu < 1.0 || lv < 1.0 {
            return false;
        }
        // Clockwise order in y-down coordinates: the turn from the incoming to the outgoing
        // side has the same sign at every corner.
        let cross = u.0 * v.1 - u.1 * v.0;
        if cross > 0.0 {
            return false;
        }
        let angle = ((u.0 * v.0 + u.1 * v.1) / (lu * lv))
            .clamp(-1.0, 1.0)
            .acos()
            .to_degrees();
        if !(60.0..=120.0).contains(&angle) {
            return false;
        }
    }
    let area = polygon_area(c);
    let frac = area / (w * h);
    if !(0.25..=0.98).contains(&frac) {
        return false;
    }
    // Opposite sides of a photographed rectangle differ by perspective, not by a factor 1.6.
    let l = &q.lengths;
    let ratio = |a: f64, b: f64| a.min(b) / a.max(b);
    if ratio(l[0], l[2]) < 0.6 || ratio(l[1], l[3]) < 0.6 {
        return false;
    }
    let (pw, ph) = (l[0].max(l[2]), l[1].max(l[3]));
    if ratio(pw, ph) < 0.25 {
        return false;
    }
    // A quadrilateral that is just the frame (a scan with a thin dark border) is no sheet.
    let frame = [(0.0, 0.0), (w, 0.0), (w, h), (0.0, h)];
    let tol = 0.015 * (w * w + h * h).sqrt();
    if c.iter().zip(frame.iter()).all(|(a, b)| dist(*a, *b) < tol) {
        return false;
    }
    // The flooded region and the quadrilateral must agree.
    let (mut in_quad, mut mask_in, mut mask_n) = (0usize, 0usize, 0usize);
    for y in 0..mh {
        for x in 0..mw {
            let p = ((x as f64 + 0.5) * factor, (y as f64 + 0.5) * factor);
            let inside = point_in_convex(c, p);
            let m = mask[y * mw + x];
            if inside {
                in_quad += 1;
                if m {
                    mask_in += 1;
                }
            }
            if m {
                mask_n += 1;
            }
        }
    }
    if in_quad == 0 || mask_n == 0 {
        return false;
    }
    let covered = mask_in as f64 / in_quad as f64;
    let contained = mask_in as f64 / mask_n as f64;
    covered >= 0.85 && contained >= 0.9
}

fn polygon_area(c: &[(f64, f64); 4]) -> f64 {
    let mut s = 0.0;
    for i in 0..4 {
        let (a, b) = (c[i], c[(i + 1) % 4]);
        s += a.0 * b.1 - b.0 * a.1;
    }
    s.abs() / 2.0
}

fn point_in_convex(c: &[(f64, f64); 4], p: (f64, f64)) -> bool {
    (0..4).all(|i| {
        let (a, b) = (c[i], c[(i + 1) % 4]);
        (b.0 - a.0) * (p.1 - a.1) - (b.1 - a.1) * (p.0 - a.0) >= 0.0
    })
}

/// For looking at the detector: the flooded region (grey), edges (black), as an image.
pub(crate) fn debug_mask(small: &Plane) -> GrayImage {
    let edges = edge_map(small);
    let mask = flood_page(small, &edges).unwrap_or_else(|| vec![false; small.w * small.h]);
    GrayImage::from_fn(small.w as u32, small.h as u32, |x, y| {
        let i = y as usize * small.w + x as usize;
        image::Luma([if edges[i] {
            0
        } else if mask[i] {
            200
        } else {
            90
        }])
    })
}
