//! `percept bench --task <name> --images …`: times a task end to end, as a request runs it
//! (decode → the task's stages → encode), on photos held in memory, so the whole pipeline can be
//! set beside a peer's (bench/peers/face_e2e.py runs this and the Python peers in one go).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use percept_core::OutputFormat;
use percept_server::Config;
use percept_tasks::{Options, Render, execute};
use serde_json::{Value, json};

use crate::bench::{BenchArgs, percentile};

/// One photo's timings and the task's answer on it.
struct Timed {
    path: PathBuf,
    bytes: usize,
    times: Vec<f64>,
    stages: Vec<(&'static str, Vec<f64>)>,
    result: Value,
}

fn time_photo(
    task: &dyn percept_tasks::Task,
    options: &Options,
    path: &Path,
    config: &Config,
    args: &BenchArgs,
) -> anyhow::Result<Timed> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let limits = config.decode_limits();
    let render = Render {
        format: OutputFormat::Jpeg {
            quality: args.quality,
        },
        raw_image: true,
    };
    let mut times = Vec::with_capacity(args.runs);
    let mut stages: Vec<(&'static str, Vec<f64>)> = Vec::new();
    let mut result = Value::Null;
    for run in 0..args.warmup + args.runs {
        // Preparing (option parsing) is not part of the pipeline being compared.
        let job = task
            .prepare(options.clone())
            .map_err(|e| anyhow::anyhow!("{}: {e}", e.code()))?;
        let start = Instant::now();
        let executed = execute(job, &bytes, &limits, render)
            .map_err(|e| anyhow::anyhow!("{}: {}: {e}", path.display(), e.code()))?;
        let elapsed = start.elapsed().as_secs_f64() * 1e3;
        if run < args.warmup {
            continue;
        }
        times.push(elapsed);
        for (name, took) in executed.stages.iter() {
            let ms = took.as_secs_f64() * 1e3;
            match stages.iter_mut().find(|(n, _)| *n == name) {
                Some((_, v)) => v.push(ms),
                None => stages.push((name, vec![ms])),
            }
        }
        result = Value::Object(executed.json);
    }
    times.sort_by(f64::total_cmp);
    for (_, v) in &mut stages {
        v.sort_by(f64::total_cmp);
    }
    Ok(Timed {
        path: path.to_path_buf(),
        bytes: bytes.len(),
        times,
        stages,
        result,
    })
}

pub(crate) fn bench_task(args: &BenchArgs, name: &str) -> anyhow::Result<()> {
    if args.runs == 0 {
        anyhow::bail!("--runs must be at least 1");
    }
    if args.images.is_empty() {
        anyhow::bail!("--task needs --images");
    }
    let config = Config {
        models_dir: args.models_dir.clone(),
        engine: args.engine.unwrap_or_default(),
        intra_threads: args.intra_threads,
        idle_threads: args.idle_threads,
        ..Config::default()
    };
    config.validate()?;
    let started = Instant::now();
    let (registry, _, engine) = crate::models::load_for_serving(&config)?;
    let load_ms = started.elapsed().as_secs_f64() * 1e3;
    let task = registry
        .get(name)
        .with_context(|| format!("no task `{name}`; tasks: {}", registry.names().join(", ")))?;
    let mut options = Options::new();
    crate::run::insert_pairs(&mut options, &args.options)
        .map_err(|e| anyhow::anyhow!(e.message))?;
    let mut rows = Vec::new();
    for path in &args.images {
        let timed = time_photo(task.as_ref(), &options, path, &config, args)?;
        eprintln!(
            "{:<40} median {:>9.2} ms",
            timed.path.display(),
            percentile(&timed.times, 0.5)
        );
        rows.push(timed);
    }
    print!("{}", table(name, &rows));
    if let Some(path) = &args.json {
        let report = json!({
            "task": name,
            "options": args.options,
            "engine": engine,
            "intra_threads": config.intra_threads,
            "idle_threads": config.idle_threads,
            "runs": args.runs,
            "warmup": args.warmup,
            "load_ms": load_ms,
            "images": rows.iter().map(|r| json!({
                "path": r.path.display().to_string(),
                "bytes": r.bytes,
                "median_ms": percentile(&r.times, 0.5),
                "p90_ms": percentile(&r.times, 0.9),
                "min_ms": r.times.first(),
                "stages_median_ms": r.stages.iter()
                    .map(|(n, v)| (n.to_string(), json!(percentile(v, 0.5))))
                    .collect::<serde_json::Map<_, _>>(),
                "result": r.result,
            })).collect::<Vec<_>>(),
        });
        crate::bench::write_file(path, &serde_json::to_string_pretty(&report)?)?;
    }
    Ok(())
}

fn table(task: &str, rows: &[Timed]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| {task} | size | median ms | p90 ms | min ms | stages (median ms) |"
    );
    let _ = writeln!(out, "|---|---|---:|---:|---:|---|");
    for r in rows {
        let size = match (r.result.get("width"), r.result.get("height")) {
            (Some(w), Some(h)) => format!("{w}x{h}"),
            _ => String::new(),
        };
        let stages: Vec<String> = r
            .stages
            .iter()
            .map(|(n, v)| format!("{n} {:.1}", percentile(v, 0.5)))
            .collect();
        let _ = writeln!(
            out,
            "| {} | {size} | {:.2} | {:.2} | {:.2} | {} |",
            r.path.file_name().and_then(|n| n.to_str()).unwrap_or("?"),
            percentile(&r.times, 0.5),
            percentile(&r.times, 0.9),
            r.times.first().copied().unwrap_or(f64::NAN),
            stages.join(" · ")
        );
    }
    out
}
