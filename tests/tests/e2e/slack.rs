//! Slack with the REAL approval service (`airlock serve`) and a fake Slack Web API on
//! 127.0.0.1: the approval is posted as a Block Kit message when it is created; a signed
//! click on Approve decides it and the message is updated; clicks that fail verification
//! (stale or future timestamp, bad signature, re-serialized body, another app or
//! workspace) answer 401 and change nothing; self-approval is refused whether the owner
//! is recognised by Slack user id or by the e-mail `users.info` shows; a retried click is
//! answered once; the audit trail shows the review with channel `slack` and its evidence.
//!
//! Approvals are created through the service's signed gateway API (as the filter does),
//! so no Envoy is needed. Needs `cargo build -p airlock-approval-svc`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use airlock_tests::e2e::cases::{self, Case};
use airlock_tests::e2e::client::{Request, Response};
use airlock_tests::e2e::service::{self, status_of, unix_now, AirlockService, Reviewer, ServiceOptions};
use airlock_tests::fakes::slack::{FakeSlack, SlackCall, SlackFailure};
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

const TOKEN: &str = "xoxb-e2e-bot-token";
pub(crate) const SIGNING_SECRET: &str = "e2e-slack-signing-secret-0123456789";
pub(crate) const APP: &str = "A0E2EAPP";
pub(crate) const TEAM: &str = "T0E2ETEAM";
pub(crate) const CHANNEL: &str = "C0APPROVALS";
pub(crate) const GROUP: &str = "data-owners";
const BOB: &str = "bob@slack.e2e.example";
const CAROL: &str = "carol@slack.e2e.example";
const ALICE: &str = "alice@slack.e2e.example";
/// Bob's Slack user id (an alias in `[[reviewers]]`).
const U_BOB: &str = "U0BOB";
/// Carol is known to Slack only by e-mail (`users.info`).
const U_CAROL: &str = "U0CAROL";
/// Alice owns the agents: her configured Slack id.
const U_ALICE: &str = "U0ALICE";
/// Alice again, as a Slack account the directory only knows through its e-mail.
const U_ALICE_MAIL: &str = "U0ALICEMAIL";
/// Nobody the directory knows.
const U_STRANGER: &str = "U0STRANGER";
/// How long asynchronous effects (outbox deliveries, response_url posts) may take.
const SETTLE: Duration = Duration::from_secs(15);

struct Fixture {
    slack: FakeSlack,
    svc: AirlockService,
}

/// `[slack]` for a service talking to `slack`.
pub fn slack_toml(slack: &FakeSlack) -> String {
    format!(
        "\n[slack]\nbot_token_env = \"AIRLOCK_E2E_SLACK_TOKEN\"\nsigning_secret_env = \"AIRLOCK_E2E_SLACK_SECRET\"\n\
         api_base_url = {:?}\nresponse_url_prefix = {:?}\napp_id = {APP:?}\nteam_id = {TEAM:?}\n\
         channels = [{CHANNEL:?}]\ntimeout = \"3s\"\n",
        slack.api_base_url(),
        slack.response_url_prefix()
    )
}

#[test]
fn slack() {
    let started = Instant::now();
    let slack = FakeSlack::start(TOKEN).unwrap();
    slack.set_email(U_CAROL, CAROL);
    slack.set_email(U_ALICE_MAIL, ALICE);
    slack.set_email(U_STRANGER, "stranger@elsewhere.example");
    let opts = ServiceOptions {
        reviewers: vec![
            Reviewer::new(BOB, &[GROUP]).alias(U_BOB),
            Reviewer::new(CAROL, &[GROUP]),
            Reviewer::new(ALICE, &[GROUP]).alias(U_ALICE),
        ],
        extra_toml: slack_toml(&slack),
        extra_env: vec![
            ("AIRLOCK_E2E_SLACK_TOKEN".into(), TOKEN.into()),
            ("AIRLOCK_E2E_SLACK_SECRET".into(), SIGNING_SECRET.into()),
        ],
        ..ServiceOptions::default()
    };
    let svc = AirlockService::start("slack", &opts).unwrap();
    eprintln!("[e2e_slack] setup {:.1?}", started.elapsed());
    let fx = Fixture { slack, svc };
    let all: &[Case<Fixture>] = &[
        ("message_posted_on_creation", message_posted_on_creation),
        ("signed_click_approves_and_updates_the_message", signed_click_approves_and_updates_the_message),
        ("click_by_email_denies", click_by_email_denies),
        ("retried_click_is_answered_once", retried_click_is_answered_once),
        ("self_approval_by_slack_id_is_refused", self_approval_by_slack_id_is_refused),
        ("self_approval_by_email_is_refused", self_approval_by_email_is_refused),
        ("unknown_user_is_refused", unknown_user_is_refused),
        ("unverified_clicks_change_nothing", unverified_clicks_change_nothing),
        ("rate_limited_post_is_retried", rate_limited_post_is_retried),
        ("failed_update_leaves_the_decision", failed_update_leaves_the_decision),
    ];
    let outcome = cases::run("e2e_slack", &fx, all, |_| {});
    eprintln!("[e2e_slack] total {:.1?}", started.elapsed());
    outcome.unwrap();
}

