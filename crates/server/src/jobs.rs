use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use crate::redis_jobs::RedisJobs;
use crate::video_jobs::{Progress, StoredVideo};
use crate::{ApiError, ErrorCode};

/// Where async jobs live: this process's memory, or Redis shared by every replica.
#[derive(Debug, Clone)]
pub(crate) enum JobBackend {
    /// In process memory (no `redis_url`): lost on restart, visible to this replica only.
    Memory(Arc<JobStore>),
    /// In Redis: shared, and queued work survives a restart (see `redis_jobs`).
    Redis(Arc<RedisJobs>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Queued,
    Running,
    Done,
    Failed,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Status::Queued => "queued",
            Status::Running => "running",
            Status::Done => "done",
            Status::Failed => "failed",
        }
    }
}

#[derive(Debug, Clone)]
struct Entry {
    task: String,
    status: Status,
    created: Instant,
    created_unix_ms: u128,
    started: Option<Instant>,
    finished: Option<Instant>,
    outcome: Option<Result<Value, ApiError>>,
    bytes: usize,
    /// A video job's frames, counted while it runs.
    progress: Option<Arc<Progress>>,
    /// A video job's output once done; its folder goes when the last holder drops it.
    video: Option<Arc<StoredVideo>>,
    /// Ends a video job's run (and drops its files) when the job is cancelled.
    abort: Option<tokio::task::AbortHandle>,
}

/// A snapshot of one job for the status and result routes.
#[derive(Debug, Clone)]
pub struct JobView {
    id: String,
    entry: Entry,
    /// The result (or the error), once finished.
    pub outcome: Option<Result<Value, ApiError>>,
}

impl JobView {
    /// Whether the job runs a video.
    pub(crate) fn is_video(&self) -> bool {
        self.entry.progress.is_some()
    }

    /// A finished video job's output video.
    pub(crate) fn video(&self) -> Option<Arc<StoredVideo>> {
        self.entry.video.clone()
    }
}

impl JobView {
    /// `{id, task, status, created_unix_ms, queue_ms, compute_ms, error?}`.
    pub fn status_json(&self) -> Value {
        let e = &self.entry;
        let ms = |d: Duration| (d.as_secs_f64() * 1e6).round() / 1e3;
        let mut body = json!({
            "id": self.id,
            "task": e.task,
            "status": e.status.as_str(),
            "created_unix_ms": e.created_unix_ms,
            "queue_ms": e.started.map(|s| ms(s.duration_since(e.created))),
            "compute_ms": e.started.zip(e.finished).map(|(s, f)| ms(f.duration_since(s))),
        });
        if let Some(progress) = &e.progress {
            body["kind"] = json!("video");
            body["progress"] = progress.json();
        }
        if let Some(Err(error)) = &self.outcome {
            body["error"] = serde_json::to_value(error.body()).unwrap_or(Value::Null);
        }
        body
    }
}

/// Async jobs held in process memory (DESIGN §6 without Redis): results expire after the
/// TTL, and the total size of stored results is capped, evicting the oldest finished first.
#[derive(Debug)]
pub struct JobStore {
    entries: Mutex<HashMap<String, Entry>>,
    ttl: Duration,
    max_bytes: usize,
}

impl JobStore {
    /// A store keeping results for `ttl` within `max_bytes` of JSON.
    pub fn new(ttl: Duration, max_bytes: usize) -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
            ttl,
            max_bytes,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        // A poisoned lock only means a panic elsewhere mid-update; the map itself is valid.
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Registers a queued job and returns its id.
    pub fn create(&self, task: &str) -> String {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let now = Instant::now();
        let created_unix_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        let mut entries = self.lock();
        self.expire(&mut entries, now);
        entries.insert(
            id.clone(),
            Entry {
                task: task.to_string(),
                status: Status::Queued,
                created: now,
                created_unix_ms,
                started: None,
                finished: None,
                outcome: None,
                bytes: 0,
                progress: None,
                video: None,
                abort: None,
            },
        );
        id
    }

    /// Registers a queued video job of `frames` frames (when known) and returns its id and
    /// the progress its run counts in; `None` when `max_unfinished` video jobs are already
    /// queued or running (each holds a video on disk, and runs for a long time).
    pub(crate) fn create_video(
        &self,
        task: &str,
        frames: Option<u64>,
        max_unfinished: usize,
    ) -> Option<(String, Arc<Progress>)> {
        let unfinished = self
            .lock()
            .values()
            .filter(|e| e.progress.is_some() && e.finished.is_none())
            .count();
        if unfinished >= max_unfinished {
            return None;
        }
        let id = self.create(task);
        let progress = Arc::new(Progress::new(frames));
        if let Some(entry) = self.lock().get_mut(&id) {
            entry.progress = Some(Arc::clone(&progress));
        }
        Some((id, progress))
    }

