//! Both irises from the face mesh (MediaPipe's `refine_face_landmarks`): each eye's corners
//! give a crop (the manifest's `face_landmark_to_{left,right}_iris` rules), the iris model
//! finds the iris centre and four rim points in it, and the ten points extend the 468-point
//! mesh to MediaPipe's 478-point layout.
//!
//! MediaPipe Holistic refines with its attention mesh, which re-places the eyes and lips as
//! well; percept keeps its 468 mesh points as they are and adds the irises from the iris model
//! that ships in the same package (the agreement with MediaPipe's irises is tested).

use image::RgbImage;
use percept_infer::Models;
use percept_infer::manifest::RoiSpec;

use crate::landmarks::{roi_from_points, rule};
use crate::runners::LandmarkModel;
use crate::{Landmark, Result};

/// Mesh points in MediaPipe's 478-point layout: 468 mesh points, then five for the iris of
/// the eye at mesh points 33/133 (the person's right eye), then five for the eye at 362/263.
pub const REFINED_FACE_POINTS: usize = 478;

/// The iris model with the rules that crop each eye from the mesh.
#[derive(Debug, Clone)]
pub struct IrisFinder {
    model: LandmarkModel,
    /// The eye at mesh points 33/133.
    first_eye: RoiSpec,
    /// The eye at mesh points 362/263 (its rule says to mirror the crop).
    second_eye: RoiSpec,
}

impl IrisFinder {
    /// The models it needs loaded.
    pub const MODELS: [&'static str; 1] = ["iris_landmark"];

    /// Builds it on loaded models.
    pub fn new(models: &Models) -> Result<Self> {
        Ok(Self {
            model: LandmarkModel::new(models, Self::MODELS[0])?,
            first_eye: rule(models, "face_landmark_to_left_iris")?,
            second_eye: rule(models, "face_landmark_to_right_iris")?,
        })
    }

    /// The ten iris points of a 468-point `mesh` in an `image` (centre then rim, the eye at
    /// 33/133 first), in image pixels; `None` when the mesh is too small or degenerate to crop
    /// an eye from.
    pub fn irises(&self, image: &RgbImage, mesh: &[Landmark]) -> Result<Option<Vec<Landmark>>> {
        let points: Vec<(f32, f32)> = mesh.iter().map(Landmark::xy).collect();
        let (width, height) = image.dimensions();
        let mut irises = Vec::with_capacity(10);
        for spec in [&self.first_eye, &self.second_eye] {
            let Some(roi) = roi_from_points(&points, spec) else {
                return Ok(None);
            };
            // The model knows one eye; the manifest marks the other's crop to be mirrored.
            let found = if spec.mirror {
                self.model.run_mirrored(image, &roi)?
            } else {
                self.model.run(image, &roi)?
            };
            let mut points = found.to_landmarks(&roi, width, height, false);
            if spec.mirror && points.len() == 5 {
                // Mirrored back, the rim point the model puts on its crop's right lies on the
                // eye's left, and the other way round: 1 and 3 trade places so each rim point
                // keeps the side of the photo MediaPipe's 478-point layout gives it (measured
                // against MediaPipe's own refined mesh).
                points.swap(1, 3);
            }
            irises.extend(points);
        }
        Ok(Some(irises))
    }
}
