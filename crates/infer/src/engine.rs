use std::fmt;
use std::path::Path;
use std::sync::Arc;

use crate::manifest::ModelSpec;
use crate::{Result, Tensor};

/// Which inference engine runs a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EngineKind {
    /// tract: pure Rust, always available.
    Tract,
    /// ONNX Runtime, loaded at run time from `libonnxruntime.so`.
    Ort,
}

impl fmt::Display for EngineKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            EngineKind::Tract => "tract",
            EngineKind::Ort => "ort",
        })
    }
}

/// A loaded model ready to run. Sessions are immutable after loading and shared across worker
/// threads, so `run` takes `&self`; an engine that needs per-call state keeps it inside.
pub trait Session: Send + Sync {
    /// Runs the model. `inputs` follow the graph's input order (one image tensor for every
    /// model percept ships); outputs follow the manifest's `outputs` order.
    fn run(&self, inputs: &[Tensor]) -> Result<Vec<Tensor>>;

    /// Runs the model as one of several runs its caller starts at once (both views of a
    /// crop, several people side by side): such a run never takes the cores an idle engine
    /// lends a lone run (ONNX Runtime's wide session), even when it happens to start first,
    /// because its siblings would then share those cores with it. Engines without such a
    /// session run it as [`Session::run`].
    fn run_beside(&self, inputs: &[Tensor]) -> Result<Vec<Tensor>> {
        self.run(inputs)
    }

    /// The engine behind this session.
    fn engine(&self) -> EngineKind;

    /// Gets ready for `runs` runs at once, so the first request that runs them concurrently
    /// does not pay for it (ONNX Runtime builds its extra sessions now). Engines whose runs
    /// share one plan have nothing to do.
    fn reserve(&self, runs: usize) -> Result<()> {
        let _ = runs;
        Ok(())
    }
}

/// Builds sessions from verified model files. One implementation per engine, so ONNX
/// Runtime sits next to tract without pipelines noticing.
pub trait Engine: Send + Sync {
    /// The kind of sessions this engine makes.
    fn kind(&self) -> EngineKind;

    /// Loads `path`, described by `spec`, into a session.
    fn load(&self, path: &Path, spec: &ModelSpec) -> Result<Arc<dyn Session>>;

    /// Does the part of a later [`Engine::load`] of the same model that needs memory only for
    /// a moment, so a caller loading several models can stage them all first and keep each
    /// one's transient memory off the others' weights (ONNX Runtime optimises the model to a
    /// scratch file here). Loading without staging works too. Default: nothing to do.
    fn stage(&self, path: &Path, spec: &ModelSpec) -> Result<()> {
        let _ = (path, spec);
        Ok(())
    }
}
