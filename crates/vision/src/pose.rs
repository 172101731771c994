//! BlazePose: the person detector on the whole photo, then 33 landmarks (refined from the
//! model's heatmaps) and a person mask on the rotated crop the detector's alignment points give.

use image::RgbImage;
use percept_infer::manifest::RoiSpec;
use percept_infer::{Affine, BBox, Models, RotatedRect, sigmoid};

use crate::landmarks::{roi_from_points, rule, whole_image};
use crate::runners::{CropLandmarks, LandmarkModel, SsdDetector, output};
use crate::{Landmark, Result, VisionError};

/// The 33 BlazePose landmarks, in model order (left/right are the person's own).
pub const POSE_LANDMARK_NAMES: [&str; 33] = [
    "nose",
    "left_eye_inner",
    "left_eye",
    "left_eye_outer",
    "right_eye_inner",
    "right_eye",
    "right_eye_outer",
    "left_ear",
    "right_ear",
    "mouth_left",
    "mouth_right",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
    "left_pinky",
    "right_pinky",
    "left_index",
    "right_index",
    "left_thumb",
    "right_thumb",
    "left_hip",
    "right_hip",
    "left_knee",
    "right_knee",
    "left_ankle",
    "right_ankle",
    "left_heel",
    "right_heel",
    "left_foot_index",
    "right_foot_index",
];

/// The pose landmarks' indices by name (the person's own left and right), so code reads
/// `point::LEFT_WRIST` rather than `15`.
pub mod point {
    #![allow(missing_docs)] // each name is its landmark's, as in `POSE_LANDMARK_NAMES`
    pub const NOSE: usize = 0;
    pub const LEFT_EYE_INNER: usize = 1;
    pub const LEFT_EYE: usize = 2;
    pub const LEFT_EYE_OUTER: usize = 3;
    pub const RIGHT_EYE_INNER: usize = 4;
    pub const RIGHT_EYE: usize = 5;
    pub const RIGHT_EYE_OUTER: usize = 6;
    pub const LEFT_EAR: usize = 7;
    pub const RIGHT_EAR: usize = 8;
    pub const MOUTH_LEFT: usize = 9;
    pub const MOUTH_RIGHT: usize = 10;
    pub const LEFT_SHOULDER: usize = 11;
    pub const RIGHT_SHOULDER: usize = 12;
    pub const LEFT_ELBOW: usize = 13;
    pub const RIGHT_ELBOW: usize = 14;
    pub const LEFT_WRIST: usize = 15;
    pub const RIGHT_WRIST: usize = 16;
    pub const LEFT_PINKY: usize = 17;
    pub const RIGHT_PINKY: usize = 18;
    pub const LEFT_INDEX: usize = 19;
    pub const RIGHT_INDEX: usize = 20;
    pub const LEFT_THUMB: usize = 21;
    pub const RIGHT_THUMB: usize = 22;
    pub const LEFT_HIP: usize = 23;
    pub const RIGHT_HIP: usize = 24;
    pub const LEFT_KNEE: usize = 25;
    pub const RIGHT_KNEE: usize = 26;
    pub const LEFT_ANKLE: usize = 27;
    pub const RIGHT_ANKLE: usize = 28;
    pub const LEFT_HEEL: usize = 29;
    pub const RIGHT_HEEL: usize = 30;
    pub const LEFT_FOOT_INDEX: usize = 31;
    pub const RIGHT_FOOT_INDEX: usize = 32;
}

/// A person found by the pose detector: box and the two alignment points, image pixels.
#[derive(Debug, Clone, PartialEq)]
pub struct PersonDetection {
    /// The detector's box (roughly the upper body or face, not the whole person).
    pub bbox: BBox,
    /// Detector confidence.
    pub score: f32,
    /// Mid-hip centre, full-body size/rotation point, mid-shoulder centre, upper-body point.
    pub keypoints: Vec<(f32, f32)>,
}

