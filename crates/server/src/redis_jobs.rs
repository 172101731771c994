//! Async jobs kept in Redis (DESIGN §6), so every replica can take, run and answer any job.
//!
//! Keys (all under `percept:`):
//! - `job:{id}` — a hash: `task`, `options` (canonical JSON), `format`, `status`,
//!   `created_unix_ms`, `started_unix_ms`, `finished_unix_ms`, `replica`, and on failure
//!   `error_code` / `error_message`;
//! - `job:{id}:image` — the uploaded bytes, deleted once the job has finished;
//! - `job:{id}:result` — the result JSON;
//! - `queue` — ids waiting, pushed on the left, taken from the right (FIFO);
//! - `processing:{replica}` — ids a replica has taken and not yet finished;
//! - `replica:{replica}` — that replica's heartbeat, expiring after [`HEARTBEAT_TTL`];
//! - `replicas` — the set of replicas that ever took work.
//!
//! A replica takes a job with `BLMOVE queue → processing:{me}` (atomic: a job is in exactly one
//! list at any time), only while it has a free worker. When it finishes it writes the result
//! and removes the id from its processing list in one `MULTI`. At start it moves whatever its
//! own processing list still holds back to the queue; and every replica moves the processing
//! list of a replica whose heartbeat expired back to the queue. So a queued or running job is
//! never lost while Redis keeps its data, and runs *at least once* (twice if its replica died
//! after computing but before writing, or stalled longer than the heartbeat TTL; results are
//! deterministic, so a second run writes the same result).

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use percept_core::OutputFormat;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use serde_json::{Value, json};
use tokio::sync::Semaphore;

use crate::pool::PoolError;
use crate::runner::{Runner, Work};
use crate::{ApiError, ErrorCode, Options};
use percept_tasks::Render;

/// How long a replica's heartbeat lives; another replica reclaims its work after that.
pub(crate) const HEARTBEAT_TTL: Duration = Duration::from_secs(5);
const HEARTBEAT_EVERY: Duration = Duration::from_secs(1);
/// A job that no replica started within this time is dropped with its image.
const PENDING_TTL: Duration = Duration::from_secs(3600);
const PREFIX: &str = "percept";

fn job_key(id: &str) -> String {
    format!("{PREFIX}:job:{id}")
}
fn image_key(id: &str) -> String {
    format!("{PREFIX}:job:{id}:image")
}
fn result_key(id: &str) -> String {
    format!("{PREFIX}:job:{id}:result")
}
fn result_image_key(id: &str) -> String {
    format!("{PREFIX}:result-image:{id}")
}
fn queue_key() -> String {
    format!("{PREFIX}:queue")
}
fn processing_key(replica: &str) -> String {
    format!("{PREFIX}:processing:{replica}")
}
fn heartbeat_key(replica: &str) -> String {
    format!("{PREFIX}:replica:{replica}")
}
fn replicas_key() -> String {
    format!("{PREFIX}:replicas")
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn unavailable(error: &redis::RedisError) -> ApiError {
    tracing::warn!(%error, "redis request failed");
    ApiError::new(
        ErrorCode::Unavailable,
        "the job store (Redis) cannot be reached; retry shortly",
    )
}

fn format_text(format: OutputFormat) -> String {
    match format {
        OutputFormat::Png => "png".into(),
        OutputFormat::Jpeg { quality } => format!("jpeg:{quality}"),
    }
}

fn parse_format(text: &str) -> OutputFormat {
    match text.strip_prefix("jpeg:").and_then(|q| q.parse().ok()) {
        Some(quality) => OutputFormat::Jpeg { quality },
        None => OutputFormat::Png,
    }
}

/// The Redis job backend of one replica.
pub(crate) struct RedisJobs {
    client: redis::Client,
    conn: ConnectionManager,
    replica: String,
    result_ttl: Duration,
    max_queued: usize,
    /// One permit per worker: the dispatcher takes a job from Redis only with a permit, so a
    /// replica never holds more jobs than it can run.
    slots: Arc<Semaphore>,
    workers: usize,
}

impl std::fmt::Debug for RedisJobs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisJobs")
            .field("replica", &self.replica)
            .finish_non_exhaustive()
    }
}

