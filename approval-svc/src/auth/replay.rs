//! A bounded memory of keys seen recently: how retried or replayed callbacks are told
//! apart from new ones (signed gateway redeems, Teams invoke activities, Slack clicks).
//! Entries older than the horizon are forgotten once the map reaches its capacity. What
//! happens when live entries alone fill it depends on what a forgotten key costs: see
//! [`RecentlySeen::bounded`] and [`RecentlySeen::exact`].

use std::collections::HashMap;
use std::sync::Mutex;

/// Keys seen within `horizon_secs`, at most `capacity` of them.
pub struct RecentlySeen {
    horizon_secs: i64,
    capacity: usize,
    evict_live: bool,
    seen: Mutex<HashMap<String, i64>>,
}

impl RecentlySeen {
    /// At most `capacity` keys: when live keys fill it, the oldest is forgotten. For
    /// deduplicating retries, where a forgotten key only costs a duplicate the store
    /// refuses anyway.
    pub fn bounded(horizon_secs: i64, capacity: usize) -> RecentlySeen {
        RecentlySeen { horizon_secs, capacity: capacity.max(1), evict_live: true, seen: Mutex::new(HashMap::new()) }
    }

    /// Never forgets a key within the horizon (stale ones are pruned from `prune_at`
    /// entries on). For replay protection, where a forgotten key would let a replay
    /// through; memory is bounded by the horizon times the rate of valid requests.
    pub fn exact(horizon_secs: i64, prune_at: usize) -> RecentlySeen {
        RecentlySeen { horizon_secs, capacity: prune_at.max(1), evict_live: false, seen: Mutex::new(HashMap::new()) }
    }

    /// Records `key` at `now_secs`; false if it was already seen within the horizon.
    pub fn first(&self, key: &str, now_secs: i64) -> bool {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if seen.get(key).is_some_and(|at| now_secs - *at <= self.horizon_secs) {
            return false;
        }
        if seen.len() >= self.capacity {
            seen.retain(|_, at| now_secs - *at <= self.horizon_secs);
        }
        while self.evict_live && seen.len() >= self.capacity {
            let Some(oldest) = seen.iter().min_by_key(|(_, at)| **at).map(|(k, _)| k.clone()) else { break };
            seen.remove(&oldest);
        }
        seen.insert(key.to_string(), now_secs);
        true
    }

    /// Forgets `key`: a callback that changed nothing may be retried as sent.
    pub fn forget(&self, key: &str) {
        self.seen.lock().unwrap_or_else(|p| p.into_inner()).remove(key);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.seen.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_seen_until_the_horizon_or_forgotten_and_memory_is_bounded() {
        let s = RecentlySeen::bounded(10, 100);
        assert!(s.first("a", 0));
        assert!(!s.first("a", 10));
        assert!(s.first("a", 11));
        s.forget("a");
        assert!(s.first("a", 11));
        for i in 0..110 {
            assert!(s.first(&format!("k{i}"), 12));
        }
        assert!(s.len() <= 100);
    }

    #[test]
    fn exact_memory_never_forgets_a_live_key() {
        let s = RecentlySeen::exact(10, 4);
        for i in 0..8 {
            assert!(s.first(&format!("k{i}"), 0));
        }
        assert!((0..8).all(|i| !s.first(&format!("k{i}"), 5)), "a live key was forgotten");
        assert!(s.first("new", 20));
        assert_eq!(s.len(), 1, "stale keys are pruned once past the threshold");
    }
}
