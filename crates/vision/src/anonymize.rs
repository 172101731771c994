//! Face anonymisation: blur, pixelate or a solid box over an elliptical, feathered region.

use std::str::FromStr;

use image::{Rgb, RgbImage};

use crate::faces::Face;
use crate::{Result, VisionError};

/// How faces are hidden.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AnonymizeMode {
    /// Gaussian blur whose radius grows with the face.
    #[default]
    Blur,
    /// Coarse blocks of the face's mean colours.
    Pixelate,
    /// A solid black rectangle.
    Box,
}

impl FromStr for AnonymizeMode {
    type Err = VisionError;

    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "blur" => Ok(Self::Blur),
            "pixelate" => Ok(Self::Pixelate),
            "box" => Ok(Self::Box),
            _ => Err(VisionError::BadOption(format!(
                "mode must be blur, pixelate or box, got {s:?}"
            ))),
        }
    }
}

/// Anonymisation options.
#[derive(Debug, Clone, PartialEq)]
pub struct AnonymizeOptions {
    /// Blur, pixelate or box.
    pub mode: AnonymizeMode,
    /// [0.1, 10], default 1. Blur: sigma = 0.1 × strength × the face's longer side (≥ 2 px).
    /// Pixelate: about 8 / strength blocks across the face (2..=64). Box: unused.
    pub strength: f32,
    /// The face box is enlarged by this factor about its centre before masking, [1, 3]; the
    /// ellipse inscribed in the enlarged box covers the whole face, hair line and chin.
    pub box_scale: f32,
    /// Draws the enlarged boxes on top (a debugging view).
    pub draw_boxes: bool,
}

impl Default for AnonymizeOptions {
    fn default() -> Self {
        Self {
            mode: AnonymizeMode::Blur,
            strength: 1.0,
            box_scale: 1.3,
            draw_boxes: false,
        }
    }
}

impl AnonymizeOptions {
    /// Checks every field's range.
    pub fn validate(&self) -> Result<()> {
        if !(0.1..=10.0).contains(&self.strength) {
            return Err(VisionError::BadOption(format!(
                "strength must be in [0.1, 10], got {}",
                self.strength
            )));
        }
        if !(1.0..=3.0).contains(&self.box_scale) {
            return Err(VisionError::BadOption(format!(
                "box_scale must be in [1, 3], got {}",
                self.box_scale
            )));
        }
        Ok(())
    }
}

/// Width of the feathered rim of the mask, as a fraction of the ellipse radius.
const FEATHER: f32 = 0.15;

/// The enlarged region of one face, in image pixels (may extend past the image).
#[derive(Debug, Clone, Copy)]
struct Region {
    cx: f32,
    cy: f32,
    rx: f32,
    ry: f32,
}

impl Region {
    fn new(face: &Face, scale: f32) -> Option<Self> {
        let b = face.bbox;
        let region = Self {
            cx: b.x + b.width / 2.0,
            cy: b.y + b.height / 2.0,
            rx: b.width * scale / 2.0,
            ry: b.height * scale / 2.0,
        };
        let finite = [region.cx, region.cy, region.rx, region.ry]
            .iter()
            .all(|v| v.is_finite());
        (finite && region.rx > 0.0 && region.ry > 0.0).then_some(region)
    }

    /// Pixel bounds `[x0, x1) × [y0, y1)` of the region grown by `margin`, clipped to the image.
    fn bounds(&self, margin: f32, w: u32, h: u32) -> (u32, u32, u32, u32) {
        let clip = |v: f32, max: u32| v.clamp(0.0, max as f32) as u32;
        (
            clip((self.cx - self.rx - margin).floor(), w),
            clip((self.cy - self.ry - margin).floor(), h),
            clip((self.cx + self.rx + margin).ceil(), w),
            clip((self.cy + self.ry + margin).ceil(), h),
        )
    }

    /// Mask weight of pixel `(x, y)`: 1 inside the ellipse, fading to 0 over its rim.
    fn alpha(&self, x: u32, y: u32) -> f32 {
        let dx = (x as f32 + 0.5 - self.cx) / self.rx;
        let dy = (y as f32 + 0.5 - self.cy) / self.ry;
        let r = (dx * dx + dy * dy).sqrt();
        ((1.0 - r) / FEATHER).clamp(0.0, 1.0)
    }
}