/// The pose landmark model's answer for one ROI.
#[derive(Debug, Clone)]
pub struct Pose {
    /// The 33 landmarks with visibility and presence.
    pub landmarks: Vec<Landmark>,
    /// The model's person-presence probability.
    pub score: f32,
    /// The crop it was run on.
    pub roi: RotatedRect,
    /// Where the person will be in the next video frame: the crop MediaPipe's tracking mode
    /// runs on instead of detecting again (from the two auxiliary landmarks the model gives
    /// beyond the 33).
    pub next_roi: Option<RotatedRect>,
    /// The person mask over the crop (probabilities), when asked for.
    pub mask: Option<CropMask>,
}

/// A probability map over a rotated crop, with the map back to the photo.
#[derive(Debug, Clone)]
pub struct CropMask {
    /// Crop width.
    pub width: u32,
    /// Crop height.
    pub height: u32,
    /// Row-major probabilities in [0, 1].
    pub data: Vec<f32>,
    /// Crop pixels → image pixels.
    pub to_image: Affine,
}

impl CropMask {
    /// The probability at image pixel (`x`, `y`) (its centre), bilinear; 0 outside the crop.
    pub fn sample(&self, inverse: &Affine, x: f32, y: f32) -> f32 {
        let (u, v) = inverse.apply(x, y);
        self.at_crop(u, v)
    }

    /// The probability at crop coordinates (`u`, `v`), bilinear between pixel centres; 0
    /// outside the crop.
    pub fn at_crop(&self, u: f32, v: f32) -> f32 {
        let (fx, fy) = (u - 0.5, v - 0.5);
        let (x0, y0) = (fx.floor(), fy.floor());
        let (tx, ty) = (fx - x0, fy - y0);
        let (w, h) = (self.width as i64, self.height as i64);
        let (x0, y0) = (x0 as i64, y0 as i64);
        if x0 < -1 || y0 < -1 || x0 >= w || y0 >= h {
            return 0.0;
        }
        let at = |x: i64, y: i64| -> f32 {
            if x < 0 || y < 0 || x >= w || y >= h {
                0.0
            } else {
                self.data[(y * w + x) as usize]
            }
        };
        let top = at(x0, y0) * (1.0 - tx) + at(x0 + 1, y0) * tx;
        let bottom = at(x0, y0 + 1) * (1.0 - tx) + at(x0 + 1, y0 + 1) * tx;
        top * (1.0 - ty) + bottom * ty
    }
}

/// A pose landmark model with the positions of the outputs the pipeline reads.
#[derive(Debug, Clone)]
struct LandmarkHead {
    model: LandmarkModel,
    heatmap: Option<usize>,
    mask: Option<usize>,
}

impl LandmarkHead {
    fn new(models: &Models, name: &str) -> Result<Self> {
        let model = LandmarkModel::new(models, name)?;
        // A variant without the mask lists fewer outputs; a name it lacks is simply absent.
        let index =
            |name: &Option<String>| name.as_deref().and_then(|n| model.output_index(n).ok());
        let (heatmap, mask) = (
            index(&model.spec().heatmap_output),
            index(&model.spec().segmentation_output),
        );
        Ok(Self {
            model,
            heatmap,
            mask,
        })
    }
}

/// Which pose landmark model runs (MediaPipe's `model_complexity`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PoseModel {
    /// BlazePose GHUM lite (`model_complexity = 0`): under half the full model's size, ~25 %
    /// less time (BENCHMARKS.md, "Model engines").
    Lite,
    /// BlazePose GHUM full (`model_complexity = 1`), without its mask head.
    #[default]
    Full,
    /// The full model with the person mask (the pose-guided parser's masks, holistic's
    /// `enable_segmentation`).
    FullWithMask,
    /// The lite model with the person mask (holistic's `enable_segmentation` at
    /// `model_complexity = 0`).
    LiteWithMask,
}

