#![allow(clippy::unwrap_used)] // tests: a failure should stop with the value that caused it

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use image::RgbImage;
use percept_infer::Models;
use percept_vision::{
    AnonymizeMode, AnonymizeOptions, BBox, DetectOptions, Face, FaceDetector, FastFaceDetector,
    anonymize,
};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
struct Labelled {
    width: u32,
    height: u32,
    faces: Vec<LabelBox>,
}

#[derive(Debug, Deserialize, Clone, Copy)]
struct LabelBox {
    x: f32,
    y: f32,
    width: f32,
    height: f32,
}

impl LabelBox {
    fn face_box(self) -> BBox {
        BBox {
            x: self.x,
            y: self.y,
            width: self.width,
            height: self.height,
        }
    }
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn detector() -> &'static FaceDetector {
    static DETECTOR: OnceLock<FaceDetector> = OnceLock::new();
    DETECTOR.get_or_init(|| {
        let models = Models::load(root().join("models"), &[FaceDetector::MODEL]).unwrap();
        FaceDetector::new(&models).unwrap()
    })
}

fn fast_detector() -> &'static FastFaceDetector {
    static DETECTOR: OnceLock<FastFaceDetector> = OnceLock::new();
    DETECTOR.get_or_init(|| {
        let models = Models::load(root().join("models"), &[FastFaceDetector::MODEL]).unwrap();
        FastFaceDetector::new(&models).unwrap()
    })
}

fn labels() -> BTreeMap<String, Labelled> {
    let text = std::fs::read_to_string(root().join("tests/data/faces.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn photo(name: &str) -> RgbImage {
    image::open(root().join("tests/data").join(name))
        .unwrap()
        .to_rgb8()
}

const MATCH_IOU: f32 = 0.3;

/// How many labelled faces some detection matches (IoU ≥ `MATCH_IOU`).
fn found(label: &Labelled, faces: &[Face]) -> usize {
    label
        .faces
        .iter()
        .filter(|l| faces.iter().any(|f| f.bbox.iou(&l.face_box()) >= MATCH_IOU))
        .count()
}

/// Detections that match no labelled face.
fn false_positives<'a>(label: &Labelled, faces: &'a [Face]) -> Vec<&'a Face> {
    faces
        .iter()
        .filter(|f| {
            label
                .faces
                .iter()
                .all(|l| f.bbox.iou(&l.face_box()) < MATCH_IOU)
        })
        .collect()
}

