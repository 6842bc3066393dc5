//! Clicks already handled, so a click Slack re-sends (it retries when our answer is slow)
//! is answered without deciding twice. Bounded in size and age: the store refuses a
//! second vote by the same reviewer anyway, this only spares the work and the second
//! "already reviewed" message.

use std::collections::HashMap;
use std::sync::Mutex;

/// Longest a click is remembered: past the signature window a retry is refused anyway.
const HORIZON_SECS: i64 = 2 * super::signature::MAX_SKEW_SECS;
/// Most clicks remembered.
const CAPACITY: usize = 4096;

/// Recently handled clicks (key → first seen, Unix seconds).
#[derive(Default)]
pub struct SeenClicks {
    seen: Mutex<HashMap<String, i64>>,
}

impl SeenClicks {
    /// Records `key`; false if it was seen within the horizon (a retry).
    pub fn first(&self, key: &str, now_secs: i64) -> bool {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(at) = seen.get(key) {
            if now_secs - *at <= HORIZON_SECS {
                return false;
            }
        }
        if seen.len() >= CAPACITY {
            seen.retain(|_, at| now_secs - *at <= HORIZON_SECS);
        }
        if seen.len() >= CAPACITY {
            // A flood of distinct signed clicks: forget the oldest rather than grow.
            if let Some(oldest) = seen.iter().min_by_key(|(_, at)| **at).map(|(k, _)| k.clone()) {
                seen.remove(&oldest);
            }
        }
        seen.insert(key.to_string(), now_secs);
        true
    }

    /// Forgets `key`: nothing was recorded, so Slack's retry must be handled afresh.
    pub fn forget(&self, key: &str) {
        self.seen.lock().unwrap_or_else(|p| p.into_inner()).remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_retry_is_seen_until_the_horizon_and_the_map_stays_bounded() {
        let s = SeenClicks::default();
        assert!(s.first("a", 0));
        assert!(!s.first("a", HORIZON_SECS));
        assert!(s.first("a", HORIZON_SECS + 1));
        s.forget("a");
        assert!(s.first("a", HORIZON_SECS + 1));
        for i in 0..(CAPACITY + 10) {
            assert!(s.first(&format!("k{i}"), 1000));
        }
        assert!(s.seen.lock().unwrap_or_else(|p| p.into_inner()).len() <= CAPACITY);
    }
}
