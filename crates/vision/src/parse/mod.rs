//! Multi-person human parsing with LIP's labels. People are found by the pose detector (and
//! around faces it misses); then, per person, either
//! - `learned` (the default): the trained parsing network on the pose stage's rotated crop
//!   (`network`), its label probabilities sampled back into the photo, or
//! - `pose-guided`: BlazePose's person mask, the face mesh and a skin model from the face, each
//!   mask pixel labelled from the skeleton part it belongs to and whether it looks like skin.
//!
//! A pixel two people claim goes to the one whose skeleton is nearer.

mod colour;
mod geometry;
mod labels;
mod learned;
mod network;

use image::{GrayImage, Luma, Rgb, RgbImage, imageops};
use percept_infer::{Affine, Models};
use rayon::prelude::*;
use serde::Serialize;

pub use crate::people::PixelBox;
use crate::people::head_size;
use crate::pose::point as pt;
use crate::topology::{FACE_OVAL, mesh_point};
use crate::{
    CropMask, Holistic, HolisticOptions, Landmark, PersonLandmarks, PoseModel, Result, VisionError,
};
use colour::{LabImage, SkinModel};
use geometry::{covered_box, inside_polygon, polygon_distance, segment_distance};
use labels::id;
pub use labels::{LABELS, PaletteEntry, colour as label_colour, palette};
pub use learned::TASK as LEARNED_TASK;
use learned::{LearnedLabels, LearnedParser};
pub use network::TASK as NETWORK_TASK;
use network::{CropParse, PersonParser, Skeleton};

/// Which labeller runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ParserChoice {
    /// A trained network: the manifest's whole-photo parsing network when one is declared
    /// (the learned-model slot), else the shipped per-person network; the pose-guided rules
    /// when neither is loaded (the result's `parser` says which ran).
    #[default]
    Learned,
    /// The pose-guided rules (skeleton geometry and skin colour).
    PoseGuided,
}

impl ParserChoice {
    /// The option's values, default first.
    pub const NAMES: [&'static str; 2] = ["learned", "pose-guided"];

    /// From the option's value.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "learned" => Some(Self::Learned),
            "pose-guided" => Some(Self::PoseGuided),
            _ => None,
        }
    }
}

/// How the parser runs.
#[derive(Debug, Clone, PartialEq)]
pub struct ParseOptions {
    /// At most this many people are parsed, the most confident first (1..=20).
    pub max_persons: usize,
    /// Minimum confidence of a person or face detection that seeds a person, [0.05, 1].
    pub min_score: f32,
    /// Photos are parsed at most this long side (the label map is scaled back), 256..=2048.
    pub work_side: u32,
    /// Which labeller runs.
    pub parser: ParserChoice,
}

impl Default for ParseOptions {
    fn default() -> Self {
        Self {
            max_persons: 10,
            min_score: 0.5,
            work_side: 1024,
            parser: ParserChoice::Learned,
        }
    }
}

impl ParseOptions {
    /// Checks every field's range.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(VisionError::BadOption(m));
        if !(1..=20).contains(&self.max_persons) {
            return bad(format!(
                "max_persons must be in 1..=20, got {}",
                self.max_persons
            ));
        }
        if !(0.05..=1.0).contains(&self.min_score) {
            return bad(format!(
                "min_score must be in [0.05, 1], got {}",
                self.min_score
            ));
        }
        if !(256..=2048).contains(&self.work_side) {
            return bad(format!(
                "work_side must be in 256..=2048, got {}",
                self.work_side
            ));
        }
        Ok(())
    }
}

/// One parsed person.
#[derive(Debug, Clone, Serialize)]
pub struct ParsedPerson {
    /// Index used by `segments[].person`.
    pub index: usize,
    /// Box of the person's labelled pixels.
    pub bbox: PixelBox,
    /// The pose model's person-presence probability.
    pub score: f32,
    /// How the person was found: `pose` (whole-photo detector) or `face` (a crop around a face).
    pub seed: &'static str,
    /// Pixels labelled for this person.
    pub pixel_count: u64,
}

/// One (person, label) region.
#[derive(Debug, Clone, Serialize)]
pub struct Segment {
    /// LIP label name.
    pub label: &'static str,
    /// Label value in the mask.
    pub label_index: u8,
    /// Mean per-pixel evidence (person-mask probability × how clearly the pixel's colour and
    /// place fit the label), in [0, 1].
    pub confidence: f32,
    /// Pixels with this label for this person.
    pub pixel_count: u64,
    /// Their box.
    pub bbox: PixelBox,
    /// The person (`persons[].index`).
    pub person: usize,
}