/// Hides every face in `image` in place. Options are checked before any pixel changes; on error
/// the image may be partly anonymised, so callers must discard it and never return the
/// original (fail closed).
pub fn anonymize(image: &mut RgbImage, faces: &[Face], options: &AnonymizeOptions) -> Result<()> {
    options.validate()?;
    let regions = faces
        .iter()
        .map(|f| {
            Region::new(f, options.box_scale)
                .ok_or_else(|| VisionError::BadOption(format!("face box {:?} is empty", f.bbox)))
        })
        .collect::<Result<Vec<_>>>()?;
    for (face, region) in faces.iter().zip(&regions) {
        let size = face.bbox.width.max(face.bbox.height);
        match options.mode {
            AnonymizeMode::Blur => {
                blur_region(image, region, (0.1 * options.strength * size).max(2.0))
            }
            AnonymizeMode::Pixelate => {
                let blocks = (8.0 / options.strength).round().clamp(2.0, 64.0);
                pixelate_region(image, region, (size * options.box_scale / blocks).max(2.0));
            }
            AnonymizeMode::Box => fill_region(image, region),
        }
    }
    if options.draw_boxes {
        for region in &regions {
            draw_rect(image, region, Rgb([0, 255, 0]));
        }
    }
    Ok(())
}

/// Widths of `n` box filters whose cascade approximates a Gaussian of `sigma` (Kovesi 2010).
fn box_sizes(sigma: f32, n: usize) -> Vec<usize> {
    let nf = n as f32;
    let ideal = (12.0 * sigma * sigma / nf + 1.0).sqrt();
    let mut wl = ideal.floor() as i64;
    if wl % 2 == 0 {
        wl -= 1;
    }
    let wl = wl.max(1);
    let wlf = wl as f32;
    let m = ((12.0 * sigma * sigma - nf * wlf * wlf - 4.0 * nf * wlf - 3.0 * nf)
        / (-4.0 * wlf - 4.0))
        .round() as i64;
    (0..n as i64)
        .map(|i| if i < m { wl as usize } else { wl as usize + 2 })
        .collect()
}

/// One box-filter pass over `len` samples spaced `stride` apart (3 channels each), edges
/// clamped; `tmp` is scratch of `len * 3`.
fn box_pass(
    buf: &mut [f32],
    start: usize,
    stride: usize,
    len: usize,
    radius: usize,
    tmp: &mut [f32],
) {
    let at = |i: isize| -> usize {
        let i = i.clamp(0, len as isize - 1) as usize;
        start + i * stride
    };
    let r = radius as isize;
    let norm = 1.0 / (2 * radius + 1) as f32;
    for c in 0..3 {
        let mut sum = 0.0;
        for i in -r..=r {
            sum += buf[at(i) + c];
        }
        for i in 0..len as isize {
            tmp[i as usize * 3 + c] = sum * norm;
            sum += buf[at(i + r + 1) + c] - buf[at(i - r) + c];
        }
    }
    for i in 0..len {
        let p = start + i * stride;
        buf[p..p + 3].copy_from_slice(&tmp[i * 3..i * 3 + 3]);
    }
}

