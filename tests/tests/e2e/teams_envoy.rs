//! The Microsoft Teams channel end to end through REAL Envoy: an agent's call goes through
//! Envoy and the real filter (`envoy/demo.yaml`), the REAL approval service
//! (`airlock serve`, configured with `[teams]`) holds it, posts an Adaptive Card to the
//! Teams fakes (`airlock_tests::fakes::teams`: Bot Framework issuer + JWKS, Entra token
//! endpoint, Bot Connector, all on 127.0.0.1), a reviewer's verified `Action.Execute`
//! click approves it, and the agent's identical retry reaches the upstream carrying the
//! minted credential. Every posted copy is updated, the audit trail records channel
//! `teams` with the evidence of the verified click and `airlock audit verify` passes. The
//! agent's owner clicking Approve is refused and the retry stays pending.
//!
//! Needs `bash scripts/setup.sh` (Envoy), `bash scripts/build-wasm.sh` (the filter) and
//! `cargo build -p airlock-approval-svc`. Every wait is bounded.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::e2e_support;

use std::time::{Duration, Instant};

use airlock_tests::e2e::cases::{self, Case};
use airlock_tests::e2e::client::{Request, Response};
use airlock_tests::e2e::gateway::Gateway;
use airlock_tests::e2e::service::{self, status_of, AirlockService, ServiceOptions};
use airlock_tests::e2e::upstream::RecordingUpstream;
use airlock_tests::fakes::teams::{
    self as fakes, ConnectorCall, TeamsFakes, TeamsUser, TestKey, TokenSpec, CHANNEL_CONVERSATION, TENANT,
};
use e2e_support::real::*;
use e2e_support::*;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// The agent of this suite; its owner is alice, so alice may never approve its calls.
const TEAMS_AGENT: &str = "spiffe://e2e/agent/teams-report-bot";
/// Bob's Entra object id (not in the directory: he is mapped by e-mail, as a tenant whose
/// `[[reviewers]]` list only mailboxes would be).
const OID_BOB: &str = "00000000-0000-0000-0000-0000000000b0";
/// A conversation the bot learns from an install, so the card has two copies to update.
const LEARNT_CONVERSATION: &str = "a:1personal-chat-of-the-data-owners";
/// How long the outbox may take to post or update a card: it polls every 200 ms and
/// retries with backoff from 0.5 s; generous for a loaded CI machine.
const DELIVERY: Duration = Duration::from_secs(20);

struct Fixture {
    fakes: TeamsFakes,
    svc: AirlockService,
    upstream: RecordingUpstream,
    gw: Gateway,
}

fn bob() -> TeamsUser {
    TeamsUser::new("29:bob", OID_BOB, BOB)
}

/// Alice, the agent's owner, with the object id the directory lists as her alias.
fn alice() -> TeamsUser {
    TeamsUser::new("29:alice", ALICE_OID, ALICE)
}

#[test]
fn teams_envoy() {
    let started = Instant::now();
    let wasm = filter_module();
    let fakes = TeamsFakes::start(3600).unwrap();
    let opts = ServiceOptions {
        reviewers: reviewers(),
        extra_toml: fakes.toml(),
        extra_env: fakes.env(),
        ..ServiceOptions::default()
    };
    let svc = AirlockService::start("teams-envoy", &opts).unwrap_or_else(|e| panic!("{e:#}"));
    for user in [bob(), alice()] {
        fakes.connector.set_member(&user.id, user.profile());
    }
    let upstream = RecordingUpstream::http("upstream").unwrap();
    let mut cfg = plugin(0);
    cfg["identity"]["agents"][TEAMS_AGENT] = json!({"owner": ALICE, "acts_for": []});
    let mut gws =
        start_gateways(vec![("teams-envoy", "demo.yaml", real_vars(&wasm, &cfg, upstream.port(), svc.port()))]);
    let gw = gws.pop().unwrap();
    eprintln!("[e2e_teams_envoy] setup {:.1?}", started.elapsed());
    let fx = Fixture { fakes, svc, upstream, gw };
    let all: &[Case<Fixture>] = &[
        ("teams_click_approves_the_agents_retry", teams_click_approves_the_agents_retry),
        ("owner_click_is_refused_and_retry_stays_pending", owner_click_is_refused_and_retry_stays_pending),
    ];
    let outcome = cases::run("e2e_teams_envoy", &fx, all, |_| {});
    eprintln!("[e2e_teams_envoy] total {:.1?}", started.elapsed());
    if outcome.is_err() {
        fx.svc.print_logs();
    }
    outcome.unwrap();
}

