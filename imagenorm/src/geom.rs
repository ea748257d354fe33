//! Projective geometry in `f64` and the single bilinear warp that takes the input image to the
//! output page.
//!
//! Every coordinate is continuous with pixel centres at `+0.5`, so pixel `(0, 0)` covers
//! `[0, 1)²`; this keeps the scale between the downscaled estimation copies and the full image
//! an exact multiplication.

use image::{GrayImage, Luma};

use crate::plane::Plane;

/// A row-major 3×3 matrix acting on homogeneous column vectors `(x, y, 1)`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Mat3(pub(crate) [f64; 9]);

impl Mat3 {
    pub(crate) const IDENTITY: Mat3 = Mat3([1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]);

    pub(crate) fn translate(tx: f64, ty: f64) -> Mat3 {
        Mat3([1.0, 0.0, tx, 0.0, 1.0, ty, 0.0, 0.0, 1.0])
    }

    pub(crate) fn scale(s: f64) -> Mat3 {
        Mat3([s, 0.0, 0.0, 0.0, s, 0.0, 0.0, 0.0, 1.0])
    }

    /// `self · other`: applies `other` first.
    pub(crate) fn then_after(&self, other: &Mat3) -> Mat3 {
        let (a, b) = (&self.0, &other.0);
        let mut m = [0.0; 9];
        for r in 0..3 {
            for c in 0..3 {
                m[r * 3 + c] = (0..3).map(|k| a[r * 3 + k] * b[k * 3 + c]).sum();
            }
        }
        Mat3(m)
    }

    /// Maps a point; `None` when it goes to infinity (or behind the camera).
    pub(crate) fn apply(&self, x: f64, y: f64) -> Option<(f64, f64)> {
        let m = &self.0;
        let w = m[6] * x + m[7] * y + m[8];
        if w.abs() < 1e-12 || !w.is_finite() {
            return None;
        }
        Some((
            (m[0] * x + m[1] * y + m[2]) / w,
            (m[3] * x + m[4] * y + m[5]) / w,
        ))
    }

    /// The homography taking each `from[i]` to `to[i]` (direct linear transform, `h33 = 1`),
    /// `None` if the points are degenerate (three collinear, repeated, not finite).
    pub(crate) fn from_points(from: [(f64, f64); 4], to: [(f64, f64); 4]) -> Option<Mat3> {
        let mut a = [[0.0f64; 9]; 8];
        for i in 0..4 {
            let (x, y) = from[i];
            let (u, v) = to[i];
            a[2 * i] = [x, y, 1.0, 0.0, 0.0, 0.0, -u * x, -u * y, u];
            a[2 * i + 1] = [0.0, 0.0, 0.0, x, y, 1.0, -v * x, -v * y, v];
        }
        let h = solve8(a)?;
        let m = Mat3([h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7], 1.0]);
        // Reject near-singular results: they would map the page to a line.
        let det = m.det();
        if !det.is_finite() || det.abs() < 1e-12 {
            return None;
        }
        Some(m)
    }

    fn det(&self) -> f64 {
        let m = &self.0;
        m[0] * (m[4] * m[8] - m[5] * m[7]) - m[1] * (m[3] * m[8] - m[5] * m[6])
            + m[2] * (m[3] * m[7] - m[4] * m[6])
    }
}

/// Gaussian elimination with partial pivoting on an 8×9 augmented matrix.
fn solve8(mut a: [[f64; 9]; 8]) -> Option<[f64; 8]> {
    for col in 0..8 {
        let pivot = (col..8).max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))?;
        if !a[pivot][col].is_finite() || a[pivot][col].abs() < 1e-10 {
            return None;
        }
        a.swap(col, pivot);
        let pivot_row = a[col];
        for (r, row) in a.iter_mut().enumerate() {
            if r != col {
                let f = row[col] / pivot_row[col];
                if f != 0.0 {
                    for (v, p) in row.iter_mut().zip(pivot_row.iter()).skip(col) {
                        *v -= f * p;
                    }
                }
            }
        }
    }
    let mut x = [0.0; 8];
    for i in 0..8 {
        x[i] = a[i][8] / a[i][i];
        if !x[i].is_finite() {
            return None;
        }
    }
    Some(x)
}

/// Warps `src` into a `w`×`h` image: output pixel centre `p` takes the bilinear sample of `src`
/// at `m(p)`; outside the source it is white (paper), which flattening leaves white.
pub(crate) fn warp_gray(src: &GrayImage, m: &Mat3, w: u32, h: u32) -> GrayImage {
    let (sw, sh) = (src.width() as usize, src.height() as usize);
    let raw = src.as_raw();
    let mut out = GrayImage::from_pixel(w, h, Luma([255]));
    if sw == 0 || sh == 0 {
        return out;
    }
    let rows = out.as_mut().chunks_mut(w.max(1) as usize);
    for (y, row) in rows.enumerate() {
        let yc = y as f64 + 0.5;
        let k = &m.0;
        // Homogeneous numerators and denominator, stepped along the row.
        let mut nx = k[0] * 0.5 + k[1] * yc + k[2];
        let mut ny = k[3] * 0.5 + k[4] * yc + k[5];
        let mut d = k[6] * 0.5 + k[7] * yc + k[8];
        for px in row.iter_mut() {
            if d.abs() > 1e-12 {
                let u = nx / d - 0.5;
                let v = ny / d - 0.5;
                if u > -0.5 && v > -0.5 && u < sw as f64 - 0.5 && v < sh as f64 - 0.5 {
                    *px = bilinear(raw, sw, sh, u, v);
                }
            }
            nx += k[0];
            ny += k[3];
            d += k[6];
        }
    }
    out
}

