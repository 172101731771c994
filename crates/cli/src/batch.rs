use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;
use serde_json::json;

use percept_server::ApiError;

use crate::run::{RunError, Sink, TaskArgs, finish, run_one};

const IMAGE_EXTENSIONS: &[&str] = &["jpg", "jpeg", "png", "webp", "bmp", "gif", "tif", "tiff"];

/// `percept batch <task> <input-dir> -o <output-dir>`.
#[derive(Debug, Args)]
pub(crate) struct BatchArgs {
    /// Task, as for `run`.
    task: String,
    /// Folder of images and videos (files are taken by extension; a video's result is a video
    /// in the same container, `<name>.json` its summary).
    input: PathBuf,
    /// Folder for the results: `<name>.json` per image, `<name>.png|jpg` where the task draws,
    /// and `summary.json` (optional with --jsonl).
    #[arg(short, long, required_unless_present = "jsonl")]
    output: Option<PathBuf>,
    /// Also walk the input's subfolders; results keep their relative folders.
    #[arg(short, long)]
    recursive: bool,
    /// Print one JSON line per image on stdout as it finishes (the shape of `run --json`, plus
    /// `file`; `error` instead for a failed image).
    #[arg(long)]
    jsonl: bool,
    /// Leave images whose `<name>.json` already exists alone (resume an interrupted batch).
    #[arg(long, conflicts_with = "force")]
    skip_existing: bool,
    /// Overwrite results that exist; without it (or --skip-existing) an existing result stops
    /// the batch before it starts.
    #[arg(long)]
    force: bool,
    /// Result image format: png or jpg.
    #[arg(long, default_value = "png")]
    image_format: String,
    /// Images processed at once [default: number of cores].
    #[arg(long)]
    jobs: Option<usize>,
    #[command(flatten)]
    common: TaskArgs,
}

/// A photo or a video by its extension (which of the two it is, is told by its bytes).
fn is_image(path: &Path) -> bool {
    percept_video::has_video_extension(path)
        || path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

/// The images in `dir` (and its subfolders when `recursive`), sorted.
fn list_images(dir: &Path, recursive: bool) -> std::io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let mut folders = vec![dir.to_path_buf()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder)? {
            let path = entry?.path();
            if path.is_dir() {
                if recursive {
                    folders.push(path);
                }
            } else if path.is_file() && is_image(&path) {
                files.push(path);
            }
        }
    }
    files.sort();
    Ok(files)
}

/// Output base names, relative to the output folder: the file's relative folder and stem, or
/// its whole file name where two inputs in one folder share a stem.
fn output_names(root: &Path, files: &[PathBuf]) -> Vec<PathBuf> {
    let stem = |p: &Path| p.with_extension("");
    let relative: Vec<&Path> = files
        .iter()
        .map(|f| f.strip_prefix(root).unwrap_or(f))
        .collect();
    let mut counts: HashMap<PathBuf, usize> = HashMap::new();
    for f in &relative {
        *counts.entry(stem(f)).or_default() += 1;
    }
    relative
        .iter()
        .map(|f| {
            let s = stem(f);
            match f.file_name() {
                Some(name) if counts[&s] > 1 => {
                    f.with_file_name(name.to_string_lossy().replace('.', "_"))
                }
                _ => s,
            }
        })
        .collect()
}

