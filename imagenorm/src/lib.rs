//! Page normalisation for OCR of photographed and scanned documents.
//!
//! A phone photo of a sheet shows the desk around it, leans and is keystoned, and carries a
//! cast shadow, vignette and a colour cast; Tesseract, given it raw, loses whole regions.
//! [`normalize`] turns such an image into a clean, upright, flat greyscale page (not
//! binarised: Tesseract binarises better on a flat page than we would):
//!
//! 1. **Grey** ([`to_grey`]): Rec. 601 luminance. It keeps blue ballpoint dark and a yellow
//!    highlighter light; the minimum of the channels read the same on the test set's
//!    hand-written fields but darkens highlighters and warm paper.
//! 2. **Sheet** (module `quad`): on a copy with an ~800 px long side, the sheet is flooded from
//!    the centre through log-brightness edges (a shadow over sheet and desk changes both by the
//!    same ratio, so no brightness threshold works, but the sheet's edge stays a step), its four
//!    sides are fitted robustly and then relocated on the full image, and the quadrilateral is
//!    kept only if plausible. A scan, where the page is the whole image, has none.
//! 3. **Deskew** (module `deskew`): the rotation (±15°) that levels the text lines, by projection
//!    profiles on a small rectified copy; after a good rectification it is ~0, on scans it is
//!    the scanner's skew.
//! 4. **Warp**: one bilinear pass at full resolution that does the four-point perspective
//!    correction (to the size of the longer sides: no resolution lost) and the deskew rotation
//!    (on a canvas enlarged so that no corner is cut).
//! 5. **Flatten** (module `flatten`): divide by the paper level (grey closing of a downscaled
//!    copy, smoothed) and stretch, so that a shadow, vignette or gradient becomes white paper;
//!    a page already white and even is left exactly as it is.
//! 6. **Sharpen**: photos only (a sheet was found), a mild unsharp mask (σ 1 px, amount 0.7)
//!    against camera softness; on the test set it recovers decimal points that OCR otherwise
//!    drops, and it does nothing good for scans, which are left alone.
//! 7. **Flags** ([`Flag`]): deep shadow, glare and curled sides, for review; they change nothing.
//!
//! Estimation runs on downscaled copies; the full image is touched by one conversion, one warp
//! and one division. [`geometry`] repeats the conversion and the warp from [`Params`] without
//! the photometric steps, so that review crops line up with what OCR read.
//!
//! Orientation (upside-down, landscape) is left to the caller's OCR orientation detection:
//! [`Normalized::rotate_quarters`] turns the page with its flags and records the turns in
//! [`Params`], which [`geometry`] then repeats.

mod deskew;
mod flags;
mod flatten;
mod geom;
mod plane;
mod quad;

use std::time::{Duration, Instant};

use image::{DynamicImage, GrayImage};
use serde::{Deserialize, Serialize};

pub use flags::{BBox, Flag};
use geom::Mat3;
use plane::Plane;

/// The normalised page.
#[derive(Clone, Debug)]
pub struct Normalized {
    /// The page: rectified, deskewed, flattened, greyscale (not binarised).
    pub image: GrayImage,
    /// The geometry applied, for [`geometry`].
    pub params: Params,
    /// Regions to review, in `image` pixels.
    pub flags: Vec<Flag>,
    /// Whether illumination flattening changed the page (false when it was already white and
    /// even, as a clean render or a good scan is).
    pub flattened: bool,
    pub timings: Timings,
}

/// Everything needed to repeat the geometry of a normalisation on the original image.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Params {
    /// The sheet's corners in the input image (tl, tr, br, bl; continuous pixel coordinates,
    /// pixel centres at +0.5) if a sheet was found on a background; `None` for a scan.
    pub page_quad: Option<[(f32, f32); 4]>,
    /// Size of the rectified page (the input's size when there is no quadrilateral).
    pub width: u32,
    pub height: u32,
    /// Clockwise quarter turns applied after rectification and deskew (0..=3).
    pub quarter_turns: u8,
    /// Rotation applied after rectification, degrees, counter-clockwise on screen positive.
    pub skew_degrees: f32,
}

