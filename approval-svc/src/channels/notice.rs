//! What the agent's owner is told once an approval is closed: the outcome, who decided,
//! their comment and the policy's reason. Every channel words it from this one value, so
//! Teams, Slack and webhooks tell the same story.

use crate::lifecycle::{Status, Vote};
use crate::time::rfc3339;

use super::ApprovalView;

/// The owner's notice of a closed approval.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OwnerNotice {
    /// `approved`, `denied`, `expired`, `cancelled`.
    pub outcome: &'static str,
    /// The reviewers whose votes decided it (approvers, or the denier), in order.
    pub decided_by: Vec<String>,
    /// The deciding reviewers' comments, `"<reviewer>: <comment>"`.
    pub comments: Vec<String>,
    /// The policy's reason for asking.
    pub reason: String,
    /// `POST api.example.com/v1/exports`.
    pub action: String,
    /// The agent.
    pub agent: String,
    /// The approval id.
    pub approval_id: String,
    /// When it was decided (RFC 3339), if it was.
    pub decided_at: Option<String>,
}

impl OwnerNotice {
    /// The notice for `view`, or `None` while it is still open. A redeemed approval was
    /// approved first: the owner hears "approved".
    pub fn of(view: &ApprovalView) -> Option<OwnerNotice> {
        let (outcome, vote) = match view.status {
            Status::Pending => return None,
            Status::Approved | Status::Redeemed => ("approved", Some(Vote::Approve)),
            Status::Denied => ("denied", Some(Vote::Deny)),
            Status::Expired => ("expired", None),
            Status::Cancelled => ("cancelled", None),
        };
        let deciding: Vec<_> = view.reviews.iter().filter(|r| Some(r.vote) == vote).collect();
        Some(OwnerNotice {
            outcome,
            decided_by: deciding.iter().map(|r| r.reviewer.clone()).collect(),
            comments: deciding
                .iter()
                .filter_map(|r| {
                    let c = r.comment.as_deref().map(str::trim).filter(|c| !c.is_empty())?;
                    Some(format!("{}: {c}", r.reviewer))
                })
                .collect(),
            reason: view.reason.clone(),
            action: view.title(),
            agent: view.agent.clone(),
            approval_id: view.id.clone(),
            decided_at: view.decided_ms.map(rfc3339),
        })
    }

    /// One-line headline: `Your agent's request was denied by carol@corp.example`.
    pub fn headline(&self) -> String {
        match (self.outcome, self.decided_by.is_empty()) {
            ("expired", _) => "Your agent's request expired before a reviewer decided it".to_string(),
            (outcome, true) => format!("Your agent's request was {outcome}"),
            (outcome, false) => format!("Your agent's request was {outcome} by {}", self.decided_by.join(", ")),
        }
    }

    /// The notice as plain text lines (headline first), for channels without cards.
    pub fn lines(&self) -> Vec<String> {
        let mut lines = vec![self.headline(), format!("Action: {}", self.action), format!("Agent: {}", self.agent)];
        if !self.reason.is_empty() {
            lines.push(format!("Policy reason: {}", self.reason));
        }
        for c in &self.comments {
            lines.push(format!("Comment from {c}"));
        }
        lines.push(format!("Approval id: {}", self.approval_id));
        lines
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::channels::view::ReviewLine;
    use serde_json::json;

    fn view(status: Status, reviews: Vec<ReviewLine>) -> ApprovalView {
        ApprovalView {
            id: "apr_1".into(),
            status,
            reason: "bulk export of customer data".into(),
            risk: "high".into(),
            rule: "exports".into(),
            agent: "spiffe://corp/agent/bot".into(),
            owner: Some("alice@corp.example".into()),
            method: "POST".into(),
            host: "api.example.com".into(),
            path: "/v1/exports".into(),
            query: json!(null),
            body: json!(null),
            digest: "ab".into(),
            expires_ms: 1_800_000_000_000,
            decided_ms: Some(1_700_000_000_000),
            quorum: 1,
            groups: vec!["data-owners".into()],
            reviews,
        }
    }

    fn review(who: &str, vote: Vote, comment: Option<&str>) -> ReviewLine {
        ReviewLine {
            reviewer: who.into(),
            vote,
            comment: comment.map(str::to_string),
            channel: "teams".into(),
            time_ms: 1_700_000_000_000,
        }
    }

    #[test]
    fn an_open_approval_has_no_notice() {
        assert!(OwnerNotice::of(&view(Status::Pending, vec![])).is_none());
    }

    #[test]
    fn a_denial_names_the_denier_the_comment_and_the_reason() {
        let n = OwnerNotice::of(&view(Status::Denied, vec![review("carol", Vote::Deny, Some(" not on a Friday "))]))
            .unwrap();
        assert_eq!(n.outcome, "denied");
        assert_eq!(n.headline(), "Your agent's request was denied by carol");
        let text = n.lines().join("\n");
        assert!(text.contains("Comment from carol: not on a Friday"), "{text}");
        assert!(text.contains("Policy reason: bulk export of customer data"), "{text}");
        assert!(text.contains("Action: POST api.example.com/v1/exports"), "{text}");
    }

    #[test]
    fn approval_counts_only_approvers_and_expiry_names_nobody() {
        let reviews = vec![review("bob", Vote::Approve, None), review("dan", Vote::Approve, Some("ok"))];
        let n = OwnerNotice::of(&view(Status::Redeemed, reviews)).unwrap();
        assert_eq!((n.outcome, n.decided_by.len()), ("approved", 2));
        assert_eq!(n.comments, vec!["dan: ok".to_string()]);
        let e = OwnerNotice::of(&view(Status::Expired, vec![])).unwrap();
        assert_eq!(e.headline(), "Your agent's request expired before a reviewer decided it");
    }
}