impl PoseModel {
    /// MediaPipe's `model_complexity` (0 lite, 1 full), with the person mask or without.
    pub fn for_complexity(model_complexity: u8, with_mask: bool) -> Self {
        match (model_complexity, with_mask) {
            (0, false) => PoseModel::Lite,
            (0, true) => PoseModel::LiteWithMask,
            (_, false) => PoseModel::Full,
            (_, true) => PoseModel::FullWithMask,
        }
    }

    /// Whether this model gives the person mask.
    pub fn has_mask(self) -> bool {
        matches!(self, PoseModel::FullWithMask | PoseModel::LiteWithMask)
    }
}

/// The pose detector and landmark model, with the rule joining them.
#[derive(Debug, Clone)]
pub struct PoseEstimator {
    detector: SsdDetector,
    /// Landmarks when no mask is wanted: the mask-free variant when it is loaded.
    landmarks: LandmarkHead,
    /// The full model, for callers that want the person mask (the parser).
    masked: Option<LandmarkHead>,
    /// The lite model, when loaded.
    lite: Option<LandmarkHead>,
    /// The lite model with its mask head, when loaded.
    lite_masked: Option<LandmarkHead>,
    roi_rule: RoiSpec,
    /// MediaPipe's tracking ROI: the next video frame's crop from this frame's two auxiliary
    /// alignment landmarks (33, 34), as `pose_landmarks_to_roi` does.
    track_rule: RoiSpec,
}