/// Wall time of each step of [`normalize`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Timings {
    pub grey: Duration,
    pub detect: Duration,
    pub deskew: Duration,
    pub warp: Duration,
    pub flatten: Duration,
    pub sharpen: Duration,
    pub flags: Duration,
    pub total: Duration,
}

/// Pages smaller than this (either side) are passed through unchanged: nothing to estimate.
const MIN_SIDE: u32 = 32;
/// Long side of the copy the sheet is searched on.
const DETECT_SIDE: u32 = 800;
/// Rotations smaller than this are not applied (resampling blurs more than it levels).
const MIN_SKEW_DEGREES: f32 = 0.1;
/// Unsharp-mask amount for photos (Gaussian σ = 1 px).
const SHARPEN: f32 = 0.7;
/// Curl: a side whose edge points stray further than this fraction of its length (and at
/// least `CURL_MIN_PX`).
const CURL_FRACTION: f64 = 0.006;
const CURL_MIN_PX: f64 = 4.0;

/// Normalises a photo or scan of a page for OCR. Never panics; an image too small to analyse
/// comes back as its grey conversion.
pub fn normalize(img: &DynamicImage) -> Normalized {
    let start = Instant::now();
    let mut timings = Timings::default();
    let grey = to_grey(img);
    timings.grey = start.elapsed();
    let (w, h) = grey.dimensions();
    let mut params = Params {
        page_quad: None,
        width: w,
        height: h,
        quarter_turns: 0,
        skew_degrees: 0.0,
    };
    if w < MIN_SIDE || h < MIN_SIDE {
        timings.total = start.elapsed();
        return Normalized {
            image: grey,
            params,
            flags: Vec::new(),
            flattened: false,
            timings,
        };
    }

    // Sheet.
    let t = Instant::now();
    let factor = w.max(h).div_ceil(DETECT_SIDE).max(1);
    let small = Plane::downscale(&grey, factor as usize);
    let found = quad::find_page(&grey, &small, f64::from(factor));
    if let Some(q) = &found {
        params.page_quad = Some(q.corners.map(|(x, y)| (x as f32, y as f32)));
        let (pw, ph) = rect_size(&q.corners, w, h);
        params.width = pw;
        params.height = ph;
    }
    timings.detect = t.elapsed();

    // Residual skew, on the small copy rectified with the same quadrilateral.
    let t = Instant::now();
    let f = f64::from(factor);
    if let Some(page_to_src) = page_matrix(&params, w, h) {
        let m_small = Mat3::scale(1.0 / f)
            .then_after(&page_to_src)
            .then_after(&Mat3::scale(f));
        let (spw, sph) = (
            (f64::from(params.width) / f).round().max(1.0) as usize,
            (f64::from(params.height) / f).round().max(1.0) as usize,
        );
        let (small_page, valid) = geom::warp_plane(&small, &m_small, spw, sph, 255.0);
        let skew = deskew::estimate(&small_page, &valid);
        if skew.abs() >= MIN_SKEW_DEGREES {
            params.skew_degrees = skew;
        }
    }
    timings.deskew = t.elapsed();

    // One full-resolution warp.
    let t = Instant::now();
    let (m, cw, ch) = output_matrix(&params, w, h);
    let warped = if is_identity(&params) {
        grey
    } else {
        geom::warp_gray(&grey, &m, cw, ch)
    };
    timings.warp = t.elapsed();

    let t = Instant::now();
    let mut flat = flatten::flatten(&warped, &m, w, h);
    drop(warped);
    timings.flatten = t.elapsed();

    // Camera captures are softer than scans (lens, motion, JPEG): a mild unsharp mask brings
    // back thin strokes and decimal points. Scans are left alone.
    let t = Instant::now();
    if found.is_some() && flat.applied {
        flatten::sharpen(&mut flat.image, SHARPEN);
    }
    timings.sharpen = t.elapsed();

    let t = Instant::now();
    let mut flags = flags::photometric(&flat, cw, ch);
    if let Some(q) = &found {
        flags.extend(curl_flags(q, &params, cw, ch));
    }
    timings.flags = t.elapsed();
    timings.total = start.elapsed();
    Normalized {
        flattened: flat.applied,
        image: flat.image,
        params,
        flags,
        timings,
    }
}