// ----- creating approvals through the signed gateway API -----

/// Creates a pending approval for an agent owned by `owner`, as the filter would; answers
/// its id. `tag` makes the action (and so the approval) distinct.
pub fn create_approval(svc: &AirlockService, tag: &str, owner: &str) -> String {
    create_approval_at_risk(svc, tag, owner, "high")
}

/// [`create_approval`] with the policy's `risk`.
pub fn create_approval_at_risk(svc: &AirlockService, tag: &str, owner: &str, risk: &str) -> String {
    let digest = hex::encode(Sha256::digest(format!("e2e-channels-{tag}-{}", unix_now()).as_bytes()));
    let body = json!({
        "decision_id": format!("dec_{tag}"),
        "agent": {"id": format!("spiffe://e2e/agent/{tag}"), "source": "header", "owner": owner, "acts_for": []},
        "digest": digest,
        "hold_ms": 0,
        "policy": {"revision": "e2e", "rule": "pii-export", "reason": format!("exports need a data owner ({tag})"),
                   "risk": risk, "approvers": {"groups": [GROUP], "quorum": 1}, "expires_in": "15m",
                   "credential": "export-token", "reuse": "once"},
        "request": {"id": format!("req_{tag}"), "method": "POST", "scheme": "https", "host": "api.e2e.test",
                    "port": 443, "path": "/v1/exports?format=csv", "query": {"format": ["csv"]},
                    "headers": {"content-type": "application/json"},
                    "body": {"customer": {"name": tag, "ssn": "[REDACTED]"}}, "body_size": 64,
                    "body_sha256": digest},
    });
    let resp = svc.gateway_create(&body).unwrap();
    assert_eq!(resp.status, 200, "create: {}", resp.text());
    let doc = resp.json().unwrap();
    assert_eq!(doc["status"], "pending", "{doc}");
    doc["approval_id"].as_str().unwrap().to_string()
}

/// The approval as the reviewer API shows it (read with Bob's key).
fn show(svc: &AirlockService, id: &str) -> Value {
    svc.show(id, &svc.reviewer(BOB).unwrap().api_key).unwrap()
}

fn reviews_of(doc: &Value) -> Vec<Value> {
    doc.get("reviews").and_then(Value::as_array).cloned().unwrap_or_default()
}

// ----- clicks -----

