//! Face mesh from the pose (MediaPipe Holistic's `face_landmarks_from_pose`): the pose's face
//! points give a ROI, the short-range face detector finds the face inside it, and its eye
//! keypoints give the crop for the 468-point mesh.

use image::RgbImage;
use percept_infer::manifest::RoiSpec;
use percept_infer::{Models, RotatedRect};

use crate::landmarks::{roi_from_points, rule};
use crate::runners::{LandmarkModel, SsdDetector};
use crate::{Landmark, Result};

/// A 468-point face mesh.
#[derive(Debug, Clone)]
pub struct FaceMesh {
    /// 468 landmarks in image pixels.
    pub landmarks: Vec<Landmark>,
    /// The mesh model's face-presence probability.
    pub score: f32,
    /// The crop the landmarks came from.
    pub roi: RotatedRect,
}

/// The short-range detector and mesh model with the rules joining them to the pose.
#[derive(Debug, Clone)]
pub struct FaceMesher {
    detector: SsdDetector,
    mesh: LandmarkModel,
    from_pose: RoiSpec,
    from_detection: RoiSpec,
    min_score: f32,
}

impl FaceMesher {
    /// The models it needs loaded.
    pub const MODELS: [&'static str; 2] = ["face_detection_short_range", "face_landmark"];

    /// Builds it on loaded models.
    pub fn new(models: &Models) -> Result<Self> {
        let min_score = models
            .get(Self::MODELS[0])?
            .spec()
            .ssd
            .as_ref()
            .map_or(0.5, |s| s.min_score_thresh);
        Ok(Self {
            detector: SsdDetector::new(models, Self::MODELS[0])?,
            mesh: LandmarkModel::new(models, Self::MODELS[1])?,
            from_pose: rule(models, "pose_to_face_detection")?,
            from_detection: rule(models, "face_detection_to_face_landmark_holistic")?,
            min_score,
        })
    }

    /// The ROI the pose's face points (0–10) give for the face detector.
    pub fn pose_roi(&self, pose: &[Landmark]) -> Option<RotatedRect> {
        let points: Vec<(f32, f32)> = pose.iter().map(Landmark::xy).collect();
        roi_from_points(&points, &self.from_pose)
    }

    /// The face of the person with these pose landmarks; `None` when the detector finds no
    /// face near the pose's face points or the mesh model rejects the crop.
    pub fn from_pose(&self, image: &RgbImage, pose: &[Landmark]) -> Result<Option<FaceMesh>> {
        let Some(search) = self.pose_roi(pose) else {
            return Ok(None);
        };
        let dets = self.detector.detect_in(image, &search, self.min_score)?;
        // MediaPipe keeps the first (best) detection inside the pose's face region.
        let Some(best) = dets.into_iter().next() else {
            return Ok(None);
        };
        let Some(roi) = roi_from_points(&best.keypoints, &self.from_detection) else {
            return Ok(None);
        };
        self.mesh_in(image, &roi)
    }

    /// 468 landmarks in a face ROI; `None` when the model says there is no face.
    pub fn mesh_in(&self, image: &RgbImage, roi: &RotatedRect) -> Result<Option<FaceMesh>> {
        let lm = self.mesh.run(image, roi)?;
        if !self.mesh.present(&lm) {
            return Ok(None);
        }
        let (w, h) = image.dimensions();
        Ok(Some(FaceMesh {
            landmarks: lm.to_landmarks(roi, w, h, false),
            score: lm.flag.unwrap_or(1.0),
            roi: *roi,
        }))
    }
}
