//! Async jobs kept in Redis (DESIGN §6), so every replica can take, run and answer any job.
//!
//! Keys (all under `percept:`):
//! - `job:{id}` — a hash: `task`, `options` (canonical JSON), `format`, `status`,
//!   `created_unix_ms`, `started_unix_ms`, `finished_unix_ms`, `replica`, on failure
//!   `error_code` / `error_message`, and for a video `kind` = `video`, `frames_total` and
//!   `frames_done` (written by the running replica about twice a second);
//! - `job:{id}:image` — the uploaded bytes (a photo, or a video written in chunks), deleted
//!   once the job has finished;
//! - `job:{id}:result` — the result JSON (a video job's summary);
//! - `job:{id}:video` — a video job's output video (written in chunks under
//!   `job:{id}:video:{replica}`, renamed when the job finishes);
//! - `job:{id}:cancelled` — set by `DELETE /v1/jobs/{id}`, which deletes the job's other keys;
//!   the replica running it stops at its next progress write;
//! - `videos` — a sorted set of the video jobs not yet finished (score: submission time), which
//!   bounds the videos Redis holds (`Config::redis_video_jobs`);
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

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::pool::PoolError;
use crate::runner::{Runner, Work};
use crate::video_jobs::{self, Progress, StoredVideo, progress_json};
use crate::video_upload::VideoUpload;
use crate::{ApiError, ErrorCode, Options};
use percept_tasks::Render;

