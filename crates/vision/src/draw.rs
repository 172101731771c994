//! Anti-aliased drawing of landmarks on photos (tiny-skia), sized to the photo so lines stay
//! legible from thumbnails to 12-megapixel shots.

use image::{Rgb, RgbImage};
use tiny_skia::{FillRule, LineCap, LineJoin, Paint, PathBuilder, Pixmap, Stroke, Transform};

use crate::{Result, VisionError};

/// An RGBA canvas over a photo.
pub struct Canvas {
    pixmap: Pixmap,
    /// A line width that reads well on this photo.
    pub unit: f32,
}

impl std::fmt::Debug for Canvas {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Canvas({}×{})",
            self.pixmap.width(),
            self.pixmap.height()
        )
    }
}

impl Canvas {
    /// A canvas holding a copy of `image`.
    pub fn from_rgb(image: &RgbImage) -> Result<Self> {
        let (w, h) = image.dimensions();
        let mut pixmap = Pixmap::new(w, h)
            .ok_or_else(|| VisionError::Output(format!("cannot draw on a {w}×{h} image")))?;
        for (dst, src) in pixmap.data_mut().chunks_exact_mut(4).zip(image.pixels()) {
            dst[..3].copy_from_slice(&src.0);
            dst[3] = 255;
        }
        let unit = ((w as f32).hypot(h as f32) / 500.0).clamp(1.5, 12.0);
        Ok(Self { pixmap, unit })
    }

    /// Strokes each polyline in `lines` with `colour` over a darker, wider outline, so the
    /// line shows on light and dark backgrounds alike.
    pub fn polylines(&mut self, lines: &[(Vec<(f32, f32)>, bool)], colour: [u8; 3], width: f32) {
        let mut pb = PathBuilder::new();
        for (points, closed) in lines {
            let mut it = points.iter().filter(|p| p.0.is_finite() && p.1.is_finite());
            let Some(first) = it.next() else { continue };
            pb.move_to(first.0, first.1);
            for p in it {
                pb.line_to(p.0, p.1);
            }
            if *closed {
                pb.close();
            }
        }
        let Some(path) = pb.finish() else { return };
        for (c, a, w) in [([0, 0, 0], 150, width * 1.8), (colour, 255, width)] {
            let mut paint = Paint::default();
            paint.set_color_rgba8(c[0], c[1], c[2], a);
            paint.anti_alias = true;
            let stroke = Stroke {
                width: w,
                line_cap: LineCap::Round,
                line_join: LineJoin::Round,
                ..Stroke::default()
            };
            self.pixmap
                .stroke_path(&path, &paint, &stroke, Transform::identity(), None);
        }
    }

    /// Filled dots of radius `r` with a dark rim.
    pub fn dots(&mut self, points: &[(f32, f32)], colour: [u8; 3], r: f32) {
        for (c, a, radius) in [([0, 0, 0], 160, r * 1.5), (colour, 255, r)] {
            let mut pb = PathBuilder::new();
            for p in points.iter().filter(|p| p.0.is_finite() && p.1.is_finite()) {
                pb.push_circle(p.0, p.1, radius);
            }
            let Some(path) = pb.finish() else { return };
            let mut paint = Paint::default();
            paint.set_color_rgba8(c[0], c[1], c[2], a);
            paint.anti_alias = true;
            self.pixmap.fill_path(
                &path,
                &paint,
                FillRule::Winding,
                Transform::identity(),
                None,
            );
        }
    }

    /// The photo with the drawing.
    pub fn into_rgb(self) -> RgbImage {
        let (w, h) = (self.pixmap.width(), self.pixmap.height());
        let mut out = RgbImage::new(w, h);
        // Alpha stays 255 everywhere (the photo is opaque), so premultiplied = straight.
        for (dst, src) in out.pixels_mut().zip(self.pixmap.data().chunks_exact(4)) {
            *dst = Rgb([src[0], src[1], src[2]]);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_and_dots_change_only_nearby_pixels() {
        let img = RgbImage::from_pixel(200, 100, Rgb([40, 40, 40]));
        let mut c = Canvas::from_rgb(&img).unwrap();
        c.polylines(
            &[(vec![(10.0, 50.0), (190.0, 50.0)], false)],
            [255, 0, 0],
            3.0,
        );
        c.dots(&[(100.0, 20.0), (f32::NAN, 3.0)], [0, 255, 0], 4.0);
        let out = c.into_rgb();
        assert_eq!(out.get_pixel(100, 50).0, [255, 0, 0]);
        assert_eq!(out.get_pixel(100, 20).0, [0, 255, 0]);
        assert_eq!(out.get_pixel(100, 90).0, [40, 40, 40]);
        assert_eq!(out.get_pixel(5, 5).0, [40, 40, 40]);
    }
}
