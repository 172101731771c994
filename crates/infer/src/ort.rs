//! The ONNX Runtime engine, through the `ort` crate with `load-dynamic`: nothing is linked or
//! downloaded at build time; `libonnxruntime.so` is opened at run time from the path
//! [`crate::OrtLocator`] finds (`scripts/fetch-ort` puts it under `.ort/`).
//!
//! Each model keeps a small pool of ORT sessions rather than one session behind a mutex: ort's
//! `Session::run` takes `&mut self` because ONNX Runtime's `Run` is not reliably thread-safe, and
//! one mutex per model would serialise every worker that runs the same model (the holistic
//! pipeline runs the same landmark models on every request). Sessions are made on demand, up to
//! `max_sessions` (one per worker is enough: a worker runs one model at a time), and share their
//! pre-packed weights (with every other session of the engine), so an extra session costs
//! little more than its activations.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

use ort::environment::Environment;
use ort::logging::LogLevel;
use ort::session::builder::{GraphOptimizationLevel, PrepackedWeights};
use ort::session::{RunOptions, Session as OrtRawSession};
use ort::value::TensorRef;

use crate::engine::{Engine, EngineKind, Session};
use crate::manifest::ModelSpec;
use crate::{InferError, Result, Tensor};

/// The one ONNX Runtime library and environment of this process. ONNX Runtime allows a single
/// environment per process, and ort keeps the first library it opened for good, so both are
/// made once and every [`OrtEngine`] shares them.
static RUNTIME: Mutex<Option<(PathBuf, Environment)>> = Mutex::new(None);

fn unavailable(reason: impl Into<String>) -> InferError {
    InferError::EngineUnavailable {
        engine: EngineKind::Ort,
        reason: reason.into(),
    }
}

/// Opens `dylib` (once per process) and returns the shared environment.
fn runtime(dylib: &Path) -> Result<Environment> {
    let mut slot = RUNTIME.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some((loaded, env)) = slot.as_ref() {
        if loaded == dylib {
            return Ok(env.clone());
        }
        return Err(unavailable(format!(
            "ONNX Runtime is already loaded from {} in this process; cannot also load {}",
            loaded.display(),
            dylib.display()
        )));
    }
    // ort resolves a relative path against the executable's folder, not the working directory;
    // an absolute path means what the user wrote.
    let absolute = std::path::absolute(dylib)
        .map_err(|e| unavailable(format!("cannot resolve {}: {e}", dylib.display())))?;
    if !absolute.is_file() {
        return Err(unavailable(format!("{} is not a file", absolute.display())));
    }
    let env = ort::init_from(&absolute)
        .map_err(|e| unavailable(format!("cannot load {}: {e}", absolute.display())))?
        .with_name("percept")
        .build()
        .map_err(|e| unavailable(format!("cannot start ONNX Runtime: {e}")))?;
    *slot = Some((dylib.to_path_buf(), env.clone()));
    Ok(env)
}

/// The ONNX Runtime engine. Make one with [`OrtEngine::new`]; it fails when the library cannot
/// be opened, so a caller can fall back to tract.
#[derive(Clone)]
pub struct OrtEngine {
    env: Environment,
    dylib: PathBuf,
    intra_threads: usize,
    max_sessions: usize,
    /// Shared by every session this engine builds: ONNX Runtime keys packed weights by their
    /// contents, so a `[[variant]]` and its model (the parser's and holistic's pose landmark
    /// models) hold one copy.
    weights: PrepackedWeights,
}

impl std::fmt::Debug for OrtEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OrtEngine")
            .field("dylib", &self.dylib)
            .field("intra_threads", &self.intra_threads)
            .field("max_sessions", &self.max_sessions)
            .finish_non_exhaustive()
    }
}

impl OrtEngine {
    /// Opens ONNX Runtime from `dylib` (a `libonnxruntime.so`, version 1.31 or newer). One
    /// intra-op thread per run; at most one session per core and model.
    pub fn new(dylib: &Path) -> Result<Self> {
        let env = runtime(dylib)?;
        Ok(Self {
            env,
            dylib: dylib.to_path_buf(),
            intra_threads: 1,
            max_sessions: std::thread::available_parallelism().map_or(1, |n| n.get()),
            weights: PrepackedWeights::new(),
        })
    }

