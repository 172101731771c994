//! Face detection with BlazeFace full range, MediaPipe's own face detector: the `fast` mode of
//! anonymisation. One 192×192 pass over the whole photo, as MediaPipe's `FaceDetection`
//! (`model_selection=1`) runs it, so its cost does not grow with the photo; CenterFace
//! ([`crate::FaceDetector`]) is the `accurate` mode for faces too small for that pass.

use image::RgbImage;
use percept_infer::{Detection, Models, nms};

use percept_infer::RotatedRect;

use crate::faces::{DetectOptions, Face, suppress_contained, to_face};
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
    /// apply: the photo is letterboxed whole into the model's input (a plain bilinear warp, as
    /// MediaPipe's `ImageToTensorCalculator` does), and a wide photo of 1280 px or more is
    /// also run as the squares along its long side ([`square_passes`]).
    pub fn detect(&self, image: &RgbImage, options: &DetectOptions) -> Result<Vec<Face>> {
        options.validate()?;
        let (w, h) = image.dimensions();
        self.detections(image, options.min_score, options.nms_iou)?
            .into_iter()
            .map(|d| to_five_points(d).map(|d| to_face(forehead_to_chin(d), w, h)))
            .collect()
    }
}

impl FastFaceDetector {
    /// The model's own detections (square boxes and six keypoints, as MediaPipe reports them,
    /// in image pixels, best first) on the whole photo and, for a wide photo, on the squares
    /// along its long side. The people stage seeds its searches with these too: on a 1280×720
    /// video frame of `group4_hands` the whole-photo pass alone missed a face the squares found
    /// at 0.71, and holistic then lost that person for ten frames (BENCHMARKS.md, "Every
    /// person on a group clip").
    pub(crate) fn detections(
        &self,
        image: &RgbImage,
        min_score: f32,
        nms_iou: f32,
    ) -> Result<Vec<Detection>> {
        let (w, h) = image.dimensions();
        if w == 0 || h == 0 {
            return Ok(Vec::new());
        }
        // The detector's weighted NMS (MediaPipe's) has merged each face's anchors within a
        // pass; `nms_iou` then applies across passes as it does for CenterFace.
        let mut dets = self
            .detector
            .detect_in(image, &whole_image(w, h), min_score)?;
        for roi in square_passes(w, h) {
            dets.extend(self.detector.detect_in(image, &roi, min_score)?);
        }
        Ok(suppress_contained(nms(dets, nms_iou)))
    }
}

/// Photos at least this long get the square passes.
const SQUARES_FROM_SIDE: u32 = 1280;
/// ... when their long side is at least this many times their short one, and at most
/// [`SQUARES_TO_ASPECT`] times (a panorama would need a square per short side).
const SQUARES_FROM_ASPECT: f32 = 1.25;
const SQUARES_TO_ASPECT: f32 = 8.0;

/// Squares of the photo's short side along its long side, overlapping evenly, for a wide photo
/// of [`SQUARES_FROM_SIDE`] px or more. Letterboxed whole, a 16:9 photo fills only 56 % of the
/// model's 192×192 input, so its faces are 0.56× the size they are in a square crop; on the
/// 1080p copies of the test photos that lost a 170 px face in `group4_hands` that MediaPipe,
/// resampling differently, kept at 0.7 (BENCHMARKS.md, "Face anonymisation end to end"). Each
/// square costs one more 192×192 run (~4 ms); below 1280 px the photo's decode and encode are
/// too cheap to hide them.
fn square_passes(width: u32, height: u32) -> Vec<RotatedRect> {
    let (long, short) = (width.max(height), width.min(height));
    let aspect = long as f32 / short.max(1) as f32;
    if long < SQUARES_FROM_SIDE
        || short == 0
        || !(SQUARES_FROM_ASPECT..=SQUARES_TO_ASPECT).contains(&aspect)
    {
        return Vec::new();
    }
    let n = long.div_ceil(short).max(2);
    let step = (long - short) as f32 / (n - 1) as f32;
    (0..n)
        .map(|i| {
            let along = short as f32 / 2.0 + i as f32 * step;
            let (cx, cy) = if width >= height {
                (along, height as f32 / 2.0)
            } else {
                (width as f32 / 2.0, along)
            };
            RotatedRect {
                cx,
                cy,
                width: short as f32,
                height: short as f32,
                rotation: 0.0,
            }
        })
        .collect()
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
    fn wide_photos_get_squares_along_their_long_side() {
        assert!(square_passes(640, 480).is_empty());
        assert!(square_passes(1280, 1100).is_empty());
        assert!(square_passes(0, 2000).is_empty());
        assert!(square_passes(12000, 300).is_empty());
        for (w, h) in [(1920, 1080), (4000, 3000), (1080, 1920), (6000, 1000)] {
            let squares = square_passes(w, h);
            let (long, short) = (w.max(h) as f32, w.min(h) as f32);
            assert!(squares.len() >= 2, "{w}x{h}");
            // From one end to the other, each the short side, inside the photo.
            let along = |r: &RotatedRect| if w >= h { r.cx } else { r.cy };
            assert_eq!(along(&squares[0]), short / 2.0);
            assert!((along(squares.last().unwrap()) - (long - short / 2.0)).abs() < 1e-3);
            for r in &squares {
                assert_eq!((r.width, r.height), (short, short));
            }
        }
        assert_eq!(square_passes(1920, 1080).len(), 2);
    }

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