/// The JSON part of a parse.
#[derive(Debug, Clone, Serialize)]
pub struct ParseResult {
    /// Photo width.
    pub width: u32,
    /// Photo height.
    pub height: u32,
    /// Which parser produced the labels: `learned:<manifest name>` (the shipped per-person
    /// network, or a whole-photo network the manifest declares) or `pose-guided`.
    pub parser: String,
    /// People found, most confident first.
    pub persons: Vec<ParsedPerson>,
    /// Labelled regions, by person then label.
    pub segments: Vec<Segment>,
    /// Label colours, for a legend.
    pub palette: Vec<PaletteEntry>,
}

/// A parse: the JSON part and the label map (one label value per pixel, photo size).
#[derive(Debug, Clone)]
pub struct Parsed {
    /// Persons, segments, palette.
    pub result: ParseResult,
    /// Label values (see [`LABELS`]).
    pub labels: GrayImage,
}

/// The parser on loaded models. Cheap to clone; share it in an `Arc`.
#[derive(Debug, Clone)]
pub struct Parser {
    /// The people stage and the per-person landmark models.
    holistic: Holistic,
    /// The learned-model slot, when the manifest declares a whole-photo parsing network.
    learned: Option<LearnedParser>,
    /// The per-person parsing network, when loaded.
    network: Option<PersonParser>,
}

/// Who labels the pixels of a parse.
enum Labeller<'a> {
    /// The whole-photo network the manifest declares.
    Slot(&'a LearnedParser),
    /// The per-person network.
    Network(&'a PersonParser),
    /// The pose-guided rules.
    Rules,
}

impl Parser {
    /// The shipped per-person parsing network.
    pub const NETWORK_MODEL: &'static str = "lip_parser";

    /// Every model it needs loaded for both parsers.
    pub const MODELS: [&'static str; 9] = [
        Holistic::MODELS[0],
        // The landmark model without its mask head: the learned parser's poses.
        Holistic::MODELS[1],
        // The landmark model with the person mask: the pose-guided parser's masks.
        crate::PoseEstimator::MASK_MODEL,
        // The people stage's face detector.
        Holistic::MODELS[2],
        Holistic::MODELS[3],
        Holistic::MODELS[4],
        Holistic::MODELS[5],
        Holistic::MODELS[6],
        Self::NETWORK_MODEL,
    ];

    /// Builds it on loaded models. Without [`Parser::NETWORK_MODEL`] (or a declared
    /// whole-photo network) only the pose-guided rules can run.
    pub fn new(models: &Models) -> Result<Self> {
        let network = PersonParser::find(models)?;
        if let Some(net) = &network {
            // People are parsed two at a time (rayon); the second session is built now, not
            // on the first group photo.
            net.reserve(2)?;
        }
        Ok(Self {
            holistic: Holistic::new(models)?,
            learned: LearnedParser::find(models)?,
            network,
        })
    }

    /// The labeller `choice` resolves to with the models loaded: a declared whole-photo
    /// network, else the per-person network, else the rules.
    fn labeller(&self, choice: ParserChoice) -> Labeller<'_> {
        match (choice, &self.learned, &self.network) {
            (ParserChoice::Learned, Some(slot), _) => Labeller::Slot(slot),
            (ParserChoice::Learned, None, Some(net)) => Labeller::Network(net),
            _ => Labeller::Rules,
        }
    }

    /// The result's `parser` value for `choice` with the models loaded.
    pub fn resolve(&self, choice: ParserChoice) -> String {
        match self.labeller(choice) {
            Labeller::Slot(slot) => format!("learned:{}", slot.name()),
            Labeller::Network(net) => format!("learned:{}", net.name()),
            Labeller::Rules => "pose-guided".to_string(),
        }
    }

    /// Parses every person in `image`.
    pub fn parse(&self, image: &RgbImage, options: &ParseOptions) -> Result<Parsed> {
        options.validate()?;
        let (w, h) = image.dimensions();
        let long = w.max(h);
        let work_owned;
        let work = if long > options.work_side {
            let s = options.work_side as f32 / long as f32;
            let (ww, wh) = (
                ((w as f32 * s).round() as u32).max(1),
                ((h as f32 * s).round() as u32).max(1),
            );
            work_owned = percept_infer::resize_rgb(image, ww, wh);
            &work_owned
        } else {
            image
        };
        let t0 = std::time::Instant::now();
        let labeller = self.labeller(options.parser);
        let network = match labeller {
            Labeller::Network(net) => Some(net),
            _ => None,
        };
        // The network draws each person itself: the pose model's mask head is not needed.
        let candidates = self.holistic.people().find(
            work,
            options.min_score,
            options.max_persons,
            if network.is_none() {
                PoseModel::FullWithMask
            } else {
                PoseModel::Full
            },
        )?;
        let t1 = t0.elapsed();
        let scores: Vec<f32> = candidates.iter().map(|c| c.pose.score).collect();
        let seeds: Vec<&'static str> = candidates.iter().map(|c| c.seed.name()).collect();
        let (labels, evidence, owner) = match network {
            Some(net) => {
                let crops: Vec<CropParse> = candidates
                    .par_iter()
                    .map(|c| net.run(work, &c.pose.roi))
                    .collect::<Result<_>>()?;
                let skeletons: Vec<Skeleton> = candidates
                    .iter()
                    .map(|c| Skeleton::new(&c.pose.landmarks))
                    .collect();
                tracing::debug!(find = ?t1, networks = ?t0.elapsed(), "parse stages");
                paint_people(work.dimensions(), net, &crops, &skeletons)
            }
            None => {
                let people: Vec<PersonLandmarks> = candidates
                    .into_par_iter()
                    .map(|c| {
                        self.holistic.complete(
                            work,
                            c.pose,
                            &HolisticOptions {
                                hands: false,
                                ..HolisticOptions::default()
                            },
                        )
                    })
                    .collect::<Result<_>>()?;
                let t2 = t0.elapsed();
                let learned = match labeller {
                    Labeller::Slot(slot) => Some(slot.label(work)?),
                    _ => None,
                };
                let out = label_people(work, &people, learned.as_ref());
                tracing::debug!(find = ?t1, complete = ?t2, label = ?t0.elapsed(), "parse stages");
                out
            }
        };
        let labels = if work.dimensions() == (w, h) {
            labels
        } else {
            imageops::resize(&labels, w, h, imageops::FilterType::Nearest)
        };
        let scale = (
            w as f32 / work.width() as f32,
            h as f32 / work.height() as f32,
        );
        let mut result = summarise(
            &labels,
            &evidence,
            &owner,
            work.dimensions(),
            scale,
            &scores,
            &seeds,
        );
        result.parser = self.resolve(options.parser);
        Ok(Parsed { result, labels })
    }
}

