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

/// The service's Prometheus metrics: the service's own prefixed `percept_`, the process's under
/// the standard `process_*` names every Prometheus client library exports (so stock dashboards
/// and alerts work unchanged).
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
    cache_hits: Counter,
    cache_misses: Counter,
    cache_bytes: Gauge,
    process: ProcessMetrics,
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
        let mut root = Registry::default();
        let registry = root.sub_registry_with_prefix("percept");
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
        let process = ProcessMetrics::register(&mut root);
        Self {
            registry: root,
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
            cache_hits,
            cache_misses,
            cache_bytes,
            process,
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

    /// Renders the OpenMetrics text exposition (see [`exposition`] for the format a scraper
    /// asked for), refreshing the gauges sampled at scrape time; `cache_bytes` is the result
    /// cache's current size.
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
        self.process.sample();
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// The standard `process_*` metrics, sampled from `/proc/self` at each scrape (Linux; on
/// other systems they stay at zero).
struct ProcessMetrics {
    cpu: Counter<f64, AtomicU64>,
    resident: Gauge,
    virtual_memory: Gauge,
    threads: Gauge,
    open_fds: Gauge,
    max_fds: Gauge,
    /// Concurrent scrapes would both add the same CPU time to the counter.
    sampling: std::sync::Mutex<()>,
}

impl ProcessMetrics {
    fn register(registry: &mut Registry) -> Self {
        let metrics = Self {
            cpu: Counter::default(),
            resident: Gauge::default(),
            virtual_memory: Gauge::default(),
            threads: Gauge::default(),
            open_fds: Gauge::default(),
            max_fds: Gauge::default(),
            sampling: std::sync::Mutex::new(()),
        };
        registry.register(
            "process_cpu_seconds",
            "Total user and system CPU time spent in seconds",
            metrics.cpu.clone(),
        );
        for (name, help, gauge) in [
            (
                "process_resident_memory_bytes",
                "Resident memory size in bytes",
                &metrics.resident,
            ),
            (
                "process_virtual_memory_bytes",
                "Virtual memory size in bytes",
                &metrics.virtual_memory,
            ),
            (
                "process_threads",
                "Number of OS threads in the process",
                &metrics.threads,
            ),
            (
                "process_open_fds",
                "Number of open file descriptors",
                &metrics.open_fds,
            ),
            (
                "process_max_fds",
                "Maximum number of open file descriptors",
                &metrics.max_fds,
            ),
        ] {
            registry.register(name, help, gauge.clone());
        }
        let start = Gauge::<f64, AtomicU64>::default();
        if let Some(seconds) = process_start_time_seconds() {
            start.set(seconds);
        }
        registry.register(
            "process_start_time_seconds",
            "Start time of the process since unix epoch in seconds",
            start,
        );
        metrics
    }

    fn sample(&self) {
        let to_i64 = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        let _one_at_a_time = self
            .sampling
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(seconds) = cpu_seconds() {
            // A counter only goes up: add what the kernel counted since the last scrape.
            let delta = seconds - self.cpu.get();
            if delta > 0.0 {
                self.cpu.inc_by(delta);
            }
        }
        if let Ok(status) = std::fs::read_to_string("/proc/self/status") {
            let kib = |key: &str| status_field(&status, key).map(|k| k * 1024);
            if let Some(bytes) = kib("VmRSS:") {
                self.resident.set(to_i64(bytes));
            }
            if let Some(bytes) = kib("VmSize:") {
                self.virtual_memory.set(to_i64(bytes));
            }
            if let Some(n) = status_field(&status, "Threads:") {
                self.threads.set(to_i64(n));
            }
        }
        if let Ok(dir) = std::fs::read_dir("/proc/self/fd") {
            self.open_fds.set(to_i64(dir.count() as u64));
        }
        if let Some(n) = max_open_files() {
            self.max_fds.set(to_i64(n));
        }
    }
}

/// The first number after `key` in `/proc/self/status`.
fn status_field(status: &str, key: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with(key))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The soft limit on open files, from `/proc/self/limits`.
fn max_open_files() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// When the process started, in seconds since the Unix epoch: its start in clock ticks after
/// boot (`/proc/self/stat` field 22) plus the boot time (`btime` in `/proc/stat`).
fn process_start_time_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let rest = stat.get(stat.rfind(')')? + 2..)?;
    let ticks: f64 = rest.split_whitespace().nth(19)?.parse().ok()?;
    let boot: f64 = std::fs::read_to_string("/proc/stat")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()?;
    Some(boot + ticks / 100.0)
}

