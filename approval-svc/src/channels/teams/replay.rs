//! Retried invokes: Teams re-sends an `invoke` it got no timely answer for, with the same
//! activity id. A retry must not be counted again (the store would refuse a second vote
//! of the same reviewer anyway) and should see the card as it stands.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long an activity id is remembered (Teams retries within seconds).
const TTL: Duration = Duration::from_secs(15 * 60);
/// Most ids remembered; the oldest are dropped first, so memory stays bounded however
/// many (verified) activities arrive.
const CAPACITY: usize = 10_000;

/// Activity ids seen recently.
#[derive(Default)]
pub struct SeenActivities {
    seen: Mutex<HashMap<String, Instant>>,
}

impl SeenActivities {
    /// Records `id`; false if it was already seen within the TTL (a retry).
    pub fn first_time(&self, id: &str) -> bool {
        let now = Instant::now();
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if seen.get(id).is_some_and(|at| now.duration_since(*at) < TTL) {
            return false;
        }
        if seen.len() >= CAPACITY {
            seen.retain(|_, at| now.duration_since(*at) < TTL);
            while seen.len() >= CAPACITY {
                let Some(oldest) = seen.iter().min_by_key(|(_, at)| **at).map(|(k, _)| k.clone()) else { break };
                seen.remove(&oldest);
            }
        }
        seen.insert(id.to_string(), now);
        true
    }

    /// Forgets `id`: its handling recorded nothing (e.g. the store failed), so a retry
    /// must be handled afresh.
    pub fn forget(&self, id: &str) {
        self.seen.lock().unwrap_or_else(|p| p.into_inner()).remove(id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_retry_is_recognised_until_forgotten_and_memory_is_bounded() {
        let s = SeenActivities::default();
        assert!(s.first_time("a"));
        assert!(!s.first_time("a"));
        s.forget("a");
        assert!(s.first_time("a"));
        for i in 0..(CAPACITY + 10) {
            s.first_time(&format!("id-{i}"));
        }
        assert!(s.seen.lock().map(|m| m.len()).unwrap_or(0) <= CAPACITY);
    }
}
