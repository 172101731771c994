#![allow(clippy::unwrap_used)] // tests: a failure should stop with the value that caused it

//! The learned-model slot's plumbing, with a RANDOM-weight fixture network (see
//! models/convert/make_parsing_fixture.py): a manifest entry with `task = "human_parsing"` and
//! `[model.segmentation]` replaces the pose-guided labels by the network's argmax, mapped onto
//! LIP's labels, while people are still told apart by their pose masks.

use std::path::{Path, PathBuf};

use percept_vision::percept_infer::{Fit, image_to_tensor};
use percept_vision::{Models, ParseOptions, Parser};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

const FIXTURE: &str = "parsing_fixture";
// The fixture's planes carry LIP's names in LIP's order, except plane 5, which is named
// "sweater": a name LIP does not have, so it must count as background.
fn fixture_labels() -> Vec<&'static str> {
    let mut labels = percept_vision::parse::LABELS.to_vec();
    labels[5] = "sweater";
    labels
}

/// A models folder: the shipped models (linked) plus the fixture declared in the manifest.
fn models_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("percept-learned-slot-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for entry in std::fs::read_dir(root().join("models")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "onnx") {
            std::os::unix::fs::symlink(&path, dir.join(path.file_name().unwrap())).unwrap();
        }
    }
    let fixture =
        std::fs::read(root().join("crates/vision/tests/fixtures/parsing_fixture.onnx")).unwrap();
    std::fs::write(dir.join("parsing_fixture.onnx"), &fixture).unwrap();
    let sha = {
        use std::process::Command;
        let out = Command::new("sha256sum")
            .arg(dir.join("parsing_fixture.onnx"))
            .output()
            .unwrap();
        String::from_utf8(out.stdout)
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap()
            .to_string()
    };
    let labels: Vec<String> = fixture_labels()
        .iter()
        .map(|l| format!("\"{l}\""))
        .collect();
    let mut manifest = std::fs::read_to_string(root().join("models/manifest.toml")).unwrap();
    // [[model]] tables must come before the [[roi]] ones only for readability; TOML accepts
    // them anywhere, so the entry is appended.
    manifest.push_str(&format!(
        r#"
[[model]]
name = "{FIXTURE}"
file = "parsing_fixture.onnx"
sha256 = "{sha}"
bytes = {bytes}
task = "human_parsing"
why = "test fixture with random weights; not a parser"
[model.input]
name = "input"
shape = [1, 3, 64, 64]
layout = "NCHW"
dtype = "float32"
channels = "RGB"
range = [-1.0, 1.0]
mean = [127.5, 127.5, 127.5]
std = [127.5, 127.5, 127.5]
resize = "stretch"
[[model.outputs]]
name = "logits"
shape = [1, 20, 64, 64]
[model.segmentation]
output = "logits"
layout = "NCHW"
labels = [{labels}]
"#,
        bytes = fixture.len(),
        labels = labels.join(", ")
    ));
    std::fs::write(dir.join("manifest.toml"), manifest).unwrap();
    dir
}

#[test]
fn a_declared_network_labels_the_pixels_and_poses_still_separate_people() {
    let dir = models_dir();
    let mut names = Parser::MODELS.to_vec();
    names.push(FIXTURE);
    let models = Models::load(&dir, &names).unwrap();
    let parser = Parser::new(&models).unwrap();
    let image = image::open(root().join("tests/data/group3_costumes.jpg"))
        .unwrap()
        .to_rgb8();
    let parsed = parser.parse(&image, &ParseOptions::default()).unwrap();
    assert_eq!(parsed.result.parser, "learned:parsing_fixture");
    assert_eq!(
        parsed.result.persons.len(),
        3,
        "people come from the poses, not the network"
    );

    // Recompute the network's answer independently and compare labelled pixels with it.
    let model = models.get(FIXTURE).unwrap();
    let fit = Fit::stretch(image.dimensions(), (64, 64)).unwrap();
    let out = model
        .run(&image_to_tensor(&image, &fit, &model.spec().input))
        .unwrap();
    let scores = out[0].data();
    let argmax = |u: usize, v: usize| {
        (0..20)
            .max_by(|&a, &b| {
                scores[(a * 64 + v) * 64 + u].total_cmp(&scores[(b * 64 + v) * 64 + u])
            })
            .unwrap()
    };
    let (mut checked, mut labelled) = (0, 0);
    for y in (0..image.height()).step_by(7) {
        for x in (0..image.width()).step_by(7) {
            let label = parsed.labels.get_pixel(x, y).0[0];
            if label == 0 {
                continue;
            }
            labelled += 1;
            let (u, v) = fit.to_input(x as f32 + 0.5, y as f32 + 0.5);
            let plane = argmax((u as usize).min(63), (v as usize).min(63));
            if plane == 5 {
                panic!(
                    "pixel {x},{y}: label {label}: an unknown label name was not made background"
                );
            }
            assert_eq!(label as usize, plane, "pixel {x},{y}");
            checked += 1;
        }
    }
    assert!(
        labelled > 500 && checked == labelled,
        "{labelled} labelled pixels sampled"
    );
    // The plane with a name LIP lacks wins somewhere, yet no pixel carries its index.
    let unknown_wins = (0..64).any(|v| (0..64).any(|u| argmax(u, v) == 5));
    assert!(
        unknown_wins,
        "the fixture no longer exercises unknown names"
    );
    assert!(parsed.labels.pixels().all(|p| p.0[0] != 5));
    // Only people's pixels are labelled: the far corners of the photo are background.
    assert_eq!(parsed.labels.get_pixel(2, 2).0[0], 0);
    let _ = std::fs::remove_dir_all(&dir);
}
