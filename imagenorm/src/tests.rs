//! End-to-end tests on synthetic photos and scans whose geometry is known exactly.
#![allow(clippy::unwrap_used)]

use image::{DynamicImage, GrayImage, Luma, Rgb, RgbImage};

use super::*;
use crate::geom::Mat3;

/// Deterministic pseudo-random numbers (xorshift).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Text-like content of a `w`×`h` page: rows of word-like bars. Returns reflectance (paper
/// 0.95, ink 0.1) at page coordinates.
struct Content {
    w: f64,
    h: f64,
    /// Per row: y of the bar top and the x spans of its words.
    rows: Vec<(f64, Vec<(f64, f64)>)>,
}

impl Content {
    fn new(w: f64, h: f64, seed: u64) -> Content {
        let mut rng = Rng(seed);
        let mut rows = Vec::new();
        let mut y = 90.0;
        while y < h - 90.0 {
            let mut x = 70.0;
            let mut words = Vec::new();
            let end = if rng.next() < 0.25 {
                w * 0.55
            } else {
                w - 70.0
            };
            while x < end {
                let len = 18.0 + 70.0 * rng.next();
                words.push((x, (x + len).min(end)));
                x += len + 12.0;
            }
            rows.push((y, words));
            y += if rng.next() < 0.2 { 44.0 } else { 26.0 };
        }
        Content { w, h, rows }
    }

    fn reflectance(&self, u: f64, v: f64) -> f64 {
        if u < 0.0 || v < 0.0 || u >= self.w || v >= self.h {
            return -1.0;
        }
        let i = self.rows.partition_point(|(y, _)| *y <= v);
        if i > 0 {
            let (y, words) = &self.rows[i - 1];
            if v < y + 9.0 && words.iter().any(|&(a, b)| u >= a && u < b) {
                return 0.1;
            }
        }
        0.95
    }
}

/// Illumination: 1 on the lit side, down to `1 - depth` past a soft diagonal band.
fn shadow(x: f64, y: f64, w: f64, h: f64, depth: f64) -> f64 {
    let t = ((x / w + y / h) - 1.0) / 0.25;
    let s = (t.clamp(-1.0, 1.0) + 1.0) / 2.0;
    let s = s * s * (3.0 - 2.0 * s);
    1.0 - depth * s
}

struct Photo {
    img: RgbImage,
    corners: [(f64, f64); 4],
}

/// How a synthetic photo is lit and how the sheet lies.
#[derive(Clone, Copy)]
struct Look {
    /// Depth of the shadow across the lower right (0 = none).
    depth: f64,
    /// Overall brightness.
    exposure: f64,
    /// A blown-out reflection: centre and radius in image pixels.
    glare: Option<(f64, f64, f64)>,
    /// How far the sheet's bottom side bows down at its middle, page pixels.
    bow: f64,
}

fn look(depth: f64) -> Look {
    Look {
        depth,
        exposure: 1.0,
        glare: None,
        bow: 0.0,
    }
}

/// A `pw`×`ph` page photographed at `corners` in a `w`×`h` image on a darker wood-like
/// background, with a warm cast, vignette and noise, lit as `look` says.
fn photo(pw: f64, ph: f64, corners: [(f64, f64); 4], w: u32, h: u32, depth: f64) -> Photo {
    photo_with(pw, ph, corners, w, h, look(depth))
}

