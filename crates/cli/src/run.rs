use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::Args;
use percept_core::OutputFormat;
use percept_server::{ApiError, Config, ErrorCode};
use percept_tasks::{Executed, Options, Render, Task, TaskError, execute};
use serde_json::Value;

use crate::CommonSettings;

/// `percept run <task> <image>...`.
#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    /// Task: inspect, parse, anonymize, holistic, or art with --style (the tasks' options:
    /// `GET /v1/tasks` on a server, or the README's API table).
    task: String,
    /// Image files (JPEG, PNG, WebP, BMP, GIF, TIFF); `-` reads one from standard input.
    #[arg(required = true)]
    images: Vec<PathBuf>,
    #[command(flatten)]
    common: TaskArgs,
    /// Print the JSON result (the HTTP body's shape) on stdout instead of a one-line summary;
    /// one line per image, with its `file` when there are several.
    #[arg(long)]
    json: bool,
    /// Write the result image here: a .png, .jpg or .jpeg file (the extension picks the
    /// encoding), `-` for standard output (PNG unless `-O format=jpeg`), or a folder (which
    /// must exist when several images are given) for `<name>.png`, or `.jpg` for JPEG input.
    #[arg(short, long)]
    output: Option<PathBuf>,
}

/// Options shared by `run` and `batch`.
#[derive(Debug, Clone, Args)]
pub(crate) struct TaskArgs {
    /// Art style (for `art`): pencil, pencil-color, oil, watercolor, stylize, cartoon.
    #[arg(long)]
    pub(crate) style: Option<String>,
    /// Anonymisation mode (for `anonymize`): blur, pixelate, box.
    #[arg(long)]
    pub(crate) mode: Option<String>,
    /// Any task option as key=value (repeatable), as in the HTTP query string.
    #[arg(long = "option", short = 'O', value_name = "KEY=VALUE")]
    pub(crate) options: Vec<String>,
    /// Limits, engine and models, as for `serve`.
    #[command(flatten)]
    pub(crate) settings: CommonSettings,
}

impl TaskArgs {
    /// Resolves the task by name (`art` + `--style` → `art/<style>`) and gathers its options.
    pub(crate) fn task_and_options(
        &self,
        name: &str,
        config: &Config,
    ) -> Result<(Arc<dyn Task>, Options), RunError> {
        let registry = crate::models::registry_for(name, config)
            .map_err(|e| RunError::Io(format!("{e:#}")))?;
        self.lookup(&registry, name).map_err(RunError::Api)
    }

    fn lookup(
        &self,
        registry: &percept_tasks::TaskRegistry,
        name: &str,
    ) -> Result<(Arc<dyn Task>, Options), ApiError> {
        let full = match (name, &self.style) {
            ("art", Some(style)) => format!("art/{style}"),
            ("art", None) => return Err(ApiError::bad_option("`art` needs --style")),
            (other, _) => other.to_string(),
        };
        let task = registry.get(&full).ok_or_else(|| {
            ApiError::not_found(format!(
                "no task `{full}`; tasks: {}",
                registry.names().join(", ")
            ))
        })?;
        let mut options = Options::new();
        if let Some(mode) = &self.mode {
            options.insert_text("mode", mode);
        }
        insert_pairs(&mut options, &self.options)?;
        Ok((task, options))
    }
}

/// Adds `--option KEY=VALUE` pairs to `options`, as the HTTP query string would.
pub(crate) fn insert_pairs(options: &mut Options, pairs: &[String]) -> Result<(), ApiError> {
    for pair in pairs {
        let (key, value) = pair
            .split_once('=')
            .ok_or_else(|| ApiError::bad_option(format!("--option `{pair}` is not KEY=VALUE")))?;
        options.insert_text(key, value);
    }
    Ok(())
}

/// The output encoding a file name's extension names: `.png`, `.jpg` or `.jpeg`; any other
/// is refused rather than written as bytes of another format (`-o x.webp` once got a PNG).
/// A JPEG keeps the quality the options asked for (`render`), else 90.
pub(crate) fn format_for(path: &Path, render: OutputFormat) -> Result<OutputFormat, ApiError> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    match ext.as_deref() {
        Some("png") => Ok(OutputFormat::Png),
        Some("jpg" | "jpeg") => Ok(match render {
            OutputFormat::Jpeg { quality } => OutputFormat::Jpeg { quality },
            OutputFormat::Png => OutputFormat::Jpeg { quality: 90 },
        }),
        other => Err(ApiError::bad_option(format!(
            "cannot write {}: the output's extension picks its encoding, and {} is not one \
             percept writes (.png, .jpg, .jpeg)",
            path.display(),
            other.map_or("no extension".to_string(), |e| format!(".{e}")),
        ))),
    }
}

