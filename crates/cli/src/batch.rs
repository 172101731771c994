use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;
use serde_json::json;

use crate::run::{RunError, Sink, TaskArgs, finish, run_one};

const IMAGE_EXTENSIONS: &[&str] = &["jpg", "jpeg", "png", "webp", "bmp", "gif", "tif", "tiff"];

/// `percept batch <task> <input-dir> -o <output-dir>`.
#[derive(Debug, Args)]
pub(crate) struct BatchArgs {
    /// Task, as for `run`.
    task: String,
    /// Folder of images (not recursive; files are taken by extension).
    input: PathBuf,
    /// Folder for the results: `<name>.json` per image, `<name>.png|jpg` where the task draws,
    /// and `summary.json`.
    #[arg(short, long)]
    output: PathBuf,
    /// Result image format: png or jpg.
    #[arg(long, default_value = "png")]
    image_format: String,
    /// Images processed at once [default: number of cores].
    #[arg(long)]
    jobs: Option<usize>,
    #[command(flatten)]
    common: TaskArgs,
}

fn list_images(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .filter(|p| {
            p.extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
        })
        .collect();
    files.sort();
    Ok(files)
}

/// Output base names: the file stem, or the whole file name where two inputs share a stem.
fn output_names(files: &[PathBuf]) -> Vec<String> {
    let stem = |p: &PathBuf| {
        p.file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    let mut counts: HashMap<String, usize> = HashMap::new();
    for f in files {
        *counts.entry(stem(f)).or_default() += 1;
    }
    files
        .iter()
        .map(|f| {
            let s = stem(f);
            if counts[&s] > 1 {
                f.file_name()
                    .map(|n| n.to_string_lossy().replace('.', "_"))
                    .unwrap_or(s)
            } else {
                s
            }
        })
        .collect()
}

pub(crate) fn batch(args: &BatchArgs) -> ExitCode {
    match batch_inner(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("percept: {}", e.message());
            ExitCode::from(e.exit_code())
        }
    }
}

fn batch_inner(args: &BatchArgs) -> Result<ExitCode, RunError> {
    let config = args
        .common
        .settings
        .resolve()
        .map_err(|e| RunError::Io(format!("{e:#}")))?;
    let (task, options) = args.common.task_and_options(&args.task, &config)?;
    // Validate the options once up front, so a typo fails before any image is read.
    drop(task.prepare(options.clone()).map_err(RunError::Api)?);
    let files = list_images(&args.input)
        .map_err(|e| RunError::Io(format!("cannot list {}: {e}", args.input.display())))?;
    std::fs::create_dir_all(&args.output)
        .map_err(|e| RunError::Io(format!("cannot create {}: {e}", args.output.display())))?;
    let extension = if args.image_format.eq_ignore_ascii_case("jpg")
        || args.image_format.eq_ignore_ascii_case("jpeg")
    {
        "jpg"
    } else {
        "png"
    };
    let names = output_names(&files);
    let jobs = args.jobs.unwrap_or(config.workers).max(1);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(jobs)
        .build()
        .map_err(|e| RunError::Io(format!("cannot start {jobs} threads: {e}")))?;
    let bar = ProgressBar::new(files.len() as u64);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} images · {per_sec} · eta {eta} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let started = Instant::now();
    let results: Vec<(PathBuf, Result<(), String>)> = pool.install(|| {
        files
            .par_iter()
            .zip(names.par_iter())
            .map(|(file, name)| {
                let sink = Sink::File(args.output.join(format!("{name}.{extension}")));
                let outcome = run_one(task.as_ref(), options.clone(), file, Some(&sink), &config)
                    .and_then(|executed| finish(executed, Some(&sink)))
                    .and_then(|json| {
                        let path = args.output.join(format!("{name}.json"));
                        std::fs::write(&path, json.to_string()).map_err(|e| {
                            RunError::Io(format!("cannot write {}: {e}", path.display()))
                        })
                    })
                    .map_err(|e| e.message());
                bar.inc(1);
                (file.clone(), outcome)
            })
            .collect()
    });
    bar.finish_and_clear();
    let elapsed = started.elapsed().as_secs_f64();
    let failures: Vec<_> = results
        .iter()
        .filter_map(|(f, r)| {
            r.as_ref()
                .err()
                .map(|e| json!({"file": f.display().to_string(), "error": e}))
        })
        .collect();
    let ok = results.len() - failures.len();
    let summary = json!({
        "task": task.name(),
        "images": results.len(),
        "succeeded": ok,
        "failed": failures.len(),
        "seconds": (elapsed * 1000.0).round() / 1000.0,
        "images_per_second": if elapsed > 0.0 { (results.len() as f64 / elapsed * 100.0).round() / 100.0 } else { 0.0 },
        "failures": failures,
    });
    let summary_path = args.output.join("summary.json");
    std::fs::write(&summary_path, format!("{summary:#}"))
        .map_err(|e| RunError::Io(format!("cannot write {}: {e}", summary_path.display())))?;
    eprintln!(
        "{} images: {ok} succeeded, {} failed in {elapsed:.1} s → {}",
        results.len(),
        failures.len(),
        args.output.display()
    );
    for failure in &failures {
        eprintln!(
            "  {}: {}",
            failure["file"].as_str().unwrap_or("?"),
            failure["error"].as_str().unwrap_or("?")
        );
    }
    Ok(if failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
