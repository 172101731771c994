use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Instant;

use serde::Serialize;
use utoipa::ToSchema;

use crate::extract::BodyLimits;
use crate::image_store::ImageStore;
use crate::jobs::{JobBackend, JobStore};
use crate::redis_jobs::RedisJobs;
use crate::runner::Runner;
use crate::{Config, TaskRegistry};

/// A loaded model as listed by `GET /v1/models`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ModelInfo {
    /// Model name from the manifest.
    pub name: String,
    /// Model version or source package version.
    pub version: String,
    /// sha256 of the file, verified at load.
    pub sha256: String,
    /// Input tensor shape; -1 marks a dimension chosen per image.
    pub input: Vec<i64>,
    /// Output labels, for classifiers and segmenters.
    pub labels: Vec<String>,
}

impl ModelInfo {
    /// What `/v1/models` lists for each of `models`.
    pub fn list(models: &percept_vision::Models) -> Vec<Self> {
        models
            .iter()
            .map(|model| {
                let spec = model.spec();
                Self {
                    name: spec.name.clone(),
                    version: spec
                        .source
                        .as_ref()
                        .map(|s| format!("{} {} {}", s.registry, s.package, s.version))
                        .unwrap_or_default(),
                    sha256: spec.sha256.clone(),
                    input: spec.input.shape.clone(),
                    labels: Vec::new(),
                }
            })
            .collect()
    }
}

/// Re-reads the manifest and loads, verifies and warms the models into a fresh registry;
/// the error says why the new models were refused.
pub type Reloader = dyn Fn() -> Result<(TaskRegistry, Vec<ModelInfo>), String> + Send + Sync;

/// What a successful reload swapped in.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReloadReport {
    /// Models now loaded.
    pub models: Vec<String>,
    /// Tasks now served.
    pub tasks: Vec<String>,
    /// Time to load, verify and warm them, in milliseconds.
    pub ms: u64,
}

/// Everything the handlers share. Built once at start; cloned as an `Arc`.
pub struct AppState {
    /// The resolved configuration.
    pub config: Arc<Config>,
    /// Tasks, work pool, result cache and metrics: what every way of running an image shares.
    pub(crate) runner: Arc<Runner>,
    /// Loaded models, swapped with the tasks.
    models: RwLock<Arc<Vec<ModelInfo>>>,
    /// Builds a fresh registry from the models on disk (set by the binary).
    reloader: RwLock<Option<Arc<Reloader>>>,
    /// One reload at a time.
    reloading: Mutex<()>,
    /// Successful reloads since start.
    reload_count: AtomicU64,
    /// Inference engine in use (`none` while no model is loaded).
    pub engine: String,
    pub(crate) images: ImageStore,
    pub(crate) jobs: JobBackend,
    /// Live streams at once (`/v1/stream/{task}`): one per worker, as each keeps a core busy.
    pub(crate) streams: Arc<tokio::sync::Semaphore>,
    ready: AtomicBool,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("config", &self.config)
            .field("runner", &self.runner)
            .finish_non_exhaustive()
    }
}

impl AppState {
    /// Starts the worker pool and registers metrics. The state is ready at once when it has
    /// no models to warm; otherwise call [`AppState::set_ready`] after warming them.
    pub fn new(
        config: Config,
        tasks: TaskRegistry,
        models: Vec<ModelInfo>,
        engine: &str,
    ) -> Arc<Self> {
        // Finished job results share the cache's byte budget; with the cache off they still
        // need a bound, so they keep the default one.
        let job_bytes = match config.cache_bytes {
            0 => Config::default().cache_bytes,
            n => n,
        };
        let ttl = std::time::Duration::from_secs(config.result_ttl_secs);
        // Compatibility-route images (coloured masks) share the result TTL; a quarter of the
        // results' budget bounds them.
        let images = ImageStore::new(ttl, usize::try_from(job_bytes / 4).unwrap_or(usize::MAX));
        let memory = || {
            JobBackend::Memory(Arc::new(JobStore::new(
                ttl,
                usize::try_from(job_bytes).unwrap_or(usize::MAX),
            )))
        };
        let jobs = match &config.redis_url {
            None => memory(),
            Some(url) => match RedisJobs::new(
                url.expose(),
                config.resolved_replica_id(),
                ttl,
                config.workers,
                config.redis_queue_jobs(),
                config.redis_video_jobs(),
                config.max_video_bytes,
            ) {
                Ok(redis) => JobBackend::Redis(Arc::new(redis)),
                Err(error) => {
                    // `Config::validate` parses the URL first, so this is not expected.
                    tracing::error!(%error, "invalid redis_url; keeping jobs in memory");
                    memory()
                }
            },
        };
        let config = Arc::new(config);
        Arc::new(Self {
            streams: Arc::new(tokio::sync::Semaphore::new(config.workers)),
            images,
            ready: AtomicBool::new(models.is_empty()),
            runner: Arc::new(Runner::new(Arc::clone(&config), tasks, engine)),
            config,
            models: RwLock::new(Arc::new(models)),
            reloader: RwLock::new(None),
            reloading: Mutex::new(()),
            reload_count: AtomicU64::new(0),
            engine: engine.to_string(),
            jobs,
        })
    }

