//! The one path every image takes, whichever door it came in by (a single request, a batch,
//! the upload form, the compatibility routes, an in-memory job or a Redis job): cache lookup →
//! queue → execute → stage timings → cache insert.
//!
//! It knows nothing of HTTP or of where jobs are stored, so the route modules and the Redis
//! job worker both build on it without importing each other.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::cache::{CacheKey, CacheStatus, ResultCache};
use crate::metrics::Metrics;
use crate::pool::{PoolError, Ran, WorkPool};
use crate::{ApiError, Config, ErrorCode, TaskRegistry};
use percept_tasks::{Executed, PreparedJob, Render, Stages, Task};

/// One image ready to run: its encoded bytes, its prepared job and its cache key.
pub(crate) struct Work {
    pub(crate) bytes: Bytes,
    pub(crate) job: PreparedJob,
    pub(crate) key: Option<CacheKey>,
}

/// The outcome of each image that had to be computed, by its index in the request.
type Computed = Vec<(usize, Result<Executed, ApiError>)>;

type Pending = Pin<Box<dyn Future<Output = Result<(Computed, Ran), PoolError>> + Send>>;

/// Work handed to [`Runner::start`]: the cached results, and the queued rest.
#[must_use = "a started run must be finished to get its results"]
pub(crate) struct Started {
    task: String,
    /// One slot per image: its result once known (cache hits at once).
    slots: Vec<Option<Result<Executed, ApiError>>>,
    pending: Option<Pending>,
    /// `hit` when every image came from the cache; else whether the cache is in use.
    pub(crate) cache: CacheStatus,
}

impl Started {
    /// Whether some image still waits for a worker (false: everything came from the cache).
    pub(crate) fn is_pending(&self) -> bool {
        self.pending.is_some()
    }
}

/// The task registry, the work pool, the result cache and the metrics, shared by everything
/// that runs images.
pub(crate) struct Runner {
    pub(crate) config: Arc<Config>,
    /// Swapped whole by a model reload; a run holds the registry it started with.
    tasks: RwLock<Arc<TaskRegistry>>,
    pub(crate) pool: WorkPool,
    pub(crate) metrics: Metrics,
    pub(crate) cache: ResultCache,
    shutting_down: AtomicBool,
}

impl std::fmt::Debug for Runner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runner")
            .field("tasks", &self.tasks)
            .field("pool", &self.pool)
            .finish_non_exhaustive()
    }
}

impl Runner {
    pub(crate) fn new(config: Arc<Config>, tasks: TaskRegistry, engine: &str) -> Self {
        Self {
            pool: WorkPool::new(config.workers, config.queue),
            cache: ResultCache::new(config.cache_bytes),
            metrics: Metrics::new(engine),
            tasks: RwLock::new(Arc::new(tasks)),
            shutting_down: AtomicBool::new(false),
            config,
        }
    }

