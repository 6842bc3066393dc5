//! The outbox against a real SQLite file and an in-memory channel that can fail on
//! demand: each target gets one post per approval, then updates; failures retry with
//! backoff and never touch the approval; the queue survives a restart.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};

use super::*;
use crate::approvals::Decisions;
use crate::channels::Target;
use crate::lifecycle::{Reuse, Reviewer, Status, Vote};
use crate::store::{AgentRef, CreateOutcome, NewApproval, ReviewNote, SqliteStore};

const NOW: i64 = 1_800_000_000_000;

/// Records what it was asked to send; `fail[target]` makes that target fail.
#[derive(Default)]
struct Recorder {
    targets: Vec<String>,
    sent: Mutex<Vec<(String, String, String)>>,
    fail: Mutex<BTreeMap<String, DeliveryError>>,
}

impl Recorder {
    fn with(targets: &[&str]) -> Arc<Recorder> {
        Arc::new(Recorder { targets: targets.iter().map(|t| t.to_string()).collect(), ..Default::default() })
    }
    fn sent(&self) -> Vec<(String, String, String)> {
        self.sent.lock().unwrap().clone()
    }
    fn fail(&self, target: &str, e: Option<DeliveryError>) {
        let mut f = self.fail.lock().unwrap();
        match e {
            Some(e) => f.insert(target.into(), e),
            None => f.remove(target),
        };
    }
    fn check(&self, target: &str) -> Result<(), DeliveryError> {
        self.fail.lock().unwrap().get(target).cloned().map_or(Ok(()), Err)
    }
}

impl Notifier for Recorder {
    fn channel(&self) -> &'static str {
        "test"
    }
    fn targets(&self, view: &ApprovalView) -> Vec<Target> {
        let mut targets: Vec<Target> = self.targets.iter().map(Target::reviewers).collect();
        // The owner's target exists for approvals that name an owner.
        targets.extend(view.owner.as_ref().map(|o| Target::owner(format!("owner:{o}"))));
        targets
    }
    fn post(&self, target: &str, view: &ApprovalView) -> Result<Value, DeliveryError> {
        self.check(target)?;
        self.sent.lock().unwrap().push(("post".into(), target.into(), view.status_line()));
        Ok(json!({"message": format!("{target}/{}", view.id)}))
    }
    fn update(&self, target: &str, posted: &Value, view: &ApprovalView) -> Result<(), DeliveryError> {
        self.check(target)?;
        assert_eq!(posted["message"], format!("{target}/{}", view.id), "update must address the posted copy");
        self.sent.lock().unwrap().push(("update".into(), target.into(), view.status_line()));
        Ok(())
    }
}

fn store(dir: &tempfile::TempDir) -> SqliteStore {
    SqliteStore::open(&dir.path().join("airlock.db"), Some(vec![9; 32]), 10).unwrap()
}

fn create(store: &SqliteStore, id: &str, quorum: u32) {
    create_owned(store, id, quorum, None);
}

fn create_owned(store: &SqliteStore, id: &str, quorum: u32, owner: Option<&str>) {
    let agent = AgentRef {
        id: "spiffe://corp/agent/bot".into(),
        source: "header".into(),
        owner: owner.map(str::to_string),
        ..Default::default()
    };
    let new = NewApproval {
        id: id.into(),
        agent: agent.clone(),
        digest: id.repeat(4),
        quorum,
        reuse: Reuse::Once,
        credential: None,
        expires_at_ms: NOW + 60_000,
        create: json!({"agent": agent, "request": {"method": "POST", "host": "api.example.com", "path": "/x"}}),
    };
    assert!(matches!(store.create_or_find(new, None, NOW).unwrap(), CreateOutcome::Created(_)));
}

fn approve(store: &SqliteStore, id: &str, who: &str) -> Status {
    let r = Reviewer { id: who.into(), groups: vec![], aliases: vec![] };
    store.review(id, &r, Vote::Approve, ReviewNote::api(None), NOW).unwrap().status
}

