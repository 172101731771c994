//! Holistic tracking (MediaPipe Holistic's graph on one photo): the best person's 33 pose
//! landmarks, then both hands and the face mesh from ROIs the pose gives — 543 points.

use image::RgbImage;
use percept_infer::{BBox, Models};
use serde::Serialize;

use crate::draw::Canvas;
use crate::face_mesh::{FaceMesh, FaceMesher};
use crate::hands::{Hand, HandTracker, Side};
use crate::landmarks::Roi;
use crate::pose::{Pose, PoseEstimator};
use crate::topology::{FACE_CONTOURS, HAND_EDGES, POSE_EDGES};
use crate::{Landmark, Result, VisionError};

/// How the holistic pipeline runs.
#[derive(Debug, Clone, PartialEq)]
pub struct HolisticOptions {
    /// Minimum pose-detector confidence, [0.05, 1].
    pub min_detection_score: f32,
    /// Track the hands.
    pub hands: bool,
    /// Run the face mesh.
    pub face: bool,
}

impl Default for HolisticOptions {
    fn default() -> Self {
        Self {
            min_detection_score: 0.5,
            hands: true,
            face: true,
        }
    }
}

impl HolisticOptions {
    /// Checks every field's range.
    pub fn validate(&self) -> Result<()> {
        if !(0.05..=1.0).contains(&self.min_detection_score) {
            return Err(VisionError::BadOption(format!(
                "min_detection_score must be in [0.05, 1], got {}",
                self.min_detection_score
            )));
        }
        Ok(())
    }
}

/// Whether a part was found, how sure the model is, and where it looked.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct PartInfo {
    /// The part was found.
    pub present: bool,
    /// The model's presence probability for it (0 when not found).
    pub score: f32,
    /// The crop its landmarks came from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub roi: Option<Roi>,
}

impl PartInfo {
    fn absent() -> Self {
        Self {
            present: false,
            score: 0.0,
            roi: None,
        }
    }
}

/// Per part: found or not.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Parts {
    /// The body.
    pub pose: PartInfo,
    /// The person's left hand.
    pub left_hand: PartInfo,
    /// The person's right hand.
    pub right_hand: PartInfo,
    /// The face mesh.
    pub face: PartInfo,
}

/// The person box as the API reports it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct PersonBox {
    /// Left edge.
    pub x: f32,
    /// Top edge.
    pub y: f32,
    /// Width.
    pub width: f32,
    /// Height.
    pub height: f32,
    /// Pose-detector confidence.
    pub score: f32,
}

/// The 543 landmarks of one person (fewer when parts are missing: a missing part is an empty
/// list, never invented points).
#[derive(Debug, Clone, Serialize)]
pub struct HolisticResult {
    /// Photo width.
    pub width: u32,
    /// Photo height.
    pub height: u32,
    /// 33 pose landmarks (with visibility and presence), or none.
    pub pose: Vec<Landmark>,
    /// 21 landmarks of the person's left hand, or none.
    pub left_hand: Vec<Landmark>,
    /// 21 landmarks of the person's right hand, or none.
    pub right_hand: Vec<Landmark>,
    /// 468 face-mesh landmarks, or none.
    pub face: Vec<Landmark>,
    /// How many landmarks were returned in all (543 when everything was found).
    pub landmark_count: usize,
    /// Per part: found, score, ROI.
    pub parts: Parts,
    /// The pose detector's box of the person, when one was found.
    pub person: Option<PersonBox>,
}

/// Everything one person yields: the intermediate results parsing builds on.
#[derive(Debug, Clone)]
pub struct PersonLandmarks {
    /// The pose, with its mask when asked for.
    pub pose: Pose,
    /// The person's left hand.
    pub left_hand: Option<Hand>,
    /// The person's right hand.
    pub right_hand: Option<Hand>,
    /// The face mesh.
    pub face: Option<FaceMesh>,
}

/// The holistic pipeline on loaded models. Cheap to clone; share it in an `Arc`.
#[derive(Debug, Clone)]
pub struct Holistic {
    pose: PoseEstimator,
    hands: HandTracker,
    face: FaceMesher,
}