/// The content type for OpenMetrics text.
pub const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// The content type for the Prometheus text format.
pub const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The exposition a scraper asked for: OpenMetrics when its `Accept` names it (Prometheus
/// does), else the classic Prometheus text format, converted from the OpenMetrics `rendered`.
pub fn exposition(accept: Option<&str>, rendered: String) -> (&'static str, String) {
    if accept.is_some_and(|a| a.contains("application/openmetrics-text")) {
        (OPENMETRICS, rendered)
    } else {
        (PROMETHEUS_TEXT, to_prometheus_text(&rendered))
    }
}

/// OpenMetrics text → Prometheus text 0.0.4: no `# EOF` or `# UNIT` lines, a counter's
/// `# HELP`/`# TYPE` name carries its samples' `_total` suffix, and `unknown` is `untyped`.
fn to_prometheus_text(openmetrics: &str) -> String {
    let counters: std::collections::HashSet<&str> = openmetrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|rest| rest.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let rewritten = ["# HELP ", "# TYPE "].iter().find_map(|prefix| {
            let rest = line.strip_prefix(prefix)?;
            let (name, tail) = rest.split_once(' ')?;
            let tail = if tail == "unknown" { "untyped" } else { tail };
            let suffix = if counters.contains(name) {
                "_total"
            } else {
                ""
            };
            Some(format!("{prefix}{name}{suffix} {tail}"))
        });
        out.push_str(rewritten.as_deref().unwrap_or(line));
        out.push('\n');
    }
    out
}

/// The process's resident set size, from `VmRSS` in `/proc/self/status` (Linux); `None`
/// elsewhere.
pub fn resident_memory_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status_field(&status, "VmRSS:").map(|kib| kib * 1024)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openmetrics_converts_to_prometheus_text() {
        let openmetrics = "# HELP percept_requests Task requests.\n\
                           # TYPE percept_requests counter\n\
                           percept_requests_total{task=\"inspect\"} 1\n\
                           # HELP percept_queue_depth Waiting.\n\
                           # TYPE percept_queue_depth gauge\n\
                           # UNIT percept_queue_depth requests\n\
                           percept_queue_depth 0\n\
                           # TYPE odd unknown\n\
                           odd 1\n\
                           # EOF\n";
        let (kind, text) = exposition(Some("text/plain"), openmetrics.to_string());
        assert_eq!(kind, PROMETHEUS_TEXT);
        assert_eq!(
            text,
            "# HELP percept_requests_total Task requests.\n\
             # TYPE percept_requests_total counter\n\
             percept_requests_total{task=\"inspect\"} 1\n\
             # HELP percept_queue_depth Waiting.\n\
             # TYPE percept_queue_depth gauge\n\
             percept_queue_depth 0\n\
             # TYPE odd untyped\n\
             odd 1\n"
        );
        let prometheus_accept = "application/openmetrics-text;version=1.0.0;q=0.5,\
                                 text/plain;version=0.0.4;q=0.4,*/*;q=0.1";
        let (kind, text) = exposition(Some(prometheus_accept), openmetrics.to_string());
        assert_eq!((kind, text.as_str()), (OPENMETRICS, openmetrics));
        assert_eq!(exposition(None, String::new()).0, PROMETHEUS_TEXT);
    }

    #[test]
    fn process_metrics_have_the_standard_names_and_cpu_is_a_counter() {
        let metrics = Metrics::new("tract");
        let pool = WorkPool::new(1, 1);
        // Burn CPU until the kernel has counted some (it counts in 10 ms ticks).
        let mut x = 0u64;
        while cpu_seconds().is_some_and(|s| s < 0.05) {
            for i in 0..1_000_000u64 {
                x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(i));
            }
        }
        let (_, text) = exposition(None, metrics.render(&pool, 0));
        let value = |name: &str| -> f64 {
            text.lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
                .unwrap_or_else(|| panic!("{name} missing in\n{text}"))
                .parse()
                .unwrap()
        };
        assert!(
            text.contains("# TYPE process_cpu_seconds_total counter"),
            "{text}"
        );
        let first = value("process_cpu_seconds_total");
        assert!(first > 0.0, "{text}");
        assert!(value("process_resident_memory_bytes") > 1e6);
        assert!(value("process_virtual_memory_bytes") >= value("process_resident_memory_bytes"));
        assert!(value("process_threads") >= 1.0);
        assert!(value("process_open_fds") >= 3.0);
        assert!(value("process_max_fds") >= value("process_open_fds"));
        assert!(value("process_start_time_seconds") > 1.7e9);
        let (_, again) = exposition(None, metrics.render(&pool, 0));
        let second: f64 = again
            .lines()
            .find_map(|l| l.strip_prefix("process_cpu_seconds_total "))
            .unwrap()
            .parse()
            .unwrap();
        assert!(
            second >= first,
            "a counter never goes down: {first} then {second}"
        );
        assert!(!text.contains("percept_process_"), "one name per metric");
    }
}
