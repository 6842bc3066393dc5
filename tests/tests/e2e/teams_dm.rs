//! Teams 1:1 messages of the REAL approval service (`airlock serve`) against the local
//! fake Bot Connector speaking the documented protocol (`airlock_tests::fakes::teams`):
//! each eligible reviewer the policy's groups name gets the card in a 1:1 chat created
//! proactively (`POST /v3/conversations`: bot, member, tenant), never the agent's owner;
//! a personal install's conversation is reused instead of creating one; every posted
//! copy (channel and 1:1) is updated after a decision; the owner is told of a denial
//! with the reviewer's comment, of an approval and of an expiry; an approval whose risk
//! needs step-up links to the console and a chat click deciding it is refused.
//!
//! Needs `cargo build -p airlock-approval-svc`. Every wait is bounded.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use airlock_tests::e2e::cases::{self, Case};
use airlock_tests::e2e::client::Request;
use airlock_tests::e2e::service::{self, AirlockService, Reviewer, ServiceOptions};
use airlock_tests::fakes::teams::{
    self as fakes, personal_conversation_id, ConnectorCall, TeamsFakes, TeamsUser, TokenSpec, APP_ID,
    CHANNEL_CONVERSATION, TENANT,
};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

const BOB: &str = "bob@dm.e2e.example";
const CAROL: &str = "carol@dm.e2e.example";
const ALICE: &str = "alice@dm.e2e.example";
const ERIN: &str = "erin@dm.e2e.example";
const OID_BOB: &str = "00000000-0000-0000-0000-0000000000b0";
const OID_CAROL: &str = "00000000-0000-0000-0000-0000000000c0";
const OID_ALICE: &str = "00000000-0000-0000-0000-0000000000a1";
const OID_ERIN: &str = "00000000-0000-0000-0000-0000000000e1";
/// A finance reviewer for whom the app is not installed.
const OID_FRANK: &str = "00000000-0000-0000-0000-0000000000f1";
/// Someone who installed the app personally but reviews nothing.
const OID_MALLORY: &str = "00000000-0000-0000-0000-00000000ba0d";
/// Erin's chat with the bot, learnt from her personal install.
const ERIN_INSTALL: &str = "a:1personal-chat-of-erin-from-install";
const MALLORY_INSTALL: &str = "a:1personal-chat-of-mallory-from-install";
/// The console link of step-up approvals (nothing listens there; only the link is checked).
const CONSOLE: &str = "http://127.0.0.1:9/console";
const DELIVERY: Duration = Duration::from_secs(20);

struct Fixture {
    fakes: TeamsFakes,
    svc: AirlockService,
    admin_key: String,
}

fn user(id: &str, oid: &str, email: &str) -> TeamsUser {
    TeamsUser::new(id, oid, email)
}

#[test]
fn teams_dm() {
    let started = Instant::now();
    let fakes = TeamsFakes::start(3600).unwrap();
    let reviewers = vec![
        Reviewer::new(BOB, &["data-owners"]).alias(OID_BOB),
        Reviewer::new(CAROL, &["data-owners", "finance"]).alias(OID_CAROL),
        Reviewer::new(ALICE, &["data-owners"]).alias(OID_ALICE),
        Reviewer::new(ERIN, &["sre"]).alias(OID_ERIN),
        Reviewer::new("frank@dm.e2e.example", &["finance"]).alias(OID_FRANK),
    ];
    let extra = format!(
        "reviewers = {{ \"data-owners\" = [\"{OID_BOB}\", \"{OID_CAROL}\", \"{OID_ALICE}\"], \"sre\" = [\"{OID_ERIN}\"], \"finance\" = [\"{OID_FRANK}\", \"{OID_CAROL}\"] }}\n\
         owners = {{ \"{ALICE}\" = \"{OID_ALICE}\" }}\n\
         step_up_risks = [\"critical\"]\nconsole_url = \"{CONSOLE}\"\n"
    );
    let opts = ServiceOptions {
        reviewers,
        extra_toml: fakes.toml_with(&extra),
        extra_env: fakes.env(),
        ..ServiceOptions::default()
    };
    let svc = AirlockService::start("teams-dm", &opts).unwrap_or_else(|e| panic!("{e:#}"));
    let admin_key = svc.reviewer(BOB).unwrap().api_key.clone();
    for u in [bob(), carol(), alice(), erin()] {
        fakes.connector.set_member(&u.id, u.profile());
    }
    eprintln!("[e2e_teams_dm] setup {:.1?}", started.elapsed());
    let fx = Fixture { fakes, svc, admin_key };
    let all: &[Case<Fixture>] = &[
        // First: the installs must be known before the approvals they are checked against.
        ("personal_installs_are_not_broadcast_targets", personal_installs_are_not_broadcast_targets),
        ("dm_created_for_each_eligible_reviewer_not_the_owner", dm_created_for_each_eligible_reviewer_not_the_owner),
        ("every_copy_updated_and_owner_told_of_a_denial", every_copy_updated_and_owner_told_of_a_denial),
        ("owner_told_of_an_approval_and_an_expiry", owner_told_of_an_approval_and_an_expiry),
        ("step_up_card_links_to_the_console_and_chat_click_is_refused", step_up_card_links_to_the_console),
        ("uninstalled_reviewer_is_given_up_without_holding_back_updates", uninstalled_reviewer_is_given_up),
    ];
    let outcome = cases::run("e2e_teams_dm", &fx, all, |_| {});
    eprintln!("[e2e_teams_dm] total {:.1?}", started.elapsed());
    if outcome.is_err() {
        fx.svc.print_logs();
    }
    outcome.unwrap();
}