impl Holistic {
    /// Every model it needs loaded.
    pub const MODELS: [&'static str; 6] = [
        PoseEstimator::MODELS[0],
        PoseEstimator::MODELS[1],
        HandTracker::MODELS[0],
        HandTracker::MODELS[1],
        FaceMesher::MODELS[0],
        FaceMesher::MODELS[1],
    ];

    /// Builds it on loaded models, with the engine ready to run both hands at once (on ONNX
    /// Runtime the second hand sessions cost the first request ~25 ms otherwise).
    pub fn new(models: &Models) -> Result<Self> {
        let holistic = Self {
            pose: PoseEstimator::new(models)?,
            hands: HandTracker::new(models)?,
            face: FaceMesher::new(models)?,
        };
        holistic.hands.reserve_both()?;
        Ok(holistic)
    }

    /// The pose stage, for pipelines that drive it themselves.
    pub fn pose_estimator(&self) -> &PoseEstimator {
        &self.pose
    }

    /// Hands and face for a person whose pose is known; the three run in parallel.
    ///
    /// Each hand runs on a scoped OS thread of its own and the face on the caller's: rayon's
    /// idle workers spin looking for work on the same two cores the models need (holistic's
    /// median went from 26.1–27.4 to 21.6–22.4 ms with the switch; BENCHMARKS.md).
    pub fn complete(
        &self,
        image: &RgbImage,
        pose: Pose,
        options: &HolisticOptions,
    ) -> Result<PersonLandmarks> {
        let lms = &pose.landmarks;
        let hand = |side: Side| self.hands.from_pose(image, lms, side);
        let (left, right, face) = std::thread::scope(|scope| {
            // A thread the OS refuses to start runs its hand here instead.
            let spawn = |side: Side| {
                options.hands.then(|| {
                    std::thread::Builder::new()
                        .name("percept-hand".into())
                        .spawn_scoped(scope, move || hand(side))
                        .map_err(|_| side)
                })
            };
            let (left, right) = (spawn(Side::Left), spawn(Side::Right));
            let face = if options.face {
                self.face.from_pose(image, lms)
            } else {
                Ok(None)
            };
            let finish = |started: Option<std::result::Result<_, Side>>| match started {
                None => Ok(None),
                Some(Ok(handle)) => match std::thread::ScopedJoinHandle::join(handle) {
                    Ok(found) => found,
                    // A panic stays a panic, for the caller's guard to report.
                    Err(payload) => std::panic::resume_unwind(payload),
                },
                Some(Err(side)) => hand(side),
            };
            (finish(left), finish(right), face)
        });
        Ok(PersonLandmarks {
            left_hand: left?,
            right_hand: right?,
            face: face?,
            pose,
        })
    }

    /// The best person's landmarks (MediaPipe Holistic tracks one person).
    pub fn run(&self, image: &RgbImage, options: &HolisticOptions) -> Result<HolisticResult> {
        options.validate()?;
        let (width, height) = image.dimensions();
        let mut result = HolisticResult {
            width,
            height,
            pose: Vec::new(),
            left_hand: Vec::new(),
            right_hand: Vec::new(),
            face: Vec::new(),
            landmark_count: 0,
            parts: Parts {
                pose: PartInfo::absent(),
                left_hand: PartInfo::absent(),
                right_hand: PartInfo::absent(),
                face: PartInfo::absent(),
            },
            person: None,
        };
        let people = self.pose.detect(image, options.min_detection_score)?;
        let Some(best) = people.into_iter().next() else {
            return Ok(result);
        };
        result.person = Some(person_box(&best.bbox, best.score));
        let Some(roi) = self.pose.roi(&best) else {
            return Ok(result);
        };
        let Some(pose) = self.pose.landmarks(image, &roi, false)? else {
            return Ok(result);
        };
        let person = self.complete(image, pose, options)?;
        result.parts.pose = PartInfo {
            present: true,
            score: person.pose.score,
            roi: Some(person.pose.roi.into()),
        };
        result.pose = person.pose.landmarks;
        if let Some(hand) = person.left_hand {
            result.parts.left_hand = part(hand.score, hand.roi);
            result.left_hand = hand.landmarks;
        }
        if let Some(hand) = person.right_hand {
            result.parts.right_hand = part(hand.score, hand.roi);
            result.right_hand = hand.landmarks;
        }
        if let Some(face) = person.face {
            result.parts.face = part(face.score, face.roi);
            result.face = face.landmarks;
        }
        result.landmark_count = result.pose.len()
            + result.left_hand.len()
            + result.right_hand.len()
            + result.face.len();
        Ok(result)
    }
}