fn pass(store: &SqliteStore, notifiers: &[Arc<dyn Notifier>], at: i64) -> PassReport {
    deliver_due(store, notifiers, at).unwrap()
}

#[test]
fn posts_once_per_target_then_updates_the_posted_copies() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(&dir);
    let chat = Recorder::with(&["t:a", "t:b"]);
    let notifiers: Vec<Arc<dyn Notifier>> = vec![chat.clone()];
    create(&s, "apr_1", 2);
    pass(&s, &notifiers, NOW);
    pass(&s, &notifiers, NOW + 1);
    assert_eq!(chat.sent().iter().filter(|(k, _, _)| k == "post").count(), 2, "{:?}", chat.sent());

    approve(&s, "apr_1", "bob");
    pass(&s, &notifiers, NOW + 2);
    assert!(chat.sent().contains(&("update".into(), "t:a".into(), "pending (1/2 approvals)".into())));
    assert_eq!(approve(&s, "apr_1", "carol"), Status::Approved);
    pass(&s, &notifiers, NOW + 3);
    let last: Vec<_> = chat.sent().into_iter().rev().take(2).collect();
    assert!(last.iter().all(|(k, _, line)| k == "update" && line == "approved by bob, carol"), "{last:?}");
    assert_eq!(chat.sent().iter().filter(|(k, _, _)| k == "post").count(), 2, "never posted twice");
    assert!(pass(&s, &notifiers, NOW + 10_000).attempts.is_empty(), "nothing left to send");
}

#[test]
fn a_failing_target_is_retried_with_backoff_without_reposting_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(&dir);
    let chat = Recorder::with(&["t:ok", "t:down"]);
    let notifiers: Vec<Arc<dyn Notifier>> = vec![chat.clone()];
    chat.fail("t:down", Some(DeliveryError::Retryable("503".into())));
    create(&s, "apr_2", 1);
    let report = pass(&s, &notifiers, NOW);
    assert_eq!(report.attempts, vec![("test", "sent"), ("test", "failed")]);
    let status = s.notification_status("apr_2").unwrap();
    assert_eq!(status["failing"][0]["state"], "pending");
    assert!(status["failing"][0]["error"].as_str().unwrap().contains("t:down: 503"));

    // Not due again before its backoff.
    assert!(pass(&s, &notifiers, NOW + 100).attempts.is_empty());
    chat.fail("t:down", None);
    pass(&s, &notifiers, NOW + backoff(0).as_millis() as i64);
    let posts: Vec<_> = chat.sent().into_iter().filter(|(k, _, _)| k == "post").map(|(_, t, _)| t).collect();
    assert_eq!(posts, vec!["t:ok".to_string(), "t:down".to_string()]);
    // The approval itself never depended on delivery.
    assert_eq!(approve(&s, "apr_2", "bob"), Status::Approved);
}

#[test]
fn permanent_failures_and_exhausted_retries_are_given_up_and_audited() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(&dir);
    let chat = Recorder::with(&["t:bad"]);
    let notifiers: Vec<Arc<dyn Notifier>> = vec![chat.clone()];
    chat.fail("t:bad", Some(DeliveryError::Permanent("400 channel_not_found".into())));
    create(&s, "apr_3", 1);
    let report = pass(&s, &notifiers, NOW);
    assert!(report.attempts.contains(&("test", "given_up")));
    assert_eq!(s.notification_status("apr_3").unwrap()["failing"][0]["state"], "failed");

    chat.fail("t:bad", Some(DeliveryError::Retryable("timeout".into())));
    create(&s, "apr_4", 1);
    let mut at = NOW;
    for _ in 0..MAX_ATTEMPTS {
        pass(&s, &notifiers, at);
        at += backoff(MAX_ATTEMPTS).as_millis() as i64;
    }
    assert_eq!(s.notification_status("apr_4").unwrap()["failing"][0]["state"], "failed");
    let conn = rusqlite::Connection::open(dir.path().join("airlock.db")).unwrap();
    let audited: i64 = conn
        .query_row("SELECT COUNT(*) FROM audit_records WHERE kind = 'notification.failed'", [], |r| r.get(0))
        .unwrap();
    assert_eq!(audited, 2);
}

