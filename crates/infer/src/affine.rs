//! Crops of rotated regions (MediaPipe's `ImageToTensorCalculator` with a rotated `NormalizedRect`)
//! and the transforms that map results back to image pixels.

use image::RgbImage;

use crate::{InferError, Result};

/// A rotated rectangle in image pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RotatedRect {
    /// Centre x.
    pub cx: f32,
    /// Centre y.
    pub cy: f32,
    /// Width along the rectangle's own x axis.
    pub width: f32,
    /// Height along the rectangle's own y axis.
    pub height: f32,
    /// Rotation in radians, clockwise on screen (image y points down), as MediaPipe's.
    pub rotation: f32,
}

/// A 2×3 affine map `[x', y'] = M · [x, y, 1]`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Affine {
    /// Row-major coefficients.
    pub m: [[f32; 3]; 2],
}

impl Affine {
    /// Applies the map to a point.
    pub fn apply(&self, x: f32, y: f32) -> (f32, f32) {
        let m = &self.m;
        (
            m[0][0] * x + m[0][1] * y + m[0][2],
            m[1][0] * x + m[1][1] * y + m[1][2],
        )
    }

    /// The inverse map; fails for a degenerate (zero-area) map.
    pub fn inverse(&self) -> Result<Affine> {
        let [[a, b, c], [d, e, f]] = self.m;
        let det = a * e - b * d;
        if det.abs() < 1e-12 || !det.is_finite() {
            return Err(InferError::Shape("affine map is not invertible".into()));
        }
        let (ia, ib, id, ie) = (e / det, -b / det, -d / det, a / det);
        Ok(Affine {
            m: [[ia, ib, -(ia * c + ib * f)], [id, ie, -(id * c + ie * f)]],
        })
    }
}

impl RotatedRect {
    /// The map from crop pixels (`out_w` × `out_h`, pixel centres at `i + 0.5`) to image pixels.
    pub fn crop_to_image(&self, out_w: u32, out_h: u32) -> Affine {
        let (sin, cos) = self.rotation.sin_cos();
        let sx = self.width / out_w as f32;
        let sy = self.height / out_h as f32;
        // point = centre + R · ((u - out_w/2)·sx, (v - out_h/2)·sy)
        let (a, b) = (cos * sx, -sin * sy);
        let (d, e) = (sin * sx, cos * sy);
        let hx = out_w as f32 / 2.0;
        let hy = out_h as f32 / 2.0;
        Affine {
            m: [
                [a, b, self.cx - a * hx - b * hy],
                [d, e, self.cy - d * hx - e * hy],
            ],
        }
    }
}

/// What a crop sees outside the image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Border {
    /// Black: MediaPipe's `BORDER_ZERO`, which its detectors use so padding looks like padding.
    #[default]
    Zero,
    /// The nearest edge pixel: MediaPipe's default (`BORDER_REPLICATE`), which its landmark
    /// models were trained with, so a ROI reaching past the frame does not see a black wall.
    Replicate,
}

/// Fixed-point bits of a sampling coordinate.
const COORD_BITS: u32 = 16;
/// Bits of a bilinear weight (OpenCV's `warpAffine`, which MediaPipe's CPU crops use, keeps 5).
const WEIGHT_BITS: u32 = 11;
const WEIGHT_ONE: u32 = 1 << WEIGHT_BITS;

/// Bilinear blend of four taps with fixed-point weights `tx`, `ty` in `0..WEIGHT_ONE`, rounded.
#[inline(always)]
fn blend(p00: u8, p10: u8, p01: u8, p11: u8, tx: u32, ty: u32) -> u8 {
    let top = u32::from(p00) * (WEIGHT_ONE - tx) + u32::from(p10) * tx;
    let bottom = u32::from(p01) * (WEIGHT_ONE - tx) + u32::from(p11) * tx;
    // ≤ 255 · 2^22, so u32 holds it; the result is ≤ 255.
    ((top * (WEIGHT_ONE - ty) + bottom * ty + (1 << (2 * WEIGHT_BITS - 1))) >> (2 * WEIGHT_BITS))
        as u8
}

