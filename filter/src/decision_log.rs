//! Allow and deny decisions, queued per worker and shipped in batches.
//!
//! One callout per request would double the cost of every allowed call; instead the
//! root context's timer ships what accumulated. The queue is bounded so a slow or
//! absent service cannot grow memory without limit; what is dropped is counted and
//! reported in the next batch.

use airlock_protocol::DecisionBatch;
use std::collections::VecDeque;

/// One decision as the service records it.
pub use airlock_protocol::DecisionRecord as Record;

#[derive(Debug)]
pub struct DecisionLog {
    queue: VecDeque<Record>,
    max_queue: usize,
    max_batch: usize,
    /// Dropped since the last successful shipment.
    dropped: u64,
    in_flight: Option<(Vec<Record>, u64)>,
}

impl DecisionLog {
    pub fn new(max_queue: usize, max_batch: usize) -> Self {
        DecisionLog { queue: VecDeque::new(), max_queue, max_batch, dropped: 0, in_flight: None }
    }

    /// Queue a record; returns false (and counts it) when the queue is full.
    pub fn push(&mut self, record: Record) -> bool {
        if self.queue.len() >= self.max_queue {
            self.dropped += 1;
            return false;
        }
        self.queue.push_back(record);
        true
    }

    pub fn len(&self) -> usize {
        self.queue.len()
    }

    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Whether a whole batch is waiting (the glue then ships without waiting a tick).
    pub fn has_full_batch(&self) -> bool {
        self.in_flight.is_none() && self.queue.len() >= self.max_batch
    }

    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Take the next batch as a JSON body, unless one is already in flight.
    pub fn next_batch(&mut self) -> Option<Vec<u8>> {
        if self.in_flight.is_some() || (self.queue.is_empty() && self.dropped == 0) {
            return None;
        }
        let n = self.queue.len().min(self.max_batch);
        let batch = DecisionBatch { dropped: self.dropped, records: self.queue.drain(..n).collect() };
        let body = serde_json::to_vec(&batch).ok();
        self.in_flight = Some((batch.records, batch.dropped));
        self.dropped = 0;
        if body.is_none() {
            self.failed();
        }
        body
    }

    /// The in-flight batch was accepted.
    pub fn delivered(&mut self) {
        self.in_flight = None;
    }

    /// The in-flight batch failed: put it back in front as room allows.
    pub fn failed(&mut self) {
        let Some((records, dropped)) = self.in_flight.take() else { return };
        self.dropped += dropped;
        for r in records.into_iter().rev() {
            if self.queue.len() >= self.max_queue {
                self.dropped += 1;
            } else {
                self.queue.push_front(r);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    fn rec(i: u64) -> Record {
        Record {
            decision_id: format!("dec_{i}"),
            time_ms: i,
            effect: airlock_protocol::Effect::Allow,
            enforced: airlock_protocol::Effect::Allow,
            mode: airlock_protocol::Mode::Enforce,
            rule: "r".into(),
            reason: String::new(),
            risk: None,
            policy_revision: "inline".into(),
            agent: "bot".into(),
            digest: None,
            method: "GET".into(),
            host: "h".into(),
            path: "/".into(),
        }
    }

    #[test]
    fn bounded_with_counted_drops() {
        let mut log = DecisionLog::new(3, 2);
        for i in 0..5 {
            log.push(rec(i));
        }
        assert_eq!((log.len(), log.dropped()), (3, 2));
        let b: serde_json::Value = serde_json::from_slice(&log.next_batch().unwrap()).unwrap();
        assert_eq!(b["dropped"], 2);
        assert_eq!(b["records"].as_array().unwrap().len(), 2);
        assert!(log.next_batch().is_none(), "one batch in flight at a time");
        log.delivered();
        let b: serde_json::Value = serde_json::from_slice(&log.next_batch().unwrap()).unwrap();
        assert_eq!(b["dropped"], 0);
        assert_eq!(b["records"][0]["decision_id"], "dec_2");
    }

    #[test]
    fn a_full_batch_is_reported_only_when_nothing_is_in_flight() {
        let mut log = DecisionLog::new(10, 2);
        log.push(rec(0));
        assert!(!log.has_full_batch());
        log.push(rec(1));
        log.push(rec(2));
        assert!(log.has_full_batch());
        log.next_batch().unwrap();
        assert!(!log.has_full_batch(), "one batch in flight at a time");
        log.delivered();
        assert!(!log.has_full_batch(), "one record left: wait for the timer");
        log.push(rec(3));
        assert!(log.has_full_batch());
    }

    #[test]
    fn failed_batches_return_to_the_front() {
        let mut log = DecisionLog::new(3, 2);
        for i in 0..3 {
            log.push(rec(i));
        }
        log.next_batch().unwrap();
        log.push(rec(3));
        log.push(rec(4)); // queue: 2,3,4 — full
        log.failed(); // 0 and 1 cannot fit back: counted
        assert_eq!((log.len(), log.dropped()), (3, 2));
        let b: serde_json::Value = serde_json::from_slice(&log.next_batch().unwrap()).unwrap();
        assert_eq!(b["dropped"], 2);
        assert_eq!(b["records"][0]["decision_id"], "dec_2");
    }
}
