//! The people stage: everyone in a photo, found once and shared by the tasks that work per
//! person (parsing labels each one, holistic tracks each one). The pose detector on the whole
//! photo finds about one person in three on group photos, so faces it left unexplained seed
//! searches of their own; duplicates, faces claimed twice and poses stitched from two people
//! are dropped.

use image::RgbImage;
use percept_infer::{BBox, Models, RotatedRect};
use rayon::prelude::*;
use serde::Serialize;

use crate::pose::point as pt;
use crate::{
    DetectOptions, FastFaceDetector, Landmark, PersonDetection, Pose, PoseEstimator, PoseModel,
    Result,
};

/// A box in image pixels.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct PixelBox {
    /// Left edge.
    pub x: u32,
    /// Top edge.
    pub y: u32,
    /// Width.
    pub width: u32,
    /// Height.
    pub height: u32,
}

/// The same pixels as a sub-pixel box (a person box when the pose detector gave none).
impl From<PixelBox> for BBox {
    fn from(b: PixelBox) -> Self {
        BBox {
            x: b.x as f32,
            y: b.y as f32,
            width: b.width as f32,
            height: b.height as f32,
        }
    }
}

impl PixelBox {
    /// The box around `points`, clipped to a `width` × `height` photo; `None` without points
    /// inside it.
    pub fn around(
        points: impl IntoIterator<Item = (f32, f32)>,
        width: u32,
        height: u32,
    ) -> Option<Self> {
        let (mut x0, mut y0, mut x1, mut y1) = (f32::MAX, f32::MAX, f32::MIN, f32::MIN);
        for (x, y) in points {
            let (x, y) = (x.clamp(0.0, width as f32), y.clamp(0.0, height as f32));
            (x0, y0, x1, y1) = (x0.min(x), y0.min(y), x1.max(x), y1.max(y));
        }
        (x1 > x0 && y1 > y0).then(|| Self {
            x: x0.floor() as u32,
            y: y0.floor() as u32,
            width: (x1.ceil() - x0.floor()) as u32,
            height: (y1.ceil() - y0.floor()) as u32,
        })
    }

    /// Its area in pixels.
    pub fn area(&self) -> u64 {
        u64::from(self.width) * u64::from(self.height)
    }
}

/// What led to a person.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seed {
    /// The pose detector on the whole photo.
    Pose,
    /// A face the whole-photo detection left unexplained, searched around.
    Face,
    /// Followed from the previous video frame's pose (no detection ran).
    Tracked,
}

impl Seed {
    /// The name results report (`seed` in parse's per-person JSON).
    pub fn name(self) -> &'static str {
        match self {
            Self::Pose => "pose",
            Self::Face => "face",
            Self::Tracked => "tracked",
        }
    }
}

/// One person the stage found.
#[derive(Debug, Clone)]
pub struct Person {
    /// The pose landmark model's answer on the person's ROI (its `roi` is where the person's
    /// crops come from).
    pub pose: Pose,
    /// What led to them.
    pub seed: Seed,
    /// The whole-photo detection, for people seeded by it.
    pub detection: Option<PersonDetection>,
}

/// The people stage on loaded models. Cheap to clone.
#[derive(Debug, Clone)]
pub struct People {
    pose: PoseEstimator,
    /// BlazeFace full-range on the whole photo: people seeds only need faces of ≥ ~12 px, and
    /// at 192² it runs 13× (tract) to 21× (ONNX Runtime) faster than CenterFace at 640²
    /// (BENCHMARKS.md, "Model engines").
    faces: FastFaceDetector,
}

impl People {
    /// Every model it needs loaded.
    pub const MODELS: [&'static str; 3] = [
        PoseEstimator::MODELS[0],
        PoseEstimator::MODELS[1],
        FastFaceDetector::MODEL,
    ];

    /// Builds it on loaded models.
    pub fn new(models: &Models) -> Result<Self> {
        Ok(Self {
            pose: PoseEstimator::new(models)?,
            faces: FastFaceDetector::new(models)?,
        })
    }

    /// The best person only, as MediaPipe finds them: the whole-photo detector's surest
    /// detection and its landmarks by `model` (no face search: the cost of `max_people = 1`).
    pub fn best(
        &self,
        image: &RgbImage,
        min_score: f32,
        model: PoseModel,
    ) -> Result<Option<Person>> {
        match self.pose.detect(image, min_score)?.into_iter().next() {
            Some(det) => self.detected(image, det, model),
            None => Ok(None),
        }
    }

    /// The person in `roi` (the crop the previous video frame's pose gave), when the landmark
    /// model still finds someone there: MediaPipe's tracking mode, no detector run.
    pub fn follow(
        &self,
        image: &RgbImage,
        roi: &RotatedRect,
        model: PoseModel,
    ) -> Result<Option<Person>> {
        Ok(self.pose.landmarks(image, roi, model)?.map(|pose| Person {
            pose,
            seed: Seed::Tracked,
            detection: None,
        }))
    }

