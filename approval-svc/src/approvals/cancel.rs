//! Someone calls off a pending approval (the agent no longer needs it, or it was asked
//! by mistake): the agent's owner, who knows what the agent is for. Nobody else (there
//! is no administrator role in the reviewer directory yet): cancelling answers
//! the gateway "no" just as a denial does, so it is a decision and needs an owner. The
//! store moves it in one transaction with its audit record (who and why) and the card
//! updates; a decision that got there first wins.

use std::sync::Arc;

use super::{Approvals, Decisions};
use crate::lifecycle::{normalize_identity, Parties, Reviewer, Status};
use crate::store::{Approval, ReviewError, StoreError};
use crate::time::now_ms;

/// Why a cancel was refused. Every refusal leaves the approval as it was.
#[derive(Debug, thiserror::Error)]
pub enum CancelRefusal {
    /// No such approval.
    #[error("no such approval")]
    NotFound,
    /// Not the agent's owner.
    #[error("only the agent's owner may cancel an approval")]
    NotAllowed,
    /// The reason is empty.
    #[error("a cancel needs a reason")]
    NoReason,
    /// No longer pending (the first decision wins).
    #[error("already {0}")]
    AlreadyDecided(Status),
    /// Past its deadline.
    #[error("this approval has expired")]
    Expired,
    /// The store failed: nothing was recorded.
    #[error("the approval service could not record the cancel")]
    Store(StoreError),
}

impl From<StoreError> for CancelRefusal {
    fn from(e: StoreError) -> Self {
        CancelRefusal::Store(e)
    }
}

impl From<ReviewError> for CancelRefusal {
    fn from(e: ReviewError) -> Self {
        match e {
            ReviewError::NotFound => CancelRefusal::NotFound,
            ReviewError::AlreadyDecided(s) => CancelRefusal::AlreadyDecided(s),
            ReviewError::Expired => CancelRefusal::Expired,
            ReviewError::Store(e) => CancelRefusal::Store(e),
            // Not answered by a cancel; kept closed rather than mapped to a success.
            ReviewError::DuplicateVote | ReviewError::SeparationOfDuties => CancelRefusal::NotAllowed,
        }
    }
}

/// Whether `who` may cancel an approval of `parties`: one of their identities (id or
/// alias) is the agent's owner. An agent without an owner cannot be cancelled.
pub fn may_cancel(who: &Reviewer, parties: &Parties) -> bool {
    let owner = parties.owner.as_deref().map(normalize_identity).filter(|o| !o.is_empty());
    owner.is_some_and(|o| who.identities().iter().any(|i| normalize_identity(i) == o))
}

impl Approvals {
    /// Cancels approval `id` for `who` with `reason`; answers it as it now stands.
    pub async fn cancel(
        self: &Arc<Self>,
        id: String,
        who: Reviewer,
        reason: String,
    ) -> Result<Approval, CancelRefusal> {
        let reason = reason.trim().to_string();
        if reason.is_empty() {
            return Err(CancelRefusal::NoReason);
        }
        let lookup = id.clone();
        let current = self.blocking(false, move |s| s.get(&lookup, now_ms())).await??.ok_or(CancelRefusal::NotFound)?;
        if !may_cancel(&who, &current.parties()) {
            tracing::warn!(approval_id = %id, who = %who.id, "cancel refused: not the agent's owner");
            return Err(CancelRefusal::NotAllowed);
        }
        let cancelled = self.blocking(true, move |s| s.cancel(&id, &who, &reason, now_ms())).await??;
        self.metrics.outcome(Status::Cancelled.as_str());
        self.notify();
        Ok(cancelled)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn who(id: &str, aliases: &[&str]) -> Reviewer {
        Reviewer { id: id.into(), groups: vec!["sre".into()], aliases: aliases.iter().map(|a| a.to_string()).collect() }
    }

    fn parties(owner: Option<&str>) -> Parties {
        Parties { agent: "agent-1".into(), owner: owner.map(Into::into), acts_for: vec![] }
    }

    #[test]
    fn the_owner_may_cancel_under_any_of_their_names() {
        assert!(may_cancel(&who("alice@corp.example", &[]), &parties(Some("Alice@Corp.Example"))));
        assert!(may_cancel(&who("U-ALICE", &["alice@corp.example"]), &parties(Some("alice@corp.example"))));
    }

    #[test]
    fn nobody_else_may_cancel_and_an_ownerless_agent_not_at_all() {
        assert!(!may_cancel(&who("bob@corp.example", &[]), &parties(Some("alice@corp.example"))));
        assert!(!may_cancel(&who("agent-1", &[]), &parties(Some("alice@corp.example"))));
        assert!(!may_cancel(&who("bob@corp.example", &[]), &parties(None)));
        assert!(!may_cancel(&who("", &[]), &parties(Some(""))));
    }
}
