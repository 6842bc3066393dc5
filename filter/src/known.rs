//! The actions this worker knows the approval service holds an approval for, so that a
//! repeated request only asks to find it — digest, body hash and the small request
//! facts — instead of sending its whole (redacted) body again (`docs/protocol.md`,
//! "Finding an existing approval").
//!
//! Only a hint: the service decides every answer. When the hint is stale (the approval
//! expired, was used up, or this worker never saw it) the find is answered 404 and the
//! filter sends the full create, as it would have without the hint. So a wrong entry
//! costs one round trip, never a decision.

use std::collections::{HashSet, VecDeque};

/// (agent id, action digest) pairs, the oldest forgotten first beyond a bound.
#[derive(Debug)]
pub struct KnownApprovals {
    set: HashSet<(String, String)>,
    order: VecDeque<(String, String)>,
    max: usize,
}

impl KnownApprovals {
    pub fn new(max: usize) -> KnownApprovals {
        KnownApprovals { set: HashSet::new(), order: VecDeque::new(), max }
    }

    /// Whether the service was seen holding an approval for `agent` and `digest`.
    pub fn contains(&self, agent: &str, digest: &str) -> bool {
        // A tuple of borrowed strings cannot look up owned keys; the set is small and
        // the key built only on the approve path.
        !self.set.is_empty() && self.set.contains(&(agent.to_string(), digest.to_string()))
    }

    pub fn remember(&mut self, agent: &str, digest: &str) {
        if self.max == 0 || self.contains(agent, digest) {
            return;
        }
        while self.order.len() >= self.max {
            if let Some(old) = self.order.pop_front() {
                self.set.remove(&old);
            }
        }
        let key = (agent.to_string(), digest.to_string());
        self.set.insert(key.clone());
        self.order.push_back(key);
    }

    pub fn forget(&mut self, agent: &str, digest: &str) {
        let key = (agent.to_string(), digest.to_string());
        if self.set.remove(&key) {
            self.order.retain(|k| k != &key);
        }
    }

    pub fn len(&self) -> usize {
        self.set.len()
    }

    pub fn is_empty(&self) -> bool {
        self.set.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_forgets_and_stays_bounded() {
        let mut k = KnownApprovals::new(2);
        assert!(!k.contains("a", "d1"));
        k.remember("a", "d1");
        k.remember("a", "d1");
        assert!(k.contains("a", "d1") && k.len() == 1);
        // Another agent with the same digest is another action.
        assert!(!k.contains("b", "d1"));
        k.remember("a", "d2");
        k.remember("a", "d3");
        assert_eq!(k.len(), 2);
        assert!(!k.contains("a", "d1"), "the oldest goes first");
        assert!(k.contains("a", "d2") && k.contains("a", "d3"));
        k.forget("a", "d2");
        assert!(!k.contains("a", "d2") && k.len() == 1);
        let mut off = KnownApprovals::new(0);
        off.remember("a", "d1");
        assert!(off.is_empty());
    }
}
