//! The domain transform of Gastal & Oliveira, "Domain Transform for Edge-Aware Image and Video
//! Processing" (SIGGRAPH 2011), following the arithmetic of OpenCV's photo module so that
//! `pencilSketch` and `stylization` can be reproduced closely.
//!
//! The 2-D filter alternates 1-D passes along rows and along columns, three times, with the
//! spatial sigma shrinking each iteration. Every 1-D pass runs the same kernel on [`STRIP`]
//! independent lines at once ("lanes"), so each step touches one contiguous 64-byte lane per
//! channel and the arithmetic vectorises: a column pass filters one strip of the [`Tiled`]
//! buffer in place; a row pass transposes a band of 16 rows into lanes, filters, and writes
//! it back. The guides are recomputed from the 8-bit input as integer colour distances
//! (0..=765), so the per-pixel transforms (`1 + σs/σr·d` and the recursive filter's `a^d`)
//! are table look-ups.

use crate::planar::{Lane, STRIP, Tiled, dist8};
use image::RgbImage;
use rayon::prelude::*;
use std::cell::RefCell;

/// Iterations of the separable filter; OpenCV hard-codes 3.
pub(crate) const ITERATIONS: usize = 3;

/// Number of distinct colour distances (sum of three 8-bit absolute differences).
const DISTS: usize = 766;

/// Which 1-D kernel runs along each line of the transformed domain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Normalized convolution with a box kernel (OpenCV `NORMCONV_FILTER`).
    Normalized,
    /// Recursive (exponential) filter (OpenCV `RECURS_FILTER`).
    Recursive,
}

/// Spatial sigma of iteration `i` (0-based), computed in `f64` then rounded to `f32` as OpenCV does.
pub(crate) fn sigma_h(sigma_s: f32, i: usize) -> f32 {
    let n = ITERATIONS as i32;
    let i = i as i32;
    (f64::from(sigma_s) * 3f64.sqrt() * 2f64.powi(n - (i + 1)) / (4f64.powi(n) - 1.0).sqrt()) as f32
}

/// Half-width of the box kernel in the transformed domain for a given `sigma_h`.
pub(crate) fn box_radius(sigma_h: f32) -> f32 {
    (3f64.sqrt() as f32) * sigma_h
}

/// `1 + ratio · d/255` for every integer colour distance `d`: the domain transform's
/// derivative, as OpenCV computes it on `[0, 1]` colours.
pub(crate) fn derivative_lut(ratio: f32) -> Vec<f32> {
    let scale = (1.0f64 / 255.0) as f32;
    (0..DISTS)
        .map(|d| 1.0 + (d as f32 * scale) * ratio)
        .collect()
}

/// Per-thread buffers reused across lines, passes and renders.
#[derive(Default)]
pub(crate) struct Scratch {
    /// Integer colour distance to the previous sample, per position and lane.
    pub dist: Vec<[u16; STRIP]>,
    /// Normalized mode: domain coordinates; recursive mode: feedback weights.
    pub ct: Vec<Lane>,
    /// Half-open window `[lo, up)` of each position, per lane.
    pub lo: Vec<[u32; STRIP]>,
    pub up: Vec<[u32; STRIP]>,
    /// Normalized mode: the coordinates transposed to one contiguous line per lane.
    pub line: Vec<f32>,
    inv: Vec<Lane>,
    /// Normalized mode: prefix sums of the three channels.
    pre: Vec<[Lane; 3]>,
    band: [Vec<Lane>; 3],
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::default();
}

/// Runs `f` with this thread's scratch buffers. `f` must not re-enter rayon (a stolen task
/// on the same thread would find the scratch borrowed).
pub(crate) fn with_scratch<R>(f: impl FnOnce(&mut Scratch) -> R) -> R {
    SCRATCH.with_borrow_mut(f)
}

/// Colour distances between 16 RGB pixels and 16 others (48 bytes each), in a form that
/// vectorises (byte absolute differences, then sums of triples).
#[inline(always)]
fn dist16(cur: &[u8; 3 * STRIP], prev: &[u8; 3 * STRIP]) -> [u16; STRIP] {
    let d: [u8; 3 * STRIP] = std::array::from_fn(|b| cur[b].abs_diff(prev[b]));
    std::array::from_fn(|k| u16::from(d[3 * k]) + u16::from(d[3 * k + 1]) + u16::from(d[3 * k + 2]))
}

