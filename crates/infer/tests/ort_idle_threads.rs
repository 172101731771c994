#![allow(clippy::unwrap_used)] // tests: a failure should stop with the value that caused it

//! A large run alone takes every core (`OrtEngine::with_idle_threads`): it must give what the
//! one-thread session gives, and runs that overlap must still all answer.

use std::path::{Path, PathBuf};

mod common;

use common::ort_engine;
use percept_infer::{Fit, LoadedModel, Models, OrtEngine, Tensor, image_to_tensor};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn centerface(threads: usize) -> Option<(LoadedModel, OrtEngine)> {
    let engine = ort_engine()?.with_idle_threads(threads);
    let models = Models::load_with(root().join("models"), &["centerface"], &engine).unwrap();
    Some((models.get("centerface").unwrap().clone(), engine))
}

/// group5_stairs at 640×448: 860 k input values, above the wide threshold.
fn input(model: &LoadedModel) -> Tensor {
    let photo = image::open(root().join("tests/data/group5_stairs.jpg"))
        .unwrap()
        .to_rgb8();
    let fit = Fit::top_left(photo.dimensions(), (640, 448), (640, 448)).unwrap();
    let tensor = image_to_tensor(&photo, &fit, &model.spec().input);
    assert!(tensor.len() > percept_infer::WIDE_ABOVE_VALUES);
    tensor
}

/// The two runs' outputs agree (float kernels differ only in summation order).
fn assert_same(want: &[Tensor], got: &[Tensor]) {
    assert_eq!(want.len(), got.len());
    for (a, b) in want.iter().zip(got) {
        assert_eq!(a.shape(), b.shape());
        let diff = a
            .data()
            .iter()
            .zip(b.data())
            .map(|(p, q)| (p - q).abs())
            .fold(0.0f32, f32::max);
        assert!(diff < 1e-3, "outputs differ by {diff}");
    }
}

#[test]
fn a_lone_run_on_every_core_gives_the_one_thread_answer() {
    let (Some((narrow, narrow_engine)), Some((wide, wide_engine))) = (centerface(1), centerface(2))
    else {
        return;
    };
    let x = input(&narrow);
    let a = narrow.run(&x).unwrap();
    let before = wide_engine.wide_runs();
    let b = wide.run(&x).unwrap();
    assert_eq!(
        wide_engine.wide_runs(),
        before + 1,
        "the lone run was not wide"
    );
    assert_eq!(narrow_engine.wide_runs(), 0, "idle_threads 1 ran wide");
    assert_same(&a, &b);
}

#[test]
fn overlapping_runs_all_answer_the_same() {
    let Some((model, engine)) = centerface(2) else {
        return;
    };
    let x = input(&model);
    let want = model.run(&x).unwrap();
    // Some of these start alone (the wide session), the others beside it (the pool).
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| s.spawn(|| (0..3).map(|_| model.run(&x).unwrap()).collect::<Vec<_>>()))
            .collect();
        for h in handles {
            // Every run answered; how many were wide depends on the scheduling.
            for got in h.join().unwrap() {
                assert_same(&want, &got);
            }
        }
    });
    assert!(engine.wide_runs() >= 1);
}

#[test]
fn a_run_started_beside_others_never_takes_the_wide_session() {
    let Some((model, engine)) = centerface(2) else {
        return;
    };
    let x = input(&model);
    let want = model.run(&x).unwrap();
    let before = engine.wide_runs();
    assert!(before >= 1, "the lone run was not wide");
    // Alone on the engine, but its caller says others start with it.
    let got = model.run_beside(&x).unwrap();
    assert_eq!(
        engine.wide_runs(),
        before,
        "a run beside others took the wide session"
    );
    assert_same(&want, &got);
}
