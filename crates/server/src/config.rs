use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use percept_core::DecodeLimits;
use percept_vision::percept_infer::EngineChoice;
use serde::{Deserialize, Serialize};

/// Everything the service can be configured with. Flags and `PERCEPT_*` variables (in the
/// CLI) override a TOML file, which overrides these defaults (DESIGN §3).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Listen address.
    pub addr: SocketAddr,
    /// A second listener that serves only `GET /metrics`, without the API key, so Prometheus
    /// can scrape a keyed server without holding the key; keep its port off the Service and
    /// the Ingress (deploy/k8s). None (the default): `/metrics` is on `addr`, behind the key.
    pub metrics_addr: Option<SocketAddr>,
    /// Worker threads running image work; defaults to the number of cores.
    pub workers: usize,
    /// Requests that may wait for a worker; more get `429 queue_full` at once.
    pub queue: usize,
    /// Per-request deadline in milliseconds, from arrival to response.
    pub deadline_ms: u64,
    /// Largest accepted request body in bytes.
    pub max_body_bytes: usize,
    /// Largest accepted image, in pixels after decoding (checked from the header).
    pub max_pixels: u64,
    /// Largest accepted image side in pixels.
    pub max_side: u32,
    /// Most `image` parts in one multipart request (batches).
    pub max_parts: usize,
    /// Largest video a job accepts, in bytes (`POST /v1/jobs/{task}` with a video body).
    /// Separate from `max_body_bytes`, which bounds photos and every other route: a video
    /// is spilled to a temporary file as it arrives, never held whole in memory.
    pub max_video_bytes: usize,
    /// Longest video a job accepts, in seconds (from ffprobe, before any frame is decoded).
    pub max_video_seconds: u64,
    /// How long finished results (jobs, result URLs) are kept, in seconds.
    pub result_ttl_secs: u64,
    /// Result cache budget in bytes; 0 turns the cache off.
    pub cache_bytes: u64,
    /// `redis://host:port[/db]`: keep async jobs in Redis, shared by every replica, instead of
    /// in process memory (DESIGN §6). May carry a password, so it is never logged.
    pub redis_url: Option<Secret>,
    /// Bytes of images the shared Redis queue may hold: with every image at `max_body_bytes`,
    /// at most this much waits in Redis (with 16 × `queue` jobs, the count bound, a 32-deep
    /// queue of 25 MiB photos could otherwise hold 12.8 GiB). Size Redis's `maxmemory` above it.
    pub redis_queue_bytes: u64,
    /// This replica's name in Redis (its processing list); it must be stable across restarts
    /// of the same replica and unique among live ones [default: `<hostname>:<port>`].
    pub replica_id: Option<String>,
    /// `http(s)://host[:port][/prefix]` clients reach the service at, for the absolute result
    /// URLs the compatibility routes return; without it they are built from the request's
    /// `Host` (or `X-Forwarded-Host` and `X-Forwarded-Proto` behind a proxy).
    pub public_url: Option<String>,
    /// When set, every route but the page, its assets and the health probes needs
    /// `Authorization: Bearer <key>` (or `x-api-key: <key>`).
    pub api_key: Option<Secret>,
    /// Folder with `manifest.toml` and the ONNX models; by default `./models`, else the
    /// repository's `models/` the binary was built from.
    pub models_dir: Option<std::path::PathBuf>,
    /// Inference engine: `auto` (ONNX Runtime when its library is found and loads, else
    /// tract), `tract` or `ort` (an error when the library is missing).
    pub engine: EngineChoice,
    /// Threads one ONNX Runtime model run may use. 1 (the default) suits a busy server, whose
    /// workers already keep every core busy; `workers × intra_threads ≈ cores` trades
    /// throughput for the latency of a single request. tract always runs on one thread.
    pub intra_threads: usize,
    /// Threads of a large ONNX Runtime run (CenterFace, the parser) that starts while no other
    /// run is in flight, i.e. a lone request on an idle server: 0 (the default) = every core,
    /// 1 = never more than `intra_threads`. Under load runs stay at `intra_threads`.
    #[serde(default)]
    pub idle_threads: usize,
}

