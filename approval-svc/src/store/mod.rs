//! Approval storage. [`Store`] is what the service needs from a store: `sqlite` is the
//! embedded default, `postgres` the backend for several replicas. A backend implements
//! the rows ([`Ledger`]), [`Store::transact`] and the queries; it decides nothing. The
//! transitions are decided in the use-case layer (`crate::approvals::transitions`) and
//! run as one transaction each through [`run`].

pub mod ledger;
mod migrations;
pub mod outbox;
pub mod postgres;
pub mod sqlite;
mod wal;
pub(crate) mod writer;

use std::any::Any;

use serde_json::Value;

use crate::lifecycle::{Parties, Reuse, Status, Vote};

pub use ledger::Ledger;
pub use outbox::{NotificationOutcome, OutboxItem};
pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;
pub use wal::DEFAULT_CHECKPOINT_INTERVAL;

/// The bounds a create is checked against.
#[derive(Clone, Copy, Debug)]
pub struct CreateLimits {
    /// Most pending approvals of one agent.
    pub pending: u32,
    /// How long a denial answers identical creates (ms; 0: never).
    pub denied_retry_window_ms: i64,
}

/// A store failure (not a refusal): the caller answers 5xx.
#[derive(Clone, Debug, thiserror::Error)]
pub enum StoreError {
    /// The database refused or failed.
    #[error("database: {0}")]
    Database(String),
    /// The writer thread is gone.
    #[error("store writer is not running")]
    Closed,
    /// Stored data does not parse.
    #[error("corrupt row: {0}")]
    Corrupt(String),
}

/// The agent behind an approval.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AgentRef {
    /// Agent id.
    pub id: String,
    /// `mtls`, `jwt` or `header`.
    pub source: String,
    /// The agent's owner.
    #[serde(default)]
    pub owner: Option<String>,
    /// Identities the agent acts for.
    #[serde(default)]
    pub acts_for: Vec<String>,
}

/// What the gateway asks to create.
#[derive(Clone, Debug)]
pub struct NewApproval {
    /// Fresh `apr_…` id (used only if a new approval is created).
    pub id: String,
    /// The requesting agent.
    pub agent: AgentRef,
    /// Action digest.
    pub digest: String,
    /// Quorum (≥ 1).
    pub quorum: u32,
    /// Reuse rule.
    pub reuse: Reuse,
    /// Credential profile name.
    pub credential: Option<String>,
    /// Deadline.
    pub expires_at_ms: i64,
    /// The gateway's create body, as received (redacted by the filter).
    pub create: Value,
}

/// What comes with a vote: the reviewer's comment, the channel it came through and the
/// channel's evidence of the verified callback (recorded in the review's audit record).
#[derive(Clone, Debug, Default)]
pub struct ReviewNote {
    /// Reviewer's comment.
    pub comment: Option<String>,
    /// `api`, `teams`, `slack`, ...
    pub channel: String,
    /// Activity / action id, body hash, key id, ... (`Null` for the API).
    pub evidence: Value,
}

impl ReviewNote {
    /// A vote through the reviewer API.
    pub fn api(comment: Option<String>) -> ReviewNote {
        ReviewNote { comment, channel: "api".into(), evidence: Value::Null }
    }
}

/// One review.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReviewRecord {
    /// Reviewer id (lower-cased).
    pub reviewer: String,
    /// Approve or deny.
    pub vote: Vote,
    /// Reviewer's comment.
    pub comment: Option<String>,
    /// `api`, `teams`, `slack`, ...
    pub channel: String,
    /// When.
    pub time_ms: i64,
}