/// Which body part a skeleton segment stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    Torso,
    LeftArm,
    RightArm,
    LeftHand,
    RightHand,
    LeftLeg,
    RightLeg,
    LeftFoot,
    RightFoot,
}

struct Bone {
    a: (f32, f32),
    b: (f32, f32),
    radius: f32,
    part: Part,
}

/// Everything the labeller needs about one person.
struct Body<'a> {
    mask: &'a CropMask,
    inverse: Affine,
    bones: Vec<Bone>,
    torso: Option<[(f32, f32); 4]>,
    torso_radius: f32,
    face: Option<Vec<(f32, f32)>>,
    head_centre: (f32, f32),
    head_radius: f32,
    chin_y: f32,
    hip_y: f32,
    skin: SkinModel,
    lower: u8,
    lower_valid: bool,
    bounds: (u32, u32, u32, u32),
}

/// A joint is usable when the model says it is in the photo and it lies inside the frame.
fn usable(lm: &Landmark, w: u32, h: u32) -> bool {
    lm.presence.unwrap_or(1.0) > 0.5
        && lm.visibility.unwrap_or(1.0) > 0.3
        && lm.x >= -2.0
        && lm.y >= -2.0
        && lm.x <= w as f32 + 2.0
        && lm.y <= h as f32 + 2.0
}

