//! `percept`: the server and the command line in one binary (DESIGN §5).

mod batch;
mod bench;
mod bench_task;
mod charts;
mod load;
mod models;
mod records;
mod run;
mod video;

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Parser, Subcommand, ValueEnum};
use percept_server::{AppState, Config};
use percept_vision::percept_infer::EngineChoice;

/// Offline computer vision on photos of people: human parsing, face privacy, art filters,
/// holistic landmarks. With no subcommand, serves the web page and API (the `serve` flags and
/// `PERCEPT_*` variables apply).
#[derive(Debug, Parser)]
#[command(name = "percept", version, about)]
struct Cli {
    /// Log format: `text` for people, `json` for log collectors; `auto` picks text on a TTY.
    #[arg(long, env = "PERCEPT_LOG_FORMAT", value_enum, default_value_t = LogFormat::Auto, global = true)]
    log_format: LogFormat,

    /// More log detail: -v debug, -vv trace (`PERCEPT_LOG`, a tracing filter, applies when
    /// neither -v nor -q is given).
    #[arg(short, long, action = clap::ArgAction::Count, global = true, conflicts_with = "quiet")]
    verbose: u8,
    /// Less: -q warnings and errors only, -qq errors only.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    quiet: u8,

    #[command(subcommand)]
    command: Option<Command>,

