#![allow(clippy::unwrap_used)] // tests: a failure should stop with the value that caused it

//! Holistic tracking on real photos: what a person checks by eye — the skeleton lies on the
//! person, hands near their wrists, the mesh on the face, nothing invented on a cat.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use percept_vision::{FaceDetector, Holistic, HolisticOptions, HolisticResult, Landmark, Models};
use serde_json::Value;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn models() -> &'static Models {
    static MODELS: OnceLock<Models> = OnceLock::new();
    MODELS.get_or_init(|| {
        let mut names = Holistic::MODELS.to_vec();
        names.push(FaceDetector::MODEL);
        Models::load(root().join("models"), &names).unwrap()
    })
}

fn photo(name: &str) -> image::RgbImage {
    image::open(root().join("tests/data").join(name))
        .unwrap()
        .to_rgb8()
}

fn run(name: &str) -> HolisticResult {
    let holistic = Holistic::new(models()).unwrap();
    holistic
        .run(&photo(name), &HolisticOptions::default())
        .unwrap()
}

fn people(name: &str) -> Vec<[f32; 4]> {
    let text = std::fs::read_to_string(root().join("tests/data/people.json")).unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    v[name]["people"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| ["x", "y", "width", "height"].map(|k| p[k].as_f64().unwrap() as f32))
        .collect()
}

fn inside(lm: &Landmark, b: [f32; 4], margin: f32) -> bool {
    lm.x >= b[0] - margin
        && lm.x <= b[0] + b[2] + margin
        && lm.y >= b[1] - margin
        && lm.y <= b[1] + b[3] + margin
}

#[test]
fn single_person_photos_give_pose_on_the_person_and_mesh_on_the_face() {
    let detector = FaceDetector::new(models()).unwrap();
    for name in [
        "person_astronaut.jpg",
        "person_hopper.jpg",
        "person_hands_drink.jpg",
    ] {
        let r = run(name);
        assert_eq!(r.pose.len(), 33, "{name}");
        assert_eq!(r.face.len(), 468, "{name}: face mesh missing");
        let person = people(name)[0];
        // Every pose point the model calls visible lies on the labelled person.
        for (i, lm) in r.pose.iter().enumerate() {
            if lm.visibility.unwrap() > 0.5 && lm.presence.unwrap() > 0.5 {
                assert!(
                    inside(lm, person, 15.0),
                    "{name}: pose point {i} {lm:?} off the person"
                );
            }
        }
        // The mesh lies on the face CenterFace finds, and its nose tip (1) near the pose's nose.
        let img = photo(name);
        let faces = detector.detect(&img, &Default::default()).unwrap();
        let face = faces[0].bbox;
        let fb = [face.x, face.y, face.width, face.height];
        let margin = 0.15 * face.width.max(face.height);
        let outside = r.face.iter().filter(|lm| !inside(lm, fb, margin)).count();
        assert!(
            outside <= 468 / 50,
            "{name}: {outside} mesh points off the face {fb:?}"
        );
        let (nose_mesh, nose_pose) = (r.face[1], r.pose[0]);
        let d = (nose_mesh.x - nose_pose.x).hypot(nose_mesh.y - nose_pose.y);
        assert!(
            d < 0.25 * face.width,
            "{name}: mesh nose {d} px from pose nose"
        );
        // Normalised copies agree with the pixels.
        let lm = r.pose[0];
        assert!((lm.nx * r.width as f32 - lm.x).abs() < 1e-3);
        assert_eq!(
            r.landmark_count,
            r.pose.len() + r.face.len() + r.left_hand.len() + r.right_hand.len()
        );
    }
}

#[test]
fn hands_are_found_next_to_their_own_wrists() {
    // Hands come from the pose's wrists, so a hand is only found where the pose put a wrist
    // near it (MediaPipe Holistic finds hands on 1 of these 6 photos; see BENCHMARKS.md).
    let mut found = 0;
    for name in [
        "person_hands_drink.jpg",
        "group5_stairs.jpg",
        "group4_hands.jpg",
        "group3_costumes.jpg",
    ] {
        let r = run(name);
        for (hand, wrist_index) in [(&r.left_hand, 15usize), (&r.right_hand, 16usize)] {
            if hand.is_empty() {
                continue;
            }
            assert_eq!(hand.len(), 21, "{name}");
            found += 1;
            let wrist = r.pose[wrist_index];
            let other = r.pose[31 - wrist_index]; // 15 <-> 16
            let d_own = (hand[0].x - wrist.x).hypot(hand[0].y - wrist.y);
            let d_other = (hand[0].x - other.x).hypot(hand[0].y - other.y);
            let shoulders = (r.pose[11].x - r.pose[12].x).hypot(r.pose[11].y - r.pose[12].y);
            assert!(
                d_own < 0.5 * shoulders,
                "{name}: hand wrist {d_own} px from pose wrist {wrist_index}"
            );
            assert!(
                d_own < d_other,
                "{name}: hand {wrist_index} is nearer the other wrist"
            );
            // The hand spans a plausible size: fingertips beyond the knuckles, not a point.
            let span = hand
                .iter()
                .map(|p| (p.x - hand[0].x).hypot(p.y - hand[0].y))
                .fold(0.0f32, f32::max);
            assert!(
                span > 0.15 * shoulders && span < 1.5 * shoulders,
                "{name}: hand span {span}"
            );
        }
    }
    assert!(found >= 2, "only {found} hands found");
}