    /// The person whose head is `heads[i]` (the others' heads greyed out), searched around it
    /// as for a face the whole-photo detector left unexplained: how a tracked person whose
    /// crop settled on a neighbour is found again without a whole-photo search.
    pub fn around_head(
        &self,
        image: &RgbImage,
        heads: &[percept_infer::BBox],
        i: usize,
        min_score: f32,
        model: PoseModel,
    ) -> Result<Option<Person>> {
        if i >= heads.len() {
            return Ok(None);
        }
        self.around_face(image, heads, i, min_score, model)
    }

    /// The person a whole-photo detection stands for: the landmarks on its ROI, when the
    /// landmark model agrees someone is there.
    fn detected(
        &self,
        image: &RgbImage,
        det: PersonDetection,
        model: PoseModel,
    ) -> Result<Option<Person>> {
        let Some(roi) = self.pose.roi(&det) else {
            return Ok(None);
        };
        Ok(self.pose.landmarks(image, &roi, model)?.map(|pose| Person {
            pose,
            seed: Seed::Pose,
            detection: Some(det),
        }))
    }

    /// Everyone the pose detector finds on the whole photo, plus people found in crops around
    /// faces it missed (on group photos it finds about one person in three), at most
    /// `max_people`, surest pose first; landmarks (and masks) by `model`.
    pub fn find(
        &self,
        image: &RgbImage,
        min_score: f32,
        max_people: usize,
        model: PoseModel,
    ) -> Result<Vec<Person>> {
        Ok(self
            .find_beside(image, min_score, max_people, model, Vec::new())?
            .into_iter()
            .map(|(person, _)| person)
            .collect())
    }

    /// [`People::find`] beside `known` people (a video's people followed from the last frame):
    /// their faces need no search, and they go through the same checks as the people found
    /// here, so a followed pose that drifted between two people (its nose on nobody's face)
    /// gives way to the people the detectors found, as a ghost does on a photo. Each person
    /// comes with the index in `known` it came from; when a found person and a known one are
    /// the same, the surer pose stays and keeps the known one's index.
    pub fn find_beside(
        &self,
        image: &RgbImage,
        min_score: f32,
        max_people: usize,
        model: PoseModel,
        known: Vec<Person>,
    ) -> Result<Vec<(Person, Option<usize>)>> {
        let mut found: Vec<(Person, Option<usize>)> = known
            .into_iter()
            .enumerate()
            .map(|(i, p)| (p, Some(i)))
            .collect();
        for det in self.pose.detect(image, min_score)? {
            found.extend(self.detected(image, det, model)?.map(|p| (p, None)));
        }
        let faces: Vec<percept_infer::BBox> = self
            .faces
            .detections(image, min_score.max(0.5), DetectOptions::default().nms_iou)?
            .into_iter()
            .map(|d| d.bbox)
            .collect();
        // Faces no pose explains are searched around, each on its own (in parallel: every
        // search runs the detector and landmark model, and people go to the two cores).
        let unexplained: Vec<usize> = (0..faces.len())
            .filter(|&i| {
                let b = &faces[i];
                let size = b.width.max(b.height);
                let centre = (b.x + b.width / 2.0, b.y + b.height / 2.0);
                let explained = found.iter().any(|(c, _)| {
                    let nose = c.pose.landmarks[pt::NOSE];
                    (nose.x - centre.0).hypot(nose.y - centre.1) < 0.8 * size
                });
                !explained && size >= 12.0
            })
            .collect();
        let searched: Vec<Option<Person>> = unexplained
            .par_iter()
            .map(|&i| self.around_face(image, &faces, i, min_score, model))
            .collect::<Result<_>>()?;
        found.extend(searched.into_iter().flatten().map(|p| (p, None)));
        // The same person found twice (two detections, or a face crop) keeps the surer pose;
        // a face belongs to one person; a pose whose nose sits next to someone else's face
        // but on none is a ghost stitched from two people.
        found.sort_by(|a, b| b.0.pose.score.total_cmp(&a.0.pose.score));
        let face_of = |c: &Person, reach: f32| -> Option<usize> {
            let n = c.pose.landmarks[pt::NOSE];
            faces
                .iter()
                .enumerate()
                .map(|(i, f)| {
                    let size = f.width.max(f.height);
                    let (cx, cy) = (f.x + f.width / 2.0, f.y + f.height / 2.0);
                    (i, (n.x - cx).hypot(n.y - cy) / size)
                })
                .filter(|&(_, d)| d < reach)
                .min_by(|a, b| a.1.total_cmp(&b.1))
                .map(|(i, _)| i)
        };
        let mut kept: Vec<(Person, Option<usize>)> = Vec::new();
        let mut claimed: Vec<usize> = Vec::new();
        for (c, known) in found {
            let n = c.pose.landmarks[pt::NOSE];
            let dup = kept.iter().position(|(k, _)| {
                let m = k.pose.landmarks[pt::NOSE];
                (n.x - m.x).hypot(n.y - m.y) < 0.5 * head_size(&k.pose.landmarks)
            });
            if let Some(d) = dup {
                // The surer pose of one person stays, under the track it came with.
                if kept[d].1.is_none() {
                    kept[d].1 = known;
                }
                continue;
            }
            let own = face_of(&c, 0.8);
            let taken = match own {
                Some(f) => claimed.contains(&f),
                None => face_of(&c, 1.5).is_some_and(|f| claimed.contains(&f)),
            };
            // CenterFace finds faces the pose calls clearly visible: a visible nose with no
            // face under it belongs to a pose stitched from several people's parts.
            let ghost = own.is_none()
                && !faces.is_empty()
                && n.visibility.unwrap_or(0.0) > 0.8
                && n.presence.unwrap_or(0.0) > 0.8;
            if taken || ghost || kept.len() >= max_people {
                continue;
            }
            if let Some(f) = own {
                claimed.push(f);
            }
            kept.push((c, known));
        }
        Ok(kept)
    }

