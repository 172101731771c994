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
//!
//! # Memory
//!
//! Each model is optimised once at load (all graph levels, including the CPU-specific NCHWc
//! layout), saved by ONNX Runtime in its own ORT format to a scratch file, and every session of
//! the model is then built from those bytes *in place*: ONNX Runtime reads the initializers
//! straight from the buffer this module keeps (`session.use_ort_model_bytes_for_initializers`),
//! so weights exist once per model however many sessions it has, and nothing of the ONNX
//! protobuf stays resident. All sessions draw activations from one arena registered on the
//! environment (see [`crate::native`]). [`Engine::stage`] does the optimising, so a caller
//! loading several models (`Models::load_with`) optimises them all before loading any and
//! the transient memory of one never sits on the others' weights. Holistic's peak RSS went
//! from 175–179 to 105 MiB (BENCHMARKS.md, "After the memory pass"). When the scratch file
//! cannot be written (a read-only file system without a writable `TMPDIR`), sessions are
//! built from the ONNX file, each with its own weights (147 MiB), and a warning says so.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

use ort::environment::Environment;
use ort::logging::LogLevel;
use ort::session::builder::{GraphOptimizationLevel, PrepackedWeights, SessionBuilder};
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
    crate::native::share_cpu_arena(&env)
        .map_err(|e| unavailable(format!("cannot register the shared CPU arena: {e}")))?;
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
    /// Threads of a large run that starts while no other run is in flight (see
    /// [`OrtEngine::with_idle_threads`]).
    idle_threads: usize,
    /// Runs in flight on any of this engine's sessions; clones share it.
    busy: Arc<AtomicUsize>,
    /// Runs that took the wide session so far; clones share it.
    wide_runs: Arc<AtomicUsize>,
    max_sessions: usize,
    /// Shared by every session this engine builds: ONNX Runtime keys packed weights by their
    /// contents, so a `[[variant]]` and its model (the parser's and holistic's pose landmark
    /// models) hold one copy.
    weights: PrepackedWeights,
    /// Where optimised models wait between [`Engine::stage`] and [`Engine::load`].
    scratch: PathBuf,
    /// Models staged and not yet loaded, by name and file.
    staged: Arc<Mutex<HashMap<(String, PathBuf), tempfile::TempDir>>>,
}

impl std::fmt::Debug for OrtEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OrtEngine")
            .field("dylib", &self.dylib)
            .field("intra_threads", &self.intra_threads)
            .field("idle_threads", &self.idle_threads)
            .field("max_sessions", &self.max_sessions)
            .field("scratch", &self.scratch)
            .finish_non_exhaustive()
    }
}

impl OrtEngine {
    /// Opens ONNX Runtime from `dylib` (a `libonnxruntime.so`, version 1.31 or newer). One
    /// intra-op thread per run, every core for a large run alone; at most one session per core
    /// and model.
    pub fn new(dylib: &Path) -> Result<Self> {
        let env = runtime(dylib)?;
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Ok(Self {
            env,
            dylib: dylib.to_path_buf(),
            intra_threads: 1,
            idle_threads: cores,
            busy: Arc::default(),
            wide_runs: Arc::default(),
            max_sessions: cores,
            weights: PrepackedWeights::new(),
            scratch: std::env::temp_dir(),
            staged: Arc::default(),
        })
    }

