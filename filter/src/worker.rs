//! Per-worker state: the configuration, the compiled policy, the decision queue.
//!
//! Envoy runs one VM per worker thread, so this is owned by one thread and shared by
//! the root context and every request context of that worker without locks.

use crate::cache::{CachedDecision, DecisionCache};
use crate::config::Config;
use crate::decision_log::DecisionLog;
use crate::known::KnownApprovals;
use crate::metrics::Metrics;
use crate::policy::ActivePolicy;
use std::time::{SystemTime, UNIX_EPOCH};

/// Actions remembered as held by the approval service: a bound on memory (two short
/// strings each), not on correctness — a forgotten one only sends its body once more.
const KNOWN_APPROVALS: usize = 1024;

pub struct Worker {
    pub config: Config,
    /// `None` until a bundle verifies and compiles: then every request is denied.
    pub policy: Option<ActivePolicy>,
    pub log: DecisionLog,
    pub metrics: Box<dyn Metrics>,
    /// Where warnings go (Envoy's log in the glue; a buffer in tests).
    pub warn: Box<dyn FnMut(&str)>,
    /// Allow decisions of the serving policy (`crate::cache`).
    pub cache: DecisionCache<CachedDecision>,
    /// Actions the approval service holds an approval for (`crate::known`).
    pub known: KnownApprovals,
    seq: u64,
}

impl Worker {
    /// Compile the policy for `config`; an error says what is wrong. An inline bundle
    /// must verify and compile here (a bad one refuses the configuration); a polled
    /// one arrives later, and until it does the worker denies.
    pub fn new(config: Config, mut metrics: Box<dyn Metrics>, warn: Box<dyn FnMut(&str)>) -> Result<Worker, String> {
        let policy = match &config.policy.bundle {
            None => Some(ActivePolicy::inline(&config.policy)?),
            Some(b) => match &b.inline {
                Some(bytes) => {
                    let accepted = crate::bundle::activate(bytes, &config.policy)
                        .map_err(|e| format!("policy.bundle.base64: {e}"))?;
                    metrics.count(crate::metrics::Counter::BundleLoaded);
                    Some(accepted.active)
                }
                None => None,
            },
        };
        let log = DecisionLog::new(config.decision_log.max_queue, config.decision_log.max_batch);
        let cache = DecisionCache::new(config.decision_cache_entries);
        let known = KnownApprovals::new(KNOWN_APPROVALS);
        let mut w = Worker { config, policy, log, metrics, warn, cache, known, seq: 0 };
        w.log_cache_plan();
        Ok(w)
    }

    /// Serve `active` from now on. Cached decisions of the previous policy are
    /// dropped; they could not match anyway (their keys carry its generation).
    pub fn set_policy(&mut self, active: ActivePolicy) {
        self.policy = Some(active);
        self.cache.clear();
        self.log_cache_plan();
    }

    /// Say once per policy why its decisions are not cached, when they are not.
    fn log_cache_plan(&mut self) {
        let why = match self.policy.as_ref().map(|p| p.policy.cache_plan()) {
            Some(crate::cache::Plan::Off(why)) if self.cache.enabled() => why.clone(),
            _ => return,
        };
        self.log_warn(&format!("decision cache off for revision `{}`: {why}", self.policy_revision()));
    }

    /// The revision serving now, as decision records carry it.
    pub fn policy_revision(&self) -> &str {
        self.policy.as_ref().map(|p| p.revision.as_str()).unwrap_or("none")
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