/// `base` with `.ext` added (a stem may contain dots).
fn with_ext(base: &Path, ext: &str) -> PathBuf {
    let mut name = base.as_os_str().to_owned();
    name.push(".");
    name.push(ext);
    PathBuf::from(name)
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
    drop(task.prepare(options.clone())?);
    let files = list_images(&args.input, args.recursive)
        .map_err(|e| RunError::Io(format!("cannot list {}: {e}", args.input.display())))?;
    if let Some(output) = &args.output {
        std::fs::create_dir_all(output)
            .map_err(|e| RunError::Io(format!("cannot create {}: {e}", output.display())))?;
    }
    let extension = if args.image_format.eq_ignore_ascii_case("jpg")
        || args.image_format.eq_ignore_ascii_case("jpeg")
    {
        "jpg"
    } else {
        "png"
    };
    let names = output_names(&args.input, &files);
    // (input, its result base path under the output folder, if any).
    let mut work: Vec<(PathBuf, Option<PathBuf>)> = files
        .into_iter()
        .zip(names)
        .map(|(file, name)| (file, args.output.as_ref().map(|o| o.join(name))))
        .collect();
    let existing = |base: &Option<PathBuf>| {
        base.as_ref()
            .is_some_and(|b| with_ext(b, "json").exists() || with_ext(b, extension).exists())
    };
    let before = work.len();
    if args.skip_existing {
        work.retain(|(_, base)| !existing(base));
    } else if !args.force
        && let Some((_, Some(base))) = work.iter().find(|(_, base)| existing(base))
    {
        let clashes = work.iter().filter(|(_, base)| existing(base)).count();
        return Err(RunError::Api(ApiError::bad_option(format!(
            "{clashes} result(s) exist already (e.g. {}): pass --force to overwrite them or \
             --skip-existing to leave them",
            with_ext(base, "json").display()
        ))));
    }
    let skipped = before - work.len();
    let jobs = args.jobs.unwrap_or(config.workers).max(1);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(jobs)
        .build()
        .map_err(|e| RunError::Io(format!("cannot start {jobs} threads: {e}")))?;
    let bar = ProgressBar::new(work.len() as u64);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} images · {per_sec} · eta {eta} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let started = Instant::now();
    let stdout = std::sync::Mutex::new(std::io::stdout());
    let results: Vec<(PathBuf, Result<(), String>)> = pool.install(|| {
        work.par_iter()
            .map(|(file, base)| {
                let sink = base.as_ref().map(|b| Sink::File(with_ext(b, extension)));
                let outcome = base
                    .as_ref()
                    .and_then(|b| b.parent())
                    .map_or(Ok(()), |parent| {
                        std::fs::create_dir_all(parent).map_err(|e| {
                            RunError::Io(format!("cannot create {}: {e}", parent.display()))
                        })
                    })
                    .and_then(|()| {
                        if crate::video::is_video(file) {
                            // A video keeps its container (`<name>.mp4` for a renamed one).
                            let container = file
                                .extension()
                                .and_then(|e| e.to_str())
                                .map(str::to_ascii_lowercase)
                                .filter(|_| percept_video::has_video_extension(file))
                                .unwrap_or_else(|| "mp4".into());
                            return crate::video::VideoRun {
                                task: task.clone(),
                                options: options.clone(),
                                input: file,
                                output: base.as_ref().map(|b| with_ext(b, &container)),
                                on_frame: None,
                                progress: false,
                                config: &config,
                            }
                            .run();
                        }
                        run_one(task.as_ref(), options.clone(), file, sink.as_ref(), &config)
                            .and_then(|executed| finish(executed, sink.as_ref()))
                    })
                    .and_then(|json| {
                        if let Some(base) = base {
                            let path = with_ext(base, "json");
                            std::fs::write(&path, json.to_string()).map_err(|e| {
                                RunError::Io(format!("cannot write {}: {e}", path.display()))
                            })?;
                        }
                        Ok(json)
                    })
                    .map_err(|e| e.message());
                if args.jsonl {
                    let mut line = match &outcome {
                        Ok(json) => json.clone(),
                        Err(error) => json!({"error": error}),
                    };
                    if let Some(map) = line.as_object_mut() {
                        map.insert("file".into(), json!(file.display().to_string()));
                    }
                    // One whole line per image, however the workers interleave.
                    let mut out = stdout
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    let _ = writeln!(out, "{line}").and_then(|()| out.flush());
                }
                bar.inc(1);
                (file.clone(), outcome.map(drop))
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
        "skipped_existing": skipped,
        "succeeded": ok,
        "failed": failures.len(),
        "seconds": (elapsed * 1000.0).round() / 1000.0,
        "images_per_second": if elapsed > 0.0 { (results.len() as f64 / elapsed * 100.0).round() / 100.0 } else { 0.0 },
        "failures": failures,
    });
    if let Some(output) = &args.output {
        let summary_path = output.join("summary.json");
        std::fs::write(&summary_path, format!("{summary:#}"))
            .map_err(|e| RunError::Io(format!("cannot write {}: {e}", summary_path.display())))?;
    }
    let skipped_note = if skipped > 0 {
        format!(", {skipped} skipped (results exist)")
    } else {
        String::new()
    };
    eprintln!(
        "{} images: {ok} succeeded, {} failed{skipped_note} in {elapsed:.1} s{}",
        results.len(),
        failures.len(),
        args.output
            .as_ref()
            .map(|o| format!(" → {}", o.display()))
            .unwrap_or_default()
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
