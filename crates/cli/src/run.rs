use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::Args;
use percept_core::OutputFormat;
use percept_server::{ApiError, Config, ErrorCode, Executed, Options, Render, Task, execute};
use serde_json::Value;

use crate::ServeArgs;

/// `percept run <task> <image>`.
#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    /// Task: inspect (more arrive with their models: parse, anonymize, art, holistic).
    task: String,
    /// Image file (JPEG, PNG, WebP, BMP, GIF, TIFF).
    image: PathBuf,
    #[command(flatten)]
    common: TaskArgs,
    /// Print the JSON result (same shape as the HTTP body) on stdout.
    #[arg(long)]
    json: bool,
    /// Write the result image here (.png or .jpg); with --json the JSON then names the file
    /// instead of embedding the image.
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
    /// Limits and other settings, as for `serve`.
    #[command(flatten)]
    pub(crate) settings: ServeArgs,
}

impl TaskArgs {
    /// Resolves the task by name (`art` + `--style` → `art/<style>`) and gathers its options.
    pub(crate) fn task_and_options(
        &self,
        name: &str,
        config: &Config,
    ) -> Result<(Arc<dyn Task>, Options), RunError> {
        let registry = crate::models::registry_for(name, config)?;
        self.lookup(&registry, name).map_err(RunError::Api)
    }

    fn lookup(
        &self,
        registry: &percept_server::TaskRegistry,
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

/// The output encoding implied by a file name (`.jpg`/`.jpeg` → JPEG, else PNG).
pub(crate) fn format_for(path: Option<&Path>) -> OutputFormat {
    match path
        .and_then(|p| p.extension())
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
    {
        Some(ext) if ext == "jpg" || ext == "jpeg" => OutputFormat::Jpeg { quality: 90 },
        _ => OutputFormat::Png,
    }
}

/// A failure of one run: the API error (client's fault → exit 2) or anything else (exit 1).
pub(crate) enum RunError {
    Api(ApiError),
    Io(String),
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

/// Reads `image`, runs `task`, and returns the result (image not yet written).
pub(crate) fn run_one(
    task: &dyn Task,
    options: Options,
    image: &Path,
    output: Option<&Path>,
    config: &Config,
) -> Result<Executed, RunError> {
    let metadata = std::fs::metadata(image)
        .map_err(|e| RunError::Io(format!("cannot read {}: {e}", image.display())))?;
    if metadata.len() > config.max_body_bytes as u64 {
        return Err(RunError::Api(ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!(
                "{} is larger than the {} byte limit",
                image.display(),
                config.max_body_bytes
            ),
        )));
    }
    let bytes = std::fs::read(image)
        .map_err(|e| RunError::Io(format!("cannot read {}: {e}", image.display())))?;
    let mut options = options;
    let mut render = Render::from_request(None, &mut options).map_err(RunError::Api)?;
    if output.is_some() {
        render.format = format_for(output);
    }
    let job = task.prepare(options).map_err(RunError::Api)?;
    execute(job, &bytes, &config.decode_limits(), render).map_err(RunError::Api)
}

/// Writes the result image (if any) to `output` and returns the JSON body: the HTTP body's
/// shape, with `output` naming the file instead of the image embedded when one was given.
pub(crate) fn finish(mut executed: Executed, output: Option<&Path>) -> Result<Value, RunError> {
    if let (Some(path), Some(image)) = (output, executed.image.take()) {
        std::fs::write(path, &image)
            .map_err(|e| RunError::Io(format!("cannot write {}: {e}", path.display())))?;
        executed
            .json
            .insert("output".into(), Value::String(path.display().to_string()));
    }
    Ok(executed.into_json())
}

pub(crate) fn run(args: &RunArgs) -> ExitCode {
    let outcome = (|| {
        let config = args
            .common
            .settings
            .resolve()
            .map_err(|e| RunError::Io(format!("{e:#}")))?;
        let (task, options) = args.common.task_and_options(&args.task, &config)?;
        let executed = run_one(
            task.as_ref(),
            options,
            &args.image,
            args.output.as_deref(),
            &config,
        )?;
        let timings: Vec<String> = executed
            .stages
            .iter()
            .map(|(s, d)| format!("{s} {:.1} ms", d.as_secs_f64() * 1e3))
            .collect();
        let json = finish(executed, args.output.as_deref())?;
        if args.json {
            println!("{json}");
        } else {
            let mut shown = json;
            if let Some(map) = shown.as_object_mut() {
                map.remove("image");
            }
            println!(
                "{}",
                serde_json::to_string_pretty(&shown).unwrap_or_default()
            );
            eprintln!("{}", timings.join(" · "));
        }
        Ok::<(), RunError>(())
    })();
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("percept: {}", e.message());
            ExitCode::from(e.exit_code())
        }
    }
}