    /// The tasks served now.
    pub(crate) fn tasks(&self) -> Arc<TaskRegistry> {
        self.tasks
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Serves `tasks` from now on and forgets every cached result (the old models made them).
    pub(crate) fn swap_tasks(&self, tasks: TaskRegistry) {
        *self.tasks.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(tasks);
        self.cache.clear();
    }

    /// The task called `name`, or `not_found` listing the ones there are.
    pub(crate) fn task(&self, name: &str) -> Result<Arc<dyn Task>, ApiError> {
        let tasks = self.tasks();
        tasks.get(name).ok_or_else(|| {
            ApiError::not_found(format!(
                "no task `{name}`; tasks: {}",
                tasks.names().join(", ")
            ))
        })
    }

    pub(crate) fn begin_shutdown(&self) {
        self.shutting_down.store(true, Ordering::SeqCst);
    }

    pub(crate) fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::SeqCst)
    }

    /// Cache lookup, then queue: every image found in the cache is answered at once (the
    /// lookup counted); the rest take ONE queue slot and run one after the other within
    /// `deadline`, each cached once computed. `on_start` runs on the worker before the first
    /// image (a job marks itself running there). Fails only when the pool refuses the work.
    pub(crate) fn start(
        &self,
        task: &str,
        work: Vec<Work>,
        render: Render,
        deadline: Instant,
        on_start: impl FnOnce() + Send + 'static,
    ) -> Result<Started, PoolError> {
        let slots: Vec<Option<Result<Executed, ApiError>>> = work
            .iter()
            .map(|w| self.cached(w.key.as_ref()).map(Ok))
            .collect();
        let cache = match work.first() {
            Some(_) if slots.iter().all(Option::is_some) => CacheStatus::Hit,
            Some(first) if first.key.is_some() && self.cache.enabled() => CacheStatus::Miss,
            _ => CacheStatus::Off,
        };
        let misses: Vec<(usize, Work)> = work
            .into_iter()
            .enumerate()
            .filter(|(index, _)| slots.get(*index).is_some_and(Option::is_none))
            .collect();
        let pending: Option<Pending> = if misses.is_empty() {
            None
        } else {
            let limits = self.config.decode_limits();
            let cache = self.cache.clone();
            // One image: a panic fails the request as the pool reports it. Several: each runs
            // under its own guard, so one bad image fails its slot and not the rest.
            let guard = misses.len() > 1;
            let pending = self.pool.submit(deadline, move || {
                on_start();
                misses
                    .into_iter()
                    .map(|(index, w)| {
                        let run = || cache.execute(w.key, w.job, &w.bytes, &limits, render);
                        let outcome = if guard {
                            std::panic::catch_unwind(std::panic::AssertUnwindSafe(run))
                                .unwrap_or_else(|_| {
                                    Err(ApiError::internal("a batch item panicked"))
                                })
                        } else {
                            run()
                        };
                        (index, outcome)
                    })
                    .collect::<Computed>()
            })?;
            Some(Box::pin(pending))
        };
        Ok(Started {
            task: task.to_string(),
            slots,
            pending,
            cache,
        })
    }

    /// Waits for what [`Runner::start`] queued (at most until `timeout`, when given) and
    /// records each computed image's stage timings; returns every image's result in order,
    /// with the queue slot's wait and compute times (zero when all came from the cache).
    pub(crate) async fn finish(
        &self,
        started: Started,
        timeout: Option<Instant>,
    ) -> Result<(Vec<Result<Executed, ApiError>>, Ran), ApiError> {
        let Started {
            task,
            mut slots,
            pending,
            ..
        } = started;
        let mut ran = Ran {
            queued: Duration::ZERO,
            compute: Duration::ZERO,
        };
        if let Some(pending) = pending {
            let waited = match timeout {
                Some(deadline) => tokio::time::timeout_at(deadline.into(), pending)
                    .await
                    .map_err(|_| self.timeout_error())?,
                None => pending.await,
            };
            let (computed, pool_ran) = waited.map_err(|e| self.pool_error(e))?;
            ran = pool_ran;
            for (index, outcome) in computed {
                if let Ok(executed) = &outcome {
                    self.observe_stages(&task, ran, executed);
                }
                if let Some(slot) = slots.get_mut(index) {
                    *slot = Some(outcome);
                }
            }
        }
        let results = slots
            .into_iter()
            .map(|slot| slot.unwrap_or_else(|| Err(ApiError::internal("a result was never run"))))
            .collect();
        Ok((results, ran))
    }

    /// One image from start to finish within `deadline`.
    pub(crate) async fn run_one(
        &self,
        task: &str,
        work: Work,
        render: Render,
        deadline: Instant,
    ) -> Result<(Executed, Ran, CacheStatus), ApiError> {
        let started = self
            .start(task, vec![work], render, deadline, || {})
            .map_err(|e| self.pool_error(e))?;
        let cache = started.cache;
        let (executed, ran) = self.finish_one(started, Some(deadline)).await?;
        Ok((executed, ran, cache))
    }

    /// [`Runner::finish`] for a run started with one image: that image's result.
    pub(crate) async fn finish_one(
        &self,
        started: Started,
        timeout: Option<Instant>,
    ) -> Result<(Executed, Ran), ApiError> {
        let (results, ran) = self.finish(started, timeout).await?;
        let executed = results
            .into_iter()
            .next()
            .unwrap_or_else(|| Err(ApiError::internal("a result was never run")))?;
        Ok((executed, ran))
    }

    /// The cached result for `key`, counting the lookup; `None` when the cache is off or misses.
    fn cached(&self, key: Option<&CacheKey>) -> Option<Executed> {
        let key = key?;
        let found = self.cache.get(key);
        self.metrics.cache_lookup(found.is_some());
        // Nothing ran for this request: its timing headers show no stages.
        found.map(|executed| Executed {
            stages: Stages::default(),
            ..(*executed).clone()
        })
    }

    fn observe_stages(&self, task: &str, ran: Ran, executed: &Executed) {
        self.metrics.observe_stage(task, "queue", ran.queued);
        for (stage, duration) in executed.stages.iter() {
            self.metrics.observe_stage(task, stage, duration);
        }
    }

    pub(crate) fn timeout_error(&self) -> ApiError {
        ApiError::new(
            ErrorCode::Timeout,
            format!(
                "the request did not finish within {} ms",
                self.config.deadline_ms
            ),
        )
    }

    pub(crate) fn pool_error(&self, error: PoolError) -> ApiError {
        match error {
            PoolError::QueueFull { capacity } => ApiError::queue_full(
                format!(
                    "all {} workers are busy and {capacity} requests are waiting; retry shortly",
                    self.pool.workers()
                ),
                1,
            ),
            PoolError::Expired => ApiError::new(
                ErrorCode::Timeout,
                "the deadline passed while the request waited in the queue",
            ),
            PoolError::ShuttingDown => {
                ApiError::new(ErrorCode::ShuttingDown, "the server is shutting down")
            }
            PoolError::Panicked(message) => {
                ApiError::internal(format!("a job panicked: {message}"))
            }
        }
    }
}
