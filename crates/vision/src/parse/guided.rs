//! Which side of a label boundary a photo pixel falls on. The network's label planes are at
//! half its input's resolution (on a standing person, one plane cell spans two to four photo
//! pixels), so sampling them bilinearly draws every boundary as a blur a cell or two wide: a
//! sleeve spills onto the background, a shoe into the floor, hair into the face. A pixel whose
//! four nearest cells disagree instead takes the blend of the 6 × 6 cells around it, each
//! weighted by its distance and by how close its colour in the crop is to the pixel's own (a
//! joint bilateral upsampling, Kopf et al. 2007), so the boundary follows the photo's edges.
//!
//! Chosen on CCP's watched photos (0851–0900), end to end, both views: coarse mIoU 0.705 →
//! 0.717, LIP mIoU 0.4705 → 0.4787 (2 × 2 cells: 0.709; 4 × 4: 0.715; 8 × 8: 0.718 at twice
//! the cost of 6 × 6; the same 4 × 4 window without the colour term: 0.706).

use std::sync::OnceLock;

use super::garments::first_best;
use super::network::CropParse;

/// The window: cells `LO..=HI` from the pixel's upper-left cell, across and down (6 × 6).
const LO: i32 = -2;
const HI: i32 = 3;
const SIDE: usize = (HI - LO + 1) as usize;
/// Spatial falloff, in plane cells.
const SPATIAL_SIGMA: f32 = 1.5;
/// Colour falloff, as an RGB distance (0–255 per channel). Watched photos: 25 → 0.714 (4 × 4
/// window), 40 → 0.715, 60 → 0.716 (6 × 6) against 0.717 for 40.
const COLOUR_SIGMA: f32 = 40.0;
/// Steps of a pixel's offset within its cell for the spatial weights' table.
const OFFSETS: usize = 64;
/// Squared colour distances are looked up in steps of this much.
const COLOUR_STEP: i32 = 32;

impl CropParse {
    /// The label, and its probability averaged over the window with the window's weights (the
    /// weights sum to 1, so this is a probability, whatever the other labels get), at plane
    /// point (`fx`, `fy`) (cell centres at whole numbers, clamped inside the plane) for a
    /// photo pixel of `colour`; `None` when a cell of the window has no best label on record
    /// (a network of over 65 534 labels).
    ///
    /// Of those, the upper garments stand together against the others (`garments`).
    ///
    /// Only labels that are some window cell's best are blended: a label best nowhere in the
    /// window would need every cell to give it a close second place to win, and leaving it
    /// out makes the blend a few labels instead of every plane.
    pub(super) fn guided_label(&self, fx: f32, fy: f32, colour: [u8; 3]) -> Option<(usize, f32)> {
        let (x0, y0) = (fx as i32, fy as i32);
        let (wx, wy) = (spatial(fx - x0 as f32), spatial(fy - y0 as f32));
        let clamped = |c: i32, len: usize| c.clamp(0, len as i32 - 1) as usize;
        let cols: [usize; SIDE] = std::array::from_fn(|k| clamped(x0 + LO + k as i32, self.width));
        let rows: [usize; SIDE] = std::array::from_fn(|k| clamped(y0 + LO + k as i32, self.height));
        let mut labels = [0u16; SIDE * SIDE];
        let mut count = 0;
        for &r in &rows {
            for &c in &cols {
                let best = self.best[r * self.width + c];
                if best == u16::MAX {
                    return None;
                }
                if !labels[..count].contains(&best) {
                    labels[count] = best;
                    count += 1;
                }
            }
        }
        // Ascending, so that of equal blends the first label wins, as in the bilinear path.
        labels[..count].sort_unstable();
        let window = Window {
            rows: &rows,
            cols: &cols,
            wx: &wx,
            wy: &wy,
            colour,
        };
        // Most windows hold two to four labels: their blends then stay in registers, the same
        // sums in the same order as the general case, which kept them in memory and waited on
        // each store (a quarter of `decide`'s samples; it fell from 6.3 to 6.0 % of a parse's).
        fn widen<const K: usize>(
            (b, g, t): ([f32; K], f32, f32),
        ) -> ([f32; SIDE * SIDE], f32, f32) {
            let mut blend = [0.0f32; SIDE * SIDE];
            blend[..K].copy_from_slice(&b);
            (blend, g, t)
        }
        let labels_here = &labels[..count];
        let (blend, garments, total) = match count {
            ..=4 => widen(self.blend::<4>(&window, labels_here)),
            5..=8 => widen(self.blend::<8>(&window, labels_here)),
            _ => self.blend::<{ SIDE * SIDE }>(&window, labels_here),
        };
        // Garments pooled together tie on their standing (the same sums in the same order), so
        // their own blends decide between them.
        let best = first_best(count, |k| {
            let own = blend[k];
            let garment = self.upper.get(usize::from(labels[k])) == Some(&true);
            (if garment { garments } else { own }, own)
        });
        Some((usize::from(labels[best]), blend[best] / total))
    }