// ---------------------------------------------------------------------------------------
// Helpers

/// The agent's export call, carrying its own credential (which must never reach the
/// upstream nor a reviewer).
fn export_call(case: &str, rows: u64) -> Request {
    post_as(TEAMS_AGENT, case, EXPORT_PATH, &export_body(case, rows)).header("authorization", "Bearer agent-own-secret")
}

fn svc_url(fx: &Fixture) -> String {
    fx.fakes.connector.service_url()
}

/// Sends `activity` to the messaging endpoint exactly as Teams would: the raw bytes with a
/// token minted by the fake Bot Framework issuer for the activity's `serviceUrl`.
fn send_activity(fx: &Fixture, raw: Vec<u8>, service_url: &str) -> Response {
    let token = fakes::mint(&TokenSpec::valid(service_url)).unwrap();
    Request::new("POST", "/teams/messages")
        .header("host", &format!("127.0.0.1:{}", fx.svc.port()))
        .header("content-type", "application/json")
        .header("authorization", &format!("Bearer {token}"))
        .timeout(Duration::from_secs(20))
        .body(raw)
        .send(fx.svc.addr())
        .unwrap()
}

/// A click's invoke answer (`statusCode` 200 either way: a card or a refusal message).
fn click(fx: &Fixture, activity: &Value) -> Value {
    let resp = send_activity(fx, activity.to_string().into_bytes(), &svc_url(fx));
    assert_eq!(resp.status, 200, "click: {}", resp.text());
    let answer = resp.json().unwrap();
    assert_eq!(answer["statusCode"], 200, "{answer}");
    answer
}

fn show(fx: &Fixture, id: &str) -> Value {
    fx.svc.show(id, &key(&fx.svc, BOB)).unwrap()
}

/// Waits until the card of `id` was posted (201) to every conversation in
/// `conversations`; returns those posts.
fn wait_posted(fx: &Fixture, id: &str, conversations: &[&str]) -> Vec<ConnectorCall> {
    let all_posted = |calls: &[ConnectorCall]| {
        conversations.iter().all(|c| calls.iter().any(|p| p.status == 201 && p.conversation_id == *c))
    };
    let posts = fx.fakes.connector.wait_cards("POST", id, DELIVERY, all_posted);
    assert!(all_posted(&posts), "card of {id} posted to {conversations:?} within {DELIVERY:?}: {posts:#?}");
    posts.into_iter().filter(|p| p.status == 201).collect()
}

/// The value of fact `title` on a card.
fn fact<'a>(card: &'a Value, title: &str) -> Option<&'a str> {
    card["body"]
        .as_array()?
        .iter()
        .filter(|b| b["type"] == "FactSet")
        .flat_map(|b| b["facts"].as_array().into_iter().flatten())
        .find(|f| f["title"] == title)
        .and_then(|f| f["value"].as_str())
}

/// The request body a card shows (the `TextRun` under "Request body (redacted)").
fn card_body(card: &Value) -> Value {
    let text = card["body"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|b| b["type"] == "RichTextBlock")
        .flat_map(|b| b["inlines"].as_array().into_iter().flatten())
        .find_map(|i| i["text"].as_str())
        .unwrap_or_else(|| panic!("a request body on the card: {card}"));
    serde_json::from_str(text).unwrap_or_else(|e| panic!("the card's body is the JSON the gateway sent ({e}): {text}"))
}

/// The card shows what the agent intends, for whom, and the body with the redacted field
/// masked — and nothing the agent must not disclose.
fn check_pending_card(card: &Value, id: &str, case: &str) {
    assert_eq!(card["version"], "1.5", "{card}");
    let text = card.to_string();
    assert!(text.contains(&format!("POST {HOST}{EXPORT_PATH}")), "title names the action: {text}");
    for (title, want) in [
        ("Agent", TEAMS_AGENT),
        ("Owner", ALICE),
        ("Method", "POST"),
        ("Host", HOST),
        ("Path", EXPORT_PATH),
        ("Reason", "exports need a data owner"),
        ("Risk", "high"),
        ("Approvals", "0/1"),
        ("Approval id", id),
    ] {
        assert_eq!(fact(card, title), Some(want), "fact {title} on the card: {text}");
    }
    let body = card_body(card);
    assert_eq!(body["customer"]["ssn"], "[REDACTED]", "the redacted field is masked: {body}");
    assert_eq!(body["customer"]["name"], "Ada", "the rest of the body is shown: {body}");
    assert_eq!(body["tag"], case, "{body}");
    assert!(!text.contains("123-45-6789"), "the redacted value never reaches Teams: {text}");
    assert!(!text.contains("agent-own-secret"), "the agent's credential never reaches Teams: {text}");
    let actions = card["actions"].as_array().unwrap_or_else(|| panic!("buttons on a pending card: {card}"));
    let verbs: Vec<&str> = actions.iter().filter_map(|a| a["verb"].as_str()).collect();
    assert_eq!(verbs, ["approve", "deny"], "{card}");
    assert!(actions.iter().all(|a| a["type"] == "Action.Execute" && a["data"]["approvalId"] == id), "{card}");
}

