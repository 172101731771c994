use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use crate::engine::{Engine, EngineKind, Session};
use crate::manifest::{Manifest, ModelSpec, verify_file};
use crate::select::{EngineChoice, EngineOptions, select_engine};
use crate::tract::TractEngine;
use crate::{InferError, Result, Tensor};

/// Side used to warm models whose input size is dynamic: the detector's most common size.
pub const DYNAMIC_WARM_SIDE: usize = 640;

/// A verified, loaded and warmed model.
#[derive(Clone)]
pub struct LoadedModel {
    spec: ModelSpec,
    session: Arc<dyn Session>,
}

impl std::fmt::Debug for LoadedModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedModel")
            .field("name", &self.spec.name)
            .field("engine", &self.session.engine())
            .finish()
    }
}

impl LoadedModel {
    /// The manifest entry.
    pub fn spec(&self) -> &ModelSpec {
        &self.spec
    }

    /// The session, to run the model.
    pub fn session(&self) -> &Arc<dyn Session> {
        &self.session
    }

    /// Runs the model on one input tensor.
    pub fn run(&self, input: &Tensor) -> Result<Vec<Tensor>> {
        self.checked(self.session.run(std::slice::from_ref(input))?)
    }

    /// Runs the model on one input tensor as one of several runs the caller starts at once
    /// ([`Session::run_beside`]).
    pub fn run_beside(&self, input: &Tensor) -> Result<Vec<Tensor>> {
        self.checked(self.session.run_beside(std::slice::from_ref(input))?)
    }

    /// `outputs`, if there are as many as the manifest lists.
    fn checked(&self, outputs: Vec<Tensor>) -> Result<Vec<Tensor>> {
        if outputs.len() != self.spec.outputs.len() {
            return Err(InferError::Shape(format!(
                "model `{}` gave {} outputs, the manifest lists {}",
                self.spec.name,
                outputs.len(),
                self.spec.outputs.len()
            )));
        }
        Ok(outputs)
    }
}

/// The models a process uses: loaded once at start, verified, warmed, then shared read-only
/// (wrap it in an `Arc`).
#[derive(Debug)]
pub struct Models {
    dir: PathBuf,
    manifest: Manifest,
    engine: EngineKind,
    loaded: BTreeMap<String, LoadedModel>,
}

impl Models {
    /// Loads the models called `names` from `dir` (which holds `manifest.toml`) with tract:
    /// verifies each file's sha256, builds its session and runs it once on zeros so the first
    /// request does not pay for plan building.
    pub fn load(dir: impl AsRef<Path>, names: &[&str]) -> Result<Self> {
        Self::load_with(dir, names, &TractEngine)
    }

    /// As [`Models::load`], on the engine `choice` selects (see [`select_engine`]): `Auto`
    /// falls back to tract when ONNX Runtime is not available, `Ort` fails then.
    pub fn load_choice(
        dir: impl AsRef<Path>,
        names: &[&str],
        choice: EngineChoice,
        options: &EngineOptions,
    ) -> Result<Self> {
        let engine = select_engine(choice, options)?;
        Self::load_with(dir, names, engine.as_ref())
    }

    /// As [`Models::load`], with an explicit engine.
    pub fn load_with(dir: impl AsRef<Path>, names: &[&str], engine: &dyn Engine) -> Result<Self> {
        Self::load_files(dir.as_ref(), names, engine, true)
    }

    /// As [`Models::load_with`], every model from its float file, whatever `[model.quantized]`
    /// lists: the same graph on each engine, so that what differs is the engines' kernels
    /// (`engines_agree`), not 8-bit rounding.
    pub fn load_float_with(
        dir: impl AsRef<Path>,
        names: &[&str],
        engine: &dyn Engine,
    ) -> Result<Self> {
        Self::load_files(dir.as_ref(), names, engine, false)
    }

    fn load_files(
        dir: &Path,
        names: &[&str],
        engine: &dyn Engine,
        quantized: bool,
    ) -> Result<Self> {
        let dir = dir.to_path_buf();
        let manifest = Manifest::load(&dir)?;
        let mut verified: Vec<(ModelSpec, PathBuf)> = Vec::with_capacity(names.len());
        for &name in names {
            if verified.iter().any(|(spec, _)| spec.name == name) {
                continue;
            }
            let spec = manifest.model(name)?;
            let spec = if quantized {
                spec.for_engine(engine.kind())
            } else {
                spec.clone()
            };
            let path = verify_file(&dir, &spec)?;
            verified.push((spec, path));
        }
        // Every model staged before any is loaded: the peak memory of loading is then one
        // model's transient on top of nothing else, not on top of every model loaded so far.
        for (spec, path) in &verified {
            engine.stage(path, spec)?;
        }
        let mut loaded = BTreeMap::new();
        for (spec, path) in verified {
            let name = spec.name.clone();
            let start = Instant::now();
            let session = engine.load(&path, &spec)?;
            let model = LoadedModel { spec, session };
            warm(&model)?;
            tracing::info!(
                model = %name,
                engine = %engine.kind(),
                int8 = model.spec.runs_quantized,
                ms = start.elapsed().as_millis() as u64,
                "model loaded and warmed"
            );
            loaded.insert(name, model);
        }
        Ok(Self {
            dir,
            manifest,
            engine: engine.kind(),
            loaded,
        })
    }

    /// The loaded model called `name`.
    pub fn get(&self, name: &str) -> Result<&LoadedModel> {
        self.loaded
            .get(name)
            .ok_or_else(|| InferError::UnknownModel(format!("{name} (not loaded)")))
    }

    /// Every loaded model, by name.
    pub fn iter(&self) -> impl Iterator<Item = &LoadedModel> {
        self.loaded.values()
    }

    /// The whole manifest (also the entries that were not loaded).
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The directory the models came from.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The engine the sessions run on.
    pub fn engine(&self) -> EngineKind {
        self.engine
    }
}

fn warm(model: &LoadedModel) -> Result<()> {
    let input = &model.spec.input;
    let (h, w) = input
        .fixed_hw()
        .unwrap_or((DYNAMIC_WARM_SIDE, DYNAMIC_WARM_SIDE));
    model.run(&Tensor::zeros(input.shape_for(h, w)))?;
    Ok(())
}