    /// `percept` alone is `percept serve`: its settings are read here, from flags, the
    /// environment and `--config` alike (a bare `ServeArgs::default()` ignored them all).
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum LogFormat {
    Auto,
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the web page and the REST API (the default).
    Serve(ServeArgs),
    /// Run one task on image files (or standard input).
    #[command(after_long_help = percept_tasks::options_help())]
    Run(run::RunArgs),
    /// Run one task on every image in a folder, with a progress bar and a summary.
    #[command(after_long_help = percept_tasks::options_help())]
    Batch(batch::BatchArgs),
    /// Drive a running server with real photos; write CSVs, a summary and SVG charts.
    Load(load::LoadArgs),
    /// List the models in the manifest; with --verify, check every file's sha256.
    Models(models::ModelsArgs),
    /// Print a shell completion script (`percept completions bash > /etc/bash_completion.d/percept`).
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
    /// Print the man page in roff (`percept man | man -l -`), or a subcommand's
    /// (`percept man run`).
    Man {
        /// A subcommand whose page to print instead of percept's.
        subcommand: Option<String>,
    },
    /// Time every model on each available engine (tract, ONNX Runtime) on a real photo, or
    /// with --task a task end to end (decode → task → encode) on photos.
    Bench(bench::BenchArgs),
}

/// Settings `serve`, `run` and `batch` share. Each flag is also a `PERCEPT_*` environment
/// variable; both override the TOML file given with `--config`, which overrides the defaults.
#[derive(Debug, Clone, Args)]
pub(crate) struct CommonSettings {
    /// TOML file with any of the settings (snake_case keys).
    #[arg(long, env = "PERCEPT_CONFIG")]
    config: Option<PathBuf>,
    /// Worker threads for image work [default: number of cores].
    #[arg(long, env = "PERCEPT_WORKERS")]
    workers: Option<usize>,
    /// Largest request body (or input file) in bytes [default: 26214400 = 25 MiB].
    #[arg(long, env = "PERCEPT_MAX_BODY_BYTES")]
    max_body_bytes: Option<usize>,
    /// Largest image in pixels after decoding [default: 40000000].
    #[arg(long, env = "PERCEPT_MAX_PIXELS")]
    max_pixels: Option<u64>,
    /// Largest image side in pixels [default: 12000].
    #[arg(long, env = "PERCEPT_MAX_SIDE")]
    max_side: Option<u32>,
    /// Folder with manifest.toml and the ONNX models [default: ./models, else the source
    /// tree's models/].
    #[arg(long, env = "PERCEPT_MODELS_DIR")]
    models_dir: Option<PathBuf>,
    /// Inference engine: `auto` (ONNX Runtime when libonnxruntime is found, see
    /// scripts/fetch-ort and PERCEPT_ORT_DYLIB, else tract), `tract` or `ort` [default: auto].
    #[arg(long, env = "PERCEPT_ENGINE")]
    engine: Option<EngineChoice>,
    /// Threads one ONNX Runtime model run may use; `workers × intra_threads ≈ cores` lowers
    /// a single request's latency at some cost in throughput [default: 1].
    #[arg(long, env = "PERCEPT_INTRA_THREADS")]
    intra_threads: Option<usize>,
    /// Threads of a large model run (CenterFace, the parser) that starts while no other run is
    /// in flight, a lone request on an idle machine: 0 = every core, 1 = off [default: 0].
    #[arg(long, env = "PERCEPT_IDLE_THREADS")]
    idle_threads: Option<usize>,
}

/// Service settings: the common ones plus those only a server has (`run` and `batch` do not
/// show them in their help).
#[derive(Debug, Clone, Args)]
pub(crate) struct ServeArgs {
    #[command(flatten)]
    common: CommonSettings,
    /// Listen address [default: 127.0.0.1:8080].
    #[arg(long, env = "PERCEPT_ADDR")]
    addr: Option<SocketAddr>,
    /// A second address serving only GET /metrics, without the API key, for Prometheus
    /// (keep it off the Service and Ingress) [default: none, /metrics is on --addr].
    #[arg(long, env = "PERCEPT_METRICS_ADDR")]
    metrics_addr: Option<SocketAddr>,
    /// Requests that may wait for a worker before new ones get 429 [default: 32].
    #[arg(long, env = "PERCEPT_QUEUE")]
    queue: Option<usize>,
    /// Per-request deadline in milliseconds [default: 30000].
    #[arg(long, env = "PERCEPT_DEADLINE_MS")]
    deadline_ms: Option<u64>,
    /// Most images in one multipart request [default: 64].
    #[arg(long, env = "PERCEPT_MAX_PARTS")]
    max_parts: Option<usize>,
    /// Largest video an async job accepts, in bytes [default: 209715200 = 200 MiB].
    #[arg(long, env = "PERCEPT_MAX_VIDEO_BYTES")]
    max_video_bytes: Option<usize>,
    /// Longest video an async job accepts, in seconds [default: 600].
    #[arg(long, env = "PERCEPT_MAX_VIDEO_SECONDS")]
    max_video_seconds: Option<u64>,
    /// Require `Authorization: Bearer <key>` on every route but the page and health probes
    /// (at least 16 characters) [default: none].
    #[arg(long, env = "PERCEPT_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
    /// Result cache budget in bytes; 0 turns the cache off [default: 268435456 = 256 MiB].
    #[arg(long, env = "PERCEPT_CACHE_BYTES")]
    cache_bytes: Option<u64>,
    /// How long finished job results are kept, in seconds [default: 600].
    #[arg(long, env = "PERCEPT_RESULT_TTL_SECS")]
    result_ttl_secs: Option<u64>,
    /// Keep async jobs in Redis, shared by every replica (`redis://host:6379`) [default: in
    /// process memory].
    #[arg(long, env = "PERCEPT_REDIS_URL", hide_env_values = true)]
    redis_url: Option<String>,
    /// Bytes of photos the shared Redis queue may hold (with each at --max-body-bytes); size
    /// Redis's maxmemory above it [default: 1073741824 = 1 GiB].
    #[arg(long, env = "PERCEPT_REDIS_QUEUE_BYTES")]
    redis_queue_bytes: Option<u64>,
    /// This replica's stable name in Redis [default: <hostname>:<port>].
    #[arg(long, env = "PERCEPT_REPLICA_ID")]
    replica_id: Option<String>,
    /// The URL clients reach the service at (`https://host[/prefix]`), for the absolute result
    /// URLs of `/api/parse` [default: from the request's Host / X-Forwarded-* headers].
    #[arg(long, env = "PERCEPT_PUBLIC_URL")]
    public_url: Option<String>,
}

impl CommonSettings {
    /// Defaults, then the TOML file, then flags and environment.
    pub(crate) fn resolve(&self) -> anyhow::Result<Config> {
        let config = self.base()?;
        config.validate()?;
        Ok(config)
    }