fn build_body<'a>(
    person: &'a PersonLandmarks,
    lab: &LabImage,
    image: &RgbImage,
) -> Option<Body<'a>> {
    let (w, h) = image.dimensions();
    let lms = &person.pose.landmarks;
    let mask = person.pose.mask.as_ref()?;
    let inverse = mask.to_image.inverse().ok()?;
    let p = |i: usize| lms[i].xy();
    let ok = |i: usize| usable(&lms[i], w, h);
    let dist = |a: (f32, f32), b: (f32, f32)| (a.0 - b.0).hypot(a.1 - b.1);
    let shoulders = dist(p(pt::LEFT_SHOULDER), p(pt::RIGHT_SHOULDER));
    let mid = |a: usize, b: usize| ((lms[a].x + lms[b].x) / 2.0, (lms[a].y + lms[b].y) / 2.0);
    let torso_len = dist(
        mid(pt::LEFT_SHOULDER, pt::RIGHT_SHOULDER),
        mid(pt::LEFT_HIP, pt::RIGHT_HIP),
    );
    let head = head_size(lms);
    let scale = shoulders.max(0.45 * torso_len).max(1.2 * head);

    let mut bones = Vec::new();
    let add = |a: usize, b: usize, r: f32, part: Part, bones: &mut Vec<Bone>| {
        bones.push(Bone {
            a: p(a),
            b: p(b),
            radius: r * scale,
            part,
        });
    };
    // A bone between two joints the photo shows.
    let bone = |a: usize, b: usize, r: f32, part: Part, bones: &mut Vec<Bone>| {
        if ok(a) && ok(b) {
            add(a, b, r, part, bones);
        }
    };
    bone(
        pt::LEFT_SHOULDER,
        pt::LEFT_ELBOW,
        0.22,
        Part::LeftArm,
        &mut bones,
    );
    bone(
        pt::LEFT_ELBOW,
        pt::LEFT_WRIST,
        0.19,
        Part::LeftArm,
        &mut bones,
    );
    bone(
        pt::RIGHT_SHOULDER,
        pt::RIGHT_ELBOW,
        0.22,
        Part::RightArm,
        &mut bones,
    );
    bone(
        pt::RIGHT_ELBOW,
        pt::RIGHT_WRIST,
        0.19,
        Part::RightArm,
        &mut bones,
    );
    bone(
        pt::LEFT_WRIST,
        pt::LEFT_INDEX,
        0.2,
        Part::LeftHand,
        &mut bones,
    );
    bone(
        pt::LEFT_WRIST,
        pt::LEFT_PINKY,
        0.2,
        Part::LeftHand,
        &mut bones,
    );
    bone(
        pt::RIGHT_WRIST,
        pt::RIGHT_INDEX,
        0.2,
        Part::RightHand,
        &mut bones,
    );
    bone(
        pt::RIGHT_WRIST,
        pt::RIGHT_PINKY,
        0.2,
        Part::RightHand,
        &mut bones,
    );
    // The lower body only when hips and knees are really in the photo: hidden legs still
    // come back "visible", and would be painted onto tables and neighbours. A knee below the
    // frame's bottom edge is a leg the photo cuts, not a hidden one.
    let knee_ok = |i: usize| ok(i) || (lms[i].presence.unwrap_or(1.0) > 0.5 && lms[i].y > h as f32);
    let lower_ok =
        ok(pt::LEFT_HIP) && ok(pt::RIGHT_HIP) && knee_ok(pt::LEFT_KNEE) && knee_ok(pt::RIGHT_KNEE);
    if lower_ok {
        // `lower_ok` vouches for the hips and knees (a knee may lie below the frame).
        add(pt::LEFT_HIP, pt::LEFT_KNEE, 0.3, Part::LeftLeg, &mut bones);
        add(
            pt::RIGHT_HIP,
            pt::RIGHT_KNEE,
            0.3,
            Part::RightLeg,
            &mut bones,
        );
        bone(
            pt::LEFT_KNEE,
            pt::LEFT_ANKLE,
            0.24,
            Part::LeftLeg,
            &mut bones,
        );
        bone(
            pt::RIGHT_KNEE,
            pt::RIGHT_ANKLE,
            0.24,
            Part::RightLeg,
            &mut bones,
        );
        bone(
            pt::LEFT_ANKLE,
            pt::LEFT_HEEL,
            0.17,
            Part::LeftFoot,
            &mut bones,
        );
        bone(
            pt::LEFT_HEEL,
            pt::LEFT_FOOT_INDEX,
            0.17,
            Part::LeftFoot,
            &mut bones,
        );
        bone(
            pt::LEFT_ANKLE,
            pt::LEFT_FOOT_INDEX,
            0.17,
            Part::LeftFoot,
            &mut bones,
        );
        bone(
            pt::RIGHT_ANKLE,
            pt::RIGHT_HEEL,
            0.17,
            Part::RightFoot,
            &mut bones,
        );
        bone(
            pt::RIGHT_HEEL,
            pt::RIGHT_FOOT_INDEX,
            0.17,
            Part::RightFoot,
            &mut bones,
        );
        bone(
            pt::RIGHT_ANKLE,
            pt::RIGHT_FOOT_INDEX,
            0.17,
            Part::RightFoot,
            &mut bones,
        );
    }
    let torso = [
        pt::LEFT_SHOULDER,
        pt::RIGHT_SHOULDER,
        pt::RIGHT_HIP,
        pt::LEFT_HIP,
    ]
    .iter()
    .all(|&i| lms[i].presence.unwrap_or(1.0) > 0.5)
    .then(|| {
        [
            p(pt::LEFT_SHOULDER),
            p(pt::RIGHT_SHOULDER),
            p(pt::RIGHT_HIP),
            p(pt::LEFT_HIP),
        ]
    });
    let hip_y = if torso.is_some() {
        mid(pt::LEFT_HIP, pt::RIGHT_HIP).1
    } else {
        f32::INFINITY
    };

    let face: Option<Vec<(f32, f32)>> = person
        .face
        .as_ref()
        .map(|f| FACE_OVAL.iter().map(|&i| f.landmarks[i].xy()).collect());
    let (head_centre, head_radius, chin_y) = match (&person.face, &face) {
        (Some(mesh), Some(oval)) => {
            let (mut x0, mut y0, mut x1, mut y1) = (f32::MAX, f32::MAX, f32::MIN, f32::MIN);
            for &(x, y) in oval {
                x0 = x0.min(x);
                y0 = y0.min(y);
                x1 = x1.max(x);
                y1 = y1.max(y);
            }
            let chin = mesh.landmarks[mesh_point::CHIN].y;
            (
                ((x0 + x1) / 2.0, (y0 + y1) / 2.0),
                0.5 * (x1 - x0).max(y1 - y0),
                chin,
            )
        }
        _ => (p(pt::NOSE), 0.6 * head, lms[pt::NOSE].y + 0.45 * head),
    };
    let skin = person
        .face
        .as_ref()
        .and_then(|mesh| skin_from_face(mesh.landmarks.as_slice(), lab))
        .unwrap_or_else(SkinModel::generic);
    let lower = if lower_ok {
        lower_garment(lms, mask, &inverse, lab, &skin, scale)
    } else {
        id::PANTS
    };

    let bounds = covered_box(
        &mask.to_image,
        (mask.width as f32, mask.height as f32),
        (w, h),
    );
    Some(Body {
        mask,
        inverse,
        bones,
        torso,
        torso_radius: 0.12 * scale,
        face,
        head_centre,
        head_radius: head_radius.max(3.0),
        chin_y,
        hip_y,
        skin,
        lower,
        lower_valid: lower_ok,
        bounds,
    })
}

