//! A small float image and the few filters the estimators need (box downscale, sliding max/min,
//! box blur), written out so that every size — including 0 and 1 pixel — is handled without
//! panicking and without pulling in a general image-processing dependency for them.

use image::GrayImage;

/// A single-channel `f32` image, row-major.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Plane {
    pub(crate) w: usize,
    pub(crate) h: usize,
    pub(crate) data: Vec<f32>,
}

impl Plane {
    pub(crate) fn new(w: usize, h: usize, value: f32) -> Self {
        Plane {
            w,
            h,
            data: vec![value; w * h],
        }
    }

    #[inline]
    pub(crate) fn at(&self, x: usize, y: usize) -> f32 {
        self.data[y * self.w + x]
    }

    /// Bilinear sample at continuous coordinates (pixel centres at +0.5), clamped at the border.
    pub(crate) fn sample(&self, x: f32, y: f32) -> f32 {
        if self.w == 0 || self.h == 0 {
            return 0.0;
        }
        let fx = (x - 0.5).clamp(0.0, (self.w - 1) as f32);
        let fy = (y - 0.5).clamp(0.0, (self.h - 1) as f32);
        let x0 = fx as usize;
        let y0 = fy as usize;
        let x1 = (x0 + 1).min(self.w - 1);
        let y1 = (y0 + 1).min(self.h - 1);
        let ax = fx - x0 as f32;
        let ay = fy - y0 as f32;
        let top = self.at(x0, y0) * (1.0 - ax) + self.at(x1, y0) * ax;
        let bottom = self.at(x0, y1) * (1.0 - ax) + self.at(x1, y1) * ax;
        top * (1.0 - ay) + bottom * ay
    }

    /// Box-average downscale of a grey image by an integer factor (partial blocks at the right
    /// and bottom edges are averaged over the pixels they have).
    pub(crate) fn downscale(img: &GrayImage, factor: usize) -> Plane {
        let factor = factor.max(1);
        let (w, h) = (img.width() as usize, img.height() as usize);
        let (sw, sh) = (w.div_ceil(factor), h.div_ceil(factor));
        let mut sums = vec![0u32; sw * sh];
        let mut counts = vec![0u32; sw * sh];
        let raw = img.as_raw();
        if w > 0 {
            for (y, row) in raw.chunks_exact(w).enumerate() {
                let sums_row = &mut sums[(y / factor) * sw..(y / factor + 1) * sw];
                let counts_row = &mut counts[(y / factor) * sw..(y / factor + 1) * sw];
                for ((block, s), c) in row
                    .chunks(factor)
                    .zip(sums_row.iter_mut())
                    .zip(counts_row.iter_mut())
                {
                    *s += block.iter().map(|&v| u32::from(v)).sum::<u32>();
                    *c += block.len() as u32;
                }
            }
        }
        let data = sums
            .iter()
            .zip(&counts)
            .map(|(&s, &c)| if c == 0 { 0.0 } else { s as f32 / c as f32 })
            .collect();
        Plane { w: sw, h: sh, data }
    }

    /// Box-average downscale by an integer factor.
    pub(crate) fn shrink(&self, factor: usize) -> Plane {
        let factor = factor.max(1);
        let (sw, sh) = (self.w.div_ceil(factor), self.h.div_ceil(factor));
        let mut sums = vec![0.0f32; sw * sh];
        let mut counts = vec![0.0f32; sw * sh];
        for y in 0..self.h {
            for x in 0..self.w {
                let i = (y / factor) * sw + x / factor;
                sums[i] += self.data[y * self.w + x];
                counts[i] += 1.0;
            }
        }
        for (s, c) in sums.iter_mut().zip(&counts) {
            if *c > 0.0 {
                *s /= *c;
            }
        }
        Plane {
            w: sw,
            h: sh,
            data: sums,
        }
    }

    /// Applies `f` along every row and every column (a separable filter). Columns are done as
    /// rows of the transpose, which keeps memory access sequential.
    fn separable(&self, f: impl Fn(&[f32], &mut [f32])) -> Plane {
        let rows = |p: &Plane| {
            let mut out = vec![0.0f32; p.w * p.h];
            if p.w > 0 {
                for (src, dst) in p.data.chunks_exact(p.w).zip(out.chunks_exact_mut(p.w)) {
                    f(src, dst);
                }
            }
            Plane {
                w: p.w,
                h: p.h,
                data: out,
            }
        };
        rows(&rows(self).transpose()).transpose()
    }

    fn transpose(&self) -> Plane {
        let (w, h) = (self.w, self.h);
        let mut data = vec![0.0f32; w * h];
        // In tiles, so that both sides stay in cache.
        const T: usize = 32;
        for y0 in (0..h).step_by(T) {
            for x0 in (0..w).step_by(T) {
                for y in y0..(y0 + T).min(h) {
                    for x in x0..(x0 + T).min(w) {
                        data[x * h + y] = self.data[y * w + x];
                    }
                }
            }
        }
        Plane { w: h, h: w, data }
    }