    /// The file's settings (or the defaults) with these flags applied, not yet validated.
    fn base(&self) -> anyhow::Result<Config> {
        let mut config = match &self.config {
            Some(path) => Config::from_toml_file(path)?,
            None => Config::default(),
        };
        macro_rules! apply {
            ($($field:ident),*) => {$( if let Some(v) = self.$field { config.$field = v; } )*};
        }
        apply!(
            workers,
            max_body_bytes,
            max_pixels,
            max_side,
            engine,
            intra_threads,
            idle_threads
        );
        if let Some(dir) = &self.models_dir {
            config.models_dir = Some(dir.clone());
        }
        Ok(config)
    }
}

impl ServeArgs {
    /// Defaults, then the TOML file, then flags and environment.
    pub(crate) fn resolve(&self) -> anyhow::Result<Config> {
        let mut config = self.common.base()?;
        macro_rules! apply {
            ($($field:ident),*) => {$( if let Some(v) = self.$field { config.$field = v; } )*};
        }
        apply!(
            addr,
            queue,
            deadline_ms,
            max_parts,
            max_video_bytes,
            max_video_seconds,
            cache_bytes,
            result_ttl_secs,
            redis_queue_bytes
        );
        if let Some(url) = &self.redis_url {
            config.redis_url = Some(percept_server::Secret::new(url.clone()));
        }
        if let Some(addr) = self.metrics_addr {
            config.metrics_addr = Some(addr);
        }
        if let Some(id) = &self.replica_id {
            config.replica_id = Some(id.clone());
        }
        if let Some(url) = &self.public_url {
            config.public_url = Some(url.clone());
        }
        // An empty key is no key (compose passes `PERCEPT_API_KEY: ${PERCEPT_API_KEY:-}`).
        if let Some(key) = self.api_key.as_ref().filter(|k| !k.is_empty()) {
            config.api_key = Some(percept_server::Secret::new(key.clone()));
        }
        config.validate()?;
        Ok(config)
    }
}

/// The log filter: -v/-q when given, else `PERCEPT_LOG`, else info.
fn log_filter(verbose: u8, quiet: u8) -> tracing_subscriber::EnvFilter {
    let level = match (verbose, quiet) {
        (0, 0) => {
            return tracing_subscriber::EnvFilter::try_from_env("PERCEPT_LOG").unwrap_or_else(
                |_| tracing_subscriber::EnvFilter::new("info,tower_http=warn,ort=warn"),
            );
        }
        (0, 1) => "warn",
        (0, _) => "error",
        (1, _) => "debug,ort=info",
        _ => "trace",
    };
    tracing_subscriber::EnvFilter::new(level)
}

/// `percept man [subcommand]`: the roff page of percept or of one subcommand.
fn man_page(subcommand: Option<&str>) -> anyhow::Result<()> {
    let root = <Cli as clap::CommandFactory>::command();
    let command = match subcommand {
        None => root,
        Some(name) => root
            .find_subcommand(name)
            .cloned()
            .with_context(|| format!("no subcommand `{name}`"))?
            .bin_name(format!("percept {name}")),
    };
    let mut out = std::io::stdout().lock();
    clap_mangen::Man::new(command)
        .render(&mut out)
        .context("writing the man page")
}

fn init_logging(format: LogFormat, filter: tracing_subscriber::EnvFilter) {
    let json = match format {
        LogFormat::Json => true,
        LogFormat::Text => false,
        LogFormat::Auto => !std::io::stderr().is_terminal(),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// SIGHUP reloads the models (operators' habit from the service percept replaces); a refused
/// reload is logged and the old models keep serving.
fn reload_on_sighup(state: std::sync::Arc<AppState>) {
    #[cfg(unix)]
    tokio::spawn(async move {
        let mut hangup = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        {
            Ok(signal) => signal,
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGHUP; reload by HTTP only");
                return;
            }
        };
        while hangup.recv().await.is_some() {
            tracing::info!("SIGHUP: reloading the models");
            // A refusal is logged by `reload` and leaves the old models serving.
            let _ = state.clone().reload().await;
        }
    });
    #[cfg(not(unix))]
    drop(state);
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::warn!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}

fn serve(args: &ServeArgs) -> anyhow::Result<()> {
    let config = args.resolve()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        // The async side only shuffles bytes; image work runs on the pool's own threads.
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(config.addr)
            .await
            .with_context(|| format!("binding {}", config.addr))?;
        let addr = listener.local_addr()?;
        // Bound before the models load, so a taken port fails at once.
        let metrics_listener = match config.metrics_addr {
            Some(at) => Some(
                tokio::net::TcpListener::bind(at)
                    .await
                    .with_context(|| format!("binding the metrics listener {at}"))?,
            ),
            None => None,
        };
        let (tasks, models, engine) = models::load_for_serving(&config)?;
        tracing::info!(
            %addr,
            workers = config.workers,
            queue = config.queue,
            tasks = ?tasks.names(),
            "percept {} listening on http://{addr}",
            env!("CARGO_PKG_VERSION")
        );
        let reload_config = config.clone();
        let state = AppState::new(config, tasks, models, &engine);
        // `load_for_serving` returned only after every model was verified and warmed.
        state.set_ready(true);
        // POST /v1/admin/reload and SIGHUP load the models afresh with the same settings.
        state.set_reloader(std::sync::Arc::new(move || {
            models::load_for_serving(&reload_config)
                .map(|(tasks, models, _engine)| (tasks, models))
                .map_err(|e| format!("{e:#}"))
        }));
        reload_on_sighup(state.clone());
        if let Some(listener) = metrics_listener {
            let at = listener.local_addr()?;
            tracing::info!(%at, "metrics on http://{at}/metrics (no API key)");
            let state = state.clone();
            tokio::spawn(async move {
                if let Err(e) = percept_server::serve_metrics(listener, state).await {
                    tracing::error!(error = %e, "the metrics listener stopped");
                }
            });
        }
        percept_server::serve(listener, state, shutdown_signal())
            .await
            .context("serving")
    })
}