/// Where a result image goes.
#[derive(Debug, Clone)]
pub(crate) enum Sink {
    File(PathBuf),
    Stdout,
}

/// The sink for `input`'s result given `-o` (`several`: more than one input).
fn sink_for(output: Option<&Path>, input: &Path, several: bool) -> Result<Option<Sink>, ApiError> {
    let Some(output) = output else {
        return Ok(None);
    };
    if output == Path::new("-") {
        if several {
            return Err(ApiError::bad_option(
                "`-o -` writes one image to standard output; give one input or a folder",
            ));
        }
        return Ok(Some(Sink::Stdout));
    }
    if several || output.is_dir() {
        if !output.is_dir() {
            return Err(ApiError::bad_option(format!(
                "with several images, -o names an existing folder; {} is not one",
                output.display()
            )));
        }
        let stem = if input == Path::new("-") {
            "stdin".to_string()
        } else {
            input
                .file_stem()
                .map_or("image".to_string(), |s| s.to_string_lossy().into_owned())
        };
        let jpeg = input
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| e.eq_ignore_ascii_case("jpg") || e.eq_ignore_ascii_case("jpeg"));
        let ext = if jpeg { "jpg" } else { "png" };
        return Ok(Some(Sink::File(output.join(format!("{stem}.{ext}")))));
    }
    Ok(Some(Sink::File(output.to_path_buf())))
}

/// A failure of one run: the API error (client's fault → exit 2) or anything else (exit 1).
pub(crate) enum RunError {
    Api(ApiError),
    Io(String),
}

/// A task's failure, with the code and message the HTTP API would give.
impl From<TaskError> for RunError {
    fn from(error: TaskError) -> Self {
        RunError::Api(error.into())
    }
}

impl RunError {
    pub(crate) fn exit_code(&self) -> u8 {
        match self {
            RunError::Api(e) if e.status().is_client_error() => 2,
            _ => 1,
        }
    }

    pub(crate) fn message(&self) -> String {
        match self {
            RunError::Api(e) => format!("{}: {}", e.code.as_str(), e.message),
            RunError::Io(m) => m.clone(),
        }
    }
}

/// Reads `image` (`-`: standard input), at most `limit` bytes.
fn read_input(image: &Path, limit: usize) -> Result<Vec<u8>, RunError> {
    let too_large = || {
        RunError::Api(ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!("{} is larger than the {limit} byte limit", image.display()),
        ))
    };
    if image == Path::new("-") {
        let mut bytes = Vec::new();
        std::io::stdin()
            .lock()
            .take(limit as u64 + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| RunError::Io(format!("cannot read standard input: {e}")))?;
        return if bytes.len() > limit {
            Err(too_large())
        } else {
            Ok(bytes)
        };
    }
    let metadata = std::fs::metadata(image)
        .map_err(|e| RunError::Io(format!("cannot read {}: {e}", image.display())))?;
    if metadata.len() > limit as u64 {
        return Err(too_large());
    }
    std::fs::read(image).map_err(|e| RunError::Io(format!("cannot read {}: {e}", image.display())))
}

/// Reads `image`, runs `task`, and returns the result (image not yet written); the image is
/// encoded for `sink` (a file's extension; standard output keeps the options' format).
pub(crate) fn run_one(
    task: &dyn Task,
    options: Options,
    image: &Path,
    sink: Option<&Sink>,
    config: &Config,
) -> Result<Executed, RunError> {
    let bytes = read_input(image, config.max_body_bytes)?;
    let mut options = options;
    let mut render = Render::from_request(None, &mut options)?;
    if let Some(Sink::File(path)) = sink {
        render.format = format_for(path, render.format).map_err(RunError::Api)?;
    }
    let job = task.prepare(options)?;
    Ok(execute(job, &bytes, &config.decode_limits(), render)?)
}

/// Writes the result image (if any) to `sink` and returns the JSON body: the HTTP body's
/// shape, with `output` naming the file instead of the image embedded when one was written.
pub(crate) fn finish(mut executed: Executed, sink: Option<&Sink>) -> Result<Value, RunError> {
    match (sink, executed.image.take()) {
        (Some(Sink::File(path)), Some(image)) => {
            std::fs::write(path, &image)
                .map_err(|e| RunError::Io(format!("cannot write {}: {e}", path.display())))?;
            executed
                .json
                .insert("output".into(), Value::String(path.display().to_string()));
        }
        (Some(Sink::Stdout), Some(image)) => {
            let mut out = std::io::stdout().lock();
            out.write_all(&image)
                .and_then(|()| out.flush())
                .map_err(|e| RunError::Io(format!("cannot write standard output: {e}")))?;
            executed
                .json
                .insert("output".into(), Value::String("-".into()));
        }
        (_, image) => executed.image = image,
    }
    Ok(executed.into_json())
}