    /// Over the window's cells, each weighed by distance and colour: the blend of each of
    /// `labels` (1 to `K` of them; the slots past them repeat the last), of the pooled upper
    /// garments (`garments`: every garment's standing), and the weights' sum.
    fn blend<const K: usize>(&self, window: &Window<'_>, labels: &[u16]) -> ([f32; K], f32, f32) {
        let n = self.planes;
        let last = labels.len().saturating_sub(1);
        let l: [usize; K] = std::array::from_fn(|k| usize::from(labels[k.min(last)]));
        let table = colour_weights();
        let mut blend = [0.0f32; K];
        let mut garments = 0.0f32;
        let mut total = 0.0f32;
        for (&r, &sy) in window.rows.iter().zip(window.wy) {
            for (&c, &sx) in window.cols.iter().zip(window.wx) {
                let i = r * self.width + c;
                let d2: i32 = self.colours[i]
                    .iter()
                    .zip(window.colour)
                    .map(|(&a, b)| (i32::from(a) - i32::from(b)).pow(2))
                    .sum();
                let w = sy * sx * table[(d2 / COLOUR_STEP) as usize];
                total += w;
                garments += w * self.garments[i];
                let cell = &self.probs[i * n..(i + 1) * n];
                for (b, &l) in blend.iter_mut().zip(&l) {
                    *b += w * cell[l];
                }
            }
        }
        (blend, garments, total)
    }
}

/// A boundary pixel's window: its cells' rows and columns, their spatial weights, and the
/// pixel's colour.
struct Window<'a> {
    rows: &'a [usize; SIDE],
    cols: &'a [usize; SIDE],
    wx: &'a [f32; SIDE],
    wy: &'a [f32; SIDE],
    colour: [u8; 3],
}

/// The spatial weights of the window's columns (or rows) for a pixel `offset` (0–1) cells
/// past its upper-left cell, from a table of [`OFFSETS`] steps.
fn spatial(offset: f32) -> [f32; SIDE] {
    static TABLE: OnceLock<Vec<[f32; SIDE]>> = OnceLock::new();
    let table = TABLE.get_or_init(|| {
        (0..OFFSETS)
            .map(|s| {
                let t = (s as f32 + 0.5) / OFFSETS as f32;
                std::array::from_fn(|k| {
                    let d = (LO + k as i32) as f32 - t;
                    (-d * d / (2.0 * SPATIAL_SIGMA * SPATIAL_SIGMA)).exp()
                })
            })
            .collect()
    });
    table[((offset * OFFSETS as f32) as usize).min(OFFSETS - 1)]
}