/// Parses the command line. Serve flags belong to `percept` alone or to `percept serve`: in
/// front of another subcommand they would be ignored, so they are refused (clap's
/// `args_conflicts_with_subcommands` would also refuse the global `-v`/`-q`).
fn parse_cli() -> Cli {
    use clap::{CommandFactory, FromArgMatches};
    let mut command = Cli::command();
    let matches = command.get_matches_mut();
    if let Some((name, _)) = matches.subcommand() {
        let globals = ["verbose", "quiet", "log_format"];
        let misplaced: Vec<String> = matches
            .ids()
            .map(|id| id.as_str())
            .filter(|id| !globals.contains(id))
            .filter(|id| matches.value_source(id) == Some(clap::parser::ValueSource::CommandLine))
            .map(|id| format!("--{}", id.replace('_', "-")))
            .collect();
        if !misplaced.is_empty() {
            command
                .error(
                    clap::error::ErrorKind::ArgumentConflict,
                    format!(
                        "{} apply to the server: put them after `serve`, not before `{name}`",
                        misplaced.join(", ")
                    ),
                )
                .exit();
        }
    }
    Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
}

fn main() -> std::process::ExitCode {
    let cli = parse_cli();
    init_logging(cli.log_format, log_filter(cli.verbose, cli.quiet));
    let result = match cli.command {
        None => serve(&cli.serve),
        Some(Command::Serve(args)) => serve(&args),
        Some(Command::Run(args)) => return run::run(&args),
        Some(Command::Batch(args)) => return batch::batch(&args),
        Some(Command::Load(args)) => load::load(&args),
        Some(Command::Models(args)) => models::list(&args),
        Some(Command::Bench(args)) => match &args.task {
            Some(task) => bench_task::bench_task(&args, task),
            None => bench::bench(&args),
        },
        Some(Command::Completions { shell }) => {
            let mut command = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut command, "percept", &mut std::io::stdout());
            Ok(())
        }
        Some(Command::Man { subcommand }) => man_page(subcommand.as_deref()),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("percept: {e:#}");
            std::process::ExitCode::from(1)
        }
    }
}
