//! A reviewer votes, through the API or a chat channel: separation of duties and the
//! approver groups are checked first (a refusal is recorded as evidence), then the store
//! counts the vote in one transaction (a first valid decision wins, quorum of distinct
//! humans, separation of duties enforced again) together with its audit record and the
//! card updates.

use std::sync::Arc;

use serde_json::Value;

use super::attempts::{self, Attempt};
use super::Approvals;
use super::Decisions;
use crate::lifecycle::{may_review, ReviewRefusal, Reviewer, Status, Vote};
use crate::store::{Approval, ReviewError, ReviewNote, StoreError};
use crate::time::now_ms;

/// A vote, from an authenticated reviewer.
#[derive(Clone, Debug)]
pub struct ReviewRequest {
    /// The approval voted on.
    pub approval_id: String,
    /// Approve or deny.
    pub vote: Vote,
    /// Optional comment.
    pub comment: Option<String>,
    /// The reviewer, as the API or the channel authenticated them.
    pub reviewer: Reviewer,
    /// `api`, `teams` or `slack`.
    pub channel: &'static str,
    /// What proves a chat callback was verified (activity / action id, SHA-256 of the
    /// raw body, signing key id, tenant/team); recorded with the review. `Null` for the
    /// API.
    pub evidence: Value,
    /// What a refused attempt is recorded with.
    pub attempt_evidence: Value,
}

/// Why a vote was not counted. Every refusal leaves the approval as it was.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    /// No such approval.
    #[error("no such approval")]
    NotFound,
    /// The reviewer is the agent, its owner or someone it acts for.
    #[error("you cannot review an action of your own agent")]
    SeparationOfDuties,
    /// The reviewer is in none of the policy's approver groups.
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
    Store(StoreError),
}

impl From<ReviewError> for Refusal {
    fn from(e: ReviewError) -> Self {
        match e {
            ReviewError::NotFound => Refusal::NotFound,
            ReviewError::AlreadyDecided(s) => Refusal::AlreadyDecided(s),
            ReviewError::Expired => Refusal::Expired,
            ReviewError::DuplicateVote => Refusal::DuplicateVote,
            ReviewError::SeparationOfDuties => Refusal::SeparationOfDuties,
            ReviewError::Store(e) => Refusal::Store(e),
        }
    }
}

impl From<StoreError> for Refusal {
    fn from(e: StoreError) -> Self {
        Refusal::Store(e)
    }
}

impl Approvals {
    /// Counts `request`; answers the approval as it now stands.
    pub async fn review(self: &Arc<Self>, request: ReviewRequest) -> Result<Approval, Refusal> {
        let lookup = request.approval_id.clone();
        let current = self.blocking(false, move |s| s.get(&lookup, now_ms())).await??.ok_or(Refusal::NotFound)?;
        let ReviewRequest { approval_id, vote, comment, reviewer, channel, evidence, attempt_evidence } = request;
        let refused =
            |reason| Attempt::review(&reviewer, &approval_id, channel, vote, reason, attempt_evidence.clone());
        if let Err(refusal) = may_review(&reviewer, &current.parties(), &current.groups()) {
            if refusal == ReviewRefusal::SeparationOfDuties {
                tracing::warn!(%approval_id, reviewer = %reviewer.id, channel, "separation of duties: review refused");
            }
            self.record_refused(refused(attempts::rule_reason(refusal))).await;
            return Err(match refusal {
                ReviewRefusal::SeparationOfDuties => Refusal::SeparationOfDuties,
                ReviewRefusal::NotAnApprover => Refusal::NotAnApprover,
            });
        }
        let note = ReviewNote { comment, channel: channel.into(), evidence };
        let (id, who) = (approval_id.clone(), reviewer.clone());
        let decided = match self.blocking(true, move |s| s.review(&id, &who, vote, note, now_ms())).await? {
            Ok(a) => a,
            Err(e) => {
                if let Some(reason) = attempts::reason_of(&e) {
                    self.record_refused(refused(reason)).await;
                }
                return Err(e.into());
            }
        };
        if decided.status != Status::Pending {
            self.metrics.outcome(decided.status.as_str());
        }
        self.notify();
        Ok(decided)
    }
}
