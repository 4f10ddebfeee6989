//! Parsed rule sets, kept per process: a stored definition is parsed once, not on every event.
//! Keyed by the definition text itself (with whatever else identifies it), so an edit can never
//! be served stale.

use std::{
    collections::HashMap,
    hash::Hash,
    sync::{Arc, Mutex, OnceLock},
};

/// More distinct definitions than this and the cache starts over.
const CAPACITY: usize = 1024;

pub struct ParseCache<K, T> {
    map: OnceLock<Mutex<HashMap<K, Arc<T>>>>,
}

impl<K: Eq + Hash + Clone, T> Default for ParseCache<K, T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K: Eq + Hash + Clone, T> ParseCache<K, T> {
    pub const fn new() -> Self {
        ParseCache {
            map: OnceLock::new(),
        }
    }

    pub fn get_or_parse<E>(
        &self,
        key: &K,
        parse: impl FnOnce() -> Result<T, E>,
    ) -> Result<Arc<T>, E> {
        let map = self.map.get_or_init(Default::default);
        if let Some(found) = map.lock().ok().and_then(|m| m.get(key).cloned()) {
            return Ok(found);
        }
        let parsed = Arc::new(parse()?);
        if let Ok(mut m) = map.lock() {
            if m.len() >= CAPACITY {
                m.clear();
            }
            m.insert(key.clone(), parsed.clone());
        }
        Ok(parsed)
    }
}