/// Colour distances down columns `x0 .. x0 + STRIP` (fewer at the right edge; missing lanes
/// get 0) of an RGB image, into `out` (`height` positions; row 0 gets 0).
pub(crate) fn strip_dist(src: &[u8], w: usize, h: usize, x0: usize, out: &mut Vec<[u16; STRIP]>) {
    out.clear();
    out.resize(h, [0; STRIP]);
    let cols = STRIP.min(w - x0);
    for (i, o) in out.iter_mut().enumerate().skip(1) {
        let cur = &src[(i * w + x0) * 3..(i * w + x0 + cols) * 3];
        let prev = &src[((i - 1) * w + x0) * 3..((i - 1) * w + x0 + cols) * 3];
        if let (Some(c), Some(p)) = (cur.first_chunk(), prev.first_chunk()) {
            *o = dist16(c, p);
            continue;
        }
        for ((o, c), p) in o
            .iter_mut()
            .zip(cur.chunks_exact(3))
            .zip(prev.chunks_exact(3))
        {
            *o = dist8(c, p);
        }
    }
}

/// Colour distances along rows `i0 .. i0 + rows` (`rows ≤ STRIP`; missing lanes get 0) of an
/// RGB image, into `out` (`width` positions; column 0 gets 0).
pub(crate) fn band_dist(src: &[u8], w: usize, i0: usize, rows: usize, out: &mut Vec<[u16; STRIP]>) {
    out.clear();
    out.resize(w, [0; STRIP]);
    for r in 0..rows {
        let px = &src[(i0 + r) * w * 3..(i0 + r + 1) * w * 3];
        // Pixels 1..=16k against their left neighbours, 16 at a time; the rest one by one.
        let full = w.saturating_sub(1) / STRIP * STRIP;
        for (blk, o) in out[1..=full].chunks_exact_mut(STRIP).enumerate() {
            let b = 3 * (1 + blk * STRIP);
            let (Some(c), Some(p)) = (px[b..].first_chunk(), px[b - 3..].first_chunk()) else {
                break;
            };
            for (o, d) in o.iter_mut().zip(dist16(c, p)) {
                o[r] = d;
            }
        }
        for x in full + 1..w {
            out[x][r] = dist8(&px[3 * x..3 * x + 3], &px[3 * x - 3..3 * x]);
        }
    }
}

/// For each position `j` and lane, the half-open index range `[lo, up)` of samples whose
/// domain coordinate lies in `(ct[j] - r, ct[j] + r]` — OpenCV's `compute_boxfilter` search.
/// `ct` is the running sum of `dlut[dist]`, starting at 1; `line` is scratch space.
pub(crate) fn bounds(
    dist: &[[u16; STRIP]],
    dlut: &[f32],
    radius: f32,
    ct: &mut Vec<Lane>,
    line: &mut Vec<f32>,
    lo: &mut Vec<[u32; STRIP]>,
    up: &mut Vec<[u32; STRIP]>,
) {
    ct.clear();
    let mut acc = [0.0f32; STRIP];
    for d in dist {
        for (a, &d) in acc.iter_mut().zip(d) {
            *a += dlut[usize::from(d)];
        }
        ct.push(acc);
    }
    count_le(ct, radius, line, lo, up);
}

/// Coordinates compared per step of the window search (and `+∞` padding after each line).
const PEEK: usize = 4;

/// For each position `j < n` and lane, how many `ct[i]` (`i < n`) are `≤ ct[j] − r` (into
/// `lo`) and `≤ ct[j] + r` (into `up`), where `ct` holds `n` increasing coordinates per lane.
///
/// The coordinates are transposed so each lane is one contiguous line (padded with `+∞`).
/// Both bounds only move forward; each step compares the next [`PEEK`] coordinates at once
/// and advances by how many pass, which in practice settles a position in one step. Two
/// lanes run interleaved (four independent pointer chains) to hide the load → compare →
/// advance latency.
fn count_le(
    ct: &[Lane],
    r: f32,
    line: &mut Vec<f32>,
    lo: &mut Vec<[u32; STRIP]>,
    up: &mut Vec<[u32; STRIP]>,
) {
    let n = ct.len();
    for out in [&mut *lo, &mut *up] {
        out.clear();
        out.resize(n, [0; STRIP]);
    }
    let stride = n + PEEK;
    line.clear();
    line.resize(STRIP * stride, f32::INFINITY);
    for (k, dst) in line.chunks_exact_mut(stride).enumerate() {
        for (d, c) in dst.iter_mut().zip(ct) {
            *d = c[k];
        }
    }
    for (pair, lines) in line.chunks_exact(2 * stride).enumerate() {
        let (a, b) = lines.split_at(stride);
        let (ka, kb) = (2 * pair, 2 * pair + 1);
        let (mut la, mut ua, mut lb, mut ub) = (0usize, 0usize, 0usize, 0usize);
        let outs = lo.iter_mut().zip(up.iter_mut());
        for ((lo, up), (&xa, &xb)) in outs.zip(a.iter().zip(b.iter())) {
            la = advance(a, la, xa - r);
            ua = advance(a, ua, xa + r);
            lb = advance(b, lb, xb - r);
            ub = advance(b, ub, xb + r);
            lo[ka] = la as u32;
            up[ka] = ua as u32;
            lo[kb] = lb as u32;
            up[kb] = ub as u32;
        }
    }
}

