//! Hands from the pose (MediaPipe Holistic's `hand_landmarks_from_pose`): a rough ROI from the
//! pose's wrist, pinky and index points, refined by the tiny re-crop model, then 21 landmarks.

use image::RgbImage;
use percept_infer::manifest::RoiSpec;
use percept_infer::{Models, RotatedRect};

use crate::landmarks::{roi_from_points, rule};
use crate::runners::LandmarkModel;
use crate::{Landmark, Result};

/// The 21 hand landmarks, in model order.
pub const HAND_LANDMARK_NAMES: [&str; 21] = [
    "wrist",
    "thumb_cmc",
    "thumb_mcp",
    "thumb_ip",
    "thumb_tip",
    "index_finger_mcp",
    "index_finger_pip",
    "index_finger_dip",
    "index_finger_tip",
    "middle_finger_mcp",
    "middle_finger_pip",
    "middle_finger_dip",
    "middle_finger_tip",
    "ring_finger_mcp",
    "ring_finger_pip",
    "ring_finger_dip",
    "ring_finger_tip",
    "pinky_mcp",
    "pinky_pip",
    "pinky_dip",
    "pinky_tip",
];

/// Which of the person's hands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The person's left hand (on the viewer's right in a front view).
    Left,
    /// The person's right hand.
    Right,
}

/// One hand's landmarks.
#[derive(Debug, Clone)]
pub struct Hand {
    /// 21 landmarks in image pixels.
    pub landmarks: Vec<Landmark>,
    /// The landmark model's hand-presence probability.
    pub score: f32,
    /// The crop the landmarks came from.
    pub roi: RotatedRect,
}

/// The re-crop and landmark models with the rules joining them to the pose.
#[derive(Debug, Clone)]
pub struct HandTracker {
    recrop: LandmarkModel,
    landmarks: LandmarkModel,
    left_rule: RoiSpec,
    right_rule: RoiSpec,
    recrop_rule: RoiSpec,
}

impl HandTracker {
    /// The models it needs loaded.
    pub const MODELS: [&'static str; 2] = ["hand_recrop", "hand_landmark_full"];

    /// Builds it on loaded models.
    pub fn new(models: &Models) -> Result<Self> {
        Ok(Self {
            recrop: LandmarkModel::new(models, Self::MODELS[0])?,
            landmarks: LandmarkModel::new(models, Self::MODELS[1])?,
            left_rule: rule(models, "pose_to_left_hand_recrop")?,
            right_rule: rule(models, "pose_to_right_hand_recrop")?,
            recrop_rule: rule(models, "hand_recrop_to_hand_landmark")?,
        })
    }

    /// The hand on `side` of a person with these 33 pose landmarks; `None` when the wrist is
    /// not visible enough or the model finds no hand in the crop.
    pub fn from_pose(
        &self,
        image: &RgbImage,
        pose: &[Landmark],
        side: Side,
    ) -> Result<Option<Hand>> {
        let rule = match side {
            Side::Left => &self.left_rule,
            Side::Right => &self.right_rule,
        };
        let Some(&wrist) = rule.points.first().and_then(|&i| pose.get(i)) else {
            return Ok(None);
        };
        if wrist.visibility.unwrap_or(1.0) <= rule.min_wrist_visibility.unwrap_or(0.0) {
            return Ok(None);
        }
        let points: Vec<(f32, f32)> = pose.iter().map(Landmark::xy).collect();
        let Some(rough) = roi_from_points(&points, rule) else {
            return Ok(None);
        };
        let recrop = self.recrop.run(image, &rough)?;
        let pair: Vec<(f32, f32)> = recrop
            .points
            .iter()
            .map(|p| recrop.to_image.apply(p[0], p[1]))
            .collect();
        let Some(roi) = roi_from_points(&pair, &self.recrop_rule) else {
            return Ok(None);
        };
        self.landmarks_in(image, &roi)
    }

    /// Gets the engine ready to track both hands at once (holistic runs them in parallel).
    pub fn reserve_both(&self) -> Result<()> {
        self.recrop.reserve(2)?;
        self.landmarks.reserve(2)
    }

    /// 21 landmarks in a hand ROI; `None` when the model says there is no hand.
    pub fn landmarks_in(&self, image: &RgbImage, roi: &RotatedRect) -> Result<Option<Hand>> {
        let lm = self.landmarks.run(image, roi)?;
        if !self.landmarks.present(&lm) {
            return Ok(None);
        }
        let (w, h) = image.dimensions();
        Ok(Some(Hand {
            landmarks: lm.to_landmarks(roi, w, h, false),
            score: lm.flag.unwrap_or(1.0),
            roi: *roi,
        }))
    }
}