/// An approval as stored.
#[derive(Clone, Debug)]
pub struct Approval {
    /// `apr_…`.
    pub id: String,
    /// Where it stands.
    pub status: Status,
    /// Agent id.
    pub agent: String,
    /// Action digest.
    pub digest: String,
    /// Created.
    pub created_ms: i64,
    /// Deadline.
    pub expires_ms: i64,
    /// Approved/denied/expired at.
    pub decided_ms: Option<i64>,
    /// Redeemable until (set on approval).
    pub usable_until_ms: Option<i64>,
    /// Redeems so far.
    pub redeem_count: i64,
    /// Distinct approvers needed.
    pub quorum: u32,
    /// `once` or `window:<d>`.
    pub reuse: String,
    /// Credential profile.
    pub credential: Option<String>,
    /// The gateway's create body.
    pub create: Value,
    /// Reviews so far, oldest first.
    pub reviews: Vec<ReviewRecord>,
}

impl Approval {
    /// The agent, owner and acts-for of the action.
    pub fn parties(&self) -> Parties {
        let agent: AgentRef =
            self.create.get("agent").cloned().and_then(|a| serde_json::from_value(a).ok()).unwrap_or_default();
        Parties { agent: self.agent.clone(), owner: agent.owner, acts_for: agent.acts_for }
    }

    /// The policy's approver groups.
    pub fn groups(&self) -> Vec<String> {
        self.create
            .pointer("/policy/approvers/groups")
            .and_then(Value::as_array)
            .map(|gs| gs.iter().filter_map(Value::as_str).map(str::to_string).collect())
            .unwrap_or_default()
    }

    /// The upstream host of the action.
    pub fn host(&self) -> String {
        self.create.pointer("/request/host").and_then(Value::as_str).unwrap_or_default().to_string()
    }

    /// Why `agent` presenting `digest` cannot redeem this approval now, if it cannot.
    pub fn redeem_refusal(&self, agent: &str, digest: &str) -> Option<RedeemRefusal> {
        if self.agent != agent || self.digest != digest {
            return Some(RedeemRefusal::Mismatch);
        }
        RedeemRefusal::of_status(self.status)
    }

    /// Ids of the reviewers who approved.
    pub fn approvers(&self) -> Vec<String> {
        self.reviews.iter().filter(|r| r.vote == Vote::Approve).map(|r| r.reviewer.clone()).collect()
    }
}

/// Result of create-or-find.
#[derive(Clone, Debug)]
pub enum CreateOutcome {
    /// A live approval for this action (or the one asked for by id).
    Found(Approval),
    /// A new approval.
    Created(Approval),
    /// Reviewers denied (or someone cancelled) this action within
    /// `approvals.denied_retry_window`: the identical retry gets that answer, and nothing
    /// is created or sent to reviewers.
    RecentlyDenied(Approval),
    /// The asked-for id does not exist or is for another agent/action.
    Mismatch,
    /// Find only: no approval answers this action, and none was created (the gateway
    /// sends the full create, which carries the body reviewers are shown).
    Absent,
    /// The agent already has the most pending approvals allowed: nothing was created.
    TooManyPending {
        /// The limit in force.
        limit: u32,
    },
}

/// Why a review was not counted.
#[derive(Clone, Debug, thiserror::Error)]
pub enum ReviewError {
    /// No such approval.
    #[error("no such approval")]
    NotFound,
    /// Already approved/denied/....
    #[error("approval is already {0}")]
    AlreadyDecided(Status),
    /// Past its deadline.
    #[error("approval expired")]
    Expired,
    /// This reviewer already voted.
    #[error("reviewer already voted")]
    DuplicateVote,
    /// Reviewer is the agent, its owner, or someone it acts for.
    #[error("separation of duties")]
    SeparationOfDuties,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why a redeem was refused (`docs/protocol.md`: 409/410).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RedeemRefusal {
    /// Already used up.
    Consumed,
    /// Unknown id, or another agent/digest.
    Mismatch,
    /// Pending, denied or cancelled.
    NotApproved,
    /// Past its deadline or reuse window.
    Expired,
}

impl RedeemRefusal {
    /// Why an approval at `status` cannot be redeemed, if it cannot: the one place this
    /// is decided (the use case asks before minting, the store again inside the
    /// consuming transaction).
    pub fn of_status(status: Status) -> Option<RedeemRefusal> {
        match status {
            Status::Approved => None,
            Status::Redeemed => Some(RedeemRefusal::Consumed),
            Status::Expired => Some(RedeemRefusal::Expired),
            Status::Pending | Status::Denied | Status::Cancelled => Some(RedeemRefusal::NotApproved),
        }
    }