fn blur_region(image: &mut RgbImage, region: &Region, sigma: f32) {
    let (w, h) = image.dimensions();
    // Blur from real neighbours 3σ out, so the ROI's own edge does not leak into the face.
    let (x0, y0, x1, y1) = region.bounds(3.0 * sigma, w, h);
    let (rw, rh) = ((x1 - x0) as usize, (y1 - y0) as usize);
    if rw == 0 || rh == 0 {
        return;
    }
    // A Gaussian of σ leaves no detail finer than ~σ/4, so it runs on a copy shrunk by that
    // factor (block means) and is sampled back up bilinearly: the cost then stops growing with
    // the face (`person_hopper` at 4000×3000, one ~1700 px face: 566 ms at full size, 63 ms
    // shrunk, `percept bench --task anonymize`).
    let k = ((sigma / 4.0).floor() as usize).max(1);
    let (sw, sh) = (rw.div_ceil(k), rh.div_ceil(k));
    let mut buf = vec![0.0f32; sw * sh * 3];
    let mut count = vec![0u32; sw * sh];
    for y in 0..rh {
        for x in 0..rw {
            let p = image.get_pixel(x0 + x as u32, y0 + y as u32).0;
            let j = (y / k) * sw + x / k;
            count[j] += 1;
            for c in 0..3 {
                buf[j * 3 + c] += f32::from(p[c]);
            }
        }
    }
    for (j, &n) in count.iter().enumerate() {
        let inv = 1.0 / n.max(1) as f32;
        for c in 0..3 {
            buf[j * 3 + c] *= inv;
        }
    }
    let mut tmp = vec![0.0f32; sw.max(sh) * 3];
    for size in box_sizes(sigma / k as f32, 3) {
        let radius = size / 2;
        for y in 0..sh {
            box_pass(&mut buf, y * sw * 3, 3, sw, radius, &mut tmp);
        }
        for x in 0..sw {
            box_pass(&mut buf, x * 3, sw * 3, sh, radius, &mut tmp);
        }
    }
    // Block centres sit at (i + 0.5)·k − 0.5 in region pixels; k = 1 reads the buffer exactly.
    let axis = |v: u32, origin: u32, n: usize| -> (usize, usize, f32) {
        let f = ((v - origin) as f32 + 0.5) / k as f32 - 0.5;
        let f = f.clamp(0.0, (n - 1) as f32);
        let i = f.floor() as usize;
        (i, (i + 1).min(n - 1), f - i as f32)
    };
    let (mx0, my0, mx1, my1) = region.bounds(0.0, w, h);
    for y in my0..my1 {
        let (ya, yb, fy) = axis(y, y0, sh);
        for x in mx0..mx1 {
            let a = region.alpha(x, y);
            if a <= 0.0 {
                continue;
            }
            let (xa, xb, fx) = axis(x, x0, sw);
            let at = |yy: usize, xx: usize, c: usize| buf[(yy * sw + xx) * 3 + c];
            let px = image.get_pixel_mut(x, y);
            for c in 0..3 {
                let top = at(ya, xa, c) * (1.0 - fx) + at(ya, xb, c) * fx;
                let bottom = at(yb, xa, c) * (1.0 - fx) + at(yb, xb, c) * fx;
                let blurred = top * (1.0 - fy) + bottom * fy;
                let v = f32::from(px.0[c]) * (1.0 - a) + blurred * a;
                px.0[c] = v.round().clamp(0.0, 255.0) as u8;
            }
        }
    }
}

fn pixelate_region(image: &mut RgbImage, region: &Region, block: f32) {
    let (w, h) = image.dimensions();
    let (x0, y0, x1, y1) = region.bounds(0.0, w, h);
    let block = (block.round() as u32).max(2);
    // The grid starts at the unclipped region's corner so blocks do not shift with clipping.
    let gx = (region.cx - region.rx).floor();
    let gy = (region.cy - region.ry).floor();
    let cell = |v: u32, g: f32| ((v as f32 - g) / block as f32).floor() as i64;
    let mut by = y0;
    while by < y1 {
        let row = cell(by, gy);
        let mut ey = by;
        while ey < y1 && cell(ey, gy) == row {
            ey += 1;
        }
        let mut bx = x0;
        while bx < x1 {
            let col = cell(bx, gx);
            let mut ex = bx;
            while ex < x1 && cell(ex, gx) == col {
                ex += 1;
            }
            let mut sum = [0.0f32; 3];
            for y in by..ey {
                for x in bx..ex {
                    let p = image.get_pixel(x, y).0;
                    for c in 0..3 {
                        sum[c] += f32::from(p[c]);
                    }
                }
            }
            let n = ((ex - bx) * (ey - by)) as f32;
            let mean = sum.map(|s| s / n);
            for y in by..ey {
                for x in bx..ex {
                    let a = region.alpha(x, y);
                    if a <= 0.0 {
                        continue;
                    }
                    let px = image.get_pixel_mut(x, y);
                    for (channel, m) in px.0.iter_mut().zip(mean) {
                        let v = f32::from(*channel) * (1.0 - a) + m * a;
                        *channel = v.round().clamp(0.0, 255.0) as u8;
                    }
                }
            }
            bx = ex;
        }
        by = ey;
    }
}

fn fill_region(image: &mut RgbImage, region: &Region) {
    let (w, h) = image.dimensions();
    let (x0, y0, x1, y1) = region.bounds(0.0, w, h);
    for y in y0..y1 {
        for x in x0..x1 {
            image.put_pixel(x, y, Rgb([0, 0, 0]));
        }
    }
}

