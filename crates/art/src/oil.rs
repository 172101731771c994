//! Oil painting with OpenCV xphoto `oilPainting` semantics.
//!
//! For each pixel, the `(2·size+1)²` window's luminance (BT.601 grey divided by `dyn_ratio`)
//! is histogrammed; the output is the mean colour of the window pixels in the most frequent
//! bin (lowest bin on ties). The window slides along each row: each step swaps one column of
//! the window for the next. Pixels are packed (bin and RGB in one `u32`) and stored column by
//! column, so a window column is one contiguous run. A removed and an added pixel in the same
//! bin (the common case in flat areas) only adjust that bin's colour sum. Colour sums are
//! packed three to a `u64` (21 bits each), and the mode is tracked incrementally: it can only
//! be lost when a pixel leaves the mode's bin, and only then is the histogram rescanned.

use crate::planar::{give_words, take_words};
use image::RgbImage;
use rayon::prelude::*;

/// Rows per parallel work item (they share the cached window columns).
const ROWS_PER_TASK: usize = 16;

/// Bits per colour sum inside a packed `u64`: a 65×65 window of 255s needs 21.
const FIELD: u32 = 21;
const FIELD_MASK: u64 = (1 << FIELD) - 1;

/// Packed pixel → packed colour-sum increment (R, G, B in fields 0, 1, 2).
#[inline]
fn sum_of(p: u32) -> u64 {
    u64::from((p >> 16) & 0xFF)
        | (u64::from((p >> 8) & 0xFF) << FIELD)
        | (u64::from(p & 0xFF) << (2 * FIELD))
}

/// Rounds a value in `[0, 255]` to the nearest integer, ties to even (OpenCV's `cvRound`).
#[inline]
fn round_u8(v: f32) -> u8 {
    const MAGIC: f32 = 12_582_912.0;
    ((v + MAGIC) - MAGIC) as u8
}

/// Sliding window histogram of luminance bins with per-bin packed colour sums.
struct ModeHist {
    count: [u16; 256],
    sum: [u64; 256],
    /// Count and bin of the mode; exact unless `dirty`.
    max: u16,
    mode: usize,
    /// A pixel left the mode's bin since the last exact mode.
    dirty: bool,
}

impl ModeHist {
    fn new() -> Self {
        Self {
            count: [0; 256],
            sum: [0; 256],
            max: 0,
            mode: 0,
            dirty: false,
        }
    }

    fn reset(&mut self) {
        self.count = [0; 256];
        self.sum = [0; 256];
        self.max = 0;
        self.mode = 0;
        self.dirty = false;
    }

    #[inline]
    fn add(&mut self, p: u32) {
        let b = (p >> 24) as usize;
        let c = self.count[b] + 1;
        self.count[b] = c;
        self.sum[b] += sum_of(p);
        if c > self.max || (c == self.max && b < self.mode) {
            self.max = c;
            self.mode = b;
        }
    }

    #[inline]
    fn remove(&mut self, p: u32) {
        let b = (p >> 24) as usize;
        self.count[b] -= 1;
        self.sum[b] -= sum_of(p);
        self.dirty |= b == self.mode;
    }

    /// Replaces pixel `old` of the window by `new`.
    #[inline]
    fn swap(&mut self, new: u32, old: u32) {
        if (new ^ old) >> 24 == 0 {
            let s = &mut self.sum[(new >> 24) as usize];
            *s = (*s + sum_of(new)) - sum_of(old);
        } else {
            self.remove(old);
            self.add(new);
        }
    }

    /// Mean colour of the lowest most-populated bin, rounded like OpenCV's `Vec3f → Vec3b`.
    #[inline]
    fn mode_mean(&mut self) -> [u8; 3] {
        if self.dirty {
            self.max = self.count.iter().copied().max().unwrap_or(0);
            self.mode = self.count.iter().position(|&c| c == self.max).unwrap_or(0);
            self.dirty = false;
        }
        let s = self.sum[self.mode];
        let n = f32::from(self.max.max(1));
        [s & FIELD_MASK, (s >> FIELD) & FIELD_MASK, s >> (2 * FIELD)]
            .map(|v| round_u8(v as f32 / n))
    }
}

/// Applies the oil-painting effect. `1 ≤ size ≤ 32` is the window half-size, `dyn_ratio ≥ 1`
/// the luminance quantisation step (callers validate).
pub(crate) fn oil(img: &RgbImage, size: usize, dyn_ratio: u32) -> RgbImage {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let mut out = RgbImage::new(img.width(), img.height());
    if w == 0 || h == 0 {
        return out;
    }
    let src: &[u8] = img.as_raw();
    let inv = 1.0 / f64::from(dyn_ratio);
    // OpenCV's 8-bit BGR2GRAY fixed point (14-bit coefficients), then cvRound(y / dyn_ratio).
    let bins: [u32; 256] = std::array::from_fn(|y| (y as f64 * inv).round_ties_even() as u32);
    // Column-major packed pixels: `cols[x·h + y] = bin << 24 | R << 16 | G << 8 | B`.
    let mut cols = take_words(w * h);
    const GROUP: usize = 16;
    cols.par_chunks_mut(GROUP * h)
        .enumerate()
        .for_each(|(g, part)| {
            let x0 = g * GROUP;
            let n = part.len() / h;
            for y in 0..h {
                let row = &src[(y * w + x0) * 3..(y * w + x0 + n) * 3];
                for (k, p) in row.chunks_exact(3).enumerate() {
                    let (r, gr, b) = (u32::from(p[0]), u32::from(p[1]), u32::from(p[2]));
                    let grey = (r * 4899 + gr * 9617 + b * 1868 + (1 << 13)) >> 14;
                    part[k * h + y] = bins[grey as usize] << 24 | r << 16 | gr << 8 | b;
                }
            }
        });
    let colv = cols;
    let cols = &colv[..];
    out.par_chunks_mut(w * 3 * ROWS_PER_TASK)
        .enumerate()
        .for_each_init(ModeHist::new, |hist, (blk, dst)| {
            for (r, drow) in dst.chunks_exact_mut(w * 3).enumerate() {
                let y = blk * ROWS_PER_TASK + r;
                let y0 = y.saturating_sub(size);
                let y1 = (y + size).min(h - 1);
                let col = |x: usize| &cols[x * h + y0..=x * h + y1];
                hist.reset();
                for x in 0..=size.min(w - 1) {
                    col(x).iter().for_each(|&p| hist.add(p));
                }
                for (x, o) in drow.chunks_exact_mut(3).enumerate() {
                    if x > 0 {
                        let add = (x + size < w).then(|| col(x + size));
                        let rem = (x > size).then(|| col(x - size - 1));
                        match (add, rem) {
                            (Some(a), Some(r)) => {
                                a.iter().zip(r).for_each(|(&a, &r)| hist.swap(a, r));
                            }
                            (Some(a), None) => a.iter().for_each(|&p| hist.add(p)),
                            (None, Some(r)) => r.iter().for_each(|&p| hist.remove(p)),
                            (None, None) => {}
                        }
                    }
                    o.copy_from_slice(&hist.mode_mean());
                }
            }
        });
    give_words(colv);
    out
}
