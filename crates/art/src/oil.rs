//! Oil painting with OpenCV xphoto `oilPainting` semantics.
//!
//! For each pixel, the `(2·size+1)²` window's luminance (BT.601 grey divided by `dyn_ratio`)
//! is histogrammed; the output is the mean colour of the window pixels in the most frequent
//! bin (lowest bin on ties). The window slides along each row: each step removes one window
//! column and adds the next. Pixels are packed (bin and RGB in one `u32`) and stored column
//! by column, so a window column is one contiguous run.
//!
//! Every update is branch-free (no "same bin" or "mode lost" tests, which mispredict on
//! textured photos): a bin's count and index are folded into one ordered key
//! (`count << 8 | 255 − bin`), so the mode is a vectorised max over 256 keys per pixel, and
//! the histogram is split in two halves (even/odd positions of a column) so runs of updates
//! to one bin do not serialise on store-to-load forwarding. Colour sums are packed three to a
//! `u64` (21 bits each).
//!
//! Cost per pixel is `2·(2·size+1)` bin updates plus a 256-key max. A Huang/Perreault–Hébert
//! scheme (per-column histograms, window histogram updated by adding and subtracting whole
//! column histograms) is O(1) per pixel but costs two 256-bin vector adds of counts *and* of
//! colour sums per step, more than the 30 scalar updates of the default `size = 7`; it only
//! wins for large windows, which are rare, so it is not used.

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

/// A histogram bin's count and index folded into one ordered key, `count << 8 | (255 − bin)`,
/// so the mode (most pixels, lowest bin on ties) is simply the largest key: finding it is a
/// branch-free vectorised max over 256 keys instead of a max followed by a position search.
trait Key: Copy + Ord + Send {
    /// Smallest value; neutral for `max`.
    const MIN: Self;
    /// The key of an empty bin.
    fn empty(bin: usize) -> Self;
    fn inc(self) -> Self;
    fn dec(self) -> Self;
    /// `(count, bin)` of a key.
    fn decode(self) -> (u32, usize);
    /// Count-only part of a key (no bin index): `count << 8`.
    const ZERO: Self;
    /// Sum of a key and a count-only key.
    fn plus(self, counts: Self) -> Self;
}

/// 16-bit keys for windows of at most 255 pixels (`size ≤ 7`), stored offset by 2¹⁵ so that
/// SSE2's signed 16-bit max orders them.
impl Key for i16 {
    const MIN: Self = i16::MIN;
    #[inline]
    fn empty(bin: usize) -> Self {
        ((255 - bin as u16) ^ 0x8000) as i16
    }
    #[inline]
    fn inc(self) -> Self {
        self.wrapping_add(256)
    }
    #[inline]
    fn dec(self) -> Self {
        self.wrapping_sub(256)
    }
    const ZERO: Self = 0;
    #[inline]
    fn plus(self, counts: Self) -> Self {
        self.wrapping_add(counts)
    }
    #[inline]
    fn decode(self) -> (u32, usize) {
        let u = (self as u16) ^ 0x8000;
        (u32::from(u >> 8), 255 - usize::from(u & 0xFF))
    }
}

/// 32-bit keys for larger windows (up to 65² pixels).
impl Key for i32 {
    const MIN: Self = i32::MIN;
    #[inline]
    fn empty(bin: usize) -> Self {
        255 - bin as i32
    }
    #[inline]
    fn inc(self) -> Self {
        self + 256
    }
    #[inline]
    fn dec(self) -> Self {
        self - 256
    }
    const ZERO: Self = 0;
    #[inline]
    fn plus(self, counts: Self) -> Self {
        self + counts
    }
    #[inline]
    fn decode(self) -> (u32, usize) {
        ((self >> 8) as u32, 255 - (self & 0xFF) as usize)
    }
}

/// Sliding window histogram of luminance bins with per-bin packed colour sums, split in two
/// halves (pixels at even and odd positions of a window column) so that consecutive updates
/// of the same bin — the common case in flat areas — form two independent store-to-load
/// chains instead of one. Half 0 holds [`Key`]s, half 1 counts only.
struct ModeHist<K> {
    key: [[K; 256]; 2],
    sum: [[u64; 256]; 2],
}

