#![allow(clippy::unwrap_used)] // tests: a failure should stop with the value that caused it

//! tract and ONNX Runtime must give the same outputs on real inputs (DESIGN §4). Needs the ONNX
//! Runtime library (`scripts/fetch-ort`, or `PERCEPT_ORT_DYLIB`); without it these tests say so
//! loudly and pass, unless `PERCEPT_REQUIRE_ORT=1`, which makes a missing library a failure.

use std::path::{Path, PathBuf};
use std::sync::Arc;

mod common;

use common::ort_engine;
use image::RgbImage;
use percept_infer::{
    Engine, EngineKind, Fit, LoadedModel, Models, Tensor, TractEngine, image_to_tensor,
};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The model's float file on `engine` (an 8-bit file some engine loads instead is compared
/// on its own, `lip_parser_int8_labels_as_the_float_file_does`).
fn load(name: &str, engine: &dyn Engine) -> LoadedModel {
    let models = Models::load_float_with(root().join("models"), &[name], engine).unwrap();
    assert_eq!(models.engine(), engine.kind());
    let model = models.get(name).unwrap().clone();
    assert!(!model.spec().runs_quantized);
    model
}

fn astronaut() -> RgbImage {
    image::open(root().join("tests/data/person_astronaut.jpg"))
        .unwrap()
        .to_rgb8()
}

/// The model's input made from the `(x, y, side)` square of the photo (boxes from
/// tests/data/faces.json and people.json), fitted the way the manifest says.
fn input_for(model: &LoadedModel, square: (u32, u32, u32)) -> Tensor {
    let photo = astronaut();
    let (x, y, side) = square;
    let crop = image::imageops::crop_imm(&photo, x, y, side, side).to_image();
    let spec = &model.spec().input;
    let (h, w) = spec.fixed_hw().unwrap();
    let target = (w as u32, h as u32);
    let fit = match spec.resize {
        Some(percept_infer::manifest::ResizeMode::Stretch) => {
            Fit::stretch(crop.dimensions(), target)
        }
        _ => Fit::letterbox(crop.dimensions(), target),
    }
    .unwrap();
    image_to_tensor(&crop, &fit, spec)
}

/// The largest absolute difference between two tensors' values.
fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    a.data()
        .iter()
        .zip(b.data())
        .map(|(x, y)| (x - y).abs())
        .fold(0.0f32, f32::max)
}

fn sigmoid(v: f32) -> f32 {
    1.0 / (1.0 + (-v).exp())
}

/// Per output: the largest difference, relative to the output's scale (its largest magnitude,
/// at least 1 so near-zero outputs are compared absolutely). Outputs the manifest calls logits
/// are compared as the probabilities pipelines make of them: pose segmentation logits reach
/// ±1700 where a difference of 0.5 still means the same pixel of the same mask.
fn compare(name: &str, square: (u32, u32, u32)) {
    let Some(ort) = ort_engine() else { return };
    let tract = load(name, &TractEngine);
    let onnx = load(name, &ort);
    assert_eq!(onnx.session().engine(), EngineKind::Ort);
    let input = input_for(&tract, square);
    let a = tract.run(&input).unwrap();
    let b = onnx.run(&input).unwrap();
    assert_eq!(a.len(), b.len(), "{name}: output count");
    for (i, (a, b)) in a.iter().zip(&b).enumerate() {
        assert_eq!(a.shape(), b.shape(), "{name} output {i}: shape");
        let logits = tract.spec().outputs[i]
            .meaning
            .as_deref()
            // Not the landmark tensors, which only carry a few logits among pixel coordinates.
            .is_some_and(|m| m.contains("logit") && !m.contains("landmarks"));
        let (a, b) = if logits {
            let probabilities = |t: &Tensor| {
                Tensor::new(
                    t.shape().to_vec(),
                    t.data().iter().map(|&v| sigmoid(v)).collect(),
                )
                .unwrap()
            };
            (probabilities(a), probabilities(b))
        } else {
            (a.clone(), b.clone())
        };
        let scale = a.data().iter().fold(1.0f32, |m, v| m.max(v.abs()));
        let max_diff = max_abs_diff(&a, &b);
        let mean_diff = a
            .data()
            .iter()
            .zip(b.data())
            .map(|(x, y)| f64::from((x - y).abs()))
            .sum::<f64>()
            / a.len().max(1) as f64;
        let relative = max_diff / scale;
        let elementwise = a
            .data()
            .iter()
            .zip(b.data())
            .map(|(x, y)| (x - y).abs() / x.abs().max(1.0))
            .fold(0.0f32, f32::max);
        eprintln!(
            "{name} output {i} {:?}{}: scale {scale:.3}, max |diff| {max_diff:.3e} \
             (relative to scale {relative:.3e}, per value {elementwise:.3e}), mean |diff| {mean_diff:.3e}",
            a.shape(),
            if logits { " as sigmoid" } else { "" }
        );
        assert!(
            a.data().iter().chain(b.data()).all(|v| v.is_finite()),
            "{name} output {i}: non-finite values"
        );
        let limit = if logits { PROBABILITY_LIMIT } else { LIMIT };
        assert!(
            relative < limit,
            "{name} output {i}: engines differ by {max_diff} (relative {relative} ≥ {limit})"
        );
    }
}

