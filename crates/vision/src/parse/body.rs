//! The pose-guided parser's model of one person: the skeleton's bones with their radii, the
//! torso polygon, head and face oval, the skin model learned from the face, and whether the
//! lower garment is trousers or a skirt.

use image::RgbImage;
use percept_infer::Affine;

use super::colour::{LabImage, SkinModel};
use super::geometry::{covered_box, polygon_distance, segment_distance};
use super::labels::id;
use crate::people::head_size;
use crate::pose::point as pt;
use crate::topology::{FACE_OVAL, mesh_point};
use crate::{CropMask, Landmark, PersonLandmarks};

/// Which body part a skeleton segment stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Part {
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

pub(super) struct Bone {
    pub(super) a: (f32, f32),
    pub(super) b: (f32, f32),
    pub(super) radius: f32,
    pub(super) part: Part,
}

/// Everything the labeller needs about one person.
pub(super) struct Body<'a> {
    pub(super) mask: &'a CropMask,
    pub(super) inverse: Affine,
    pub(super) bones: Vec<Bone>,
    pub(super) torso: Option<[(f32, f32); 4]>,
    pub(super) torso_radius: f32,
    pub(super) face: Option<Vec<(f32, f32)>>,
    pub(super) head_centre: (f32, f32),
    pub(super) head_radius: f32,
    pub(super) chin_y: f32,
    pub(super) hip_y: f32,
    pub(super) skin: SkinModel,
    pub(super) lower: u8,
    pub(super) lower_valid: bool,
    pub(super) bounds: (u32, u32, u32, u32),
}

/// A joint is usable when the model says it is in the photo and it lies inside the frame.
pub(super) fn usable(lm: &Landmark, w: u32, h: u32) -> bool {
    lm.presence.unwrap_or(1.0) > 0.5
        && lm.visibility.unwrap_or(1.0) > 0.3
        && lm.x >= -2.0
        && lm.y >= -2.0
        && lm.x <= w as f32 + 2.0
        && lm.y <= h as f32 + 2.0
}

pub(super) fn build_body<'a>(
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
pub(super) fn skin_from_face(mesh: &[Landmark], lab: &LabImage) -> Option<SkinModel> {
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
pub(super) fn lower_garment(
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
pub(super) fn nearest(body: &Body, p: (f32, f32)) -> (f32, Option<Part>, f32) {
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
