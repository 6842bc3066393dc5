//! What the agent gets back when its call does not go through: RFC 9457
//! `application/problem+json`, never a 2xx.

use serde::Serialize;

/// The kinds of refusal, as `urn:airlock:problem:<kind>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProblemKind {
    Denied,
    ApprovalPending,
    ApprovalDenied,
    ApprovalExpired,
    Unavailable,
}

impl ProblemKind {
    fn slug(self) -> &'static str {
        match self {
            ProblemKind::Denied => "denied",
            ProblemKind::ApprovalPending => "approval-pending",
            ProblemKind::ApprovalDenied => "approval-denied",
            ProblemKind::ApprovalExpired => "approval-expired",
            ProblemKind::Unavailable => "unavailable",
        }
    }

    fn title(self) -> &'static str {
        match self {
            ProblemKind::Denied => "Denied by policy",
            ProblemKind::ApprovalPending => "Approval pending",
            ProblemKind::ApprovalDenied => "Approval denied",
            ProblemKind::ApprovalExpired => "Approval expired",
            ProblemKind::Unavailable => "Approval service unavailable",
        }
    }

    fn status(self) -> u32 {
        match self {
            ProblemKind::Unavailable => 503,
            _ => 403,
        }
    }
}

/// A refusal ready to be sent as a local reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub kind: ProblemKind,
    pub detail: String,
    pub decision_id: String,
    pub approval_id: Option<String>,
    pub retry_after: Option<u64>,
    pub rule: Option<String>,
    /// Overrides the kind's status (413 for a body over the cap).
    pub status: Option<u32>,
}

#[derive(Serialize)]
struct Body<'a> {
    #[serde(rename = "type")]
    type_: String,
    title: &'a str,
    status: u32,
    detail: &'a str,
    decision_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    approval_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    retry_after: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rule: Option<&'a str>,
}

/// A local reply: status, headers and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u32,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

impl Problem {
    pub fn new(kind: ProblemKind, decision_id: &str, detail: impl Into<String>) -> Problem {
        Problem {
            kind,
            detail: detail.into(),
            decision_id: decision_id.to_string(),
            approval_id: None,
            retry_after: None,
            rule: None,
            status: None,
        }
    }

    pub fn status(&self) -> u32 {
        self.status.unwrap_or_else(|| self.kind.status())
    }

    pub fn to_reply(&self) -> Reply {
        let status = self.status();
        let body = Body {
            type_: format!("urn:airlock:problem:{}", self.kind.slug()),
            title: self.kind.title(),
            status,
            detail: &self.detail,
            decision_id: &self.decision_id,
            approval_id: self.approval_id.as_deref(),
            retry_after: self.retry_after,
            rule: self.rule.as_deref(),
        };
        // Serializing plain strings and numbers cannot fail; fall back to a fixed
        // body rather than ever sending nothing.
        let body = serde_json::to_vec(&body).unwrap_or_else(|_| b"{\"type\":\"urn:airlock:problem:denied\"}".to_vec());
        let mut headers = vec![
            ("content-type", "application/problem+json".to_string()),
            ("cache-control", "no-store".to_string()),
            ("x-airlock-decision-id", self.decision_id.clone()),
        ];
        if let Some(r) = self.retry_after {
            headers.push(("retry-after", r.to_string()));
        }
        Reply { status, headers, body }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn pending_reply_has_type_id_and_retry_after() {
        let mut p = Problem::new(ProblemKind::ApprovalPending, "dec_1", "A reviewer must approve");
        p.approval_id = Some("apr_1".into());
        p.retry_after = Some(10);
        let r = p.to_reply();
        assert_eq!(r.status, 403);
        assert!(r.headers.contains(&("retry-after", "10".to_string())));
        assert!(r.headers.contains(&("content-type", "application/problem+json".to_string())));
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(v["type"], "urn:airlock:problem:approval-pending");
        assert_eq!(v["approval_id"], "apr_1");
        assert_eq!(v["retry_after"], 10);
        assert_eq!(v["status"], 403);
    }

    #[test]
    fn unavailable_is_503_and_never_2xx() {
        assert_eq!(Problem::new(ProblemKind::Unavailable, "d", "x").to_reply().status, 503);
        for k in [
            ProblemKind::Denied,
            ProblemKind::ApprovalPending,
            ProblemKind::ApprovalDenied,
            ProblemKind::ApprovalExpired,
            ProblemKind::Unavailable,
        ] {
            assert!(Problem::new(k, "d", "x").to_reply().status >= 400);
        }
    }
}
