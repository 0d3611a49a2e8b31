//! A small in-memory cache with a time-to-live, for what almost every request reads and rarely
//! changes: verified API keys (by secret hash), org units, event-type registries. It spares each
//! request a Redis round trip; a change made through another gateway is seen within the TTL
//! (`LEADSTREAM_KEY_CACHE_TTL`), a change made through this one at once (it invalidates).

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::RwLock;
use std::time::{Duration, Instant};

/// Entries beyond this are dropped wholesale (expired first) so hostile input cannot grow it.
const MAX_ENTRIES: usize = 100_000;

pub struct TtlCache<K, V> {
    ttl: Duration,
    map: RwLock<HashMap<K, (V, Instant)>>,
}

impl<K: Eq + Hash + Clone, V: Clone> TtlCache<K, V> {
    pub fn new(ttl: Duration) -> Self {
        TtlCache {
            ttl,
            map: RwLock::new(HashMap::new()),
        }
    }

    /// The cached value, if present and fresh.
    pub fn get(&self, key: &K) -> Option<V> {
        let map = self.map.read().ok()?;
        match map.get(key) {
            Some((v, at)) if at.elapsed() < self.ttl => Some(v.clone()),
            _ => None,
        }
    }

    pub fn insert(&self, key: K, value: V) {
        if self.ttl.is_zero() {
            return;
        }
        if let Ok(mut map) = self.map.write() {
            if map.len() >= MAX_ENTRIES {
                let ttl = self.ttl;
                map.retain(|_, (_, at)| at.elapsed() < ttl);
                if map.len() >= MAX_ENTRIES {
                    map.clear();
                }
            }
            map.insert(key, (value, Instant::now()));
        }
    }

    pub fn remove(&self, key: &K) {
        if let Ok(mut map) = self.map.write() {
            map.remove(key);
        }
    }

    /// Drop every entry whose value matches (e.g. all cached hashes of a deleted key id).
    pub fn remove_where(&self, pred: impl Fn(&V) -> bool) {
        if let Ok(mut map) = self.map.write() {
            map.retain(|_, (v, _)| !pred(v));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_expire_and_can_be_removed() {
        let c: TtlCache<String, u32> = TtlCache::new(Duration::from_secs(60));
        c.insert("a".into(), 1);
        c.insert("b".into(), 2);
        assert_eq!(c.get(&"a".into()), Some(1));
        c.remove_where(|v| *v == 1);
        assert_eq!(c.get(&"a".into()), None);
        assert_eq!(c.get(&"b".into()), Some(2));
        let zero: TtlCache<String, u32> = TtlCache::new(Duration::ZERO);
        zero.insert("a".into(), 1);
        assert_eq!(zero.get(&"a".into()), None);
    }
}