    /// Threads one run may use (at least 1). Keep `intra_threads × workers ≤ cores`.
    #[must_use]
    pub fn with_intra_threads(mut self, threads: usize) -> Self {
        self.intra_threads = threads.max(1);
        self
    }

    /// Most sessions per model, i.e. how many runs of one model can proceed at once (at
    /// least 1). Set it to the number of workers.
    #[must_use]
    pub fn with_max_sessions(mut self, sessions: usize) -> Self {
        self.max_sessions = sessions.max(1);
        self
    }

    /// The library this engine runs on.
    pub fn dylib(&self) -> &Path {
        &self.dylib
    }

    /// Threads per run.
    pub fn intra_threads(&self) -> usize {
        self.intra_threads
    }
}

impl Engine for OrtEngine {
    fn kind(&self) -> EngineKind {
        EngineKind::Ort
    }

    fn load(&self, path: &Path, spec: &ModelSpec) -> Result<Arc<dyn Session>> {
        Ok(Arc::new(OrtSession::load(self, path, spec)?))
    }
}

struct Pool {
    idle: Vec<OrtRawSession>,
    created: usize,
}

/// A model on ONNX Runtime: a pool of ORT sessions built from the same bytes (see the module
/// docs for why a pool).
pub struct OrtSession {
    name: String,
    path: PathBuf,
    spec: ModelSpec,
    env: Environment,
    weights: PrepackedWeights,
    intra_threads: usize,
    max_sessions: usize,
    pool: Mutex<Pool>,
    returned: Condvar,
}

fn engine_err(name: &str, e: impl std::fmt::Display) -> InferError {
    InferError::Engine {
        model: name.to_string(),
        message: e.to_string(),
    }
}

impl OrtSession {
    /// Loads the ONNX file at `path` (already verified) and builds its first session, so a
    /// model ONNX Runtime rejects fails here rather than on the first request.
    pub fn load(engine: &OrtEngine, path: &Path, spec: &ModelSpec) -> Result<Self> {
        let session = Self {
            name: spec.name.clone(),
            path: path.to_path_buf(),
            spec: spec.clone(),
            env: engine.env.clone(),
            weights: engine.weights.clone(),
            intra_threads: engine.intra_threads,
            max_sessions: engine.max_sessions,
            pool: Mutex::new(Pool {
                idle: Vec::new(),
                created: 1,
            }),
            returned: Condvar::new(),
        };
        let first = session.build()?;
        session.lock().idle.push(first);
        Ok(session)
    }

    fn build(&self) -> Result<OrtRawSession> {
        let err = |e: ort::Error<_>| engine_err(&self.name, e);
        OrtRawSession::builder(&self.env)
            .map_err(|e| engine_err(&self.name, e))?
            .with_optimization_level(GraphOptimizationLevel::All)
            .map_err(err)?
            .with_intra_threads(self.intra_threads)
            .map_err(err)?
            .with_inter_threads(1)
            .map_err(err)?
            // Spinning keeps idle pool threads busy after a run, taking cores from the other
            // workers; only matters when intra_threads > 1.
            .with_intra_op_spinning(false)
            .map_err(err)?
            .with_prepacked_weights(&self.weights)
            .map_err(err)?
            // A memory pattern plans one more block per input shape on top of the arena: holistic's
            // peak RSS was 244 MiB with it, 197 without, at the same speed (one A/B).
            .with_memory_pattern(false)
            .map_err(err)?
            // The environment forwards every level to `tracing`; below warnings ORT is chatty.
            .with_log_level(LogLevel::Warning)
            .map_err(err)?
            // Read (and checked against the manifest's sha256) for each session rather than kept:
            // the files of holistic's models alone are ~38 MB, and extra sessions are rare.
            .commit_from_memory(&crate::graph::model_bytes(&self.path, &self.spec, true)?)
            .map_err(|e| engine_err(&self.name, e))
    }

