//! Face detection with BlazeFace full range, MediaPipe's own face detector: the `fast` mode of
//! anonymisation. One 192×192 pass over the whole photo, as MediaPipe's `FaceDetection`
//! (`model_selection=1`) runs it, so its cost does not grow with the photo; CenterFace
//! ([`crate::FaceDetector`]) is the `accurate` mode for faces too small for that pass.

use image::RgbImage;
use percept_infer::{Detection, Models, nms};

use crate::faces::{DetectOptions, Face, to_face};
use crate::landmarks::whole_image;
use crate::runners::SsdDetector;
use crate::{Result, VisionError};

/// BlazeFace's keypoints, in its output order.
const RIGHT_EYE: usize = 0;
const LEFT_EYE: usize = 1;
const NOSE: usize = 2;
const MOUTH: usize = 3;

/// BlazeFace full range on the CPU. Cheap to clone; share it in an `Arc` across workers.
#[derive(Debug, Clone)]
pub struct FastFaceDetector {
    detector: SsdDetector,
}

impl FastFaceDetector {
    /// The manifest name of the model this detector needs loaded.
    pub const MODEL: &'static str = "face_detection_full_range";

    /// A detector on the loaded `face_detection_full_range` model.
    pub fn new(models: &Models) -> Result<Self> {
        Ok(Self {
            detector: SsdDetector::new(models, Self::MODEL)?,
        })
    }

    /// Finds the faces in `image`, best first. Of `options` only `min_score` and `nms_iou`
    /// apply: the photo is always letterboxed whole into the model's input (a plain bilinear
    /// warp, as MediaPipe's `ImageToTensorCalculator` does), never tiled.
    pub fn detect(&self, image: &RgbImage, options: &DetectOptions) -> Result<Vec<Face>> {
        options.validate()?;
        let (w, h) = image.dimensions();
        // The detector's weighted NMS (MediaPipe's) has merged each face's anchors; the
        // caller's IoU bar then applies as it does for CenterFace.
        let dets = self.detections(image, options.min_score)?;
        nms(dets, options.nms_iou)
            .into_iter()
            .map(|d| to_five_points(d).map(|d| to_face(forehead_to_chin(d), w, h)))
            .collect()
    }
}

impl FastFaceDetector {
    /// The model's own detections on the whole photo (after its weighted NMS), in image
    /// pixels: square boxes and six keypoints, as MediaPipe reports them.
    pub(crate) fn detections(&self, image: &RgbImage, min_score: f32) -> Result<Vec<Detection>> {
        let (w, h) = image.dimensions();
        if w == 0 || h == 0 {
            return Ok(Vec::new());
        }
        self.detector
            .detect_in(image, &whole_image(w, h), min_score)
    }
}

/// BlazeFace's square box runs from the brows to the chin; CenterFace's, like the hand-drawn
/// test boxes, from the hairline: on the 19 faces of the test photos (their 640×480 copies in
/// `bench/peers/face_e2e.py`) CenterFace's is 1.17× taller with its centre 4 % of its height
/// higher (medians). Grown to match, raised a little more (5 %) to err towards the hairline, so
/// `box_scale` hides as much of the face in both modes.
fn forehead_to_chin(mut d: Detection) -> Detection {
    const TALLER: f32 = 1.17;
    const RAISE: f32 = 0.05;
    let cy = d.bbox.y + d.bbox.height / 2.0;
    let height = d.bbox.height * TALLER;
    d.bbox.y = cy - RAISE * height - height / 2.0;
    d.bbox.height = height;
    d
}

/// BlazeFace's six keypoints (eyes, nose tip, mouth centre, ears) as the five of [`Face`]:
/// the eyes ordered left to right in the image, the nose, and the mouth centre for both mouth
/// corners (BlazeFace has no corners).
fn to_five_points(mut d: Detection) -> Result<Detection> {
    let point = |i: usize| {
        d.keypoints
            .get(i)
            .copied()
            .ok_or_else(|| VisionError::Output(format!("BlazeFace keypoint {i} is missing")))
    };
    let (a, b) = (point(RIGHT_EYE)?, point(LEFT_EYE)?);
    let (left, right) = if a.0 <= b.0 { (a, b) } else { (b, a) };
    let mouth = point(MOUTH)?;
    d.keypoints = vec![left, right, point(NOSE)?, mouth, mouth];
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use percept_infer::BBox;

    #[test]
    fn the_box_grows_up_towards_the_hairline() {
        let d = Detection {
            bbox: BBox {
                x: 10.0,
                y: 20.0,
                width: 100.0,
                height: 100.0,
            },
            score: 0.9,
            keypoints: vec![],
        };
        let g = forehead_to_chin(d);
        assert!((g.bbox.height - 117.0).abs() < 1e-3);
        assert_eq!((g.bbox.x, g.bbox.width), (10.0, 100.0));
        // Taller on both ends, more so at the top.
        let (top, bottom) = (20.0 - g.bbox.y, g.bbox.y + g.bbox.height - 120.0);
        assert!(top > bottom && bottom > 0.0, "{top} {bottom}");
    }

    #[test]
    fn keypoints_map_to_the_five_face_points() {
        let d = Detection {
            bbox: BBox {
                x: 0.0,
                y: 0.0,
                width: 10.0,
                height: 10.0,
            },
            score: 0.9,
            // A face seen from the front: its right eye is on the image's left.
            keypoints: vec![
                (3.0, 4.0),
                (7.0, 4.0),
                (5.0, 6.0),
                (5.0, 8.0),
                (1.0, 5.0),
                (9.0, 5.0),
            ],
        };
        let five = to_five_points(d.clone()).unwrap();
        assert_eq!(
            five.keypoints,
            vec![(3.0, 4.0), (7.0, 4.0), (5.0, 6.0), (5.0, 8.0), (5.0, 8.0)]
        );
        // Mirrored (eyes swapped in the image): still ordered left to right.
        let mut mirrored = d.clone();
        mirrored.keypoints.swap(0, 1);
        assert_eq!(
            to_five_points(mirrored).unwrap().keypoints[..2],
            [(3.0, 4.0), (7.0, 4.0)]
        );
        let mut short = d;
        short.keypoints.truncate(3);
        assert!(to_five_points(short).is_err());
    }
}
