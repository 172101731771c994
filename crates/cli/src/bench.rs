//! `percept bench`: times each model on each available engine (tract, ONNX Runtime), one
//! intra-op thread, on a real photo fitted to the model's input, so engines can be compared on
//! the same inputs (DESIGN §4). Results go to the terminal as a table and optionally to CSV.
//! With `--task`, times a task's whole pipeline instead (see `bench_task`).

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use clap::Args;
use percept_server::Config;
use percept_vision::Models;
use percept_vision::percept_infer::{
    DYNAMIC_WARM_SIDE, Engine, EngineChoice, EngineOptions, Fit, LoadedModel, image_to_tensor,
    select_engine,
};

/// `percept bench [--engine …] [--models a,b] [--runs N] [--csv out.csv]`, or
/// `percept bench --task anonymize --images a.jpg,b.jpg [-O detector=fast] [--json out.json]`.
#[derive(Debug, Args)]
pub(crate) struct BenchArgs {
    /// Only this engine (`auto` = the one `serve` would pick) [default: every available one;
    /// with --task: auto].
    #[arg(long, env = "PERCEPT_ENGINE")]
    pub(crate) engine: Option<EngineChoice>,
    /// ONNX Runtime threads per model run (with --task; the model timings always use 1).
    #[arg(long, env = "PERCEPT_INTRA_THREADS", default_value_t = 1)]
    pub(crate) intra_threads: usize,
    /// Threads of a large model run alone (with --task; as `serve --idle-threads`: 0 = every
    /// core, 1 = one core per run whatever the load).
    #[arg(long, env = "PERCEPT_IDLE_THREADS", default_value_t = 0)]
    pub(crate) idle_threads: usize,
    /// Comma-separated model names from the manifest [default: all].
    #[arg(long, value_delimiter = ',', conflicts_with = "task")]
    models: Vec<String>,
    /// Time this task end to end (decode → task → JPEG encode) on --images instead of models.
    #[arg(long, requires = "images")]
    pub(crate) task: Option<String>,
    /// Comma-separated photos for --task, each read into memory before timing.
    #[arg(long, value_delimiter = ',')]
    pub(crate) images: Vec<PathBuf>,
    /// A task option as key=value (repeatable), as in the HTTP query string (with --task).
    #[arg(long = "option", short = 'O', value_name = "KEY=VALUE")]
    pub(crate) options: Vec<String>,
    /// JPEG quality of the result image (with --task).
    #[arg(long, default_value_t = 90, value_parser = clap::value_parser!(u8).range(1..=100))]
    pub(crate) quality: u8,
    /// Write every timing and the task's answers as JSON (with --task).
    #[arg(long)]
    pub(crate) json: Option<PathBuf>,
    /// Timed runs per model and engine (per photo with --task).
    #[arg(long, default_value_t = 50)]
    pub(crate) runs: usize,
    /// Untimed runs first, after the load's own warm-up run.
    #[arg(long, default_value_t = 5)]
    pub(crate) warmup: usize,
    /// The photo fitted (letterboxed) to each model's input [default: the source tree's
    /// tests/data/person_astronaut.jpg].
    #[arg(long)]
    image: Option<PathBuf>,
    /// Also write the results as CSV.
    #[arg(long)]
    csv: Option<PathBuf>,
    /// Folder with manifest.toml [default: ./models, else the source tree's models/].
    #[arg(long, env = "PERCEPT_MODELS_DIR")]
    pub(crate) models_dir: Option<PathBuf>,
}

struct Row {
    model: String,
    engine: String,
    input: String,
    load_ms: f64,
    median_ms: f64,
    p90_ms: f64,
    min_ms: f64,
    mean_ms: f64,
}

/// The engines to compare: the one asked for, else tract and (when available) ONNX Runtime.
fn engines(choice: Option<EngineChoice>) -> anyhow::Result<Vec<Arc<dyn Engine>>> {
    let options = EngineOptions {
        intra_threads: 1,
        idle_threads: Some(1),
        max_sessions: Some(1),
        ..EngineOptions::default()
    };
    if let Some(choice) = choice {
        return Ok(vec![select_engine(choice, &options)?]);
    }
    let mut list = vec![select_engine(EngineChoice::Tract, &options)?];
    match select_engine(EngineChoice::Ort, &options) {
        Ok(engine) => list.push(engine),
        Err(e) => eprintln!("percept bench: skipping ONNX Runtime: {e}"),
    }
    Ok(list)
}