/// Lab samples from the cheeks and forehead (mesh points away from eyes, brows and lips).
fn skin_from_face(mesh: &[Landmark], lab: &LabImage) -> Option<SkinModel> {
    const CHEEKS_FOREHEAD: [usize; 10] = [50, 280, 101, 330, 151, 108, 337, 205, 425, 9];
    let (a, b) = (
        &mesh[mesh_point::RIGHT_CHEEK_EDGE],
        &mesh[mesh_point::LEFT_CHEEK_EDGE],
    );
    let d = (a.x - b.x).hypot(a.y - b.y);
    let r = (d * 0.04).clamp(1.0, 8.0) as i64;
    let mut samples = Vec::new();
    for &i in &CHEEKS_FOREHEAD {
        let (cx, cy) = (mesh[i].x as i64, mesh[i].y as i64);
        for y in cy - r..=cy + r {
            for x in cx - r..=cx + r {
                if x >= 0 && y >= 0 && (x as u32) < lab.width && (y as u32) < lab.height {
                    samples.push(lab.at(x as u32, y as u32));
                }
            }
        }
    }
    SkinModel::learn(&samples)
}

/// Skirt or dress vs trousers: with the knees apart, trousers leave a gap between the legs
/// that a skirt fills with cloth.
fn lower_garment(
    lms: &[Landmark],
    mask: &CropMask,
    inverse: &Affine,
    lab: &LabImage,
    skin: &SkinModel,
    scale: f32,
) -> u8 {
    let mid = |a: usize, b: usize| ((lms[a].x + lms[b].x) / 2.0, (lms[a].y + lms[b].y) / 2.0);
    let knees_apart = (lms[pt::LEFT_KNEE].x - lms[pt::RIGHT_KNEE].x)
        .hypot(lms[pt::LEFT_KNEE].y - lms[pt::RIGHT_KNEE].y);
    if knees_apart < 0.35 * scale {
        return id::PANTS;
    }
    let (hip, knee) = (
        mid(pt::LEFT_HIP, pt::RIGHT_HIP),
        mid(pt::LEFT_KNEE, pt::RIGHT_KNEE),
    );
    // Only samples inside the photo vote (the frame may cut the thighs).
    let (mut cloth, mut seen) = (0, 0);
    let n = 12;
    for k in 0..n {
        let t = 0.35 + 0.6 * k as f32 / (n - 1) as f32;
        let (x, y) = (hip.0 + t * (knee.0 - hip.0), hip.1 + t * (knee.1 - hip.1));
        if x < 0.0 || y < 0.0 || x >= lab.width as f32 || y >= lab.height as f32 {
            continue;
        }
        seen += 1;
        let m = mask.sample(inverse, x, y);
        if m > 0.5 && skin.likelihood(lab.at(x as u32, y as u32)) < 0.5 {
            cloth += 1;
        }
    }
    if seen >= n / 3 && cloth * 10 >= seen * 7 {
        id::SKIRT
    } else {
        id::PANTS
    }
}

