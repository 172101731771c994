//! Holistic tracking (MediaPipe Holistic's graph on one photo) for every person the people
//! stage finds: each person's 33 pose landmarks, then both hands and the face mesh from ROIs
//! the pose gives — 543 points a person. MediaPipe tracks one person; `max_people = 1` is that
//! behaviour and cost.

use image::{GrayImage, RgbImage};
use percept_infer::{BBox, Models};
use rayon::prelude::*;
use serde::Serialize;

use crate::draw::Canvas;
use crate::face_mesh::{FaceMesh, FaceMesher};
use crate::hands::{Hand, HandTracker, Side};
use crate::iris::IrisFinder;
use crate::landmarks::Roi;
use crate::people::{People, Person, PixelBox};
use crate::pose::{CropMask, Pose, PoseEstimator, PoseModel};
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
    /// Track at most this many people, most prominent first (1..=20). 1 is MediaPipe's
    /// behaviour and cost: the detector's surest person, no search around other faces.
    pub max_people: usize,
    /// MediaPipe's `model_complexity`: 0 = BlazePose lite, 1 = full.
    pub model_complexity: u8,
    /// MediaPipe's `refine_face_landmarks`: 478 face points, the irises added.
    pub refine_face_landmarks: bool,
    /// MediaPipe's `enable_segmentation`: the person mask from the pose landmark model (its
    /// mask head, otherwise cut off for speed), every tracked person in one photo-sized mask.
    pub enable_segmentation: bool,
}