    /// The person whose face is `faces[i]`, searched for below it (the other faces greyed
    /// out), when a pose there puts its nose on that face.
    fn around_face(
        &self,
        image: &RgbImage,
        faces: &[percept_infer::BBox],
        i: usize,
        min_score: f32,
        model: PoseModel,
    ) -> Result<Option<Person>> {
        let pose = &self.pose;
        let b = &faces[i];
        let size = b.width.max(b.height);
        let centre = (b.x + b.width / 2.0, b.y + b.height / 2.0);
        // The pose detector anchors on heads: around this face it would lock onto a
        // neighbour whose body it sees better, so the other faces are greyed out first.
        let image = &hide_faces(image, faces, i);
        // A person stands or sits below their face: squares of ~7 face heights around
        // the body, then a tighter one for people cut by the frame or by their neighbours.
        // The face already says someone is there, so the detector's bar is lower.
        for (side, below) in [(7.0, 2.5), (4.5, 1.5), (10.0, 3.5)] {
            let region = RotatedRect {
                cx: centre.0,
                cy: centre.1 + below * size,
                width: side * size,
                height: side * size,
                rotation: 0.0,
            };
            let rois: Vec<RotatedRect> = pose
                .detect_in(image, &region, 0.5 * min_score)?
                .iter()
                .filter_map(|det| pose.roi(det))
                .collect();
            // A pose found around the face is that face's person when its nose is on it.
            let of_face = |p: Pose| {
                let nose = p.landmarks[pt::NOSE];
                ((nose.x - centre.0).hypot(nose.y - centre.1) < 0.8 * size).then_some(Person {
                    pose: p,
                    seed: Seed::Face,
                    detection: None,
                })
            };
            for roi in rois {
                if let Some(person) = pose.landmarks(image, &roi, model)?.and_then(of_face) {
                    return Ok(Some(person));
                }
            }
            if side > 9.0 {
                // Last resort when the detector sees nobody around the face (a crowd
                // hides the body's outline): the landmark model on the ROI a standing
                // person with this face would have (hips ~3 face heights below it).
                let roi = RotatedRect {
                    cx: centre.0,
                    cy: centre.1 + 3.0 * size,
                    width: 9.0 * size,
                    height: 9.0 * size,
                    rotation: 0.0,
                };
                return Ok(pose.landmarks(image, &roi, model)?.and_then(of_face));
            }
        }
        Ok(None)
    }
}

/// A copy of `image` with every face but `keep` painted mid-grey (boxes grown by a quarter).
pub(crate) fn hide_faces(image: &RgbImage, faces: &[percept_infer::BBox], keep: usize) -> RgbImage {
    let mut out = image.clone();
    let (w, h) = image.dimensions();
    for (i, f) in faces.iter().enumerate() {
        if i == keep {
            continue;
        }
        let (gx, gy) = (0.125 * f.width, 0.125 * f.height);
        let clip = |v: f32, max: u32| v.clamp(0.0, max as f32) as u32;
        let (x0, x1) = (clip(f.x - gx, w), clip(f.x + f.width + gx, w));
        let (y0, y1) = (clip(f.y - gy, h), clip(f.y + f.height + gy, h));
        for y in y0..y1 {
            for x in x0..x1 {
                out.put_pixel(x, y, image::Rgb([128, 128, 128]));
            }
        }
    }
    out
}

/// A head size from the pose: ear to ear, or a multiple of the eye distance when an ear is
/// hidden.
pub(crate) fn head_size(lms: &[Landmark]) -> f32 {
    let d = |a: usize, b: usize| (lms[a].x - lms[b].x).hypot(lms[a].y - lms[b].y);
    d(pt::LEFT_EAR, pt::RIGHT_EAR)
        .max(2.2 * d(pt::LEFT_EYE, pt::RIGHT_EYE))
        .max(4.0)
}
