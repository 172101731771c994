//! The trained parser: the network on the rotated crop the pose stage already computed (and on
//! its mirror image), its label probabilities sampled back into the photo.
//!
//! The manifest marks it with `task = "person_parsing"` and a `[model.segmentation]` table;
//! its input is the pose landmark model's (a square RGB crop), its output one score plane per
//! label over the crop (any resolution: the planes are mapped onto the crop's square).

use image::{RgbImage, imageops};
use percept_infer::manifest::Layout;
use percept_infer::{Affine, Border, LoadedModel, Models, RotatedRect, crop_rotated_with};
use percept_infer::{Tensor, rgb_to_tensor};

use super::garments::{best_label, pooled, upper_garments};
use super::geometry::{covered_box, inside_polygon};
use super::labels::{SegmentationModel, id};
use super::softmax::{softmax_planes, to_cells, to_planes};
use crate::pose::point as pt;
use crate::{Landmark, Result, VisionError};

/// The manifest task of a per-person parsing network.
pub const TASK: &str = "person_parsing";

/// A loaded per-person parsing network.
#[derive(Debug, Clone)]
pub(crate) struct PersonParser {
    model: LoadedModel,
    output: usize,
    layout: Layout,
    /// Network label → LIP label value.
    to_lip: Vec<u8>,
    /// Input crop size.
    input: (u32, u32),
    /// Network label → the network label of the other side (a left arm in a mirrored crop
    /// is the person's right arm); itself for labels without a side.
    mirrored: Vec<usize>,
    /// Network label → whether it is an upper-body garment (`garments`: pooled when labels
    /// compete).
    upper: Vec<bool>,
    /// Network label → whether it is LIP's background.
    background: Vec<bool>,
}

/// One person's label probabilities over their crop.
pub(crate) struct CropParse {
    /// Plane width and height.
    pub width: usize,
    pub height: usize,
    /// Labels (planes) per cell.
    pub planes: usize,
    /// Channel-last probabilities (softmax over the network's labels), `height × width × n`.
    pub probs: Vec<f32>,
    /// Each plane cell's best label (`garments::best_label`), `height × width`; `u16::MAX`
    /// for a label past it (the cell then takes the slow path).
    pub best: Vec<u16>,
    /// Network label → whether it is an upper-body garment.
    pub upper: Vec<bool>,
    /// Network label → whether it is LIP's background.
    pub background: Vec<bool>,
    /// Each plane cell's pooled upper-garment probability (`garments::pooled`).
    pub garments: Vec<f32>,
    /// Each plane cell's mean colour in the crop, `height × width`: at a label boundary,
    /// cells of the pixel's own colour weigh more (`guided`).
    pub colours: Vec<[u8; 3]>,
    /// Image pixel → plane coordinates (pixel centres at `i + 0.5`).
    pub from_image: Affine,
    /// The photo pixels the crop covers (x0, y0, x1, y1; ends exclusive).
    pub bounds: (u32, u32, u32, u32),
}

impl PersonParser {
    /// The per-person network among the loaded models, if one is loaded.
    pub(crate) fn find(models: &Models) -> Result<Option<Self>> {
        Ok(SegmentationModel::find(models, TASK)?.map(|m| Self {
            mirrored: mirrored_labels(&m.to_lip),
            upper: upper_garments(&m.to_lip),
            background: m.to_lip.iter().map(|&l| l == id::BACKGROUND).collect(),
            model: m.model,
            output: m.output,
            layout: m.seg.layout,
            to_lip: m.to_lip,
            input: m.input,
        }))
    }

    /// The manifest name, for the result's `parser` field.
    pub(crate) fn name(&self) -> &str {
        &self.model.spec().name
    }

    /// Network label → LIP label value.
    pub(crate) fn to_lip(&self) -> &[u8] {
        &self.to_lip
    }

    /// Gets the engine ready for `runs` runs at once.
    pub(crate) fn reserve(&self, runs: usize) -> Result<()> {
        Ok(self.model.session().reserve(runs)?)
    }