fn photo_with(pw: f64, ph: f64, corners: [(f64, f64); 4], w: u32, h: u32, look: Look) -> Photo {
    let depth = look.depth;
    let content = Content::new(pw, ph, 7);
    let rect = [(0.0, 0.0), (pw, 0.0), (pw, ph), (0.0, ph)];
    let img_to_page = Mat3::from_points(corners, rect).unwrap();
    let mut rng = Rng(99);
    let (fw, fh) = (f64::from(w), f64::from(h));
    let img = RgbImage::from_fn(w, h, |x, y| {
        // 2×2 supersampling for anti-aliased edges.
        let mut acc = [0.0f64; 3];
        for (dx, dy) in [(0.25, 0.25), (0.75, 0.25), (0.25, 0.75), (0.75, 0.75)] {
            let (fx, fy) = (f64::from(x) + dx, f64::from(y) + dy);
            let (u, v) = img_to_page.apply(fx, fy).unwrap_or((-1.0, -1.0));
            // A bowed bottom side: content near it shifted down, most at the middle.
            let s = (u / pw).clamp(0.0, 1.0);
            let v = v - look.bow * 4.0 * s * (1.0 - s) * (v / ph).clamp(0.0, 2.0).powi(3);
            let r = content.reflectance(u, v);
            let colour = if r >= 0.0 {
                [r, r * 0.97, r * 0.9]
            } else {
                let grain = 0.33 + 0.07 * (fx / 6.0 + 0.8 * (fy / 37.0).sin()).sin();
                [grain * 1.2, grain * 0.85, grain * 0.6]
            };
            let light = look.exposure
                * shadow(fx, fy, fw, fh, depth)
                * (1.0 - 0.15 * ((fx / fw - 0.5).powi(2) + (fy / fh - 0.5).powi(2)));
            let blown = look.glare.map_or(0.0, |(gx, gy, gr)| {
                let d = ((fx - gx).powi(2) + (fy - gy).powi(2)).sqrt() / gr;
                ((1.3 - d) / 0.3).clamp(0.0, 1.0)
            });
            for c in 0..3 {
                let lit = (colour[c] * light).min(1.0);
                acc[c] += (lit + (1.2 - lit) * blown) * 0.25;
            }
        }
        let n = (rng.next() - 0.5) * 10.0;
        Rgb(acc.map(|a| (a * 255.0 + n).round().clamp(0.0, 255.0) as u8))
    });
    Photo { img, corners }
}

const STANDARD_CORNERS: [(f64, f64); 4] = [
    (182.0, 151.0),
    (1093.5, 197.0),
    (1148.0, 1431.0),
    (133.0, 1392.5),
];

fn standard_photo(depth: f64) -> Photo {
    photo(
        850.0,
        1100.0,
        [
            (182.0, 151.0),
            (1093.5, 197.0),
            (1148.0, 1431.0),
            (133.0, 1392.5),
        ],
        1300,
        1600,
        depth,
    )
}

/// A scan: the page is the whole image, content lines with slope angle `deg` (y down), paper
/// at 242.
fn scan(deg: f64, w: u32, h: u32) -> GrayImage {
    scan_on(deg, w, h, 0.95)
}

fn scan_on(deg: f64, w: u32, h: u32, paper: f64) -> GrayImage {
    let content = Content::new(f64::from(w), f64::from(h), 3);
    let (s, c) = deg.to_radians().sin_cos();
    let (cx, cy) = (f64::from(w) / 2.0, f64::from(h) / 2.0);
    GrayImage::from_fn(w, h, |x, y| {
        let (dx, dy) = (f64::from(x) + 0.5 - cx, f64::from(y) + 0.5 - cy);
        // Content coordinates: undo a rotation that gives lines the slope `deg`.
        let (u, v) = (c * dx + s * dy + cx, -s * dx + c * dy + cy);
        let r = content.reflectance(u, v);
        let r = if (0.0..=0.5).contains(&r) { r } else { paper };
        Luma([(r * 255.0).round() as u8])
    })
}

fn dist(a: (f32, f32), b: (f64, f64)) -> f64 {
    ((f64::from(a.0) - b.0).powi(2) + (f64::from(a.1) - b.1).powi(2)).sqrt()
}

#[test]
fn sheet_corners_are_found_within_a_few_pixels() {
    for depth in [0.0, 0.5] {
        let p = standard_photo(depth);
        let n = normalize(&DynamicImage::ImageRgb8(p.img));
        let q = n.params.page_quad.expect("sheet found");
        for (found, truth) in q.iter().zip(p.corners.iter()) {
            assert!(
                dist(*found, *truth) < 3.0,
                "depth {depth}: corner {found:?} vs {truth:?}"
            );
        }
        // The rectified page has the size of the longer sides.
        assert!(
            (n.params.width as f64 - 1016.0).abs() < 4.0,
            "{:?}",
            n.params
        );
        assert!(
            (n.params.height as f64 - 1242.0).abs() < 4.0,
            "{:?}",
            n.params
        );
        // The sheet's sides define upright: no residual rotation.
        assert!(n.params.skew_degrees.abs() < 0.3, "{:?}", n.params);
    }
}