    /// Stores a video job's outcome: the summary and the video, counted in the store's byte
    /// budget. A video larger than the whole budget is refused (`video_too_large`).
    pub(crate) fn finish_video(&self, id: &str, outcome: Result<(StoredVideo, Value), ApiError>) {
        let (summary, video) = match outcome {
            Ok((video, _)) if video.bytes > self.max_bytes as u64 => (
                Err(ApiError::new(
                    ErrorCode::VideoTooLarge,
                    format!(
                        "the output video is {} bytes, more than the {} bytes the job store \
                         keeps; send a shorter or smaller video",
                        video.bytes, self.max_bytes
                    ),
                )),
                None,
            ),
            Ok((video, summary)) => (Ok(summary), Some(Arc::new(video))),
            Err(error) => (Err(error), None),
        };
        let video_bytes = video
            .as_ref()
            .map_or(0, |v| usize::try_from(v.bytes).unwrap_or(usize::MAX));
        if let Some(entry) = self.lock().get_mut(id) {
            entry.video = video;
        }
        self.finish_sized(id, summary, video_bytes);
    }

    /// Drops expired results (and their videos) now, not only at the next access.
    pub(crate) fn sweep(&self) {
        let mut entries = self.lock();
        self.expire(&mut entries, Instant::now());
    }

    /// Marks a job as picked up by a worker.
    pub fn mark_running(&self, id: &str) {
        if let Some(entry) = self.lock().get_mut(id) {
            entry.status = Status::Running;
            entry.started = Some(Instant::now());
        }
    }

    /// Stores a job's outcome.
    pub fn finish(&self, id: &str, outcome: Result<Value, ApiError>) {
        self.finish_sized(id, outcome, 0);
    }

    /// Stores a job's outcome, counting `extra` bytes held besides its JSON (a video).
    fn finish_sized(&self, id: &str, outcome: Result<Value, ApiError>, extra: usize) {
        let now = Instant::now();
        let bytes = outcome
            .as_ref()
            .map_or(256, |v| v.to_string().len())
            .saturating_add(extra);
        let mut entries = self.lock();
        if let Some(entry) = entries.get_mut(id) {
            entry.status = if outcome.is_ok() {
                Status::Done
            } else {
                Status::Failed
            };
            entry.started.get_or_insert(now);
            entry.finished = Some(now);
            entry.outcome = Some(outcome);
            entry.bytes = bytes;
        }
        self.expire(&mut entries, now);
    }

    /// Forgets a job that could not be queued.
    pub fn remove(&self, id: &str) {
        self.lock().remove(id);
    }

    /// Remembers how to stop a video job's run.
    pub(crate) fn set_abort(&self, id: &str, abort: tokio::task::AbortHandle) {
        match self.lock().get_mut(id) {
            Some(entry) => entry.abort = Some(abort),
            // Cancelled before the handle arrived.
            None => abort.abort(),
        }
    }

    /// Cancels and forgets a job: a video job's run stops (its step on a worker ends, its
    /// FFmpeg processes are killed, its files removed); a photo job's result is never kept.
    /// `false` if unknown or expired.
    pub(crate) fn cancel(&self, id: &str) -> bool {
        let Some(entry) = self.lock().remove(id) else {
            return false;
        };
        if let Some(progress) = &entry.progress {
            progress.cancel();
        }
        if let Some(abort) = entry.abort {
            abort.abort();
        }
        true
    }

    /// The job, unless unknown or expired.
    pub fn get(&self, id: &str) -> Option<JobView> {
        let mut entries = self.lock();
        self.expire(&mut entries, Instant::now());
        entries.get(id).map(|entry| JobView {
            id: id.to_string(),
            outcome: entry.outcome.clone(),
            entry: entry.clone(),
        })
    }

    fn expire(&self, entries: &mut HashMap<String, Entry>, now: Instant) {
        entries.retain(|_, e| e.finished.is_none_or(|f| now.duration_since(f) < self.ttl));
        let mut total: usize = entries.values().map(|e| e.bytes).sum();
        if total <= self.max_bytes {
            return;
        }
        let mut finished: Vec<(Instant, String)> = entries
            .iter()
            .filter_map(|(id, e)| e.finished.map(|f| (f, id.clone())))
            .collect();
        finished.sort();
        for (_, id) in finished {
            if total <= self.max_bytes {
                break;
            }
            if let Some(e) = entries.remove(&id) {
                total -= e.bytes;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifecycle_and_expiry() {
        let store = JobStore::new(Duration::from_millis(50), 1 << 20);
        let id = store.create("inspect");
        assert_eq!(store.get(&id).unwrap().status_json()["status"], "queued");
        store.mark_running(&id);
        assert_eq!(store.get(&id).unwrap().status_json()["status"], "running");
        store.finish(&id, Ok(json!({"width": 3})));
        let view = store.get(&id).unwrap();
        assert_eq!(view.status_json()["status"], "done");
        assert_eq!(view.outcome.unwrap().unwrap()["width"], 3);
        std::thread::sleep(Duration::from_millis(80));
        assert!(store.get(&id).is_none(), "expired after the TTL");
    }

    #[test]
    fn size_cap_evicts_oldest_finished() {
        let store = JobStore::new(Duration::from_secs(60), 400);
        let a = store.create("t");
        store.finish(&a, Ok(json!({"pad": "x".repeat(250)})));
        let b = store.create("t");
        store.finish(&b, Ok(json!({"pad": "y".repeat(250)})));
        assert!(store.get(&a).is_none());
        assert!(store.get(&b).is_some());
        let failed = store.create("t");
        store.finish(&failed, Err(ApiError::invalid_image("bad")));
        assert_eq!(
            store.get(&failed).unwrap().status_json()["status"],
            "failed"
        );
    }
}