/// `application/x-www-form-urlencoded` encoding of `text` (unreserved bytes kept).
fn form_encode(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(char::from(b)),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// A `block_actions` payload as Slack sends it.
pub(crate) fn click_payload(
    user: &str,
    action: &str,
    approval_id: &str,
    action_ts: &str,
    response: &str,
    slack: &FakeSlack,
) -> Value {
    json!({
        "type": "block_actions",
        "api_app_id": APP,
        "team": {"id": TEAM, "domain": "e2e"},
        "user": {"id": user, "username": user.to_lowercase(), "team_id": TEAM},
        "container": {"type": "message", "message_ts": "1700000000.000001", "channel_id": CHANNEL},
        "channel": {"id": CHANNEL},
        "response_url": slack.response_url(response),
        "trigger_id": "1.2.3",
        "actions": [{"type": "button", "action_id": action, "block_id": format!("airlock:{approval_id}"),
                     "value": approval_id, "action_ts": action_ts}],
    })
}

pub(crate) fn form_body(payload: &Value) -> Vec<u8> {
    format!("payload={}", form_encode(&payload.to_string())).into_bytes()
}

pub(crate) fn v0_signature(timestamp: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(SIGNING_SECRET.as_bytes()).unwrap();
    mac.update(format!("v0:{timestamp}:").as_bytes());
    mac.update(body);
    format!("v0={}", hex::encode(mac.finalize().into_bytes()))
}

/// POSTs `body` to `/slack/interactivity` with the given timestamp and signature.
pub(crate) fn send_click(svc: &AirlockService, body: &[u8], timestamp: &str, signature: &str) -> Response {
    Request::new("POST", "/slack/interactivity")
        .header("host", &format!("127.0.0.1:{}", svc.port()))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-slack-request-timestamp", timestamp)
        .header("x-slack-signature", signature)
        .body(body.to_vec())
        .timeout(Duration::from_secs(10))
        .send(svc.addr())
        .unwrap()
}

/// A correctly signed click; answers the response and the raw body sent.
fn click(fx: &Fixture, user: &str, action: &str, id: &str, action_ts: &str, response: &str) -> (Response, Vec<u8>) {
    let body = form_body(&click_payload(user, action, id, action_ts, response, &fx.slack));
    let ts = unix_now().to_string();
    let resp = send_click(&fx.svc, &body, &ts, &v0_signature(&ts, &body));
    (resp, body)
}

pub(crate) fn outcome(resp: &Response) -> Option<&str> {
    resp.header("x-airlock-slack-outcome")
}

/// The `chat.postMessage` call for approval `id` (waits for the outbox).
fn posted_message(fx: &Fixture, id: &str) -> SlackCall {
    let has = |c: &SlackCall| c.body.to_string().contains(id) && c.answer["ok"] == true;
    let calls = fx.slack.wait_calls("chat.postMessage", SETTLE, |calls| calls.iter().any(has));
    let call = calls.into_iter().find(has).unwrap_or_else(|| panic!("no chat.postMessage for {id}"));
    assert_eq!(call.authorization.as_deref(), Some(format!("Bearer {TOKEN}").as_str()));
    call
}

// ----- cases -----

fn message_posted_on_creation(fx: &Fixture) {
    let id = create_approval(&fx.svc, "slack-post", ALICE);
    let body = posted_message(fx, &id).body;
    assert_eq!(body["channel"], CHANNEL, "{body}");
    let text = body.to_string();
    for needle in [
        "exports need a data owner (slack-post)",
        "high",
        "spiffe://e2e/agent/slack-post",
        ALICE,
        "api.e2e.test/v1/exports",
        "format=csv",
        "[REDACTED]",
        "0/1",
    ] {
        assert!(text.contains(needle), "{needle} in the message: {text}");
    }
    let actions = body["blocks"].as_array().unwrap().iter().find(|b| b["type"] == "actions").expect("an actions block");
    let buttons = actions["elements"].as_array().unwrap();
    assert_eq!(buttons.iter().map(|b| b["action_id"].as_str().unwrap()).collect::<Vec<_>>(), ["approve", "deny"]);
    assert!(buttons.iter().all(|b| b["value"] == id.as_str()), "{buttons:?}");
}

fn signed_click_approves_and_updates_the_message(fx: &Fixture) {
    let id = create_approval(&fx.svc, "slack-approve", ALICE);
    let posted = posted_message(fx, &id);
    let (resp, body) = click(fx, U_BOB, "approve", &id, "1700000001.000100", "approve-1");
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(outcome(&resp), Some("recorded"));
    let shown = show(&fx.svc, &id);
    assert_eq!(status_of(&shown), Some("approved"), "{shown}");
    let reviews = reviews_of(&shown);
    assert_eq!(reviews.len(), 1, "{shown}");
    assert!(reviews[0].to_string().contains(BOB) && reviews[0].to_string().contains("slack"), "{shown}");

    // The clicker is told, privately.
    let told = fx.slack.wait_response("approve-1", SETTLE).expect("a response_url message");
    assert_eq!(told["response_type"], "ephemeral", "{told}");
    assert!(told["text"].as_str().unwrap().contains("Recorded"), "{told}");

    // Every posted copy is brought up to date: no buttons, who decided.
    let has = |c: &SlackCall| c.body.to_string().contains(&id);
    let updates = fx.slack.wait_calls("chat.update", SETTLE, |calls| calls.iter().any(has));
    let update = updates.iter().find(|c| has(c)).unwrap_or_else(|| panic!("no chat.update for {id}"));
    assert_eq!(update.body["channel"], CHANNEL);
    assert_eq!(update.body["ts"], posted.answer["ts"], "the posted message is the one updated");
    assert!(update.body["blocks"].as_array().unwrap().iter().all(|b| b["type"] != "actions"), "{}", update.body);
    assert!(update.body.to_string().contains(BOB), "who decided: {}", update.body);

    // The audit trail holds the review with its channel and the click's evidence.
    let is_review = |r: &Value| service::kind_of(r) == Some("review");
    let records = audit_until(&fx.svc, &id, is_review);
    let review = records.iter().find(|r| is_review(r)).map(Value::to_string).unwrap();
    let body_hash = hex::encode(Sha256::digest(&body));
    for needle in ["\"slack\"", "1700000001.000100", TEAM, APP, U_BOB, body_hash.as_str()] {
        assert!(review.contains(needle), "{needle} in the audit review: {review}");
    }
}

fn click_by_email_denies(fx: &Fixture) {
    let id = create_approval(&fx.svc, "slack-deny", ALICE);
    posted_message(fx, &id);
    let (resp, _) = click(fx, U_CAROL, "deny", &id, "1700000002.000100", "deny-1");
    assert_eq!((resp.status, outcome(&resp)), (200, Some("recorded")), "{}", resp.text());
    let shown = show(&fx.svc, &id);
    assert_eq!(status_of(&shown), Some("denied"), "{shown}");
    assert!(shown.to_string().contains(CAROL), "Carol, found by e-mail: {shown}");
    assert!(fx.slack.calls("users.info").iter().any(|c| c.body["user"] == U_CAROL), "users.info asked for Carol");
}

fn retried_click_is_answered_once(fx: &Fixture) {
    let id = create_approval(&fx.svc, "slack-retry", ALICE);
    posted_message(fx, &id);
    let body = form_body(&click_payload(U_BOB, "approve", &id, "1700000003.000100", "retry-1", &fx.slack));
    let ts = unix_now().to_string();
    let sig = v0_signature(&ts, &body);
    let first = send_click(&fx.svc, &body, &ts, &sig);
    assert_eq!((first.status, outcome(&first)), (200, Some("recorded")));
    // Slack retries the identical request when the answer was slow.
    let again = send_click(&fx.svc, &body, &ts, &sig);
    assert_eq!((again.status, outcome(&again)), (200, Some("duplicate")), "{}", again.text());
    // A second click (new action_ts) reaches the store, which refuses a second decision.
    let (late, _) = click(fx, U_BOB, "approve", &id, "1700000003.000200", "retry-2");
    assert_eq!((late.status, outcome(&late)), (200, Some("refused")));
    let told = fx.slack.wait_response("retry-2", SETTLE).expect("the refusal is told");
    assert!(told["text"].as_str().unwrap().starts_with("Not recorded"), "{told}");
    assert_eq!(reviews_of(&show(&fx.svc, &id)).len(), 1);
}

fn expect_refused_click(fx: &Fixture, id: &str, user: &str, response: &str, why: &str) {
    let (resp, _) = click(fx, user, "approve", id, &format!("1700000004.{}", response.len()), response);
    assert_eq!(resp.status, 200, "a refusal is acknowledged, not an error: {}", resp.text());
    assert_eq!(outcome(&resp), Some("refused"));
    let told = fx.slack.wait_response(response, SETTLE).expect("the refusal is told");
    let text = told["text"].as_str().unwrap().to_lowercase();
    assert!(text.contains(why), "{why} in {told}");
    let shown = show(&fx.svc, id);
    assert_eq!(status_of(&shown), Some("pending"), "{shown}");
    assert!(reviews_of(&shown).is_empty(), "{shown}");
}

fn self_approval_by_slack_id_is_refused(fx: &Fixture) {
    let id = create_approval(&fx.svc, "slack-self-id", ALICE);
    expect_refused_click(fx, &id, U_ALICE, "self-id", "own agent");
}

fn self_approval_by_email_is_refused(fx: &Fixture) {
    let id = create_approval(&fx.svc, "slack-self-mail", ALICE);
    expect_refused_click(fx, &id, U_ALICE_MAIL, "self-mail", "own agent");
    assert!(fx.slack.calls("users.info").iter().any(|c| c.body["user"] == U_ALICE_MAIL));
}

fn unknown_user_is_refused(fx: &Fixture) {
    let id = create_approval(&fx.svc, "slack-stranger", ALICE);
    expect_refused_click(fx, &id, U_STRANGER, "stranger", "not a configured airlock reviewer");
}

fn unverified_clicks_change_nothing(fx: &Fixture) {
    let id = create_approval(&fx.svc, "slack-unverified", ALICE);
    let payload = click_payload(U_BOB, "approve", &id, "1700000005.000100", "unverified", &fx.slack);
    let body = form_body(&payload);
    let now = unix_now();
    let mut attempts: Vec<(&str, Vec<u8>, String, String)> = Vec::new();
    for (what, ts) in [("301 s old", now - 301), ("301 s in the future", now + 301)] {
        let ts = ts.to_string();
        attempts.push((what, body.clone(), ts.clone(), v0_signature(&ts, &body)));
    }
    let ts = now.to_string();
    let mut bad = v0_signature(&ts, &body);
    bad.replace_range(bad.len() - 4.., "0000");
    attempts.push(("bad signature", body.clone(), ts.clone(), bad));
    attempts.push(("signed with another secret", body.clone(), ts.clone(), {
        let mut mac = Hmac::<Sha256>::new_from_slice(b"not-the-secret").unwrap();
        mac.update(format!("v0:{ts}:").as_bytes());
        mac.update(&body);
        format!("v0={}", hex::encode(mac.finalize().into_bytes()))
    }));
    // Re-serialized: the same payload, encoded differently (`+` for spaces is what many
    // encoders emit; and JSON re-serialized with other spacing), sent with the original
    // body's signature.
    let re_encoded = format!("payload={}", form_encode(&payload.to_string()).replace("%3A", ":")).into_bytes();
    attempts.push(("re-encoded form", re_encoded, ts.clone(), v0_signature(&ts, &body)));
    let spaced = format!("payload={}", form_encode(&serde_json::to_string_pretty(&payload).unwrap())).into_bytes();
    attempts.push(("re-serialized JSON", spaced, ts.clone(), v0_signature(&ts, &body)));
    attempts.push(("no signature", body.clone(), ts.clone(), String::new()));
    for (what, body, ts, sig) in &attempts {
        let resp = send_click(&fx.svc, body, ts, sig);
        assert_eq!(resp.status, 401, "{what}: {}", resp.text());
    }
    // Correctly signed, but for another app or from another workspace.
    for (what, field, value) in [
        ("another app", "/api_app_id", "A0OTHER"),
        ("another workspace", "/team/id", "T0OTHER"),
        ("a user of another workspace", "/user/team_id", "T0OTHER"),
    ] {
        let mut p = payload.clone();
        *p.pointer_mut(field).unwrap() = json!(value);
        let body = form_body(&p);
        let resp = send_click(&fx.svc, &body, &ts, &v0_signature(&ts, &body));
        assert_eq!(resp.status, 401, "{what}: {}", resp.text());
    }
    let shown = show(&fx.svc, &id);
    assert_eq!(status_of(&shown), Some("pending"), "{shown}");
    assert!(reviews_of(&shown).is_empty(), "{shown}");
    std::thread::sleep(Duration::from_millis(300));
    assert!(fx.slack.responses("unverified").is_empty(), "nothing told for an unverified click");
    // And the same click, correctly signed, still works: nothing was used up.
    let resp = send_click(&fx.svc, &body, &ts, &v0_signature(&ts, &body));
    assert_eq!((resp.status, outcome(&resp)), (200, Some("recorded")), "{}", resp.text());
}

fn rate_limited_post_is_retried(fx: &Fixture) {
    fx.slack.fail_next("chat.postMessage", 1, SlackFailure::Error("ratelimited".into()));
    let before = fx.slack.calls("chat.postMessage").len();
    let id = create_approval(&fx.svc, "slack-ratelimited", ALICE);
    posted_message(fx, &id);
    let calls = fx.slack.calls("chat.postMessage");
    assert!(calls.len() >= before + 2, "a failed attempt then a retry: {} calls", calls.len() - before);
    assert_eq!(status_of(&show(&fx.svc, &id)), Some("pending"));
}

fn failed_update_leaves_the_decision(fx: &Fixture) {
    let id = create_approval(&fx.svc, "slack-update-fails", ALICE);
    posted_message(fx, &id);
    fx.slack.fail_next("chat.update", 2, SlackFailure::Status(503));
    let (resp, _) = click(fx, U_BOB, "approve", &id, "1700000006.000100", "update-fails");
    assert_eq!((resp.status, outcome(&resp)), (200, Some("recorded")));
    assert_eq!(status_of(&show(&fx.svc, &id)), Some("approved"));
    // Retried with backoff until Slack takes it.
    let has = |c: &SlackCall| c.body.to_string().contains(&id);
    let updates = fx.slack.wait_calls("chat.update", SETTLE, |calls| calls.iter().filter(|c| has(c)).count() >= 3);
    assert!(updates.iter().filter(|c| has(c)).count() >= 3, "two failures then a success");
    assert_eq!(status_of(&show(&fx.svc, &id)), Some("approved"));
}

/// Audit records mentioning `id`, polled (bounded) until `cond` holds for one of them.
pub fn audit_until(svc: &AirlockService, id: &str, cond: impl Fn(&Value) -> bool) -> Vec<Value> {
    let deadline = Instant::now() + SETTLE;
    loop {
        let records: Vec<Value> =
            svc.audit_export().unwrap().into_iter().filter(|r| r.to_string().contains(id)).collect();
        if records.iter().any(&cond) || Instant::now() >= deadline {
            assert!(records.iter().any(&cond), "no matching audit record for {id}: {records:#?}");
            return records;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}
