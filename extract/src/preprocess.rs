//! Image preparation for phone photos: deskew, uneven lighting, small images.
//!
//! Binarisation is left to Tesseract's Sauvola thresholding (set by the OCR adapter), which
//! copes with a lighting gradient better than one global threshold would.

use image::{GrayImage, Luma, imageops};
use imageproc::geometric_transformations::{Interpolation, rotate_about_center};

/// Pages narrower than this are scaled up: Tesseract reads best with capital letters ~25–35 px
/// high, which a letter page reaches at ~300 dpi (2,550 px wide).
pub const MIN_WIDTH: u32 = 2_400;
/// Skews smaller than this are left alone (rotation blurs a little).
const MIN_SKEW_DEGREES: f32 = 0.15;
const MAX_SKEW_DEGREES: f32 = 5.0;

#[derive(Debug)]
pub struct Prepared {
    pub image: GrayImage,
    /// Rotation applied, degrees, counter-clockwise positive.
    pub deskew_degrees: f32,
    /// Scale applied before recognition; boxes are mapped back by it.
    pub scale: f32,
}

/// Deskews and upscales a page. Boxes found on the result are divided by `scale` to land on the
/// deskewed page at its original size, which is what the review crop renders.
pub fn prepare(page: &GrayImage) -> Prepared {
    let angle = estimate_skew(page);
    let rotated = deskew(page, angle);
    let (w, h) = rotated.dimensions();
    if w >= MIN_WIDTH {
        return Prepared {
            image: rotated,
            deskew_degrees: angle,
            scale: 1.0,
        };
    }
    let scale = MIN_WIDTH as f32 / w as f32;
    let image = imageops::resize(
        &rotated,
        MIN_WIDTH,
        (h as f32 * scale).round() as u32,
        imageops::FilterType::CatmullRom,
    );
    Prepared {
        image,
        deskew_degrees: angle,
        scale,
    }
}

/// Rotates a page by `degrees` (as estimated by [`estimate_skew`]); the review crop calls this
/// again with the recorded angle so that boxes line up with what was read.
pub fn deskew(page: &GrayImage, degrees: f32) -> GrayImage {
    if degrees.abs() < MIN_SKEW_DEGREES {
        return page.clone();
    }
    rotate_about_center(
        page,
        degrees.to_radians(),
        Interpolation::Bilinear,
        Luma([255]),
    )
}

/// The rotation that makes text lines horizontal, by projection profiles: on a small binarised
/// copy, the angle whose row histogram of dark pixels is most peaked (lines fall in few rows,
/// gaps in others). Coarse 0.25° steps, then 0.05° around the best.
pub fn estimate_skew(page: &GrayImage) -> f32 {
    let (w, h) = page.dimensions();
    let factor = (w.max(h) as f32 / 800.0).max(1.0);
    let small = imageops::resize(
        page,
        (w as f32 / factor) as u32,
        (h as f32 / factor) as u32,
        imageops::FilterType::Triangle,
    );
    let level = imageproc::contrast::otsu_level(&small);
    let dark: Vec<(f32, f32)> = small
        .enumerate_pixels()
        .filter(|(_, _, p)| p.0[0] < level)
        .map(|(x, y, _)| (x as f32, y as f32))
        .collect();
    // A page that is mostly dark (a photo of the table, a blank dark frame) has no lines to use.
    if dark.is_empty() || dark.len() > (small.width() * small.height() / 3) as usize {
        return 0.0;
    }
    let rows = small.height() as usize + small.width() as usize;
    let score = |deg: f32| -> f64 {
        let (s, c) = deg.to_radians().sin_cos();
        let mut hist = vec![0u32; rows * 2];
        for &(x, y) in &dark {
            let r = (y * c - x * s) as isize + rows as isize;
            if let Some(b) = hist.get_mut(r as usize) {
                *b += 1;
            }
        }
        hist.iter().map(|&v| (v as f64) * (v as f64)).sum()
    };
    let best_in = |from: f32, to: f32, step: f32| -> f32 {
        let mut best = (f64::MIN, 0.0);
        let mut a = from;
        while a <= to + 1e-6 {
            let s = score(a);
            if s > best.0 {
                best = (s, a);
            }
            a += step;
        }
        best.1
    };
    let coarse = best_in(-MAX_SKEW_DEGREES, MAX_SKEW_DEGREES, 0.25);
    let fine = best_in(coarse - 0.25, coarse + 0.25, 0.05);
    // The histogram rotates the page by `fine` to level it: the image must turn the other way.
    -fine
}

#[cfg(test)]
mod tests {
    use super::*;

    fn striped(angle_deg: f32) -> GrayImage {
        // Text-like dark bars every 40 px, drawn at `angle_deg`.
        let (w, h) = (1200u32, 1600u32);
        let t = angle_deg.to_radians().tan();
        GrayImage::from_fn(w, h, |x, y| {
            let yy = y as f32 - (x as f32 - w as f32 / 2.0) * t;
            let on_bar = (yy as i64).rem_euclid(40) < 12 && x > 100 && x < 1100;
            let broken = (x / 15) % 4 == 0;
            Luma([if on_bar && !broken { 20 } else { 235 }])
        })
    }

    #[test]
    fn skew_of_tilted_lines_is_found_and_undone() {
        for tilt in [-1.5f32, 0.0, 0.8, 2.5] {
            let page = striped(tilt);
            let found = estimate_skew(&page);
            let after = estimate_skew(&deskew(&page, found));
            assert!(
                after.abs() <= 0.2,
                "tilt {tilt}: estimated {found}, left {after}"
            );
        }
    }

    #[test]
    fn small_pages_are_scaled_up_and_large_ones_left_alone() {
        let small = GrayImage::from_pixel(1200, 1500, Luma([255]));
        let p = prepare(&small);
        assert_eq!(p.image.width(), MIN_WIDTH);
        assert!((p.scale - 2.0).abs() < 1e-6);
        let large = GrayImage::from_pixel(2600, 3300, Luma([255]));
        assert_eq!(prepare(&large).scale, 1.0);
    }
}