/// Per person: normalised distance of a pixel to the skeleton (in bone radii) and the part.
fn nearest(body: &Body, p: (f32, f32)) -> (f32, Option<Part>, f32) {
    let mut best = (f32::INFINITY, None, 0.0);
    if let Some(t) = &body.torso {
        let d = polygon_distance(p, t) / body.torso_radius;
        if d < best.0 {
            best = (d, Some(Part::Torso), 0.0);
        }
    }
    for bone in &body.bones {
        let (d, t) = segment_distance(p, bone.a, bone.b);
        let d = d / bone.radius;
        if d < best.0 {
            best = (d, Some(bone.part), t);
        }
    }
    let dh = (p.0 - body.head_centre.0).hypot(p.1 - body.head_centre.1) / body.head_radius;
    if dh - 0.6 < best.0 {
        best = ((dh - 0.6).max(0.0), None, 0.0);
    }
    best
}

/// Labels every person's pixels. Returns the label map (work size), per-pixel evidence, and
/// the owning person + 1 (0 = nobody).
fn label_people(
    image: &RgbImage,
    people: &[PersonLandmarks],
    learned: Option<&LearnedLabels>,
) -> (GrayImage, Vec<f32>, Vec<u8>) {
    let (w, h) = image.dimensions();
    let n = (w * h) as usize;
    let lab = LabImage::new(image);
    let bodies: Vec<Option<Body>> = people.iter().map(|p| build_body(p, &lab, image)).collect();
    // Pass 1: who owns each pixel. A person's mask bleeds onto neighbours and furniture, so
    // pixels far from their skeleton are dropped, and a pixel two masks claim goes to the
    // nearer skeleton.
    const REACH: f32 = 2.6;
    let mut owner = vec![0u8; n];
    let mut best = vec![f32::INFINITY; n];
    let mut prob = vec![0.0f32; n];
    let mut nearest_part: Vec<(Option<Part>, f32)> = vec![(None, 0.0); n];
    for (k, body) in bodies.iter().enumerate() {
        let Some(body) = body else { continue };
        let (x0, y0, x1, y1) = body.bounds;
        for y in y0..y1 {
            for x in x0..x1 {
                let c = (x as f32 + 0.5, y as f32 + 0.5);
                let m = body.mask.sample(&body.inverse, c.0, c.1);
                if m <= 0.5 {
                    continue;
                }
                let (d, part, t) = nearest(body, c);
                let i = (y * w + x) as usize;
                if d <= REACH && d < best[i] {
                    best[i] = d;
                    owner[i] = (k + 1) as u8;
                    prob[i] = m;
                    nearest_part[i] = (part, t);
                }
            }
        }
    }
    // Pass 2: the label of each owned pixel.
    let mut labels = GrayImage::new(w, h);
    let mut evidence = vec![0.0f32; n];
    for (k, body) in bodies.iter().enumerate() {
        let Some(body) = body else { continue };
        let (x0, y0, x1, y1) = body.bounds;
        for y in y0..y1 {
            for x in x0..x1 {
                let i = (y * w + x) as usize;
                if owner[i] != (k + 1) as u8 {
                    continue;
                }
                let (label, fit) = match learned {
                    Some(net) => (net.labels[i], net.confidence[i]),
                    None => {
                        let c = (x as f32 + 0.5, y as f32 + 0.5);
                        let skin = body.skin.likelihood(lab.at(x, y));
                        let (part, t) = nearest_part[i];
                        label_pixel(body, c, skin, part, t)
                    }
                };
                labels.put_pixel(x, y, Luma([label]));
                evidence[i] = prob[i] * fit;
                if label == id::BACKGROUND {
                    owner[i] = 0;
                }
            }
        }
    }
    (labels, evidence, owner)
}

