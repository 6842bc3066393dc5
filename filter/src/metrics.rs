//! The counters and histogram the filter reports (Envoy stats through proxy-wasm
//! metrics). The core names what happened; the glue maps it to host metric ids.

/// Something worth counting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Counter {
    /// Enforced outcome: the request continued.
    Allow,
    /// Enforced outcome: refused by policy (or by the filter before policy).
    Deny,
    /// The policy asked for approval.
    Approve,
    /// Shadow mode let through what the policy would have denied or held.
    ShadowAllow,
    /// The policy failed: undefined, malformed, evaluation error or budget.
    PolicyError,
    /// A call to the approval service failed or gave an unusable answer.
    CalloutFailure,
    /// An approved request went upstream with a minted credential.
    CredentialInjected,
    /// Decision records dropped because the queue was full.
    LogDropped,
    /// Decision-log batches that failed to ship.
    LogShipFailure,
    /// A policy bundle verified, compiled and now serves.
    BundleLoaded,
    /// A policy bundle was refused (signature, hash, parse, compile, entrypoint).
    BundleRejected,
    /// A bundle poll got no usable answer (unreachable, timeout, unexpected status).
    BundleFetchFailure,
    /// An allow decision came from the decision cache instead of an evaluation.
    CacheHit,
}

impl Counter {
    pub const ALL: [Counter; 13] = [
        Counter::Allow,
        Counter::Deny,
        Counter::Approve,
        Counter::ShadowAllow,
        Counter::PolicyError,
        Counter::CalloutFailure,
        Counter::CredentialInjected,
        Counter::LogDropped,
        Counter::LogShipFailure,
        Counter::BundleLoaded,
        Counter::BundleRejected,
        Counter::BundleFetchFailure,
        Counter::CacheHit,
    ];

    /// Stat name (Envoy shows it as `wasmcustom.<name>`).
    pub fn name(self) -> &'static str {
        match self {
            Counter::Allow => "airlock.decisions.allow",
            Counter::Deny => "airlock.decisions.deny",
            Counter::Approve => "airlock.decisions.approve",
            Counter::ShadowAllow => "airlock.decisions.shadow_allow",
            Counter::PolicyError => "airlock.policy.errors",
            Counter::CalloutFailure => "airlock.callout.failures",
            Counter::CredentialInjected => "airlock.credentials.injected",
            Counter::LogDropped => "airlock.decision_log.dropped",
            Counter::LogShipFailure => "airlock.decision_log.ship_failures",
            Counter::BundleLoaded => "airlock.bundle.loaded",
            Counter::BundleRejected => "airlock.bundle.rejected",
            Counter::BundleFetchFailure => "airlock.bundle.fetch_failures",
            Counter::CacheHit => "airlock.decision_cache.hits",
        }
    }
}

/// Name of the evaluation-time histogram (microseconds).
pub const EVAL_TIME_US: &str = "airlock.policy.eval_time_us";

/// Where counts go.
pub trait Metrics {
    fn count(&mut self, counter: Counter);
    fn eval_time_us(&mut self, micros: u64);
}

/// Counts kept in memory: native tests and benchmarks.
#[derive(Debug, Default, Clone)]
pub struct MemoryMetrics {
    pub counts: std::collections::BTreeMap<Counter, u64>,
    pub eval_times_us: Vec<u64>,
}

impl MemoryMetrics {
    pub fn get(&self, c: Counter) -> u64 {
        self.counts.get(&c).copied().unwrap_or(0)
    }
}

impl Metrics for MemoryMetrics {
    fn count(&mut self, counter: Counter) {
        *self.counts.entry(counter).or_default() += 1;
    }
    fn eval_time_us(&mut self, micros: u64) {
        // Bounded: benchmarks run millions of evaluations.
        if self.eval_times_us.len() < 10_000 {
            self.eval_times_us.push(micros);
        }
    }
}