fn manager_config() -> ConnectionManagerConfig {
    // Fail fast while Redis is down (the request gets 503 `unavailable`) instead of
    // retrying for seconds; the next request tries again.
    ConnectionManagerConfig::new()
        .set_number_of_retries(1)
        .set_connection_timeout(Some(Duration::from_secs(2)))
        .set_response_timeout(Some(Duration::from_secs(10)))
}

impl RedisJobs {
    /// A backend on `url` (not yet connected: the first command connects).
    pub(crate) fn new(
        url: &str,
        replica: String,
        result_ttl: Duration,
        workers: usize,
        max_queued: usize,
    ) -> redis::RedisResult<Self> {
        let client = redis::Client::open(url)?;
        let conn = ConnectionManager::new_lazy_with_config(client.clone(), manager_config())?;
        let workers = workers.max(1);
        Ok(Self {
            client,
            conn,
            replica,
            result_ttl,
            // Redis holds the images of waiting jobs: bounded by count and by bytes
            // (`Config::redis_queue_jobs`).
            max_queued: max_queued.max(1),
            slots: Arc::new(Semaphore::new(workers)),
            workers,
        })
    }

    fn ttl_secs(&self) -> i64 {
        i64::try_from(self.result_ttl.as_secs().max(1)).unwrap_or(i64::MAX)
    }

    /// Stores a result image served by URL (`/api/results/{id}.png`) for the result TTL, so
    /// any replica can serve it.
    pub(crate) async fn put_result_image(&self, id: &str, bytes: &[u8]) -> Result<(), ApiError> {
        let mut conn = self.conn.clone();
        redis::cmd("SET")
            .arg(result_image_key(id))
            .arg(bytes)
            .arg("EX")
            .arg(self.ttl_secs())
            .exec_async(&mut conn)
            .await
            .map_err(|e| unavailable(&e))
    }

    /// A result image stored by any replica; `None` if unknown or expired.
    pub(crate) async fn result_image(&self, id: &str) -> Result<Option<Vec<u8>>, ApiError> {
        let mut conn = self.conn.clone();
        redis::cmd("GET")
            .arg(result_image_key(id))
            .query_async(&mut conn)
            .await
            .map_err(|e| unavailable(&e))
    }

    /// Stores a job and queues it; fails with `queue_full` when the shared queue is full and
    /// `unavailable` when Redis cannot be reached.
    pub(crate) async fn submit(
        &self,
        task: &str,
        options: &Options,
        format: OutputFormat,
        image: &[u8],
    ) -> Result<String, ApiError> {
        let mut conn = self.conn.clone();
        let queued: usize = redis::cmd("LLEN")
            .arg(queue_key())
            .query_async(&mut conn)
            .await
            .map_err(|e| unavailable(&e))?;
        if queued >= self.max_queued {
            return Err(ApiError {
                code: ErrorCode::QueueFull,
                message: format!("{queued} jobs are waiting; retry shortly"),
                retry_after: Some(1),
            });
        }
        let id = uuid::Uuid::new_v4().simple().to_string();
        let pending = i64::try_from(PENDING_TTL.as_secs()).unwrap_or(i64::MAX) + self.ttl_secs();
        redis::pipe()
            .atomic()
            .hset_multiple(
                job_key(&id),
                &[
                    ("task", task.to_string()),
                    ("options", options.canonical()),
                    ("format", format_text(format)),
                    ("status", "queued".to_string()),
                    ("created_unix_ms", now_ms().to_string()),
                ],
            )
            .expire(job_key(&id), pending)
            .set_ex(image_key(&id), image, pending.unsigned_abs())
            .lpush(queue_key(), &id)
            .exec_async(&mut conn)
            .await
            .map_err(|e| unavailable(&e))?;
        tracing::debug!(%id, task, "job queued in redis");
        Ok(id)
    }

