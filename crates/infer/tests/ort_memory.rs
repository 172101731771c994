#![allow(clippy::unwrap_used)] // tests: a failure should stop with the value that caused it

//! ONNX Runtime sessions of one model share its weights: a second session of the hand landmark
//! model (holistic runs both hands at once) must not cost another copy of its 11 MB of
//! weights. Its own test binary, alone in its process, because it reads the process's resident
//! memory. Skips (loudly) without ONNX Runtime unless `PERCEPT_REQUIRE_ORT=1`.

use std::path::Path;

mod common;

use common::ort_engine;
use percept_infer::{Models, OrtEngine};

const MODEL: &str = "hand_landmark_full";

/// Anonymous resident memory of this process, in MiB: weights and arenas live there, the
/// mapped library does not.
fn anon_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("RssAnon:")).unwrap();
    let kb: f64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kb / 1024.0
}

/// Resident MiB that building a second session of [`MODEL`] adds on `engine`.
fn second_session_cost(engine: &OrtEngine) -> f64 {
    let models = Models::load_with(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models"),
        &[MODEL],
        engine,
    )
    .unwrap();
    let session = models.get(MODEL).unwrap().session();
    let before = anon_mib();
    session.reserve(2).unwrap();
    anon_mib() - before
}

#[test]
#[cfg(target_os = "linux")]
fn a_second_session_shares_the_weights() {
    let Some(engine) = ort_engine() else { return };
    let engine = engine.with_max_sessions(2);
    let shared = second_session_cost(&engine);
    // The control: without a scratch folder each session is built from ONNX and holds its own
    // weights; the same measure must see them, or it proves nothing.
    let scratch = tempfile::tempdir().unwrap();
    let copied = second_session_cost(&engine.with_scratch_dir(scratch.path().join("missing")));
    eprintln!("second session: {shared:.1} MiB shared, {copied:.1} MiB built from ONNX");
    assert!(
        copied > 8.0,
        "an ONNX-built second session cost only {copied:.1} MiB"
    );
    assert!(
        shared < 4.0,
        "a second session cost {shared:.1} MiB (the ONNX-built one {copied:.1} MiB)"
    );
}
