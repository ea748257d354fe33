//! Illumination flattening.
//!
//! A photo's brightness is reflectance × illumination; the illumination (cast shadow, vignette,
//! light gradient, colour cast turned grey) varies slowly, the reflectance (paper or ink) does
//! not. Paper is the brightest thing almost everywhere on a page, so a grey closing (max filter
//! then min filter) with a window wider than a text stroke removes the ink and leaves the paper
//! level, the closing's min half keeping the position of shadow edges. Smoothed and upsampled,
//! that estimate divides the page: paper becomes 1 everywhere, ink keeps its ratio to paper.
//! A final linear stretch puts paper at white and the darkest ink near black; on a clean page
//! (white paper, black ink) every step is close to the identity.
//!
//! The estimate is made on a box-downscaled copy (a page's long side at ~500 px) and applied at
//! full resolution in a single pass with bilinear interpolation of the estimate.

use image::GrayImage;

use crate::geom::{Mat3, block_inside};
use crate::plane::{Plane, quantile};

/// Median paper level from which a page counts as already white (with its 5th percentile at
/// least 3/4 of it, i.e. no shadowed part).
const ALREADY_WHITE: f32 = 248.0;

/// Paper level of `p` by grey closing with radius `r` and smoothing. Pixels with
/// `valid[i] == false` (outside the photographed sheet) are ignored and filled from their
/// neighbours.
pub(crate) fn background(p: &Plane, valid: Option<&[bool]>, r: usize) -> Plane {
    closing_and_smooth(p, valid, r).0
}

/// [`background`] and the closing before smoothing (sharp where the page has dark areas wider
/// than the window, such as a logo; soft where the light changes).
fn closing_and_smooth(p: &Plane, valid: Option<&[bool]>, r: usize) -> (Plane, Plane) {
    let (w, h) = (p.w, p.h);
    let is_valid = |i: usize| valid.is_none_or(|v| v.get(i).copied().unwrap_or(false));
    let mut lo = p.clone();
    for (i, v) in lo.data.iter_mut().enumerate() {
        if !is_valid(i) {
            *v = 0.0;
        }
    }
    let mut closed = lo.max_filter(r);
    for (i, v) in closed.data.iter_mut().enumerate() {
        if !is_valid(i) {
            *v = f32::MAX;
        }
    }
    let closed = closed.min_filter(r);
    // Normalised smoothing: invalid pixels carry no weight.
    let mut num = Plane::new(w, h, 0.0);
    let mut den = Plane::new(w, h, 0.0);
    let mut values = Vec::new();
    for i in 0..w * h {
        if is_valid(i) {
            num.data[i] = closed.data[i];
            den.data[i] = 1.0;
            values.push(closed.data[i]);
        }
    }
    let fallback = if values.is_empty() {
        255.0
    } else {
        quantile(&values, 0.5)
    };
    // Two passes make the kernel triangular (no blocky max-filter steps). Without invalid
    // pixels the weights are all 1 and need no smoothing.
    let all_valid = values.len() == w * h;
    let num = num.box_blur(r).box_blur(r);
    let den = if all_valid {
        den
    } else {
        den.box_blur(r).box_blur(r)
    };
    // Holes wider than the kernel (large invalid areas): fill from a much wider average.
    let wide_r = w.max(h) / 8 + 1;
    let (wide_num, wide_den) = if den.data.iter().any(|&d| d < 1e-3) {
        (Some(num.box_blur(wide_r)), Some(den.box_blur(wide_r)))
    } else {
        (None, None)
    };
    let mut out = Plane::new(w, h, fallback);
    for i in 0..w * h {
        let v = if den.data[i] >= 1e-3 {
            num.data[i] / den.data[i]
        } else if let (Some(n), Some(d)) = (&wide_num, &wide_den)
            && d.data[i] >= 1e-4
        {
            n.data[i] / d.data[i]
        } else {
            fallback
        };
        out.data[i] = v.max(1.0);
    }
    (out, closed)
}

/// Output of [`flatten`].
pub(crate) struct Flattened {
    pub(crate) image: GrayImage,
    /// The paper level on a grid of `cell`×`cell` output pixels.
    pub(crate) paper: Plane,
    /// The paper level before smoothing, same grid.
    pub(crate) closed: Plane,
    /// Which grid cells lie on the photographed sheet.
    pub(crate) valid: Vec<bool>,
    pub(crate) cell: usize,
    /// False when the page was left as it was (already white and even).
    pub(crate) applied: bool,
}