fn part(score: f32, roi: percept_infer::RotatedRect) -> PartInfo {
    PartInfo {
        present: true,
        score,
        roi: Some(roi.into()),
    }
}

fn person_box(b: &BBox, score: f32) -> PersonBox {
    PersonBox {
        x: b.x,
        y: b.y,
        width: b.width,
        height: b.height,
        score,
    }
}

/// Points to draw: those the model thinks are visible (MediaPipe's drawing threshold 0.5).
fn visible(lm: &Landmark) -> bool {
    lm.visibility.unwrap_or(1.0) >= 0.5 && lm.presence.unwrap_or(1.0) >= 0.5
}

fn edges(points: &[Landmark], edges: &[(usize, usize)]) -> Vec<(Vec<(f32, f32)>, bool)> {
    edges
        .iter()
        .filter_map(|&(a, b)| {
            let (pa, pb) = (points.get(a)?, points.get(b)?);
            (visible(pa) && visible(pb)).then(|| (vec![pa.xy(), pb.xy()], false))
        })
        .collect()
}

/// Colours: the person's left side warm, right side cool, centre line white.
const LEFT: [u8; 3] = [255, 138, 0];
const RIGHT: [u8; 3] = [0, 200, 255];
const CENTRE: [u8; 3] = [255, 255, 255];
const FACE: [u8; 3] = [180, 255, 120];

/// Draws the result over `image`: skeleton, hands, face contours.
pub fn draw_holistic(image: &RgbImage, r: &HolisticResult) -> Result<RgbImage> {
    let mut canvas = Canvas::from_rgb(image)?;
    let unit = canvas.unit;
    if !r.face.is_empty() {
        let contours: Vec<(Vec<(f32, f32)>, bool)> = FACE_CONTOURS
            .iter()
            .map(|(idx, closed)| {
                (
                    idx.iter()
                        .filter_map(|&i| r.face.get(i).map(Landmark::xy))
                        .collect(),
                    *closed,
                )
            })
            .collect();
        canvas.polylines(&contours, FACE, unit * 0.6);
    }
    if !r.pose.is_empty() {
        let side = |a: usize, b: usize| -> u8 {
            // Odd indices above 0 are the person's left, even ones the right (MediaPipe order).
            let l = |i: usize| i > 0 && i % 2 == 1;
            let rt = |i: usize| i > 0 && i.is_multiple_of(2);
            match (l(a) && l(b), rt(a) && rt(b)) {
                (true, _) => 0,
                (_, true) => 1,
                _ => 2,
            }
        };
        for (which, colour) in [(0, LEFT), (1, RIGHT), (2, CENTRE)] {
            let chosen: Vec<(usize, usize)> = POSE_EDGES
                .iter()
                .copied()
                .filter(|&(a, b)| side(a, b) == which)
                .filter(|&(a, b)| a > 10 || b > 10)
                .collect();
            canvas.polylines(&edges(&r.pose, &chosen), colour, unit * 1.2);
        }
        let points: Vec<(f32, f32)> = r
            .pose
            .iter()
            .enumerate()
            .filter(|(i, lm)| *i > 10 && visible(lm))
            .map(|(_, lm)| lm.xy())
            .collect();
        canvas.dots(&points, CENTRE, unit * 1.4);
    }
    for (hand, colour) in [(&r.left_hand, LEFT), (&r.right_hand, RIGHT)] {
        if hand.is_empty() {
            continue;
        }
        canvas.polylines(&edges(hand, &HAND_EDGES), colour, unit * 0.8);
        let points: Vec<(f32, f32)> = hand.iter().map(Landmark::xy).collect();
        canvas.dots(&points, CENTRE, unit * 0.9);
    }
    Ok(canvas.into_rgb())
}