/// Videos go in and out of Redis in pieces of this size (APPEND / GETRANGE), so neither side
/// holds a whole video in memory.
const CHUNK: usize = 4 << 20;
/// How often a running video job writes its progress (and keeps its keys from expiring).
const PROGRESS_EVERY: Duration = Duration::from_millis(500);

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
fn video_key(id: &str) -> String {
    format!("{PREFIX}:job:{id}:video")
}
fn cancel_key(id: &str) -> String {
    format!("{PREFIX}:job:{id}:cancelled")
}
fn videos_key() -> String {
    format!("{PREFIX}:videos")
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
    /// Video jobs Redis may hold unfinished, across replicas.
    max_videos: usize,
    /// Largest output video stored (`max_video_bytes`).
    max_video_bytes: u64,
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
        max_videos: usize,
        max_video_bytes: usize,
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
            max_videos: max_videos.max(1),
            max_video_bytes: max_video_bytes as u64,
            slots: Arc::new(Semaphore::new(workers)),
            workers,
        })
    }

    fn ttl_secs(&self) -> i64 {
        i64::try_from(self.result_ttl.as_secs().max(1)).unwrap_or(i64::MAX)
    }

    /// How long an unfinished job's keys live: the pending time, then a result's TTL.
    fn pending_secs(&self) -> i64 {
        i64::try_from(PENDING_TTL.as_secs())
            .unwrap_or(i64::MAX)
            .saturating_add(self.ttl_secs())
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
            return Err(ApiError::queue_full(
                format!("{queued} jobs are waiting; retry shortly"),
                1,
            ));
        }
        let id = uuid::Uuid::new_v4().simple().to_string();
        let pending = self.pending_secs();
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

    /// Stores a video job (the upload copied into Redis in chunks) and queues it; fails with
    /// `queue_full` when Redis holds as many unfinished video jobs as it may.
    pub(crate) async fn submit_video(
        &self,
        task: &str,
        options: &Options,
        upload: &VideoUpload,
        info: &percept_video::VideoInfo,
    ) -> Result<String, ApiError> {
        let mut conn = self.conn.clone();
        let now = now_ms();
        let pending = self.pending_secs();
        // Entries of jobs that never finished (their keys expired) stop counting.
        let stale = now.saturating_sub(u64::try_from(pending).unwrap_or(0) * 1000);
        let (_, unfinished): ((), usize) = redis::pipe()
            .zrembyscore(videos_key(), "-inf", stale)
            .zcard(videos_key())
            .query_async(&mut conn)
            .await
            .map_err(|e| unavailable(&e))?;
        if unfinished >= self.max_videos {
            return Err(ApiError::queue_full(
                format!("{unfinished} video jobs are queued or running; retry later"),
                5,
            ));
        }
        let id = uuid::Uuid::new_v4().simple().to_string();
        // Written before the job is queued, so no replica reads a partial video.
        if let Err(error) = put_file(&mut conn, &image_key(&id), &upload.path, pending).await {
            let _: redis::RedisResult<()> = redis::cmd("DEL")
                .arg(image_key(&id))
                .query_async(&mut conn)
                .await;
            return Err(error);
        }
        redis::pipe()
            .atomic()
            .hset_multiple(
                job_key(&id),
                &[
                    ("task", task.to_string()),
                    ("options", options.canonical()),
                    ("format", format_text(OutputFormat::Png)),
                    ("status", "queued".to_string()),
                    ("created_unix_ms", now.to_string()),
                    ("kind", "video".to_string()),
                    ("frames_total", info.frames.unwrap_or(0).to_string()),
                    ("frames_done", "0".to_string()),
                ],
            )
            .expire(job_key(&id), pending)
            .zadd(videos_key(), &id, now)
            .lpush(queue_key(), &id)
            .exec_async(&mut conn)
            .await
            .map_err(|e| unavailable(&e))?;
        tracing::debug!(%id, task, bytes = upload.bytes, "video job queued in redis");
        Ok(id)
    }

    /// A finished video job's output: its length and a body streaming it from Redis in
    /// chunks; `None` if unknown or expired.
    pub(crate) async fn video(
        &self,
        id: &str,
    ) -> Result<Option<(u64, axum::body::Body)>, ApiError> {
        let mut conn = self.conn.clone();
        let key = video_key(id);
        let length: u64 = redis::cmd("STRLEN")
            .arg(&key)
            .query_async(&mut conn)
            .await
            .map_err(|e| unavailable(&e))?;
        if length == 0 {
            return Ok(None);
        }
        let chunks = futures::stream::unfold(
            (conn, key, 0u64),
            move |(mut conn, key, offset)| async move {
                if offset >= length {
                    return None;
                }
                let end = (offset + CHUNK as u64).min(length) - 1;
                let piece: redis::RedisResult<Vec<u8>> = redis::cmd("GETRANGE")
                    .arg(&key)
                    .arg(offset)
                    .arg(end)
                    .query_async(&mut conn)
                    .await;
                match piece {
                    // Expired mid-download: end the body short rather than loop.
                    Ok(piece) if piece.is_empty() => None,
                    Ok(piece) => {
                        let next = offset + piece.len() as u64;
                        Some((Ok(Bytes::from(piece)), (conn, key, next)))
                    }
                    Err(error) => Some((Err(error), (conn, key, length))),
                }
            },
        );
        Ok(Some((length, axum::body::Body::from_stream(chunks))))
    }

    /// Cancels job `id`: takes it off the queue and deletes its keys; a replica running it
    /// (a video) sees the `cancelled` mark within [`PROGRESS_EVERY`] and stops. `false` if
    /// unknown or expired.
    pub(crate) async fn cancel(&self, id: &str) -> Result<bool, ApiError> {
        let mut conn = self.conn.clone();
        let pending = self.pending_secs();
        let (_, deleted, _, _): (i64, i64, i64, ()) = redis::pipe()
            .atomic()
            .lrem(queue_key(), 0, id)
            .del(job_key(id))
            .del(&[image_key(id), result_key(id), video_key(id)])
            .zrem(videos_key(), id)
            .set_ex(cancel_key(id), 1, pending.unsigned_abs())
            .ignore()
            .query_async(&mut conn)
            .await
            .map_err(|e| unavailable(&e))?;
        Ok(deleted > 0)
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
        if fields.get("kind").is_some_and(|k| k == "video") {
            let count = |name: &str| fields.get(name).and_then(|v| v.parse::<u64>().ok());
            body["kind"] = json!("video");
            body["progress"] = progress_json(
                count("frames_done").unwrap_or(0),
                count("frames_total").filter(|n| *n > 0),
            );
        }
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

    /// Writes a job's outcome; `video` is the key a video job's output was written under,
    /// renamed into place in the same `MULTI`.
    async fn finish(
        &self,
        conn: &mut ConnectionManager,
        id: &str,
        outcome: Result<String, ApiError>,
        video: Option<String>,
    ) -> redis::RedisResult<()> {
        let ttl = self.ttl_secs();
        let mut pipe = redis::pipe();
        pipe.atomic();
        let finished = now_ms().to_string();
        if let Some(written) = video {
            pipe.rename(written, video_key(id))
                .expire(video_key(id), ttl);
        }
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
            .zrem(videos_key(), id)
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
    permit: tokio::sync::OwnedSemaphorePermit,
) {
    let mut conn = jobs.conn.clone();
    // Held until the outcome is written (`drain` waits for every permit), except by a video,
    // which lets it go when it starts (see `load_and_run`).
    let mut permit = Some(permit);
    let ran = load_and_run(&runner, &jobs, &mut conn, &id, &mut permit).await;
    // A photo job cancelled while it ran finished anyway; its outcome is dropped like a
    // cancelled video's (a cancel landing after this check still lets it be written).
    let ran = match ran {
        Ok(Some(Ran::Photo(_))) if cancelled(&mut conn, &id).await => Ok(Some(Ran::Cancelled)),
        other => other,
    };
    let (outcome, video) = match ran {
        Ok(None) => return,
        Err(Requeue) => {
            jobs.give_back(&mut conn, &id).await;
            return;
        }
        Ok(Some(Ran::Photo(outcome))) => (
            outcome.and_then(|value| serde_json::to_string(&value).map_err(ApiError::internal)),
            None,
        ),
        Ok(Some(Ran::Cancelled)) => {
            // Cancelled while running: `cancel` deleted its keys; writing an outcome would
            // bring the job back (the hash is deleted again: marking it running may have
            // recreated it).
            let cleaned: redis::RedisResult<()> = redis::pipe()
                .atomic()
                .del(&[job_key(&id), image_key(&id)])
                .zrem(videos_key(), &id)
                .lrem(processing_key(&jobs.replica), 1, &id)
                .query_async(&mut conn)
                .await;
            if let Err(error) = cleaned {
                tracing::warn!(%error, %id, "cleaning up a cancelled job failed");
            }
            tracing::info!(%id, "job cancelled");
            return;
        }
        Ok(Some(Ran::Video(outcome))) => match store_video(&jobs, &mut conn, &id, outcome).await {
            Ok((summary, key)) => (Ok(summary), Some(key)),
            Err(error) => (Err(error), None),
        },
    };
    if let Err(error) = jobs.finish(&mut conn, &id, outcome, video).await {
        // Left in the processing list: it goes back to the queue when this replica restarts
        // or stops beating.
        tracing::error!(%error, %id, "could not store a job result in redis");
    }
}

/// Whether job `id` was cancelled (an unreadable mark counts as not).
async fn cancelled(conn: &mut ConnectionManager, id: &str) -> bool {
    redis::cmd("EXISTS")
        .arg(cancel_key(id))
        .query_async(conn)
        .await
        .unwrap_or(false)
}

/// What running a job gave.
enum Ran {
    Photo(Result<Value, ApiError>),
    Video(Result<(StoredVideo, Value), ApiError>),
    /// A job cancelled while it ran: nothing is written back.
    Cancelled,
}

/// Copies a finished video job's output into Redis under a key of this replica's own (renamed
/// into place by `finish`); returns the summary JSON and that key.
async fn store_video(
    jobs: &RedisJobs,
    conn: &mut ConnectionManager,
    id: &str,
    outcome: Result<(StoredVideo, Value), ApiError>,
) -> Result<(String, String), ApiError> {
    let (video, summary) = outcome?;
    if video.bytes > jobs.max_video_bytes {
        return Err(ApiError::new(
            ErrorCode::VideoTooLarge,
            format!(
                "the output video is {} bytes, more than the {} bytes (max_video_bytes) the job \
                 store keeps; send a shorter or smaller video",
                video.bytes, jobs.max_video_bytes
            ),
        ));
    }
    let key = format!("{}:{}", video_key(id), jobs.replica);
    put_file(conn, &key, &video.path, jobs.ttl_secs()).await?;
    let summary = serde_json::to_string(&summary).map_err(ApiError::internal)?;
    Ok((summary, key))
}

/// Copies the file at `path` into `key` in chunks (`SET` of nothing, then `APPEND`s), with a
/// TTL of `ttl` seconds.
async fn put_file(
    conn: &mut ConnectionManager,
    key: &str,
    path: &std::path::Path,
    ttl: i64,
) -> Result<(), ApiError> {
    let mut file = tokio::fs::File::open(path)
        .await
        .map_err(|e| ApiError::internal(format!("cannot read a video to store: {e}")))?;
    redis::pipe()
        .set_ex(key, b"".as_slice(), ttl.unsigned_abs())
        .exec_async(conn)
        .await
        .map_err(|e| unavailable(&e))?;
    let mut buffer = vec![0u8; CHUNK];
    loop {
        let n = file
            .read(&mut buffer)
            .await
            .map_err(|e| ApiError::internal(format!("cannot read a video to store: {e}")))?;
        if n == 0 {
            return Ok(());
        }
        redis::cmd("APPEND")
            .arg(key)
            .arg(&buffer[..n])
            .exec_async(conn)
            .await
            .map_err(|e| unavailable(&e))?;
    }
}

/// Copies `key` into a new temporary file in chunks; `None` when the key is gone.
async fn get_file(
    conn: &mut ConnectionManager,
    key: &str,
) -> redis::RedisResult<Option<tempfile::TempPath>> {
    let length: u64 = redis::cmd("STRLEN").arg(key).query_async(conn).await?;
    if length == 0 {
        return Ok(None);
    }
    let io = |e: std::io::Error| redis::RedisError::from(e);
    let (file, path) = tempfile::Builder::new()
        .prefix("percept-job-")
        .tempfile()
        .map(tempfile::NamedTempFile::into_parts)
        .map_err(io)?;
    let mut file = tokio::fs::File::from_std(file);
    let mut offset = 0u64;
    while offset < length {
        let end = (offset + CHUNK as u64).min(length) - 1;
        let piece: Vec<u8> = redis::cmd("GETRANGE")
            .arg(key)
            .arg(offset)
            .arg(end)
            .query_async(conn)
            .await?;
        if piece.is_empty() {
            return Ok(None);
        }
        file.write_all(&piece).await.map_err(io)?;
        offset += piece.len() as u64;
    }
    file.flush().await.map_err(io)?;
    Ok(Some(path))
}

/// A job's `task`, `options`, `format` and `kind`, each absent once expired.
type StoredJob = (
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
);

/// The job cannot run on this replica right now; put it back.
struct Requeue;

/// Runs job `id`: `Ok(None)` if it vanished (expired), `Ok(Some(outcome))` once run.
async fn load_and_run(
    runner: &Arc<Runner>,
    jobs: &RedisJobs,
    conn: &mut ConnectionManager,
    id: &str,
    permit: &mut Option<tokio::sync::OwnedSemaphorePermit>,
) -> Result<Option<Ran>, Requeue> {
    let fields: redis::RedisResult<StoredJob> = redis::pipe()
        .hget(job_key(id), "task")
        .hget(job_key(id), "options")
        .hget(job_key(id), "format")
        .hget(job_key(id), "kind")
        .query_async(conn)
        .await;
    let expired = |conn: &mut ConnectionManager| {
        tracing::warn!(%id, "a queued job expired before it ran; dropping it");
        let mut conn = conn.clone();
        let processing = processing_key(&jobs.replica);
        let id = id.to_string();
        async move {
            let _: redis::RedisResult<()> = redis::pipe()
                .lrem(processing, 1, &id)
                .zrem(videos_key(), &id)
                .query_async(&mut conn)
                .await;
        }
    };
    let (task_name, options, format, kind) = match fields {
        Ok((Some(task), Some(options), Some(format), kind)) => (task, options, format, kind),
        Ok(_) => {
            expired(conn).await;
            return Ok(None);
        }
        Err(error) => {
            tracing::warn!(%error, %id, "reading a job from redis failed");
            return Err(Requeue);
        }
    };
    if kind.as_deref() == Some("video") {
        let input = match get_file(conn, &image_key(id)).await {
            Ok(Some(input)) => input,
            Ok(None) => {
                expired(conn).await;
                return Ok(None);
            }
            Err(error) => {
                tracing::warn!(%error, %id, "reading a video from redis failed");
                return Err(Requeue);
            }
        };
        // A video runs for minutes, in steps that share the work pool's queue with everything
        // else: holding a dispatcher slot all that time would stop this replica taking photo
        // jobs. Videos are bounded across replicas by the `videos` set instead. The cost: at
        // shutdown `drain` does not wait for a video; it returns to the queue (give-back, or
        // this replica's processing list reclaimed).
        drop(permit.take());
        let ran = run_video(runner, jobs, conn, id, &task_name, &options, &input).await?;
        return Ok(Some(ran));
    }
    let image: Option<Vec<u8>> = match redis::cmd("GET").arg(image_key(id)).query_async(conn).await
    {
        Ok(image) => image,
        Err(error) => {
            tracing::warn!(%error, %id, "reading a job from redis failed");
            return Err(Requeue);
        }
    };
    let Some(image) = image else {
        expired(conn).await;
        return Ok(None);
    };
    let outcome = run_photo(runner, jobs, conn, id, &task_name, &options, &format, image).await?;
    Ok(Some(Ran::Photo(outcome)))
}

/// Marks job `id` running on this replica.
async fn mark_running(jobs: &RedisJobs, conn: &mut ConnectionManager, id: &str) {
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

/// Runs a video job from its input file, writing its progress to the job's hash while it
/// runs (and keeping its keys alive: a long video may outlast their first TTL).
async fn run_video(
    runner: &Arc<Runner>,
    jobs: &RedisJobs,
    conn: &mut ConnectionManager,
    id: &str,
    task_name: &str,
    options: &str,
    input: &std::path::Path,
) -> Result<Ran, Requeue> {
    let Some(task) = runner.tasks().get(task_name) else {
        return Ok(Ran::Video(Err(ApiError::not_found(format!(
            "this replica has no task `{task_name}`"
        )))));
    };
    let options = match Options::from_canonical(options) {
        Ok(options) => options,
        Err(e) => return Ok(Ran::Video(Err(ApiError::internal(e)))),
    };
    let info = match video_jobs::check(&runner.config, input).await {
        Ok(info) => info,
        Err(error) => return Ok(Ran::Video(Err(error))),
    };
    if runner.is_shutting_down() {
        return Err(Requeue);
    }
    mark_running(jobs, conn, id).await;
    let progress = Arc::new(Progress::new(info.frames));
    let reporter = {
        let (progress, mut conn, id) = (Arc::clone(&progress), conn.clone(), id.to_string());
        let pending = jobs.pending_secs();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(PROGRESS_EVERY).await;
                let written: redis::RedisResult<(bool,)> = redis::pipe()
                    .exists(cancel_key(&id))
                    .hset(job_key(&id), "frames_done", progress.done())
                    .ignore()
                    .expire(job_key(&id), pending)
                    .ignore()
                    .expire(image_key(&id), pending)
                    .ignore()
                    .query_async(&mut conn)
                    .await;
                match written {
                    Ok((true,)) => {
                        progress.cancel();
                        return;
                    }
                    Ok((false,)) => {}
                    Err(error) => {
                        tracing::debug!(%error, %id, "writing a video job's progress failed");
                    }
                }
            }
        })
    };
    let outcome = video_jobs::run(runner, task, options, input, &info, &progress).await;
    reporter.abort();
    if progress.is_cancelled() {
        return Ok(Ran::Cancelled);
    }
    let last: redis::RedisResult<()> = redis::cmd("HSET")
        .arg(job_key(id))
        .arg("frames_done")
        .arg(progress.done())
        .query_async(conn)
        .await;
    if let Err(error) = last {
        tracing::debug!(%error, %id, "writing a video job's progress failed");
    }
    match outcome {
        // The pool stopped taking work: another replica (or this one, restarted) runs it.
        Err(error) if error.code == ErrorCode::ShuttingDown => Err(Requeue),
        Ok((video, mut summary)) => {
            summary["video_url"] = json!(video_jobs::video_url(id));
            Ok(Ran::Video(Ok((video, summary))))
        }
        Err(error) => Ok(Ran::Video(Err(error))),
    }
}