/// The geometry of a normalisation (quadrilateral warp, deskew, quarter turns) on the original
/// image, without flattening: for review crops whose boxes line up with what OCR read.
pub fn geometry(img: &DynamicImage, params: &Params) -> GrayImage {
    let grey = to_grey(img);
    let (w, h) = grey.dimensions();
    let page = if is_identity(params) || w == 0 || h == 0 {
        grey
    } else {
        let (m, cw, ch) = output_matrix(params, w, h);
        geom::warp_gray(&grey, &m, cw, ch)
    };
    rotate_quarters(&page, params.quarter_turns)
}

/// Turns a page clockwise by `turns` quarter turns (mod 4).
pub fn rotate_quarters(img: &GrayImage, turns: u8) -> GrayImage {
    match turns % 4 {
        1 => image::imageops::rotate90(img),
        2 => image::imageops::rotate180(img),
        3 => image::imageops::rotate270(img),
        _ => img.clone(),
    }
}

impl Normalized {
    /// Turns the page clockwise by `turns` quarter turns (e.g. as OCR orientation detection
    /// says), with its flags, and records it in `params`.
    pub fn rotate_quarters(&mut self, turns: u8) {
        let (w, h) = self.image.dimensions();
        self.image = rotate_quarters(&self.image, turns);
        self.flags = self.flags.iter().map(|f| f.rotated(turns, w, h)).collect();
        self.params.quarter_turns = (self.params.quarter_turns + turns % 4) % 4;
    }
}

/// The grey conversion used by [`normalize`] and [`geometry`]: Rec. 601 luminance. Of the
/// usual choices it keeps blue ballpoint dark (its red and green are low) while a yellow
/// highlighter or a warm paper tone stays light (the minimum of the channels would darken both).
pub fn to_grey(img: &DynamicImage) -> GrayImage {
    match img {
        DynamicImage::ImageLuma8(g) => g.clone(),
        DynamicImage::ImageRgb8(rgb) => luma_of(rgb.as_raw(), 3, rgb.width(), rgb.height()),
        DynamicImage::ImageRgba8(rgba) => luma_of(rgba.as_raw(), 4, rgba.width(), rgba.height()),
        other if other.color().has_color() => {
            let rgb = other.to_rgb8();
            luma_of(rgb.as_raw(), 3, rgb.width(), rgb.height())
        }
        other => other.to_luma8(),
    }
}

fn luma_of(raw: &[u8], channels: usize, w: u32, h: u32) -> GrayImage {
    let data: Vec<u8> = raw
        .chunks_exact(channels)
        .map(|p| {
            let v = 77 * u32::from(p[0]) + 150 * u32::from(p[1]) + 29 * u32::from(p[2]);
            ((v + 128) >> 8) as u8
        })
        .collect();
    GrayImage::from_raw(w, h, data).unwrap_or_else(|| GrayImage::new(w, h))
}

/// Rectified page size from the quadrilateral's sides: the longer of each pair of opposite
/// sides, so that no resolution is lost.
fn rect_size(c: &[(f64, f64); 4], w: u32, h: u32) -> (u32, u32) {
    let d = |a: (f64, f64), b: (f64, f64)| ((a.0 - b.0).powi(2) + (a.1 - b.1).powi(2)).sqrt();
    let cap = f64::from(w.max(h)) * 2.0;
    let pw = d(c[0], c[1]).max(d(c[3], c[2])).round().clamp(1.0, cap);
    let ph = d(c[0], c[3]).max(d(c[1], c[2])).round().clamp(1.0, cap);
    (pw as u32, ph as u32)
}

fn is_identity(p: &Params) -> bool {
    p.page_quad.is_none() && p.skew_degrees == 0.0
}

/// Page-to-input homography; `None` if the parameters describe no usable page.
fn page_matrix(p: &Params, w: u32, h: u32) -> Option<Mat3> {
    match p.page_quad {
        None => (w > 0 && h > 0).then_some(Mat3::IDENTITY),
        Some(q) => {
            let (pw, ph) = (f64::from(p.width.max(1)), f64::from(p.height.max(1)));
            let rect = [(0.0, 0.0), (pw, 0.0), (pw, ph), (0.0, ph)];
            Mat3::from_points(rect, q.map(|(x, y)| (f64::from(x), f64::from(y))))
        }
    }
}