impl PoseEstimator {
    /// The models holistic tracking needs loaded: the detector and the landmark model cut to
    /// its landmark outputs (half the full model's time).
    pub const MODELS: [&'static str; 2] = ["pose_detection", "pose_landmark_full_no_mask"];
    /// The landmark model with the person mask; [`PoseModel::FullWithMask`] needs it loaded.
    pub const MASK_MODEL: &'static str = "pose_landmark_full";
    /// The lite landmark model without its mask head; [`PoseModel::Lite`] needs it loaded.
    pub const LITE_MODEL: &'static str = "pose_landmark_lite_no_mask";
    /// The lite landmark model with the person mask; [`PoseModel::LiteWithMask`] needs it.
    pub const LITE_MASK_MODEL: &'static str = "pose_landmark_lite";

    /// Builds it on loaded models: the detector and either landmark model (both when masks and
    /// speed are both wanted).
    pub fn new(models: &Models) -> Result<Self> {
        let detector = SsdDetector::new(models, Self::MODELS[0])?;
        let roi_rule = rule(models, "pose_detection_to_pose_landmark")?;
        let track_rule = rule(models, "pose_landmark_to_pose_landmark")?;
        let masked = masked_head(models, Self::MASK_MODEL)?;
        let lite_masked = masked_head(models, Self::LITE_MASK_MODEL)?;
        let landmarks = match (models.get(Self::MODELS[1]), &masked) {
            (Ok(_), _) => LandmarkHead::new(models, Self::MODELS[1])?,
            (Err(_), Some(full)) => full.clone(),
            (Err(e), None) => return Err(e.into()),
        };
        let lite = match models.get(Self::LITE_MODEL) {
            Ok(_) => Some(LandmarkHead::new(models, Self::LITE_MODEL)?),
            Err(_) => None,
        };
        Ok(Self {
            detector,
            landmarks,
            masked,
            lite,
            lite_masked,
            roi_rule,
            track_rule,
        })
    }

    /// People in the whole photo, best first. The photo is letterboxed into the detector's
    /// square input by a plain bilinear warp with a black border, as MediaPipe's
    /// `pose_detection_cpu` does: the detector's scores, and so which person a single-person
    /// pipeline follows, then match MediaPipe's.
    pub fn detect(&self, image: &RgbImage, min_score: f32) -> Result<Vec<PersonDetection>> {
        let (w, h) = image.dimensions();
        if w == 0 || h == 0 {
            return Ok(Vec::new());
        }
        self.detect_in(image, &whole_image(w, h), min_score)
    }

    /// People inside a square region of the photo (a crop around a face, for people the
    /// whole-photo pass misses), best first, in image pixels.
    pub fn detect_in(
        &self,
        image: &RgbImage,
        region: &RotatedRect,
        min_score: f32,
    ) -> Result<Vec<PersonDetection>> {
        Ok(self
            .detector
            .detect_in(image, region, min_score)?
            .into_iter()
            .map(|d| PersonDetection {
                bbox: d.bbox,
                score: d.score,
                keypoints: d.keypoints,
            })
            .collect())
    }

    /// The landmark ROI for a detection.
    pub fn roi(&self, person: &PersonDetection) -> Option<RotatedRect> {
        roi_from_points(&person.keypoints, &self.roi_rule)
    }

    /// 33 landmarks in `roi` by `model` (a mask only when [`PoseModel::has_mask`]);
    /// `None` when the model says no person is there.
    pub fn landmarks(
        &self,
        image: &RgbImage,
        roi: &RotatedRect,
        model: PoseModel,
    ) -> Result<Option<Pose>> {
        let needs = |name: &str| VisionError::Output(format!("{model:?} needs {name} loaded"));
        let head = match model {
            PoseModel::FullWithMask => self
                .masked
                .as_ref()
                .ok_or_else(|| needs(Self::MASK_MODEL))?,
            PoseModel::Full => &self.landmarks,
            PoseModel::Lite => self.lite.as_ref().ok_or_else(|| needs(Self::LITE_MODEL))?,
            PoseModel::LiteWithMask => self
                .lite_masked
                .as_ref()
                .ok_or_else(|| needs(Self::LITE_MASK_MODEL))?,
        };
        let with_mask = model.has_mask();
        let mut lm = head.model.run(image, roi)?;
        let score = lm.flag.unwrap_or(1.0);
        if !head.model.present(&lm) {
            return Ok(None);
        }
        if let Some(index) = head.heatmap {
            let spec = head.model.spec();
            refine_from_heatmap(
                &mut lm,
                index,
                spec.num_landmarks,
                spec.heatmap_refine_kernel_size.unwrap_or(7),
                spec.heatmap_refine_min_confidence.unwrap_or(0.5),
            )?;
        }
        let (w, h) = image.dimensions();
        let mut landmarks = lm.to_landmarks(roi, w, h, true);
        let points: Vec<(f32, f32)> = landmarks.iter().map(Landmark::xy).collect();
        let next_roi = roi_from_points(&points, &self.track_rule);
        landmarks.truncate(POSE_LANDMARK_NAMES.len());
        if landmarks.len() != POSE_LANDMARK_NAMES.len() {
            return Err(VisionError::Output(format!(
                "pose model gave {} landmarks",
                landmarks.len()
            )));
        }
        let mask = if with_mask {
            let (mw, mh) = lm.size;
            let index = head
                .mask
                .ok_or_else(|| VisionError::Output("no mask output".into()))?;
            let logits = output(&lm.outputs, index, (mw * mh) as usize)?;
            Some(CropMask {
                width: mw,
                height: mh,
                data: logits[..(mw * mh) as usize]
                    .iter()
                    .map(|&l| sigmoid(l))
                    .collect(),
                to_image: lm.to_image,
            })
        } else {
            None
        };
        Ok(Some(Pose {
            landmarks,
            score,
            roi: *roi,
            next_roi,
            mask,
        }))
    }
}

/// The landmark model `name` with its mask head, when loaded; loaded without one is an error.
fn masked_head(models: &Models, name: &str) -> Result<Option<LandmarkHead>> {
    if models.get(name).is_err() {
        return Ok(None);
    }
    let head = LandmarkHead::new(models, name)?;
    if head.mask.is_none() {
        return Err(VisionError::Output(format!(
            "{name} has no segmentation output"
        )));
    }
    Ok(Some(head))
}

/// RefineLandmarksFromHeatmapCalculator: where a landmark's heatmap is confident near the
/// regressed point, move the point to the heatmap's local centre of mass.
fn refine_from_heatmap(
    lm: &mut CropLandmarks,
    index: usize,
    channels: usize,
    kernel: usize,
    min_confidence: f32,
) -> Result<()> {
    let shape = lm
        .outputs
        .get(index)
        .map(|t| t.shape().to_vec())
        .unwrap_or_default();
    let (hh, hw) = match shape.as_slice() {
        &[1, h, w, c] if c == channels => (h, w),
        other => {
            return Err(VisionError::Output(format!(
                "heatmap has shape {other:?}, expected [1, h, w, {channels}]"
            )));
        }
    };
    let heat = output(&lm.outputs, index, hh * hw * channels)?.to_vec();
    let (cw, ch) = (lm.size.0 as f32, lm.size.1 as f32);
    let offset = (kernel.saturating_sub(1) / 2) as i64;
    for (i, p) in lm.points.iter_mut().enumerate() {
        let col = (p[0] / cw * hw as f32) as i64;
        let row = (p[1] / ch * hh as f32) as i64;
        if col < 0 || row < 0 || col >= hw as i64 || row >= hh as i64 {
            continue;
        }
        let (c0, c1) = ((col - offset).max(0), (col + offset + 1).min(hw as i64));
        let (r0, r1) = ((row - offset).max(0), (row + offset + 1).min(hh as i64));
        let (mut sum, mut max, mut wc, mut wr) = (0.0f32, 0.0f32, 0.0f32, 0.0f32);
        for r in r0..r1 {
            for c in c0..c1 {
                let conf = sigmoid(heat[(r as usize * hw + c as usize) * channels + i]);
                sum += conf;
                max = max.max(conf);
                wc += c as f32 * conf;
                wr += r as f32 * conf;
            }
        }
        if max >= min_confidence && sum > 0.0 {
            p[0] = wc / hw as f32 / sum * cw;
            p[1] = wr / hh as f32 / sum * ch;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_points_match_the_landmark_names() {
        use super::point::*;
        for (index, name) in [
            (NOSE, "nose"),
            (LEFT_EYE_INNER, "left_eye_inner"),
            (LEFT_EYE, "left_eye"),
            (LEFT_EYE_OUTER, "left_eye_outer"),
            (RIGHT_EYE_INNER, "right_eye_inner"),
            (RIGHT_EYE, "right_eye"),
            (RIGHT_EYE_OUTER, "right_eye_outer"),
            (LEFT_EAR, "left_ear"),
            (RIGHT_EAR, "right_ear"),
            (MOUTH_LEFT, "mouth_left"),
            (MOUTH_RIGHT, "mouth_right"),
            (LEFT_SHOULDER, "left_shoulder"),
            (RIGHT_SHOULDER, "right_shoulder"),
            (LEFT_ELBOW, "left_elbow"),
            (RIGHT_ELBOW, "right_elbow"),
            (LEFT_WRIST, "left_wrist"),
            (RIGHT_WRIST, "right_wrist"),
            (LEFT_PINKY, "left_pinky"),
            (RIGHT_PINKY, "right_pinky"),
            (LEFT_INDEX, "left_index"),
            (RIGHT_INDEX, "right_index"),
            (LEFT_THUMB, "left_thumb"),
            (RIGHT_THUMB, "right_thumb"),
            (LEFT_HIP, "left_hip"),
            (RIGHT_HIP, "right_hip"),
            (LEFT_KNEE, "left_knee"),
            (RIGHT_KNEE, "right_knee"),
            (LEFT_ANKLE, "left_ankle"),
            (RIGHT_ANKLE, "right_ankle"),
            (LEFT_HEEL, "left_heel"),
            (RIGHT_HEEL, "right_heel"),
            (LEFT_FOOT_INDEX, "left_foot_index"),
            (RIGHT_FOOT_INDEX, "right_foot_index"),
        ] {
            assert_eq!(POSE_LANDMARK_NAMES[index], name);
        }
    }
}
