//! The result cache: identical (task, options, image bytes) are answered from memory instead
//! of being run again (DESIGN §3 "cache 256 MiB").
//!
//! Every task is a deterministic function of its image and options, so a cached result is the
//! result. The key is a blake3 hash, which makes a collision between two different inputs
//! practically impossible while costing ~1 ms per 4 MB of image.

use std::sync::Arc;

use percept_core::OutputFormat;

use crate::Options;
use percept_tasks::Executed;

/// A 256-bit content hash of one request's task, options, output format and image bytes.
pub(crate) type CacheKey = [u8; 32];

/// Whether a response came from the cache, for the `x-cache` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CacheStatus {
    /// Served from the cache without running the task.
    Hit,
    /// Run, and stored for next time.
    Miss,
    /// The cache is disabled (`cache_bytes = 0`); no header is sent.
    Off,
}

impl CacheStatus {
    /// The `x-cache` header value, if the cache is on.
    pub(crate) fn header(self) -> Option<&'static str> {
        match self {
            CacheStatus::Hit => Some("hit"),
            CacheStatus::Miss => Some("miss"),
            CacheStatus::Off => None,
        }
    }
}

#[derive(Clone)]
struct Entry {
    executed: Arc<Executed>,
    weight: u32,
}

/// A byte-bounded cache (moka's TinyLFU admission, LRU eviction) of finished results. Clones
/// share one store.
#[derive(Clone)]
pub(crate) struct ResultCache {
    inner: Option<moka::sync::Cache<CacheKey, Entry>>,
}

impl std::fmt::Debug for ResultCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResultCache")
            .field("enabled", &self.inner.is_some())
            .field("bytes", &self.weighted_bytes())
            .finish()
    }
}

impl ResultCache {
    /// A cache holding at most `max_bytes` of results; 0 disables it.
    pub(crate) fn new(max_bytes: u64) -> Self {
        let inner = (max_bytes > 0).then(|| {
            moka::sync::Cache::builder()
                .max_capacity(max_bytes)
                .weigher(|_: &CacheKey, entry: &Entry| entry.weight)
                .build()
        });
        Self { inner }
    }

    /// Whether results are cached at all.
    pub(crate) fn enabled(&self) -> bool {
        self.inner.is_some()
    }

    /// The key of one request, or `None` when the cache is off (so nothing is hashed).
    pub(crate) fn key(
        &self,
        task: &str,
        options: &Options,
        format: OutputFormat,
        bytes: &[u8],
    ) -> Option<CacheKey> {
        self.inner.as_ref()?;
        let format = match format {
            OutputFormat::Png => "png".to_string(),
            OutputFormat::Jpeg { quality } => format!("jpeg:{quality}"),
        };
        let mut hasher = blake3::Hasher::new();
        // Length-prefixed fields: no two different (task, options, format) can hash the same
        // byte stream by shifting text from one field into the next.
        for field in [task, options.canonical().as_str(), format.as_str()] {
            hasher.update(&(field.len() as u64).to_le_bytes());
            hasher.update(field.as_bytes());
        }
        hasher.update(bytes);
        Some(*hasher.finalize().as_bytes())
    }

    /// Runs `job` on `bytes` and caches a success under `key`; meant for a worker thread, so
    /// the copy into the cache happens off the async runtime.
    pub(crate) fn execute(
        &self,
        key: Option<CacheKey>,
        job: percept_tasks::PreparedJob,
        bytes: &[u8],
        limits: &percept_core::DecodeLimits,
        render: percept_tasks::Render,
    ) -> Result<Executed, crate::ApiError> {
        let executed = percept_tasks::execute(job, bytes, limits, render)?;
        if let Some(key) = key {
            self.insert(key, &executed);
        }
        Ok(executed)
    }

    /// The cached result for `key`.
    pub(crate) fn get(&self, key: &CacheKey) -> Option<Arc<Executed>> {
        self.inner.as_ref()?.get(key).map(|e| e.executed)
    }

    /// Stores a result; its weight is its encoded image plus its JSON text.
    pub(crate) fn insert(&self, key: CacheKey, executed: &Executed) {
        let Some(inner) = &self.inner else { return };
        let json = serde_json::to_vec(&executed.json).map_or(0, |v| v.len());
        let bytes = executed.image.as_ref().map_or(0, Vec::len) + json + 64;
        let weight = u32::try_from(bytes).unwrap_or(u32::MAX);
        inner.insert(
            key,
            Entry {
                executed: Arc::new(executed.clone()),
                weight,
            },
        );
    }

    /// Drops every entry: after a model reload, old results must not be served.
    pub(crate) fn clear(&self) {
        if let Some(inner) = &self.inner {
            inner.invalidate_all();
        }
    }

    /// Bytes held now (moka applies evictions lazily; this runs its pending housekeeping).
    pub(crate) fn weighted_bytes(&self) -> u64 {
        self.inner.as_ref().map_or(0, |inner| {
            inner.run_pending_tasks();
            inner.weighted_size()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use percept_tasks::Stages;

    fn executed(image_len: usize) -> Executed {
        Executed {
            json: serde_json::Map::new(),
            image: Some(vec![7; image_len]),
            format: OutputFormat::Png,
            stages: Stages::default(),
        }
    }

    #[test]
    fn keys_differ_by_every_part() {
        let cache = ResultCache::new(1 << 20);
        let mut a = Options::new();
        a.insert_text("size", "5");
        let mut b = Options::new();
        b.insert_text("size", "6");
        let k = |task: &str, o: &Options, f, bytes: &[u8]| cache.key(task, o, f, bytes).unwrap();
        let base = k("art/oil", &a, OutputFormat::Png, b"img");
        let same = a.clone();
        assert_eq!(base, k("art/oil", &same, OutputFormat::Png, b"img"));
        assert_ne!(base, k("art/oil", &b, OutputFormat::Png, b"img"));
        assert_ne!(base, k("art/pencil", &a, OutputFormat::Png, b"img"));
        assert_ne!(
            base,
            k("art/oil", &a, OutputFormat::Jpeg { quality: 90 }, b"img")
        );
        assert_ne!(base, k("art/oil", &a, OutputFormat::Png, b"img2"));
    }

    #[test]
    fn bounded_by_bytes_and_off_at_zero() {
        let cache = ResultCache::new(10_000);
        for i in 0..20u8 {
            cache.insert([i; 32], &executed(1_000));
        }
        assert!(
            cache.weighted_bytes() <= 10_000,
            "{}",
            cache.weighted_bytes()
        );
        let off = ResultCache::new(0);
        assert!(
            off.key("t", &Options::new(), OutputFormat::Png, b"x")
                .is_none()
        );
        off.insert([0; 32], &executed(10));
        assert!(off.get(&[0; 32]).is_none());
        assert_eq!(off.weighted_bytes(), 0);
    }
}
