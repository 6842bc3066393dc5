//! Requesters hear back, and step-up stays out of chat, with the REAL approval service,
//! the fake Slack Web API and a webhook receiver: when an approval of Alice's agent is
//! denied, Alice gets a Slack direct message (the app posts to her user id) and her
//! webhook an `approval.decided` event, both with the reviewer's comment and the policy's
//! reason; an owner nobody mapped is told nowhere; a `critical` approval's Slack message
//! only links to the console, and a signed Approve click on it is refused and recorded
//! nowhere but as a refused attempt.
//!
//! Needs `cargo build -p airlock-approval-svc`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use airlock_tests::e2e::cases::{self, Case};
use airlock_tests::e2e::service::{status_of, unix_now, AirlockService, Reviewer, ServiceOptions};
use airlock_tests::fakes::slack::{FakeSlack, SlackCall};
use airlock_tests::fakes::webhook::{Delivery, WebhookReceiver};
use serde_json::Value;

use crate::slack::{
    click_payload, create_approval, create_approval_at_risk, form_body, outcome, send_click, slack_toml, v0_signature,
    GROUP,
};

const TOKEN: &str = "xoxb-e2e-bot-token";
const SIGNING_SECRET_ENV: &str = "AIRLOCK_E2E_SLACK_SECRET";
const WEBHOOK_SECRET: &str = "whsec-e2e-owners-0123456789abcdef";
const BOB: &str = "bob@owners.e2e.example";
const ALICE: &str = "alice@owners.e2e.example";
const DAN: &str = "dan@owners.e2e.example";
const U_BOB: &str = "U0BOB";
const U_ALICE: &str = "U0ALICE";
const CONSOLE: &str = "http://127.0.0.1:9/console";
const SETTLE: Duration = Duration::from_secs(20);

struct Fixture {
    slack: FakeSlack,
    hook: WebhookReceiver,
    svc: AirlockService,
}

#[test]
fn owners_told() {
    let started = Instant::now();
    let slack = FakeSlack::start(TOKEN).unwrap();
    let hook = WebhookReceiver::start(WEBHOOK_SECRET.as_bytes()).unwrap();
    let extra_toml = format!(
        "{}owners = {{ {ALICE:?} = {U_ALICE:?} }}\nstep_up_risks = [\"critical\"]\nconsole_url = {CONSOLE:?}\n\
         \n[[webhooks]]\nname = \"owners\"\nurl = {:?}\nsecret_env = \"AIRLOCK_E2E_WEBHOOK_SECRET\"\n\
         events = [\"approval.decided\"]\nowners = [{ALICE:?}]\n",
        slack_toml(&slack),
        hook.url(),
    );
    let opts = ServiceOptions {
        reviewers: vec![Reviewer::new(BOB, &[GROUP]).alias(U_BOB), Reviewer::new(ALICE, &[GROUP]).alias(U_ALICE)],
        extra_toml,
        extra_env: vec![
            ("AIRLOCK_E2E_SLACK_TOKEN".into(), TOKEN.into()),
            (SIGNING_SECRET_ENV.into(), crate::slack::SIGNING_SECRET.into()),
            ("AIRLOCK_E2E_WEBHOOK_SECRET".into(), WEBHOOK_SECRET.into()),
        ],
        ..ServiceOptions::default()
    };
    let svc = AirlockService::start("owners-told", &opts).unwrap_or_else(|e| panic!("{e:#}"));
    eprintln!("[e2e_owners_told] setup {:.1?}", started.elapsed());
    let fx = Fixture { slack, hook, svc };
    let all: &[Case<Fixture>] = &[
        ("owner_told_of_a_denial_in_slack_and_by_webhook", owner_told_of_a_denial_in_slack_and_by_webhook),
        ("unmapped_owner_is_told_nowhere", unmapped_owner_is_told_nowhere),
        ("step_up_message_links_to_the_console_and_click_is_refused", step_up_message_links_to_the_console),
    ];
    let outcome = cases::run("e2e_owners_told", &fx, all, |_| {});
    eprintln!("[e2e_owners_told] total {:.1?}", started.elapsed());
    if outcome.is_err() {
        fx.svc.print_logs();
    }
    outcome.unwrap();
}

fn bob_key(fx: &Fixture) -> String {
    fx.svc.reviewer(BOB).unwrap().api_key.clone()
}

fn dm_to(fx: &Fixture, user: &str, id: &str) -> Vec<SlackCall> {
    let to_user = |c: &SlackCall| c.body["channel"] == user && c.body.to_string().contains(id);
    fx.slack
        .wait_calls("chat.postMessage", SETTLE, |calls| calls.iter().any(to_user))
        .into_iter()
        .filter(to_user)
        .collect()
}

fn decided(fx: &Fixture, id: &str) -> Vec<Delivery> {
    let is_decided = |d: &Delivery| d.event.as_deref() == Some("approval.decided");
    fx.hook.wait_for(id, SETTLE, |got| got.iter().any(is_decided)).into_iter().filter(is_decided).collect()
}

