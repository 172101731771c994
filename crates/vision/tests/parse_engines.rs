#![allow(clippy::unwrap_used)] // tests: a failure should stop with the value that caused it

//! The whole trained parser (pose stage, one network run per person and view, painting back,
//! ownership) gives the same labels on tract and on ONNX Runtime. `engines_agree` compares the
//! network's outputs on one crop; this compares what a user gets, on the repository's group
//! photos, with the default options (both views of every crop averaged).

use std::path::{Path, PathBuf};

use percept_vision::{Models, ParseOptions, Parser};

#[path = "../../infer/tests/common/mod.rs"]
mod common;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn both_engines_label_the_same_pixels() {
    let Some(ort) = common::ort_engine() else {
        return;
    };
    let dir = root().join("models");
    let tract = Parser::new(&Models::load(&dir, &Parser::MODELS).unwrap()).unwrap();
    let onnx = Parser::new(&Models::load_with(&dir, &Parser::MODELS, &ort).unwrap()).unwrap();
    let options = ParseOptions::default();
    assert!(options.mirror, "the default averages both views");
    for name in ["group3_costumes.jpg", "group5_stairs.jpg"] {
        let photo = image::open(root().join("tests/data").join(name))
            .unwrap()
            .to_rgb8();
        let a = tract.parse(&photo, &options).unwrap();
        let b = onnx.parse(&photo, &options).unwrap();
        assert_eq!(a.result.parser, "learned:lip_parser", "{name}");
        assert_eq!(a.result.parser, b.result.parser, "{name}");
        assert_eq!(a.result.persons.len(), b.result.persons.len(), "{name}");
        // Over the pixels either engine gives to a person. Both load the same file, whose
        // head is partly 8-bit (`[model.quantized]`): ONNX Runtime runs those layers with
        // integer kernels, tract in float between the same quantisation steps, so a value
        // can round to the next step and labels move where two labels nearly tie (measured
        // 99.4 % of the costume photo's person pixels and 98.8 % of the stairs'; with the
        // float file on both, 99.4 % on the stairs).
        let (mut person, mut same) = (0u64, 0u64);
        for (p, q) in a.labels.pixels().zip(b.labels.pixels()) {
            if p.0[0] != 0 || q.0[0] != 0 {
                person += 1;
                same += u64::from(p == q);
            }
        }
        eprintln!("{name}: {same} of {person} person pixels labelled alike");
        assert!(person > 10_000, "{name}: people labelled");
        assert!(same * 100 >= person * 98, "{name}: {same} of {person}");
    }
}
