//! The label map drawn: blended over the photo, or in its palette colours.

use image::{GrayImage, Rgb, RgbImage};

use super::labels::{LABELS, colour as label_colour};

/// The photo with each label's colour blended in at `alpha` (0..=1).
pub fn overlay(image: &RgbImage, labels: &GrayImage, alpha: f32) -> RgbImage {
    let a = alpha.clamp(0.0, 1.0);
    let mut out = image.clone();
    for (px, l) in out.pixels_mut().zip(labels.pixels()) {
        let label = l.0[0];
        if label == 0 || label as usize >= LABELS.len() {
            continue;
        }
        let c = label_colour(label);
        *px =
            Rgb([0, 1, 2]
                .map(|i| (f32::from(px.0[i]) * (1.0 - a) + f32::from(c[i]) * a).round() as u8));
    }
    out
}

/// The label map in its palette colours (the "coloured mask" of the API).
pub fn colour_mask(labels: &GrayImage) -> RgbImage {
    let (w, h) = labels.dimensions();
    RgbImage::from_fn(w, h, |x, y| {
        Rgb(label_colour(labels.get_pixel(x, y).0[0].min(19)))
    })
}
