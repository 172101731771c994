//! Crops of rotated regions (MediaPipe's `ImageToTensorCalculator` with a rotated `NormalizedRect`)
//! and the transforms that map results back to image pixels.

use image::{Rgb, RgbImage};

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

/// Bilinear sample at continuous pixel coordinates (pixel centres at `i + 0.5`).
fn sample(img: &RgbImage, x: f32, y: f32, border: Border) -> [f32; 3] {
    let (w, h) = (img.width() as i64, img.height() as i64);
    let fx = x - 0.5;
    let fy = y - 0.5;
    let x0 = fx.floor();
    let y0 = fy.floor();
    let tx = fx - x0;
    let ty = fy - y0;
    let (x0, y0) = (x0 as i64, y0 as i64);
    let mut acc = [0.0f32; 3];
    for (dy, wy) in [(0, 1.0 - ty), (1, ty)] {
        for (dx, wx) in [(0, 1.0 - tx), (1, tx)] {
            let (mut px, mut py) = (x0 + dx, y0 + dy);
            let weight = wx * wy;
            if weight == 0.0 {
                continue;
            }
            if px < 0 || py < 0 || px >= w || py >= h {
                match border {
                    Border::Zero => continue,
                    Border::Replicate => {
                        px = px.clamp(0, w - 1);
                        py = py.clamp(0, h - 1);
                    }
                }
            }
            let p = img.get_pixel(px as u32, py as u32).0;
            for c in 0..3 {
                acc[c] += weight * f32::from(p[c]);
            }
        }
    }
    acc
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
    let mut out = RgbImage::new(out_w, out_h);
    for (u, v, px) in out.enumerate_pixels_mut() {
        let (x, y) = map.apply(u as f32 + 0.5, v as f32 + 0.5);
        let s = sample(img, x, y, border);
        *px = Rgb(s.map(|c| c.round().clamp(0.0, 255.0) as u8));
    }
    Ok((out, map))
}

#[cfg(test)]
mod tests {
    use super::*;

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
