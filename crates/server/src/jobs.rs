use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use crate::ApiError;
use crate::redis_jobs::RedisJobs;

/// Where async jobs live: this process's memory, or Redis shared by every replica.
#[derive(Debug, Clone)]
pub(crate) enum JobBackend {
    /// In process memory (no `redis_url`): lost on restart, visible to this replica only.
    Memory(std::sync::Arc<JobStore>),
    /// In Redis: shared, and queued work survives a restart (see `redis_jobs`).
    Redis(std::sync::Arc<RedisJobs>),
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
            },
        );
        id
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
        let now = Instant::now();
        let bytes = outcome.as_ref().map_or(256, |v| v.to_string().len());
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