    /// The job's status JSON and, once finished, its outcome; `None` if unknown or expired.
    pub(crate) async fn get(
        &self,
        id: &str,
        want_result: bool,
    ) -> Result<Option<(Value, Option<Result<Vec<u8>, ApiError>>)>, ApiError> {
        let mut conn = self.conn.clone();
        let fields: std::collections::HashMap<String, String> = redis::cmd("HGETALL")
            .arg(job_key(id))
            .query_async(&mut conn)
            .await
            .map_err(|e| unavailable(&e))?;
        let Some(status) = fields.get("status") else {
            return Ok(None);
        };
        let ms = |name: &str| fields.get(name).and_then(|v| v.parse::<u64>().ok());
        let (created, started, finished) = (
            ms("created_unix_ms"),
            ms("started_unix_ms"),
            ms("finished_unix_ms"),
        );
        let mut body = json!({
            "id": id,
            "task": fields.get("task"),
            "status": status,
            "created_unix_ms": created,
            "queue_ms": created.zip(started).map(|(c, s)| s.saturating_sub(c)),
            "compute_ms": started.zip(finished).map(|(s, f)| f.saturating_sub(s)),
            "replica": fields.get("replica"),
        });
        let error = fields.get("error_code").map(|code| ApiError {
            code: ErrorCode::parse(code).unwrap_or(ErrorCode::Internal),
            message: fields.get("error_message").cloned().unwrap_or_default(),
            retry_after: None,
        });
        if let Some(error) = &error {
            body["error"] = serde_json::to_value(error.body()).unwrap_or(Value::Null);
        }
        let outcome = match (status.as_str(), error) {
            ("failed", Some(error)) => Some(Err(error)),
            ("done", _) if want_result => {
                let result: Option<Vec<u8>> = redis::cmd("GET")
                    .arg(result_key(id))
                    .query_async(&mut conn)
                    .await
                    .map_err(|e| unavailable(&e))?;
                match result {
                    Some(bytes) => Some(Ok(bytes)),
                    // Expired between the two reads.
                    None => return Ok(None),
                }
            }
            _ => None,
        };
        Ok(Some((body, outcome)))
    }

    /// Starts this replica's heartbeat and dispatcher on the current tokio runtime. They stop
    /// when the state begins shutting down.
    pub(crate) fn start(runner: &Arc<Runner>, jobs: &Arc<RedisJobs>) {
        tracing::info!(replica = %jobs.replica, "async jobs are kept in redis");
        tokio::spawn(heartbeat_loop(Arc::clone(runner), Arc::clone(jobs)));
        tokio::spawn(dispatch_loop(Arc::clone(runner), Arc::clone(jobs)));
    }

    /// Waits (up to `limit`) until the jobs this replica took are finished and written.
    pub(crate) async fn drain(&self, limit: Duration) {
        let workers = u32::try_from(self.workers).unwrap_or(u32::MAX);
        if tokio::time::timeout(limit, self.slots.acquire_many(workers))
            .await
            .is_err()
        {
            tracing::warn!("redis jobs still running at shutdown; another replica will redo them");
        }
    }

    /// Moves every id of `from` back to the queue, one atomic `LMOVE` at a time, so a job is
    /// never in both lists or in neither. The newest goes back first, so the oldest ends up
    /// at the head of the queue and is taken next.
    async fn requeue_all(&self, conn: &mut ConnectionManager, from: &str) -> usize {
        let mut moved = 0;
        loop {
            let id: redis::RedisResult<Option<String>> = redis::cmd("LMOVE")
                .arg(from)
                .arg(queue_key())
                .arg("LEFT")
                .arg("RIGHT")
                .query_async(conn)
                .await;
            match id {
                Ok(Some(_)) => moved += 1,
                Ok(None) => return moved,
                Err(error) => {
                    tracing::warn!(%error, from, "re-queueing failed");
                    return moved;
                }
            }
        }
    }

    /// Removes `id` from this replica's processing list and puts it back at the head of
    /// the queue (it could not run here now).
    async fn give_back(&self, conn: &mut ConnectionManager, id: &str) {
        let result = redis::pipe()
            .atomic()
            .lrem(processing_key(&self.replica), 1, id)
            .rpush(queue_key(), id)
            .exec_async(conn)
            .await;
        if let Err(error) = result {
            tracing::warn!(%error, id, "could not give a job back to the queue");
        }
    }

    async fn finish(
        &self,
        conn: &mut ConnectionManager,
        id: &str,
        outcome: Result<String, ApiError>,
    ) -> redis::RedisResult<()> {
        let ttl = self.ttl_secs();
        let mut pipe = redis::pipe();
        pipe.atomic();
        let finished = now_ms().to_string();
        match outcome {
            Ok(result) => {
                pipe.set_ex(result_key(id), result, ttl.unsigned_abs())
                    .hset_multiple(
                        job_key(id),
                        &[("status", "done"), ("finished_unix_ms", finished.as_str())],
                    );
            }
            Err(error) => {
                pipe.hset_multiple(
                    job_key(id),
                    &[
                        ("status", "failed"),
                        ("finished_unix_ms", finished.as_str()),
                        ("error_code", error.code.as_str()),
                        ("error_message", error.message.as_str()),
                    ],
                );
            }
        }
        pipe.expire(job_key(id), ttl)
            .del(image_key(id))
            .lrem(processing_key(&self.replica), 1, id)
            .exec_async(conn)
            .await
    }
}

