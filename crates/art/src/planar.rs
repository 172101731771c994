//! Image buffers for the filters: the tiled `f32` layout, its buffer pool, and per-thread
//! scratch space.

use image::RgbImage;
use rayon::prelude::*;
use std::sync::Mutex;

/// Columns per strip of a [`Tiled`] buffer, and lanes of the filter kernels. 16 `f32` = one
/// 64-byte cache line, so a row segment of a strip is exactly one line.
pub(crate) const STRIP: usize = 16;

/// One row segment of a strip (or, in the row pass, one column of a band of 16 rows).
pub(crate) type Lane = [f32; STRIP];

/// OpenCV's `saturate_cast<uchar>(v * 255)`: round half to even, clamp to 0..=255, NaN → 0.
#[inline]
pub(crate) fn to_u8(v: f32) -> u8 {
    // Adding and subtracting 1.5·2^23 rounds to the nearest integer, ties to even, for
    // |x| < 2^22 (the clamp guarantees it); unlike `round_ties_even` this needs no SSE4.1 and
    // vectorises. `as` maps NaN to 0.
    const MAGIC: f32 = 12_582_912.0;
    let x = (v * 255.0).clamp(-1.0, 256.0);
    ((x + MAGIC) - MAGIC) as u8
}

/// The `[0, 1]` float value of each 8-bit level, computed exactly as OpenCV's
/// `convertTo(CV_32F, 1.0/255.0)` (single-precision scale), so differences round alike.
pub(crate) fn unit_lut() -> [f32; 256] {
    let scale = (1.0f64 / 255.0) as f32;
    std::array::from_fn(|v| v as f32 * scale)
}

/// Freed buffers kept for the next render, so large images do not pay for fresh pages
/// (first touch of new memory costs about as much as a filter pass on some VMs). Each pool
/// keeps its largest buffers up to a byte budget.
type Pool<T> = Mutex<Vec<Vec<T>>>;

static LANES: Pool<Lane> = Mutex::new(Vec::new());
static WORDS: Pool<u32> = Mutex::new(Vec::new());

/// Budget of [`LANES`]: exactly the three planes of one 4000×3000 render (3 × 48 MB); a
/// concurrent second render of that size allocates (and afterwards frees) its own.
const LANE_BYTES: usize = 150_000_000;
/// Budget of [`WORDS`]: the one 4-byte-per-pixel buffer of a 4000×3000 oil render.
const WORD_BYTES: usize = 50_000_000;

fn take<T: Copy>(pool: &Pool<T>, n: usize, zero: T) -> Vec<T> {
    let pooled = {
        let mut pool = pool.lock().unwrap_or_else(|e| e.into_inner());
        // Best fit: the smallest pooled buffer that is large enough.
        let best = pool
            .iter()
            .enumerate()
            .filter(|(_, v)| v.capacity() >= n)
            .min_by_key(|(_, v)| v.capacity())
            .map(|(i, _)| i);
        best.map(|i| pool.swap_remove(i))
    };
    match pooled {
        Some(mut v) => {
            v.resize(n, zero);
            v.truncate(n);
            v
        }
        None => vec![zero; n],
    }
}

fn give<T>(pool: &Pool<T>, v: Vec<T>, budget: usize) {
    let bytes = |v: &Vec<T>| v.capacity() * std::mem::size_of::<T>();
    if bytes(&v) > budget || v.capacity() == 0 {
        return;
    }
    let mut pool = pool.lock().unwrap_or_else(|e| e.into_inner());
    pool.push(v);
    pool.sort_by_key(|v| std::cmp::Reverse(v.capacity()));
    let mut total = 0;
    pool.retain(|v| {
        total += bytes(v);
        total <= budget
    });
}

/// A plane of `n` lanes (contents unspecified), pooled or freshly allocated.
pub(crate) fn take_plane(n: usize) -> Vec<Lane> {
    take(&LANES, n, [0.0; STRIP])
}

/// Returns a plane to the pool.
pub(crate) fn give_plane(v: Vec<Lane>) {
    give(&LANES, v, LANE_BYTES);
}

/// A buffer of `n` words (contents unspecified), pooled or freshly allocated.
pub(crate) fn take_words(n: usize) -> Vec<u32> {
    take(&WORDS, n, 0)
}

/// Returns a word buffer to the pool.
pub(crate) fn give_words(v: Vec<u32>) {
    give(&WORDS, v, WORD_BYTES);
}