// Limits, from what was measured (run with --nocapture to see every output): both engines
// compute in f32 with different kernels, summation orders and fusions, so rounding differs a
// little per op and accumulates through the layers.
//
// Values relative to the output's scale: at most 4e-6 measured (pose landmarks: 1.3e-3 px on a
// 340 px scale). 1e-4 leaves room for other CPUs' SIMD paths and is still far below anything a
// pipeline could notice (0.03 px on a 256 px crop).
const LIMIT: f32 = 1e-4;
// Logits as probabilities: detection and presence scores differ by at most 1e-6; the pose
// segmentation mask by 2.2e-3 at a few edge pixels (mean 8e-7), because its logits reach ±1700
// and keep the rounding of those large sums. 5e-3 (half a percent of probability, at the edge
// of the mask) flips no pixel a 0.5 threshold would not already hesitate on.
const PROBABILITY_LIMIT: f32 = 5e-3;

#[test]
fn face_detection_full_range_agrees() {
    compare("face_detection_full_range", (0, 0, 512));
}

#[test]
fn pose_landmark_full_agrees() {
    // people.json: the person is (15, 22) 405×490; a square around it.
    compare("pose_landmark_full", (0, 22, 490));
}

#[test]
fn lip_parser_agrees_and_gives_the_same_labels() {
    // The trained parser on the pose crop's square around the person.
    compare("lip_parser", (0, 22, 490));
    let Some(ort) = ort_engine() else { return };
    let tract = load("lip_parser", &TractEngine);
    let onnx = load("lip_parser", &ort);
    let input = input_for(&tract, (0, 22, 490));
    let (a, b) = (tract.run(&input).unwrap(), onnx.run(&input).unwrap());
    let (la, lb) = (labels(&a[0]), labels(&b[0]));
    let same = la.iter().zip(&lb).filter(|(x, y)| x == y).count();
    let labelled = la.iter().filter(|&&l| l != 0).count();
    eprintln!(
        "lip_parser: {same} of {} labels agree, {labelled} person pixels",
        la.len()
    );
    assert!(labelled > la.len() / 10, "the astronaut is labelled");
    assert!(same * 1000 >= la.len() * 999, "{same} of {}", la.len());
}

/// The per-pixel label (arg-max over the planes) of an NCHW score tensor.
fn labels(t: &Tensor) -> Vec<usize> {
    let (c, plane) = (t.shape()[1], t.shape()[2] * t.shape()[3]);
    (0..plane)
        .map(|i| {
            (0..c)
                .max_by(|&x, &y| t.data()[x * plane + i].total_cmp(&t.data()[y * plane + i]))
                .unwrap_or(0)
        })
        .collect()
}

