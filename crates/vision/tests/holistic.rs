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
    run_with(name, &HolisticOptions::default())
}

fn run_with(name: &str, options: &HolisticOptions) -> HolisticResult {
    let holistic = Holistic::new(models()).unwrap();
    holistic.run(&photo(name), options).unwrap()
}

fn true_faces(name: &str) -> Vec<[f32; 4]> {
    let text = std::fs::read_to_string(root().join("tests/data/faces.json")).unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    v[name]["faces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| ["x", "y", "width", "height"].map(|k| p[k].as_f64().unwrap() as f32))
        .collect()
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
        assert_eq!(r.landmarks.pose.len(), 33, "{name}");
        assert_eq!(r.landmarks.face.len(), 468, "{name}: face mesh missing");
        let person = people(name)[0];
        // Every pose point the model calls visible lies on the labelled person.
        for (i, lm) in r.landmarks.pose.iter().enumerate() {
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
        let outside = r
            .landmarks
            .face
            .iter()
            .filter(|lm| !inside(lm, fb, margin))
            .count();
        assert!(
            outside <= 468 / 50,
            "{name}: {outside} mesh points off the face {fb:?}"
        );
        let (nose_mesh, nose_pose) = (r.landmarks.face[1], r.landmarks.pose[0]);
        let d = (nose_mesh.x - nose_pose.x).hypot(nose_mesh.y - nose_pose.y);
        assert!(
            d < 0.25 * face.width,
            "{name}: mesh nose {d} px from pose nose"
        );
        // Normalised copies agree with the pixels.
        let lm = r.landmarks.pose[0];
        assert!((lm.nx * r.width as f32 - lm.x).abs() < 1e-3);
        assert_eq!(
            r.landmarks.landmark_count,
            r.landmarks.pose.len()
                + r.landmarks.face.len()
                + r.landmarks.left_hand.len()
                + r.landmarks.right_hand.len()
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
        for r in run(name).people {
            for (hand, wrist_index) in [
                (&r.landmarks.left_hand, 15usize),
                (&r.landmarks.right_hand, 16usize),
            ] {
                if hand.is_empty() {
                    continue;
                }
                assert_eq!(hand.len(), 21, "{name}");
                found += 1;
                let wrist = r.landmarks.pose[wrist_index];
                let other = r.landmarks.pose[31 - wrist_index]; // 15 <-> 16
                let d_own = (hand[0].x - wrist.x).hypot(hand[0].y - wrist.y);
                let d_other = (hand[0].x - other.x).hypot(hand[0].y - other.y);
                // The body's scale: shoulder width, or half the torso for a person seen side on.
                let d = |a: usize, b: usize| {
                    (r.landmarks.pose[a].x - r.landmarks.pose[b].x)
                        .hypot(r.landmarks.pose[a].y - r.landmarks.pose[b].y)
                };
                let shoulders = d(11, 12).max(0.5 * d(11, 23)).max(0.5 * d(12, 24));
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
    }
    assert!(found >= 2, "only {found} hands found");
}

#[test]
fn every_person_in_a_group_is_tracked_on_their_own_body() {
    // The hand-labelled person boxes (people.json) and faces (faces.json) of the group photos.
    // Each tracked person's visible pose points lie mostly inside one labelled person, no two
    // tracked people are the same labelled person, their face mesh (when found) sits on a
    // labelled face, and most of the people in each photo are tracked (the people stage is
    // parsing's: it misses the same few — a face half hidden behind a neighbour).
    // `group4_small_faces.jpg` (256 × 205, four people 60 px wide shoulder to shoulder) is a
    // known limit left out: the pose model there lays one skeleton across two people.
    for (name, at_least) in [
        ("group3_costumes.jpg", 3),
        ("group4_hands.jpg", 3),
        ("group5_stairs.jpg", 4),
    ] {
        let r = run(name);
        let boxes = people(name);
        let faces = true_faces(name);
        assert_eq!(r.person_count, r.people.len(), "{name}");
        // The labels list each photo's people and faces in the same order.
        for (k, (b, f)) in boxes.iter().zip(&faces).enumerate() {
            let (cx, cy) = (f[0] + f[2] / 2.0, f[1] + f[3] / 2.0);
            assert!(
                cx > b[0] && cx < b[0] + b[2] && cy > b[1] && cy < b[1] + b[3],
                "{name}: {k}"
            );
        }
        let mut matched: Vec<usize> = Vec::new();
        for p in &r.people {
            assert_eq!(p.landmarks.pose.len(), 33, "{name}: person {}", p.index);
            // Who they are: the labelled face their pose's nose is on.
            let nose = p.landmarks.pose[0];
            let who = faces.iter().position(|f| {
                let g = 0.25 * f[2].max(f[3]);
                nose.x >= f[0] - g
                    && nose.x <= f[0] + f[2] + g
                    && nose.y >= f[1] - g
                    && nose.y <= f[1] + f[3] + g
            });
            let Some(who) = who else {
                panic!(
                    "{name}: person {}'s nose {nose:?} is on no labelled face",
                    p.index
                );
            };
            assert!(
                !matched.contains(&who),
                "{name}: labelled person {who} tracked twice"
            );
            matched.push(who);
            let visible: Vec<&Landmark> = p
                .landmarks
                .pose
                .iter()
                .filter(|lm| lm.visibility.unwrap() > 0.5 && lm.presence.unwrap() > 0.5)
                .collect();
            let margin = 0.03 * r.width.max(r.height) as f32;
            let on_body = visible
                .iter()
                .filter(|lm| inside(lm, boxes[who], margin))
                .count();
            eprintln!(
                "{name}: person {} ({}) is labelled person {who}: {on_body}/{} visible points on them, face {}, hands {}+{}",
                p.index,
                p.seed,
                visible.len(),
                p.landmarks.face.len(),
                p.landmarks.left_hand.len(),
                p.landmarks.right_hand.len()
            );
            assert!(
                on_body * 10 >= visible.len() * 8,
                "{name}: person {}: {on_body} of {} visible pose points on them",
                p.index,
                visible.len()
            );
            if !p.landmarks.face.is_empty() {
                let n = p.landmarks.face.len() as f32;
                let (cx, cy) = (
                    p.landmarks.face.iter().map(|lm| lm.x).sum::<f32>() / n,
                    p.landmarks.face.iter().map(|lm| lm.y).sum::<f32>() / n,
                );
                let f = faces[who];
                let g = 0.25 * f[2].max(f[3]);
                assert!(
                    cx >= f[0] - g
                        && cx <= f[0] + f[2] + g
                        && cy >= f[1] - g
                        && cy <= f[1] + f[3] + g,
                    "{name}: person {}'s face mesh at {cx},{cy} is off their face",
                    p.index
                );
            }
        }
        assert!(
            r.people.len() >= at_least,
            "{name}: {} of {} people tracked",
            r.people.len(),
            boxes.len()
        );
        // The top-level fields repeat the most prominent (first) person.
        let first = &r.people[0];
        assert_eq!(r.landmarks.pose, first.landmarks.pose, "{name}");
        assert_eq!(r.landmarks.face, first.landmarks.face, "{name}");
        assert_eq!(
            r.landmarks.landmark_count, first.landmarks.landmark_count,
            "{name}"
        );
        assert!(
            r.people
                .windows(2)
                .all(|w| w[0].bbox.area() >= w[1].bbox.area())
        );
    }
}

#[test]
fn one_person_at_most_is_mediapipes_answer() {
    // `max_people = 1` is MediaPipe's single person; on a single-person photo the default
    // answers with the same landmarks.
    for name in [
        "person_astronaut.jpg",
        "person_hopper.jpg",
        "group5_stairs.jpg",
    ] {
        let one = run_with(
            name,
            &HolisticOptions {
                max_people: 1,
                ..HolisticOptions::default()
            },
        );
        assert_eq!(one.person_count, 1, "{name}");
        if name.starts_with("person_") {
            let all = run(name);
            assert_eq!(all.person_count, 1, "{name}");
            assert_eq!(one.landmarks.pose, all.landmarks.pose, "{name}");
            assert_eq!(one.landmarks.face, all.landmarks.face, "{name}");
            assert_eq!(one.landmarks.left_hand, all.landmarks.left_hand, "{name}");
        }
    }
    let bad = HolisticOptions {
        max_people: 0,
        ..HolisticOptions::default()
    };
    assert!(
        Holistic::new(models())
            .unwrap()
            .run(&photo("person_hopper.jpg"), &bad)
            .is_err()
    );
}

#[test]
fn no_person_gives_empty_parts() {
    let r = run("none_chelsea.png");
    assert_eq!(r.landmarks.landmark_count, 0);
    assert!(
        r.landmarks.pose.is_empty()
            && r.landmarks.face.is_empty()
            && r.landmarks.left_hand.is_empty()
            && r.landmarks.right_hand.is_empty()
    );
    assert!(!r.landmarks.parts.pose.present && !r.landmarks.parts.face.present);
    assert_eq!(r.person_count, 0);
    assert!(r.people.is_empty() && r.person.is_none());
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
    agrees_with("holistic_mediapipe.json", 1, 0.02);
}

#[test]
fn lite_agrees_with_mediapipe_holistic_lite() {
    // MediaPipe with model_complexity=0 (BlazePose lite), as users of the lighter setting run it.
    // The lite model's answer swings more with small differences in its input: MediaPipe's own
    // lite and full poses differ by 1.5-8.1 % of the diagonal on these photos, and percept's
    // lite pose lies 1.4-3.2 % from MediaPipe's lite (person_hopper.jpg, a head-and-shoulders
    // portrait, the farthest), so the pose bar is 3.5 %; the face mesh still agrees within
    // 0.3 %.
    agrees_with("holistic_mediapipe_lite.json", 0, 0.035);
}

fn agrees_with(refs_file: &str, model_complexity: u8, pose_bar: f32) {
    // References: MediaPipe 0.10.21 Holistic (model_complexity=1, static images) on the same
    // photos, written by bench/peers/mediapipe_holistic.py. The bar (issue #5): mean landmark
    // distance ≤ 2 % of the image diagonal for pose and face. For the pose it is taken over
    // the points MediaPipe calls visible (> 0.5): the others are the model's guesses at hidden
    // or out-of-frame joints, which swing by a limb's length with a pixel of ROI difference;
    // their mean over all 33 is printed too. Holistic follows one person, the detector's best;
    // in a group near-equal scores make that choice fragile, so group photos are compared
    // (and printed) only when both followed the same person, and asserted on single-person
    // photos.
    let text = std::fs::read_to_string(root().join("tests/data").join(refs_file)).unwrap();
    let refs: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(refs["model_complexity"], u64::from(model_complexity));
    let options = HolisticOptions {
        model_complexity,
        ..HolisticOptions::default()
    };
    let photos = refs["photos"].as_object().unwrap();
    let mut failures: Vec<String> = Vec::new();
    let mut asserted = 0;
    for (name, expected) in photos {
        let r = run_with(name, &options);
        let diag = (r.width as f32).hypot(r.height as f32);
        let single = name.starts_with("person_");
        for (part, ours) in [
            ("pose", &r.landmarks.pose),
            ("face", &r.landmarks.face),
            ("left_hand", &r.landmarks.left_hand),
            ("right_hand", &r.landmarks.right_hand),
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
                && r.landmarks.pose.first().is_some_and(|nose| {
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
                let bar = if part == "pose" { pose_bar } else { 0.02 };
                if mean / diag > bar {
                    failures.push(format!("{name}: {part}: {:.2} %", mean / diag * 100.0));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
    assert_eq!(asserted, 6, "three single-person photos × pose and face");
}
