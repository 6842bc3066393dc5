//! Delivers queued notifications to every channel. The store queues them in the same
//! transaction as the change they announce (`store/outbox.rs`); this worker posts each
//! approval once per reviewers' target, then keeps the posted copies up to date, tells
//! the agent's owner once when it closes (an owner target), retrying failures
//! with exponential backoff. A failing channel never blocks or loses an approval: the
//! approval is decided in the store, whatever happens here, and a notification that
//! cannot be delivered ends as `notification.failed` in the audit trail, in metrics and in
//! the approval's API view.

use std::sync::Arc;
use std::time::Duration;

use super::{ApprovalView, Audience, DeliveryError, Notifier};
use crate::approvals::Approvals;
use crate::approvals::Decisions;
use crate::metrics::Metrics;
use crate::store::{NotificationOutcome, OutboxItem, Store};
use crate::time::now_ms;

/// How often the worker looks for due notifications when nothing woke it.
pub const POLL_INTERVAL: Duration = Duration::from_millis(200);
/// Attempts before a notification is given up.
pub const MAX_ATTEMPTS: u32 = 8;
/// Notifications handled per pass.
const BATCH: u32 = 32;

/// Delay before attempt `attempts + 1`: 0.5 s doubling, at most 5 minutes.
pub fn backoff(attempts: u32) -> Duration {
    let ms = 500u64.saturating_mul(1u64 << attempts.min(20));
    Duration::from_millis(ms.min(300_000))
}

/// Runs the worker until the task is aborted: one pass every [`POLL_INTERVAL`], or at
/// once when a change is committed.
pub fn spawn(approvals: Arc<Approvals>, notifiers: Vec<Arc<dyn Notifier>>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut changes = approvals.changes.subscribe();
        loop {
            let store = approvals.store.clone();
            let notifiers = notifiers.clone();
            let pass = tokio::task::spawn_blocking(move || deliver_due(store.as_ref(), &notifiers, now_ms()));
            match pass.await {
                Ok(Ok(report)) => report.record(&approvals.metrics),
                Ok(Err(e)) => tracing::error!(error = %e, "notification outbox: store failed"),
                Err(e) => tracing::error!(error = %e, "notification outbox: worker failed"),
            }
            tokio::select! {
                () = tokio::time::sleep(POLL_INTERVAL) => {}
                _ = changes.changed() => {}
            }
        }
    })
}

/// What a pass did, per channel, for metrics.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct PassReport {
    /// `(channel, result)` per delivery attempt: `sent`, `failed`, `given_up`.
    pub attempts: Vec<(&'static str, &'static str)>,
}

impl PassReport {
    fn record(&self, metrics: &Metrics) {
        for (channel, result) in &self.attempts {
            metrics.notification(channel, result);
        }
    }
}

/// One pass over the due notifications.
pub fn deliver_due(
    store: &dyn Store,
    notifiers: &[Arc<dyn Notifier>],
    now_ms: i64,
) -> Result<PassReport, crate::store::StoreError> {
    let mut report = PassReport::default();
    for item in store.due_notifications(now_ms, BATCH)? {
        let outcome = deliver_one(store, notifiers, &item, now_ms, &mut report)?;
        if let NotificationOutcome::Failed { error } = &outcome {
            tracing::error!(approval_id = %item.approval_id, event = %item.event, %error,
                "notification given up; the approval is unaffected and stays decidable through the API");
        }
        store.finish_notification(&item, outcome)?;
    }
    Ok(report)
}

fn deliver_one(
    store: &dyn Store,
    notifiers: &[Arc<dyn Notifier>],
    item: &OutboxItem,
    now_ms: i64,
    report: &mut PassReport,
) -> Result<NotificationOutcome, crate::store::StoreError> {
    let Some(approval) = store.get(&item.approval_id, now_ms)? else {
        return Ok(NotificationOutcome::Done);
    };
    let view = ApprovalView::of(&approval);
    let mut errors = Vec::new();
    let mut failing: Vec<&'static str> = Vec::new();
    let mut retryable = false;
    for notifier in notifiers {
        for target in notifier.targets(&view) {
            let key = target.key.as_str();
            let result = match (target.audience, store.delivered(&item.approval_id, key)?) {
                (Audience::Reviewers, Some(posted)) => notifier
                    .update(key, &posted, &view)
                    .map(|()| store.record_delivery(&item.approval_id, key, None, now_ms)),
                // A target without a copy gets one while reviewers can still act
                // (a conversation learnt after the approval was created, or a post that
                // failed before); a closed approval is not announced afresh.
                (Audience::Reviewers, None) if view.is_open() || item.event == "requested" => notifier
                    .post(key, &view)
                    .map(|message| store.record_delivery(&item.approval_id, key, Some(message), now_ms)),
                // The owner hears once, when it is closed: what happens later (a redeem,
                // an unused approval lapsing) changes nothing they must act on.
                (Audience::Owner, None) if !view.is_open() => notifier
                    .post(key, &view)
                    .map(|message| store.record_delivery(&item.approval_id, key, Some(message), now_ms)),
                _ => continue,
            };
            match result {
                Ok(stored) => {
                    stored?;
                    report.attempts.push((notifier.channel(), "sent"));
                }
                Err(e) => {
                    retryable |= matches!(e, DeliveryError::Retryable(_));
                    tracing::warn!(approval_id = %item.approval_id, target = %key, error = %e, attempt = item.attempts + 1,
                        "notification delivery failed");
                    report.attempts.push((notifier.channel(), "failed"));
                    if !failing.contains(&notifier.channel()) {
                        failing.push(notifier.channel());
                    }
                    errors.push(format!("{key}: {e}"));
                }
            }
        }
    }
    if errors.is_empty() {
        return Ok(NotificationOutcome::Done);
    }
    let error = errors.join("; ");
    if !retryable || item.attempts + 1 >= MAX_ATTEMPTS {
        report.attempts.extend(failing.into_iter().map(|channel| (channel, "given_up")));
        return Ok(NotificationOutcome::Failed { error });
    }
    let delay = i64::try_from(backoff(item.attempts).as_millis()).unwrap_or(i64::MAX);
    Ok(NotificationOutcome::Retry { next_attempt_ms: now_ms.saturating_add(delay), error })
}

#[cfg(test)]
mod tests;