#[test]
fn queued_notifications_survive_a_restart_and_expiry_is_announced() {
    let dir = tempfile::tempdir().unwrap();
    {
        let s = store(&dir);
        create(&s, "apr_5", 1);
    }
    let s = store(&dir);
    let chat = Recorder::with(&["t:a"]);
    let notifiers: Vec<Arc<dyn Notifier>> = vec![chat.clone()];
    pass(&s, &notifiers, NOW);
    assert_eq!(chat.sent().len(), 1, "the notification queued before the restart was delivered");
    s.expire_due(NOW + 120_000).unwrap();
    pass(&s, &notifiers, NOW + 120_000);
    assert_eq!(chat.sent().last().unwrap(), &("update".into(), "t:a".into(), "expired".into()));
}

fn deny(store: &SqliteStore, id: &str, who: &str, comment: &str) -> Status {
    let r = Reviewer { id: who.into(), groups: vec![], aliases: vec![] };
    store.review(id, &r, Vote::Deny, ReviewNote::api(Some(comment.into())), NOW).unwrap().status
}

#[test]
fn the_owner_is_told_once_when_it_closes_and_never_while_open() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(&dir);
    let chat = Recorder::with(&["t:a"]);
    let notifiers: Vec<Arc<dyn Notifier>> = vec![chat.clone()];
    create_owned(&s, "apr_6", 2, Some("alice@corp.example"));
    pass(&s, &notifiers, NOW);
    approve(&s, "apr_6", "bob");
    pass(&s, &notifiers, NOW + 1);
    let to_owner = |c: &Recorder| c.sent().into_iter().filter(|(_, t, _)| t.starts_with("owner:")).collect::<Vec<_>>();
    assert!(to_owner(&chat).is_empty(), "nothing for the owner while it is open: {:?}", chat.sent());
    assert_eq!(deny(&s, "apr_6", "carol", "not today"), Status::Denied);
    pass(&s, &notifiers, NOW + 2);
    assert_eq!(
        to_owner(&chat),
        vec![("post".to_string(), "owner:alice@corp.example".to_string(), "denied by carol".to_string())]
    );
    s.expire_due(NOW + 120_000).unwrap();
    pass(&s, &notifiers, NOW + 120_000);
    assert_eq!(to_owner(&chat).len(), 1, "told once, never updated");

    // Expiry is an outcome too.
    create_owned(&s, "apr_7", 1, Some("alice@corp.example"));
    pass(&s, &notifiers, NOW);
    s.expire_due(NOW + 120_000).unwrap();
    pass(&s, &notifiers, NOW + 120_001);
    assert!(chat.sent().contains(&("post".into(), "owner:alice@corp.example".into(), "expired".into())));
}

#[test]
fn a_failing_owner_notice_is_retried_until_it_lands() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(&dir);
    let chat = Recorder::with(&[]);
    let notifiers: Vec<Arc<dyn Notifier>> = vec![chat.clone()];
    chat.fail("owner:alice@corp.example", Some(DeliveryError::Retryable("503".into())));
    create_owned(&s, "apr_8", 1, Some("alice@corp.example"));
    assert_eq!(deny(&s, "apr_8", "carol", "no"), Status::Denied);
    pass(&s, &notifiers, NOW);
    pass(&s, &notifiers, NOW + 1);
    assert!(chat.sent().is_empty());
    chat.fail("owner:alice@corp.example", None);
    let mut at = NOW;
    for attempt in 0..3 {
        at += backoff(attempt).as_millis() as i64;
        pass(&s, &notifiers, at);
    }
    assert_eq!(chat.sent().len(), 1, "delivered after the retry: {:?}", chat.sent());
}

#[test]
fn backoff_doubles_and_is_capped() {
    assert_eq!(backoff(0), Duration::from_millis(500));
    assert_eq!(backoff(3), Duration::from_secs(4));
    assert_eq!(backoff(40), Duration::from_secs(300));
}