#[test]
fn finds_every_labelled_face_and_nothing_else() {
    let mut failures = Vec::new();
    for (name, label) in labels() {
        let img = photo(&name);
        assert_eq!(img.dimensions(), (label.width, label.height), "{name}");
        let faces = detector().detect(&img, &DetectOptions::default()).unwrap();
        let found = found(&label, &faces);
        let false_pos = false_positives(&label, &faces);
        let best: Vec<String> = label
            .faces
            .iter()
            .map(|l| {
                let iou = faces
                    .iter()
                    .map(|f| f.bbox.iou(&l.face_box()))
                    .fold(0.0, f32::max);
                format!("{iou:.2}")
            })
            .collect();
        println!(
            "{name}: recall {found}/{} (best IoU {best:?}), {} detections, {} false positives",
            label.faces.len(),
            faces.len(),
            false_pos.len()
        );
        if found != label.faces.len() || !false_pos.is_empty() {
            failures.push(format!(
                "{name}: {found}/{} found, false positives {false_pos:?}",
                label.faces.len()
            ));
        }
        for f in &faces {
            assert!(f.score >= 0.5 && f.score <= 1.0, "{name}: {f:?}");
            assert!(f.bbox.x >= 0.0 && f.bbox.x + f.bbox.width <= label.width as f32 + 0.01);
            assert!(f.bbox.y >= 0.0 && f.bbox.y + f.bbox.height <= label.height as f32 + 0.01);
            // The nose lies inside its face box.
            let nose = f.landmarks[2];
            assert!(
                nose.x >= f.bbox.x && nose.x <= f.bbox.x + f.bbox.width,
                "{name}: {f:?}"
            );
            assert!(
                nose.y >= f.bbox.y && nose.y <= f.bbox.y + f.bbox.height,
                "{name}: {f:?}"
            );
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

/// The `fast` mode is MediaPipe's own full-range detector: it must find at least what
/// MediaPipe 0.10.21's `FaceDetection(model_selection=1)` finds on these photos (18 of the 19
/// labelled faces at IoU ≥ 0.3, no false positive: BENCHMARKS.md, "Face detection peers"),
/// and its points must sit inside their boxes.
#[test]
fn fast_mode_finds_what_mediapipe_finds() {
    const MEDIAPIPE_FOUND: usize = 18;
    let (mut total, mut labelled, mut false_pos) = (0, 0, Vec::new());
    for (name, label) in labels() {
        let img = photo(&name);
        let faces = fast_detector()
            .detect(&img, &DetectOptions::default())
            .unwrap();
        let hit = found(&label, &faces);
        println!(
            "{name}: {hit}/{} found, {} detections",
            label.faces.len(),
            faces.len()
        );
        total += hit;
        labelled += label.faces.len();
        false_pos.extend(
            false_positives(&label, &faces)
                .into_iter()
                .map(|f| format!("{name}: {f:?}")),
        );
        for f in &faces {
            assert!(f.score >= 0.5 && f.score <= 1.0, "{name}: {f:?}");
            for p in &f.landmarks[..4] {
                let (cx, cy) = (
                    f.bbox.x + f.bbox.width / 2.0,
                    f.bbox.y + f.bbox.height / 2.0,
                );
                assert!(
                    (p.x - cx).abs() <= f.bbox.width && (p.y - cy).abs() <= f.bbox.height,
                    "{name}: a point far outside its face: {f:?}"
                );
            }
            assert!(
                f.landmarks[0].x <= f.landmarks[1].x,
                "{name}: eyes unordered"
            );
        }
    }
    assert!(
        total >= MEDIAPIPE_FOUND,
        "fast mode found {total}/{labelled}, MediaPipe finds {MEDIAPIPE_FOUND}"
    );
    assert!(false_pos.is_empty(), "{false_pos:#?}");
}

fn mean_abs_diff(a: &RgbImage, b: &RgbImage, bx: &LabelBox, shrink: f32) -> f32 {
    let (dx, dy) = (bx.width * shrink / 2.0, bx.height * shrink / 2.0);
    let (x0, y0) = ((bx.x + dx) as u32, (bx.y + dy) as u32);
    let (x1, y1) = (
        (bx.x + bx.width - dx) as u32,
        (bx.y + bx.height - dy) as u32,
    );
    let (mut sum, mut n) = (0u64, 0u64);
    for y in y0..y1.min(a.height()) {
        for x in x0..x1.min(a.width()) {
            let (p, q) = (a.get_pixel(x, y).0, b.get_pixel(x, y).0);
            sum += (0..3).map(|c| u64::from(p[c].abs_diff(q[c]))).sum::<u64>();
            n += 3;
        }
    }
    sum as f32 / n.max(1) as f32
}

#[test]
fn anonymised_faces_change_and_background_does_not() {
    for (name, label) in labels() {
        if label.faces.is_empty() {
            continue;
        }
        let original = photo(&name);
        let faces = detector()
            .detect(&original, &DetectOptions::default())
            .unwrap();
        for mode in [
            AnonymizeMode::Blur,
            AnonymizeMode::Pixelate,
            AnonymizeMode::Box,
        ] {
            let opts = AnonymizeOptions {
                mode,
                ..Default::default()
            };
            let mut img = original.clone();
            anonymize(&mut img, &faces, &opts).unwrap();
            for l in &label.faces {
                // The middle half of the face (eyes, nose, mouth) must be thoroughly changed.
                let diff = mean_abs_diff(&original, &img, l, 0.5);
                let floor = if mode == AnonymizeMode::Box {
                    40.0
                } else {
                    8.0
                };
                assert!(
                    diff > floor,
                    "{name} {mode:?}: face {l:?} changed by only {diff:.1}"
                );
            }
            // Pixels well outside every enlarged face box are untouched.
            for (x, y, p) in img.enumerate_pixels() {
                let near = faces.iter().any(|f| {
                    let b = f.bbox;
                    let m = 0.2 * b.width.max(b.height) + 2.0;
                    (x as f32) > b.x - m
                        && (x as f32) < b.x + b.width + m
                        && (y as f32) > b.y - m
                        && (y as f32) < b.y + b.height + m
                });
                if !near {
                    assert_eq!(p, original.get_pixel(x, y), "{name} {mode:?} at {x},{y}");
                }
            }
        }
    }
}

#[test]
fn blur_strength_grows_with_the_face() {
    // A big face blurred at default strength must lose its detail, not just soften: the
    // detector no longer finds it.
    let original = photo("person_hopper.jpg");
    let faces = detector()
        .detect(&original, &DetectOptions::default())
        .unwrap();
    assert_eq!(faces.len(), 1);
    let mut img = original;
    anonymize(&mut img, &faces, &AnonymizeOptions::default()).unwrap();
    let after = detector().detect(&img, &DetectOptions::default()).unwrap();
    assert!(
        after.iter().all(|f| f.bbox.iou(&faces[0].bbox) < 0.3),
        "{after:?}"
    );
}

#[test]
fn bad_options_are_rejected() {
    let img = photo("group4_small_faces.jpg");
    let bad = DetectOptions {
        min_score: 1.5,
        ..Default::default()
    };
    assert!(detector().detect(&img, &bad).is_err());
    let mut copy = img.clone();
    let faces = detector().detect(&img, &DetectOptions::default()).unwrap();
    let bad = AnonymizeOptions {
        box_scale: 9.0,
        ..Default::default()
    };
    assert!(anonymize(&mut copy, &faces, &bad).is_err());
    assert_eq!(copy, img);
}

#[test]
fn tiny_and_large_images_do_not_fail() {
    let tiny = RgbImage::new(1, 1);
    assert!(
        detector()
            .detect(&tiny, &DetectOptions::default())
            .unwrap()
            .is_empty()
    );
    // A large photo (tiled path): the astronaut repeated on a big canvas is found in every copy.
    let face = photo("person_astronaut.jpg");
    let mut big = RgbImage::new(2600, 1400);
    for (i, x) in [0i64, 1000, 2088].into_iter().enumerate() {
        image::imageops::replace(&mut big, &face, x, (i as i64) * 400);
    }
    let faces = detector().detect(&big, &DetectOptions::default()).unwrap();
    for (i, x) in [0f32, 1000.0, 2088.0].into_iter().enumerate() {
        let want = BBox {
            x: x + 175.0,
            y: i as f32 * 400.0 + 68.0,
            width: 100.0,
            height: 112.0,
        };
        assert!(
            faces.iter().any(|f| f.bbox.iou(&want) >= MATCH_IOU),
            "copy {i}: {faces:?}"
        );
    }
    assert_eq!(faces.len(), 3, "{faces:?}");
}

#[path = "../../infer/tests/common/mod.rs"]
mod common;

/// CenterFace on ONNX Runtime, which loads the int8 file (`[model.quantized]`); `None` when the
/// library is missing (the helper says so, and fails under `PERCEPT_REQUIRE_ORT=1`).
fn ort_detector() -> Option<&'static FaceDetector> {
    static DETECTOR: OnceLock<Option<FaceDetector>> = OnceLock::new();
    DETECTOR
        .get_or_init(|| {
            let engine = common::ort_engine()?;
            let models =
                Models::load_with(root().join("models"), &[FaceDetector::MODEL], &engine).unwrap();
            assert!(
                models
                    .get(FaceDetector::MODEL)
                    .unwrap()
                    .spec()
                    .runs_quantized
            );
            Some(FaceDetector::new(&models).unwrap())
        })
        .as_ref()
}

/// The photo scaled to cover `size` and centre-cropped, as `bench/peers/face_e2e.py` makes its
/// copies; labels that keep ≥ 60 % of their area come along, the others are `partial` (a
/// detection on a face the crop cuts is neither found nor false).
fn covered(img: &RgbImage, label: &Labelled, size: (u32, u32)) -> (RgbImage, Labelled, Labelled) {
    let (w, h) = img.dimensions();
    let s = (size.0 as f32 / w as f32).max(size.1 as f32 / h as f32);
    let (sw, sh) = (
        ((w as f32 * s).round() as u32).max(size.0),
        ((h as f32 * s).round() as u32).max(size.1),
    );
    let (ox, oy) = ((sw - size.0) / 2, (sh - size.1) / 2);
    let scaled = image::imageops::resize(img, sw, sh, image::imageops::FilterType::Lanczos3);
    let crop = image::imageops::crop_imm(&scaled, ox, oy, size.0, size.1).to_image();
    let (sx, sy) = (sw as f32 / w as f32, sh as f32 / h as f32);
    let (mut full, mut partial) = (Vec::new(), Vec::new());
    for f in &label.faces {
        let (x, y, fw, fh) = (
            f.x * sx - ox as f32,
            f.y * sy - oy as f32,
            f.width * sx,
            f.height * sy,
        );
        let (x0, y0) = (x.max(0.0), y.max(0.0));
        let (x1, y1) = ((x + fw).min(size.0 as f32), (y + fh).min(size.1 as f32));
        if x1 <= x0 || y1 <= y0 {
            continue;
        }
        let b = LabelBox {
            x: x0,
            y: y0,
            width: x1 - x0,
            height: y1 - y0,
        };
        if (x1 - x0) * (y1 - y0) / (fw * fh) >= 0.6 {
            full.push(b);
        } else {
            partial.push(b);
        }
    }
    let labelled = |faces| Labelled {
        width: size.0,
        height: size.1,
        faces,
    };
    (crop, labelled(full), labelled(partial))
}

/// Detections that match neither a labelled face nor a face the crop cut.
fn false_positives_beside<'a>(
    full: &Labelled,
    partial: &Labelled,
    faces: &'a [Face],
) -> Vec<&'a Face> {
    false_positives(full, faces)
        .into_iter()
        .filter(|f| {
            partial
                .faces
                .iter()
                .all(|l| f.bbox.iou(&l.face_box()) < MATCH_IOU)
        })
        .collect()
}