/// Bilinear sample at index coordinates `(u, v)` (pixel centres at integers), in 8-bit fixed
/// point; the caller has checked that `(u, v)` lies within half a pixel of the image.
#[inline]
fn bilinear(raw: &[u8], sw: usize, sh: usize, u: f64, v: f64) -> u8 {
    let fu = (u * 256.0) as i64;
    let fv = (v * 256.0) as i64;
    let (x0, y0) = (fu >> 8, fv >> 8);
    if x0 >= 0 && y0 >= 0 && (x0 as usize) + 1 < sw && (y0 as usize) + 1 < sh {
        let (ax, ay) = ((fu & 255) as u32, (fv & 255) as u32);
        let i = y0 as usize * sw + x0 as usize;
        let (p00, p10) = (u32::from(raw[i]), u32::from(raw[i + 1]));
        let (p01, p11) = (u32::from(raw[i + sw]), u32::from(raw[i + sw + 1]));
        let top = p00 * (256 - ax) + p10 * ax;
        let bottom = p01 * (256 - ax) + p11 * ax;
        return ((top * (256 - ay) + bottom * ay + 32768) >> 16) as u8;
    }
    // The outermost half pixel: clamp to the edge.
    let uc = u.clamp(0.0, (sw - 1) as f64);
    let vc = v.clamp(0.0, (sh - 1) as f64);
    let x0 = uc as usize;
    let y0 = vc as usize;
    let x1 = (x0 + 1).min(sw - 1);
    let y1 = (y0 + 1).min(sh - 1);
    let ax = (uc - x0 as f64) as f32;
    let ay = (vc - y0 as f64) as f32;
    let p = |x: usize, y: usize| f32::from(raw[y * sw + x]);
    let top = p(x0, y0) + (p(x1, y0) - p(x0, y0)) * ax;
    let bottom = p(x0, y1) + (p(x1, y1) - p(x0, y1)) * ax;
    (top + (bottom - top) * ay + 0.5).clamp(0.0, 255.0) as u8
}

/// Warps a float plane the same way; returns the plane and which pixels came from inside the
/// source (the others are `fill`).
pub(crate) fn warp_plane(
    src: &Plane,
    m: &Mat3,
    w: usize,
    h: usize,
    fill: f32,
) -> (Plane, Vec<bool>) {
    let mut out = Plane::new(w, h, fill);
    let mut valid = vec![false; w * h];
    for y in 0..h {
        for x in 0..w {
            if let Some((u, v)) = m.apply(x as f64 + 0.5, y as f64 + 0.5)
                && u >= 0.0
                && v >= 0.0
                && u <= src.w as f64
                && v <= src.h as f64
            {
                out.data[y * w + x] = src.sample(u as f32, v as f32);
                valid[y * w + x] = true;
            }
        }
    }
    (out, valid)
}

/// Whether the output-space rectangle `[x0, x1] × [y0, y1]` maps wholly inside a `sw`×`sh` source.
pub(crate) fn block_inside(m: &Mat3, sw: f64, sh: f64, x0: f64, y0: f64, x1: f64, y1: f64) -> bool {
    [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]
        .iter()
        .all(|&(x, y)| {
            m.apply(x, y)
                .is_some_and(|(u, v)| u >= -0.5 && v >= -0.5 && u <= sw + 0.5 && v <= sh + 0.5)
        })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn homography_maps_control_points() {
        let from = [(0.0, 0.0), (100.0, 0.0), (100.0, 150.0), (0.0, 150.0)];
        let to = [(12.0, 7.0), (130.0, 20.0), (118.0, 190.0), (3.0, 170.0)];
        let m = Mat3::from_points(from, to).unwrap();
        for i in 0..4 {
            let (u, v) = m.apply(from[i].0, from[i].1).unwrap();
            assert!((u - to[i].0).abs() < 1e-6 && (v - to[i].1).abs() < 1e-6);
        }
        // Degenerate: three corners on a line.
        let bad = [(0.0, 0.0), (1.0, 1.0), (2.0, 2.0), (0.0, 5.0)];
        assert!(Mat3::from_points(from, bad).is_none());
    }

    #[test]
    fn identity_warp_is_exact() {
        let img = GrayImage::from_fn(7, 5, |x, y| Luma([(x * 30 + y) as u8]));
        assert_eq!(warp_gray(&img, &Mat3::IDENTITY, 7, 5), img);
        let shifted = warp_gray(&img, &Mat3::translate(1.0, 0.0), 7, 5);
        assert_eq!(shifted.get_pixel(0, 0).0[0], 30);
        assert_eq!(shifted.get_pixel(6, 0).0[0], 255);
        assert_eq!(
            warp_gray(&GrayImage::new(0, 0), &Mat3::IDENTITY, 3, 3).len(),
            9
        );
    }
}