/// The colour weight by squared RGB distance / [`COLOUR_STEP`]; never 0 (at the largest
/// distance, e^-61 would be, once multiplied), so a window's weights never sum to 0.
fn colour_weights() -> &'static [f32] {
    static TABLE: OnceLock<Vec<f32>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let largest = 3 * 255 * 255 / COLOUR_STEP;
        (0..=largest)
            .map(|s| {
                let d2 = ((s * COLOUR_STEP) as f32) + COLOUR_STEP as f32 / 2.0;
                (-d2 / (2.0 * COLOUR_SIGMA * COLOUR_SIGMA)).exp().max(1e-12)
            })
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 12 × 12 plane, label 0 left of column 6 and label 1 from it, all cells sure; the
    /// crop's colours dark up to column 7 and light from it (the photo's edge one cell right
    /// of the network's).
    fn plane() -> CropParse {
        CropParse::columns(
            12,
            12,
            1.0,
            |x| x >= 6,
            |x| if x >= 7 { [230; 3] } else { [20; 3] },
        )
    }

    #[test]
    fn a_boundary_pixel_takes_the_side_of_its_own_colour() {
        let p = plane();
        // Between cells 5 and 6, nearer 6: bilinearly label 1, but its colour is dark.
        let (label, share) = p.guided_label(5.7, 6.0, [25, 25, 25]).unwrap();
        assert_eq!(label, 0);
        assert!(share > 0.5 && share <= 1.0, "{share}");
        // The same point, light: label 1.
        assert_eq!(p.guided_label(5.7, 6.0, [225, 225, 225]).unwrap().0, 1);
    }

    #[test]
    fn without_a_colour_edge_the_nearer_cells_decide() {
        let mut p = plane();
        p.colours.fill([128, 128, 128]);
        assert_eq!(p.guided_label(5.2, 6.0, [128, 128, 128]).unwrap().0, 0);
        assert_eq!(p.guided_label(5.8, 6.0, [128, 128, 128]).unwrap().0, 1);
    }

    #[test]
    fn at_the_plane_edge_the_window_is_clamped() {
        let p = plane();
        let (label, share) = p.guided_label(0.0, 0.0, [20, 20, 20]).unwrap();
        assert_eq!(label, 0);
        assert!((share - 1.0).abs() < 1e-5, "{share}");
        assert_eq!(p.guided_label(11.0, 11.0, [230, 230, 230]).unwrap().0, 1);
    }

    #[test]
    fn pooled_garments_outvote_a_label_each_of_them_loses_to() {
        // Labels 1 and 2 are upper garments. Left of column 6 each cell is 0.45 / 0.35 / 0.2
        // (the garments together win: best 1), from it 0.7 / 0.2 / 0.1 (best 0).
        let mut p = plane();
        p.colours.fill([128, 128, 128]);
        p.planes = 3;
        p.upper = vec![false, true, true];
        let cells: Vec<[f32; 3]> = (0..p.width * p.height)
            .map(|i| {
                if i % p.width < 6 {
                    [0.45, 0.35, 0.2]
                } else {
                    [0.7, 0.2, 0.1]
                }
            })
            .collect();
        p.probs = cells.iter().flatten().copied().collect();
        p.garments = cells.iter().map(|c| c[1] + c[2]).collect();
        p.best = cells
            .iter()
            .map(|c| if c[0] > 0.5 { 0 } else { 1 })
            .collect();
        // Three cells left of label 0's cells the window takes in one column of them: label 0's
        // blend beats each garment's, the garments' pooled blend beats label 0's.
        let (label, share) = p.guided_label(3.0, 6.0, [128, 128, 128]).unwrap();
        assert_eq!(label, 1);
        assert!(share > 0.34 && share < 0.35, "{share}");
        // Deep in label 0's cells it keeps them.
        assert_eq!(p.guided_label(9.0, 6.0, [128, 128, 128]).unwrap().0, 0);
    }

    #[test]
    fn an_unrecorded_best_label_is_left_to_the_caller() {
        let mut p = plane();
        p.best[0] = u16::MAX;
        assert!(p.guided_label(1.0, 1.0, [20, 20, 20]).is_none());
    }
}