    /// Runs the network on the crop around the pose ROI `roi`: its long side tall and as wide
    /// as the network's input is in proportion (the pose ROI is a square around the person,
    /// mostly empty at the sides; a portrait crop gives the network the person larger), edge
    /// pixels replicated outside the photo, as the network was trained.
    ///
    /// With `mirror`, the network also runs on the crop mirrored left–right and the two
    /// probability maps are averaged (the mirrored one flipped back, its left and right labels
    /// swapped): the network was trained on mirrored crops too, and the average of two views
    /// is steadier than either at twice the network's cost.
    ///
    /// `beside`: other runs of the parse start at the same time as these (`Parser::parse`
    /// decides), so none of them may take the cores an idle engine lends a lone run
    /// (`LoadedModel::run_beside`).
    pub(crate) fn run(
        &self,
        image: &RgbImage,
        roi: &RotatedRect,
        mirror: bool,
        beside: bool,
    ) -> Result<CropParse> {
        let side = roi.width.max(roi.height);
        let roi = RotatedRect {
            width: side * self.input.0 as f32 / self.input.1 as f32,
            height: side,
            ..*roi
        };
        let (crop, to_image) =
            crop_rotated_with(image, &roi, self.input.0, self.input.1, Border::Replicate)?;
        // The two views run side by side (rayon): three people are six runs on two cores, three
        // rounds instead of four if each person ran its views in turn.
        let ((height, width, mut probs), flipped) = if mirror {
            let mirrored = imageops::flip_horizontal(&crop);
            let (plain, flipped) = rayon::join(
                || self.infer(&crop, beside),
                || self.infer(&mirrored, beside),
            );
            (plain?, Some(flipped?.2))
        } else {
            (self.infer(&crop, beside)?, None)
        };
        let n = self.to_lip.len();
        let cells = width * height;
        if let Some(flipped) = flipped {
            // Plane by plane, along rows: label c's plane with its mirror label's, reversed.
            for (plane, &m) in probs.chunks_exact_mut(cells).zip(&self.mirrored) {
                let other = &flipped[m * cells..(m + 1) * cells];
                for (row, back) in plane.chunks_exact_mut(width).zip(other.chunks_exact(width)) {
                    for (p, &q) in row.iter_mut().zip(back.iter().rev()) {
                        *p = 0.5 * (*p + q);
                    }
                }
            }
        }
        let probs = to_cells(&probs, cells, n);
        // Plane coordinates are crop coordinates scaled by plane/crop.
        let to_crop = to_image.inverse()?;
        let (sx, sy) = (
            width as f32 / self.input.0 as f32,
            height as f32 / self.input.1 as f32,
        );
        let m = to_crop.m;
        let from_image = Affine {
            m: [
                [m[0][0] * sx, m[0][1] * sx, m[0][2] * sx],
                [m[1][0] * sy, m[1][1] * sy, m[1][2] * sy],
            ],
        };
        let bounds = covered_box(
            &to_image,
            (self.input.0 as f32, self.input.1 as f32),
            image.dimensions(),
        );
        let garments: Vec<f32> = probs
            .chunks_exact(n.max(1))
            .map(|px| pooled(px, &self.upper))
            .collect();
        let best = probs
            .chunks_exact(n.max(1))
            .zip(&garments)
            .map(|(px, &g)| u16::try_from(best_label(px, &self.upper, g)).unwrap_or(u16::MAX))
            .collect();
        // Each cell's colour is the mean of the crop pixels it covers (2 × 2 for the shipped
        // network, whose planes are half its input's size).
        let colours = imageops::thumbnail(&crop, width as u32, height as u32)
            .pixels()
            .map(|p| p.0)
            .collect();
        Ok(CropParse {
            width,
            height,
            planes: n,
            probs,
            best,
            upper: self.upper.clone(),
            background: self.background.clone(),
            garments,
            colours,
            from_image,
            bounds,
        })
    }

