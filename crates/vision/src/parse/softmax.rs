//! The softmax over a network's label planes, channel-last: 20 labels × 192 × 144 cells per
//! view, ten views for the stairs photo's five people. libm's `expf`, called once per value,
//! was 2.7 % of the parse's samples in `perf` (AMD EPYC); the exponential below is written so
//! that the compiler runs it four values at a time (SSE2). With the blocked layout, the whole
//! softmax fell to 1.6 % of the samples (3.5 % with the gather and libm before).

/// `planes`: `n` planes of `cells` scores each (NCHW). Returns the probabilities in the same
/// layout: the two views' planes are then averaged along contiguous rows, and turned into
/// cells once ([`to_cells`]).
///
/// In blocks of [`BLOCK`] cells, so that each cell's largest score, its exponentials and their
/// sum are worked out within the first-level cache.
pub(super) fn softmax_planes(planes: &[f32], cells: usize, n: usize) -> Vec<f32> {
    let planes = &planes[..cells * n];
    let mut probs = vec![0.0f32; cells * n];
    let (mut max, mut sum) = ([0.0f32; BLOCK], [0.0f32; BLOCK]);
    for start in (0..cells).step_by(BLOCK) {
        let end = cells.min(start + BLOCK);
        let (max, sum) = (&mut max[..end - start], &mut sum[..end - start]);
        max.copy_from_slice(&planes[start..end]);
        for plane in planes.chunks_exact(cells).skip(1) {
            for (m, &v) in max.iter_mut().zip(&plane[start..end]) {
                *m = m.max(v);
            }
        }
        sum.fill(0.0);
        for (out, plane) in probs
            .chunks_exact_mut(cells)
            .zip(planes.chunks_exact(cells))
        {
            let values = out[start..end].iter_mut().zip(&plane[start..end]);
            for (((e, &v), &m), s) in values.zip(&*max).zip(&mut *sum) {
                *e = exp_nonpositive(v - m);
                *s += *e;
            }
        }
        // The largest score's term is 1, so each sum is at least 1.
        for s in sum.iter_mut() {
            *s = 1.0 / *s;
        }
        for out in probs.chunks_exact_mut(cells) {
            for (p, &inv) in out[start..end].iter_mut().zip(&*sum) {
                *p *= inv;
            }
        }
    }
    probs
}

/// Cells per block: 20 labels × 256 cells × 4 bytes, in and out, fit in the first-level cache.
const BLOCK: usize = 256;

/// `n` planes of `cells` values turned into `cells` runs of `n` (a cell's labels together),
/// block by block so that both sides stay in the cache (the whole turn at once strode through
/// 2 MB per view and cost more than the exponentials).
pub(super) fn to_cells(planes: &[f32], cells: usize, n: usize) -> Vec<f32> {
    let mut out = vec![0.0f32; cells * n];
    for start in (0..cells).step_by(BLOCK) {
        let end = cells.min(start + BLOCK);
        for (c, plane) in planes.chunks_exact(cells).take(n).enumerate() {
            for (px, &v) in out[start * n..end * n]
                .chunks_exact_mut(n)
                .zip(&plane[start..end])
            {
                px[c] = v;
            }
        }
    }
    out
}

/// `cells` runs of `n` values (NHWC) turned into `n` planes.
pub(super) fn to_planes(data: &[f32], cells: usize, n: usize) -> Vec<f32> {
    let mut out = vec![0.0f32; cells * n];
    for (i, px) in data.chunks_exact(n.max(1)).take(cells).enumerate() {
        for (c, &v) in px.iter().enumerate() {
            out[c * cells + i] = v;
        }
    }
    out
}

/// `e^x` for `x ≤ 0`, within 3 ulp of libm's `expf` down to `x = -87`, 0
/// below (where `expf` is below 1.2e-38, nothing next to the largest label's 1).
///
/// Cephes' `expf`: `x = k ln 2 + r` with `|r| ≤ ln 2 / 2`, a degree-6 polynomial for `e^r`,
/// `2^k` put in the exponent bits. `k` is rounded by adding 1.5 × 2^23, which leaves it in the
/// low mantissa bits (baseline x86-64 has no vector instruction to round or convert with).
#[inline]
fn exp_nonpositive(x: f32) -> f32 {
    const LOG2_E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    const ROUND: f32 = 12_582_912.0; // 1.5 × 2^23
    let below = x < -87.0;
    let x = x.max(-87.0);
    let t = x * LOG2_E + ROUND;
    let k = t - ROUND;
    let r = x - k * LN2_HI - k * LN2_LO;
    let p = ((((1.987_569_1e-4 * r + 1.398_199_9e-3) * r + 8.333_452e-3) * r + 4.166_579_6e-2) * r
        + 1.666_666_5e-1)
        * r
        + 0.5;
    let e = p * r * r + r + 1.0;
    // k is a whole number in [-126, 0], `t`'s bits 1.5 × 2^23's plus k: 2^k is a normal f32
    // with exponent bits k + 127.
    let k_bits = t.to_bits().wrapping_sub(ROUND.to_bits());
    let scale = f32::from_bits(k_bits.wrapping_add(127) << 23);
    if below { 0.0 } else { e * scale }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exponential_matches_libm() {
        let mut worst = 0.0f32;
        let mut x = 0.0f32;
        while x > -87.0 {
            let (got, want) = (exp_nonpositive(x), x.exp());
            worst = worst.max((got - want).abs() / want);
            x -= 0.001_37;
        }
        assert!(worst < 3.0 * f32::EPSILON, "relative error {worst:e}");
        assert_eq!(exp_nonpositive(0.0), 1.0);
        assert_eq!(exp_nonpositive(-100.0), 0.0);
        assert_eq!(exp_nonpositive(f32::NEG_INFINITY), 0.0);
    }

    #[test]
    fn probabilities_per_cell_sum_to_one_in_label_order() {
        // Two cells, three planes: cell 0 scores (0, 1, 2), cell 1 (5, 5, -90).
        let planes = [0.0, 5.0, 1.0, 5.0, 2.0, -90.0];
        let p = to_cells(&softmax_planes(&planes, 2, 3), 2, 3);
        let want0: Vec<f32> = [0.0f32, 1.0, 2.0].iter().map(|v| (v - 2.0).exp()).collect();
        let s: f32 = want0.iter().sum();
        for (c, w) in want0.iter().enumerate() {
            assert!((p[c] - w / s).abs() < 1e-6, "{p:?}");
        }
        assert!((p[3] - 0.5).abs() < 1e-6 && (p[4] - 0.5).abs() < 1e-6 && p[5] < 1e-30);
    }

    #[test]
    fn planes_and_cells_turn_into_each_other() {
        // 600 cells (more than a block), 3 planes.
        let cells = 600;
        let planes: Vec<f32> = (0..cells * 3).map(|v| v as f32).collect();
        let c = to_cells(&planes, cells, 3);
        assert_eq!(&c[..6], &[0.0, 600.0, 1200.0, 1.0, 601.0, 1201.0]);
        assert_eq!(to_planes(&c, cells, 3), planes);
    }
}
