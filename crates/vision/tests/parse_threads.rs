#![allow(clippy::unwrap_used)] // tests: a failure should stop with the value that caused it

//! The trained parser starts its network runs together (both views of a crop, several people)
//! on a thread pool of two or more: none of them may then take the two-thread session ONNX
//! Runtime lends a lone run, whose cores its siblings would share. On a one-thread pool
//! (`percept batch --jobs 1`) the runs go in turn, and each may.

use std::path::{Path, PathBuf};

use percept_vision::{Models, ParseOptions, Parser};

#[path = "../../infer/tests/common/mod.rs"]
mod common;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn network_runs_take_the_idle_cores_only_when_they_run_in_turn() {
    let Some(ort) = common::ort_engine() else {
        return;
    };
    let ort = ort.with_idle_threads(2);
    let models = Models::load_with(root().join("models"), &Parser::MODELS, &ort).unwrap();
    let parser = Parser::new(&models).unwrap();
    let photo = image::open(root().join("tests/data/group3_costumes.jpg"))
        .unwrap()
        .to_rgb8();
    let options = ParseOptions::default();
    assert!(options.mirror, "the default averages both views");
    let pool = |threads| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
    };

    // Every other model of the parse takes an input below the wide threshold, so any wide run
    // here is the network's.
    let before = ort.wide_runs();
    let side_by_side = pool(2).install(|| parser.parse(&photo, &options)).unwrap();
    assert_eq!(side_by_side.result.persons.len(), 3);
    assert_eq!(
        ort.wide_runs(),
        before,
        "a network run started beside others took the wide session"
    );

    let in_turn = pool(1).install(|| parser.parse(&photo, &options)).unwrap();
    assert_eq!(in_turn.result.persons.len(), 3);
    assert_eq!(
        ort.wide_runs(),
        before + 6,
        "each of the 3 people's 2 views, run in turn, should take the idle cores"
    );
}
