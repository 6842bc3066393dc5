//! The approval use cases, one file each: what happens when a reviewer votes
//! ([`review`]), when the gateway redeems an approval ([`redeem`]) and when deadlines
//! pass ([`expire`]). The transitions they decide are written once in [`transitions`]
//! over the store's rows and run one transaction each by [`Decisions`]. Each applies the pure rules of [`crate::lifecycle`], has the store
//! commit the outcome (compare-and-swap, audit record and reviewer notifications in one
//! transaction), then counts it and wakes the long-polls waiting on it.
//!
//! The reviewer API, the gateway API and the chat callbacks all come through here; the
//! layer knows no HTTP and no channel.

pub mod attempts;
pub mod cancel;
#[cfg(test)]
mod conformance;
pub mod decisions;
pub mod expire;
pub mod redeem;
pub mod review;
#[cfg(test)]
mod store_tests;
pub mod transitions;

use std::sync::Arc;
use std::time::Instant;

use serde_json::json;
use tokio::sync::watch;

use crate::metrics::Metrics;
use crate::store::{CreateOutcome, Durability, Job, Ledger, NewApproval, Output, Store, StoreError, Submitted};
use crate::time::now_ms;
use attempts::{Attempt, RefusedAttempts};

pub use cancel::CancelRefusal;
pub use decisions::Decisions;
pub use redeem::{NotRedeemed, Redeem};
pub use review::{Refusal, ReviewRequest};

/// The use cases, over one store.
pub struct Approvals {
    /// The store.
    pub store: Arc<dyn Store>,
    /// Counters.
    pub metrics: Metrics,
    /// Bumped after every committed decision or expiry (wakes long-polls and the outbox).
    pub changes: watch::Sender<u64>,
    /// Bounds on recording refused review attempts ([`attempts`]).
    pub refused_attempts: RefusedAttempts,
}

impl Approvals {
    /// The use cases over `store`, with fresh counters.
    pub fn new(store: Arc<dyn Store>) -> Approvals {
        Approvals {
            store,
            metrics: Metrics::default(),
            changes: watch::channel(0u64).0,
            refused_attempts: RefusedAttempts::default(),
        }
    }

    /// Wakes every long-poll to re-read its approval.
    pub fn notify(&self) {
        self.changes.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Runs a blocking store call off the async runtime, timing it as an audit append
    /// when `audited`.
    pub async fn blocking<T: Send + 'static>(
        self: &Arc<Self>,
        audited: bool,
        f: impl FnOnce(&dyn Store) -> T + Send + 'static,
    ) -> Result<T, StoreError> {
        let this = self.clone();
        let started = Instant::now();
        let out = tokio::task::spawn_blocking(move || f(this.store.as_ref()))
            .await
            .map_err(|e| StoreError::Database(format!("task failed: {e}")))?;
        if audited {
            self.metrics.audit_append(started.elapsed());
        }
        Ok(out)
    }

