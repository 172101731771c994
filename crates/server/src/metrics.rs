use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::pool::WorkPool;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    task: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TaskLabels {
    task: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StageLabels {
    task: String,
    stage: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct InfoLabels {
    version: String,
    engine: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EngineLabels {
    engine: String,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    // 1 ms … ~65 s, doubling: geometric buckets cover fast kernels and slow big photos alike.
    Histogram::new(exponential_buckets(0.001, 2.0, 17))
}

/// The service's Prometheus metrics; every name is prefixed `percept_`.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: HistogramFamily<TaskLabels>,
    stages: HistogramFamily<StageLabels>,
    rejections: Family<ReasonLabels, Counter>,
    queue_depth: Gauge,
    in_flight: Gauge,
    workers: Gauge,
    queue_capacity: Gauge,
    panics: Counter,
    expired: Counter,
    rss: Gauge,
    cache_hits: Counter,
    cache_misses: Counter,
    cache_bytes: Gauge,
    cpu: Gauge<f64, std::sync::atomic::AtomicU64>,
    panics_seen: AtomicU64,
    expired_seen: AtomicU64,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    /// Registers every metric. `engine` names the inference engine in use (`none` until
    /// models are loaded).
    pub fn new(engine: &str) -> Self {
        let mut registry = Registry::with_prefix("percept");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "requests",
            "Task requests answered, by task and HTTP status",
            requests.clone(),
        );
        let latency: HistogramFamily<TaskLabels> =
            Family::new_with_constructor(latency_histogram as fn() -> Histogram);
        registry.register(
            "request_duration_seconds",
            "End-to-end latency of task requests, from arrival to response",
            latency.clone(),
        );
        let stages: HistogramFamily<StageLabels> =
            Family::new_with_constructor(latency_histogram as fn() -> Histogram);
        registry.register(
            "stage_duration_seconds",
            "Time per stage of a task: queue, decode, infer, encode",
            stages.clone(),
        );
        let rejections = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "rejections",
            "Requests refused before running: queue_full, timeout, shutting_down, payload_too_large",
            rejections.clone(),
        );
        let queue_depth = Gauge::default();
        registry.register(
            "queue_depth",
            "Requests waiting for a worker",
            queue_depth.clone(),
        );
        let in_flight = Gauge::default();
        registry.register(
            "in_flight",
            "Requests running on a worker",
            in_flight.clone(),
        );
        let workers = Gauge::default();
        registry.register("workers", "Worker threads", workers.clone());
        let queue_capacity = Gauge::default();
        registry.register(
            "queue_capacity",
            "Work queue capacity",
            queue_capacity.clone(),
        );
        let panics = Counter::default();
        registry.register(
            "panics",
            "Jobs that panicked and were answered with 500",
            panics.clone(),
        );
        let expired = Counter::default();
        registry.register(
            "expired",
            "Jobs dropped because their deadline passed while queued",
            expired.clone(),
        );
        let rss = Gauge::default();
        registry.register(
            "process_resident_memory_bytes",
            "Resident set size of the percept process",
            rss.clone(),
        );
        let cache_hits = Counter::default();
        registry.register(
            "cache_hits",
            "Task results served from the result cache",
            cache_hits.clone(),
        );
        let cache_misses = Counter::default();
        registry.register(
            "cache_misses",
            "Task results computed because the result cache did not hold them",
            cache_misses.clone(),
        );
        let cache_bytes = Gauge::default();
        registry.register(
            "cache_bytes",
            "Bytes of results held in the result cache",
            cache_bytes.clone(),
        );
        let cpu = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
        registry.register(
            "process_cpu_seconds",
            "User plus system CPU time of the percept process",
            cpu.clone(),
        );
        let info = Family::<InfoLabels, Gauge>::default();
        info.get_or_create(&InfoLabels {
            version: env!("CARGO_PKG_VERSION").to_string(),
            engine: engine.to_string(),
        })
        .set(1);
        registry.register("build_info", "Version and inference engine in use", info);
        let engine_info = Family::<EngineLabels, Gauge>::default();
        engine_info
            .get_or_create(&EngineLabels {
                engine: engine.to_string(),
            })
            .set(1);
        registry.register(
            "engine_info",
            "Inference engine the models run on (tract or ort), chosen at start",
            engine_info,
        );
        Self {
            registry,
            requests,
            latency,
            stages,
            rejections,
            queue_depth,
            in_flight,
            workers,
            queue_capacity,
            panics,
            expired,
            rss,
            cache_hits,
            cache_misses,
            cache_bytes,
            cpu,
            panics_seen: AtomicU64::new(0),
            expired_seen: AtomicU64::new(0),
        }
    }

    /// Records one answered task request.
    pub fn observe_request(&self, task: &str, status: u16, total: Duration) {
        self.requests
            .get_or_create(&RequestLabels {
                task: task.to_string(),
                status,
            })
            .inc();
        self.latency
            .get_or_create(&TaskLabels {
                task: task.to_string(),
            })
            .observe(total.as_secs_f64());
    }

    /// Records the duration of one stage of a task.
    pub fn observe_stage(&self, task: &str, stage: &str, duration: Duration) {
        self.stages
            .get_or_create(&StageLabels {
                task: task.to_string(),
                stage: stage.to_string(),
            })
            .observe(duration.as_secs_f64());
    }

    /// Counts a request refused before it ran.
    pub fn reject(&self, reason: &str) {
        self.rejections
            .get_or_create(&ReasonLabels {
                reason: reason.to_string(),
            })
            .inc();
    }

    /// Counts one result-cache lookup.
    pub fn cache_lookup(&self, hit: bool) {
        if hit {
            self.cache_hits.inc();
        } else {
            self.cache_misses.inc();
        }
    }

    /// Renders the Prometheus text exposition, refreshing the gauges sampled at scrape time;
    /// `cache_bytes` is the result cache's current size.
    pub fn render(&self, pool: &WorkPool, cache_bytes: u64) -> String {
        use std::sync::atomic::Ordering::Relaxed;
        let to_i64 = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        self.queue_depth.set(to_i64(pool.queued()));
        self.in_flight.set(to_i64(pool.in_flight()));
        self.workers.set(to_i64(pool.workers()));
        self.queue_capacity.set(to_i64(pool.capacity()));
        let panics = pool.panics();
        let seen = self.panics_seen.swap(panics, Relaxed);
        self.panics.inc_by(panics.saturating_sub(seen));
        let expired = pool.expired();
        let seen = self.expired_seen.swap(expired, Relaxed);
        self.expired.inc_by(expired.saturating_sub(seen));
        self.cache_bytes
            .set(i64::try_from(cache_bytes).unwrap_or(i64::MAX));
        if let Some(seconds) = cpu_seconds() {
            self.cpu.set(seconds);
        }
        if let Some(rss) = resident_memory_bytes() {
            self.rss.set(i64::try_from(rss).unwrap_or(i64::MAX));
        }
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// The process's resident set size, from `VmRSS` in `/proc/self/status` (Linux); `None`
/// elsewhere.
pub fn resident_memory_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// User + system CPU seconds of this process, from `/proc/self/stat` (Linux; the kernel
/// reports them in USER_HZ ticks, which its ABI fixes at 100 per second).
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let rest = stat.get(stat.rfind(')')? + 2..)?;
    let mut fields = rest.split_whitespace().skip(11);
    let utime: f64 = fields.next()?.parse().ok()?;
    let stime: f64 = fields.next()?.parse().ok()?;
    Some((utime + stime) / 100.0)
}