// ---------------------------------------------------------------------------------------
// Cases

fn teams_click_approves_the_agents_retry(fx: &Fixture) {
    let case = "teams-envoy-approve";
    // The bot is installed in a second conversation: the card then has two copies.
    let install = fakes::conversation_update(&svc_url(fx), LEARNT_CONVERSATION, TENANT);
    let resp = send_activity(fx, install.to_string().into_bytes(), &svc_url(fx));
    assert_eq!(resp.status, 200, "install: {}", resp.text());

    // 1. The agent's call needs approval: approval-pending with an id, nothing upstream.
    let req = export_call(case, 1);
    let id = pending(&fx.gw, &req);
    assert!(id.starts_with("apr_"), "approval id {id}");
    expect_nothing_reached(&fx.upstream, case);

    // 2. The card is posted to the configured channel and the learnt conversation.
    let posts = wait_posted(fx, &id, &[CHANNEL_CONVERSATION, LEARNT_CONVERSATION]);
    for post in &posts {
        let auth = post.authorization.as_deref().unwrap_or_default();
        assert!(auth.starts_with("Bearer fake-bot-token-"), "posted with the bot's Entra token: {auth}");
        check_pending_card(&post.card(), &id, case);
    }

    // An identical retry before anyone decided finds the same approval.
    assert_eq!(pending(&fx.gw, &req), id, "deduplicated on (agent, digest)");
    expect_nothing_reached(&fx.upstream, case);

    // 3. Bob clicks Approve: a verified Action.Execute invoke, token from the fake issuer.
    let activity = fakes::invoke(&svc_url(fx), &bob(), &id, "approve", Some("partner drop agreed"));
    let activity_id = activity["id"].as_str().unwrap().to_string();
    let raw = activity.to_string().into_bytes();
    let body_sha256 = hex::encode(Sha256::digest(&raw));
    let resp = send_activity(fx, raw, &svc_url(fx));
    assert_eq!(resp.status, 200, "click: {}", resp.text());
    let answer = resp.json().unwrap();
    assert_eq!(answer["type"], "application/vnd.microsoft.card.adaptive", "the clicker gets the new card: {answer}");
    let card = &answer["value"];
    assert!(card.to_string().contains(&format!("approved by {BOB}")), "{card}");
    assert!(card.get("actions").is_none(), "a decided card has no buttons: {card}");
    assert_eq!(status_of(&show(fx, &id)), Some("approved"));

    // 4. The agent's identical retry passes through Envoy with the minted credential.
    let resp = send(&fx.gw, &req);
    assert_eq!(resp.status, 200, "approved retry: {}", resp.text());
    let got = fx.upstream.requests_for(case);
    assert_eq!(got.len(), 1, "{got:#?}");
    let (token, claims) = check_credential(&got[0], TEAMS_AGENT, &[BOB]);
    assert_eq!(serde_json::from_slice::<Value>(&got[0].body).unwrap(), export_body(case, 1), "the approved body");
    let all = format!("{:?}{}", resp.headers, resp.text());
    assert!(!all.contains(token.rsplit('.').next().unwrap_or("-")), "the agent never sees the credential: {all}");
    eprintln!("[e2e_teams_envoy] upstream got a credential for {} approved by {}", claims["sub"], claims["act"]);

    // 5. Every posted copy is updated: approved by bob, no buttons.
    let updated = |calls: &[ConnectorCall]| {
        posts.iter().all(|p| {
            calls.iter().any(|u| {
                u.status == 200
                    && u.conversation_id == p.conversation_id
                    && u.card_text().contains(&format!("approved by {BOB}"))
                    && u.card().get("actions").is_none()
            })
        })
    };
    let puts = fx.fakes.connector.wait_cards("PUT", &id, DELIVERY, updated);
    assert!(updated(&puts), "every copy of {id}'s card updated within {DELIVERY:?}: {puts:#?}");
    // Each copy is updated in place (PUT of the posted activity id), never re-posted.
    let mut updated_activities: Vec<&str> = puts
        .iter()
        .filter(|u| u.status == 200 && u.card_text().contains("approved by"))
        .filter_map(|u| u.item_id.as_deref())
        .collect();
    updated_activities.sort_unstable();
    updated_activities.dedup();
    assert_eq!(updated_activities.len(), posts.len(), "one updated activity per posted copy: {puts:#?}");
    assert_eq!(fx.fakes.connector.cards_for("POST", &id).len(), posts.len(), "no copy was posted twice");

    // 6. The audit trail: a review via teams with the click's evidence; the approval's
    // whole life; the chain verifies.
    let records = audit_until(&fx.svc, "the Teams approval's life", Duration::from_secs(15), |r| {
        ["approval.created", "review", "approval.approved", "approval.redeemed", "credential.minted"]
            .iter()
            .all(|k| !service::records_mentioning(r, k, &id).is_empty())
    });
    let reviews = service::records_mentioning(&records, "review", &id);
    assert_eq!(reviews.len(), 1, "{reviews:#?}");
    let review = reviews[0].to_string();
    for needle in [
        "\"channel\":\"teams\"".to_string(),
        format!("\"activity_id\":\"{activity_id}\""),
        format!("\"body_sha256\":\"{body_sha256}\""),
        format!("\"kid\":\"{}\"", TestKey::One.kid()),
        format!("\"tenant\":\"{TENANT}\""),
        BOB.to_string(),
        "partner drop agreed".to_string(),
    ] {
        assert!(review.contains(&needle), "the review record has {needle}: {review}");
    }
    for r in service::records_mentioning(&records, "credential.minted", &id) {
        let t = r.to_string();
        assert!(!t.contains(token.rsplit('.').next().unwrap_or("-")), "no token in the audit trail: {t}");
    }
    let verify = fx.svc.audit_verify().unwrap();
    assert!(verify.success(), "airlock audit verify: {verify}");
}

