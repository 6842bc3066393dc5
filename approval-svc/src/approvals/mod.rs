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
use crate::store::{Store, StoreError};
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