/// The first index `≥ i` of sorted, `+∞`-padded `c` whose value exceeds `t` (finite).
#[inline(always)]
fn advance(c: &[f32], mut i: usize, t: f32) -> usize {
    loop {
        let Some(w) = c[i..].first_chunk::<PEEK>() else {
            return i;
        };
        // Sorted, so the passing coordinates are a prefix and their count is the step.
        let m = w.iter().map(|&v| u32::from(v <= t)).sum::<u32>() as usize;
        i += m;
        if m < PEEK {
            return i;
        }
    }
}

/// The 1-D kernel of one pass.
#[derive(Clone, Copy)]
enum Kernel<'a> {
    /// Box filter of half-width `radius` in the transformed domain.
    Normalized { dlut: &'a [f32], radius: f32 },
    /// Recursive filter with feedback `wlut[dist] = a^(1 + ratio·dist/255)`.
    Recursive { wlut: &'a [f32] },
}

/// Filters three channels of `STRIP` lanes in place along their length, with the distances
/// in `s.dist`.
fn filter_lanes(planes: [&mut [Lane]; 3], kernel: Kernel<'_>, s: &mut Scratch) {
    let n = s.dist.len();
    match kernel {
        Kernel::Normalized { dlut, radius } => {
            bounds(
                &s.dist,
                dlut,
                radius,
                &mut s.ct,
                &mut s.line,
                &mut s.lo,
                &mut s.up,
            );
            s.inv.clear();
            s.inv.extend(
                s.lo.iter()
                    .zip(&s.up)
                    .map(|(l, u)| std::array::from_fn(|k| 1.0 / (u[k] - l[k]) as f32)),
            );
            // Prefix sums of the three channels side by side, so each window is looked up
            // once (one bounds check, one pair of indices) for all three.
            let [x0, x1, x2] = planes;
            let (x0, x1, x2) = (&mut x0[..n], &mut x1[..n], &mut x2[..n]);
            s.pre.clear();
            s.pre.push([[0.0; STRIP]; 3]);
            let mut acc = [[0.0f32; STRIP]; 3];
            for ((v0, v1), v2) in x0.iter().zip(x1.iter()).zip(x2.iter()) {
                for (a, v) in acc.iter_mut().zip([v0, v1, v2]) {
                    for (a, &v) in a.iter_mut().zip(v) {
                        *a += v;
                    }
                }
                s.pre.push(acc);
            }
            let pre = &s.pre;
            let outs = x0.iter_mut().zip(x1.iter_mut()).zip(x2.iter_mut());
            let wins = s.lo.iter().zip(&s.up).zip(&s.inv);
            for (((v0, v1), v2), ((l, u), iv)) in outs.zip(wins) {
                for k in 0..STRIP {
                    let (pu, pl) = (&pre[u[k] as usize], &pre[l[k] as usize]);
                    v0[k] = (pu[0][k] - pl[0][k]) * iv[k];
                    v1[k] = (pu[1][k] - pl[1][k]) * iv[k];
                    v2[k] = (pu[2][k] - pl[2][k]) * iv[k];
                }
            }
        }
        Kernel::Recursive { wlut } => {
            if n < 2 {
                return;
            }
            s.ct.clear();
            s.ct.extend(s.dist.iter().map(|d| d.map(|d| wlut[usize::from(d)])));
            let wts = &s.ct;
            for x in planes {
                let x = &mut x[..n];
                let mut prev = x[0];
                for (cur, wj) in x[1..].iter_mut().zip(&wts[1..]) {
                    for k in 0..STRIP {
                        cur[k] += (prev[k] - cur[k]) * wj[k];
                    }
                    prev = *cur;
                }
                let mut next = x[n - 1];
                for (cur, wj) in x[..n - 1].iter_mut().rev().zip(wts[1..].iter().rev()) {
                    for k in 0..STRIP {
                        cur[k] += (next[k] - cur[k]) * wj[k];
                    }
                    next = *cur;
                }
            }
        }
    }
}

/// Filters every column of `t` in place (the vertical half of one iteration).
fn col_pass(t: &mut Tiled, src: &[u8], kernel: Kernel<'_>) {
    let (w, h) = (t.width, t.height);
    let [c0, c1, c2] = &mut t.c;
    c0.par_chunks_mut(h)
        .zip(c1.par_chunks_mut(h))
        .zip(c2.par_chunks_mut(h))
        .enumerate()
        .for_each(|(strip, ((p0, p1), p2))| {
            with_scratch(|s| {
                strip_dist(src, w, h, strip * STRIP, &mut s.dist);
                filter_lanes([p0, p1, p2], kernel, s);
            });
        });
}

/// `dst[c][r] = src[r][c]` for a full 16×16 block (constant bounds, so it unrolls).
#[inline(always)]
fn transpose(src: &[Lane; STRIP], dst: &mut [Lane; STRIP]) {
    for (c, d) in dst.iter_mut().enumerate() {
        for (r, v) in d.iter_mut().enumerate() {
            *v = src[r][c];
        }
    }
}

/// Filters every row of `t` in place (the horizontal half of one iteration).
fn row_pass(t: &mut Tiled, src: &[u8], kernel: Kernel<'_>) {
    let (w, h) = (t.width, t.height);
    let [b0, b1, b2] = t.row_bands(STRIP);
    b0.into_par_iter()
        .zip(b1)
        .zip(b2)
        .enumerate()
        .for_each(|(band, ((p0, p1), p2))| {
            with_scratch(|s| {
                let i0 = band * STRIP;
                let rows = STRIP.min(h - i0);
                band_dist(src, w, i0, rows, &mut s.dist);
                let mut bufs = std::mem::take(&mut s.band);
                let mut parts = [p0, p1, p2];
                for (buf, strips) in bufs.iter_mut().zip(&parts) {
                    buf.resize(w, [0.0; STRIP]);
                    for (blk, part) in buf.chunks_mut(STRIP).zip(strips) {
                        if let (Ok(blk), Ok(part)) = (
                            <&mut [Lane; STRIP]>::try_from(&mut *blk),
                            <&[Lane; STRIP]>::try_from(&**part),
                        ) {
                            transpose(part, blk);
                            continue;
                        }
                        for (r, lane) in part.iter().enumerate() {
                            for (b, &v) in blk.iter_mut().zip(lane) {
                                b[r] = v;
                            }
                        }
                    }
                }
                {
                    let [x0, x1, x2] = &mut bufs;
                    filter_lanes([&mut x0[..w], &mut x1[..w], &mut x2[..w]], kernel, s);
                }
                for (buf, strips) in bufs.iter().zip(parts.iter_mut()) {
                    for (blk, part) in buf.chunks(STRIP).zip(strips.iter_mut()) {
                        if let (Ok(blk), Ok(part)) = (
                            <&[Lane; STRIP]>::try_from(blk),
                            <&mut [Lane; STRIP]>::try_from(&mut **part),
                        ) {
                            transpose(blk, part);
                            continue;
                        }
                        for (r, lane) in part.iter_mut().enumerate() {
                            for (v, b) in lane.iter_mut().zip(blk) {
                                *v = b[r];
                            }
                        }
                    }
                }
                s.band = bufs;
            });
        });
}

/// Edge-preserving smoothing of an 8-bit RGB image (OpenCV `edgePreservingFilter`
/// semantics: 3 iterations, rows then columns, `sigma_h` halving each time).
///
/// `sigma_s` is the spatial extent in pixels, `sigma_r` the range extent on `[0, 1]` colours;
/// both must be positive (callers validate). Returns the smoothed image in `[0, 1]` floats.
pub(crate) fn filter(img: &RgbImage, sigma_s: f32, sigma_r: f32, mode: Mode) -> Tiled {
    let mut t = Tiled::from_rgb(img);
    if t.width == 0 || t.height == 0 {
        return t;
    }
    let src: &[u8] = img.as_raw();
    let dlut = derivative_lut(sigma_s / sigma_r);
    for it in 0..ITERATIONS {
        let sh = sigma_h(sigma_s, it);
        let wlut: Vec<f32>;
        let kernel = match mode {
            Mode::Normalized => Kernel::Normalized {
                dlut: &dlut,
                radius: box_radius(sh),
            },
            Mode::Recursive => {
                let ln_a = (-(2f64.sqrt()) / f64::from(sh)).exp() as f32;
                let ln_a = ln_a.ln();
                wlut = dlut.iter().map(|&d| (d * ln_a).exp()).collect();
                Kernel::Recursive { wlut: &wlut }
            }
        };
        row_pass(&mut t, src, kernel);
        col_pass(&mut t, src, kernel);
    }
    t
}