    fn lock(&self) -> MutexGuard<'_, Pool> {
        // The pool is a list and a count changed together under the lock; a panic elsewhere
        // cannot leave it half-updated.
        self.pool.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Builds a session already counted in `created` (outside the lock: it takes milliseconds
    /// and others may return sessions meanwhile); a failure gives the count back.
    fn build_counted(&self) -> Result<OrtRawSession> {
        self.build().inspect_err(|_| {
            self.lock().created -= 1;
            self.returned.notify_one();
        })
    }

    /// An idle session, a new one while fewer than `max_sessions` exist, else waits for one.
    fn checkout(&self) -> Result<Lease<'_>> {
        let mut pool = self.lock();
        loop {
            if let Some(session) = pool.idle.pop() {
                return Ok(Lease {
                    owner: self,
                    session: Some(session),
                });
            }
            if pool.created < self.max_sessions {
                pool.created += 1;
                drop(pool);
                let session = self.build_counted()?;
                tracing::debug!(model = %self.name, "extra ONNX Runtime session");
                return Ok(Lease {
                    owner: self,
                    session: Some(session),
                });
            }
            pool = self
                .returned
                .wait(pool)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }
}

/// A session taken from the pool; goes back on drop, also when the run failed or panicked
/// (ort's session holds no per-run state).
struct Lease<'a> {
    owner: &'a OrtSession,
    session: Option<OrtRawSession>,
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        if let Some(session) = self.session.take() {
            self.owner.lock().idle.push(session);
            self.owner.returned.notify_one();
        }
    }
}

/// Inputs larger than this (a 640×520 RGB photo) give their activation memory back after
/// the run.
const SHRINK_ABOVE_VALUES: usize = 1_000_000;

impl Session for OrtSession {
    fn run(&self, inputs: &[Tensor]) -> Result<Vec<Tensor>> {
        let [input] = inputs else {
            return Err(InferError::Shape(format!(
                "model `{}` takes one input, got {}",
                self.name,
                inputs.len()
            )));
        };
        let value = TensorRef::from_array_view((input.shape(), input.data()))
            .map_err(|e| engine_err(&self.name, e))?;
        let mut lease = self.checkout()?;
        let session = lease
            .session
            .as_mut()
            .ok_or_else(|| engine_err(&self.name, "no session in lease"))?;
        // The arena would otherwise keep the largest activations ever seen (CenterFace on a
        // 12 MP photo: 350–450 MB) for the life of the process, so a large input shrinks it after
        // its run. Small fixed-size inputs skip it: re-growing costs ~10 % of holistic's time.
        let shrink = if input.len() > SHRINK_ABOVE_VALUES {
            let mut options = RunOptions::new().map_err(|e| engine_err(&self.name, e))?;
            options
                .set("memory.enable_memory_arena_shrinkage", "cpu:0")
                .map_err(|e| engine_err(&self.name, e))?;
            Some(options)
        } else {
            None
        };
        let outputs = match &shrink {
            Some(options) => session.run_with_options(ort::inputs![value], options),
            None => session.run(ort::inputs![value]),
        }
        .map_err(|e| engine_err(&self.name, e))?;
        // Graph order, as tract gives them.
        outputs
            .values()
            .map(|value| {
                let (shape, data) = value
                    .try_extract_tensor::<f32>()
                    .map_err(|e| engine_err(&self.name, e))?;
                let shape = shape
                    .iter()
                    .map(|&d| usize::try_from(d))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| engine_err(&self.name, format!("output shape {shape:?}: {e}")))?;
                Tensor::new(shape, data.to_vec())
            })
            .collect()
    }

    fn engine(&self) -> EngineKind {
        EngineKind::Ort
    }

    fn reserve(&self, runs: usize) -> Result<()> {
        let wanted = runs.min(self.max_sessions);
        loop {
            {
                let mut pool = self.lock();
                if pool.created >= wanted {
                    return Ok(());
                }
                pool.created += 1;
            }
            let session = self.build_counted()?;
            self.lock().idle.push(session);
            self.returned.notify_one();
        }
    }
}