    /// Maximum over a (2r+1)² square window (grey dilation), window clipped at the border.
    pub(crate) fn max_filter(&self, r: usize) -> Plane {
        self.separable(|src, dst| sliding_extreme(src, dst, r, f32::max, f32::MIN))
    }

    /// Minimum over a (2r+1)² square window (grey erosion), window clipped at the border.
    pub(crate) fn min_filter(&self, r: usize) -> Plane {
        self.separable(|src, dst| sliding_extreme(src, dst, r, f32::min, f32::MAX))
    }

    /// Mean over a (2r+1)² square window, clipped at the border (no edge darkening).
    pub(crate) fn box_blur(&self, r: usize) -> Plane {
        self.separable(|src, dst| box_1d(src, dst, r))
    }
}

/// Sliding-window extreme (van Herk / Gil-Werman: block-wise prefix and suffix extremes, three
/// operations per sample whatever the radius). `op` is `f32::max` or `f32::min`, `identity` its
/// neutral value; the window is clipped at the ends.
fn sliding_extreme(src: &[f32], dst: &mut [f32], r: usize, op: fn(f32, f32) -> f32, identity: f32) {
    let n = src.len();
    if n == 0 {
        return;
    }
    let k = 2 * r + 1;
    let len = n + 2 * r;
    let at = |j: usize| {
        if j >= r && j < n + r {
            src[j - r]
        } else {
            identity
        }
    };
    let mut g = vec![identity; len];
    let mut h = vec![identity; len];
    for j in 0..len {
        g[j] = if j % k == 0 {
            at(j)
        } else {
            op(g[j - 1], at(j))
        };
    }
    for j in (0..len).rev() {
        h[j] = if j % k == k - 1 || j == len - 1 {
            at(j)
        } else {
            op(h[j + 1], at(j))
        };
    }
    for (i, out) in dst.iter_mut().enumerate().take(n) {
        *out = op(h[i], g[i + 2 * r]);
    }
}

fn box_1d(src: &[f32], dst: &mut [f32], r: usize) {
    let n = src.len();
    // Running sum over the clipped window, in f64 so that long rows do not drift.
    let mut acc = 0.0f64;
    let mut hi = 0usize;
    let mut lo = 0usize;
    for (i, out) in dst.iter_mut().enumerate().take(n) {
        let want_hi = (i + r + 1).min(n);
        while hi < want_hi {
            acc += f64::from(src[hi]);
            hi += 1;
        }
        let want_lo = i.saturating_sub(r);
        while lo < want_lo {
            acc -= f64::from(src[lo]);
            lo += 1;
        }
        *out = (acc / (hi - lo) as f64) as f32;
    }
}

/// The value below which a fraction `q` of `values` lies (0 for an empty slice).
pub(crate) fn quantile(values: &[f32], q: f32) -> f32 {
    if values.is_empty() {
        return 0.0;
    }
    let mut v: Vec<f32> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return 0.0;
    }
    let k = ((v.len() - 1) as f32 * q.clamp(0.0, 1.0)).round() as usize;
    let (_, kth, _) = v.select_nth_unstable_by(k, f32::total_cmp);
    *kth
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn filters_handle_tiny_planes_and_match_brute_force() {
        for (w, h) in [(0, 0), (1, 1), (1, 7), (9, 1), (13, 11)] {
            let mut p = Plane::new(w, h, 0.0);
            for (i, v) in p.data.iter_mut().enumerate() {
                *v = ((i * 37) % 11) as f32;
            }
            for r in [0, 1, 3] {
                let mx = p.max_filter(r);
                let mn = p.min_filter(r);
                let bl = p.box_blur(r);
                for y in 0..h {
                    for x in 0..w {
                        let mut best = f32::MIN;
                        let mut low = f32::MAX;
                        let (mut s, mut c) = (0.0, 0.0);
                        for yy in y.saturating_sub(r)..(y + r + 1).min(h) {
                            for xx in x.saturating_sub(r)..(x + r + 1).min(w) {
                                best = best.max(p.at(xx, yy));
                                low = low.min(p.at(xx, yy));
                                s += p.at(xx, yy);
                                c += 1.0;
                            }
                        }
                        assert_eq!(mx.at(x, y), best);
                        assert_eq!(mn.at(x, y), low);
                        assert!((bl.at(x, y) - s / c).abs() < 1e-4);
                    }
                }
            }
        }
    }

    #[test]
    fn downscale_averages_blocks() {
        let img = GrayImage::from_fn(5, 3, |x, _| image::Luma([if x < 2 { 0 } else { 200 }]));
        let p = Plane::downscale(&img, 2);
        assert_eq!((p.w, p.h), (3, 2));
        assert_eq!(p.at(0, 0), 0.0);
        assert_eq!(p.at(1, 1), 200.0);
        assert_eq!(quantile(&[3.0, 1.0, 2.0], 0.5), 2.0);
        assert_eq!(quantile(&[], 0.5), 0.0);
    }
}