    /// The folder for optimised models between staging and loading (a folder per model, removed
    /// when the model is loaded, at most the size of the model files); default
    /// `std::env::temp_dir()` (`TMPDIR`). An unwritable folder costs memory, not function: see
    /// the module docs.
    #[must_use]
    pub fn with_scratch_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.scratch = dir.into();
        self
    }

    /// Threads one run may use (at least 1). Keep `intra_threads × workers ≤ cores`.
    #[must_use]
    pub fn with_intra_threads(mut self, threads: usize) -> Self {
        self.intra_threads = threads.max(1);
        self
    }

    /// Threads for a run whose input has more than [`WIDE_ABOVE_VALUES`] values and that starts
    /// while no other run of this engine is in flight (a lone request on an idle server):
    /// the cores the workers would otherwise leave idle. 1 (or `intra_threads` or less) turns
    /// it off. Each model whose input can be that large gets one more session of this width,
    /// built at load. A run that starts during a wide run shares the cores with it until it
    /// ends; nothing waits for a wide session.
    #[must_use]
    pub fn with_idle_threads(mut self, threads: usize) -> Self {
        self.idle_threads = threads.max(1);
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

    /// Threads of a large run alone (see [`OrtEngine::with_idle_threads`]).
    pub fn idle_threads(&self) -> usize {
        self.idle_threads
    }

    /// How many runs so far took every idle core.
    pub fn wide_runs(&self) -> usize {
        self.wide_runs.load(Ordering::Relaxed)
    }
}

impl Engine for OrtEngine {
    fn kind(&self) -> EngineKind {
        EngineKind::Ort
    }

    fn load(&self, path: &Path, spec: &ModelSpec) -> Result<Arc<dyn Session>> {
        Ok(Arc::new(OrtSession::load(self, path, spec)?))
    }

    fn stage(&self, path: &Path, spec: &ModelSpec) -> Result<()> {
        let staged = match optimize_to_file(self, path, spec) {
            Ok(dir) => dir,
            // `load` tries again and says why if it fails again.
            Err(Optimize::Fallback(reason)) => {
                tracing::debug!(model = %spec.name, %reason, "not staged");
                return Ok(());
            }
            Err(Optimize::Model(e)) => return Err(e),
        };
        self.staged
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(staged_key(path, spec), staged);
        Ok(())
    }
}

struct Pool {
    idle: Vec<OrtRawSession>,
    created: usize,
}

/// What a model's sessions are built from.
enum Source {
    /// The model optimised and in ORT format. Sessions read their initializers from these bytes
    /// for as long as they live: the buffer is never changed or moved (a boxed slice), and
    /// [`OrtSession`]'s `Drop` empties the pool before the buffer is freed.
    Optimized(Box<[u8]>),
    /// The ONNX file, read (and its hash checked) again for each session.
    Onnx(PathBuf),
}

/// A model on ONNX Runtime: a pool of ORT sessions built from the same bytes (see the module
/// docs for why a pool).
pub struct OrtSession {
    spec: ModelSpec,
    engine: OrtEngine,
    pool: Mutex<Pool>,
    returned: Condvar,
    /// The session for runs alone ([`OrtEngine::with_idle_threads`]), built at load: `None`
    /// while in use, or for a model whose runs are never wide.
    wide: Mutex<Option<OrtRawSession>>,
    source: Source,
}

impl Drop for OrtSession {
    fn drop(&mut self) {
        // Sessions first, then (with the fields) the bytes they read from. No lease can be out:
        // a lease borrows `self`.
        self.pool
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .idle
            .clear();
        *self.wide.get_mut().unwrap_or_else(PoisonError::into_inner) = None;
    }
}

fn engine_err(name: &str, e: impl std::fmt::Display) -> InferError {
    InferError::Engine {
        model: name.to_string(),
        message: e.to_string(),
    }
}