/// Issue #16: the accurate mode finds every labelled face at every size users send, from
/// thumbnails to camera photos, on both engines (ONNX Runtime runs the int8 CenterFace, tract
/// the float one), with no false positive. The sizes are `face_e2e.py`'s (BENCHMARKS.md).
#[test]
fn accurate_mode_finds_every_face_at_every_size() {
    let sizes = [(112, 112), (640, 480), (1920, 1080), (4000, 3000)];
    let mut engines: Vec<(&str, &FaceDetector)> = vec![("tract (float)", detector())];
    if let Some(ort) = ort_detector() {
        engines.push(("ort (int8)", ort));
    }
    let mut failures = Vec::new();
    for (name, label) in labels() {
        let original = photo(&name);
        for size in sizes {
            let (img, full, partial) = covered(&original, &label, size);
            for (engine, detector) in &engines {
                let faces = detector.detect(&img, &DetectOptions::default()).unwrap();
                let hit = found(&full, &faces);
                let false_pos = false_positives_beside(&full, &partial, &faces);
                println!(
                    "{name} {}x{} {engine}: {hit}/{} found, {} false",
                    size.0,
                    size.1,
                    full.faces.len(),
                    false_pos.len()
                );
                if hit != full.faces.len() || !false_pos.is_empty() {
                    failures.push(format!(
                        "{name} at {}x{} on {engine}: {hit}/{} found, false positives {false_pos:?}",
                        size.0,
                        size.1,
                        full.faces.len()
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

/// The int8 CenterFace ONNX Runtime loads and the float one tract runs find the same faces at
/// nearly the same places: the engine difference is the quantisation's rounding, not a
/// different answer.
#[test]
fn engines_find_the_same_faces() {
    let Some(ort) = ort_detector() else { return };
    for (name, _) in labels() {
        let img = photo(&name);
        let a = detector().detect(&img, &DetectOptions::default()).unwrap();
        let b = ort.detect(&img, &DetectOptions::default()).unwrap();
        assert_eq!(a.len(), b.len(), "{name}: {a:?} vs {b:?}");
        for f in &a {
            let twin = b
                .iter()
                .max_by(|p, q| f.bbox.iou(&p.bbox).total_cmp(&f.bbox.iou(&q.bbox)))
                .unwrap();
            let iou = f.bbox.iou(&twin.bbox);
            println!(
                "{name}: IoU {iou:.3}, score {:.3} vs {:.3}",
                f.score, twin.score
            );
            assert!(iou >= 0.85, "{name}: {f:?} vs {twin:?}");
            assert!(
                (f.score - twin.score).abs() <= 0.05,
                "{name}: {f:?} vs {twin:?}"
            );
        }
    }
}

/// Issue #16: the `fast` mode finds at least what MediaPipe's pipeline finds at each size
/// (`FaceDetection(model_selection=1)` on the same copies in `bench/peers/face_e2e.py`, the run in
/// BENCHMARKS.md, "Face anonymisation end to end": 17/19, 18/19, 16/18, 19/19), with no
/// false positive.
#[test]
fn fast_mode_finds_what_mediapipe_finds_at_every_size() {
    const MEDIAPIPE: [((u32, u32), usize); 4] = [
        ((112, 112), 17),
        ((640, 480), 18),
        ((1920, 1080), 16),
        ((4000, 3000), 19),
    ];
    let labels = labels();
    let originals: Vec<(String, RgbImage)> = labels.keys().map(|n| (n.clone(), photo(n))).collect();
    for (size, mediapipe) in MEDIAPIPE {
        let (mut hits, mut false_pos) = (0, Vec::new());
        for (name, original) in &originals {
            let (img, full, partial) = covered(original, &labels[name], size);
            let faces = fast_detector()
                .detect(&img, &DetectOptions::default())
                .unwrap();
            let hit = found(&full, &faces);
            println!("{name} {}x{}: {hit}/{}", size.0, size.1, full.faces.len());
            hits += hit;
            false_pos.extend(
                false_positives_beside(&full, &partial, &faces)
                    .into_iter()
                    .map(|f| format!("{name}: {f:?}")),
            );
        }
        assert!(
            hits >= mediapipe,
            "{}x{}: fast found {hits}, MediaPipe {mediapipe}",
            size.0,
            size.1
        );
        assert!(
            false_pos.is_empty(),
            "{}x{}: {false_pos:#?}",
            size.0,
            size.1
        );
    }
}
