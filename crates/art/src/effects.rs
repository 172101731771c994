//! Watercolour and cartoon: percept's own recipes on top of the domain transform.

use crate::domain::{self, Mode};
use crate::npr::{BAND, add_sobel_mag};
use crate::planar::to_u8;
use image::RgbImage;
use rayon::prelude::*;

/// Fixed seed of the paper texture, so the same input always gives the same output.
const PAPER_SEED: u32 = 0x9E37_79B9;

/// A 32-bit integer hash (lowbias32 by Chris Wellons) of a lattice point, in `[0, 1)`.
#[inline]
fn hash01(x: u32, y: u32, seed: u32) -> f32 {
    let mut h = x.wrapping_mul(0x8DA6_B343) ^ y.wrapping_mul(0xD816_3841) ^ seed;
    h ^= h >> 16;
    h = h.wrapping_mul(0x7FEB_352D);
    h ^= h >> 15;
    h = h.wrapping_mul(0x846C_A68B);
    h ^= h >> 16;
    (h >> 8) as f32 * (1.0 / 16_777_216.0)
}

/// Smoothly interpolated lattice noise with cells of `cell` pixels, in `[0, 1)`.
#[inline]
fn value_noise(x: usize, y: usize, cell: usize, seed: u32) -> f32 {
    let (cx, cy) = ((x / cell) as u32, (y / cell) as u32);
    let fx = (x % cell) as f32 / cell as f32;
    let fy = (y % cell) as f32 / cell as f32;
    let (sx, sy) = (fx * fx * (3.0 - 2.0 * fx), fy * fy * (3.0 - 2.0 * fy));
    let top = hash01(cx, cy, seed) + (hash01(cx + 1, cy, seed) - hash01(cx, cy, seed)) * sx;
    let bot =
        hash01(cx, cy + 1, seed) + (hash01(cx + 1, cy + 1, seed) - hash01(cx, cy + 1, seed)) * sx;
    top + (bot - top) * sy
}

/// Paper texture in `[0, 1)`: coarse blotches, medium fibres and per-pixel grain.
#[inline]
fn paper(x: usize, y: usize) -> f32 {
    0.45 * value_noise(x, y, 24, PAPER_SEED)
        + 0.35 * value_noise(x, y, 5, PAPER_SEED ^ 0x51ED_270B)
        + 0.20 * hash01(x as u32, y as u32, PAPER_SEED ^ 0x2545_F491)
}

/// BT.601 luma of three row-major planes of equal length, into `out`.
fn luma(rows: &[Vec<f32>; 3], out: &mut Vec<f32>) {
    out.clear();
    out.extend(
        rows[0]
            .iter()
            .zip(&rows[1])
            .zip(&rows[2])
            .map(|((&r, &g), &b)| 0.299 * r + 0.587 * g + 0.114 * b),
    );
}

/// Watercolour; see [`crate::WatercolorParams`] for the recipe.
pub(crate) fn watercolor(img: &RgbImage, sigma_s: f32, sigma_r: f32, texture: f32) -> RgbImage {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let mut out = RgbImage::new(img.width(), img.height());
    if w == 0 || h == 0 {
        return out;
    }
    let res = domain::filter(img, sigma_s, sigma_r, Mode::Recursive);
    out.par_chunks_mut(w * 3 * BAND).enumerate().for_each_init(
        || (<[Vec<f32>; 3]>::default(), Vec::new(), Vec::new()),
        |(rows, y, mag), (band, dst)| {
            let i0 = band * BAND;
            let n = dst.len() / (w * 3);
            res.read_rows(i0, i0 + n, 1, rows);
            luma(rows, y);
            for (r, drow) in dst.chunks_exact_mut(w * 3).enumerate() {
                let i = i0 + r;
                mag.clear();
                mag.resize(w, 0.0);
                add_sobel_mag(&y[r * w..(r + 3) * w], w, mag);
                let mid = [0, 1, 2].map(|c| &rows[c][(r + 1) * w..(r + 2) * w]);
                for (x, (o, &m)) in drow.chunks_exact_mut(3).zip(mag.iter()).enumerate() {
                    // Pigment pools faintly at wash boundaries: a soft, saturating edge term.
                    let edge = 1.0 - 0.35 * (m * 1.5).min(1.0);
                    let grain = 1.0 - texture * paper(x, i);
                    for (c, plane) in o.iter_mut().zip(mid) {
                        // Wash towards the paper white, then let the paper modulate it.
                        let washed = 1.0 - (1.0 - plane[x] * edge) * 0.88;
                        *c = to_u8(washed * grain);
                    }
                }
            }
        },
    );
    out
}

/// Cartoon; see [`crate::CartoonParams`] for the recipe.
pub(crate) fn cartoon(
    img: &RgbImage,
    sigma_s: f32,
    sigma_r: f32,
    levels: u32,
    edge_threshold: f32,
) -> RgbImage {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let mut out = RgbImage::new(img.width(), img.height());
    if w == 0 || h == 0 {
        return out;
    }
    let res = domain::filter(img, sigma_s, sigma_r, Mode::Normalized);
    let lv = levels as f32;
    out.par_chunks_mut(w * 3 * BAND).enumerate().for_each_init(
        || {
            (
                <[Vec<f32>; 3]>::default(),
                Vec::new(),
                Vec::new(),
                Vec::new(),
            )
        },
        |(rows, y, mag, ink), (band, dst)| {
            let i0 = band * BAND;
            let n = dst.len() / (w * 3);
            // Two rows of halo: one for the Sobel window, one for the dilation.
            res.read_rows(i0, i0 + n, 2, rows);
            luma(rows, y);
            ink.clear();
            for r in 0..n + 2 {
                mag.clear();
                mag.resize(w, 0.0);
                add_sobel_mag(&y[r * w..(r + 3) * w], w, mag);
                ink.extend(mag.iter().map(|&g| g > edge_threshold));
            }
            for (r, drow) in dst.chunks_exact_mut(w * 3).enumerate() {
                let mid = [0, 1, 2].map(|c| &rows[c][(r + 2) * w..(r + 3) * w]);
                let near = &ink[r * w..(r + 3) * w];
                for (x, o) in drow.chunks_exact_mut(3).enumerate() {
                    // 3×3 dilation of the edge mask makes the strokes bold.
                    let (x0, x1) = (x.saturating_sub(1), (x + 1).min(w - 1));
                    if near.chunks_exact(w).any(|m| m[x0..=x1].contains(&true)) {
                        o.fill(0);
                        continue;
                    }
                    for (c, plane) in o.iter_mut().zip(mid) {
                        // Uniform bins painted with their centre: at most levels³ colours.
                        let q = (plane[x] * lv).floor().clamp(0.0, lv - 1.0);
                        *c = to_u8((q + 0.5) / lv);
                    }
                }
            }
        },
    );
    out
}
