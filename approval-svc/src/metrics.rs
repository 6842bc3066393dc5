//! Prometheus text exposition, hand-rolled (a handful of series does not need a crate).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds (seconds) of the audit append latency buckets.
const BUCKETS: [f64; 12] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5];

/// The service's counters.
#[derive(Default)]
pub struct Metrics {
    decisions: Mutex<BTreeMap<String, u64>>,
    outcomes: Mutex<BTreeMap<String, u64>>,
    /// `(channel, result)` → count; result is `sent`, `failed` (an attempt) or `given_up`.
    notifications: Mutex<BTreeMap<(String, String), u64>>,
    approvals_created: AtomicU64,
    redeems: AtomicU64,
    redeem_failures: AtomicU64,
    creates_refused: AtomicU64,
    retries_denied: AtomicU64,
    gateway_auth_failures: AtomicU64,
    append_buckets: [AtomicU64; BUCKETS.len()],
    append_count: AtomicU64,
    append_sum_micros: AtomicU64,
}

fn bump(map: &Mutex<BTreeMap<String, u64>>, key: &str, by: u64) {
    let mut m = map.lock().unwrap_or_else(|p| p.into_inner());
    *m.entry(key.to_string()).or_default() += by;
}

impl Metrics {
    /// A gateway decision record of `effect` was ingested.
    pub fn decision(&self, effect: &str) {
        let effect = if matches!(effect, "allow" | "deny" | "approve") { effect } else { "other" };
        bump(&self.decisions, effect, 1);
    }

    /// An approval reached `status` (approved, denied, expired).
    pub fn outcome(&self, status: &str) {
        bump(&self.outcomes, status, 1);
    }

    /// A notification attempt to `channel` ended with `result` (`sent`, `failed`,
    /// `given_up`).
    pub fn notification(&self, channel: &str, result: &str) {
        let mut m = self.notifications.lock().unwrap_or_else(|p| p.into_inner());
        *m.entry((channel.to_string(), result.to_string())).or_default() += 1;
    }

    /// An approval was created.
    pub fn created(&self) {
        self.approvals_created.fetch_add(1, Ordering::Relaxed);
    }

    /// A create was refused: the agent has too many pending approvals.
    pub fn create_refused(&self) {
        self.creates_refused.fetch_add(1, Ordering::Relaxed);
    }

    /// An identical retry was answered from a recent denial (nothing created).
    pub fn retry_denied(&self) {
        self.retries_denied.fetch_add(1, Ordering::Relaxed);
    }

    /// A redeem succeeded.
    pub fn redeemed(&self) {
        self.redeems.fetch_add(1, Ordering::Relaxed);
    }

    /// A redeem was refused or failed.
    pub fn redeem_failed(&self) {
        self.redeem_failures.fetch_add(1, Ordering::Relaxed);
    }

    /// A gateway request failed signature checks.
    pub fn gateway_auth_failed(&self) {
        self.gateway_auth_failures.fetch_add(1, Ordering::Relaxed);
    }

    /// A durable audit append (its transaction committed) took `d`.
    pub fn audit_append(&self, d: Duration) {
        let secs = d.as_secs_f64();
        for (i, bound) in BUCKETS.iter().enumerate() {
            if secs <= *bound {
                self.append_buckets[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        self.append_count.fetch_add(1, Ordering::Relaxed);
        self.append_sum_micros.fetch_add(u64::try_from(d.as_micros()).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    /// The exposition text, with the current pending count.
    pub fn render(&self, pending: Option<u64>, (synced, deferred): (u64, u64)) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "# HELP airlock_store_commits_total Store transactions committed, by whether the answer waited for an fsync.");
        let _ = writeln!(out, "# TYPE airlock_store_commits_total counter");
        let _ = writeln!(out, "airlock_store_commits_total{{sync=\"before_answer\"}} {synced}");
        let _ = writeln!(out, "airlock_store_commits_total{{sync=\"deferred\"}} {deferred}");
        let _ = writeln!(out, "# HELP airlock_approvals_pending Approvals waiting for reviewers.");
        let _ = writeln!(out, "# TYPE airlock_approvals_pending gauge");
        if let Some(p) = pending {
            let _ = writeln!(out, "airlock_approvals_pending {p}");
        }
        let _ = writeln!(out, "# HELP airlock_decisions_total Gateway decisions ingested, by effect.");
        let _ = writeln!(out, "# TYPE airlock_decisions_total counter");
        for effect in ["allow", "deny", "approve"] {
            let n = self.decisions.lock().map(|m| m.get(effect).copied().unwrap_or(0)).unwrap_or(0);
            let _ = writeln!(out, "airlock_decisions_total{{effect=\"{effect}\"}} {n}");
        }
        let _ = writeln!(out, "# HELP airlock_approval_outcomes_total Approvals decided, by outcome.");
        let _ = writeln!(out, "# TYPE airlock_approval_outcomes_total counter");
        if let Ok(m) = self.outcomes.lock() {
            for (status, n) in m.iter() {
                let _ = writeln!(out, "airlock_approval_outcomes_total{{status=\"{status}\"}} {n}");
            }
        }
        let _ = writeln!(
            out,
            "# HELP airlock_notifications_total Reviewer notifications by channel and result (sent, failed attempt, given up)."
        );
        let _ = writeln!(out, "# TYPE airlock_notifications_total counter");
        if let Ok(m) = self.notifications.lock() {
            for ((channel, result), n) in m.iter() {
                let _ = writeln!(out, "airlock_notifications_total{{channel=\"{channel}\",result=\"{result}\"}} {n}");
            }
        }
        for (name, help, v) in [
            ("airlock_approvals_created_total", "Approvals created.", &self.approvals_created),
            (
                "airlock_approvals_refused_total",
                "Approvals not created: the agent had too many pending.",
                &self.creates_refused,
            ),
            (
                "airlock_approval_retries_denied_total",
                "Identical retries answered from a recent denial (approvals.denied_retry_window).",
                &self.retries_denied,
            ),
            ("airlock_redeems_total", "Successful redeems (credentials handed to the gateway).", &self.redeems),
            ("airlock_redeem_failures_total", "Redeems refused or failed.", &self.redeem_failures),
            (
                "airlock_gateway_auth_failures_total",
                "Gateway requests refused for their signature.",
                &self.gateway_auth_failures,
            ),
        ] {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} counter");
            let _ = writeln!(out, "{name} {}", v.load(Ordering::Relaxed));
        }
        let _ = writeln!(
            out,
            "# HELP airlock_audit_append_seconds Time until a state change and its audit record were durable."
        );
        let _ = writeln!(out, "# TYPE airlock_audit_append_seconds histogram");
        for (i, bound) in BUCKETS.iter().enumerate() {
            let _ = writeln!(
                out,
                "airlock_audit_append_seconds_bucket{{le=\"{bound}\"}} {}",
                self.append_buckets[i].load(Ordering::Relaxed)
            );
        }
        let count = self.append_count.load(Ordering::Relaxed);
        let _ = writeln!(out, "airlock_audit_append_seconds_bucket{{le=\"+Inf\"}} {count}");
        let sum = self.append_sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "airlock_audit_append_seconds_sum {sum}");
        let _ = writeln!(out, "airlock_audit_append_seconds_count {count}");
        out
    }
}
