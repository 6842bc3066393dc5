//! The JSON body of a webhook event: the approval as reviewers see it (the same
//! [`ApprovalView`] the chat channels render, body already redacted by the gateway), where
//! it stands, and links to the reviewer API — the only way a decision comes back.

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::channels::notice::OwnerNotice;
use crate::channels::ApprovalView;
use crate::time::rfc3339;

/// The `approval.decided` body: the event, plus what the owner is told.
pub fn decided(delivery: &str, view: &ApprovalView, notice: &OwnerNotice, api_url: Option<&str>, now_ms: i64) -> Value {
    let mut body = event(super::config::DECIDED, delivery, view, api_url, now_ms);
    body["owner"] = json!(view.owner);
    body["notice"] = json!({
        "outcome": notice.outcome,
        "headline": notice.headline(),
        "decided_by": notice.decided_by,
        "comments": notice.comments,
        "reason": notice.reason,
        "decided_at": notice.decided_at,
    });
    body
}

/// The event body.
pub fn event(event: &str, delivery: &str, view: &ApprovalView, api_url: Option<&str>, now_ms: i64) -> Value {
    let base = api_url.map(|u| u.trim_end_matches('/')).unwrap_or_default();
    let one = format!("{base}/v1/approvals/{}", view.id);
    json!({
        "event": event,
        "delivery_id": delivery,
        "sent_at": rfc3339(now_ms),
        "approval": {
            "id": view.id,
            "status": view.status.as_str(),
            "status_line": view.status_line(),
            "reason": view.reason,
            "risk": view.risk,
            "rule": view.rule,
            "agent": view.agent,
            "owner": view.owner,
            "request": {
                "method": view.method,
                "host": view.host,
                "path": view.path,
                "query": view.query,
                "query_text": view.query_text(),
                "body": view.body,
            },
            "digest": view.digest,
            "expires_at": rfc3339(view.expires_ms),
            "decided_at": view.decided_ms.map(rfc3339),
            "quorum": view.quorum,
            "approvals": view.approvals(),
            "groups": view.groups,
            "reviews": view.reviews.iter().map(|r| json!({
                "reviewer": r.reviewer,
                "vote": r.vote.as_str(),
                "comment": r.comment,
                "channel": r.channel,
                "at": rfc3339(r.time_ms),
            })).collect::<Vec<_>>(),
        },
        "links": {
            "approval": one,
            "approve": format!("{one}/approve"),
            "deny": format!("{one}/deny"),
        },
    })
}

/// A delivery id that is the same every time the same state of the same approval is
/// sent to the same webhook — retries of one event share it, so receivers can drop
/// duplicates — and differs for every new state.
pub fn delivery_id(webhook: &str, event: &str, view: &ApprovalView) -> String {
    let reviews: Vec<String> =
        view.reviews.iter().map(|r| format!("{}:{}:{}", r.reviewer, r.vote.as_str(), r.time_ms)).collect();
    let state = format!(
        "{webhook}\n{event}\n{}\n{}\n{}\n{}",
        view.id,
        view.status.as_str(),
        view.decided_ms.unwrap_or_default(),
        reviews.join(",")
    );
    format!("dlv_{}", &hex::encode(Sha256::digest(state.as_bytes()))[..32])
}
