//! JSON views of approvals for reviewers.

use serde_json::{json, Value};

use crate::store::Approval;
use crate::time::rfc3339;

fn field<'a>(a: &'a Approval, pointer: &str) -> &'a Value {
    a.create.pointer(pointer).unwrap_or(&Value::Null)
}

/// Everything a reviewer needs to decide.
pub fn detail(a: &Approval) -> Value {
    let approvals = a.approvers().len();
    json!({
        "id": a.id,
        "status": a.status.as_str(),
        "created_at": rfc3339(a.created_ms),
        "expires_at": rfc3339(a.expires_ms),
        "decided_at": a.decided_ms.map(rfc3339),
        "usable_until": a.usable_until_ms.map(rfc3339),
        "redeem_count": a.redeem_count,
        "decision_id": field(a, "/decision_id"),
        "reason": field(a, "/policy/reason"),
        "risk": field(a, "/policy/risk"),
        "rule": field(a, "/policy/rule"),
        "policy_revision": field(a, "/policy/revision"),
        "agent": field(a, "/agent"),
        "owner": field(a, "/agent/owner"),
        "digest": a.digest,
        "method": field(a, "/request/method"),
        "scheme": field(a, "/request/scheme"),
        "host": field(a, "/request/host"),
        "port": field(a, "/request/port"),
        "path": field(a, "/request/path"),
        "query": field(a, "/request/query"),
        "headers": field(a, "/request/headers"),
        "body": field(a, "/request/body"),
        "body_size": field(a, "/request/body_size"),
        "body_sha256": field(a, "/request/body_sha256"),
        "approvers": {"groups": a.groups(), "quorum": a.quorum},
        "quorum": a.quorum,
        "approvals": approvals,
        "credential": a.credential,
        "reuse": a.reuse,
        "reviews": a.reviews.iter().map(|r| json!({
            "reviewer": r.reviewer, "vote": r.vote.as_str(), "comment": r.comment,
            "channel": r.channel, "time": rfc3339(r.time_ms),
        })).collect::<Vec<_>>(),
    })
}

/// A list entry.
pub fn summary(a: &Approval) -> Value {
    json!({
        "id": a.id,
        "status": a.status.as_str(),
        "created_at": rfc3339(a.created_ms),
        "expires_at": rfc3339(a.expires_ms),
        "agent": a.agent,
        "owner": field(a, "/agent/owner"),
        "rule": field(a, "/policy/rule"),
        "risk": field(a, "/policy/risk"),
        "reason": field(a, "/policy/reason"),
        "method": field(a, "/request/method"),
        "host": field(a, "/request/host"),
        "path": field(a, "/request/path"),
        "quorum": a.quorum,
        "approvals": a.approvers().len(),
    })
}