#[test]
fn no_person_gives_empty_parts() {
    let r = run("none_chelsea.png");
    assert_eq!(r.landmark_count, 0);
    assert!(
        r.pose.is_empty() && r.face.is_empty() && r.left_hand.is_empty() && r.right_hand.is_empty()
    );
    assert!(!r.parts.pose.present && !r.parts.face.present);
}

/// Mean distance in pixels between our landmarks and MediaPipe's (normalised `[x, y, ...]`),
/// over the points `keep` accepts.
fn mean_distance(
    ours: &[Landmark],
    theirs: &[Value],
    r: &HolisticResult,
    keep: impl Fn(&Value) -> bool,
) -> Option<f32> {
    let d: Vec<f32> = ours
        .iter()
        .zip(theirs)
        .filter(|(_, t)| keep(t))
        .map(|(lm, t)| {
            let tx = t[0].as_f64().unwrap() as f32 * r.width as f32;
            let ty = t[1].as_f64().unwrap() as f32 * r.height as f32;
            (lm.x - tx).hypot(lm.y - ty)
        })
        .collect();
    (!d.is_empty()).then(|| d.iter().sum::<f32>() / d.len() as f32)
}

#[test]
fn agrees_with_mediapipe_holistic() {
    // References: MediaPipe 0.10.21 Holistic (model_complexity=1, static images) on the same
    // photos, written by bench/peers/mediapipe_holistic.py. The bar (issue #5): mean landmark
    // distance ≤ 2 % of the image diagonal for pose and face. For the pose it is taken over
    // the points MediaPipe calls visible (> 0.5): the others are the model's guesses at hidden
    // or out-of-frame joints, which swing by a limb's length with a pixel of ROI difference;
    // their mean over all 33 is printed too. Holistic follows one person, the detector's best;
    // in a group near-equal scores make that choice fragile, so group photos are compared
    // (and printed) only when both followed the same person, and asserted on single-person
    // photos.
    let text = std::fs::read_to_string(root().join("tests/data/holistic_mediapipe.json")).unwrap();
    let refs: Value = serde_json::from_str(&text).unwrap();
    let photos = refs["photos"].as_object().unwrap();
    let mut failures: Vec<String> = Vec::new();
    let mut asserted = 0;
    for (name, expected) in photos {
        let r = run(name);
        let diag = (r.width as f32).hypot(r.height as f32);
        let single = name.starts_with("person_");
        for (part, ours) in [
            ("pose", &r.pose),
            ("face", &r.face),
            ("left_hand", &r.left_hand),
            ("right_hand", &r.right_hand),
        ] {
            let Some(theirs) = expected[part].as_array() else {
                if !ours.is_empty() {
                    eprintln!("{name}: {part}: found here, not by MediaPipe");
                }
                continue;
            };
            if ours.is_empty() {
                failures.push(format!("{name}: {part}: found by MediaPipe, not here"));
                continue;
            }
            let visible = |t: &Value| t.get(2).and_then(Value::as_f64).is_none_or(|v| v > 0.5);
            let (Some(mean), Some(all)) = (
                mean_distance(ours, theirs, &r, visible),
                mean_distance(ours, theirs, &r, |_| true),
            ) else {
                continue;
            };
            if part == "pose"
                && !single
                && r.pose.first().is_some_and(|nose| {
                    let t = &theirs[0];
                    let (tx, ty) = (
                        t[0].as_f64().unwrap() as f32 * r.width as f32,
                        t[1].as_f64().unwrap() as f32 * r.height as f32,
                    );
                    (nose.x - tx).hypot(nose.y - ty) > 0.05 * diag
                })
            {
                eprintln!("{name}: MediaPipe followed another person; not compared");
                break;
            }
            eprintln!(
                "{name}: {part}: {:.3} % of the diagonal ({mean:.1} px; all points {:.3} %)",
                mean / diag * 100.0,
                all / diag * 100.0
            );
            if single && (part == "pose" || part == "face") {
                asserted += 1;
                if mean / diag > 0.02 {
                    failures.push(format!("{name}: {part}: {:.2} %", mean / diag * 100.0));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
    assert_eq!(asserted, 6, "three single-person photos × pose and face");
}