/// Runs a photo job.
#[allow(clippy::too_many_arguments)] // the job's stored fields, read by the caller in one round trip
async fn run_photo(
    runner: &Arc<Runner>,
    jobs: &RedisJobs,
    conn: &mut ConnectionManager,
    id: &str,
    task_name: &str,
    options: &str,
    format: &str,
    image: Vec<u8>,
) -> Result<Result<Value, ApiError>, Requeue> {
    let Some(task) = runner.tasks().get(task_name) else {
        return Ok(Err(ApiError::not_found(format!(
            "this replica has no task `{task_name}`"
        ))));
    };
    let options = match Options::from_canonical(options) {
        Ok(options) => options,
        Err(e) => return Ok(Err(ApiError::internal(e))),
    };
    let render = Render {
        format: parse_format(format),
        raw_image: false,
    };
    let key = runner
        .cache
        .key(task.name(), &options, render.format, &image);
    let job = match task.prepare(options) {
        Ok(job) => job,
        Err(error) => return Ok(Err(error.into())),
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
        Err(error) => return Ok(Err(runner.pool_error(error))),
    };
    if started.is_pending() {
        mark_running(jobs, conn, id).await;
    }
    let outcome = runner.finish_one(started, None).await;
    Ok(outcome.map(|(executed, _)| executed.into_json()))
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