fn bob() -> TeamsUser {
    user("29:bob", OID_BOB, BOB)
}
fn carol() -> TeamsUser {
    user("29:carol", OID_CAROL, CAROL)
}
fn alice() -> TeamsUser {
    user("29:alice", OID_ALICE, ALICE)
}
fn erin() -> TeamsUser {
    user("29:erin", OID_ERIN, ERIN)
}

// ---------------------------------------------------------------------------------------
// Helpers

/// Creates an approval through the signed gateway API; returns its id.
fn create(fx: &Fixture, tag: &str, groups: &[&str], risk: &str, expires_in: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let digest = hex::encode(Sha256::digest(format!("teams-dm-{tag}-{n}-{}", std::process::id())));
    let body = json!({
        "decision_id": format!("dec-teams-dm-{tag}-{n}"),
        "agent": {"id": format!("spiffe://e2e/agent/dm-{tag}"), "source": "header", "owner": ALICE},
        "digest": digest,
        "hold_ms": 0,
        "policy": {"reason": "bulk export of customer data", "risk": risk, "rule": "exports",
                   "approvers": {"groups": groups, "quorum": 1}, "expires_in": expires_in},
        "request": {"method": "POST", "host": "api.e2e.test", "path": "/v1/exports",
                    "body": {"rows": 10}},
    });
    let resp = fx.svc.gateway_create(&body).unwrap();
    assert_eq!(resp.status, 200, "create: {}", resp.text());
    resp.json().unwrap()["approval_id"].as_str().unwrap().to_string()
}

/// Sends `activity` to the messaging endpoint with a valid token; answers status and body.
fn send(fx: &Fixture, activity: &Value) -> (u16, Value) {
    let url = activity["serviceUrl"].as_str().unwrap();
    let token = fakes::mint(&TokenSpec::valid(url)).unwrap();
    let resp = Request::new("POST", "/teams/messages")
        .header("host", &format!("127.0.0.1:{}", fx.svc.port()))
        .header("content-type", "application/json")
        .header("authorization", &format!("Bearer {token}"))
        .timeout(Duration::from_secs(20))
        .body(activity.to_string().into_bytes())
        .send(fx.svc.addr())
        .unwrap();
    (resp.status, resp.json().unwrap_or(Value::Null))
}

fn svc_url(fx: &Fixture) -> String {
    fx.fakes.connector.service_url()
}

fn status(fx: &Fixture, id: &str) -> String {
    let shown = fx.svc.client().show(id, &fx.admin_key).unwrap();
    service::status_of(&shown).unwrap_or_default().to_string()
}

/// Waits until `id`'s card was posted to every conversation in `conversations`.
fn wait_posted(fx: &Fixture, id: &str, conversations: &[String]) -> Vec<ConnectorCall> {
    let has_all = |calls: &[ConnectorCall]| {
        conversations.iter().all(|c| calls.iter().any(|p| p.status == 201 && p.conversation_id == *c))
    };
    let posts = fx.fakes.connector.wait_cards("POST", id, DELIVERY, has_all);
    assert!(has_all(&posts), "card of {id} posted to {conversations:?}: {posts:#?}");
    posts
}

/// Waits for a post to `conversation` mentioning `id` whose card satisfies `pred`.
fn wait_post_in(fx: &Fixture, id: &str, conversation: &str, pred: impl Fn(&str) -> bool) -> ConnectorCall {
    let matching =
        |calls: &[ConnectorCall]| calls.iter().any(|c| c.conversation_id == conversation && pred(&c.card_text()));
    let posts = fx.fakes.connector.wait_cards("POST", id, DELIVERY, matching);
    posts
        .into_iter()
        .find(|c| c.conversation_id == conversation && pred(&c.card_text()))
        .unwrap_or_else(|| panic!("no matching post of {id} in {conversation}"))
}

fn dm(oid: &str) -> String {
    personal_conversation_id(oid)
}

fn created_for(fx: &Fixture, oid: &str) -> usize {
    fx.fakes.connector.created().iter().filter(|c| c.member == oid).count()
}