#[test]
fn lip_parser_int8_labels_as_the_float_file_does() {
    // The file both engines load by default (`[model.quantized]`: the head's heaviest
    // convolutions in 8 bits), on ONNX Runtime's integer kernels, against the float file it
    // was made from: measured 97.2 % of the pixels either calls the person's labelled alike
    // (99.4 % of all pixels). The held-out scores of both are in models/train/parsing.
    let Some(ort) = ort_engine() else { return };
    let models = Models::load_with(root().join("models"), &["lip_parser"], &ort).unwrap();
    let int8 = models.get("lip_parser").unwrap();
    assert!(
        int8.spec().runs_quantized,
        "ONNX Runtime loads lip_parser_int8.onnx"
    );
    let float = load("lip_parser", &TractEngine);
    let input = input_for(&float, (0, 22, 490));
    let (a, b) = (
        labels(&float.run(&input).unwrap()[0]),
        labels(&int8.run(&input).unwrap()[0]),
    );
    let same = a.iter().zip(&b).filter(|(x, y)| x == y).count();
    let person = a
        .iter()
        .zip(&b)
        .filter(|&(&x, &y)| x != 0 || y != 0)
        .count();
    let person_same = a
        .iter()
        .zip(&b)
        .filter(|&(&x, &y)| x == y && x != 0)
        .count();
    eprintln!(
        "lip_parser int8 vs float: {same} of {} labels agree; {person_same} of {person} \
         pixels either labels as the person",
        a.len()
    );
    assert!(person > a.len() / 10, "the astronaut is labelled");
    assert!(
        person_same * 100 >= person * 95,
        "{person_same} of {person}"
    );
}

#[test]
fn face_landmark_agrees() {
    // faces.json: the face is (175, 68) 100×112; MediaPipe crops 1.5× that, square.
    compare("face_landmark", (141, 40, 168));
}

#[test]
fn hand_recrop_agrees() {
    // Its PRelu layers run as Min/Mul/Add on ONNX Runtime (percept_infer::graph).
    compare("hand_recrop", (0, 320, 192));
}

#[test]
fn hand_landmark_full_agrees() {
    // faces.json notes a gloved hand at the bottom left.
    compare("hand_landmark_full", (0, 320, 192));
}

