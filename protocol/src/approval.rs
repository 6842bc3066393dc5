//! `POST /v1/gateway/approvals`: create or find the approval for an action, and the
//! answer that says where it stands.
//!
//! Fields are declared in alphabetical order: a body serializes with its keys sorted,
//! byte for byte what a `serde_json::Value` of it would give.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::decisions::Risk;

/// Longest reviewer comment passed on to the gateway, and so to the agent.
pub const MAX_COMMENT_CHARS: usize = 500;

/// The create-or-find body. `R` is the request the reviewers are shown: the filter
/// sends [`RequestFacts`]; the service keeps it as received (`serde_json::Value`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CreateApproval<R = serde_json::Value> {
    pub agent: AgentRef,
    /// From the agent's `x-airlock-approval` header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval_id: Option<String>,
    pub decision_id: String,
    /// Lower-case hex action digest (`docs/digest.md`).
    pub digest: String,
    /// 0: answer at once; more: long-poll up to this long.
    #[serde(default)]
    pub hold_ms: u64,
    pub policy: PolicyAsk,
    pub request: R,
}

/// The agent behind an action.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentRef {
    /// Identities the agent acts for (none of them may approve).
    #[serde(default)]
    pub acts_for: Vec<String>,
    pub id: String,
    /// The agent's owner (may not approve).
    #[serde(default)]
    pub owner: Option<String>,
    /// `mtls`, `jwt` or `header`.
    pub source: String,
}

/// What the policy asks of the approval.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PolicyAsk {
    pub approvers: Option<Approvers>,
    pub credential: Option<String>,
    pub expires_in: Option<String>,
    pub reason: Option<String>,
    pub reuse: Option<String>,
    pub revision: String,
    pub risk: Option<Risk>,
    pub rule: Option<String>,
}

/// Who must approve.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approvers {
    #[serde(default)]
    pub groups: Vec<String>,
    /// Wider than any quorum honoured, so that an absurd number is refused by name.
    #[serde(default)]
    pub quorum: Option<u64>,
}

/// The request as the upstream would receive it: credential headers never included,
/// the body with the policy's `redact` paths applied.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestFacts {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<serde_json::Value>,
    /// Of the bytes the reviewer is shown: informational, never compared.
    pub body_sha256: String,
    pub body_size: u64,
    pub headers: BTreeMap<String, String>,
    pub host: String,
    /// `x-request-id`.
    pub id: Option<String>,
    pub method: String,
    pub path: String,
    pub port: u16,
    pub query: BTreeMap<String, Vec<String>>,
    pub scheme: String,
}

/// Where an approval stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ApprovalStatus {
    Pending,
    Approved,
    Denied,
    Expired,
    Cancelled,
    /// The action gets no approval: the named approval does not cover it, or the
    /// service refused the policy's ask (422). Denied.
    Mismatch,
}

/// The create-or-find answer (HTTP 200).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalState {
    /// Required except on `mismatch`, where there may be no approval to name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval_id: Option<String>,
    /// Denied or cancelled: the denying reviewer's comment, at most
    /// [`MAX_COMMENT_CHARS`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// Denied or cancelled: until when (RFC 3339) an identical create gets this same
    /// answer instead of asking the reviewers again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub denied_until: Option<String>,
    /// The service's own words. Informational only: the agent is told what happened in
    /// the filter's words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
    pub status: ApprovalStatus,
    /// Not a field of the answer: what the service refuses to honour, when the reader
    /// took a 422 `policy-refused` problem as a `mismatch`.
    #[serde(skip)]
    pub refused: Option<String>,
}

impl ApprovalState {
    /// An answer with `status` and nothing else.
    pub fn new(status: ApprovalStatus) -> ApprovalState {
        ApprovalState {
            approval_id: None,
            comment: None,
            denied_until: None,
            detail: None,
            expires_at: None,
            retry_after: None,
            status,
            refused: None,
        }
    }
}