// ---------------------------------------------------------------------------------------
// Cases

fn personal_installs_are_not_broadcast_targets(fx: &Fixture) {
    let mallory = user("29:mallory", OID_MALLORY, "mallory@dm.e2e.example");
    for (conversation, u) in [(ERIN_INSTALL, erin()), (MALLORY_INSTALL, mallory)] {
        let (code, body) = send(fx, &fakes::personal_install(&svc_url(fx), conversation, &u));
        assert_eq!(code, 200, "{body}");
    }
    // An sre approval: Erin is messaged in the chat her install opened (no creation), and
    // Mallory, who reviews nothing, sees nothing although she installed the app too.
    let id = create(fx, "sre", &["sre"], "high", "15m");
    wait_posted(fx, &id, &[CHANNEL_CONVERSATION.to_string(), ERIN_INSTALL.to_string()]);
    assert_eq!(created_for(fx, OID_ERIN), 0, "the install's conversation is reused");
    assert!(fx.fakes.connector.cards_for("POST", &id).iter().all(|c| c.conversation_id != MALLORY_INSTALL));
}

fn dm_created_for_each_eligible_reviewer_not_the_owner(fx: &Fixture) {
    let id = create(fx, "dm", &["data-owners"], "high", "15m");
    let posts = wait_posted(fx, &id, &[CHANNEL_CONVERSATION.to_string(), dm(OID_BOB), dm(OID_CAROL)]);
    // The create-conversation requests follow the documented shape.
    for oid in [OID_BOB, OID_CAROL] {
        let created: Vec<_> = fx.fakes.connector.created().into_iter().filter(|c| c.member == oid).collect();
        assert_eq!(created.len(), 1, "one conversation for {oid}: {created:#?}");
        let req = &created[0].request;
        assert_eq!(req["bot"]["id"], format!("28:{APP_ID}"));
        assert_eq!(req["members"], json!([{"id": oid}]));
        assert_eq!(req["tenantId"], TENANT);
        assert_eq!(req["isGroup"], false);
    }
    // Alice owns the agent: no card for her, in any chat.
    assert_eq!(created_for(fx, OID_ALICE), 0, "the owner gets no card");
    assert!(posts.iter().all(|p| p.conversation_id != dm(OID_ALICE)), "{posts:#?}");
    assert!(posts.iter().all(|p| p.conversation_id != ERIN_INSTALL), "erin is not a data owner");
    let dm_card = posts.iter().find(|p| p.conversation_id == dm(OID_BOB)).unwrap().card();
    assert_eq!(dm_card["actions"][0]["type"], "Action.Execute", "the 1:1 card decides: {dm_card}");

    // A second approval reuses the stored conversation references.
    let again = create(fx, "dm-again", &["data-owners"], "high", "15m");
    wait_posted(fx, &again, &[dm(OID_BOB), dm(OID_CAROL)]);
    assert_eq!((created_for(fx, OID_BOB), created_for(fx, OID_CAROL)), (1, 1), "no second creation");
}

fn every_copy_updated_and_owner_told_of_a_denial(fx: &Fixture) {
    let id = create(fx, "deny", &["data-owners"], "high", "15m");
    wait_posted(fx, &id, &[CHANNEL_CONVERSATION.to_string(), dm(OID_BOB), dm(OID_CAROL)]);
    // Bob denies from his 1:1 chat, with a comment.
    let mut click = fakes::invoke(&svc_url(fx), &bob(), &id, "deny", Some("no exports during the freeze"));
    click["conversation"] = json!({"id": dm(OID_BOB), "conversationType": "personal", "tenantId": TENANT});
    let (code, answer) = send(fx, &click);
    assert_eq!(code, 200, "{answer}");
    assert_eq!(answer["type"], "application/vnd.microsoft.card.adaptive", "{answer}");
    assert_eq!(status(fx, &id), "denied");

    // Every copy — the channel's and both 1:1s — is brought up to date.
    let copies = [CHANNEL_CONVERSATION.to_string(), dm(OID_BOB), dm(OID_CAROL)];
    let updated = |calls: &[ConnectorCall]| {
        copies.iter().all(|c| {
            calls.iter().any(|u| u.status == 200 && u.conversation_id == *c && u.card_text().contains("denied by"))
        })
    };
    let puts = fx.fakes.connector.wait_cards("PUT", &id, DELIVERY, updated);
    assert!(updated(&puts), "every copy updated: {puts:#?}");
    assert!(puts.iter().all(|u| u.card().get("actions").is_none()), "no buttons left on a closed card");

    // Alice, the owner, is told in her own 1:1 chat, with the comment and the reason.
    let notice = wait_post_in(fx, &id, &dm(OID_ALICE), |t| t.contains("denied by"));
    let text = notice.card_text();
    for needle in ["denied by bob@dm.e2e.example", "no exports during the freeze", "bulk export of customer data"] {
        assert!(text.contains(needle), "{needle} in the owner's notice: {text}");
    }
    assert!(notice.card().get("actions").is_none(), "a notice decides nothing");
    assert_eq!(created_for(fx, OID_ALICE), 1, "her chat was created for the notice");
}