    /// The network on one crop: plane height, width and softmax probabilities, plane by plane.
    /// `beside`: as in [`PersonParser::run`].
    fn infer(&self, crop: &RgbImage, beside: bool) -> Result<(usize, usize, Vec<f32>)> {
        let input = rgb_to_tensor(crop, &self.model.spec().input);
        let outputs = if beside {
            self.model.run_beside(&input)?
        } else {
            self.model.run(&input)?
        };
        let scores = outputs
            .get(self.output)
            .ok_or_else(|| VisionError::Output("missing segmentation output".into()))?;
        self.probabilities(scores)
    }

    /// Plane height, width and the softmax over the label planes, plane by plane.
    fn probabilities(&self, scores: &Tensor) -> Result<(usize, usize, Vec<f32>)> {
        let n = self.to_lip.len();
        let (h, w) = match (self.layout, scores.shape()) {
            // No labels or empty planes would leave nothing to sample (a manifest may declare
            // either; the loops below take a cell's labels and a plane's rows as whole chunks).
            (Layout::Nchw, &[1, c, h, w]) if c == n && n > 0 && h * w > 0 => (h, w),
            (Layout::Nhwc, &[1, h, w, c]) if c == n && n > 0 && h * w > 0 => (h, w),
            (_, shape) => {
                return Err(VisionError::Output(format!(
                    "parsing output has shape {shape:?}, expected {n} labels in {:?}",
                    self.layout
                )));
            }
        };
        let data = scores.data();
        let probs = match self.layout {
            Layout::Nchw => softmax_planes(data, h * w, n),
            Layout::Nhwc => softmax_planes(&to_planes(data, h * w, n), h * w, n),
        };
        Ok((h, w, probs))
    }
}

/// For each network label, the network label of its mirror image (LIP's left and right arm,
/// leg and shoe swapped); the label itself when it has no side or its pair is not among the
/// network's labels.
fn mirrored_labels(to_lip: &[u8]) -> Vec<usize> {
    // Each pair both ways, so one lookup finds the other side.
    const SIDES: [(u8, u8); 6] = [
        (id::LEFT_ARM, id::RIGHT_ARM),
        (id::RIGHT_ARM, id::LEFT_ARM),
        (id::LEFT_LEG, id::RIGHT_LEG),
        (id::RIGHT_LEG, id::LEFT_LEG),
        (id::LEFT_SHOE, id::RIGHT_SHOE),
        (id::RIGHT_SHOE, id::LEFT_SHOE),
    ];
    to_lip
        .iter()
        .enumerate()
        .map(|(c, &lip)| {
            SIDES
                .iter()
                .find(|&&(side, _)| side == lip)
                .and_then(|&(_, other)| to_lip.iter().position(|&l| l == other))
                .unwrap_or(c)
        })
        .collect()
}

/// Where a photo pixel falls on a crop's label planes (`CropParse::sample`).
pub(crate) enum Sample {
    /// The four nearest cells agree on a background label: not this person's pixel.
    Background,
    /// The four nearest cells agree on their best label: it, and its bilinearly sampled
    /// probability.
    Agreed(usize, f32),
    /// They disagree: `CropParse::decide` settles the label from the pixel's colour.
    Boundary(Boundary),
}

/// A pixel between plane cells that disagree: its plane point and the four nearest cells
/// (index, bilinear weight).
pub(crate) struct Boundary {
    fx: f32,
    fy: f32,
    taps: [(usize, f32); 4],
}