/// Size of the rectified page that `p` describes for a `w`×`h` input (bounded, so that odd
/// parameters cannot ask for a gigantic image).
fn page_size(p: &Params, w: u32, h: u32) -> (u32, u32) {
    if p.page_quad.is_none() {
        return (w, h);
    }
    let cap = w.max(h).saturating_mul(4).max(64);
    (p.width.clamp(1, cap), p.height.clamp(1, cap))
}

/// Output-canvas-to-input matrix and canvas size: the deskew rotation about the page centre on
/// a canvas that holds the whole rotated page, then the page-to-input homography.
fn output_matrix(p: &Params, w: u32, h: u32) -> (Mat3, u32, u32) {
    let mut p = p.clone();
    let page_to_src = match page_matrix(&p, w, h) {
        Some(m) => m,
        None => {
            p.page_quad = None;
            Mat3::IDENTITY
        }
    };
    let (pw, ph) = page_size(&p, w, h);
    let skew = if p.skew_degrees.is_finite() {
        f64::from(p.skew_degrees).clamp(-45.0, 45.0)
    } else {
        0.0
    };
    let (s, c) = skew.to_radians().sin_cos();
    let (fw, fh) = (f64::from(pw), f64::from(ph));
    let (cw, ch) = if skew == 0.0 {
        (pw, ph)
    } else {
        (
            (fw * c.abs() + fh * s.abs()).round().max(1.0) as u32,
            (fw * s.abs() + fh * c.abs()).round().max(1.0) as u32,
        )
    };
    // Canvas offset -> page offset: the inverse of x' = c x + s y, y' = -s x + c y.
    let unrotate = Mat3([c, -s, 0.0, s, c, 0.0, 0.0, 0.0, 1.0]);
    let canvas_to_page = Mat3::translate(fw / 2.0, fh / 2.0)
        .then_after(&unrotate)
        .then_after(&Mat3::translate(-f64::from(cw) / 2.0, -f64::from(ch) / 2.0));
    (page_to_src.then_after(&canvas_to_page), cw, ch)
}

/// Curl flags: a strip along each sheet side that bows, in output pixels.
fn curl_flags(q: &quad::PageQuad, p: &Params, cw: u32, ch: u32) -> Vec<Flag> {
    let (pw, ph) = (f64::from(p.width), f64::from(p.height));
    let rect = [(0.0, 0.0), (pw, 0.0), (pw, ph), (0.0, ph)];
    let (s, c) = f64::from(p.skew_degrees).to_radians().sin_cos();
    let to_canvas = |(x, y): (f64, f64)| {
        let (dx, dy) = (x - pw / 2.0, y - ph / 2.0);
        (
            c * dx + s * dy + f64::from(cw) / 2.0,
            -s * dx + c * dy + f64::from(ch) / 2.0,
        )
    };
    let mut out = Vec::new();
    for side in 0..4 {
        let dev = q.bow[side];
        if dev <= (CURL_FRACTION * q.lengths[side]).max(CURL_MIN_PX) {
            continue;
        }
        let band = (dev * 4.0).max(0.04 * pw.min(ph));
        let (a, b) = (to_canvas(rect[side]), to_canvas(rect[(side + 1) % 4]));
        let bbox = flags::clip(
            a.0.min(b.0) - band,
            a.1.min(b.1) - band,
            a.0.max(b.0) + band,
            a.1.max(b.1) + band,
            cw,
            ch,
        );
        out.push(Flag::Curl {
            bbox,
            deviation_px: dev as f32,
        });
    }
    out
}

/// Internals exposed for the `normalize` example's debugging output; not a stable API.
#[doc(hidden)]
pub mod debug {
    use super::*;

    /// The detector's flooded region (light grey) and edges (black) on its downscaled copy.
    pub fn page_mask(img: &DynamicImage) -> GrayImage {
        let grey = to_grey(img);
        let factor = grey.width().max(grey.height()).div_ceil(DETECT_SIDE).max(1);
        quad::debug_mask(&Plane::downscale(&grey, factor as usize))
    }
}

#[cfg(test)]
mod tests;