#[test]
fn flattening_makes_the_shadowed_paper_uniform() {
    let p = standard_photo(0.55);
    let img = DynamicImage::ImageRgb8(p.img);
    let n = normalize(&img);
    assert!(n.flattened);
    let raw = geometry(&img, &n.params);
    assert_eq!(raw.dimensions(), n.image.dimensions());
    // Paper blocks in the left and right margins, top to bottom, and in the blank band under
    // the header: the spread of their means.
    let spread = |g: &GrayImage| {
        let (w, h) = g.dimensions();
        let mut means = Vec::new();
        for by in (h / 12..h * 11 / 12).step_by(40) {
            for bx in [12, w - 40] {
                let mut s = 0u32;
                for y in by..by + 20 {
                    for x in bx..bx + 20 {
                        s += u32::from(g.get_pixel(x, y).0[0]);
                    }
                }
                means.push(s / 400);
            }
        }
        let lo = *means.iter().min().unwrap();
        let hi = *means.iter().max().unwrap();
        (lo, hi)
    };
    let (lo, hi) = spread(&n.image);
    assert!(lo >= 225 && hi - lo <= 15, "flattened paper {lo}..{hi}");
    let (rlo, rhi) = spread(&raw);
    assert!(
        rhi - rlo >= 60,
        "the shadow should be there before: {rlo}..{rhi}"
    );
    // Text stays dark in the shadow: the darkest pixels in the lower right quarter.
    let (w, h) = n.image.dimensions();
    let mut dark = 0;
    for y in h * 3 / 4..h * 7 / 8 {
        for x in w / 2..w * 7 / 8 {
            if n.image.get_pixel(x, y).0[0] < 80 {
                dark += 1;
            }
        }
    }
    assert!(dark > 1000, "ink in the shadow: {dark} dark pixels");
}

#[test]
fn a_scan_has_no_sheet_and_is_deskewed() {
    for deg in [-7.0f64, -1.2, 0.6, 3.0, 12.0] {
        let img = DynamicImage::ImageLuma8(scan(deg, 1000, 1300));
        let n = normalize(&img);
        assert_eq!(n.params.page_quad, None, "deg {deg}");
        let got = f64::from(n.params.skew_degrees);
        assert!((got - deg).abs() <= 0.3, "slope {deg}: skew {got}");
        // The result has level lines: measuring again finds (almost) nothing to do.
        let again = normalize(&DynamicImage::ImageLuma8(n.image.clone()));
        assert!(
            again.params.skew_degrees.abs() <= 0.3,
            "slope {deg}: residual {}",
            again.params.skew_degrees
        );
        // The canvas grew to hold the rotated page.
        if deg.abs() > 1.0 {
            assert!(n.image.width() > 1000 && n.image.height() > 1300);
        }
    }
}

#[test]
fn a_clean_page_comes_back_unchanged() {
    // White paper, as rendered pages and good scans have.
    let page = scan_on(0.0, 900, 1200, 1.0);
    let n = normalize(&DynamicImage::ImageLuma8(page.clone()));
    assert_eq!(n.params.page_quad, None);
    assert_eq!(n.params.skew_degrees, 0.0);
    assert!(!n.flattened);
    assert_eq!(n.image, page);
    assert!(n.flags.is_empty(), "{:?}", n.flags);
}

#[test]
fn a_scan_with_a_dark_border_strip_has_no_sheet() {
    let mut page = scan(0.0, 900, 1200);
    for y in 0..1200 {
        for x in 0..14 {
            page.put_pixel(x, y, Luma([30]));
        }
    }
    let n = normalize(&DynamicImage::ImageLuma8(page));
    assert_eq!(n.params.page_quad, None);
}

