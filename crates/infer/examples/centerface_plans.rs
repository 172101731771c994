//! Measures the two ways of running CenterFace's dynamic input with tract: one plan per input
//! size (what `TractSession` does) against one plan with symbolic height and width.
//! `cargo run --release -p percept-infer --example centerface_plans`

use std::path::Path;
use std::time::Instant;

use tract_onnx::prelude::*;

fn main() -> TractResult<()> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/centerface.onnx");
    let sizes = [(480usize, 640usize), (640, 640), (736, 1280), (1024, 1024)];

    let t = Instant::now();
    let model = tract_onnx::onnx().model_for_path(&path)?;
    let (h, w) = (model.sym("h"), model.sym("w"));
    let shape: TVec<TDim> = tvec![1.into(), 3.into(), h.into(), w.into()];
    let symbolic = model
        .with_input_fact(0, InferenceFact::dt_shape(f32::datum_type(), shape))?
        .into_optimized()?
        .into_runnable()?;
    println!(
        "symbolic plan built in {:.0} ms",
        t.elapsed().as_secs_f64() * 1e3
    );

    for (h, w) in sizes {
        let input = || -> TractResult<TVec<TValue>> {
            Ok(tvec!(
                Tensor::from_shape(&[1, 3, h, w], &vec![100f32; 3 * h * w])?.into()
            ))
        };
        let t = Instant::now();
        let fixed = tract_onnx::onnx()
            .model_for_path(&path)?
            .with_input_fact(0, InferenceFact::dt_shape(f32::datum_type(), [1, 3, h, w]))?
            .into_optimized()?
            .into_runnable()?;
        let build = t.elapsed();
        let time = |plan: &std::sync::Arc<TypedRunnableModel>| -> TractResult<f64> {
            plan.run(input()?)?;
            let mut best = f64::MAX;
            for _ in 0..3 {
                let t = Instant::now();
                plan.run(input()?)?;
                best = best.min(t.elapsed().as_secs_f64() * 1e3);
            }
            Ok(best)
        };
        println!(
            "{w}x{h}: per-size plan build {:.0} ms, run {:.1} ms; symbolic run {:.1} ms",
            build.as_secs_f64() * 1e3,
            time(&fixed)?,
            time(&symbolic)?
        );
    }
    Ok(())
}
