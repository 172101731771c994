//! Which label a plane cell (or a blend of cells) stands for, in two steps: LIP splits what
//! the upper body wears four ways (upper clothes, dress, coat, jumpsuit), and where a garment
//! is ambiguous the network spreads its belief over them. Under a plain arg-max a cell 60 % sure
//! of an upper garment, split 25 / 20 / 15, would lose to 40 % of bare arm or pants. So the upper
//! garments' summed probability stands against each other label, and where it wins, the
//! likeliest of them is the label.
//!
//! Chosen on CCP's watched photos (0851–0900) with the stage-12 weights (`7f155630…`). End to
//! end, both views, coarse / LIP mIoU: 0.7220 / 0.4916 → 0.7245 / 0.4952 (one view 0.7067 /
//! 0.4737 → 0.7145 / 0.4808). On the crops alone it helped each half of those photos on its
//! own; pooling the lower garments (pants, skirt) or the skin labels did worse there than
//! pooling nothing, and every coarse group at once about level (BENCHMARKS.md, "Label-only
//! stages and pooled upper garments").

use super::labels::id;

/// LIP's upper-body garments, whose probabilities are pooled against the other labels.
const UPPER_GARMENTS: [u8; 4] = [id::UPPER_CLOTHES, id::DRESS, id::COAT, id::JUMPSUITS];

/// Network label → whether it is one of LIP's upper-body garments.
pub(crate) fn upper_garments(to_lip: &[u8]) -> Vec<bool> {
    to_lip.iter().map(|l| UPPER_GARMENTS.contains(l)).collect()
}

/// The upper garments' summed probability in one cell's label probabilities.
pub(crate) fn pooled(probs: &[f32], upper: &[bool]) -> f32 {
    probs
        .iter()
        .zip(upper)
        .filter(|&(_, &u)| u)
        .map(|(p, _)| p)
        .sum()
}

/// The best label of one cell's probabilities (`garments`: their [`pooled`] upper garments),
/// the first of equals; 0 for none.
pub(crate) fn best_label(probs: &[f32], upper: &[bool], garments: f32) -> usize {
    first_best(probs.len(), |c| {
        let own = probs[c];
        (if upper[c] { garments } else { own }, own)
    })
}

/// Of `0..n`, the index whose key is largest: its standing against other labels (the pooled
/// garments' for an upper garment), then its own probability; the first of equals (a NaN never
/// wins; 0 for none).
pub(crate) fn first_best(n: usize, key: impl Fn(usize) -> (f32, f32)) -> usize {
    let mut best = 0;
    let mut top = (f32::NEG_INFINITY, f32::NEG_INFINITY);
    for c in 0..n {
        let k = key(c);
        if k.0 > top.0 || (k.0 == top.0 && k.1 > top.1) {
            (best, top) = (c, k);
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    /// LIP's own labels as the network's.
    fn lip() -> Vec<bool> {
        upper_garments(&(0..20).collect::<Vec<u8>>())
    }

    /// The label decided for a cell of LIP's labels with these probabilities (0 elsewhere).
    fn decided(entries: &[(u8, f32)]) -> usize {
        let mut p = vec![0.0; 20];
        for &(l, v) in entries {
            p[usize::from(l)] = v;
        }
        let upper = lip();
        best_label(&p, &upper, pooled(&p, &upper))
    }

    #[test]
    fn the_upper_garments_together_beat_a_label_each_of_them_loses_to() {
        let p = [
            (id::UPPER_CLOTHES, 0.25),
            (id::DRESS, 0.2),
            (id::COAT, 0.15),
            (id::PANTS, 0.4),
        ];
        assert_eq!(decided(&p), 5);
    }

    #[test]
    fn outside_the_garments_the_largest_probability_wins() {
        let p = [
            (id::UPPER_CLOTHES, 0.3),
            (id::PANTS, 0.4),
            (id::LEFT_LEG, 0.3),
        ];
        assert_eq!(decided(&p), 9);
    }

    #[test]
    fn a_network_without_garments_takes_the_plain_arg_max_first_of_equals() {
        let p = [0.2, 0.4, 0.4];
        let upper = upper_garments(&[0, 2, 13]);
        assert_eq!(best_label(&p, &upper, pooled(&p, &upper)), 1);
        assert_eq!(best_label(&[f32::NAN, f32::NAN], &[false; 2], 0.0), 0);
    }
}