/// Three `f32` planes stored as vertical strips of [`STRIP`] columns: lane `s · height + y`
/// of a plane holds columns `s·STRIP .. (s+1)·STRIP` of row `y`. The last strip is padded to
/// a full `STRIP` columns (padding is never read as image data).
///
/// A column pass can take one strip per task and a row pass one band of rows across every
/// strip ([`Tiled::row_bands`]), both in place and with plain slices. The planes go back to a
/// process-wide pool when dropped.
pub(crate) struct Tiled {
    pub width: usize,
    pub height: usize,
    pub c: [Vec<Lane>; 3],
}

impl Drop for Tiled {
    fn drop(&mut self) {
        for plane in &mut self.c {
            give_plane(std::mem::take(plane));
        }
    }
}

impl Tiled {
    /// Converts 8-bit RGB to tiled planes in `[0, 1]` (R, G, B order).
    pub fn from_rgb(img: &RgbImage) -> Self {
        let (w, h) = (img.width() as usize, img.height() as usize);
        let n = w.div_ceil(STRIP) * h;
        let mut t = Self {
            width: w,
            height: h,
            c: [take_plane(n), take_plane(n), take_plane(n)],
        };
        if n == 0 {
            return t;
        }
        let lut = unit_lut();
        let raw: &[u8] = img.as_raw();
        let [r, g, b] = &mut t.c;
        r.par_chunks_mut(h)
            .zip(g.par_chunks_mut(h))
            .zip(b.par_chunks_mut(h))
            .enumerate()
            .for_each(|(s, ((r, g), b))| {
                let x0 = s * STRIP;
                let cols = STRIP.min(w - x0);
                for (i, ((r, g), b)) in r.iter_mut().zip(g).zip(b).enumerate() {
                    let src = &raw[(i * w + x0) * 3..(i * w + x0 + cols) * 3];
                    for (k, px) in src.chunks_exact(3).enumerate() {
                        r[k] = lut[usize::from(px[0])];
                        g[k] = lut[usize::from(px[1])];
                        b[k] = lut[usize::from(px[2])];
                    }
                }
            });
        t
    }

    /// For each plane, the mutable pieces of every strip covering rows `band·k .. band·(k+1)`,
    /// grouped by band: `[plane][band][strip]`.
    pub fn row_bands(&mut self, band: usize) -> [Vec<Vec<&mut [Lane]>>; 3] {
        let h = self.height;
        let bands = h.div_ceil(band);
        self.c.each_mut().map(|plane| {
            let mut out: Vec<Vec<&mut [Lane]>> = (0..bands).map(|_| Vec::new()).collect();
            for strip in plane.chunks_mut(h) {
                for (b, part) in strip.chunks_mut(band).enumerate() {
                    out[b].push(part);
                }
            }
            out
        })
    }

    /// Copies rows `i0 - halo .. i1 + halo` (reflect-101 at the borders) of every plane into
    /// `out[c]`, row-major, `width` floats per row.
    pub fn read_rows(&self, i0: usize, i1: usize, halo: usize, out: &mut [Vec<f32>; 3]) {
        let (w, h) = (self.width, self.height);
        for (plane, dst) in self.c.iter().zip(out.iter_mut()) {
            dst.clear();
            for i in i0 as isize - halo as isize..(i1 + halo) as isize {
                let y = reflect101(i, h);
                for (s, strip) in plane.chunks_exact(h).enumerate() {
                    let take = (w - s * STRIP).min(STRIP);
                    dst.extend_from_slice(&strip[y][..take]);
                }
            }
        }
    }
}

/// Maps a possibly out-of-range row/column index into `0..n` with OpenCV's
/// `BORDER_REFLECT_101` (…2 1 | 0 1 2 … n-1 | n-2 …), clamped for very short lines.
#[inline]
pub(crate) fn reflect101(i: isize, n: usize) -> usize {
    let n = n as isize;
    let i = if i < 0 { -i } else { i };
    let i = if i >= n { 2 * n - 2 - i } else { i };
    i.clamp(0, n - 1) as usize
}

/// Sum of absolute channel differences of two 8-bit RGB pixels, in grey levels (0..=765):
/// the domain transform's colour distance, times 255.
#[inline]
pub(crate) fn dist8(a: &[u8], b: &[u8]) -> u16 {
    (0..3).map(|c| u16::from(a[c].abs_diff(b[c]))).sum()
}