#[test]
fn a_rotated_sheet_comes_out_level() {
    // A sheet turned by 10° on the desk.
    let (pw, ph) = (800.0, 1050.0);
    let (s, c) = 10f64.to_radians().sin_cos();
    let (cx, cy) = (700.0, 800.0);
    let corners = [(0.0, 0.0), (pw, 0.0), (pw, ph), (0.0, ph)].map(|(x, y)| {
        let (dx, dy) = (x - pw / 2.0, y - ph / 2.0);
        (cx + c * dx - s * dy, cy + s * dx + c * dy)
    });
    let p = photo(pw, ph, corners, 1400, 1600, 0.3);
    let n = normalize(&DynamicImage::ImageRgb8(p.img));
    let q = n.params.page_quad.expect("sheet found");
    for (found, truth) in q.iter().zip(corners.iter()) {
        assert!(dist(*found, *truth) < 3.0, "corner {found:?} vs {truth:?}");
    }
    let again = normalize(&DynamicImage::ImageLuma8(n.image.clone()));
    assert!(again.params.skew_degrees.abs() <= 0.3);
}

#[test]
fn geometry_repeats_the_warp_and_turns() {
    let p = standard_photo(0.3);
    let img = DynamicImage::ImageRgb8(p.img);
    let mut n = normalize(&img);
    let plain = geometry(&img, &n.params);
    assert_eq!(plain.dimensions(), n.image.dimensions());
    // Ink in one is ink in the other (the flattening does not move anything).
    let (w, h) = plain.dimensions();
    let (mut both, mut either) = (0u32, 0u32);
    for y in 0..h {
        for x in 0..w {
            let a = n.image.get_pixel(x, y).0[0] < 128;
            let b = plain.get_pixel(x, y).0[0] < 100;
            both += u32::from(a && b);
            either += u32::from(a || b);
        }
    }
    assert!(both as f64 > 0.8 * either as f64, "{both} of {either}");
    n.rotate_quarters(1);
    assert_eq!(n.params.quarter_turns, 1);
    assert_eq!(n.image.dimensions(), (h, w));
    assert_eq!(geometry(&img, &n.params), rotate_quarters(&plain, 1));
    n.rotate_quarters(3);
    assert_eq!(n.params.quarter_turns, 0);
    assert_eq!(rotate_quarters(&plain, 4), plain);
    assert_eq!(rotate_quarters(&rotate_quarters(&plain, 2), 2), plain);
}

#[test]
fn shadow_flags_point_at_the_deep_shadow_and_clean_pages_have_none() {
    let p = standard_photo(0.6);
    let n = normalize(&DynamicImage::ImageRgb8(p.img));
    let shadows: Vec<BBox> = n
        .flags
        .iter()
        .filter(|f| matches!(f, Flag::Shadow { .. }))
        .map(Flag::bbox)
        .collect();
    assert!(!shadows.is_empty(), "{:?}", n.flags);
    let (w, h) = n.image.dimensions();
    for b in &shadows {
        // The shadow lies past the diagonal, in the lower right.
        assert!(b.x + b.width > w / 2 && b.y + b.height > h / 2, "{b:?}");
    }
    let light = standard_photo(0.0);
    let n = normalize(&DynamicImage::ImageRgb8(light.img));
    assert!(n.flags.is_empty(), "{:?}", n.flags);
}

#[test]
fn params_round_trip_through_json() {
    let p = Params {
        page_quad: Some([(1.5, 2.0), (100.0, 3.0), (101.0, 150.0), (0.5, 149.0)]),
        width: 99,
        height: 147,
        quarter_turns: 2,
        skew_degrees: -1.25,
    };
    let s = serde_json::to_string(&p).unwrap();
    assert_eq!(serde_json::from_str::<Params>(&s).unwrap(), p);
}