/// Flattens a warped page. `m` maps page pixels to the `sw`×`sh` source image, to know which
/// parts of the page came from outside the photo.
pub(crate) fn flatten(page: &GrayImage, m: &Mat3, sw: u32, sh: u32) -> Flattened {
    let (w, h) = (page.width() as usize, page.height() as usize);
    let cell = w.max(h).div_ceil(500).max(1);
    let small = Plane::downscale(page, cell);
    let (sw, sh) = (f64::from(sw), f64::from(sh));
    let c = cell as f64;
    let valid: Vec<bool> = (0..small.w * small.h)
        .map(|i| {
            let (x, y) = ((i % small.w) as f64, (i / small.w) as f64);
            block_inside(
                m,
                sw,
                sh,
                x * c,
                y * c,
                ((x + 1.0) * c).min(w as f64),
                ((y + 1.0) * c).min(h as f64),
            )
        })
        .collect();
    // Radius 1–1.2 % of the page's long side: several stroke widths, well under a shadow's size.
    let r = 5;
    let (paper, closed) = closing_and_smooth(&small, Some(&valid), r);
    let levels: Vec<f32> = paper
        .data
        .iter()
        .zip(&valid)
        .filter(|&(_, &v)| v)
        .map(|(&b, _)| b)
        .collect();
    // A page whose paper is already white nearly everywhere (a clean render, a good scan) is
    // left exactly as it is: shaded table rows are content, and OCR should see the same pixels.
    let typical = quantile(&levels, 0.5);
    let already_flat = typical >= ALREADY_WHITE && quantile(&levels, 0.05) >= 0.75 * typical;
    if w == 0 || h == 0 || already_flat {
        return Flattened {
            image: page.clone(),
            paper,
            closed,
            valid,
            cell,
            applied: false,
        };
    }
    let mut image = GrayImage::new(w as u32, h as u32);
    // Horizontal interpolation positions into the paper grid and validity cells, shared by
    // all rows.
    let gx: Vec<(u32, u32, f32)> = (0..w)
        .map(|x| {
            let fx = ((x as f32 + 0.5) / cell as f32 - 0.5).clamp(0.0, (paper.w - 1) as f32);
            let x0 = fx as usize;
            (x0 as u32, (x0 + 1).min(paper.w - 1) as u32, fx - x0 as f32)
        })
        .collect();
    let vx: Vec<u32> = (0..w).map(|x| (x / cell).min(small.w - 1) as u32).collect();
    let raw = page.as_raw();
    // `grid` (per paper cell) interpolated to full-resolution row `y`.
    let row_of = |grid: &Plane, y: usize, out: &mut [f32]| {
        let fy = ((y as f32 + 0.5) / cell as f32 - 0.5).clamp(0.0, (grid.h - 1) as f32);
        let y0 = fy as usize;
        let y1 = (y0 + 1).min(grid.h - 1);
        let ay = fy - y0 as f32;
        let (r0, r1) = (&grid.data[y0 * grid.w..], &grid.data[y1 * grid.w..]);
        for (x, v) in out.iter_mut().enumerate() {
            *v = r0[x] + (r1[x] - r0[x]) * ay;
        }
    };
    let mut grid_row = vec![0.0f32; paper.w];
    // The stretch from a sparse sample of paper ratios.
    let mut sample = Vec::new();
    let step = (w.max(h) / 600).max(1);
    for y in (0..h).step_by(step) {
        row_of(&paper, y, &mut grid_row);
        let valid_row = &valid[(y / cell).min(small.h - 1) * small.w..];
        for x in (0..w).step_by(step) {
            if valid_row[vx[x] as usize] {
                let (x0, x1, ax) = gx[x];
                let (b0, b1) = (grid_row[x0 as usize], grid_row[x1 as usize]);
                sample.push(f32::from(raw[y * w + x]) / (b0 + (b1 - b0) * ax));
            }
        }
    }
    // Paper (most of a page) to white, the darkest ink (0.5 %) towards black, within limits
    // that keep a blank or dark page from being stretched into noise.
    let white = quantile(&sample, 0.75).clamp(0.8, 1.05);
    let black = quantile(&sample, 0.005).clamp(0.0, 0.4);
    let scale = 255.0 / (white - black);
    // out = (v / paper - black) * scale = v * gain - black * scale, with the gain interpolated
    // (the paper level is smooth, so this equals dividing by the interpolated level).
    let gain = Plane {
        w: paper.w,
        h: paper.h,
        data: paper.data.iter().map(|&b| scale / b).collect(),
    };
    let lift = black * scale - 0.5;
    let out = image.as_mut();
    for y in 0..h {
        row_of(&gain, y, &mut grid_row);
        let valid_row = &valid[(y / cell).min(small.h - 1) * small.w..];
        let src = &raw[y * w..(y + 1) * w];
        let dst = &mut out[y * w..(y + 1) * w];
        for x in 0..w {
            let v = src[x];
            dst[x] = if v != 255 || valid_row[vx[x] as usize] {
                let (x0, x1, ax) = gx[x];
                let (g0, g1) = (grid_row[x0 as usize], grid_row[x1 as usize]);
                (f32::from(v) * (g0 + (g1 - g0) * ax) - lift).clamp(0.0, 255.0) as u8
            } else {
                255
            };
        }
    }
    Flattened {
        image,
        paper,
        closed,
        valid,
        cell,
        applied: true,
    }
}