async fn heartbeat_loop(runner: Arc<Runner>, jobs: Arc<RedisJobs>) {
    let mut conn = jobs.conn.clone();
    let mut recovered_own = false;
    let ttl_ms = u64::try_from(HEARTBEAT_TTL.as_millis()).unwrap_or(u64::MAX);
    while !runner.is_shutting_down() {
        let beat: redis::RedisResult<()> = redis::pipe()
            .set_ex(
                heartbeat_key(&jobs.replica),
                now_ms(),
                HEARTBEAT_TTL.as_secs(),
            )
            .sadd(replicas_key(), &jobs.replica)
            .exec_async(&mut conn)
            .await;
        match beat {
            Err(error) => tracing::warn!(%error, "redis heartbeat failed"),
            Ok(()) => {
                if !recovered_own {
                    // Whatever this replica held when it last stopped goes back to the queue.
                    let own = processing_key(&jobs.replica);
                    let moved = jobs.requeue_all(&mut conn, &own).await;
                    if moved > 0 {
                        tracing::info!(moved, "re-queued jobs this replica held before a restart");
                    }
                    recovered_own = true;
                }
                reclaim_dead(&jobs, &mut conn, ttl_ms).await;
            }
        }
        tokio::time::sleep(HEARTBEAT_EVERY).await;
    }
}

/// Moves the work of every replica whose heartbeat expired back to the queue.
async fn reclaim_dead(jobs: &RedisJobs, conn: &mut ConnectionManager, _ttl_ms: u64) {
    let replicas: Vec<String> = match redis::cmd("SMEMBERS")
        .arg(replicas_key())
        .query_async(conn)
        .await
    {
        Ok(replicas) => replicas,
        Err(error) => {
            tracing::warn!(%error, "listing replicas failed");
            return;
        }
    };
    for replica in replicas.into_iter().filter(|r| *r != jobs.replica) {
        let alive: redis::RedisResult<bool> = redis::cmd("EXISTS")
            .arg(heartbeat_key(&replica))
            .query_async(conn)
            .await;
        if alive.unwrap_or(true) {
            continue;
        }
        let moved = jobs.requeue_all(conn, &processing_key(&replica)).await;
        if moved > 0 {
            tracing::warn!(%replica, moved, "re-queued the jobs of a replica that stopped beating");
        }
        let _: redis::RedisResult<()> = redis::cmd("SREM")
            .arg(replicas_key())
            .arg(&replica)
            .query_async(conn)
            .await;
    }
}

