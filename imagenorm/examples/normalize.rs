//! Normalises page images for OCR: `normalize [--preview PX] [--debug] OUTDIR IMG...`
//!
//! Writes `OUTDIR/STEM.png` (the normalised page) and `OUTDIR/STEM.json` (params, flags,
//! timings) for each image. `--preview PX` also writes `STEM.in.png` (the input at long side PX
//! with the found sheet outlined) and `STEM.out.png` (the output at long side PX); `--debug`
//! writes `STEM.mask.png`, the sheet detector's flooded region. For measuring: `--raw` writes
//! the grey conversion only (no normalisation), `--min-width N` upscales results narrower than
//! N (Catmull-Rom), as the OCR stage does before Tesseract; `--bench N` runs each image N more
//! times and reports the fastest time of each step; `--geometry` also writes `STEM.geom.png`,
//! the same geometry without flattening (what review crops are cut from).
#![allow(clippy::print_stderr)]

use std::path::Path;

use image::{DynamicImage, Rgb};
use imageproc::drawing::draw_line_segment_mut;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut preview = None;
    let mut debug = false;
    let mut raw = false;
    let mut min_width = 0u32;
    let mut bench = 0usize;
    let mut geometry = false;
    while let Some(a) = args.first().cloned() {
        match a.as_str() {
            "--preview" if args.len() > 1 => {
                preview = Some(args[1].parse::<u32>()?);
                args.drain(..2);
            }
            "--min-width" if args.len() > 1 => {
                min_width = args[1].parse::<u32>()?;
                args.drain(..2);
            }
            "--bench" if args.len() > 1 => {
                bench = args[1].parse::<usize>()?;
                args.drain(..2);
            }
            "--geometry" => {
                geometry = true;
                args.remove(0);
            }
            "--raw" => {
                raw = true;
                args.remove(0);
            }
            "--debug" => {
                debug = true;
                args.remove(0);
            }
            _ => break,
        }
    }
    let [out, imgs @ ..] = args.as_slice() else {
        return Err("usage: normalize [--preview PX] [--debug] [--geometry] [--raw] [--min-width N] [--bench N] OUTDIR IMG...".into());
    };
    std::fs::create_dir_all(out)?;
    let out = Path::new(out);
    for path in imgs {
        let img = image::open(path)?;
        let stem = Path::new(path)
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("page");
        let mut n = p360_imagenorm::normalize(&img);
        if bench > 0 {
            // The fastest of `bench` runs per step: what the code costs without other load.
            let mut best = n.timings;
            for _ in 0..bench {
                let t = p360_imagenorm::normalize(&img).timings;
                best.grey = best.grey.min(t.grey);
                best.detect = best.detect.min(t.detect);
                best.deskew = best.deskew.min(t.deskew);
                best.warp = best.warp.min(t.warp);
                best.flatten = best.flatten.min(t.flatten);
                best.sharpen = best.sharpen.min(t.sharpen);
                best.flags = best.flags.min(t.flags);
                best.total = best.total.min(t.total);
            }
            n.timings = best;
        }
        if raw {
            n.image = p360_imagenorm::to_grey(&img);
        }
        let (w, h) = n.image.dimensions();
        if w > 0 && w < min_width {
            let s = min_width as f32 / w as f32;
            let up = image::imageops::resize(
                &n.image,
                min_width,
                (h as f32 * s).round() as u32,
                image::imageops::FilterType::CatmullRom,
            );
            up.save(out.join(format!("{stem}.png")))?;
        } else {
            n.image.save(out.join(format!("{stem}.png")))?;
        }
        let json = serde_json::json!({
            "params": n.params,
            "flags": n.flags,
            "flattened": n.flattened,
            "timings_ms": {
                "grey": n.timings.grey.as_secs_f64() * 1e3,
                "detect": n.timings.detect.as_secs_f64() * 1e3,
                "deskew": n.timings.deskew.as_secs_f64() * 1e3,
                "warp": n.timings.warp.as_secs_f64() * 1e3,
                "flatten": n.timings.flatten.as_secs_f64() * 1e3,
                "sharpen": n.timings.sharpen.as_secs_f64() * 1e3,
                "flags": n.timings.flags.as_secs_f64() * 1e3,
                "total": n.timings.total.as_secs_f64() * 1e3,
            },
        });
        std::fs::write(
            out.join(format!("{stem}.json")),
            serde_json::to_string_pretty(&json)?,
        )?;
        if let Some(px) = preview {
            let scale = px as f32 / img.width().max(img.height()) as f32;
            let mut thumb = img.thumbnail(px, px).to_rgb8();
            if let Some(q) = n.params.page_quad {
                for i in 0..4 {
                    let (a, b) = (q[i], q[(i + 1) % 4]);
                    for d in [-1.0, 0.0, 1.0] {
                        draw_line_segment_mut(
                            &mut thumb,
                            (a.0 * scale + d, a.1 * scale),
                            (b.0 * scale + d, b.1 * scale),
                            Rgb([255, 0, 0]),
                        );
                    }
                }
            }
            thumb.save(out.join(format!("{stem}.in.png")))?;
            DynamicImage::ImageLuma8(n.image.clone())
                .thumbnail(px, px)
                .save(out.join(format!("{stem}.out.png")))?;
        }
        if geometry {
            p360_imagenorm::geometry(&img, &n.params).save(out.join(format!("{stem}.geom.png")))?;
        }
        if debug {
            p360_imagenorm::debug::page_mask(&img).save(out.join(format!("{stem}.mask.png")))?;
        }
        eprintln!(
            "{stem}: {}x{} -> {}x{} quad={} skew={:.2} flat={} flags={} total={:.0} ms",
            img.width(),
            img.height(),
            n.image.width(),
            n.image.height(),
            n.params.page_quad.is_some(),
            n.params.skew_degrees,
            n.flattened,
            n.flags.len(),
            n.timings.total.as_secs_f64() * 1e3
        );
    }
    Ok(())
}