impl<K: Key> ModeHist<K> {
    fn new() -> Self {
        Self {
            key: [std::array::from_fn(K::empty), [K::ZERO; 256]],
            sum: [[0; 256]; 2],
        }
    }

    fn reset(&mut self) {
        *self = Self::new();
    }

    /// Adds the pixels of `add` and removes those of `rem` (window columns of equal length,
    /// or one of them empty), keeping each position in its half.
    #[inline]
    fn update(&mut self, add: &[u32], rem: &[u32]) {
        let [k0, k1] = &mut self.key;
        let [s0, s1] = &mut self.sum;
        let step = |k: &mut [K; 256], s: &mut [u64; 256], a: Option<u32>, r: Option<u32>| {
            if let Some(p) = r {
                let b = (p >> 24) as usize;
                k[b] = k[b].dec();
                s[b] -= sum_of(p);
            }
            if let Some(p) = a {
                let b = (p >> 24) as usize;
                k[b] = k[b].inc();
                s[b] += sum_of(p);
            }
        };
        let n = add.len().max(rem.len());
        let at = |v: &[u32], i: usize| v.get(i).copied();
        if add.len() == rem.len() {
            let mut pairs = add.chunks_exact(2).zip(rem.chunks_exact(2));
            for (a, r) in &mut pairs {
                step(k0, s0, Some(a[0]), Some(r[0]));
                step(k1, s1, Some(a[1]), Some(r[1]));
            }
            if n % 2 == 1 {
                step(k0, s0, at(add, n - 1), at(rem, n - 1));
            }
        } else {
            for i in 0..n {
                if i % 2 == 0 {
                    step(k0, s0, at(add, i), at(rem, i));
                } else {
                    step(k1, s1, at(add, i), at(rem, i));
                }
            }
        }
    }

    /// Mean colour of the lowest most-populated bin, rounded like OpenCV's `Vec3f → Vec3b`.
    #[inline]
    fn mode_mean(&self) -> [u8; 3] {
        const L: usize = 16;
        let mut acc = [K::MIN; L];
        for (c0, c1) in self.key[0].chunks_exact(L).zip(self.key[1].chunks_exact(L)) {
            for k in 0..L {
                acc[k] = acc[k].max(c0[k].plus(c1[k]));
            }
        }
        let best = acc.into_iter().max().unwrap_or(K::MIN);
        let (count, mode) = best.decode();
        let s = self.sum[0][mode] + self.sum[1][mode];
        let n = count.max(1) as f32;
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
    if (2 * size + 1) * (2 * size + 1) <= 255 {
        slide::<i16>(&cols, &mut out, w, h, size);
    } else {
        slide::<i32>(&cols, &mut out, w, h, size);
    }
    give_words(cols);
    out
}

/// Slides the window along every row of `out`, reading column-major packed pixels `cols`.
fn slide<K: Key>(cols: &[u32], out: &mut RgbImage, w: usize, h: usize, size: usize) {
    out.par_chunks_mut(w * 3 * ROWS_PER_TASK)
        .enumerate()
        .for_each_init(ModeHist::<K>::new, |hist, (blk, dst)| {
            for (r, drow) in dst.chunks_exact_mut(w * 3).enumerate() {
                let y = blk * ROWS_PER_TASK + r;
                let y0 = y.saturating_sub(size);
                let y1 = (y + size).min(h - 1);
                let col = |x: usize| &cols[x * h + y0..=x * h + y1];
                hist.reset();
                for x in 0..=size.min(w - 1) {
                    hist.update(col(x), &[]);
                }
                for (x, o) in drow.chunks_exact_mut(3).enumerate() {
                    if x > 0 {
                        let add = if x + size < w { col(x + size) } else { &[] };
                        let rem = if x > size { col(x - size - 1) } else { &[] };
                        hist.update(add, rem);
                    }
                    o.copy_from_slice(&hist.mode_mean());
                }
            }
        });
}