fn draw_rect(image: &mut RgbImage, region: &Region, colour: Rgb<u8>) {
    let (w, h) = image.dimensions();
    let (x0, y0, x1, y1) = region.bounds(0.0, w, h);
    if x1 <= x0 || y1 <= y0 {
        return;
    }
    let t = ((region.rx.max(region.ry) / 50.0).round() as u32).clamp(2, 8);
    for y in y0..y1 {
        for x in x0..x1 {
            let edge = x < x0 + t || x + t >= x1 || y < y0 + t || y + t >= y1;
            if edge {
                image.put_pixel(x, y, colour);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::faces::Point;
    use percept_infer::BBox;

    fn face(x: f32, y: f32, w: f32, h: f32) -> Face {
        Face {
            bbox: BBox {
                x,
                y,
                width: w,
                height: h,
            },
            score: 0.9,
            landmarks: [Point { x: 0.0, y: 0.0 }; 5],
        }
    }

    fn checker(w: u32, h: u32) -> RgbImage {
        RgbImage::from_fn(w, h, |x, y| {
            if (x / 4 + y / 4) % 2 == 0 {
                Rgb([250, 240, 230])
            } else {
                Rgb([10, 20, 30])
            }
        })
    }

    #[test]
    fn box_sizes_match_sigma() {
        for sigma in [2.0f32, 5.0, 12.5, 40.0] {
            let sizes = box_sizes(sigma, 3);
            assert!(sizes.iter().all(|s| s % 2 == 1));
            // Variance of a cascade of boxes: sum (w² - 1) / 12.
            let var: f32 = sizes.iter().map(|&s| ((s * s) as f32 - 1.0) / 12.0).sum();
            assert!(
                (var.sqrt() - sigma).abs() / sigma < 0.1,
                "{sigma}: {sizes:?}"
            );
        }
    }

    #[test]
    fn every_mode_changes_the_face_and_nothing_far_away() {
        for mode in [
            AnonymizeMode::Blur,
            AnonymizeMode::Pixelate,
            AnonymizeMode::Box,
        ] {
            let original = checker(200, 160);
            let mut img = original.clone();
            let opts = AnonymizeOptions {
                mode,
                ..Default::default()
            };
            anonymize(&mut img, &[face(60.0, 40.0, 50.0, 60.0)], &opts).expect("anonymize");
            let centre_diff: u32 = (75..95)
                .flat_map(|x| (60..80).map(move |y| (x, y)))
                .map(|(x, y)| {
                    let (a, b) = (original.get_pixel(x, y).0, img.get_pixel(x, y).0);
                    (0..3).map(|c| a[c].abs_diff(b[c]) as u32).sum::<u32>()
                })
                .sum();
            assert!(
                centre_diff / 400 > 60,
                "{mode:?}: mean diff {}",
                centre_diff / 400
            );
            for (x, y) in [(0, 0), (199, 159), (180, 20), (10, 150)] {
                assert_eq!(original.get_pixel(x, y), img.get_pixel(x, y), "{mode:?}");
            }
        }
    }

    #[test]
    fn faces_at_the_border_are_clipped() {
        let mut img = checker(50, 50);
        let faces = [face(-20.0, -20.0, 40.0, 40.0), face(40.0, 40.0, 30.0, 30.0)];
        for mode in [
            AnonymizeMode::Blur,
            AnonymizeMode::Pixelate,
            AnonymizeMode::Box,
        ] {
            let opts = AnonymizeOptions {
                mode,
                draw_boxes: true,
                ..Default::default()
            };
            anonymize(&mut img, &faces, &opts).expect("anonymize");
        }
    }

    #[test]
    fn bad_options_and_boxes_fail_before_any_change() {
        let original = checker(64, 64);
        let cases = [
            (
                AnonymizeOptions {
                    strength: 0.0,
                    ..Default::default()
                },
                face(10.0, 10.0, 20.0, 20.0),
            ),
            (
                AnonymizeOptions {
                    strength: f32::NAN,
                    ..Default::default()
                },
                face(10.0, 10.0, 20.0, 20.0),
            ),
            (
                AnonymizeOptions {
                    box_scale: 0.5,
                    ..Default::default()
                },
                face(10.0, 10.0, 20.0, 20.0),
            ),
            (AnonymizeOptions::default(), face(10.0, 10.0, 0.0, 20.0)),
            (AnonymizeOptions::default(), face(f32::NAN, 10.0, 5.0, 20.0)),
        ];
        for (opts, f) in cases {
            let mut img = original.clone();
            assert!(anonymize(&mut img, &[f], &opts).is_err(), "{opts:?}");
            assert_eq!(img, original);
        }
        assert!("mosaic".parse::<AnonymizeMode>().is_err());
        assert_eq!(
            "PIXELATE".parse::<AnonymizeMode>().ok(),
            Some(AnonymizeMode::Pixelate)
        );
    }
}
