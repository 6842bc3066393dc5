//! The gateway redeems an approved approval for one use: the approval id, the agent and
//! the digest it presents must match and the approval must be redeemable; the
//! credential is minted first (a failed mint consumes nothing), then the store consumes
//! the approval atomically together with the audit records of the redeem and the mint
//! (or refuses, when another redeem or the deadline came first, and the credential is
//! dropped unused).

use std::sync::Arc;

use serde_json::Value;

use super::Approvals;
use super::Decisions;
use crate::store::{Approval, MintRecord, RedeemRefusal, RedeemRequest, StoreError};
use crate::time::now_ms;

/// What the gateway presents.
#[derive(Clone, Debug)]
pub struct Redeem {
    /// Approval id.
    pub approval_id: String,
    /// Gateway decision id.
    pub decision_id: String,
    /// Agent presenting it.
    pub agent: String,
    /// Digest presented.
    pub digest: String,
    /// The signature of the signed request: a redeem that minted is never honoured
    /// again for the same bytes.
    pub signature: String,
}

/// Why nothing was redeemed.
#[derive(Debug, thiserror::Error)]
pub enum NotRedeemed {
    /// The protocol's refusals (409/410).
    #[error("{}", .0.as_str())]
    Refused(RedeemRefusal),
    /// The credential could not be minted; the approval is untouched.
    #[error("mint: {0}")]
    Mint(String),
    /// The store failed; the approval is untouched.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Approvals {
    /// Redeems `ask`, minting with `mint` (blocking; answers the credential and what the
    /// audit trail records of it). Answers the redeemed approval and the credential.
    pub async fn redeem<M: Send + 'static>(
        self: &Arc<Self>,
        ask: Redeem,
        mint: impl FnOnce(&Approval) -> Result<(M, Value), String> + Send + 'static,
    ) -> Result<(Approval, M), NotRedeemed> {
        let outcome = self.try_redeem(ask, mint).await;
        match &outcome {
            Ok(_) => {
                self.metrics.redeemed();
                self.notify();
            }
            Err(NotRedeemed::Refused(_) | NotRedeemed::Mint(_)) => self.metrics.redeem_failed(),
            Err(NotRedeemed::Store(_)) => {}
        }
        outcome
    }

    async fn try_redeem<M: Send + 'static>(
        self: &Arc<Self>,
        ask: Redeem,
        mint: impl FnOnce(&Approval) -> Result<(M, Value), String> + Send + 'static,
    ) -> Result<(Approval, M), NotRedeemed> {
        let lookup = ask.approval_id.clone();
        let approval = self
            .blocking(false, move |s| s.get(&lookup, now_ms()))
            .await??
            .ok_or(NotRedeemed::Refused(RedeemRefusal::Mismatch))?;
        if let Some(refusal) = approval.redeem_refusal(&ask.agent, &ask.digest) {
            return Err(NotRedeemed::Refused(refusal));
        }
        let profile = approval.credential.clone();
        let (minted, details) = tokio::task::spawn_blocking(move || mint(&approval))
            .await
            .map_err(|e| NotRedeemed::Mint(format!("task failed: {e}")))?
            .map_err(NotRedeemed::Mint)?;
        let Redeem { approval_id, decision_id, agent, digest, signature } = ask;
        let req =
            RedeemRequest { signature, approval_id, decision_id, agent, digest, mint: MintRecord { profile, details } };
        match self.blocking(true, move |s| s.redeem(req, now_ms())).await?? {
            Ok(a) => Ok((a, minted)),
            Err(refusal) => Err(NotRedeemed::Refused(refusal)),
        }
    }
}