/// The weight of the right (lower) tap at fixed-point position `v`.
fn weight(v: i64) -> u32 {
    ((v >> (COORD_BITS - WEIGHT_BITS)) as u32) & (WEIGHT_ONE - 1)
}

/// The bilinear sample at fixed-point position (`x`, `y`) (pixel `i` spans `i..i+1` in
/// `COORD_BITS` fractions, already shifted by half a pixel) near or past the image's edge,
/// where taps outside see black (`BORDER_ZERO`).
fn sample_zero_border(src: &[u8], w: i64, h: i64, x: i64, y: i64) -> [u8; 3] {
    let (x0, y0) = (x >> COORD_BITS, y >> COORD_BITS);
    if x0 < -1 || y0 < -1 || x0 >= w || y0 >= h {
        // All four taps outside: letterbox bars are a third of a detector's input.
        return [0; 3];
    }
    let stride = w as usize * 3;
    let tap = |px: i64, py: i64| -> [u8; 3] {
        if px < 0 || py < 0 || px >= w || py >= h {
            return [0; 3];
        }
        let at = py as usize * stride + px as usize * 3;
        src.get(at..at + 3)
            .and_then(|p| p.try_into().ok())
            .unwrap_or([0; 3])
    };
    let (p00, p10) = (tap(x0, y0), tap(x0 + 1, y0));
    let (p01, p11) = (tap(x0, y0 + 1), tap(x0 + 1, y0 + 1));
    let (tx, ty) = (weight(x), weight(y));
    [0, 1, 2].map(|c| blend(p00[c], p10[c], p01[c], p11[c], tx, ty))
}

/// A coordinate in fixed point, clamped far outside any image so the per-pixel steps that
/// follow cannot overflow.
fn fixed(v: f32) -> i64 {
    const FAR: f32 = (1u64 << 40) as f32;
    (v.clamp(-FAR, FAR) * (1u32 << COORD_BITS) as f32).round() as i64
}

/// Crops `rect` out of `img` into an `out_w` × `out_h` image (bilinear, black outside the image),
/// and returns the map from crop pixels back to image pixels.
pub fn crop_rotated(
    img: &RgbImage,
    rect: &RotatedRect,
    out_w: u32,
    out_h: u32,
) -> Result<(RgbImage, Affine)> {
    crop_rotated_with(img, rect, out_w, out_h, Border::Zero)
}

