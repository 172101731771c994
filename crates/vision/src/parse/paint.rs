//! Per-pixel labelling: the pose-guided rules (each mask pixel from its nearest bone and
//! whether it looks like skin) and the learned parser's crops painted back into the photo;
//! a pixel two people claim goes to the nearer skeleton.

use image::{GrayImage, Luma, RgbImage};
use rayon::prelude::*;

use super::body::{Body, Part, build_body, nearest};
use super::colour::LabImage;
use super::geometry::inside_polygon;
use super::labels::id;
use super::learned::LearnedLabels;
use super::network::{CropParse, PersonParser, Skeleton};
use crate::PersonLandmarks;

/// Labels every person's pixels. Returns the label map (work size), per-pixel evidence, and
/// the owning person + 1 (0 = nobody).
pub(super) fn label_people(
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
/// their crop covers (a pixel between cells that disagree by its colour, `guided`); a pixel the network gives a body or clothing label is claimed, and a
/// pixel two people claim goes to the one whose skeleton is nearer. Returns labels (work
/// size), per-pixel probability of the label, and the owning person + 1 (0 = nobody).
pub(super) fn paint_people(
    image: &RgbImage,
    net: &PersonParser,
    crops: &[CropParse],
    skeletons: &[Skeleton],
) -> (GrayImage, Vec<f32>, Vec<u8>) {
    let (w, h) = image.dimensions();
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
                    let Some((label, p)) =
                        crop.label_at(c.0, c.1, image.get_pixel(x, y).0, &mut scratch)
                    else {
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
pub(super) fn label_pixel(
    body: &Body,
    p: (f32, f32),
    skin: f32,
    part: Option<Part>,
    t: f32,
) -> (u8, f32) {
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

pub(super) fn upper_label(body: &Body) -> u8 {
    if body.lower == id::DRESS {
        id::DRESS
    } else {
        id::UPPER_CLOTHES
    }
}

pub(super) fn lower_label(body: &Body) -> u8 {
    body.lower
}
