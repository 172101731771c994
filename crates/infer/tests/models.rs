#![allow(clippy::unwrap_used)] // tests: a failure should stop with the value that caused it

use std::path::{Path, PathBuf};

use percept_infer::manifest::{Layout, ResizeMode, verify_file};
use percept_infer::{Fit, InferError, Manifest, Models, image_to_tensor};

fn models_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models")
}

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/data")
        .join(name)
}

const TINY: &str = r#"
schema = 1
future_field = "ignored"
[[model]]
name = "tiny"
file = "tiny.onnx"
sha256 = "0000000000000000000000000000000000000000000000000000000000000000"
bytes = 5
task = "test"
new_key = 3
[model.input]
name = "x"
shape = [1, 3, -1, -1]
layout = "NCHW"
dtype = "float32"
channels = "RGB"
range = [0.0, 255.0]
mean = [0.0, 0.0, 0.0]
std = [1.0, 1.0, 1.0]
resize = "free"
[[model.outputs]]
name = "y"
shape = [1]
"#;

#[test]
fn real_manifest_parses_every_model() {
    let m = Manifest::load(&models_dir()).unwrap();
    assert_eq!(m.schema, 1);
    assert!(m.models.len() >= 11);
    let cf = m.model("centerface").unwrap();
    assert_eq!(cf.input.layout, Layout::Nchw);
    assert_eq!(cf.input.resize, Some(ResizeMode::Free));
    assert_eq!(cf.input.fixed_hw(), None);
    assert_eq!(cf.centernet.as_ref().unwrap().stride, 4);
    let fd = m.model("face_detection_full_range").unwrap();
    assert_eq!(fd.input.fixed_hw(), Some((192, 192)));
    assert!(m.roi("face_landmark_to_right_iris").unwrap().mirror);
    assert!(matches!(m.model("nope"), Err(InferError::UnknownModel(_))));
}

#[test]
fn every_shipped_file_matches_its_hash() {
    let m = Manifest::load(&models_dir()).unwrap();
    for spec in &m.models {
        verify_file(&models_dir(), spec).unwrap();
    }
}

#[test]
fn missing_and_tampered_files_are_typed_errors() {
    let dir = tempfile::tempdir().unwrap();
    let m = Manifest::parse(TINY, &dir.path().join("manifest.toml")).unwrap();
    let spec = m.model("tiny").unwrap();
    match verify_file(dir.path(), spec) {
        Err(InferError::MissingFile { path, expected }) => {
            assert!(path.ends_with("tiny.onnx"));
            assert_eq!(expected, spec.sha256);
        }
        other => panic!("expected MissingFile, got {other:?}"),
    }
    std::fs::write(dir.path().join("tiny.onnx"), b"hello").unwrap();
    let err = verify_file(dir.path(), spec).unwrap_err();
    let InferError::HashMismatch {
        actual, expected, ..
    } = &err
    else {
        panic!("expected HashMismatch, got {err:?}");
    };
    // sha256("hello")
    assert_eq!(
        actual,
        "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
    );
    assert_eq!(expected, &spec.sha256);
    let text = err.to_string();
    assert!(text.contains("tiny.onnx") && text.contains(actual) && text.contains(expected));
}

#[test]
fn broken_manifest_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("manifest.toml"), "schema = [").unwrap();
    assert!(matches!(
        Models::load(dir.path(), &[]),
        Err(InferError::Manifest { .. })
    ));
    assert!(matches!(
        Models::load(tempfile::tempdir().unwrap().path(), &[]),
        Err(InferError::Manifest { .. })
    ));
}

#[test]
fn loads_warms_and_runs_fixed_and_dynamic_models() {
    let models = Models::load(models_dir(), &["face_detection_short_range", "centerface"]).unwrap();
    let img = image::open(data("person_astronaut.jpg")).unwrap().to_rgb8();

    let fd = models.get("face_detection_short_range").unwrap();
    let fit = Fit::letterbox(img.dimensions(), (128, 128)).unwrap();
    let out = fd
        .run(&image_to_tensor(&img, &fit, &fd.spec().input))
        .unwrap();
    assert_eq!(out[0].shape(), &[1, 896, 16]);
    assert_eq!(out[1].shape(), &[1, 896, 1]);

    let cf = models.get("centerface").unwrap();
    for (w, h) in [(320u32, 256u32), (256, 320)] {
        let fit = Fit::top_left(img.dimensions(), (w, h), (w, h)).unwrap();
        let out = cf
            .run(&image_to_tensor(&img, &fit, &cf.spec().input))
            .unwrap();
        assert_eq!(out[0].shape(), &[1, 1, h as usize / 4, w as usize / 4]);
        assert_eq!(out[3].shape(), &[1, 10, h as usize / 4, w as usize / 4]);
        let peak = out[0].data().iter().copied().fold(0.0f32, f32::max);
        assert!(peak > 0.5, "astronaut face heatmap peak {peak}");
    }
    assert!(models.get("pose_detection").is_err());
}

#[test]
fn variants_resolve_to_their_models_outputs_and_bad_ones_are_refused() {
    let m = Manifest::load(&models_dir()).unwrap();
    let v = m.model("pose_landmark_full_no_mask").unwrap();
    let full = m.model("pose_landmark_full").unwrap();
    assert_eq!(v.variant_of.as_deref(), Some("pose_landmark_full"));
    assert_eq!(
        (v.file.as_str(), v.sha256.as_str()),
        (full.file.as_str(), full.sha256.as_str())
    );
    assert_eq!(v.outputs.len(), full.outputs.len() - 1);
    assert!(v.landmarks.is_some());
    let path = Path::new("m.toml");
    let with = |variant: &str| Manifest::parse(&format!("{TINY}\n{variant}"), path);
    assert!(with("[[variant]]\nname = \"cut\"\nof = \"tiny\"\noutputs = [\"y\"]").is_ok());
    for bad in [
        "[[variant]]\nname = \"cut\"\nof = \"nope\"\noutputs = [\"y\"]",
        "[[variant]]\nname = \"cut\"\nof = \"tiny\"\noutputs = [\"z\"]",
        "[[variant]]\nname = \"tiny\"\nof = \"tiny\"\noutputs = [\"y\"]",
    ] {
        assert!(
            matches!(with(bad), Err(InferError::Manifest { .. })),
            "{bad}"
        );
    }
}
