//! Result images held in memory for the result TTL (the coloured masks `/api/parse` links
//! to, when there is no Redis to share them).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Stored images by id, with the time they were stored.
type Entries = HashMap<String, (Instant, bytes::Bytes)>;

/// Result images held in memory for the result TTL, oldest dropped past a byte budget.
#[derive(Debug)]
pub(crate) struct ImageStore {
    ttl: Duration,
    max_bytes: usize,
    entries: Mutex<Entries>,
}

impl ImageStore {
    pub(crate) fn new(ttl: Duration, max_bytes: usize) -> Self {
        Self {
            ttl,
            max_bytes,
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        // A panic while holding the lock cannot leave the map half-updated (every update is
        // one insert or remove), so a poisoned lock is still usable.
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn put(&self, id: String, bytes: Vec<u8>) {
        let now = Instant::now();
        let mut entries = self.lock();
        entries.retain(|_, (at, _)| now.duration_since(*at) < self.ttl);
        let mut total: usize = entries.values().map(|(_, b)| b.len()).sum::<usize>() + bytes.len();
        while total > self.max_bytes {
            let Some(oldest) = entries
                .iter()
                .min_by_key(|(_, (at, _))| *at)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            if let Some((_, b)) = entries.remove(&oldest) {
                total -= b.len();
            }
        }
        entries.insert(id, (now, bytes::Bytes::from(bytes)));
    }

    /// The stored image; a cheap reference-counted handle, not a copy of the PNG.
    pub(crate) fn get(&self, id: &str) -> Option<bytes::Bytes> {
        let entries = self.lock();
        let (at, bytes) = entries.get(id)?;
        (at.elapsed() < self.ttl).then(|| bytes.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_expire_and_the_budget_drops_the_oldest() {
        let store = ImageStore::new(Duration::from_millis(200), 10);
        let (a, b) = ("a".to_string(), "b".to_string());
        store.put(a.clone(), vec![1; 6]);
        std::thread::sleep(Duration::from_millis(2));
        store.put(b.clone(), vec![2; 6]);
        assert!(store.get(&a).is_none(), "over budget: the oldest goes");
        assert_eq!(store.get(&b).unwrap().as_ref(), &[2u8; 6]);
        std::thread::sleep(Duration::from_millis(250));
        assert!(store.get(&b).is_none(), "expired");
        assert!(store.get("nope").is_none());
    }
}