#[test]
fn ort_sessions_run_concurrently() {
    let Some(ort) = ort_engine() else { return };
    let ort = ort.with_max_sessions(2);
    let model = Arc::new(load("face_detection_full_range", &ort));
    let input = Arc::new(input_for(&model, (0, 0, 512)));
    let expected = model.run(&input).unwrap();
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let (model, input) = (model.clone(), input.clone());
            std::thread::spawn(move || {
                (0..5)
                    .map(|_| model.run(&input).unwrap())
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    for handle in handles {
        for outputs in handle.join().unwrap() {
            assert_eq!(outputs, expected, "every session gives the same answer");
        }
    }
}

/// The mask-free variant is the full pose landmark model with its mask head cut off: on each
/// engine its four outputs are the full model's landmark, presence, heatmap and world outputs.
/// Runs on tract always, and on ONNX Runtime when it is available.
#[test]
fn mask_free_variant_gives_the_full_models_other_outputs() {
    let mut engines: Vec<Box<dyn Engine>> = vec![Box::new(TractEngine)];
    if let Some(ort) = ort_engine() {
        engines.push(Box::new(ort));
    }
    for engine in &engines {
        let full = load("pose_landmark_full", engine.as_ref());
        let cut = load("pose_landmark_full_no_mask", engine.as_ref());
        let names: Vec<&str> = cut.spec().outputs.iter().map(|o| o.name.as_str()).collect();
        assert_eq!(
            names,
            ["Identity", "Identity_1", "Identity_3", "Identity_4"]
        );
        let input = input_for(&full, (0, 22, 490));
        let a = full.run(&input).unwrap();
        let b = cut.run(&input).unwrap();
        assert_eq!(b.len(), 4, "{:?}", engine.kind());
        for (j, i) in [0, 1, 3, 4].into_iter().enumerate() {
            assert_eq!(a[i].shape(), b[j].shape());
            let scale = a[i].data().iter().fold(1.0f32, |m, v| m.max(v.abs()));
            let diff = max_abs_diff(&a[i], &b[j]);
            assert!(
                diff / scale < LIMIT,
                "{:?}: output {i} differs by {diff} after the cut",
                engine.kind()
            );
        }
        // The person is found with confidence in both.
        assert!(
            b[1].data()[0] > 0.5,
            "{:?}: presence {}",
            engine.kind(),
            b[1].data()[0]
        );
    }
}

/// Where the optimised model cannot be staged, ONNX Runtime builds from the ONNX file instead and
/// answers the same; where it can, nothing is left in the scratch folder once the model is
/// loaded.
#[test]
fn ort_without_a_writable_scratch_folder_answers_the_same() {
    let Some(ort) = ort_engine() else { return };
    let scratch = tempfile::tempdir().unwrap();
    let staged = load(
        "hand_landmark_full",
        &ort.clone().with_scratch_dir(scratch.path()),
    );
    let leftovers: Vec<_> = std::fs::read_dir(scratch.path()).unwrap().collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    let missing = scratch.path().join("no/such/folder");
    let fallback = load("hand_landmark_full", &ort.with_scratch_dir(&missing));
    assert!(!missing.exists());
    let input = input_for(&staged, (0, 320, 192));
    let (a, b) = (staged.run(&input).unwrap(), fallback.run(&input).unwrap());
    assert_eq!(a.len(), b.len());
    for (a, b) in a.iter().zip(&b) {
        assert_eq!(a.shape(), b.shape());
        let diff = max_abs_diff(a, b);
        assert!(
            diff < 1e-4,
            "staged and ONNX-built sessions differ by {diff}"
        );
    }
    // Dropping a model drops its sessions before the bytes they read; build and drop again.
    drop((staged, fallback));
    let again = load("hand_landmark_full", &ort_engine().unwrap());
    assert_eq!(again.run(&input).unwrap(), a);
}

/// An optimised model ONNX Runtime cannot load back (here: the staged file cut short) is
/// built from ONNX instead, and answers as before.
#[test]
fn ort_falls_back_to_onnx_when_its_optimised_model_does_not_load() {
    let Some(ort) = ort_engine() else { return };
    let name = "hand_recrop";
    let reference = load(name, &ort);
    let scratch = tempfile::tempdir().unwrap();
    let engine = ort.with_scratch_dir(scratch.path());
    let dir = root().join("models");
    let manifest = percept_infer::Manifest::load(&dir).unwrap();
    let spec = manifest.model(name).unwrap();
    let path = percept_infer::manifest::verify_file(&dir, spec).unwrap();
    engine.stage(&path, spec).unwrap();
    let staged: Vec<PathBuf> = std::fs::read_dir(scratch.path())
        .unwrap()
        .map(|entry| entry.unwrap().path().join("model.ort"))
        .collect();
    assert_eq!(staged.len(), 1, "{staged:?}");
    let bytes = std::fs::read(&staged[0]).unwrap();
    std::fs::write(&staged[0], &bytes[..bytes.len() / 2]).unwrap();
    let session = engine.load(&path, spec).unwrap();
    let input = input_for(&reference, (0, 320, 192));
    let expected = reference.run(&input).unwrap();
    let got = session.run(std::slice::from_ref(&input)).unwrap();
    assert_eq!(got.len(), expected.len());
    for (a, b) in got.iter().zip(&expected) {
        let diff = max_abs_diff(a, b);
        assert!(diff < 1e-4, "fallback session differs by {diff}");
    }
}
