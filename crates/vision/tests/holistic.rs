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

/// The person MediaPipe's face belongs to: ours whose face mesh lies nearest theirs (their
/// point 1, the nose tip), when one lies within a tenth of the photo's diagonal.
fn same_face<'a>(r: &'a HolisticResult, theirs: &[Value]) -> Option<&'a [Landmark]> {
    let (tx, ty) = (
        theirs[1][0].as_f64().unwrap() as f32 * r.width as f32,
        theirs[1][1].as_f64().unwrap() as f32 * r.height as f32,
    );
    let diag = (r.width as f32).hypot(r.height as f32);
    r.people
        .iter()
        .map(|p| p.landmarks.face.as_slice())
        .filter(|face| face.len() > 1)
        .map(|face| (face, (face[1].x - tx).hypot(face[1].y - ty)))
        .filter(|(_, d)| *d < 0.1 * diag)
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(face, _)| face)
}

#[test]
fn refined_face_has_irises_where_mediapipe_puts_them() {
    // References: MediaPipe 0.10.21 Holistic with refine_face_landmarks=True (478 points, the
    // irises 468-477 from its attention mesh), bench/peers/mediapipe_holistic.py refs
    // --refine-face-landmarks. percept adds the irises from MediaPipe's iris model on the eye
    // crops of its own 468-point mesh. A person checks that each iris point sits where
    // MediaPipe's does, measured against the eye's width (corner to corner, 33-133 and
    // 362-263): an iris is about 40 % of it across, so a rim point on the wrong side (as a
    // mirrored eye's points would be, left unswapped) is 40 % off.
    let text =
        std::fs::read_to_string(root().join("tests/data/holistic_mediapipe_refined.json")).unwrap();
    let refs: Value = serde_json::from_str(&text).unwrap();
    let options = HolisticOptions {
        refine_face_landmarks: true,
        ..HolisticOptions::default()
    };
    let mut compared = 0;
    let mut failures = Vec::new();
    for (name, expected) in refs["photos"].as_object().unwrap() {
        let Some(theirs) = expected["face"].as_array() else {
            continue;
        };
        assert_eq!(theirs.len(), 478, "{name}");
        let r = run_with(name, &options);
        for person in &r.people {
            let n = person.landmarks.face.len();
            assert!(n == 0 || n == 478, "{name}: a refined face has {n} points");
        }
        let Some(ours) = same_face(&r, theirs) else {
            failures.push(format!("{name}: MediaPipe's face not found here"));
            continue;
        };
        let at = |i: usize| {
            (
                theirs[i][0].as_f64().unwrap() as f32 * r.width as f32,
                theirs[i][1].as_f64().unwrap() as f32 * r.height as f32,
            )
        };
        for (eye, (a, b), irises) in [
            ("eye at 33/133", (33, 133), 468..473),
            ("eye at 362/263", (362, 263), 473..478),
        ] {
            let width = {
                let (p, q) = (at(a), at(b));
                (p.0 - q.0).hypot(p.1 - q.1)
            };
            let errors: Vec<f32> = irises
                .map(|i| {
                    let (tx, ty) = at(i);
                    (ours[i].x - tx).hypot(ours[i].y - ty) / width
                })
                .collect();
            let worst = errors.iter().copied().fold(0.0, f32::max);
            let mean = errors.iter().sum::<f32>() / errors.len() as f32;
            eprintln!(
                "{name}: {eye}: iris points {:.1} % of the eye's width from MediaPipe's on average, {:.1} % at worst (eye {width:.0} px)",
                mean * 100.0,
                worst * 100.0
            );
            compared += 1;
            // Single-person photos: measured 1.8-2.8 % on average, 5.9 % at worst. In the
            // groups the eyes are 14-24 px wide and the two meshes themselves differ by a pixel
            // or two there (MediaPipe's attention mesh against the plain mesh): measured 4.5-13.2 %
            // on average, 16.8 % (3 px) at worst.
            let bar = if name.starts_with("person_") {
                0.10
            } else {
                0.20
            };
            if worst > bar {
                failures.push(format!("{name}: {eye}: {:.1} %", worst * 100.0));
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
    assert!(compared >= 10, "only {compared} eyes compared");
    // Off by default: the 468 points of before.
    let plain = run("person_astronaut.jpg");
    assert_eq!(plain.landmarks.face.len(), 468);
}

#[test]
fn segmentation_mask_matches_mediapipe() {
    // References: MediaPipe 0.10.21 Holistic with enable_segmentation=True, its
    // `segmentation_mask` written as 8-bit PNGs (bench/peers/mediapipe_holistic.py refs
    // --masks tests/data/holistic_masks). Both come from the same pose model's mask head; a
    // person checks that the same pixels are called person: IoU of the masks at p = 0.5.
    for complexity in [1, 0] {
        let options = HolisticOptions {
            enable_segmentation: true,
            model_complexity: complexity,
            max_people: 1,
            ..HolisticOptions::default()
        };
        for name in [
            "person_astronaut.jpg",
            "person_hopper.jpg",
            "person_hands_drink.jpg",
        ] {
            let stem = name.trim_end_matches(".jpg");
            let theirs = image::open(root().join(format!("tests/data/holistic_masks/{stem}.png")))
                .unwrap()
                .to_luma8();
            let r = run_with(name, &options);
            let ours = r.segmentation_mask.as_ref().unwrap();
            assert_eq!(ours.dimensions(), theirs.dimensions(), "{name}");
            let (mut both, mut either) = (0u64, 0u64);
            for (a, b) in ours.pixels().zip(theirs.pixels()) {
                let (a, b) = (a.0[0] >= 128, b.0[0] >= 128);
                both += u64::from(a && b);
                either += u64::from(a || b);
            }
            let iou = both as f64 / either.max(1) as f64;
            let share = either as f64 / f64::from(ours.width() * ours.height());
            eprintln!(
                "{name} (complexity {complexity}): IoU {iou:.3} with MediaPipe's mask (person on {:.0} % of the photo)",
                share * 100.0
            );
            // Measured 0.981 on all three with the full model. MediaPipe's mask is the full
            // model's; the lite model's own mask differs more (0.918-0.965).
            let bar = if complexity == 1 { 0.95 } else { 0.88 };
            assert!(iou >= bar, "{name} (complexity {complexity}): IoU {iou:.3}");
        }
    }
    // Off by default: no mask computed.
    assert!(run("person_astronaut.jpg").segmentation_mask.is_none());
}

/// MediaPipe's tracking mode on a still "video": the same photo three times. Later frames
/// find everyone where they were, mostly by following the first frame's poses (no detector
/// run); in a tight group a crop can hold a neighbour, and that person is searched for again.
#[test]
fn tracking_follows_every_person_into_the_next_frame() {
    for name in [
        "group4_hands.jpg",
        "group5_stairs.jpg",
        "person_astronaut.jpg",
    ] {
        let holistic = Holistic::new(models()).unwrap();
        let image = photo(name);
        let options = HolisticOptions::default();
        let mut tracker = percept_vision::HolisticTracker::new(25.0, 0, false);
        let first = tracker.next(&holistic, &image, &options).unwrap();
        let second = tracker.next(&holistic, &image, &options).unwrap();
        let third = tracker.next(&holistic, &image, &options).unwrap();
        assert_eq!(first.person_count, run(name).person_count, "{name}");
        for (frame, result) in [(2, &second), (3, &third)] {
            assert_eq!(
                result.person_count, first.person_count,
                "{name} frame {frame}"
            );
            let tracked = result.people.iter().filter(|p| p.seed == "tracked").count();
            // A lone person is followed; in a group at least someone is (the others' crops
            // settled on a neighbour and the detectors found them again).
            assert!(tracked >= 1, "{name} frame {frame}: {tracked} followed");
            for a in &first.people {
                let n = a.landmarks.pose[0];
                let nearest = result
                    .people
                    .iter()
                    .map(|b| {
                        let m = b.landmarks.pose[0];
                        (n.x - m.x).hypot(n.y - m.y)
                    })
                    .fold(f32::INFINITY, f32::min);
                // Ear to ear (or 2.2 eye distances when an ear is hidden), as the pipeline's
                // own head size: the crops differ, so the points may shift a little.
                let p = &a.landmarks.pose;
                let d = |i: usize, j: usize| (p[i].x - p[j].x).hypot(p[i].y - p[j].y);
                let head = d(7, 8).max(2.2 * d(2, 5));
                assert!(
                    nearest < 0.35 * head,
                    "{name} frame {frame}: nobody within {nearest} px of the nose at {:?}",
                    n.xy()
                );
            }
        }
    }
}