    /// The protocol's status word.
    pub fn as_str(self) -> &'static str {
        match self {
            RedeemRefusal::Consumed => "consumed",
            RedeemRefusal::Mismatch => "mismatch",
            RedeemRefusal::NotApproved => "not_approved",
            RedeemRefusal::Expired => "expired",
        }
    }
}

/// What the audit trail records about a minted credential (never the secret).
#[derive(Clone, Debug, Default)]
pub struct MintRecord {
    /// Profile name, `None` when the policy names no credential.
    pub profile: Option<String>,
    /// Metadata: kind, jti, expiry, header names.
    pub details: Value,
}

/// How long the store remembers the signature of a redeem that minted or of a decision
/// batch it appended (ms): longer than any signed request stays valid (the gateway's
/// ±60 s timestamp window, both ways).
pub const REPLAY_HORIZON_MS: i64 = 2 * 60_000 + 10_000;

/// How long a denial answers identical retries by default
/// (`approvals.denied_retry_window`).
pub const DEFAULT_DENIED_RETRY_WINDOW: std::time::Duration = std::time::Duration::from_secs(15 * 60);

/// What a redeem needs.
#[derive(Clone, Debug)]
pub struct RedeemRequest {
    /// The signature of the signed request asking: a redeem that minted is never
    /// honoured again for the same bytes (`Consumed`), even after a restart.
    pub signature: String,
    /// Approval id.
    pub approval_id: String,
    /// Gateway decision id.
    pub decision_id: String,
    /// Agent presenting it.
    pub agent: String,
    /// Digest presented.
    pub digest: String,
    /// Credential minted for this redeem.
    pub mint: MintRecord,
}

/// An approval whose time is up, and the status the lifecycle rules move it to
/// ([`crate::lifecycle::due_transition`]).
#[derive(Clone, Debug)]
pub struct Expiry {
    /// The approval as it was read.
    pub approval: Approval,
    /// Where it goes: expired, or redeemed when a used reuse window closes.
    pub to: Status,
}

/// Whether a transaction's commit must reach the disk before anyone hears back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durability {
    /// Synced before the answer: everything a reviewer or the gateway acts on.
    Durable,
    /// Committed before the answer (a process crash cannot undo it), synced soon after:
    /// only records of decisions already enforced (the gateway's decision log).
    Deferred,
}

/// What a transaction answers, type-erased so [`Store`] stays object-safe.
pub type Output = Box<dyn Any + Send>;

/// A unit of work run in one transaction. It may run more than once (a backend retries
/// it after a serialisation failure), so it must not have effects outside the ledger.
pub type Job = Box<dyn FnMut(&mut dyn Ledger) -> Result<Output, StoreError> + Send>;

/// Where [`Store::submit`] put a job.
pub enum Submitted {
    /// Queued to the backend's writer: its outcome arrives here once committed (synced
    /// to disk first when durable), exactly when [`Store::transact`] would answer.
    Queued(tokio::sync::oneshot::Receiver<Result<Output, StoreError>>),
    /// The backend has no queue for async callers: run the job with [`Store::transact`]
    /// on a blocking thread.
    NotQueued(Job),
}