impl OrtSession {
    /// Loads the ONNX file at `path` (already verified), optimises it (see the module docs) and
    /// builds its first session, so a model ONNX Runtime rejects fails here rather than on the
    /// first request.
    pub fn load(engine: &OrtEngine, path: &Path, spec: &ModelSpec) -> Result<Self> {
        let staged = engine
            .staged
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&staged_key(path, spec));
        let optimized = match staged {
            Some(dir) => read_optimized(&dir),
            None => optimize_to_file(engine, path, spec).and_then(|dir| read_optimized(&dir)),
        };
        let source = match optimized {
            Ok(bytes) => Source::Optimized(bytes),
            Err(Optimize::Fallback(reason)) => {
                tracing::warn!(
                    model = %spec.name,
                    scratch = %engine.scratch.display(),
                    %reason,
                    "cannot make the optimised model; its sessions are built from ONNX and hold \
                     their own weights"
                );
                Source::Onnx(path.to_path_buf())
            }
            Err(Optimize::Model(e)) => return Err(e),
        };
        let mut session = Self {
            spec: spec.clone(),
            engine: engine.clone(),
            pool: Mutex::new(Pool {
                idle: Vec::new(),
                created: 1,
            }),
            returned: Condvar::new(),
            wide: Mutex::new(None),
            source,
        };
        let first = match session.build() {
            Ok(first) => first,
            // A library that saves ORT format it cannot load back (another build or version
            // than the one percept pins) still runs the model, at the ONNX-built memory cost.
            Err(error) if matches!(session.source, Source::Optimized(_)) => {
                tracing::warn!(
                    model = %spec.name,
                    %error,
                    "ONNX Runtime cannot load the model it optimised; building it from ONNX"
                );
                session.source = Source::Onnx(path.to_path_buf());
                session.build()?
            }
            Err(error) => return Err(error),
        };
        session.lock().idle.push(first);
        session.prepare_wide();
        Ok(session)
    }

    /// Builds the wide session now for a model whose runs can be wide (a dynamic input, or a
    /// fixed one above [`WIDE_ABOVE_VALUES`]), so the first lone request does not pay for it. A
    /// failure only costs the wide runs: the model then always runs on its pooled sessions.
    fn prepare_wide(&self) {
        let threads = self.engine.idle_threads;
        let shape = &self.spec.input.shape;
        let values = shape.iter().try_fold(1usize, |n, &d| {
            usize::try_from(d).ok().map(|d| n.saturating_mul(d))
        });
        let may_be_wide = values.is_none_or(|n| n > WIDE_ABOVE_VALUES);
        if threads <= self.engine.intra_threads || !may_be_wide {
            return;
        }
        match self.build_with(threads) {
            Ok(wide) => *self.wide.lock().unwrap_or_else(PoisonError::into_inner) = Some(wide),
            Err(error) => tracing::warn!(
                model = %self.name(),
                %error,
                "no wide session: runs alone stay on one thread"
            ),
        }
    }

    fn build(&self) -> Result<OrtRawSession> {
        self.build_with(self.engine.intra_threads)
    }

    fn build_with(&self, threads: usize) -> Result<OrtRawSession> {
        match &self.source {
            Source::Optimized(bytes) => {
                // Already optimised for this machine; the keys make ONNX Runtime read the graph
                // and the initializers from `bytes` instead of copying them (see `Source`).
                self.engine
                    .builder(self.name(), GraphOptimizationLevel::Disable, threads)?
                    .with_config_entry("session.use_ort_model_bytes_directly", "1")
                    .map_err(|e| engine_err(self.name(), e))?
                    .with_config_entry("session.use_ort_model_bytes_for_initializers", "1")
                    .map_err(|e| engine_err(self.name(), e))?
                    .commit_from_memory(bytes)
                    .map_err(|e| engine_err(self.name(), e))
            }
            // Read (and checked against the manifest's sha256) for each session rather than
            // kept: the files of holistic's models alone are ~38 MB, and extra sessions are rare.
            Source::Onnx(path) => self
                .engine
                .builder(self.name(), GraphOptimizationLevel::All, threads)?
                .commit_from_memory(&crate::graph::model_bytes(path, &self.spec, true)?)
                .map_err(|e| engine_err(self.name(), e)),
        }
    }

    fn name(&self) -> &str {
        &self.spec.name
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
            if pool.created < self.engine.max_sessions {
                pool.created += 1;
                drop(pool);
                let session = self.build_counted()?;
                tracing::debug!(model = %self.name(), "extra ONNX Runtime session");
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

impl OrtEngine {
    /// A builder with what every session of this engine shares; `name` is for errors.
    fn builder(
        &self,
        name: &str,
        level: GraphOptimizationLevel,
        threads: usize,
    ) -> Result<SessionBuilder> {
        let err = |e: ort::Error<_>| engine_err(name, e);
        OrtRawSession::builder(&self.env)
            .map_err(|e| engine_err(name, e))?
            .with_optimization_level(level)
            .map_err(err)?
            .with_intra_threads(threads)
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
            // Activations from the environment's one arena (`crate::native::share_cpu_arena`).
            .with_env_allocators()
            .map_err(err)?
            // The environment forwards every level to `tracing`; below warnings ORT is chatty.
            .with_log_level(LogLevel::Warning)
            .map_err(err)
    }
}

/// Why a model could not be optimised ahead of its sessions.
enum Optimize {
    /// The scratch file could not be written or read back, or ONNX Runtime failed while saving:
    /// build from ONNX instead (a model ONNX Runtime rejects then fails that build).
    Fallback(String),
    /// The model's file cannot be read or does not match its hash: a load error.
    Model(InferError),
}

/// How [`Engine::stage`] files a staged model for [`OrtSession::load`].
fn staged_key(path: &Path, spec: &ModelSpec) -> (String, PathBuf) {
    (spec.name.clone(), path.to_path_buf())
}

/// The optimised model in a staging folder.
const OPTIMIZED: &str = "model.ort";

/// Optimises the model at `path` for this machine into a new folder under the engine's scratch
/// folder, in ORT format: one throwaway session at the highest optimisation level writes the
/// optimised graph. ONNX Runtime reads the (edited) ONNX from a file there too, so the bytes
/// are not held in memory while it parses them.
fn optimize_to_file(
    engine: &OrtEngine,
    path: &Path,
    spec: &ModelSpec,
) -> Result<tempfile::TempDir, Optimize> {
    let fallback = |e: &dyn std::fmt::Display| Optimize::Fallback(e.to_string());
    let scratch = tempfile::Builder::new()
        .prefix("percept-ort-")
        .tempdir_in(&engine.scratch)
        .map_err(|e| fallback(&format!("{}: {e}", engine.scratch.display())))?;
    let onnx = scratch.path().join("model.onnx");
    let bytes = crate::graph::model_bytes(path, spec, true).map_err(Optimize::Model)?;
    std::fs::write(&onnx, &bytes).map_err(|e| fallback(&format!("{}: {e}", onnx.display())))?;
    drop(bytes);
    let session = engine
        .builder(
            &spec.name,
            GraphOptimizationLevel::All,
            engine.intra_threads,
        )
        .map_err(|e| fallback(&e))?
        // Its warnings are noise at every start: that the saved model is specific to this
        // machine (it is only used here) and one line per unused initializer the optimiser drops
        // (59 for the parsing model). Errors still show, and a fallback build logs as usual.
        .with_log_level(LogLevel::Error)
        .map_err(|e| fallback(&e))?
        .with_optimized_model_path(scratch.path().join(OPTIMIZED))
        .map_err(|e| fallback(&e))?
        .commit_from_file(&onnx)
        .map_err(|e| fallback(&e))?;
    drop(session);
    // The optimisation's transient copies (protobuf, graph, unoptimised weights) are free now;
    // give them back rather than let them sit under the next model's weights.
    crate::native::release_free_heap();
    std::fs::remove_file(&onnx).map_err(|e| fallback(&format!("{}: {e}", onnx.display())))?;
    Ok(scratch)
}

/// The optimised model from a folder [`optimize_to_file`] made (removed when `dir` is dropped).
fn read_optimized(dir: &tempfile::TempDir) -> Result<Box<[u8]>, Optimize> {
    let file = dir.path().join(OPTIMIZED);
    std::fs::read(&file)
        .map(Vec::into_boxed_slice)
        .map_err(|e| Optimize::Fallback(format!("cannot read back {}: {e}", file.display())))
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
        self.run_with(inputs, true)
    }

    fn run_beside(&self, inputs: &[Tensor]) -> Result<Vec<Tensor>> {
        // A run that starts first of its caller's batch sees no other in flight, but its
        // siblings follow at once: on the wide session it would share the cores with them
        // (parsing three people at 512×512, both views: 5–11 % faster; BENCHMARKS.md "Parse
        // runs beside each other").
        self.run_with(inputs, false)
    }

    fn engine(&self) -> EngineKind {
        EngineKind::Ort
    }
    fn reserve(&self, runs: usize) -> Result<()> {
        let wanted = runs.min(self.engine.max_sessions);
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

impl OrtSession {
    /// One run; `may_go_wide`: it may take the wide session if it starts alone.
    fn run_with(&self, inputs: &[Tensor], may_go_wide: bool) -> Result<Vec<Tensor>> {
        let [input] = inputs else {
            return Err(InferError::Shape(format!(
                "model `{}` takes one input, got {}",
                self.name(),
                inputs.len()
            )));
        };
        let value = TensorRef::from_array_view((input.shape(), input.data()))
            .map_err(|e| engine_err(self.name(), e))?;
        // The arena would otherwise keep the largest activations ever seen (CenterFace on a
        // 12 MP photo: 350–450 MB) for the life of the process, so a large input shrinks it after
        // its run. Small fixed-size inputs skip it: re-growing costs ~10 % of holistic's time.
        let shrink = if input.len() > SHRINK_ABOVE_VALUES {
            let mut options = RunOptions::new().map_err(|e| engine_err(self.name(), e))?;
            options
                .set("memory.enable_memory_arena_shrinkage", "cpu:0")
                .map_err(|e| engine_err(self.name(), e))?;
            Some(options)
        } else {
            None
        };
        let busy = Busy::enter(&self.engine.busy);
        let mut wide = if may_go_wide && busy.alone && input.len() > WIDE_ABOVE_VALUES {
            self.wide
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take()
        } else {
            None
        };
        let mut lease;
        let session = match wide.as_mut() {
            Some(session) => {
                self.engine.wide_runs.fetch_add(1, Ordering::Relaxed);
                session
            }
            None => {
                lease = self.checkout()?;
                lease
                    .session
                    .as_mut()
                    .ok_or_else(|| engine_err(self.name(), "no session in lease"))?
            }
        };
        let outputs = match &shrink {
            Some(options) => session.run_with_options(ort::inputs![value], options),
            None => session.run(ort::inputs![value]),
        };
        let outputs = outputs.map_err(|e| engine_err(self.name(), e));
        let result = outputs.and_then(|outputs| self.extract(&outputs));
        // Back for the next lone run. Had the run panicked, the session would be dropped with
        // this frame: later lone runs then take the pool's one-thread sessions.
        if let Some(session) = wide {
            *self.wide.lock().unwrap_or_else(PoisonError::into_inner) = Some(session);
        }
        drop(busy);
        result
    }

    /// The outputs in graph order, as tract gives them.
    fn extract(&self, outputs: &ort::session::SessionOutputs<'_>) -> Result<Vec<Tensor>> {
        outputs
            .values()
            .map(|value| {
                let (shape, data) = value
                    .try_extract_tensor::<f32>()
                    .map_err(|e| engine_err(self.name(), e))?;
                let shape = shape
                    .iter()
                    .map(|&d| usize::try_from(d))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| engine_err(self.name(), format!("output shape {shape:?}: {e}")))?;
                Tensor::new(shape, data.to_vec())
            })
            .collect()
    }
}

/// Inputs larger than this (CenterFace above ~320×320, the parser's 384×288 crop) run on every
/// core when nothing else runs (and the caller does not start others with it,
/// [`Session::run_beside`]); smaller ones gain less than the threads' wake-ups cost.
pub const WIDE_ABOVE_VALUES: usize = 300_000;

/// One run in flight on an engine, counted while it lives.
struct Busy<'a> {
    count: &'a AtomicUsize,
    /// No other run was in flight when this one started.
    alone: bool,
}

impl<'a> Busy<'a> {
    fn enter(count: &'a AtomicUsize) -> Self {
        let before = count.fetch_add(1, Ordering::AcqRel);
        Self {
            count,
            alone: before == 0,
        }
    }
}

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.count.fetch_sub(1, Ordering::AcqRel);
    }
}