impl CropParse {
    /// Where image pixel centre (`x`, `y`) falls on the planes; `None` outside the crop.
    ///
    /// Split from `decide` so that a caller can skip the boundary window where the pixel
    /// would not be this person's anyway (a nearer skeleton owns it): the window costs several
    /// times a pixel away from a boundary.
    pub(crate) fn sample(&self, x: f32, y: f32) -> Option<Sample> {
        let (u, v) = self.from_image.apply(x, y);
        let (w, h) = (self.width as f32, self.height as f32);
        if !(0.0..w).contains(&u) || !(0.0..h).contains(&v) {
            return None;
        }
        let n = self.planes;
        let (fx, fy) = ((u - 0.5).clamp(0.0, w - 1.0), (v - 0.5).clamp(0.0, h - 1.0));
        let (x0, y0) = (fx as usize, fy as usize);
        let (x1, y1) = ((x0 + 1).min(self.width - 1), (y0 + 1).min(self.height - 1));
        let (tx, ty) = (fx - x0 as f32, fy - y0 as f32);
        let taps = [
            (y0 * self.width + x0, (1.0 - tx) * (1.0 - ty)),
            (y0 * self.width + x1, tx * (1.0 - ty)),
            (y1 * self.width + x0, (1.0 - tx) * ty),
            (y1 * self.width + x1, tx * ty),
        ];
        // Where the four cells agree on their best label, it is the best of any blend of them
        // too (in each cell its standing, its own share or its pooled garments', is at least
        // any other label's, and its own share at least that of any garment pooled with it;
        // a blend is linear, so both orders hold there, and rounding keeps them), so only
        // that label is interpolated: the same label and probability, to the bit, as the blend
        // of every label (unless rounding makes an exact tie with a label before it, which the
        // blend would pick), for a fifth of the work on the pixels away from a boundary, most
        // of them (painting the stairs' five people: 149–203 ms before, 107–141 ms after;
        // BENCHMARKS.md, "Parse painting").
        let c = self.best[taps[0].0];
        if c != u16::MAX && taps.iter().all(|&(i, _)| self.best[i] == c) {
            let c = usize::from(c);
            // Most of a crop is background: its probability is never read.
            if self.background.get(c) == Some(&true) {
                return Some(Sample::Background);
            }
            let mut p = 0.0;
            for (i, wgt) in taps {
                p += wgt * self.probs[i * n + c];
            }
            return Some(Sample::Agreed(c, p));
        }
        Some(Sample::Boundary(Boundary { fx, fy, taps }))
    }

    /// The best network label and its probability at a boundary pixel whose colour is
    /// `colour`: from the colour-guided window of `guided`, or, for a cell without a best
    /// label on record, the bilinear blend of every label (`scratch`: one value per plane).
    pub(crate) fn decide(
        &self,
        at: &Boundary,
        colour: [u8; 3],
        scratch: &mut [f32],
    ) -> (usize, f32) {
        if let Some(found) = self.guided_label(at.fx, at.fy, colour) {
            return found;
        }
        let n = self.planes;
        scratch.fill(0.0);
        for &(i, wgt) in &at.taps {
            for (s, p) in scratch.iter_mut().zip(&self.probs[i * n..(i + 1) * n]) {
                *s += wgt * p;
            }
        }
        let best = best_label(scratch, &self.upper, pooled(scratch, &self.upper));
        (best, scratch.get(best).copied().unwrap_or(0.0))
    }
}

#[cfg(test)]
impl CropParse {
    /// A `width` × `height` plane over the same photo pixels (one cell per pixel), two
    /// labels: column `x` is label 1 where `person(x)`, with probability `p`, else label 0
    /// with `p`; the crop's colour at column `x` is `colour(x)`.
    pub(crate) fn columns(
        width: usize,
        height: usize,
        p: f32,
        person: impl Fn(usize) -> bool,
        colour: impl Fn(usize) -> [u8; 3],
    ) -> Self {
        let mut probs = Vec::new();
        let mut best = Vec::new();
        let mut colours = Vec::new();
        for _ in 0..height {
            for x in 0..width {
                let mine = person(x);
                probs.extend(if mine { [1.0 - p, p] } else { [p, 1.0 - p] });
                best.push(u16::from(mine));
                colours.push(colour(x));
            }
        }
        Self {
            width,
            height,
            planes: 2,
            probs,
            best,
            upper: vec![false; 2],
            background: vec![true, false],
            garments: vec![0.0; width * height],
            colours,
            from_image: Affine {
                m: [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]],
            },
            bounds: (0, 0, width as u32, height as u32),
        }
    }
}