/// Runs `job` in one transaction of `store` and answers what it returned.
pub fn run<S, T>(
    store: &S,
    durability: Durability,
    mut job: impl FnMut(&mut dyn Ledger) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError>
where
    S: Store + ?Sized,
    T: Send + 'static,
{
    let out = store.transact(durability, Box::new(move |l| job(l).map(|v| Box::new(v) as Output)))?;
    out.downcast::<T>().map(|b| *b).map_err(|_| StoreError::Corrupt("transaction answered the wrong type".into()))
}

/// The service's view of storage. A backend implements the rows ([`Ledger`]) and the
/// queries; every transition is decided once, in the use-case layer
/// (`crate::approvals::transitions`), and run through [`Store::transact`].
pub trait Store: Send + Sync {
    /// Runs `job` in one transaction: all of it commits, or none.
    fn transact(&self, durability: Durability, job: Job) -> Result<Output, StoreError>;
    /// Queues `job` for an async caller, with the same guarantees as
    /// [`Store::transact`], when the backend has a writer queue; otherwise hands the job
    /// back.
    fn submit(&self, durability: Durability, job: Job) -> Result<Submitted, StoreError> {
        let _ = durability;
        Ok(Submitted::NotQueued(job))
    }
    /// Bounds on creates (pending cap, denied-retry window).
    fn create_limits(&self) -> CreateLimits;
    /// One approval as stored (no expiry applied).
    fn read(&self, id: &str) -> Result<Option<Approval>, StoreError>;
    /// Approvals as stored, newest first, optionally of one status.
    fn read_list(&self, status: Option<Status>, limit: u32) -> Result<Vec<Approval>, StoreError>;
    /// Live approvals (pending, or approved within reuse) whose deadline or reuse window
    /// has passed at `now_ms`: what an expiry sweep decides about.
    fn past_deadline(&self, now_ms: i64) -> Result<Vec<Approval>, StoreError>;
    /// Whether a redeem signed with `signature` already minted (a replay).
    fn redeem_replayed(&self, signature: &str, now_ms: i64) -> Result<bool, StoreError>;
    /// Remembers a chat conversation the bot may post to (Teams installs); replaces the
    /// reference of a known `id`.
    fn save_conversation(&self, channel: &str, id: &str, reference: Value, now_ms: i64) -> Result<(), StoreError>;
    /// Every conversation remembered for `channel`, as `(id, reference)`.
    fn conversations(&self, channel: &str) -> Result<Vec<(String, Value)>, StoreError>;
    /// Up to `limit` notifications due at `now_ms` (one per approval, oldest first),
    /// leased to this process: no other replica gets them until the lease ends.
    fn due_notifications(&self, now_ms: i64, limit: u32) -> Result<Vec<OutboxItem>, StoreError>;
    /// Records how an attempt at `item` ended.
    fn finish_notification(&self, item: &OutboxItem, outcome: NotificationOutcome) -> Result<(), StoreError>;
    /// The reference of the message posted for `approval_id` at `target`, if any.
    fn delivered(&self, approval_id: &str, target: &str) -> Result<Option<Value>, StoreError>;
    /// Remembers a posted message (`Some`) or that it was updated (`None`).
    fn record_delivery(
        &self,
        approval_id: &str,
        target: &str,
        message: Option<Value>,
        now_ms: i64,
    ) -> Result<(), StoreError>;
    /// Posted copies and failing notifications of one approval, for reviewers.
    fn notification_status(&self, approval_id: &str) -> Result<Value, StoreError>;
    /// Whether the store accepts writes.
    fn ping(&self) -> Result<(), StoreError>;
    /// Number of pending approvals.
    fn pending_count(&self) -> Result<u64, StoreError>;
    /// Transactions committed so far: (synced to disk before answering, synced later).
    fn commits(&self) -> (u64, u64);

    /// How long after a denial (or cancellation) an identical create is answered with it;
    /// zero: never (every retry opens a new approval).
    fn denied_retry_window(&self) -> std::time::Duration {
        let ms = self.create_limits().denied_retry_window_ms.max(0);
        std::time::Duration::from_millis(u64::try_from(ms).unwrap_or(0))
    }

    /// Appends one audit event of `kind` (for events outside a transition).
    fn append_event(&self, kind: &str, event: Value) -> Result<(), StoreError> {
        let kind = kind.to_string();
        run(self, Durability::Durable, move |l| l.append(&kind, &event).map(|_| ()))
    }

    /// Seals the current chain head (e.g. at shutdown).
    fn checkpoint(&self) -> Result<(), StoreError> {
        run(self, Durability::Durable, |l| l.seal())
    }
}