fn owner_told_of_a_denial_in_slack_and_by_webhook(fx: &Fixture) {
    let id = create_approval(&fx.svc, "owners-deny", ALICE);
    let resp = fx.svc.client().deny(&id, &bob_key(fx)).unwrap();
    assert_eq!(resp.status, 200, "{}", resp.text());

    let dms = dm_to(fx, U_ALICE, &id);
    assert_eq!(dms.len(), 1, "one direct message to Alice: {dms:#?}");
    let text = dms[0].body.to_string();
    for needle in ["denied by bob@owners.e2e.example", "denied by the e2e suite", "exports need a data owner"] {
        assert!(text.contains(needle), "{needle} in Alice's DM: {text}");
    }
    assert_eq!(dms[0].answer["channel"], "D0ALICE", "Slack answered the DM channel");
    assert!(dms[0].body["blocks"].as_array().unwrap().iter().all(|b| b["type"] != "actions"), "a notice, no buttons");

    let events = decided(fx, &id);
    assert_eq!(events.len(), 1, "{events:#?}");
    let e = &events[0];
    assert!(e.verified, "signed with the webhook's secret");
    assert_eq!(e.body["owner"], ALICE);
    assert_eq!(e.body["notice"]["outcome"], "denied");
    assert_eq!(e.body["notice"]["comments"][0], "bob@owners.e2e.example: denied by the e2e suite", "{}", e.body);
    assert!(e.body["notice"]["reason"].as_str().unwrap().contains("exports need a data owner"), "{}", e.body);
    assert!(
        fx.hook.deliveries_for(&id).iter().all(|d| d.event.as_deref() == Some("approval.decided")),
        "events = [approval.decided]: nothing else is sent here"
    );
}

fn unmapped_owner_is_told_nowhere(fx: &Fixture) {
    let id = create_approval(&fx.svc, "owners-unmapped", DAN);
    let resp = fx.svc.client().approve(&id, &bob_key(fx)).unwrap();
    assert_eq!(resp.status, 200, "{}", resp.text());
    // The channel message is updated; once it is, the owner's notice would have been due.
    let updated = |c: &SlackCall| c.body.to_string().contains(&id);
    assert!(fx.slack.wait_calls("chat.update", SETTLE, |calls| calls.iter().any(updated)).iter().any(updated));
    let posts = fx.slack.calls("chat.postMessage");
    assert!(posts
        .iter()
        .filter(|c| c.body.to_string().contains(&id))
        .all(|c| c.body["channel"] == crate::slack::CHANNEL));
    assert!(fx.hook.deliveries_for(&id).is_empty(), "Dan is not one of the webhook's owners");
}

fn step_up_message_links_to_the_console(fx: &Fixture) {
    let id = create_approval_at_risk(&fx.svc, "owners-critical", ALICE, "critical");
    let has = |c: &SlackCall| c.body.to_string().contains(&id) && c.body["channel"] == crate::slack::CHANNEL;
    let posted = fx.slack.wait_calls("chat.postMessage", SETTLE, |calls| calls.iter().any(has));
    let message = posted.into_iter().find(has).unwrap_or_else(|| panic!("no message for {id}"));
    let actions: Vec<Value> =
        message.body["blocks"].as_array().unwrap().iter().filter(|b| b["type"] == "actions").cloned().collect();
    let buttons = actions[0]["elements"].as_array().unwrap();
    assert_eq!(buttons.len(), 1, "{buttons:?}");
    assert_eq!(buttons[0]["action_id"], "open_console");
    assert_eq!(buttons[0]["url"], format!("{CONSOLE}/approvals/{id}"));

    // A signed Approve click for it (a stale message, a crafted request) decides nothing.
    let body = form_body(&click_payload(U_BOB, "approve", &id, "1700000009.000100", "step-up-1", &fx.slack));
    let ts = unix_now().to_string();
    let resp = send_click(&fx.svc, &body, &ts, &v0_signature(&ts, &body));
    assert_eq!((resp.status, outcome(&resp)), (200, Some("refused")), "{}", resp.text());
    let told = fx.slack.wait_response("step-up-1", SETTLE).expect("the clicker is told why");
    assert!(told["text"].as_str().unwrap().contains("fresh sign-in"), "{told}");
    assert!(told["text"].as_str().unwrap().contains(&format!("{CONSOLE}/approvals/{id}")), "{told}");
    // The console button's own interaction is acknowledged and ignored.
    let body = form_body(&click_payload(U_BOB, "open_console", &id, "1700000009.000200", "step-up-2", &fx.slack));
    let ts = unix_now().to_string();
    let resp = send_click(&fx.svc, &body, &ts, &v0_signature(&ts, &body));
    assert_eq!((resp.status, outcome(&resp)), (200, Some("ignored")), "{}", resp.text());
    let shown = fx.svc.show(&id, &bob_key(fx)).unwrap();
    assert_eq!(status_of(&shown), Some("pending"), "{shown}");
    assert_eq!(shown["reviews"].as_array().map_or(0, Vec::len), 0, "{shown}");
}