impl Default for HolisticOptions {
    fn default() -> Self {
        Self {
            min_detection_score: 0.5,
            hands: true,
            face: true,
            max_people: 10,
            model_complexity: 1,
            refine_face_landmarks: false,
            enable_segmentation: false,
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
        if self.model_complexity > 1 {
            return Err(VisionError::BadOption(format!(
                "model_complexity must be 0 (lite) or 1 (full), got {}",
                self.model_complexity
            )));
        }
        if !(1..=20).contains(&self.max_people) {
            return Err(VisionError::BadOption(format!(
                "max_people must be in 1..=20, got {}",
                self.max_people
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

/// The person box as the API reports it: `{x, y, width, height, score}`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct PersonBox {
    /// In photo pixels.
    #[serde(flatten)]
    pub bbox: BBox,
    /// Pose-detector confidence.
    pub score: f32,
}

/// One person's landmarks by part.
#[derive(Debug, Clone, Default, Serialize)]
pub struct BodyLandmarks {
    /// 33 pose landmarks (with visibility and presence).
    pub pose: Vec<Landmark>,
    /// 21 landmarks of the person's left hand, or none.
    pub left_hand: Vec<Landmark>,
    /// 21 landmarks of the person's right hand, or none.
    pub right_hand: Vec<Landmark>,
    /// 468 face-mesh landmarks, or none.
    pub face: Vec<Landmark>,
    /// How many landmarks this person has (543 when everything was found).
    pub landmark_count: usize,
    /// Per part: found, score, ROI.
    pub parts: Parts,
}

/// One tracked person: up to 543 landmarks (a missing part is an empty list, never invented
/// points).
#[derive(Debug, Clone, Serialize)]
pub struct HolisticPerson {
    /// Position in `people` (0 = the most prominent, the one the top-level fields repeat).
    pub index: usize,
    /// Box of the person's landmarks, clipped to the photo.
    pub bbox: PixelBox,
    /// The pose model's person-presence probability.
    pub score: f32,
    /// How the person was found: `pose` (whole-photo detector) or `face` (a search around a
    /// face the detector missed).
    pub seed: &'static str,
    /// Their landmarks (flattened into the person's JSON).
    #[serde(flatten)]
    pub landmarks: BodyLandmarks,
}

/// Everyone's landmarks; the top-level landmark fields hold the most prominent person's, as
/// before multi-person tracking, so single-person clients keep working.
#[derive(Debug, Clone, Serialize)]
pub struct HolisticResult {
    /// Photo width.
    pub width: u32,
    /// Photo height.
    pub height: u32,
    /// The most prominent person's landmarks (flattened into the top level; all empty when
    /// nobody was found).
    #[serde(flatten)]
    pub landmarks: BodyLandmarks,
    /// The most prominent person's pose-detector box (their landmarks' box and pose score
    /// when a face search found them), when someone was found.
    pub person: Option<PersonBox>,
    /// How many people were tracked.
    pub person_count: usize,
    /// Every person tracked, most prominent (largest) first.
    pub people: Vec<HolisticPerson>,
    /// With `enable_segmentation`: the photo-sized person mask, 0–255 for probability 0–1,
    /// each pixel the most any tracked person's mask gives it (encoded by the caller).
    #[serde(skip)]
    pub segmentation_mask: Option<GrayImage>,
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
    people: People,
    hands: HandTracker,
    face: FaceMesher,
    /// When its model is loaded (the parser builds on holistic without it).
    iris: Option<IrisFinder>,
}

impl Holistic {
    /// Every model it needs loaded.
    pub const MODELS: [&'static str; 11] = [
        People::MODELS[0],
        People::MODELS[1],
        People::MODELS[2],
        HandTracker::MODELS[0],
        HandTracker::MODELS[1],
        FaceMesher::MODELS[0],
        FaceMesher::MODELS[1],
        // `model_complexity = 0`.
        PoseEstimator::LITE_MODEL,
        // `refine_face_landmarks`.
        IrisFinder::MODELS[0],
        // `enable_segmentation`, at complexity 1 and 0.
        PoseEstimator::MASK_MODEL,
        PoseEstimator::LITE_MASK_MODEL,
    ];

    /// Builds it on loaded models, with the engine ready to run both hands at once (on ONNX
    /// Runtime the second hand sessions cost the first request ~25 ms otherwise).
    pub fn new(models: &Models) -> Result<Self> {
        let holistic = Self {
            people: People::new(models)?,
            hands: HandTracker::new(models)?,
            face: FaceMesher::new(models)?,
            iris: match models.get(IrisFinder::MODELS[0]) {
                Ok(_) => Some(IrisFinder::new(models)?),
                Err(_) => None,
            },
        };
        holistic.hands.reserve_both()?;
        Ok(holistic)
    }

    /// The people stage.
    pub fn people(&self) -> &People {
        &self.people
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
                self.face.from_pose(image, lms).and_then(|mesh| match mesh {
                    Some(mesh) if options.refine_face_landmarks => self.refine(image, mesh),
                    mesh => Ok(mesh),
                })
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

    /// The mesh with both irises added (478 points); unchanged when no eye can be cropped.
    fn refine(&self, image: &RgbImage, mut mesh: FaceMesh) -> Result<Option<FaceMesh>> {
        let iris = self.iris.as_ref().ok_or_else(|| {
            VisionError::Output(format!(
                "refine_face_landmarks needs {} loaded",
                IrisFinder::MODELS[0]
            ))
        })?;
        if let Some(irises) = iris.irises(image, &mesh.landmarks)? {
            mesh.landmarks.extend(irises);
        }
        Ok(Some(mesh))
    }

    /// Every person's landmarks (at most `options.max_people`), people spread over the cores.
    pub fn run(&self, image: &RgbImage, options: &HolisticOptions) -> Result<HolisticResult> {
        options.validate()?;
        let found = self.find(image, options)?;
        let mask = segmentation(&found, image, options);
        let people = self.landmarks_of(image, found, options)?;
        Ok(result_of(image, people, mask))
    }

    /// The people a photo's detectors find (at most `options.max_people`), with their poses.
    pub(crate) fn find(&self, image: &RgbImage, options: &HolisticOptions) -> Result<Vec<Person>> {
        let score = options.min_detection_score;
        let model =
            PoseModel::for_complexity(options.model_complexity, options.enable_segmentation);
        if options.max_people == 1 {
            Ok(self.people.best(image, score, model)?.into_iter().collect())
        } else {
            self.people.find(image, score, options.max_people, model)
        }
    }

    /// Hands and face for each person, in `found`'s order; people spread over the cores.
    pub(crate) fn landmarks_of(
        &self,
        image: &RgbImage,
        found: Vec<Person>,
        options: &HolisticOptions,
    ) -> Result<Vec<Tracked>> {
        // Each person's pose goes on to their hands and face; what found them stays beside.
        let track = |mut p: Person| -> Result<Tracked> {
            let detection = p.detection.as_ref().map(|d| PersonBox {
                bbox: d.bbox,
                score: d.score,
            });
            // Drawn into the segmentation mask already; not carried further.
            p.pose.mask = None;
            let landmarks = self.complete(image, p.pose, options)?;
            Ok(Tracked {
                detection,
                seed: p.seed.name(),
                landmarks,
            })
        };
        // One person keeps the caller's thread (its hands already run beside the face).
        if found.len() > 1 {
            found.into_par_iter().map(track).collect()
        } else {
            found.into_iter().map(track).collect()
        }
    }
}

/// One person's landmarks with what found them, before they are ordered into a result.
#[derive(Debug, Clone)]
pub(crate) struct Tracked {
    /// The whole-photo detection, for people it found.
    pub(crate) detection: Option<PersonBox>,
    /// How they were found (`seed` in the JSON).
    pub(crate) seed: &'static str,
    /// Their pose, hands and face.
    pub(crate) landmarks: PersonLandmarks,
}

/// With `enable_segmentation`: the photo-sized mask of every found person's crop mask.
pub(crate) fn segmentation(
    found: &[Person],
    image: &RgbImage,
    options: &HolisticOptions,
) -> Option<GrayImage> {
    let (width, height) = image.dimensions();
    options.enable_segmentation.then(|| {
        let masks: Vec<&CropMask> = found.iter().filter_map(|p| p.pose.mask.as_ref()).collect();
        person_mask(&masks, width, height)
    })
}

/// The result: people ordered most prominent (largest) first, the first repeated at the top.
pub(crate) fn result_of(
    image: &RgbImage,
    people: Vec<Tracked>,
    segmentation_mask: Option<GrayImage>,
) -> HolisticResult {
    let (width, height) = image.dimensions();
    let mut people: Vec<(Option<PersonBox>, HolisticPerson)> = people
        .into_iter()
        .map(|t| {
            (
                t.detection,
                holistic_person(t.seed, t.landmarks, width, height),
            )
        })
        .collect();
    // Most prominent first: the largest person (a tie keeps the surer pose first).
    people.sort_by_key(|(_, p)| std::cmp::Reverse(p.bbox.area()));
    for (i, (_, p)) in people.iter_mut().enumerate() {
        p.index = i;
    }
    let mut result = HolisticResult {
        width,
        height,
        landmarks: BodyLandmarks::default(),
        person: None,
        person_count: people.len(),
        people: Vec::new(),
        segmentation_mask,
    };
    if let Some((detection, first)) = people.first() {
        result.landmarks = first.landmarks.clone();
        result.person = Some(detection.unwrap_or(PersonBox {
            bbox: first.bbox.into(),
            score: first.score,
        }));
    }
    result.people = people.into_iter().map(|(_, p)| p).collect();
    result
}

impl Default for Parts {
    /// Nothing found.
    fn default() -> Self {
        Self {
            pose: PartInfo::absent(),
            left_hand: PartInfo::absent(),
            right_hand: PartInfo::absent(),
            face: PartInfo::absent(),
        }
    }
}

/// One person's JSON (index set by the caller once people are ordered).
fn holistic_person(
    seed: &'static str,
    person: PersonLandmarks,
    width: u32,
    height: u32,
) -> HolisticPerson {
    let mut parts = Parts {
        pose: part(person.pose.score, person.pose.roi),
        ..Parts::default()
    };
    let score = person.pose.score;
    let pose = person.pose.landmarks;
    let (mut left_hand, mut right_hand, mut face) = (Vec::new(), Vec::new(), Vec::new());
    if let Some(hand) = person.left_hand {
        parts.left_hand = part(hand.score, hand.roi);
        left_hand = hand.landmarks;
    }
    if let Some(hand) = person.right_hand {
        parts.right_hand = part(hand.score, hand.roi);
        right_hand = hand.landmarks;
    }
    if let Some(mesh) = person.face {
        parts.face = part(mesh.score, mesh.roi);
        face = mesh.landmarks;
    }
    // The box of what the models place on the person: pose points they call present (a
    // person cut by the frame has the rest guessed outside it), hands and face.
    let points = pose
        .iter()
        .filter(|lm| lm.presence.unwrap_or(1.0) >= 0.5)
        .chain(left_hand.iter())
        .chain(right_hand.iter())
        .chain(face.iter())
        .map(Landmark::xy);
    let bbox = PixelBox::around(points, width, height).unwrap_or_default();
    HolisticPerson {
        index: 0,
        bbox,
        score,
        seed,
        landmarks: BodyLandmarks {
            landmark_count: pose.len() + left_hand.len() + right_hand.len() + face.len(),
            pose,
            left_hand,
            right_hand,
            face,
            parts,
        },
    }
}

/// One photo-sized mask from every person's crop mask (the largest probability at each
/// pixel), as MediaPipe's `segmentation_mask` scaled to 0–255. Each crop only touches the
/// pixels its rotated rectangle covers, rows spread over the cores (a person filling a
/// 1280×720 photo is ~0.9 M bilinear samples).
fn person_mask(masks: &[&CropMask], width: u32, height: u32) -> GrayImage {
    let mut out = GrayImage::new(width, height);
    for mask in masks {
        let Ok(inverse) = mask.to_image.inverse() else {
            continue;
        };
        let (mw, mh) = (mask.width as f32, mask.height as f32);
        let corners =
            [(0.0, 0.0), (mw, 0.0), (0.0, mh), (mw, mh)].map(|(u, v)| mask.to_image.apply(u, v));
        let Some(area) = PixelBox::around(corners, width, height) else {
            continue;
        };
        let (x0, x1) = (area.x, (area.x + area.width).min(width));
        out.par_chunks_mut(width as usize)
            .enumerate()
            .skip(area.y as usize)
            .take(area.height as usize)
            .for_each(|(y, row)| {
                // Along a row the crop coordinates move by a constant step.
                let (mut u, mut v) = inverse.apply(x0 as f32 + 0.5, y as f32 + 0.5);
                let (du, dv) = (inverse.m[0][0], inverse.m[1][0]);
                for pixel in row.iter_mut().take(x1 as usize).skip(x0 as usize) {
                    let p = mask.at_crop(u, v);
                    *pixel = (*pixel).max((p.clamp(0.0, 1.0) * 255.0).round() as u8);
                    u += du;
                    v += dv;
                }
            });
    }
    out
}

fn part(score: f32, roi: percept_infer::RotatedRect) -> PartInfo {
    PartInfo {
        present: true,
        score,
        roi: Some(roi.into()),
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

/// Draws the result over `image`: every person's skeleton, hands and face contours.
pub fn draw_holistic(image: &RgbImage, r: &HolisticResult) -> Result<RgbImage> {
    let mut canvas = Canvas::from_rgb(image)?;
    for person in &r.people {
        draw_person(&mut canvas, person);
    }
    Ok(canvas.into_rgb())
}

fn draw_person(canvas: &mut Canvas, person: &HolisticPerson) {
    let r = &person.landmarks;
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
}