    /// Starts background work that needs the async runtime: with Redis, the job dispatcher
    /// and heartbeat. Called by [`crate::serve`].
    pub fn start_background(self: &Arc<Self>) {
        match &self.jobs {
            JobBackend::Redis(redis) => RedisJobs::start(&self.runner, redis),
            JobBackend::Memory(jobs) => {
                // Expired results go at the next access; a finished video's file should not
                // wait for one.
                let jobs = Arc::clone(jobs);
                let runner = Arc::clone(&self.runner);
                tokio::spawn(async move {
                    while !runner.is_shutting_down() {
                        tokio::time::sleep(std::time::Duration::from_secs(5)).await;
                        jobs.sweep();
                    }
                });
            }
        }
    }

    pub(crate) fn redis_jobs(&self) -> Option<Arc<RedisJobs>> {
        match &self.jobs {
            JobBackend::Redis(redis) => Some(Arc::clone(redis)),
            JobBackend::Memory(_) => None,
        }
    }

    /// The tasks served now. Hold the `Arc` for a request's whole life: a reload swaps in a new
    /// registry and the request finishes on the models it started with.
    pub fn tasks(&self) -> Arc<TaskRegistry> {
        self.runner.tasks()
    }

    /// The models loaded now.
    pub fn models(&self) -> Arc<Vec<ModelInfo>> {
        self.models
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Successful model reloads since start (`/readyz` shows it).
    pub fn reloads(&self) -> u64 {
        self.reload_count.load(Ordering::SeqCst)
    }

    /// Installs what `POST /v1/admin/reload` and SIGHUP run.
    pub fn set_reloader(&self, reloader: Arc<Reloader>) {
        *self
            .reloader
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Some(reloader);
    }

    /// Loads the models afresh and swaps them in atomically; on any failure the old models
    /// stay and the error says why (also logged). Runs the blocking load off the async
    /// threads; `POST /v1/admin/reload` and SIGHUP both come here.
    pub async fn reload(self: Arc<Self>) -> Result<ReloadReport, String> {
        let outcome = tokio::task::spawn_blocking(move || self.reload_blocking())
            .await
            .unwrap_or_else(|e| Err(format!("the reload panicked: {e}")));
        if let Err(why) = &outcome {
            tracing::warn!(%why, "model reload refused; the old models keep serving");
        }
        outcome
    }

    fn reload_blocking(&self) -> Result<ReloadReport, String> {
        let _one = self
            .reloading
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let reloader = self
            .reloader
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .ok_or_else(|| "this server was started without models to reload".to_string())?;
        let started = Instant::now();
        let (tasks, models) = reloader()?;
        let report = ReloadReport {
            models: models.iter().map(|m| m.name.clone()).collect(),
            tasks: tasks.names(),
            ms: started.elapsed().as_millis() as u64,
        };
        *self.models.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(models);
        // Results computed by the old models must not be served for the new ones: the swap
        // empties the cache.
        self.runner.swap_tasks(tasks);
        self.reload_count.fetch_add(1, Ordering::SeqCst);
        tracing::info!(models = ?report.models, ms = report.ms, "models reloaded");
        Ok(report)
    }

    /// Marks the models loaded and warmed: `/readyz` turns 200.
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::SeqCst);
    }

    /// Ready to take traffic: models warmed and not draining.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::SeqCst) && !self.is_shutting_down()
    }

    /// Refuses new work from now on; work already accepted still completes.
    pub fn begin_shutdown(&self) {
        self.runner.begin_shutdown();
    }

    /// Whether [`AppState::begin_shutdown`] was called.
    pub fn is_shutting_down(&self) -> bool {
        self.runner.is_shutting_down()
    }

    /// Waits for queued and running work to finish and stops the workers.
    pub fn drain(&self) {
        self.runner.pool.shutdown();
    }

    pub(crate) fn body_limits(&self) -> BodyLimits {
        BodyLimits {
            max_body_bytes: self.config.max_body_bytes,
            max_parts: self.config.max_parts,
        }
    }
}