/// As [`crop_rotated`], with a choice of what lies outside the image.
pub fn crop_rotated_with(
    img: &RgbImage,
    rect: &RotatedRect,
    out_w: u32,
    out_h: u32,
    border: Border,
) -> Result<(RgbImage, Affine)> {
    if out_w == 0
        || out_h == 0
        || img.width() == 0
        || img.height() == 0
        || !(rect.width > 0.0 && rect.height > 0.0)
        || !(rect.cx.is_finite() && rect.cy.is_finite() && rect.rotation.is_finite())
    {
        return Err(InferError::Shape(format!(
            "cannot crop {rect:?} into {out_w}×{out_h}"
        )));
    }
    let map = rect.crop_to_image(out_w, out_h);
    let (w, h) = (i64::from(img.width()), i64::from(img.height()));
    let src = img.as_raw();
    let stride = img.width() as usize * 3;
    let mut out = RgbImage::new(out_w, out_h);
    let row_len = out_w as usize * 3;
    // Fixed-point coordinates stepped along each row, integer weights: the float version
    // (libm `floorf`/`roundf` per pixel on x86-64's baseline, float-to-int conversions) took
    // ~18 ns a pixel (0.92 ms for a 224² crop, 0.28 ms now; BENCHMARKS.md).
    let (step_x, step_y) = (fixed(map.m[0][0]), fixed(map.m[1][0]));
    let half = 1i64 << (COORD_BITS - 1);
    let (max_x, max_y) = ((w - 1) << COORD_BITS, (h - 1) << COORD_BITS);
    for (v, row) in out.chunks_exact_mut(row_len).enumerate() {
        let (x, y) = map.apply(0.5, v as f32 + 0.5);
        // Pixel centres sit at i + 0.5: shift by half a pixel so `>> COORD_BITS` is the tap.
        let (mut fx, mut fy) = (fixed(x) - half, fixed(y) - half);
        for px in row.chunks_exact_mut(3) {
            let s = match border {
                // Replicating the edge is sampling at the position clamped into the image (the
                // far tap then has weight 0): one path for every pixel, no per-tap checks.
                Border::Replicate => {
                    let (cx, cy) = (fx.clamp(0, max_x), fy.clamp(0, max_y));
                    let (x0, y0) = ((cx >> COORD_BITS) as usize, (cy >> COORD_BITS) as usize);
                    let dx = if x0 + 1 < w as usize { 3 } else { 0 };
                    let dy = if y0 + 1 < h as usize { stride } else { 0 };
                    let at = y0 * stride + x0 * 3;
                    let (tx, ty) = (weight(cx), weight(cy));
                    let tap = |offset: usize| src.get(at + offset..at + offset + 3);
                    match (tap(0), tap(dx), tap(dy), tap(dy + dx)) {
                        (Some(p00), Some(p10), Some(p01), Some(p11)) => {
                            [0, 1, 2].map(|c| blend(p00[c], p10[c], p01[c], p11[c], tx, ty))
                        }
                        // Cannot happen: the clamped taps lie inside the image.
                        _ => [0; 3],
                    }
                }
                Border::Zero => {
                    let (x0, y0) = (fx >> COORD_BITS, fy >> COORD_BITS);
                    let inside = x0 >= 0 && y0 >= 0 && x0 + 1 < w && y0 + 1 < h;
                    let taps = if inside {
                        // Both non-negative and inside the image, so the offset fits.
                        let at = y0 as usize * stride + x0 as usize * 3;
                        src.get(at..at + 6)
                            .zip(src.get(at + stride..at + stride + 6))
                    } else {
                        None
                    };
                    match taps {
                        Some((top, bottom)) => {
                            let (tx, ty) = (weight(fx), weight(fy));
                            [0, 1, 2].map(|c| {
                                blend(top[c], top[c + 3], bottom[c], bottom[c + 3], tx, ty)
                            })
                        }
                        None => sample_zero_border(src, w, h, fx, fy),
                    }
                }
            };
            px.copy_from_slice(&s);
            fx = fx.saturating_add(step_x);
            fy = fy.saturating_add(step_y);
        }
    }
    Ok((out, map))
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Rgb;

    fn gradient(w: u32, h: u32) -> RgbImage {
        RgbImage::from_fn(w, h, |x, y| {
            Rgb([(x * 7 % 256) as u8, (y * 5 % 256) as u8, 9])
        })
    }

    #[test]
    fn unrotated_crop_is_a_copy() {
        let img = gradient(40, 30);
        let rect = RotatedRect {
            cx: 15.0,
            cy: 12.0,
            width: 10.0,
            height: 8.0,
            rotation: 0.0,
        };
        let (crop, map) = crop_rotated(&img, &rect, 10, 8).expect("crop");
        for (u, v, px) in crop.enumerate_pixels() {
            assert_eq!(px, img.get_pixel(10 + u, 8 + v));
        }
        assert_eq!(map.apply(0.0, 0.0), (10.0, 8.0));
    }

    #[test]
    fn quarter_turn_maps_axes() {
        let img = gradient(40, 40);
        // Rotated by +90°: the crop's x axis runs down the image.
        let rect = RotatedRect {
            cx: 20.0,
            cy: 20.0,
            width: 10.0,
            height: 10.0,
            rotation: std::f32::consts::FRAC_PI_2,
        };
        let (crop, map) = crop_rotated(&img, &rect, 10, 10).expect("crop");
        let (x, y) = map.apply(10.0, 5.0);
        assert!(
            (x - 20.0).abs() < 1e-4 && (y - 25.0).abs() < 1e-4,
            "{x},{y}"
        );
        // Crop pixel (u, v) centre lands on image pixel (24 - v, 15 + u).
        for (u, v) in [(0, 0), (3, 7), (9, 9)] {
            assert_eq!(
                crop.get_pixel(u, v),
                img.get_pixel(24 - v, 15 + u),
                "{u},{v}"
            );
        }
    }

    /// The textbook float bilinear sample (pixel centres at i + 0.5).
    fn reference(img: &RgbImage, x: f32, y: f32, border: Border) -> [f32; 3] {
        let (fx, fy) = (x - 0.5, y - 0.5);
        let (x0, y0) = (fx.floor(), fy.floor());
        let (tx, ty) = (fx - x0, fy - y0);
        let (w, h) = (img.width() as i64, img.height() as i64);
        let mut acc = [0.0f32; 3];
        for (dy, wy) in [(0, 1.0 - ty), (1, ty)] {
            for (dx, wx) in [(0, 1.0 - tx), (1, tx)] {
                let (mut px, mut py) = (x0 as i64 + dx, y0 as i64 + dy);
                if px < 0 || py < 0 || px >= w || py >= h {
                    if border == Border::Zero {
                        continue;
                    }
                    (px, py) = (px.clamp(0, w - 1), py.clamp(0, h - 1));
                }
                let p = img.get_pixel(px as u32, py as u32).0;
                for c in 0..3 {
                    acc[c] += wx * wy * f32::from(p[c]);
                }
            }
        }
        acc
    }

    #[test]
    fn crops_match_float_bilinear_inside_and_across_the_edge() {
        let img = RgbImage::from_fn(53, 37, |x, y| {
            Rgb([
                (x * 31 % 256) as u8,
                (y * 17 % 256) as u8,
                ((x * y) % 256) as u8,
            ])
        });
        for border in [Border::Zero, Border::Replicate] {
            for (cx, rotation) in [(26.0, 0.0), (26.0, 0.7), (48.0, -2.1), (3.0, 1.3)] {
                let rect = RotatedRect {
                    cx,
                    cy: 20.0,
                    width: 30.0,
                    height: 22.0,
                    rotation,
                };
                let (crop, map) = crop_rotated_with(&img, &rect, 19, 15, border).expect("crop");
                for (u, v, px) in crop.enumerate_pixels() {
                    let (x, y) = map.apply(u as f32 + 0.5, v as f32 + 0.5);
                    let want = reference(&img, x, y, border);
                    for c in 0..3 {
                        let diff = (f32::from(px.0[c]) - want[c]).abs();
                        assert!(
                            diff <= 1.0,
                            "{border:?} {cx} {rotation} at {u},{v}: {px:?} vs {want:?}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn absurd_rects_give_border_pixels_not_panics() {
        let img = gradient(10, 10);
        for (cx, width) in [(1e30, 5.0), (-1e30, 1e30), (5.0, 3e38)] {
            let rect = RotatedRect {
                cx,
                cy: 5.0,
                width,
                height: 4.0,
                rotation: 0.4,
            };
            for border in [Border::Zero, Border::Replicate] {
                assert!(crop_rotated_with(&img, &rect, 8, 8, border).is_ok());
            }
        }
    }

    #[test]
    fn inverse_round_trips() {
        let cases = [0.0f32, 0.3, -1.2, 3.0];
        for rotation in cases {
            let rect = RotatedRect {
                cx: 50.0,
                cy: 40.0,
                width: 33.0,
                height: 21.0,
                rotation,
            };
            let map = rect.crop_to_image(64, 48);
            let inv = map.inverse().expect("invertible");
            for (x, y) in [(0.0, 0.0), (64.0, 48.0), (10.5, 33.25)] {
                let (ix, iy) = map.apply(x, y);
                let (bx, by) = inv.apply(ix, iy);
                assert!((bx - x).abs() < 1e-3 && (by - y).abs() < 1e-3, "{rotation}");
            }
        }
    }

    #[test]
    fn outside_is_black_and_bad_sizes_fail() {
        let img = gradient(10, 10);
        let rect = RotatedRect {
            cx: -50.0,
            cy: -50.0,
            width: 10.0,
            height: 10.0,
            rotation: 0.0,
        };
        let (crop, _) = crop_rotated(&img, &rect, 4, 4).expect("crop");
        assert!(crop.pixels().all(|p| p.0 == [0, 0, 0]));
        assert!(crop_rotated(&img, &rect, 0, 4).is_err());
        let flat = RotatedRect { width: 0.0, ..rect };
        assert!(crop_rotated(&img, &flat, 4, 4).is_err());
    }
}
