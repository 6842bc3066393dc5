//! What a backend does inside one transaction: read rows, write rows, compare-and-swap,
//! append to the audit chain, queue notifications. No rule lives here: the transitions
//! (`transitions.rs`) decide, over this trait, once for every backend.
//!
//! A backend guarantees, for the life of the transaction:
//! - [`Ledger::load`] locks the approval it reads (SQLite: the single writer; PostgreSQL:
//!   `SELECT … FOR UPDATE`), so a decision taken on what was read still holds at commit;
//! - [`Ledger::lock_agent`] serialises creates of one agent (the pending cap and the
//!   one-live-approval-per-action rule), across replicas;
//! - [`Ledger::append`] extends the one audit chain (appends are serialised in the
//!   database), sealing every `checkpoint_every` records.

use serde_json::Value;

use super::{Approval, NewApproval, StoreError};
use crate::lifecycle::{Status, Vote};

/// Why a review row was refused by the database's own constraints.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RowRefusal {
    /// An identity of the reviewer is a party of the approval (the store's
    /// separation-of-duties constraint).
    SeparationOfDuties,
    /// The approval is no longer pending.
    NotPending,
    /// This reviewer (or one of its identities) already has a row.
    Duplicate,
}

/// A status change, applied only if the approval is still as read.
#[derive(Clone, Debug)]
pub struct StatusChange<'a> {
    /// The approval.
    pub id: &'a str,
    /// Status as read.
    pub from: Status,
    /// Redeem count as read.
    pub redeem_count: i64,
    /// The new status.
    pub to: Status,
    /// Decision time (kept if one is already set).
    pub decided_ms: i64,
    /// Redeemable until (set when approving).
    pub usable_until_ms: Option<i64>,
}

/// One review row and the identities behind it.
#[derive(Clone, Debug)]
pub struct ReviewRow<'a> {
    /// The approval.
    pub approval_id: &'a str,
    /// Reviewer id (lower-cased).
    pub reviewer: &'a str,
    /// Every identity of the reviewer (id and aliases, lower-cased).
    pub identities: &'a [String],
    /// Approve or deny.
    pub vote: Vote,
    /// Comment.
    pub comment: Option<&'a str>,
    /// Channel.
    pub channel: &'a str,
    /// When.
    pub time_ms: i64,
}

/// One transaction's view of a backend.
pub trait Ledger {
    /// The approval `id` with its reviews, locked until the transaction ends.
    fn load(&mut self, id: &str) -> Result<Option<Approval>, StoreError>;
    /// Serialises every create of `agent` until the transaction ends.
    fn lock_agent(&mut self, agent: &str) -> Result<(), StoreError>;
    /// Ids of the pending or approved approvals of (agent, digest), newest first.
    fn live_ids(&mut self, agent: &str, digest: &str) -> Result<Vec<String>, StoreError>;
    /// The newest approval of (agent, digest) denied or cancelled after `since_ms`.
    fn denied_since(&mut self, agent: &str, digest: &str, since_ms: i64) -> Result<Option<String>, StoreError>;
    /// Counts one more identical retry answered by a denial; returns the new count.
    fn count_refused_retry(&mut self, id: &str) -> Result<i64, StoreError>;
    /// Pending approvals of `agent`.
    fn pending_of(&mut self, agent: &str) -> Result<i64, StoreError>;
    /// Inserts a new pending approval and its parties (who may never review it).
    fn insert_approval(&mut self, new: &NewApproval, parties: &[String], now_ms: i64) -> Result<(), StoreError>;
    /// Whether `identity` already reviewed approval `id` (under any name).
    fn reviewed_by(&mut self, id: &str, identity: &str) -> Result<bool, StoreError>;
    /// Whether `identity` is a party of approval `id`.
    fn is_party(&mut self, id: &str, identity: &str) -> Result<bool, StoreError>;
    /// Inserts a review and its identities; the database's constraints may refuse it.
    fn insert_review(&mut self, row: &ReviewRow<'_>) -> Result<Result<(), RowRefusal>, StoreError>;
    /// Applies `change` if the approval is still at (from, redeem_count); whether it was.
    fn change_status(&mut self, change: &StatusChange<'_>) -> Result<bool, StoreError>;
    /// Counts one redeem: of a `once` approval (status becomes redeemed) or within a
    /// reuse window that is still open at `now_ms`; whether it counted.
    fn count_redeem(&mut self, id: &str, once: bool, now_ms: i64) -> Result<bool, StoreError>;
    /// Whether a redeem signed with `signature` was honoured after `since_ms`.
    fn redeem_seen(&mut self, signature: &str, since_ms: i64) -> Result<bool, StoreError>;
    /// Remembers the signature of a redeem that minted; forgets those older than `forget_before_ms`.
    fn remember_redeem(&mut self, signature: &str, now_ms: i64, forget_before_ms: i64) -> Result<(), StoreError>;
    /// Remembers a decision batch; `false` when it was already remembered. Forgets those
    /// older than `forget_before_ms`.
    fn remember_batch(&mut self, signature: &str, now_ms: i64, forget_before_ms: i64) -> Result<bool, StoreError>;
    /// Live approvals whose deadline or reuse window has passed at `now_ms`.
    fn past_deadline(&mut self, now_ms: i64) -> Result<Vec<Approval>, StoreError>;
    /// Appends an audit record of `kind`; returns its sequence number.
    fn append(&mut self, kind: &str, event: &Value) -> Result<i64, StoreError>;
    /// Seals the chain head now (no-op without a key, records, or if sealed).
    fn seal(&mut self) -> Result<(), StoreError>;
    /// Queues a reviewer notification (`requested` or `updated`).
    fn enqueue(&mut self, approval_id: &str, event: &str, now_ms: i64) -> Result<(), StoreError>;
}