fn owner_click_is_refused_and_retry_stays_pending(fx: &Fixture) {
    let case = "teams-envoy-owner";
    let req = export_call(case, 2);
    let id = pending(&fx.gw, &req);
    wait_posted(fx, &id, &[CHANNEL_CONVERSATION]);

    // Alice owns the agent: her verified click is refused, with the reason, not counted.
    let answer = click(fx, &fakes::invoke(&svc_url(fx), &alice(), &id, "approve", Some("my own bot, fine")));
    assert_eq!(answer["type"], "application/vnd.microsoft.activity.message", "a refusal, not a card: {answer}");
    let why = answer["value"].as_str().unwrap_or_default();
    assert!(why.contains("your own agent"), "separation of duties named: {answer}");
    // The same through the `Action.Submit` fallback of older clients (answered 200 with
    // no body: message activities take no card).
    let submit = fakes::submit(&svc_url(fx), &alice(), &id, "approve");
    let resp = send_activity(fx, submit.to_string().into_bytes(), &svc_url(fx));
    assert_eq!(resp.status, 200, "fallback click: {}", resp.text());
    let shown = show(fx, &id);
    assert_eq!(status_of(&shown), Some("pending"), "{shown}");
    assert!(shown["reviews"].as_array().is_none_or(Vec::is_empty), "no review counted: {shown}");

    // The agent's retry stays pending on the same approval; nothing reaches the upstream.
    assert_eq!(pending(&fx.gw, &req), id);
    expect_nothing_reached(&fx.upstream, case);
    // No copy of the card claims a decision.
    let decided = fx.fakes.connector.cards_for("PUT", &id);
    assert!(
        decided.iter().all(|u| !u.card_text().contains("approved by")),
        "no card update says approved: {decided:#?}"
    );
    let records = fx.svc.audit_export().unwrap();
    assert!(service::records_mentioning(&records, "review", &id).is_empty(), "no review recorded for {id}");
    assert!(service::records_mentioning(&records, "approval.approved", &id).is_empty());

    // The refusal was about who, not what: a data owner who is not the owner approves it
    // in Teams and the same retry goes through.
    let answer = click(fx, &fakes::invoke(&svc_url(fx), &bob(), &id, "approve", None));
    assert_eq!(answer["type"], "application/vnd.microsoft.card.adaptive", "{answer}");
    let resp = send(&fx.gw, &req);
    assert_eq!(resp.status, 200, "retry after bob's approval: {}", resp.text());
    let got = fx.upstream.requests_for(case);
    assert_eq!(got.len(), 1, "{got:#?}");
    check_credential(&got[0], TEAMS_AGENT, &[BOB]);
}
