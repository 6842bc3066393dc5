//! The transitions of [`transitions`], each run as one transaction of any [`Store`]:
//! what the use cases (and the few adapters that read with expiry applied) call. An
//! extension trait so every backend gets them without deciding anything itself.

use serde_json::Value;

use super::transitions;
use crate::lifecycle::{Reviewer, Status, Vote};
use crate::store::{
    run, Approval, CreateOutcome, Durability, Expiry, NewApproval, RedeemRefusal, RedeemRequest, ReviewError,
    ReviewNote, Store, StoreError,
};

/// The approval transitions over a [`Store`].
pub trait Decisions: Store {
    /// Creates an approval or finds the live one for (agent, digest) / the asked id, or
    /// the one denied or cancelled within [`Store::denied_retry_window`].
    fn create_or_find(
        &self,
        new: NewApproval,
        asked_id: Option<String>,
        now_ms: i64,
    ) -> Result<CreateOutcome, StoreError> {
        run(self, Durability::Durable, create_job(new, asked_id, self.create_limits(), now_ms))
    }

    /// What [`Decisions::create_or_find`] would answer, without creating: where it would
    /// create, [`CreateOutcome::Absent`].
    fn find(&self, new: NewApproval, asked_id: Option<String>, now_ms: i64) -> Result<CreateOutcome, StoreError> {
        let limits = self.create_limits();
        run(self, Durability::Durable, move |l| {
            transitions::create_or_find_as(l, &new, asked_id.as_deref(), limits, now_ms, transitions::Mode::FindOnly)
        })
    }

    /// One approval; a live one past its deadline is expired first.
    fn get(&self, id: &str, now_ms: i64) -> Result<Option<Approval>, StoreError> {
        match self.read(id)? {
            Some(a) if transitions::is_due(&a, now_ms) => {
                let id = id.to_string();
                run(self, Durability::Durable, move |l| {
                    let Some(a) = l.load(&id)? else { return Ok(None) };
                    transitions::expire_if_due(l, &a, now_ms)?;
                    l.load(&id)
                })
            }
            other => Ok(other),
        }
    }

    /// Approvals, newest first, optionally of one status (those whose time is up are
    /// expired first).
    fn list(&self, status: Option<Status>, limit: u32, now_ms: i64) -> Result<Vec<Approval>, StoreError> {
        let first = self.read_list(status, limit)?;
        if first.iter().any(|a| transitions::is_due(a, now_ms)) {
            run(self, Durability::Durable, move |l| transitions::expire_due(l, now_ms))?;
            return self.read_list(status, limit);
        }
        Ok(first)
    }

    /// Records a review and decides the approval when the rules say so.
    fn review(
        &self,
        id: &str,
        reviewer: &Reviewer,
        vote: Vote,
        note: ReviewNote,
        now_ms: i64,
    ) -> Result<Approval, ReviewError> {
        let (id, reviewer) = (id.to_string(), reviewer.clone());
        run(self, Durability::Durable, move |l| transitions::review(l, &id, &reviewer, vote, &note, now_ms))?
    }

    /// Cancels a pending approval (`by` was found allowed to), with `reason`.
    fn cancel(&self, id: &str, by: &Reviewer, reason: &str, now_ms: i64) -> Result<Approval, ReviewError> {
        let (id, by, reason) = (id.to_string(), by.clone(), reason.to_string());
        run(self, Durability::Durable, move |l| transitions::cancel(l, &id, &by, &reason, now_ms))?
    }

    /// Consumes an approved approval for one use.
    fn redeem(&self, req: RedeemRequest, now_ms: i64) -> Result<Result<Approval, RedeemRefusal>, StoreError> {
        run(self, Durability::Durable, move |l| transitions::redeem(l, &req, now_ms))
    }

    /// Applies `expiries` in one transaction. Each approval moves only if it is still as
    /// it was read (status and redeem count), with its audit record and, when it was
    /// pending, an update for the cards still asking for a decision. Returns the ids that
    /// moved.
    fn expire(&self, expiries: Vec<Expiry>, now_ms: i64) -> Result<Vec<String>, StoreError> {
        run(self, Durability::Durable, move |l| transitions::expire(l, expiries.clone(), now_ms))
    }

    /// Expires every approval whose time is up; returns their ids.
    fn expire_due(&self, now_ms: i64) -> Result<Vec<String>, StoreError> {
        run(self, Durability::Durable, move |l| transitions::expire_due(l, now_ms))
    }

    /// Appends gateway decision records to the audit trail, once per `batch` (the
    /// signature of the signed request carrying them): `None` when that batch was
    /// already appended (a replay), and nothing is appended again. Deferred: a log of
    /// decisions already taken grants nothing; the batch's mark shares its commit.
    fn append_decisions(
        &self,
        batch: &str,
        records: Vec<Value>,
        dropped: u64,
        now_ms: i64,
    ) -> Result<Option<usize>, StoreError> {
        let batch = batch.to_string();
        run(self, Durability::Deferred, move |l| transitions::append_decisions(l, &batch, &records, dropped, now_ms))
    }
}

impl<S: Store + ?Sized> Decisions for S {}

/// The create-or-find transaction ([`Decisions::create_or_find`], and its async twin
/// `Approvals::create_or_find`).
pub(crate) fn create_job(
    new: NewApproval,
    asked_id: Option<String>,
    limits: crate::store::CreateLimits,
    now_ms: i64,
) -> impl FnMut(&mut dyn crate::store::Ledger) -> Result<CreateOutcome, StoreError> + Send + 'static {
    move |l| transitions::create_or_find(l, &new, asked_id.as_deref(), limits, now_ms)
}