fn owner_told_of_an_approval_and_an_expiry(fx: &Fixture) {
    let id = create(fx, "approve", &["data-owners"], "high", "15m");
    let resp = fx.svc.client().approve(&id, &fx.svc.reviewer(CAROL).unwrap().api_key).unwrap();
    assert_eq!(resp.status, 200, "{}", resp.text());
    let approved = wait_post_in(fx, &id, &dm(OID_ALICE), |t| t.contains("approved by"));
    assert!(approved.card_text().contains("approved by carol@dm.e2e.example"), "{}", approved.card_text());

    let lapsing = create(fx, "expire", &["data-owners"], "high", "2s");
    let expired = wait_post_in(fx, &lapsing, &dm(OID_ALICE), |t| t.contains("expired"));
    assert!(expired.card_text().contains("expired before a reviewer decided it"), "{}", expired.card_text());
    assert_eq!(status(fx, &lapsing), "expired");
    // Told once each: later updates (none are due) never repeat a notice.
    let notices = fx.fakes.connector.cards_for("POST", &id);
    assert_eq!(notices.iter().filter(|c| c.conversation_id == dm(OID_ALICE)).count(), 1);
}

fn step_up_card_links_to_the_console(fx: &Fixture) {
    let id = create(fx, "critical", &["data-owners"], "critical", "15m");
    let posts = wait_posted(fx, &id, &[CHANNEL_CONVERSATION.to_string(), dm(OID_BOB)]);
    for post in &posts {
        let card = post.card();
        assert_eq!(
            card["actions"],
            json!([{"type": "Action.OpenUrl", "title": "Review in the console",
                                           "url": format!("{CONSOLE}/approvals/{id}")}]),
            "{card}"
        );
        assert!(!post.card_text().contains("Action.Execute"), "no decision in chat: {card}");
    }
    // A click crafted anyway (an old card, a replayed button) decides nothing.
    let (code, answer) = send(fx, &fakes::invoke(&svc_url(fx), &bob(), &id, "approve", None));
    assert_eq!(code, 200, "{answer}");
    assert_eq!(answer["type"], "application/vnd.microsoft.activity.message", "{answer}");
    assert!(answer["value"].as_str().unwrap().contains("fresh sign-in"), "{answer}");
    let (_, submitted) = send(fx, &fakes::submit(&svc_url(fx), &carol(), &id, "approve"));
    assert_eq!(submitted, Value::Null, "the Action.Submit fallback answers no body");
    assert_eq!(status(fx, &id), "pending", "still waiting for a decision in the console");
    let shown = fx.svc.client().show(&id, &fx.admin_key).unwrap();
    assert_eq!(shown["reviews"].as_array().map_or(0, Vec::len), 0, "{shown}");
}

fn uninstalled_reviewer_is_given_up(fx: &Fixture) {
    // Teams refuses the 1:1 chat with Frank: the app is not installed for him.
    fx.fakes.connector.fail_next("CREATE", 1, fakes::ConnectorFailure::NotInRoster);
    let id = create(fx, "finance", &["finance"], "high", "15m");
    wait_posted(fx, &id, &[CHANNEL_CONVERSATION.to_string(), dm(OID_CAROL)]);
    // Given up at once (not retried for minutes), so it holds nothing back.
    let failing = fakes::wait_for(DELIVERY, || {
        let shown = fx.svc.client().show(&id, &fx.admin_key).ok()?;
        let failing = shown.pointer("/notifications/failing/0")?.clone();
        (failing["state"] == "failed").then_some(failing)
    })
    .unwrap_or_else(|| panic!("the refused 1:1 chat is reported"));
    assert!(failing["error"].as_str().unwrap().contains("installed"), "{failing}");

    let (code, answer) = send(fx, &fakes::invoke(&svc_url(fx), &carol(), &id, "approve", None));
    assert_eq!(code, 200, "{answer}");
    assert_eq!(status(fx, &id), "approved");
    let copies = [CHANNEL_CONVERSATION.to_string(), dm(OID_CAROL)];
    let updated = |calls: &[ConnectorCall]| {
        copies.iter().all(|c| calls.iter().any(|u| u.status == 200 && u.conversation_id == *c))
    };
    let puts = fx.fakes.connector.wait_cards("PUT", &id, DELIVERY, updated);
    assert!(updated(&puts), "the other copies are updated: {puts:#?}");
    assert_eq!(created_for(fx, OID_FRANK), 0, "no conversation with Frank was made");
}
