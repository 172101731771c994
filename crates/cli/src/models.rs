//! Model loading for the binary's commands, and `percept models [--verify]`.

use std::path::Path;
use std::time::Instant;

use anyhow::Context;
use clap::Args;
use percept_server::{Config, ModelInfo, TaskRegistry};
use percept_tasks::{
    default_registry, model_names, models_of_task, registry_with_models, registry_with_task,
};
use percept_vision::Models;
use percept_vision::percept_infer::EngineOptions;

/// Loads `names`, plus any parsing network declared in the manifest (the learned-model slot)
/// when `with_learned_slot`.
fn load(
    dir: &Path,
    config: &Config,
    names: &[&str],
    with_learned_slot: bool,
) -> anyhow::Result<Models> {
    let started = Instant::now();
    let options = EngineOptions {
        // One session per worker lets every worker run the same model at once.
        max_sessions: Some(config.workers),
        intra_threads: config.intra_threads,
        idle_threads: (config.idle_threads > 0).then_some(config.idle_threads),
        ..EngineOptions::default()
    };
    let manifest = percept_vision::percept_infer::Manifest::load(dir)
        .with_context(|| format!("reading {}/manifest.toml (set --models-dir)", dir.display()))?;
    let mut names: Vec<&str> = names.to_vec();
    if with_learned_slot {
        names.extend(
            manifest
                .models
                .iter()
                .filter(|m| {
                    m.task == percept_vision::parse::LEARNED_TASK && m.segmentation.is_some()
                })
                .map(|m| m.name.as_str()),
        );
    }
    let models = Models::load_choice(dir, &names, config.engine, &options)
        .with_context(|| format!("loading models from {} (set --models-dir)", dir.display()))?;
    tracing::info!(
        dir = %dir.display(),
        engine = %models.engine(),
        models = ?names,
        ms = started.elapsed().as_millis() as u64,
        "models loaded, verified and warmed"
    );
    Ok(models)
}

/// For `serve`: every task, the models behind them and the engine's name. A model that is
/// missing or fails its sha256 stops start-up with the reason.
pub(crate) fn load_for_serving(
    config: &Config,
) -> anyhow::Result<(TaskRegistry, Vec<ModelInfo>, String)> {
    let models = load(&config.resolved_models_dir(), config, &model_names(), true)?;
    let registry = registry_with_models(&models).context("building the model tasks")?;
    Ok((
        registry,
        ModelInfo::list(&models),
        models.engine().to_string(),
    ))
}

/// For `run` and `batch`: only the models `task` needs are loaded (none for art and inspect).
pub(crate) fn registry_for(task: &str, config: &Config) -> anyhow::Result<TaskRegistry> {
    let Some(names) = models_of_task(task) else {
        return Ok(default_registry());
    };
    let models = load(
        &config.resolved_models_dir(),
        config,
        names,
        task == "parse",
    )?;
    registry_with_task(task, &models).with_context(|| format!("building the {task} task"))
}

/// `percept models [--verify]`.
#[derive(Debug, Args)]
pub(crate) struct ModelsArgs {
    /// Also hash every file and compare with the manifest.
    #[arg(long)]
    verify: bool,
    /// Folder with manifest.toml [default: ./models, else the source tree's models/].
    #[arg(long, env = "PERCEPT_MODELS_DIR")]
    models_dir: Option<std::path::PathBuf>,
}

pub(crate) fn list(args: &ModelsArgs) -> anyhow::Result<()> {
    let config = Config {
        models_dir: args.models_dir.clone(),
        ..Config::default()
    };
    let dir = config.resolved_models_dir();
    let manifest = percept_vision::percept_infer::Manifest::load(&dir)
        .with_context(|| format!("reading {}/manifest.toml", dir.display()))?;
    let mut failures = 0;
    for spec in &manifest.models {
        let source = spec
            .source
            .as_ref()
            .map(|s| format!("{} {}=={}", s.registry, s.package, s.version))
            .unwrap_or_default();
        let check = if args.verify {
            match percept_vision::percept_infer::manifest::verify_file(&dir, spec) {
                Ok(_) => "  sha256 ok".to_string(),
                Err(e) => {
                    failures += 1;
                    format!("  FAILED: {e}")
                }
            }
        } else {
            String::new()
        };
        println!(
            "{:<28} {:>8.2} MB  {}  {:?}  {}{}",
            spec.name,
            spec.bytes as f64 / 1e6,
            &spec.sha256.get(..12).unwrap_or(&spec.sha256),
            spec.input.shape,
            source,
            check
        );
    }
    if failures > 0 {
        anyhow::bail!("{failures} model file(s) failed verification");
    }
    Ok(())
}
