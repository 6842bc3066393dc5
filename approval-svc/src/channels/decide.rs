//! The chat channels' way into the approval rules: the same checks as the reviewer API
//! (separation of duties, approver groups, quorum, expiry), applied by the store in one
//! transaction, plus the channel's evidence of the verified callback in the audit record.

use serde_json::Value;

use crate::api::AppState;
use crate::audit::attempts::{self, Attempt};
use crate::lifecycle::{may_review, ReviewRefusal, Reviewer, Status, Vote};
use crate::store::{Approval, ReviewError, ReviewNote};
use crate::time::now_ms;

/// A decision taken in a chat channel, after the channel verified the callback.
#[derive(Clone, Debug)]
pub struct ChannelReview {
    /// The approval clicked on.
    pub approval_id: String,
    /// Approve or deny.
    pub vote: Vote,
    /// Optional comment typed on the card.
    pub comment: Option<String>,
    /// The clicker, resolved through the reviewer directory.
    pub reviewer: Reviewer,
    /// `teams` or `slack`.
    pub channel: &'static str,
    /// What proves the callback was verified: activity / action id, SHA-256 of the raw
    /// body, signing key id, tenant/team. Recorded in the review's audit record.
    pub evidence: Value,
}

/// Why a chat decision was not counted. Every refusal leaves the approval as it was.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    /// No such approval.
    #[error("no such approval")]
    NotFound,
    /// The clicker is the agent, its owner or someone it acts for.
    #[error("you cannot review an action of your own agent")]
    SeparationOfDuties,
    /// The clicker is in none of the policy's approver groups.
    #[error("you are not in an approver group for this action")]
    NotAnApprover,
    /// Someone already decided it (the first valid decision wins).
    #[error("already {0}")]
    AlreadyDecided(Status),
    /// Past its deadline.
    #[error("this approval has expired")]
    Expired,
    /// This reviewer already voted (also what a retried callback sees).
    #[error("you already reviewed this approval")]
    DuplicateVote,
    /// The store failed: nothing was recorded.
    #[error("the approval service could not record the decision")]
    Store(String),
}

impl From<ReviewError> for Refusal {
    fn from(e: ReviewError) -> Self {
        match e {
            ReviewError::NotFound => Refusal::NotFound,
            ReviewError::AlreadyDecided(s) => Refusal::AlreadyDecided(s),
            ReviewError::Expired => Refusal::Expired,
            ReviewError::DuplicateVote => Refusal::DuplicateVote,
            ReviewError::SeparationOfDuties => Refusal::SeparationOfDuties,
            ReviewError::Store(e) => Refusal::Store(e.to_string()),
        }
    }
}

/// Records `review`; answers the approval as it now stands. The store queues the card
/// updates in the same transaction, and long-polling gateways are woken.
pub async fn decide(state: &AppState, review: ChannelReview) -> Result<Approval, Refusal> {
    let lookup = review.approval_id.clone();
    let current = state
        .blocking(false, move |s| s.get(&lookup, now_ms()))
        .await
        .map_err(|e| Refusal::Store(e.to_string()))?
        .map_err(|e| Refusal::Store(e.to_string()))?
        .ok_or(Refusal::NotFound)?;
    let refused = |reason| {
        Attempt::review(
            &review.reviewer,
            &review.approval_id,
            review.channel,
            review.vote,
            reason,
            review.evidence.clone(),
        )
    };
    if let Err(refusal) = may_review(&review.reviewer, &current.parties(), &current.groups()) {
        if refusal == ReviewRefusal::SeparationOfDuties {
            tracing::warn!(approval_id = %review.approval_id, reviewer = %review.reviewer.id, channel = review.channel,
                "separation of duties: review refused");
        }
        attempts::record(state, refused(attempts::rule_reason(refusal))).await;
        return Err(match refusal {
            ReviewRefusal::SeparationOfDuties => Refusal::SeparationOfDuties,
            ReviewRefusal::NotAnApprover => Refusal::NotAnApprover,
        });
    }
    let ChannelReview { approval_id, vote, comment, reviewer, channel, evidence } = review.clone();
    let decided = state
        .blocking(true, move |s| {
            s.review(&approval_id, &reviewer, vote, ReviewNote { comment, channel: channel.into(), evidence }, now_ms())
        })
        .await
        .map_err(|e| Refusal::Store(e.to_string()))?;
    let decided = match decided {
        Ok(a) => a,
        Err(e) => {
            if let Some(reason) = attempts::reason_of(&e) {
                attempts::record(state, refused(reason)).await;
            }
            return Err(e.into());
        }
    };
    if decided.status != Status::Pending {
        state.metrics.outcome(decided.status.as_str());
    }
    state.notify();
    Ok(decided)
}
