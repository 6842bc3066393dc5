//! Per-worker state: the configuration, the compiled policy, the decision queue.
//!
//! Envoy runs one VM per worker thread, so this is owned by one thread and shared by
//! the root context and every request context of that worker without locks.

use crate::config::Config;
use crate::decision_log::DecisionLog;
use crate::metrics::Metrics;
use crate::policy::Policy;
use std::time::{SystemTime, UNIX_EPOCH};

pub struct Worker {
    pub config: Config,
    pub policy: Policy,
    pub log: DecisionLog,
    pub metrics: Box<dyn Metrics>,
    /// Where warnings go (Envoy's log in the glue; a buffer in tests).
    pub warn: Box<dyn FnMut(&str)>,
    seq: u64,
}

impl Worker {
    /// Compile the policy for `config`; an error says what is wrong.
    pub fn new(config: Config, metrics: Box<dyn Metrics>, warn: Box<dyn FnMut(&str)>) -> Result<Worker, String> {
        let policy = Policy::compile(&config.policy)?;
        let log = DecisionLog::new(config.decision_log.max_queue, config.decision_log.max_batch);
        Ok(Worker { config, policy, log, metrics, warn, seq: 0 })
    }

    pub fn log_warn(&mut self, msg: &str) {
        (self.warn)(msg)
    }

    /// A decision id for requests without `x-request-id`: unique per worker.
    pub fn next_decision_id(&mut self, now: SystemTime) -> String {
        self.seq += 1;
        let nanos = now.duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
        format!("dec_{nanos:x}_{:x}", self.seq)
    }
}
