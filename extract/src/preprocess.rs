//! Image preparation for phone photos: deskew, uneven lighting, small images.
//!
//! Binarisation is left to Tesseract's Sauvola thresholding (set by the OCR adapter), which
//! copes with a lighting gradient better than one global threshold would.

use crate::layout::BBox;
use image::{GrayImage, Luma, imageops};
use imageproc::geometric_transformations::{Interpolation, rotate_about_center};

/// Without a measurable text height, pages narrower than this are scaled up: a letter page
/// at ~300 dpi (2,550 px wide) has the character heights Tesseract reads best.
pub const MIN_WIDTH: u32 = 2_400;
/// The median character height (px) recognition is prepared for: about the x-height-to-cap
/// mix of 10 pt text at 200 dpi. Smaller text is scaled up to it, larger text is left alone
/// (or, when much larger, scaled down): the cost of recognition grows with the pixels. On set2
/// 16 px read as well as 22 px or a fixed 2,400 px width (overall 0.857 vs 0.844 / 0.848) in
/// two thirds of the time; 12 px lost labs on scans (0.82 vs 0.90). Uncertain cells are read
/// again at a larger size ([`crate::ocr::tesseract`]), so small text costs only where unsure.
pub const TEXT_PX: f32 = 16.0;
/// Scale bounds: below 0.75 thin strokes break; above 3 a blur is only magnified.
const MIN_SCALE: f32 = 0.75;
const MAX_SCALE: f32 = 3.0;
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
    /// The glyph-like ink blobs of the page, in `image` pixels: what text there is to read,
    /// whether or not the recogniser's layout analysis keeps it.
    pub glyphs: Vec<BBox>,
}

/// Deskews a page and scales it so its text has the character height recognition wants
/// ([`TEXT_PX`]). Boxes found on the result are divided by `scale` to land on the deskewed page
/// at its original size, which is what the review crop renders.
pub fn prepare(page: &GrayImage) -> Prepared {
    let angle = estimate_skew(page);
    let rotated = deskew(page, angle);
    let (w, h) = rotated.dimensions();
    let glyphs = glyph_boxes(&rotated);
    let text_px = median_height(&glyphs);
    let scale = match text_px {
        Some(px) => (target_text_px() / px).clamp(MIN_SCALE, MAX_SCALE),
        None => (MIN_WIDTH as f32 / w.max(1) as f32).max(1.0),
    };
    tracing::debug!(width = w, ?text_px, scale, "page scale");
    // Within 10 % of the target: resampling would cost more than it gives.
    if (scale - 1.0).abs() < 0.1 {
        return Prepared {
            image: rotated,
            deskew_degrees: angle,
            scale: 1.0,
            glyphs,
        };
    }
    let (sw, sh) = (
        ((w as f32 * scale).round() as u32).max(1),
        ((h as f32 * scale).round() as u32).max(1),
    );
    let image = resize(&rotated, sw, sh);
    // The exact ratio, so boxes map back to the pixel.
    let scale = sw as f32 / w.max(1) as f32;
    let glyphs = glyphs
        .into_iter()
        .map(|b| BBox {
            x: (b.x as f32 * scale) as u32,
            y: (b.y as f32 * scale) as u32,
            width: (b.width as f32 * scale).ceil() as u32,
            height: (b.height as f32 * scale).ceil() as u32,
        })
        .collect();
    Prepared {
        image,
        deskew_degrees: angle,
        scale,
        glyphs,
    }
}

/// Catmull-Rom resampling to `width` × `height`. fast_image_resize's SIMD convolution is
/// several times faster than `image`'s on pages of millions of pixels (it was a quarter of
/// the time before recognition); `image`'s is the fallback should it ever refuse.
pub fn resize(img: &GrayImage, width: u32, height: u32) -> GrayImage {
    use fast_image_resize::{FilterType, ResizeAlg, ResizeOptions, Resizer};
    let mut out = GrayImage::new(width.max(1), height.max(1));
    let options = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::CatmullRom));
    match Resizer::new().resize(img, &mut out, &options) {
        Ok(()) => out,
        Err(_) => imageops::resize(
            img,
            width.max(1),
            height.max(1),
            imageops::FilterType::CatmullRom,
        ),
    }
}