    /// Runs `job` as one transaction of the store, awaited on this task: queued straight
    /// to the store's writer when it has one (the writer's reply wakes this task), else
    /// on a blocking thread. Answers once the transaction is committed, and synced to
    /// disk when `durability` is [`Durability::Durable`] — the same promise as
    /// [`Store::transact`]. Durable ones are timed as audit appends.
    pub async fn transact<T: Send + 'static>(
        self: &Arc<Self>,
        durability: Durability,
        mut job: impl FnMut(&mut dyn Ledger) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let started = Instant::now();
        let job: Job = Box::new(move |l| job(l).map(|v| Box::new(v) as Output));
        let out = match self.store.submit(durability, job)? {
            Submitted::Queued(answer) => answer.await.map_err(|_| StoreError::Closed)??,
            Submitted::NotQueued(job) => {
                let this = self.clone();
                tokio::task::spawn_blocking(move || this.store.transact(durability, job))
                    .await
                    .map_err(|e| StoreError::Database(format!("task failed: {e}")))??
            }
        };
        if durability == Durability::Durable {
            self.metrics.audit_append(started.elapsed());
        }
        out.downcast::<T>().map(|b| *b).map_err(|_| StoreError::Corrupt("transaction answered the wrong type".into()))
    }

    /// Creates an approval or finds the live (or recently denied) one for the action:
    /// [`Decisions::create_or_find`], awaited without a blocking thread.
    pub async fn create_or_find(
        self: &Arc<Self>,
        new: NewApproval,
        asked_id: Option<String>,
        now_ms: i64,
    ) -> Result<CreateOutcome, StoreError> {
        let limits = self.store.create_limits();
        self.transact(Durability::Durable, decisions::create_job(new, asked_id, limits, now_ms)).await
    }

    /// Records `attempt` in the audit chain (durable before the refusal is answered)
    /// unless its source is over its bound. A failure to record is logged; the attempt
    /// stays refused either way.
    pub async fn record_refused(self: &Arc<Self>, attempt: Attempt) {
        let Some(suppressed_before) = self.refused_attempts.admit(&attempt.source, now_ms()) else {
            return;
        };
        let Attempt { source: _, approval_id, reviewer, channel, vote, reason, evidence } = attempt;
        let event = json!({"approval_id": approval_id, "reviewer": reviewer, "channel": channel, "vote": vote,
                           "reason": reason, "evidence": evidence, "suppressed_before": suppressed_before});
        match self.blocking(true, move |s| s.append_event("review.refused", event)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) | Err(e) => tracing::error!(error = %e, reason, "refused review attempt not recorded"),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use serde_json::json;

    use super::*;
    use crate::lifecycle::Reuse;
    use crate::store::{AgentRef, SqliteStore};

    const NOW: i64 = 1_800_000_000_000;

    fn new_approval(id: &str) -> NewApproval {
        let agent =
            AgentRef { id: "spiffe://corp/agent/bot".into(), source: "header".into(), owner: None, acts_for: vec![] };
        NewApproval {
            id: id.into(),
            agent: agent.clone(),
            digest: "a".repeat(64),
            quorum: 1,
            reuse: Reuse::Once,
            credential: None,
            expires_at_ms: NOW + 60_000,
            create: json!({"agent": agent, "digest": "a".repeat(64), "request": {"host": "api.example.com"}}),
        }
    }

    #[tokio::test]
    async fn an_awaited_create_is_answered_after_its_synced_commit_and_found_again() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(SqliteStore::open(&dir.path().join("a.db"), None, 0).unwrap());
        let approvals = Arc::new(Approvals::new(store.clone()));
        let (synced_before, _) = store.commits();
        let created = approvals.create_or_find(new_approval("apr_1"), None, NOW).await.unwrap();
        assert!(matches!(&created, CreateOutcome::Created(a) if a.id == "apr_1"), "{created:?}");
        let (synced_after, _) = store.commits();
        assert!(synced_after > synced_before, "answered only after a synchronous = FULL commit");
        // Committed and audited: a second store on the file sees both.
        let reopened = SqliteStore::open(&dir.path().join("a.db"), None, 0).unwrap();
        assert_eq!(reopened.read("apr_1").unwrap().unwrap().id, "apr_1");
        let found = approvals.create_or_find(new_approval("apr_2"), None, NOW).await.unwrap();
        assert!(matches!(&found, CreateOutcome::Found(a) if a.id == "apr_1"), "{found:?}");
    }

    /// A backend without a writer queue (the trait's default) runs the same job on a
    /// blocking thread.
    #[tokio::test]
    async fn a_backend_without_a_queue_runs_the_job_on_a_blocking_thread() {
        struct NoQueue(SqliteStore);
        impl Store for NoQueue {
            fn transact(&self, d: Durability, job: Job) -> Result<Output, StoreError> {
                self.0.transact(d, job)
            }
            fn create_limits(&self) -> crate::store::CreateLimits {
                self.0.create_limits()
            }
            fn read(&self, id: &str) -> Result<Option<crate::store::Approval>, StoreError> {
                self.0.read(id)
            }
            fn read_list(
                &self,
                s: Option<crate::lifecycle::Status>,
                n: u32,
            ) -> Result<Vec<crate::store::Approval>, StoreError> {
                self.0.read_list(s, n)
            }
            fn past_deadline(&self, now: i64) -> Result<Vec<crate::store::Approval>, StoreError> {
                self.0.past_deadline(now)
            }
            fn redeem_replayed(&self, sig: &str, now: i64) -> Result<bool, StoreError> {
                self.0.redeem_replayed(sig, now)
            }
            fn save_conversation(&self, c: &str, id: &str, r: serde_json::Value, now: i64) -> Result<(), StoreError> {
                self.0.save_conversation(c, id, r, now)
            }
            fn conversations(&self, c: &str) -> Result<Vec<(String, serde_json::Value)>, StoreError> {
                self.0.conversations(c)
            }
            fn due_notifications(&self, now: i64, n: u32) -> Result<Vec<crate::store::OutboxItem>, StoreError> {
                self.0.due_notifications(now, n)
            }
            fn finish_notification(
                &self,
                i: &crate::store::OutboxItem,
                o: crate::store::NotificationOutcome,
            ) -> Result<(), StoreError> {
                self.0.finish_notification(i, o)
            }
            fn delivered(&self, a: &str, t: &str) -> Result<Option<serde_json::Value>, StoreError> {
                self.0.delivered(a, t)
            }
            fn record_delivery(
                &self,
                a: &str,
                t: &str,
                m: Option<serde_json::Value>,
                now: i64,
            ) -> Result<(), StoreError> {
                self.0.record_delivery(a, t, m, now)
            }
            fn notification_status(&self, a: &str) -> Result<serde_json::Value, StoreError> {
                self.0.notification_status(a)
            }
            fn ping(&self) -> Result<(), StoreError> {
                self.0.ping()
            }
            fn pending_count(&self) -> Result<u64, StoreError> {
                self.0.pending_count()
            }
            fn commits(&self) -> (u64, u64) {
                self.0.commits()
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let store = NoQueue(SqliteStore::open(&dir.path().join("b.db"), None, 0).unwrap());
        let approvals = Arc::new(Approvals::new(Arc::new(store)));
        let created = approvals.create_or_find(new_approval("apr_1"), None, NOW).await.unwrap();
        assert!(matches!(&created, CreateOutcome::Created(a) if a.id == "apr_1"), "{created:?}");
    }
}