/// Unsharp mask: `p + amount · (p − blur(p))` with the 5-tap binomial blur (σ = 1 px).
pub(crate) fn sharpen(img: &mut GrayImage, amount: f32) {
    let (w, h) = (img.width() as usize, img.height() as usize);
    if w < 5 || h < 5 {
        return;
    }
    let src = img.as_raw().clone();
    // Horizontal pass, ×16, edges replicated.
    let mut horiz = vec![0u16; w * h];
    for (row, out) in src.chunks_exact(w).zip(horiz.chunks_exact_mut(w)) {
        let p = |x: isize| u16::from(row[x.clamp(0, w as isize - 1) as usize]);
        for (x, o) in out.iter_mut().enumerate() {
            let x = x as isize;
            *o = p(x - 2) + 4 * p(x - 1) + 6 * p(x) + 4 * p(x + 1) + p(x + 2);
        }
    }
    let k = (amount * 256.0) as i32;
    let dst = img.as_mut();
    for y in 0..h {
        let r = |d: isize| &horiz[(y as isize + d).clamp(0, h as isize - 1) as usize * w..][..w];
        let (a, b, c, d, e) = (r(-2), r(-1), r(0), r(1), r(2));
        for x in 0..w {
            // Blur ×256.
            let blur = i32::from(a[x])
                + 4 * i32::from(b[x])
                + 6 * i32::from(c[x])
                + 4 * i32::from(d[x])
                + i32::from(e[x]);
            let p = i32::from(src[y * w + x]);
            let v = p + ((k * (p * 256 - blur)) >> 16);
            dst[y * w + x] = v.clamp(0, 255) as u8;
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use image::Luma;

    #[test]
    fn clean_page_is_nearly_unchanged() {
        let page = GrayImage::from_fn(800, 1000, |x, y| {
            Luma([if (y / 20) % 3 == 0 && (x / 6) % 4 != 0 {
                0
            } else {
                255
            }])
        });
        let f = flatten(&page, &Mat3::IDENTITY, 800, 1000);
        let diff: u64 = page
            .as_raw()
            .iter()
            .zip(f.image.as_raw())
            .map(|(&a, &b)| u64::from(a.abs_diff(b)))
            .sum();
        assert!(diff / (800 * 1000) < 2, "mean change {}", diff / 800_000);
    }

    #[test]
    fn sharpening_steepens_an_edge_and_keeps_flat_areas() {
        let mut img = GrayImage::from_fn(40, 20, |x, _| Luma([if x < 20 { 60 } else { 200 }]));
        let before = img.clone();
        sharpen(&mut img, 0.7);
        assert_eq!(img.get_pixel(5, 10), before.get_pixel(5, 10));
        assert_eq!(img.get_pixel(35, 10), before.get_pixel(35, 10));
        assert!(img.get_pixel(19, 10).0[0] < 60 && img.get_pixel(20, 10).0[0] > 200);
        let mut tiny = GrayImage::new(3, 3);
        sharpen(&mut tiny, 0.7);
    }

    #[test]
    fn tiny_and_empty_pages_do_not_panic() {
        for (w, h) in [(0, 0), (1, 1), (1, 50), (3000, 1), (2, 2)] {
            let page = GrayImage::from_pixel(w, h, Luma([128]));
            let f = flatten(&page, &Mat3::IDENTITY, w, h);
            assert_eq!(f.image.dimensions(), (w, h));
        }
    }
}
