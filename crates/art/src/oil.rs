//! Oil painting with OpenCV xphoto `oilPainting` semantics.
//!
//! For each pixel, the `(2·size+1)²` window's luminance (BT.601 grey divided by `dyn_ratio`)
//! is histogrammed; the output is the mean colour of the window pixels in the most frequent
//! bin (lowest bin on ties). The window slides along each row: each step removes one window
//! column and adds the next. Pixels are packed (bin and RGB in one `u32`) and stored column
//! by column, so a window column is one contiguous run.
//!
//! Rows are processed in pairs: the windows of rows `y` and `y + 1` share all but their top
//! and bottom rows, so one sweep keeps the shared part in one histogram and the two edge rows
//! in two small ones, and each step costs `2·(2·size) + 4` bin updates for two output pixels
//! instead of `2·(2·(2·size+1))`.
//!
//! Every update is branch-free (no "same bin" or "mode lost" tests, which mispredict on
//! textured photos): a bin's count and index are folded into one ordered key
//! (`count << 8 | 255 − bin`), so the mode is a vectorised max over 256 keys (both rows' modes
//! in one pass), and the shared histogram is split in two halves (even/odd positions of a
//! column) so runs of updates to one bin do not serialise on store-to-load forwarding. Colour
//! sums are packed three to a `u64` (21 bits each).
//!
//! Cost per pixel is about `2·size + 2` bin updates plus a 256-key max. A Huang /
//! Perreault–Hébert scheme (per-column histograms; the window histogram updated by adding one
//! column histogram and subtracting another) is O(1) per pixel, but each step then adds and
//! subtracts 256 counts *and* 256 colour sums, more work than the ~16 scalar updates of the
//! default `size = 7`, and the per-column histograms of a 4000-pixel row (~10 MB) do not fit
//! in cache; it only pays for large windows, so it is not used.

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
/// chains instead of one. Half 0 holds [`Key`]s, half 1 counts only (`count << 8`).
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
}

/// The pixels of one window row (at most one per window column, so no split): the row only
/// the upper of two vertically adjacent windows has, or only the lower one. Counts only.
struct Edge<K> {
    key: [K; 256],
    sum: [u64; 256],
}

impl<K: Key> Edge<K> {
    fn new() -> Self {
        Self {
            key: [K::ZERO; 256],
            sum: [0; 256],
        }
    }

    /// Adds `add` and removes `rem` (each empty or a single pixel).
    #[inline]
    fn update(&mut self, add: &[u32], rem: &[u32]) {
        for &p in rem {
            let b = (p >> 24) as usize;
            self.key[b] = self.key[b].dec();
            self.sum[b] -= sum_of(p);
        }
        for &p in add {
            let b = (p >> 24) as usize;
            self.key[b] = self.key[b].inc();
            self.sum[b] += sum_of(p);
        }
    }
}

/// Mean colour of the lowest most-populated bin of `shared + edge`, rounded like OpenCV's
/// `Vec3f → Vec3b`.
#[inline]
fn mean_of<K: Key>(best: K, shared: &ModeHist<K>, edge: &Edge<K>) -> [u8; 3] {
    let (count, mode) = best.decode();
    let s = shared.sum[0][mode] + shared.sum[1][mode] + edge.sum[mode];
    let n = count.max(1) as f32;
    [s & FIELD_MASK, (s >> FIELD) & FIELD_MASK, s >> (2 * FIELD)].map(|v| round_u8(v as f32 / n))
}

/// Output colours of the two windows `shared + top` and `shared + bottom`.
#[inline]
fn modes<K: Key>(shared: &ModeHist<K>, top: &Edge<K>, bottom: &Edge<K>) -> ([u8; 3], [u8; 3]) {
    let [h0, h1] = &shared.key;
    let mut both = [K::MIN; 256];
    for ((s, &a), &b) in both.iter_mut().zip(h0).zip(h1) {
        *s = a.plus(b);
    }
    let best_a = max_plus(&both, &top.key);
    let best_b = max_plus(&both, &bottom.key);
    (
        mean_of(best_a, shared, top),
        mean_of(best_b, shared, bottom),
    )
}

/// The largest `a[b] + c[b]`: a vectorised max over 256 keys.
#[inline]
fn max_plus<K: Key>(a: &[K; 256], c: &[K; 256]) -> K {
    const L: usize = 16;
    let mut acc = [K::MIN; L];
    for (ca, cc) in a.chunks_exact(L).zip(c.chunks_exact(L)) {
        for k in 0..L {
            acc[k] = acc[k].max(ca[k].plus(cc[k]));
        }
    }
    acc.into_iter().max().unwrap_or(K::MIN)
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
///
/// Rows are done in pairs: the windows of rows `y` and `y + 1` share all but one row, so one
/// sweep keeps the shared rows in a [`ModeHist`] and the row only the upper (lower) window
/// has in an [`Edge`], which halves the histogram updates per output pixel.
fn slide<K: Key>(cols: &[u32], out: &mut RgbImage, w: usize, h: usize, size: usize) {
    type State<K> = (ModeHist<K>, Edge<K>, Edge<K>);
    let init = || -> Box<State<K>> { Box::new((ModeHist::new(), Edge::new(), Edge::new())) };
    out.par_chunks_mut(w * 3 * ROWS_PER_TASK)
        .enumerate()
        .for_each_init(init, |st, (blk, dst)| {
            let (hist, top, bottom) = &mut **st;
            let mut rows = dst.chunks_exact_mut(w * 3);
            let mut y = blk * ROWS_PER_TASK;
            while let Some(ra) = rows.next() {
                let mut rb = rows.next();
                let (y0a, y1a) = (y.saturating_sub(size), (y + size).min(h - 1));
                // A lone last row pretends its partner has the same window (empty edges).
                let (y0b, y1b) = match rb {
                    Some(_) => ((y + 1).saturating_sub(size), (y + 1 + size).min(h - 1)),
                    None => (y0a, y1a),
                };
                let shared = |x: usize| &cols[x * h + y0b..=x * h + y1a];
                let upper = |x: usize| &cols[x * h + y0a..x * h + y0b];
                let lower = |x: usize| &cols[x * h + y1a + 1..x * h + y1b + 1];
                *hist = ModeHist::new();
                *top = Edge::new();
                *bottom = Edge::new();
                for x in 0..=size.min(w - 1) {
                    hist.update(shared(x), &[]);
                    top.update(upper(x), &[]);
                    bottom.update(lower(x), &[]);
                }
                for x in 0..w {
                    if x > 0 {
                        let enter = (x + size < w).then_some(x + size);
                        let leave = (x > size).then(|| x - size - 1);
                        let none: &[u32] = &[];
                        hist.update(enter.map_or(none, shared), leave.map_or(none, shared));
                        top.update(enter.map_or(none, upper), leave.map_or(none, upper));
                        bottom.update(enter.map_or(none, lower), leave.map_or(none, lower));
                    }
                    let (a, b) = modes(hist, top, bottom);
                    ra[3 * x..3 * x + 3].copy_from_slice(&a);
                    if let Some(rb) = rb.as_deref_mut() {
                        rb[3 * x..3 * x + 3].copy_from_slice(&b);
                    }
                }
                y += 2;
            }
        });
}