/// The character height to prepare for: [`TEXT_PX`], or `P360_TEXT_PX` when set (for
/// measuring the speed/accuracy trade-off on a document set).
fn target_text_px() -> f32 {
    std::env::var("P360_TEXT_PX")
        .ok()
        .and_then(|v| v.parse::<f32>().ok())
        .filter(|v| (8.0..=80.0).contains(v))
        .unwrap_or(TEXT_PX)
}

/// The median height (px) of the page's character-like ink blobs, or `None` when there are too
/// few to tell (a blank or photographic page).
pub fn text_height(page: &GrayImage) -> Option<f32> {
    median_height(&glyph_boxes(page))
}

fn median_height(glyphs: &[BBox]) -> Option<f32> {
    if glyphs.len() < 40 {
        return None;
    }
    let mut heights: Vec<u32> = glyphs.iter().map(|b| b.height).collect();
    let mid = heights.len() / 2;
    let (_, m, _) = heights.select_nth_unstable(mid);
    Some(*m as f32)
}

/// Connected components of the Otsu-dark pixels kept when shaped like a glyph: ruling lines,
/// boxes, logos and specks are left out, so a form's grid or a letterhead does not pull the
/// text height, and what remains is where the text is.
pub fn glyph_boxes(page: &GrayImage) -> Vec<BBox> {
    use imageproc::region_labelling::{Connectivity, connected_components};
    let (w, h) = page.dimensions();
    if w < 16 || h < 16 {
        return Vec::new();
    }
    let level = imageproc::contrast::otsu_level(page);
    let ink = GrayImage::from_fn(w, h, |x, y| {
        Luma([if page.get_pixel(x, y).0[0] <= level {
            255
        } else {
            0
        }])
    });
    let labels = connected_components(&ink, Connectivity::Eight, Luma([0u8]));
    // Per label: min x, min y, max x, max y.
    let mut boxes: Vec<[u32; 4]> = Vec::new();
    for (x, y, l) in labels.enumerate_pixels() {
        let l = l.0[0] as usize;
        if l == 0 {
            continue;
        }
        if boxes.len() < l {
            boxes.resize(l, [u32::MAX, u32::MAX, 0, 0]);
        }
        let b = &mut boxes[l - 1];
        b[0] = b[0].min(x);
        b[1] = b[1].min(y);
        b[2] = b[2].max(x);
        b[3] = b[3].max(y);
    }
    let max_h = (h / 12).max(8);
    boxes
        .iter()
        .filter(|b| b[2] >= b[0])
        .map(|b| BBox {
            x: b[0],
            y: b[1],
            width: b[2] - b[0] + 1,
            height: b[3] - b[1] + 1,
        })
        .filter(|b| {
            (4..=max_h).contains(&b.height) && b.width <= b.height * 3 && b.height <= b.width * 8
        })
        .collect()
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
    let small = resize(page, (w as f32 / factor) as u32, (h as f32 / factor) as u32);
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
    fn blank_small_pages_are_scaled_up_and_large_ones_left_alone() {
        let small = GrayImage::from_pixel(1200, 1500, Luma([255]));
        let p = prepare(&small);
        assert_eq!(p.image.width(), MIN_WIDTH);
        assert!((p.scale - 2.0).abs() < 1e-6);
        let large = GrayImage::from_pixel(2600, 3300, Luma([255]));
        assert_eq!(prepare(&large).scale, 1.0);
    }

    /// A page of glyph-like blobs `px` high, with a ruling line and a logo block that must not
    /// count.
    fn glyphs(px: u32) -> GrayImage {
        GrayImage::from_fn(1000, 1300, |x, y| {
            let in_line = y % (px * 2) < px && y > 100;
            let in_glyph = x % (px * 3 / 4 + 3) < px * 3 / 4;
            let ruling = (600..603).contains(&y);
            let logo = x < 200 && y < 90;
            Luma([if (in_line && in_glyph) || ruling || logo {
                10
            } else {
                250
            }])
        })
    }

    #[test]
    fn text_height_is_measured_from_glyphs_and_sets_the_scale() {
        for px in [9u32, 14, 22, 40] {
            let found = text_height(&glyphs(px)).expect("glyphs");
            assert!((found - px as f32).abs() <= 1.0, "{px} px text: {found}");
        }
        // Small text is scaled up to the target, large text down (within bounds), and text
        // near the target is left at its size.
        assert!(prepare(&glyphs(8)).scale > 1.9);
        assert!(prepare(&glyphs(32)).scale < 0.8);
        assert_eq!(prepare(&glyphs(16)).scale, 1.0);
    }
}