/// A string that never appears in logs or `Debug` output.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value itself, for the one place that must use it (never for logging).
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }

    /// Compares in time independent of where the first difference is, so response timing
    /// does not reveal how much of a guessed key was right.
    pub fn matches(&self, candidate: &str) -> bool {
        let (a, b) = (self.0.as_bytes(), candidate.as_bytes());
        let diff = a
            .iter()
            .zip(b.iter().cycle())
            .fold(a.len() ^ b.len(), |acc, (x, y)| acc | usize::from(x ^ y));
        diff == 0 && !b.is_empty()
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            metrics_addr: None,
            workers: std::thread::available_parallelism().map_or(2, |n| n.get()),
            queue: 32,
            deadline_ms: 30_000,
            max_body_bytes: 25 * 1024 * 1024,
            max_pixels: 40_000_000,
            max_side: 12_000,
            max_parts: 64,
            max_video_bytes: 200 * 1024 * 1024,
            max_video_seconds: 600,
            result_ttl_secs: 600,
            cache_bytes: 256 * 1024 * 1024,
            api_key: None,
            models_dir: None,
            engine: EngineChoice::Auto,
            intra_threads: 1,
            idle_threads: 0,
            redis_url: None,
            redis_queue_bytes: 1024 * 1024 * 1024,
            replica_id: None,
            public_url: None,
        }
    }
}

/// A config file that could not be read or parsed.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("reading config file {path}: {source}")]
    Read {
        /// File path.
        path: String,
        /// I/O error.
        source: std::io::Error,
    },
    /// The file is not valid TOML for [`Config`].
    #[error("parsing config file {path}: {source}")]
    Parse {
        /// File path.
        path: String,
        /// TOML error (names the offending key).
        source: Box<toml::de::Error>,
    },
    /// A value is out of its valid range.
    #[error("invalid config: {0}")]
    Invalid(String),
}