/// The learned parser's label map: every person's crop probabilities sampled at each pixel
/// their crop covers; a pixel the network gives a body or clothing label is claimed, and a
/// pixel two people claim goes to the one whose skeleton is nearer. Returns labels (work
/// size), per-pixel probability of the label, and the owning person + 1 (0 = nobody).
fn paint_people(
    (w, h): (u32, u32),
    net: &PersonParser,
    crops: &[CropParse],
    skeletons: &[Skeleton],
) -> (GrayImage, Vec<f32>, Vec<u8>) {
    let n = (w * h) as usize;
    let mut labels = vec![0u8; n];
    let mut evidence = vec![0.0f32; n];
    let mut owner = vec![0u8; n];
    let planes = crops
        .first()
        .map_or(0, |c| c.probs.len() / (c.width * c.height).max(1));
    labels
        .par_chunks_mut(w as usize)
        .zip(evidence.par_chunks_mut(w as usize))
        .zip(owner.par_chunks_mut(w as usize))
        .enumerate()
        .for_each(|(y, ((labels, evidence), owner))| {
            let y = y as u32;
            let mut scratch = vec![0.0f32; planes];
            // The owner's skeleton distance, once a second person claims the pixel.
            let mut nearest = vec![f32::NAN; w as usize];
            for (k, crop) in crops.iter().enumerate() {
                let (x0, y0, x1, y1) = crop.bounds;
                if y < y0 || y >= y1 {
                    continue;
                }
                let cy = y as f32 + 0.5;
                for x in x0..x1 {
                    let c = (x as f32 + 0.5, cy);
                    let Some((label, p)) = crop.label_at(c.0, c.1, &mut scratch) else {
                        continue;
                    };
                    let lip = net.lip(label);
                    if lip == id::BACKGROUND {
                        continue;
                    }
                    let i = x as usize;
                    if owner[i] != 0 {
                        let other = &skeletons[(owner[i] - 1) as usize];
                        if nearest[i].is_nan() {
                            nearest[i] = other.distance(c);
                        }
                        let d = skeletons[k].distance(c);
                        if d >= nearest[i] {
                            continue;
                        }
                        nearest[i] = d;
                    }
                    owner[i] = (k + 1) as u8;
                    labels[i] = lip;
                    evidence[i] = p;
                }
            }
        });
    (
        GrayImage::from_raw(w, h, labels).unwrap_or_else(|| GrayImage::new(w, h)),
        evidence,
        owner,
    )
}

/// The label of one pixel of a person and how well it fits (0.5 = a coin toss, 1 = clear).
fn label_pixel(body: &Body, p: (f32, f32), skin: f32, part: Option<Part>, t: f32) -> (u8, f32) {
    let is_skin = skin > 0.5;
    let fit = if is_skin { skin } else { 1.0 - skin };
    if let Some(face) = &body.face
        && inside_polygon(p, face)
    {
        return (id::FACE, 1.0);
    }
    // Hair: above the chin, out to the sides and well above the face (long hair below the chin
    // is left to the torso's rule and usually ends up as clothes: a known limit).
    let (dx, dy) = (p.0 - body.head_centre.0, p.1 - body.head_centre.1);
    let up = if dy < 0.0 { 0.6 } else { 1.0 };
    let head_zone = dx.hypot(dy * up) < 1.8 * body.head_radius && p.1 < body.chin_y;
    if head_zone
        && part.is_none_or(|pt| {
            !matches!(
                pt,
                Part::LeftHand | Part::RightHand | Part::LeftArm | Part::RightArm
            )
        })
    {
        return if is_skin {
            (id::FACE, fit)
        } else {
            (id::HAIR, fit)
        };
    }
    let below_hips = p.1 > body.hip_y;
    match part {
        None => {
            // Around the head but below the chin: neck (skin, unlabelled in LIP) or collar.
            if is_skin {
                (id::BACKGROUND, fit)
            } else {
                (id::UPPER_CLOTHES, fit)
            }
        }
        Some(Part::Torso) => match (is_skin, below_hips) {
            (true, _) => (id::BACKGROUND, fit),
            (false, true) if body.lower_valid => (lower_label(body), fit),
            (false, _) => (upper_label(body), fit),
        },
        Some(Part::LeftArm) => {
            if is_skin {
                (id::LEFT_ARM, fit)
            } else {
                (upper_label(body), fit)
            }
        }
        Some(Part::RightArm) => {
            if is_skin {
                (id::RIGHT_ARM, fit)
            } else {
                (upper_label(body), fit)
            }
        }
        Some(hand @ (Part::LeftHand | Part::RightHand)) => {
            let arm = if hand == Part::LeftHand {
                id::LEFT_ARM
            } else {
                id::RIGHT_ARM
            };
            match (is_skin, t > 0.3) {
                (true, _) => (arm, fit),
                // Past the wrist, cloth is a glove; at the wrist, a sleeve.
                (false, true) => (id::GLOVE, fit * 0.8),
                (false, false) => (upper_label(body), fit),
            }
        }
        Some(leg @ (Part::LeftLeg | Part::RightLeg)) => {
            let own = if leg == Part::LeftLeg {
                id::LEFT_LEG
            } else {
                id::RIGHT_LEG
            };
            if is_skin {
                (own, fit)
            } else {
                (lower_label(body), fit)
            }
        }
        Some(foot @ (Part::LeftFoot | Part::RightFoot)) => {
            let (leg, shoe) = if foot == Part::LeftFoot {
                (id::LEFT_LEG, id::LEFT_SHOE)
            } else {
                (id::RIGHT_LEG, id::RIGHT_SHOE)
            };
            if is_skin { (leg, fit) } else { (shoe, fit) }
        }
    }
}

