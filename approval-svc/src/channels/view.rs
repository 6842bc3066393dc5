//! The one picture of an approval every channel renders: what the agent intends (method,
//! host, path, query, the body as the gateway redacted it), why the policy holds it, who
//! it is for, and where the review stands.

use serde_json::Value;

use crate::lifecycle::{Status, Vote};
use crate::store::Approval;

/// One counted review, for "approved by whom, when": the store's record as is.
pub use crate::store::ReviewRecord as ReviewLine;

/// An approval as reviewers see it.
#[derive(Clone, Debug)]
pub struct ApprovalView {
    /// `apr_…`.
    pub id: String,
    /// Where it stands.
    pub status: Status,
    /// The policy's reason (why a human must look).
    pub reason: String,
    /// The policy's risk label (`high`, ...), empty when unset.
    pub risk: String,
    /// The rule that asked for approval, empty when unset.
    pub rule: String,
    /// The requesting agent.
    pub agent: String,
    /// The agent's owner.
    pub owner: Option<String>,
    /// HTTP method.
    pub method: String,
    /// Upstream host.
    pub host: String,
    /// Path (without the query).
    pub path: String,
    /// Query as the gateway parsed it (`{"k": ["v", ...]}`), `Null` when none.
    pub query: Value,
    /// Body after the policy's `redact` masking; `Null` when not captured.
    pub body: Value,
    /// Action digest.
    pub digest: String,
    /// Deadline (ms since the epoch).
    pub expires_ms: i64,
    /// Decided at.
    pub decided_ms: Option<i64>,
    /// Distinct approvals needed.
    pub quorum: u32,
    /// Approver groups named by the policy.
    pub groups: Vec<String>,
    /// Reviews so far, oldest first.
    pub reviews: Vec<ReviewLine>,
}

fn text(a: &Approval, pointer: &str) -> String {
    a.create.pointer(pointer).and_then(Value::as_str).unwrap_or_default().to_string()
}

impl ApprovalView {
    /// The view of a stored approval.
    pub fn of(a: &Approval) -> ApprovalView {
        let path = text(a, "/request/path");
        let path = path.split_once('?').map_or(path.as_str(), |(p, _)| p).to_string();
        ApprovalView {
            id: a.id.clone(),
            status: a.status,
            reason: text(a, "/policy/reason"),
            risk: text(a, "/policy/risk"),
            rule: text(a, "/policy/rule"),
            agent: a.agent.clone(),
            owner: a.create.pointer("/agent/owner").and_then(Value::as_str).map(str::to_string),
            method: text(a, "/request/method"),
            host: a.host(),
            path,
            query: a.create.pointer("/request/query").cloned().unwrap_or(Value::Null),
            body: a.create.pointer("/request/body").cloned().unwrap_or(Value::Null),
            digest: a.digest.clone(),
            expires_ms: a.expires_ms,
            decided_ms: a.decided_ms,
            quorum: a.quorum,
            groups: a.groups(),
            reviews: a.reviews.clone(),
        }
    }

    /// Approvals counted so far.
    pub fn approvals(&self) -> usize {
        self.reviews.iter().filter(|r| r.vote == Vote::Approve).count()
    }

    /// Whether reviewers can still act on it.
    pub fn is_open(&self) -> bool {
        self.status == Status::Pending
    }

    /// One-line title: `Approve POST api.example.com/v1/exports?`.
    pub fn title(&self) -> String {
        format!("{} {}{}", self.method, self.host, self.path)
    }

    /// The query in `k=v&k=v` form for display (values as the gateway saw them).
    pub fn query_text(&self) -> String {
        let Some(map) = self.query.as_object() else { return String::new() };
        let mut parts = Vec::new();
        for (k, vs) in map {
            match vs {
                Value::Array(vs) => parts.extend(vs.iter().map(|v| format!("{k}={}", v.as_str().unwrap_or_default()))),
                Value::String(v) => parts.push(format!("{k}={v}")),
                _ => parts.push(k.clone()),
            }
        }
        parts.join("&")
    }

    /// The (redacted) body pretty-printed, cut at `max` characters for chat limits.
    pub fn body_text(&self, max: usize) -> String {
        if self.body.is_null() {
            return String::new();
        }
        let full = serde_json::to_string_pretty(&self.body).unwrap_or_default();
        if full.chars().count() <= max {
            return full;
        }
        let mut cut: String = full.chars().take(max).collect();
        cut.push_str("\n… (truncated)");
        cut
    }

    /// Human status line: `pending (1/2 approvals)`, `approved by bob, carol`, ...
    pub fn status_line(&self) -> String {
        let by = |vote: Vote| {
            self.reviews.iter().filter(|r| r.vote == vote).map(|r| r.reviewer.as_str()).collect::<Vec<_>>().join(", ")
        };
        match self.status {
            Status::Pending => format!("pending ({}/{} approvals)", self.approvals(), self.quorum),
            Status::Approved => format!("approved by {}", by(Vote::Approve)),
            Status::Denied => format!("denied by {}", by(Vote::Deny)),
            other => other.as_str().to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn approval() -> Approval {
        Approval {
            id: "apr_1".into(),
            status: Status::Pending,
            agent: "spiffe://corp/agent/bot".into(),
            digest: "sha256:ab".into(),
            created_ms: 0,
            expires_ms: 1000,
            decided_ms: None,
            usable_until_ms: None,
            redeem_count: 0,
            quorum: 2,
            reuse: "once".into(),
            credential: None,
            create: json!({"agent": {"id": "spiffe://corp/agent/bot", "owner": "alice@corp.example"},
                           "policy": {"reason": "export", "risk": "high", "approvers": {"groups": ["g"]}},
                           "request": {"method": "POST", "host": "api.example.com", "path": "/v1/x?format=csv",
                                       "query": {"format": ["csv"]}, "body": {"ssn": "[REDACTED]"}}}),
            reviews: vec![],
        }
    }

    #[test]
    fn shows_the_action_and_where_the_review_stands() {
        let v = ApprovalView::of(&approval());
        assert_eq!(v.title(), "POST api.example.com/v1/x");
        assert_eq!(v.query_text(), "format=csv");
        assert_eq!(v.owner.as_deref(), Some("alice@corp.example"));
        assert!(v.body_text(1000).contains("[REDACTED]"));
        assert_eq!(v.status_line(), "pending (0/2 approvals)");
        assert_eq!(v.groups, vec!["g".to_string()]);
        assert!(v.body_text(3).ends_with("(truncated)"));
    }
}