#[test]
fn degenerate_images_do_not_panic() {
    let mut imgs = vec![
        DynamicImage::new_luma8(0, 0),
        DynamicImage::new_luma8(1, 1),
        DynamicImage::new_rgb8(1, 5000),
        DynamicImage::new_rgb8(5000, 1),
        DynamicImage::new_luma8(3, 3),
        DynamicImage::new_luma8(31, 4000),
        DynamicImage::new_luma8(40, 4000),
        DynamicImage::new_luma8(4000, 40),
        DynamicImage::ImageLuma8(GrayImage::from_pixel(600, 800, Luma([0]))),
        DynamicImage::ImageLuma8(GrayImage::from_pixel(600, 800, Luma([255]))),
        DynamicImage::ImageLuma8(GrayImage::from_pixel(600, 800, Luma([128]))),
        DynamicImage::new_rgba16(300, 200),
        DynamicImage::new_luma_a8(300, 200),
        DynamicImage::new_rgb32f(64, 64),
    ];
    let mut rng = Rng(5);
    imgs.push(DynamicImage::ImageLuma8(GrayImage::from_fn(
        500,
        700,
        |_, _| Luma([(rng.next() * 255.0) as u8]),
    )));
    // A bright rectangle filling almost the frame, and one tiny bright spot.
    imgs.push(DynamicImage::ImageLuma8(GrayImage::from_fn(
        500,
        700,
        |x, y| {
            Luma([if x > 2 && y > 2 && x < 497 && y < 697 {
                250
            } else {
                20
            }])
        },
    )));
    imgs.push(DynamicImage::ImageLuma8(GrayImage::from_fn(
        500,
        700,
        |x, y| {
            Luma([if (240..260).contains(&x) && (340..360).contains(&y) {
                250
            } else {
                20
            }])
        },
    )));
    for img in &imgs {
        let n = normalize(img);
        let g = geometry(img, &n.params);
        assert_eq!(g.dimensions(), n.image.dimensions());
        for t in 0..4 {
            let _ = rotate_quarters(&n.image, t);
        }
    }
    // Odd parameters are survived too.
    let img = DynamicImage::new_luma8(100, 80);
    for params in [
        Params {
            page_quad: Some([(0.0, 0.0); 4]),
            width: 0,
            height: 0,
            quarter_turns: 7,
            skew_degrees: f32::NAN,
        },
        Params {
            page_quad: Some([(0.0, 0.0), (1e9, 0.0), (1e9, 1e9), (f32::INFINITY, 5.0)]),
            width: u32::MAX,
            height: u32::MAX,
            quarter_turns: 1,
            skew_degrees: 1e6,
        },
        Params {
            page_quad: None,
            width: 5,
            height: 5,
            quarter_turns: 0,
            skew_degrees: 44.0,
        },
    ] {
        let _ = geometry(&img, &params);
    }
}

#[test]
fn a_blown_out_reflection_is_flagged_as_glare() {
    let dim = Look {
        exposure: 0.8,
        ..look(0.0)
    };
    let shot = |glare| {
        let l = Look { glare, ..dim };
        let p = photo_with(850.0, 1100.0, STANDARD_CORNERS, 1300, 1600, l);
        normalize(&DynamicImage::ImageRgb8(p.img))
    };
    let n = shot(Some((500.0, 600.0, 90.0)));
    let glare: Vec<BBox> = n
        .flags
        .iter()
        .filter(|f| matches!(f, Flag::Glare { .. }))
        .map(Flag::bbox)
        .collect();
    assert_eq!(glare.len(), 1, "{:?}", n.flags);
    // Around the reflection (image (500, 600) is near page (330, 445) of the 1016-wide page).
    let b = glare[0];
    assert!(
        b.x < 360 && b.x + b.width > 300 && b.y < 470 && b.y + b.height > 420,
        "{b:?}"
    );
    assert!(b.width < 400 && b.height < 400, "{b:?}");
    let n = shot(None);
    assert!(n.flags.is_empty(), "{:?}", n.flags);
}

#[test]
fn a_bowed_side_is_flagged_as_curl() {
    let bowed = Look {
        bow: 30.0,
        ..look(0.0)
    };
    let p = photo_with(850.0, 1100.0, STANDARD_CORNERS, 1300, 1600, bowed);
    let n = normalize(&DynamicImage::ImageRgb8(p.img));
    let curls: Vec<(BBox, f32)> = n
        .flags
        .iter()
        .filter_map(|f| match f {
            Flag::Curl { bbox, deviation_px } => Some((*bbox, *deviation_px)),
            _ => None,
        })
        .collect();
    assert_eq!(curls.len(), 1, "{:?}", n.flags);
    let (b, dev) = curls[0];
    let (_, h) = n.image.dimensions();
    // Along the bottom of the page.
    assert!(
        b.y > h / 2 && b.y + b.height >= h - 5 && b.width > 800,
        "{b:?}"
    );
    assert!(dev > 4.0, "{dev}");
    // A straight sheet has none (the other tests check that no flags appear at all).
    let straight = standard_photo(0.0);
    let n = normalize(&DynamicImage::ImageRgb8(straight.img));
    assert!(!n.flags.iter().any(|f| matches!(f, Flag::Curl { .. })));
}
