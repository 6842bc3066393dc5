//! Prometheus text exposition, hand-rolled (a handful of series does not need a crate).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds (seconds) of the audit append latency buckets.
const BUCKETS: [f64; 12] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5];

/// Upper bounds (seconds) of the HTTP request duration buckets: up to a minute, because a
/// gateway create may long-poll for `gateway.max_hold`.
const HTTP_BUCKETS: [f64; 14] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 30.0, 60.0];

/// Requests of one (method, route): counts by status class and a duration histogram.
#[derive(Default)]
struct RouteStats {
    /// `2xx`, `4xx`, … → count.
    by_class: BTreeMap<&'static str, u64>,
    buckets: [u64; HTTP_BUCKETS.len()],
    count: u64,
    sum_seconds: f64,
}

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
    /// `(method, route)` → requests. Both labels are bounded: methods outside the
    /// standard ones and paths no route matched are folded into one value each.
    http: Mutex<BTreeMap<(&'static str, String), RouteStats>>,
}

fn method_label(method: &str) -> &'static str {
    match method {
        "GET" => "GET",
        "HEAD" => "HEAD",
        "POST" => "POST",
        "PUT" => "PUT",
        "PATCH" => "PATCH",
        "DELETE" => "DELETE",
        "OPTIONS" => "OPTIONS",
        _ => "other",
    }
}

fn status_class(status: u16) -> &'static str {
    match status {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
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

    /// An HTTP request was answered. `route` is the router's matched path template
    /// (`/v1/approvals/{id}`), never the raw path, so ids do not become label values;
    /// `None` (nothing matched) is counted as `unmatched`.
    pub fn http_request(&self, method: &str, route: Option<&str>, status: u16, elapsed: Duration) {
        let key = (method_label(method), route.unwrap_or("unmatched").to_string());
        let secs = elapsed.as_secs_f64();
        let mut m = self.http.lock().unwrap_or_else(|p| p.into_inner());
        let stats = m.entry(key).or_default();
        *stats.by_class.entry(status_class(status)).or_default() += 1;
        for (i, bound) in HTTP_BUCKETS.iter().enumerate() {
            if secs <= *bound {
                stats.buckets[i] += 1;
            }
        }
        stats.count += 1;
        stats.sum_seconds += secs;
    }

    fn render_http(&self, out: &mut String) {
        let m = self.http.lock().unwrap_or_else(|p| p.into_inner());
        let _ = writeln!(
            out,
            "# HELP airlock_http_requests_total HTTP requests answered, by method, matched route and status class."
        );
        let _ = writeln!(out, "# TYPE airlock_http_requests_total counter");
        for ((method, route), stats) in m.iter() {
            for (class, n) in &stats.by_class {
                let _ = writeln!(
                    out,
                    "airlock_http_requests_total{{method=\"{method}\",route=\"{route}\",status=\"{class}\"}} {n}"
                );
            }
        }
        let _ = writeln!(
            out,
            "# HELP airlock_http_request_duration_seconds Time to answer an HTTP request (headers), by method and matched route; gateway long-polls included."
        );
        let _ = writeln!(out, "# TYPE airlock_http_request_duration_seconds histogram");
        for ((method, route), stats) in m.iter() {
            let labels = format!("method=\"{method}\",route=\"{route}\"");
            for (i, bound) in HTTP_BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "airlock_http_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {}",
                    stats.buckets[i]
                );
            }
            let _ =
                writeln!(out, "airlock_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}", stats.count);
            let _ = writeln!(out, "airlock_http_request_duration_seconds_sum{{{labels}}} {}", stats.sum_seconds);
            let _ = writeln!(out, "airlock_http_request_duration_seconds_count{{{labels}}} {}", stats.count);
        }
    }

    /// The exposition text, with the current pending count.
    pub fn render(&self, pending: Option<u64>, (synced, deferred): (u64, u64)) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "# HELP airlock_build_info The running build: always 1, its version as a label.");
        let _ = writeln!(out, "# TYPE airlock_build_info gauge");
        let _ = writeln!(out, "airlock_build_info{{version=\"{}\"}} 1", env!("CARGO_PKG_VERSION"));
        self.render_http(&mut out);
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// Every `# TYPE` family the service exposes.
    fn families(text: &str) -> Vec<String> {
        text.lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .filter_map(|l| l.split(' ').next())
            .map(String::from)
            .collect()
    }

    #[test]
    fn http_requests_are_counted_by_route_template_and_status_class() {
        let m = Metrics::default();
        m.http_request("POST", Some("/v1/approvals/{id}/approve"), 200, Duration::from_millis(3));
        m.http_request("POST", Some("/v1/approvals/{id}/approve"), 409, Duration::from_millis(2));
        m.http_request("POST", Some("/v1/approvals/{id}/approve"), 404, Duration::from_secs(45));
        m.http_request("BREW", None, 404, Duration::from_millis(1));
        let text = m.render(Some(0), (0, 0));
        assert!(text.contains(
            r#"airlock_http_requests_total{method="POST",route="/v1/approvals/{id}/approve",status="4xx"} 2"#
        ));
        assert!(text.contains(
            r#"airlock_http_requests_total{method="POST",route="/v1/approvals/{id}/approve",status="2xx"} 1"#
        ));
        assert!(text.contains(r#"airlock_http_requests_total{method="other",route="unmatched",status="4xx"} 1"#));
        let labels = r#"method="POST",route="/v1/approvals/{id}/approve""#;
        assert!(text.contains(&format!("airlock_http_request_duration_seconds_bucket{{{labels},le=\"0.005\"}} 2")));
        assert!(text.contains(&format!("airlock_http_request_duration_seconds_bucket{{{labels},le=\"30\"}} 2")));
        assert!(text.contains(&format!("airlock_http_request_duration_seconds_bucket{{{labels},le=\"60\"}} 3")));
        assert!(text.contains(&format!("airlock_http_request_duration_seconds_count{{{labels}}} 3")));
    }

    #[test]
    fn build_info_names_the_version() {
        let text = Metrics::default().render(None, (0, 0));
        assert!(text.contains(&format!("airlock_build_info{{version=\"{}\"}} 1", env!("CARGO_PKG_VERSION"))));
    }

    #[test]
    fn every_metric_family_is_documented() {
        let m = Metrics::default();
        m.http_request("GET", Some("/healthz"), 200, Duration::from_millis(1));
        let docs = include_str!("../../docs/approval-service.md");
        let missing: Vec<String> =
            families(&m.render(Some(1), (1, 1))).into_iter().filter(|f| !docs.contains(&format!("`{f}"))).collect();
        assert!(missing.is_empty(), "metric families missing from docs/approval-service.md: {missing:?}");
    }
}
