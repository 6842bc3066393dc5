//! Deadlines pass: a pending approval nobody decided in time expires, and an approved
//! one expires when its reuse window closes (or counts as redeemed if it was used).
//! The lifecycle rules ([`due_transition`]) decide each move; the store applies them,
//! each only if the approval is still as it was read, with its audit record.

use std::sync::Arc;

use super::Approvals;
use super::Decisions;
use crate::lifecycle::due_transition;
use crate::store::{Expiry, StoreError};

impl Approvals {
    /// Moves every approval whose time is up at `now_ms`, counts and logs each, and wakes
    /// the long-polls when anything moved. Returns the ids that moved.
    pub async fn expire_due(self: &Arc<Self>, now_ms: i64) -> Result<Vec<String>, StoreError> {
        let due = self.blocking(false, move |s| s.past_deadline(now_ms)).await??;
        let expiries: Vec<Expiry> = due
            .into_iter()
            .filter_map(|approval| {
                let to = due_transition(
                    approval.status,
                    approval.expires_ms,
                    approval.usable_until_ms,
                    approval.redeem_count,
                    now_ms,
                )?;
                Some(Expiry { approval, to })
            })
            .collect();
        if expiries.is_empty() {
            return Ok(Vec::new());
        }
        let moved = self.blocking(false, move |s| s.expire(expiries, now_ms)).await??;
        for id in &moved {
            tracing::info!(approval_id = %id, "approval expired");
            self.metrics.outcome("expired");
        }
        if !moved.is_empty() {
            self.notify();
        }
        Ok(moved)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use serde_json::json;

    use super::*;
    use crate::lifecycle::{Reuse, Status};
    use crate::store::{AgentRef, CreateOutcome, NewApproval, SqliteStore};

    const NOW: i64 = 1_800_000_000_000;

    fn pending(store: &SqliteStore, id: &str, digest: &str) {
        let agent =
            AgentRef { id: "spiffe://corp/agent/bot".into(), source: "header".into(), owner: None, acts_for: vec![] };
        let new = NewApproval {
            id: id.into(),
            agent: agent.clone(),
            digest: digest.repeat(64),
            quorum: 1,
            reuse: Reuse::Once,
            credential: None,
            expires_at_ms: NOW + 60_000,
            create: json!({"agent": agent, "digest": digest.repeat(64), "request": {"host": "api.example.com"}}),
        };
        assert!(matches!(store.create_or_find(new, None, NOW).unwrap(), CreateOutcome::Created(_)));
    }

    #[tokio::test]
    async fn a_sweep_expires_what_is_past_its_deadline_once_and_wakes_the_long_polls() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(SqliteStore::open(&dir.path().join("airlock.db"), None, 10).unwrap());
        pending(&store, "apr_1", "a");
        let approvals = Arc::new(Approvals::new(store.clone()));
        let changes = approvals.changes.subscribe();
        assert!(approvals.expire_due(NOW + 59_999).await.unwrap().is_empty());
        assert!(!changes.has_changed().unwrap());
        assert_eq!(approvals.expire_due(NOW + 60_000).await.unwrap(), vec!["apr_1".to_string()]);
        assert!(changes.has_changed().unwrap());
        assert_eq!(store.get("apr_1", NOW + 60_000).unwrap().unwrap().status, Status::Expired);
        assert!(approvals.expire_due(NOW + 60_001).await.unwrap().is_empty());
    }
}