/// A person's skeleton for telling two people's claims on a pixel apart: distances to the
/// limbs, the torso and the head, in units of the person's size.
///
/// Measured once per person for every pixel two people's networks claim (about 900 000 times
/// on the stairs photo), so the bones are kept as columns (start, direction, 1 / length²) that
/// the distance loop runs down without a branch, and a box around them bounds the distance
/// from below (`Skeleton::farther_than`).
pub(crate) struct Skeleton {
    bones: Bones,
    torso: Option<[(f32, f32); 4]>,
    /// The bones' bounding box (x0, y0, x1, y1); `None` without bones.
    bounds: Option<(f32, f32, f32, f32)>,
    scale: f32,
}

/// A segment's two ends.
type Segment = ((f32, f32), (f32, f32));

/// Segments as columns: start (`ax`, `ay`), direction (`dx`, `dy`), 1 / length² (0 for a
/// segment of no length, whose nearest point is then its start).
#[derive(Default)]
struct Bones {
    ax: Vec<f32>,
    ay: Vec<f32>,
    dx: Vec<f32>,
    dy: Vec<f32>,
    inv_len2: Vec<f32>,
}

impl Bones {
    fn new(segments: &[Segment]) -> Self {
        let mut bones = Self::default();
        for &(a, b) in segments {
            let (dx, dy) = (b.0 - a.0, b.1 - a.1);
            let len2 = dx * dx + dy * dy;
            bones.ax.push(a.0);
            bones.ay.push(a.1);
            bones.dx.push(dx);
            bones.dy.push(dy);
            bones
                .inv_len2
                .push(if len2 > 0.0 { 1.0 / len2 } else { 0.0 });
        }
        bones
    }

    /// The squared distance from `p` to the nearest segment (infinite without segments).
    fn nearest_sq(&self, p: (f32, f32)) -> f32 {
        let mut best = f32::INFINITY;
        let n = self.ax.len();
        let (ax, ay, dx, dy, inv) = (
            &self.ax[..n],
            &self.ay[..n],
            &self.dx[..n],
            &self.dy[..n],
            &self.inv_len2[..n],
        );
        for i in 0..n {
            let (ex, ey) = (p.0 - ax[i], p.1 - ay[i]);
            let t = ((ex * dx[i] + ey * dy[i]) * inv[i]).clamp(0.0, 1.0);
            let (fx, fy) = (ex - t * dx[i], ey - t * dy[i]);
            best = best.min(fx * fx + fy * fy);
        }
        best
    }
}

impl Skeleton {
    /// From the 33 pose landmarks: every bone between two joints the model says are there.
    pub(crate) fn new(lms: &[Landmark]) -> Self {
        const BONES: [(usize, usize); 18] = [
            (pt::NOSE, pt::LEFT_SHOULDER),
            (pt::NOSE, pt::RIGHT_SHOULDER),
            (pt::LEFT_SHOULDER, pt::LEFT_ELBOW),
            (pt::LEFT_ELBOW, pt::LEFT_WRIST),
            (pt::LEFT_WRIST, pt::LEFT_INDEX),
            (pt::RIGHT_SHOULDER, pt::RIGHT_ELBOW),
            (pt::RIGHT_ELBOW, pt::RIGHT_WRIST),
            (pt::RIGHT_WRIST, pt::RIGHT_INDEX),
            (pt::LEFT_HIP, pt::LEFT_KNEE),
            (pt::LEFT_KNEE, pt::LEFT_ANKLE),
            (pt::LEFT_ANKLE, pt::LEFT_FOOT_INDEX),
            (pt::RIGHT_HIP, pt::RIGHT_KNEE),
            (pt::RIGHT_KNEE, pt::RIGHT_ANKLE),
            (pt::RIGHT_ANKLE, pt::RIGHT_FOOT_INDEX),
            (pt::LEFT_SHOULDER, pt::RIGHT_SHOULDER),
            (pt::LEFT_HIP, pt::RIGHT_HIP),
            (pt::LEFT_SHOULDER, pt::LEFT_HIP),
            (pt::RIGHT_SHOULDER, pt::RIGHT_HIP),
        ];
        let there = |i: usize| lms.get(i).is_some_and(|l| l.presence.unwrap_or(1.0) > 0.5);
        let p = |i: usize| lms[i].xy();
        let bones: Vec<_> = BONES
            .iter()
            .filter(|&&(a, b)| there(a) && there(b))
            .map(|&(a, b)| (p(a), p(b)))
            .collect();
        let torso = (lms.len() > pt::RIGHT_HIP
            && [
                pt::LEFT_SHOULDER,
                pt::RIGHT_SHOULDER,
                pt::RIGHT_HIP,
                pt::LEFT_HIP,
            ]
            .iter()
            .all(|&i| there(i)))
        .then(|| {
            [
                p(pt::LEFT_SHOULDER),
                p(pt::RIGHT_SHOULDER),
                p(pt::RIGHT_HIP),
                p(pt::LEFT_HIP),
            ]
        });
        let d = |a: usize, b: usize| {
            if lms.len() > a.max(b) {
                (lms[a].x - lms[b].x).hypot(lms[a].y - lms[b].y)
            } else {
                0.0
            }
        };
        let scale = d(pt::LEFT_SHOULDER, pt::RIGHT_SHOULDER)
            .max(0.5 * d(pt::LEFT_SHOULDER, pt::LEFT_HIP))
            .max(0.5 * d(pt::RIGHT_SHOULDER, pt::RIGHT_HIP))
            .max(4.0);
        Self::of(&bones, torso, scale)
    }