impl Config {
    /// Reads a TOML file; keys not present keep their defaults, unknown keys are an error.
    pub fn from_toml_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        toml::from_str(&text).map_err(|source| ConfigError::Parse {
            path: path.display().to_string(),
            source: Box::new(source),
        })
    }

    /// Checks ranges that would otherwise fail later and less clearly.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: &str| Err(ConfigError::Invalid(m.to_string()));
        if self.workers == 0 || self.workers > 1024 {
            return bad("workers must be 1..=1024");
        }
        if self.queue > 1_000_000 {
            return bad("queue must be at most 1000000");
        }
        if self.deadline_ms == 0 {
            return bad("deadline_ms must be positive");
        }
        if self.max_body_bytes == 0 || self.max_pixels == 0 || self.max_side == 0 {
            return bad("max_body_bytes, max_pixels and max_side must be positive");
        }
        if self.api_key.as_ref().is_some_and(|k| k.0.len() < 16) {
            return bad("api_key must be at least 16 characters");
        }
        if self.max_parts == 0 {
            return bad("max_parts must be positive");
        }
        if self.max_video_bytes == 0 || self.max_video_seconds == 0 {
            return bad("max_video_bytes and max_video_seconds must be positive");
        }
        if self.intra_threads == 0 || self.intra_threads > 256 {
            return bad("intra_threads must be 1..=256");
        }
        if self
            .metrics_addr
            .is_some_and(|m| m.port() != 0 && m == self.addr)
        {
            return bad("metrics_addr must differ from addr");
        }
        if self.idle_threads > 256 {
            return bad("idle_threads must be 0..=256");
        }
        if let Some(url) = &self.public_url {
            let rest = url
                .strip_prefix("http://")
                .or_else(|| url.strip_prefix("https://"));
            if rest.is_none_or(|r| r.is_empty() || r.starts_with('/')) {
                return bad("public_url must be http://host[:port][/prefix] or https://…");
            }
        }
        if let Some(url) = &self.redis_url
            && redis::Client::open(url.expose()).is_err()
        {
            // The parser's message may quote the URL, password included: say less.
            return bad("redis_url is not a valid redis:// URL");
        }
        Ok(())
    }

    /// The models folder: `models_dir`, else `./models`, else the source tree's `models/`.
    pub fn resolved_models_dir(&self) -> std::path::PathBuf {
        if let Some(dir) = &self.models_dir {
            return dir.clone();
        }
        let local = std::path::PathBuf::from("models");
        if local.join("manifest.toml").is_file() {
            return local;
        }
        std::path::PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../models"))
    }

    /// How many video jobs the shared Redis store may hold unfinished (queued or running,
    /// across replicas): `redis_queue_bytes` of videos at `max_video_bytes` each; at least one.
    pub fn redis_video_jobs(&self) -> usize {
        let by_bytes = self.redis_queue_bytes / (self.max_video_bytes.max(1) as u64);
        usize::try_from(by_bytes).unwrap_or(usize::MAX).max(1)
    }

    /// How many jobs the shared Redis queue may hold: 16 per local queue slot, and no more than
    /// `redis_queue_bytes` of photos at the largest accepted size; at least one.
    pub fn redis_queue_jobs(&self) -> usize {
        let by_count = self.queue.max(1).saturating_mul(16);
        let by_bytes = self.redis_queue_bytes / (self.max_body_bytes.max(1) as u64);
        by_count
            .min(usize::try_from(by_bytes).unwrap_or(usize::MAX))
            .max(1)
    }

    /// `replica_id`, else `<hostname>:<port>`: stable across restarts of one replica (so it
    /// finds its own unfinished jobs), distinct between replicas sharing a host.
    pub fn resolved_replica_id(&self) -> String {
        if let Some(id) = &self.replica_id {
            return id.clone();
        }
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .or_else(|| std::env::var("HOSTNAME").ok())
            .map(|h| h.trim().to_string())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "percept".into());
        format!("{host}:{}", self.addr.port())
    }

    /// The request deadline.
    pub fn deadline(&self) -> Duration {
        Duration::from_millis(self.deadline_ms)
    }

    /// Decoder limits derived from the pixel limits.
    pub fn decode_limits(&self) -> DecodeLimits {
        DecodeLimits {
            max_pixels: self.max_pixels,
            max_side: self.max_side,
            // Room for 16-bit RGBA at the pixel limit plus decoder scratch.
            max_alloc_bytes: self.max_pixels.saturating_mul(8).saturating_add(64 << 20),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shared_queue_is_bounded_by_count_and_by_bytes() {
        let config = Config::default();
        // 32 × 16 = 512 jobs by count; 1 GiB of 25 MiB photos = 40 by bytes.
        assert_eq!(config.redis_queue_jobs(), 40);
        let small = Config {
            queue: 1,
            max_body_bytes: 1024 * 1024,
            ..Config::default()
        };
        assert_eq!(small.redis_queue_jobs(), 16);
        let tiny = Config {
            redis_queue_bytes: 1,
            ..Config::default()
        };
        assert_eq!(tiny.redis_queue_jobs(), 1, "never zero");
    }

    #[test]
    fn toml_overrides_only_given_keys() {
        let config: Config = toml::from_str("queue = 4\nmax_side = 5000\n").unwrap();
        assert_eq!(config.queue, 4);
        assert_eq!(config.max_side, 5000);
        assert_eq!(config.deadline_ms, Config::default().deadline_ms);
        assert_eq!(config.engine, EngineChoice::Auto);
        let config: Config = toml::from_str("engine = \"tract\"").unwrap();
        assert_eq!(config.engine, EngineChoice::Tract);
        assert!(toml::from_str::<Config>("engine = \"gpu\"").is_err());
        assert!(
            toml::from_str::<Config>("queu = 4").is_err(),
            "typos are rejected"
        );
        assert!(
            Config {
                workers: 0,
                ..Config::default()
            }
            .validate()
            .is_err()
        );
    }
}
