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
use super::network::{CropParse, Sample, Skeleton};
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
/// their crop covers (a pixel between cells that disagree decided by its colour, `guided`);
/// a pixel the network gives a body or clothing label is claimed, and a pixel two people
/// claim goes to the one whose skeleton is nearer. Returns labels (work size), per-pixel
/// probability of the label, and the owning person + 1 (0 = nobody).
pub(super) fn paint_people(
    image: &RgbImage,
    to_lip: &[u8],
    crops: &[CropParse],
    skeletons: &[Skeleton],
) -> (GrayImage, Vec<f32>, Vec<u8>) {
    let (w, h) = image.dimensions();
    let n = (w * h) as usize;
    let mut labels = vec![0u8; n];
    let mut evidence = vec![0.0f32; n];
    let mut owner = vec![0u8; n];
    let planes = crops.first().map_or(0, |c| c.planes);
    let lip = |label: usize| to_lip.get(label).copied().unwrap_or(id::BACKGROUND);
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
                    let Some(sample) = crop.sample(c.0, c.1) else {
                        continue;
                    };
                    let i = x as usize;
                    // A boundary pixel asks who is nearer before its window is weighed (the
                    // window costs more than two skeleton distances; in a group the crops
                    // overlap, and many of their boundaries lie on a nearer person); any other
                    // pixel after its label, as a background label settles it for free.
                    let (label, p, d) = match sample {
                        Sample::Background => continue,
                        Sample::Agreed(label, p) => {
                            let label = lip(label);
                            if label == id::BACKGROUND {
                                continue;
                            }
                            let Some(d) = nearer(k, owner[i], &mut nearest[i], skeletons, c) else {
                                continue;
                            };
                            (label, p, d)
                        }
                        Sample::Boundary(at) => {
                            let Some(d) = nearer(k, owner[i], &mut nearest[i], skeletons, c) else {
                                continue;
                            };
                            let (label, p) =
                                crop.decide(&at, image.get_pixel(x, y).0, &mut scratch);
                            let label = lip(label);
                            if label == id::BACKGROUND {
                                continue;
                            }
                            (label, p, d)
                        }
                    };
                    nearest[i] = d;
                    owner[i] = (k + 1) as u8;
                    labels[i] = label;
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

/// Person `k`'s skeleton distance at `c` when it is nearer than the pixel's `owner`'s (+ 1; 0
/// = nobody, then NaN: the distance is worked out only once a second person claims the
/// pixel); `None` when the owner is nearer. `nearest` caches the owner's distance.
fn nearer(
    k: usize,
    owner: u8,
    nearest: &mut f32,
    skeletons: &[Skeleton],
    c: (f32, f32),
) -> Option<f32> {
    if owner == 0 {
        return Some(f32::NAN);
    }
    if nearest.is_nan() {
        *nearest = skeletons[usize::from(owner - 1)].distance(c);
    }
    if skeletons[k].farther_than(c, *nearest) {
        return None;
    }
    let d = skeletons[k].distance(c);
    (d < *nearest).then_some(d)
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

#[cfg(test)]
mod tests {
    use super::*;

    const W: usize = 16;
    const H: usize = 4;

    /// A crop over the whole 16 × 4 photo, one plane cell per pixel, two network labels
    /// (background, upper clothes); `person(x)` says which columns the network gives the
    /// person (p 0.9); the crop's colour is light over the person, dark elsewhere.
    fn crop(person: impl Fn(usize) -> bool + Copy) -> CropParse {
        CropParse::columns(W, H, 0.9, person, |x| {
            if person(x) { [200; 3] } else { [20; 3] }
        })
    }

    /// A person standing at column `x`.
    fn standing_at(x: f32) -> Skeleton {
        Skeleton::of_bones(vec![((x, 0.0), (x, H as f32))], 1.0)
    }

    /// Person 1 stands at column 2 and their network claims columns 0–9 and 14–15; person 2
    /// stands at column 13 and claims 6–13. Where both claim a pixel, the nearer skeleton
    /// takes it (a tie stays with the first); column 5, light in the photo, is a boundary
    /// pixel person 2's window would call theirs by its colour, and stays person 1's; a
    /// pixel only the farther person's network claims (14–15) is theirs.
    #[test]
    fn a_pixel_two_people_claim_goes_to_the_nearer_skeleton() {
        let crops = [
            crop(|x| !(10..14).contains(&x)),
            crop(|x| (6..14).contains(&x)),
        ];
        let skeletons = [standing_at(2.0), standing_at(13.0)];
        let image = RgbImage::from_fn(W as u32, H as u32, |x, _| {
            image::Rgb(if x == 5 { [200; 3] } else { [128; 3] })
        });
        // The premise: on its own, person 2's window takes column 5.
        let Some(Sample::Boundary(at)) = crops[1].sample(5.5, 0.5) else {
            panic!("column 5 is not on person 2's boundary");
        };
        assert_eq!(crops[1].decide(&at, [200; 3], &mut [0.0; 2]).0, 1);
        let to_lip = [id::BACKGROUND, id::UPPER_CLOTHES];
        let (labels, evidence, owner) = paint_people(&image, &to_lip, &crops, &skeletons);
        let expected: Vec<u8> = (0..W)
            .map(|x| match x {
                0..=7 | 14.. => 1,
                _ => 2,
            })
            .collect();
        for y in 0..H {
            assert_eq!(&owner[y * W..(y + 1) * W], &expected[..], "row {y}");
        }
        assert!(labels.pixels().all(|p| p.0[0] == id::UPPER_CLOTHES));
        assert!(
            evidence.iter().all(|&p| p > 0.5 && p <= 1.0),
            "{evidence:?}"
        );
    }

    /// Pixels no network gives a body or clothing label stay nobody's background.
    #[test]
    fn background_everywhere_leaves_every_pixel_unowned() {
        let crops = [crop(|_| false)];
        let image = RgbImage::from_pixel(W as u32, H as u32, image::Rgb([128, 128, 128]));
        let to_lip = [id::BACKGROUND, id::UPPER_CLOTHES];
        let (labels, evidence, owner) = paint_people(&image, &to_lip, &crops, &[standing_at(2.0)]);
        assert!(owner.iter().all(|&o| o == 0));
        assert!(labels.pixels().all(|p| p.0[0] == id::BACKGROUND));
        assert!(evidence.iter().all(|&p| p == 0.0));
    }
}