pub(crate) fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    // Nearest rank: the smallest value with at least q of the runs at or below it.
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn time_model(
    model: &LoadedModel,
    photo: &percept_core::RgbImage,
    args: &BenchArgs,
) -> anyhow::Result<(String, Vec<f64>)> {
    let spec = &model.spec().input;
    let (h, w) = spec.fixed_hw().unwrap_or_else(|| {
        let side = DYNAMIC_WARM_SIDE;
        let step = spec.multiple_of.unwrap_or(1).max(1) as usize;
        let side = side.div_ceil(step) * step;
        (side, side)
    });
    let fit = Fit::letterbox(photo.dimensions(), (w as u32, h as u32))?;
    let input = image_to_tensor(photo, &fit, spec);
    for _ in 0..args.warmup {
        model.run(&input)?;
    }
    let mut times = Vec::with_capacity(args.runs);
    for _ in 0..args.runs {
        let start = Instant::now();
        model.run(&input)?;
        times.push(start.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    Ok((format!("{w}x{h}"), times))
}

pub(crate) fn bench(args: &BenchArgs) -> anyhow::Result<()> {
    if args.runs == 0 {
        anyhow::bail!("--runs must be at least 1");
    }
    let config = Config {
        models_dir: args.models_dir.clone(),
        ..Config::default()
    };
    let dir = config.resolved_models_dir();
    let manifest = percept_vision::percept_infer::Manifest::load(&dir)
        .with_context(|| format!("reading {}/manifest.toml", dir.display()))?;
    let names: Vec<String> = if args.models.is_empty() {
        manifest.models.iter().map(|m| m.name.clone()).collect()
    } else {
        args.models.clone()
    };
    let image_path = args.image.clone().unwrap_or_else(|| {
        PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/data/person_astronaut.jpg"
        ))
    });
    let bytes =
        std::fs::read(&image_path).with_context(|| format!("reading {}", image_path.display()))?;
    let photo = percept_core::decode(&bytes, &config.decode_limits())
        .with_context(|| format!("decoding {}", image_path.display()))?
        .image;

    let engines = engines(args.engine)?;
    let mut rows = Vec::new();
    for name in &names {
        for engine in &engines {
            let started = Instant::now();
            let models = Models::load_with(&dir, &[name.as_str()], engine.as_ref())
                .with_context(|| format!("loading {name} on {}", engine.kind()))?;
            let load_ms = started.elapsed().as_secs_f64() * 1e3;
            let model = models.get(name)?;
            let (input, times) = time_model(model, &photo, args)
                .with_context(|| format!("running {name} on {}", engine.kind()))?;
            let row = Row {
                model: name.clone(),
                engine: engine.kind().to_string(),
                input,
                load_ms,
                median_ms: percentile(&times, 0.5),
                p90_ms: percentile(&times, 0.9),
                min_ms: times.first().copied().unwrap_or(f64::NAN),
                mean_ms: times.iter().sum::<f64>() / times.len() as f64,
            };
            eprintln!(
                "{:<28} {:<6} median {:>8.2} ms",
                row.model, row.engine, row.median_ms
            );
            rows.push(row);
        }
    }

    print!("{}", table(&rows, args.runs));
    if let Some(path) = &args.csv {
        write_file(path, &csv(&rows, args.runs))?;
    }
    Ok(())
}

/// Writes a report, creating its folder.
pub(crate) fn write_file(path: &std::path::Path, text: &str) -> anyhow::Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
    eprintln!("percept bench: wrote {}", path.display());
    Ok(())
}

/// A Markdown table (it reads fine in a terminal and pastes into BENCHMARKS.md), with the
/// tract/ORT ratio of medians when both engines ran.
fn table(rows: &[Row], runs: usize) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| model | engine | input | load ms | median ms | p90 ms | min ms | tract/ort |"
    );
    let _ = writeln!(out, "|---|---|---|---:|---:|---:|---:|---:|");
    for row in rows {
        let ratio = if row.engine == "ort" {
            rows.iter()
                .find(|r| r.model == row.model && r.engine == "tract")
                .map(|t| format!("{:.2}×", t.median_ms / row.median_ms))
                .unwrap_or_default()
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {:.0} | {:.2} | {:.2} | {:.2} | {} |",
            row.model,
            row.engine,
            row.input,
            row.load_ms,
            row.median_ms,
            row.p90_ms,
            row.min_ms,
            ratio
        );
    }
    let _ = writeln!(out, "\n{runs} timed runs each, 1 intra-op thread.");
    out
}

fn csv(rows: &[Row], runs: usize) -> String {
    let mut out = String::from("model,engine,input,runs,load_ms,median_ms,p90_ms,min_ms,mean_ms\n");
    for r in rows {
        let _ = writeln!(
            out,
            "{},{},{},{runs},{:.3},{:.4},{:.4},{:.4},{:.4}",
            r.model, r.engine, r.input, r.load_ms, r.median_ms, r.p90_ms, r.min_ms, r.mean_ms
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let v: Vec<f64> = (1..=10).map(f64::from).collect();
        assert_eq!(percentile(&v, 0.5), 5.0);
        assert_eq!(percentile(&v, 0.9), 9.0);
        assert_eq!(percentile(&v[..1], 0.9), 1.0);
        assert!(percentile(&[], 0.5).is_nan());
    }
}