async fn dispatch_loop(runner: Arc<Runner>, jobs: Arc<RedisJobs>) {
    // BLMOVE blocks its connection, so the dispatcher has one of its own.
    let mut blocking =
        match ConnectionManager::new_lazy_with_config(jobs.client.clone(), manager_config()) {
            Ok(conn) => conn,
            Err(error) => {
                tracing::error!(%error, "cannot create the redis dispatcher connection");
                return;
            }
        };
    while !runner.is_shutting_down() {
        let Ok(permit) = Arc::clone(&jobs.slots).acquire_owned().await else {
            return;
        };
        // Sync requests share the pool: take a job only while a worker could start it soon.
        if runner.pool.queued() >= runner.pool.capacity().max(1) {
            drop(permit);
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        }
        let taken: redis::RedisResult<Option<String>> = redis::cmd("BLMOVE")
            .arg(queue_key())
            .arg(processing_key(&jobs.replica))
            .arg("RIGHT")
            .arg("LEFT")
            .arg(1.0)
            .query_async(&mut blocking)
            .await;
        match taken {
            Ok(Some(id)) => {
                tokio::spawn(run_job(Arc::clone(&runner), Arc::clone(&jobs), id, permit));
            }
            Ok(None) => {}
            Err(error) => {
                tracing::warn!(%error, "taking a job from redis failed; retrying");
                drop(permit);
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

async fn run_job(
    runner: Arc<Runner>,
    jobs: Arc<RedisJobs>,
    id: String,
    _permit: tokio::sync::OwnedSemaphorePermit,
) {
    let mut conn = jobs.conn.clone();
    let outcome = match load_and_run(&runner, &jobs, &mut conn, &id).await {
        Ok(Some(outcome)) => outcome,
        Ok(None) => return,
        Err(Requeue) => {
            jobs.give_back(&mut conn, &id).await;
            return;
        }
    };
    let outcome =
        outcome.and_then(|value| serde_json::to_string(&value).map_err(ApiError::internal));
    if let Err(error) = jobs.finish(&mut conn, &id, outcome).await {
        // Left in the processing list: it goes back to the queue when this replica restarts
        // or stops beating.
        tracing::error!(%error, %id, "could not store a job result in redis");
    }
}

/// A job's `task`, `options`, `format` and image, each absent once expired.
type StoredJob = (
    Option<String>,
    Option<String>,
    Option<String>,
    Option<Vec<u8>>,
);

/// The job cannot run on this replica right now; put it back.
struct Requeue;

/// Runs job `id`: `Ok(None)` if it vanished (expired), `Ok(Some(outcome))` once run.
async fn load_and_run(
    runner: &Arc<Runner>,
    jobs: &RedisJobs,
    conn: &mut ConnectionManager,
    id: &str,
) -> Result<Option<Result<Value, ApiError>>, Requeue> {
    let fields: redis::RedisResult<StoredJob> = redis::pipe()
        .hget(job_key(id), "task")
        .hget(job_key(id), "options")
        .hget(job_key(id), "format")
        .get(image_key(id))
        .query_async(conn)
        .await;
    let (task_name, options, format, image) = match fields {
        Ok((Some(task), Some(options), Some(format), Some(image))) => {
            (task, options, format, image)
        }
        Ok(_) => {
            tracing::warn!(%id, "a queued job expired before it ran; dropping it");
            let _: redis::RedisResult<()> = redis::cmd("LREM")
                .arg(processing_key(&jobs.replica))
                .arg(1)
                .arg(id)
                .query_async(conn)
                .await;
            return Ok(None);
        }
        Err(error) => {
            tracing::warn!(%error, %id, "reading a job from redis failed");
            return Err(Requeue);
        }
    };
    let Some(task) = runner.tasks().get(&task_name) else {
        return Ok(Some(Err(ApiError::not_found(format!(
            "this replica has no task `{task_name}`"
        )))));
    };
    let options = match Options::from_canonical(&options) {
        Ok(options) => options,
        Err(e) => return Ok(Some(Err(ApiError::internal(e)))),
    };
    let render = Render {
        format: parse_format(&format),
        raw_image: false,
    };
    let key = runner
        .cache
        .key(task.name(), &options, render.format, &image);
    let job = match task.prepare(options) {
        Ok(job) => job,
        Err(error) => return Ok(Some(Err(error.into()))),
    };
    let work = Work {
        bytes: image.into(),
        job,
        key,
    };
    // The deadline runs from when this replica took the job: time spent in the shared queue
    // is bounded by the job's TTL instead.
    let deadline = Instant::now() + runner.config.deadline();
    let started = match runner.start(task.name(), vec![work], render, deadline, || {}) {
        Ok(started) => started,
        Err(PoolError::QueueFull { .. } | PoolError::ShuttingDown) => return Err(Requeue),
        Err(error) => return Ok(Some(Err(runner.pool_error(error)))),
    };
    if started.is_pending() {
        let marked: redis::RedisResult<()> = redis::cmd("HSET")
            .arg(job_key(id))
            .arg("status")
            .arg("running")
            .arg("started_unix_ms")
            .arg(now_ms())
            .arg("replica")
            .arg(&jobs.replica)
            .query_async(conn)
            .await;
        if let Err(error) = marked {
            tracing::warn!(%error, %id, "marking a job running failed");
        }
    }
    let outcome = runner.finish_one(started, None).await;
    Ok(Some(outcome.map(|(executed, _)| executed.into_json())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_round_trip() {
        for format in [OutputFormat::Png, OutputFormat::Jpeg { quality: 77 }] {
            assert_eq!(parse_format(&format_text(format)), format);
        }
    }
}