/// One line for people: the file, the task, the result's scalar fields (counts, sizes, which
/// parser ran…), the stage timings and where the image went.
fn summary(file: &Path, task: &str, json: &Value, timings: &str) -> String {
    let mut parts = vec![format!("{}: {task}", file.display())];
    if let Some(map) = json.as_object() {
        let facts: Vec<String> = map
            .iter()
            .filter(|(key, _)| !matches!(key.as_str(), "image" | "output" | "mask"))
            .filter_map(|(key, value)| match value {
                Value::Number(n) => Some(format!("{key} {n}")),
                Value::String(text) if text.len() <= 40 => Some(format!("{key} {text}")),
                Value::Bool(b) => Some(format!("{key} {b}")),
                _ => None,
            })
            .collect();
        if !facts.is_empty() {
            parts.push(facts.join(", "));
        }
    }
    if !timings.is_empty() {
        parts.push(timings.to_string());
    }
    let mut line = parts.join(" · ");
    if let Some(output) = json.get("output").and_then(Value::as_str) {
        line.push_str(&format!(" → {output}"));
    }
    line
}

/// One video input of `run`: `--json` prints a line per frame (and the summary on stderr),
/// otherwise the summary line goes to stdout.
fn run_video(
    args: &RunArgs,
    task: &Arc<dyn Task>,
    options: &Options,
    input: &Path,
    several: bool,
    config: &Config,
) -> Result<(), RunError> {
    if several && args.output.as_deref().is_some_and(|o| !o.is_dir()) {
        return Err(RunError::Api(ApiError::bad_option(
            "with several inputs, -o names an existing folder",
        )));
    }
    let output = crate::video::output_for(args.output.as_deref(), input)?;
    let mut print = |frame: Value| println!("{frame}");
    let summary_json = crate::video::VideoRun {
        task: task.clone(),
        options: options.clone(),
        input,
        output,
        on_frame: if args.json { Some(&mut print) } else { None },
        progress: true,
        config,
    }
    .run()?;
    let line = summary(input, task.name(), &summary_json, "");
    if args.json {
        eprintln!("{line}");
    } else {
        println!("{line}");
    }
    Ok(())
}

pub(crate) fn run(args: &RunArgs) -> ExitCode {
    let prepared = (|| {
        let config = args
            .common
            .settings
            .resolve()
            .map_err(|e| RunError::Io(format!("{e:#}")))?;
        let stdin_inputs = args.images.iter().filter(|p| *p == Path::new("-")).count();
        if stdin_inputs > 1 {
            return Err(RunError::Api(ApiError::bad_option(
                "standard input (`-`) can be read once",
            )));
        }
        let to_stdout = args.output.as_deref() == Some(Path::new("-"));
        if to_stdout && args.json {
            return Err(RunError::Api(ApiError::bad_option(
                "`-o -` writes the image to standard output; --json would mix into it",
            )));
        }
        let (task, options) = args.common.task_and_options(&args.task, &config)?;
        Ok((config, task, options))
    })();
    let (config, task, options) = match prepared {
        Ok(prepared) => prepared,
        Err(e) => {
            eprintln!("percept: {}", e.message());
            return ExitCode::from(e.exit_code());
        }
    };
    let several = args.images.len() > 1;
    let mut failure: Option<u8> = None;
    for image in &args.images {
        let outcome = (|| {
            if crate::video::is_video(image) {
                return run_video(args, &task, &options, image, several, &config);
            }
            let sink = sink_for(args.output.as_deref(), image, several).map_err(RunError::Api)?;
            let executed = run_one(
                task.as_ref(),
                options.clone(),
                image,
                sink.as_ref(),
                &config,
            )?;
            let timings: Vec<String> = executed
                .stages
                .iter()
                .map(|(s, d)| format!("{s} {:.1} ms", d.as_secs_f64() * 1e3))
                .collect();
            let mut json = finish(executed, sink.as_ref())?;
            if args.json {
                if several && let Some(map) = json.as_object_mut() {
                    map.insert("file".into(), Value::String(image.display().to_string()));
                }
                println!("{json}");
            } else {
                let line = summary(image, task.name(), &json, &timings.join(" · "));
                // Standard output may be carrying the image.
                if matches!(sink, Some(Sink::Stdout)) {
                    eprintln!("{line}");
                } else {
                    println!("{line}");
                }
            }
            Ok::<(), RunError>(())
        })();
        if let Err(e) = outcome {
            let prefix = if several {
                format!("{}: ", image.display())
            } else {
                String::new()
            };
            eprintln!("percept: {prefix}{}", e.message());
            failure.get_or_insert(e.exit_code());
        }
    }
    match failure {
        None => ExitCode::SUCCESS,
        Some(code) => ExitCode::from(code),
    }
}