    fn of(bones: &[Segment], torso: Option<[(f32, f32); 4]>, scale: f32) -> Self {
        let bounds = bones.iter().fold(None, |b, &(p, q)| {
            let (x0, y0, x1, y1) = b.unwrap_or((p.0, p.1, p.0, p.1));
            Some((
                x0.min(p.0).min(q.0),
                y0.min(p.1).min(q.1),
                x1.max(p.0).max(q.0),
                y1.max(p.1).max(q.1),
            ))
        });
        Self {
            bones: Bones::new(bones),
            torso,
            bounds,
            scale,
        }
    }

    /// A skeleton of the given bones and no torso, for tests.
    #[cfg(test)]
    pub(crate) fn of_bones(bones: Vec<Segment>, scale: f32) -> Self {
        Self::of(&bones, None, scale)
    }

    /// Distance from `p` to the skeleton, in shoulder widths (0 inside the torso).
    ///
    /// Outside the torso, its nearest point is on one of its edges, and each edge is a bone
    /// (shoulders, hips, and each side): the bones alone give the distance.
    pub(crate) fn distance(&self, p: (f32, f32)) -> f32 {
        if self.torso.as_ref().is_some_and(|t| inside_polygon(p, t)) {
            return 0.0;
        }
        self.bones.nearest_sq(p).sqrt() / self.scale
    }

    /// Whether `p` is at least `d` from the skeleton for certain, from the bones' box alone
    /// (no bone is nearer than the box): the distance need not be measured then.
    pub(crate) fn farther_than(&self, p: (f32, f32), d: f32) -> bool {
        let Some((x0, y0, x1, y1)) = self.bounds else {
            return true;
        };
        let ex = (x0 - p.0).max(p.0 - x1).max(0.0);
        let ey = (y0 - p.1).max(p.1 - y1).max(0.0);
        (ex * ex + ey * ey).sqrt() / self.scale >= d
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mirroring_swaps_only_the_sided_labels() {
        // The shipped network's planes are LIP's 20 labels in order.
        let lip: Vec<u8> = (0..20).collect();
        let m = mirrored_labels(&lip);
        for (c, &other) in m.iter().enumerate() {
            let want = match c {
                14 => 15,
                15 => 14,
                16 => 17,
                17 => 16,
                18 => 19,
                19 => 18,
                _ => c,
            };
            assert_eq!(other, want, "label {c}");
        }
        // A network without one side of a pair keeps the other as it is.
        let partial = [id::BACKGROUND, id::LEFT_ARM, id::FACE];
        assert_eq!(mirrored_labels(&partial), vec![0, 1, 2]);
        // Planes in another order still find their pair.
        let shuffled = [id::RIGHT_SHOE, id::BACKGROUND, id::LEFT_SHOE];
        assert_eq!(mirrored_labels(&shuffled), vec![2, 1, 0]);
    }
}