fn upper_label(body: &Body) -> u8 {
    if body.lower == id::DRESS {
        id::DRESS
    } else {
        id::UPPER_CLOTHES
    }
}

fn lower_label(body: &Body) -> u8 {
    body.lower
}

/// Persons and segments from the label map (photo size) and the work-size evidence.
fn summarise(
    labels: &GrayImage,
    evidence: &[f32],
    owner: &[u8],
    work: (u32, u32),
    scale: (f32, f32),
    scores: &[f32],
    seeds: &[&'static str],
) -> ParseResult {
    let (w, h) = labels.dimensions();
    #[derive(Clone, Copy)]
    struct Acc {
        count: u64,
        evidence: f64,
        x0: u32,
        y0: u32,
        x1: u32,
        y1: u32,
    }
    let empty = Acc {
        count: 0,
        evidence: 0.0,
        x0: u32::MAX,
        y0: u32::MAX,
        x1: 0,
        y1: 0,
    };
    let mut acc = vec![[empty; 20]; scores.len()];
    for y in 0..h {
        let wy = ((y as f32 + 0.5) / scale.1) as u32;
        for x in 0..w {
            let label = labels.get_pixel(x, y).0[0];
            if label == 0 {
                continue;
            }
            let wx = ((x as f32 + 0.5) / scale.0) as u32;
            let i = (wy.min(work.1 - 1) * work.0 + wx.min(work.0 - 1)) as usize;
            let who = owner[i];
            if who == 0 || label as usize >= LABELS.len() {
                continue;
            }
            let a = &mut acc[(who - 1) as usize][label as usize];
            a.count += 1;
            a.evidence += f64::from(evidence[i]);
            a.x0 = a.x0.min(x);
            a.y0 = a.y0.min(y);
            a.x1 = a.x1.max(x);
            a.y1 = a.y1.max(y);
        }
    }
    let bx = |a: &Acc| PixelBox {
        x: a.x0,
        y: a.y0,
        width: a.x1 - a.x0 + 1,
        height: a.y1 - a.y0 + 1,
    };
    let mut persons = Vec::new();
    let mut segments = Vec::new();
    for (k, per) in acc.iter().enumerate() {
        let total: u64 = per.iter().map(|a| a.count).sum();
        if total == 0 {
            continue;
        }
        let index = persons.len();
        let mut all = empty;
        for (label, a) in per.iter().enumerate() {
            if a.count == 0 {
                continue;
            }
            all.x0 = all.x0.min(a.x0);
            all.y0 = all.y0.min(a.y0);
            all.x1 = all.x1.max(a.x1);
            all.y1 = all.y1.max(a.y1);
            segments.push(Segment {
                label: LABELS[label],
                label_index: label as u8,
                confidence: (a.evidence / a.count as f64) as f32,
                pixel_count: a.count,
                bbox: bx(a),
                person: index,
            });
        }
        persons.push(ParsedPerson {
            index,
            bbox: bx(&all),
            score: scores[k],
            seed: seeds.get(k).copied().unwrap_or("pose"),
            pixel_count: total,
        });
    }
    ParseResult {
        width: w,
        height: h,
        parser: String::new(),
        persons,
        segments,
        palette: palette(),
    }
}

/// The photo with each label's colour blended in at `alpha` (0..=1).
pub fn overlay(image: &RgbImage, labels: &GrayImage, alpha: f32) -> RgbImage {
    let a = alpha.clamp(0.0, 1.0);
    let mut out = image.clone();
    for (px, l) in out.pixels_mut().zip(labels.pixels()) {
        let label = l.0[0];
        if label == 0 || label as usize >= LABELS.len() {
            continue;
        }
        let c = label_colour(label);
        *px =
            Rgb([0, 1, 2]
                .map(|i| (f32::from(px.0[i]) * (1.0 - a) + f32::from(c[i]) * a).round() as u8));
    }
    out
}

/// The label map in its palette colours (the "coloured mask" of the API).
pub fn colour_mask(labels: &GrayImage) -> RgbImage {
    let (w, h) = labels.dimensions();
    RgbImage::from_fn(w, h, |x, y| {
        Rgb(label_colour(labels.get_pixel(x, y).0[0].min(19)))
    })
}
