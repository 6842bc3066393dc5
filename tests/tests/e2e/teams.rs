//! The Microsoft Teams channel of the REAL approval service (`airlock serve`) over real
//! HTTP, against local fakes of the Bot Framework issuer, Entra and the Bot Connector
//! (`airlock_tests::fakes::teams`): a card is posted to every known conversation when an
//! approval is created (through the signed gateway API), a verified click decides it and
//! every copy is updated; quorum, separation of duties (by object id and by e-mail),
//! retried activities, expiry, approve/deny races, every token/host/tenant/identity
//! refusal, connector failures (the decision stands, the outbox retries), learnt
//! conversations, and the audit trail's channel and evidence.
//!
//! Needs `cargo build -p airlock-approval-svc`. Every wait is bounded.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use airlock_tests::e2e::cases::{self, Case};
use airlock_tests::e2e::client::{Request, Response};
use airlock_tests::e2e::service::{self, AirlockService, Reviewer, ServiceOptions};
use airlock_tests::fakes::teams::{
    self as fakes, ConnectorFailure, Signing, TeamsFakes, TeamsUser, TestKey, TokenSpec, CHANNEL_CONVERSATION,
    FOREIGN_TENANT, TENANT,
};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

const BOB: &str = "bob@teams.e2e.example";
const CAROL: &str = "carol@teams.e2e.example";
const ALICE: &str = "alice@teams.e2e.example";
const OID_BOB: &str = "00000000-0000-0000-0000-0000000000b0";
const OID_CAROL: &str = "00000000-0000-0000-0000-0000000000c0";
const OID_ALICE: &str = "00000000-0000-0000-0000-0000000000a1";
/// A conversation the bot learns from an install.
const LEARNT_CONVERSATION: &str = "a:1personal-chat-learnt-from-install";
/// How long the outbox may take to post or update a card (it polls every 200 ms and
/// retries with backoff from 0.5 s).
const DELIVERY: Duration = Duration::from_secs(20);

struct Fixture {
    fakes: TeamsFakes,
    svc: AirlockService,
    admin_key: String,
}

fn bob() -> TeamsUser {
    TeamsUser::new("29:bob", OID_BOB, BOB)
}
fn carol() -> TeamsUser {
    TeamsUser::new("29:carol", OID_CAROL, CAROL)
}
/// Alice as the directory knows her (object id is a configured alias).
fn alice() -> TeamsUser {
    TeamsUser::new("29:alice", OID_ALICE, ALICE)
}
/// Alice from a device whose object id is not configured: only her e-mail maps her.
fn alice_by_email() -> TeamsUser {
    TeamsUser::new("29:alice-2", "00000000-0000-0000-0000-00000000a1e2", ALICE)
}

#[test]
fn teams() {
    let started = Instant::now();
    let fakes = TeamsFakes::start(3600).unwrap();
    let reviewers = vec![
        Reviewer::new(BOB, &["data-owners"]).alias(OID_BOB),
        // Carol's object id is not configured: she is found by e-mail.
        Reviewer::new(CAROL, &["data-owners"]),
        Reviewer::new(ALICE, &["data-owners"]).alias(OID_ALICE),
    ];
    let opts =
        ServiceOptions { reviewers, extra_toml: fakes.toml(), extra_env: fakes.env(), ..ServiceOptions::default() };
    let svc = AirlockService::start("teams", &opts).unwrap_or_else(|e| panic!("{e:#}"));
    let admin_key = svc.reviewer(BOB).unwrap().api_key.clone();
    for user in [bob(), carol(), alice(), alice_by_email()] {
        fakes.connector.set_member(&user.id, user.profile());
    }
    eprintln!("[e2e_teams] setup {:.1?}", started.elapsed());
    let fx = Fixture { fakes, svc, admin_key };
    let all: &[Case<Fixture>] = &[
        // First: later approvals are posted to the learnt conversation too.
        ("conversation_update_is_remembered", conversation_update_is_remembered),
        ("card_posted_and_click_approves_every_copy", card_posted_and_click_approves_every_copy),
        ("quorum_two_shows_one_of_two", quorum_two_shows_one_of_two),
        ("self_approval_refused_by_object_id", self_approval_refused_by_object_id),
        ("self_approval_refused_by_email", self_approval_refused_by_email),
        ("retried_activity_records_nothing", retried_activity_records_nothing),
        ("expired_approval_is_refused", expired_approval_is_refused),
        ("approve_deny_race_has_one_winner", approve_deny_race_has_one_winner),
        ("forged_and_foreign_activities_change_nothing", forged_and_foreign_activities_change_nothing),
        ("connector_5xx_on_update_decision_stands", connector_5xx_on_update_decision_stands),
        ("not_in_roster_on_post_is_retried", not_in_roster_on_post_is_retried),
        ("submit_fallback_decides", submit_fallback_decides),
        ("audit_records_channel_and_evidence", audit_records_channel_and_evidence),
        ("bot_token_is_cached", bot_token_is_cached),
        ("endpoint_is_404_when_teams_is_not_configured", endpoint_is_404_when_teams_is_not_configured),
    ];
    let outcome = cases::run("e2e_teams", &fx, all, |_| {});
    eprintln!("[e2e_teams] total {:.1?}", started.elapsed());
    if outcome.is_err() {
        fx.svc.print_logs();
    }
    outcome.unwrap();
}

// ---------------------------------------------------------------------------------------
// Helpers

/// Creates an approval through the signed gateway API; returns its id.
fn create(fx: &Fixture, tag: &str, owner: &str, quorum: u32, expires_in: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let digest = hex::encode(Sha256::digest(format!("teams-{tag}-{n}-{}", std::process::id())));
    let body = json!({
        "decision_id": format!("dec-teams-{tag}-{n}"),
        "agent": {"id": format!("spiffe://e2e/agent/teams-{tag}"), "source": "header", "owner": owner},
        "digest": digest,
        "hold_ms": 0,
        "policy": {"reason": "bulk export of customer data", "risk": "high", "rule": "exports",
                   "approvers": {"groups": ["data-owners"], "quorum": quorum}, "expires_in": expires_in},
        "request": {"method": "POST", "host": "api.e2e.test", "path": "/v1/exports?format=csv",
                    "query": {"format": ["csv"]}, "body": {"rows": 10, "ssn": "[REDACTED]"}},
    });
    let resp = fx.svc.gateway_create(&body).unwrap();
    assert_eq!(resp.status, 200, "create: {}", resp.text());
    let answer = resp.json().unwrap();
    assert_eq!(answer["status"], "pending", "{answer}");
    answer["approval_id"].as_str().unwrap().to_string()
}

/// Sends `activity` to the messaging endpoint with `token` (`None`: no authorization).
fn send_raw(fx: &Fixture, token: Option<&str>, body: Vec<u8>) -> Response {
    let mut req = Request::new("POST", "/teams/messages")
        .header("host", &format!("127.0.0.1:{}", fx.svc.port()))
        .header("content-type", "application/json")
        .timeout(Duration::from_secs(20));
    if let Some(t) = token {
        req = req.header("authorization", &format!("Bearer {t}"));
    }
    req.body(body).send(fx.svc.addr()).unwrap()
}

/// Sends `activity` with a valid token for its `serviceUrl`.
fn send(fx: &Fixture, activity: &Value) -> Response {
    let url = activity["serviceUrl"].as_str().unwrap();
    let token = fakes::mint(&TokenSpec::valid(url)).unwrap();
    send_raw(fx, Some(&token), activity.to_string().into_bytes())
}

fn svc_url(fx: &Fixture) -> String {
    fx.fakes.connector.service_url()
}

/// A click by `user`, answered 200; returns the invoke response.
fn click(fx: &Fixture, user: &TeamsUser, id: &str, verb: &str) -> Value {
    let resp = send(fx, &fakes::invoke(&svc_url(fx), user, id, verb, Some("looked at it")));
    assert_eq!(resp.status, 200, "click: {}", resp.text());
    resp.json().unwrap()
}

/// The refreshed card of an invoke response (panics on a message answer).
fn card_of(answer: &Value) -> &Value {
    assert_eq!(answer["statusCode"], 200, "{answer}");
    assert_eq!(answer["type"], "application/vnd.microsoft.card.adaptive", "a card answer: {answer}");
    &answer["value"]
}

/// The refusal text of an invoke response (panics on a card answer).
fn refusal_of(answer: &Value) -> String {
    assert_eq!(answer["type"], "application/vnd.microsoft.activity.message", "a refusal: {answer}");
    answer["value"].as_str().unwrap().to_string()
}

fn show(fx: &Fixture, id: &str) -> Value {
    fx.svc.client().show(id, &fx.admin_key).unwrap()
}

fn status(fx: &Fixture, id: &str) -> String {
    service::status_of(&show(fx, id)).unwrap_or_default().to_string()
}

fn review_count(fx: &Fixture, id: &str) -> usize {
    show(fx, id).get("reviews").and_then(Value::as_array).map_or(0, Vec::len)
}

/// Waits until the card of `id` was posted to every conversation in `conversations`.
fn wait_posted(fx: &Fixture, id: &str, conversations: &[&str]) -> Vec<fakes::ConnectorCall> {
    let posts = fx.fakes.connector.wait_cards("POST", id, DELIVERY, |calls| {
        conversations.iter().all(|c| calls.iter().any(|p| p.status == 201 && p.conversation_id == *c))
    });
    for c in conversations {
        assert!(
            posts.iter().any(|p| p.status == 201 && p.conversation_id == *c),
            "card of {id} posted to {c}: {posts:#?}"
        );
    }
    posts
}

/// Waits until a successful update of `id`'s card satisfying `pred` reached every copy.
fn wait_updated(fx: &Fixture, id: &str, copies: usize, pred: impl Fn(&str) -> bool) -> Vec<fakes::ConnectorCall> {
    let ok = |calls: &[fakes::ConnectorCall]| {
        let mut activities: Vec<String> = calls
            .iter()
            .filter(|c| c.status == 200 && pred(&c.card_text()))
            .filter_map(|c| c.item_id.clone())
            .collect();
        activities.sort();
        activities.dedup();
        activities.len() >= copies
    };
    let puts = fx.fakes.connector.wait_cards("PUT", id, DELIVERY, ok);
    assert!(ok(&puts), "{copies} copies of {id}'s card updated: {puts:#?}");
    puts
}

fn actions(card: &Value) -> usize {
    card.get("actions").and_then(Value::as_array).map_or(0, Vec::len)
}

// ---------------------------------------------------------------------------------------
// Cases

fn conversation_update_is_remembered(fx: &Fixture) {
    // A foreign tenant's install is refused and not remembered.
    let foreign = fakes::conversation_update(&svc_url(fx), "a:foreign-install", FOREIGN_TENANT);
    assert_eq!(send(fx, &foreign).status, 403);
    let resp = send(fx, &fakes::conversation_update(&svc_url(fx), LEARNT_CONVERSATION, TENANT));
    assert_eq!(resp.status, 200, "{}", resp.text());
    let id = create(fx, "learnt", ALICE, 1, "15m");
    wait_posted(fx, id.as_str(), &[CHANNEL_CONVERSATION, LEARNT_CONVERSATION]);
    assert!(
        fx.fakes.connector.cards_for("POST", &id).iter().all(|c| c.conversation_id != "a:foreign-install"),
        "nothing posted to the refused install"
    );
}

fn card_posted_and_click_approves_every_copy(fx: &Fixture) {
    let id = create(fx, "approve", ALICE, 1, "15m");
    let posts = wait_posted(fx, &id, &[CHANNEL_CONVERSATION, LEARNT_CONVERSATION]);
    let post = &posts[0];
    assert!(post.authorization.as_deref().unwrap_or_default().starts_with("Bearer fake-bot-token-"));
    let card = post.card();
    assert_eq!(card["version"], "1.5");
    let text = post.card_text();
    for needle in [
        "POST api.e2e.test/v1/exports",
        "bulk export of customer data",
        "high",
        ALICE,
        "format=csv",
        "[REDACTED]",
        "0/1",
    ] {
        assert!(text.contains(needle), "card shows {needle}: {text}");
    }
    assert_eq!(card["actions"][0]["type"], "Action.Execute");
    assert_eq!(card["actions"][0]["verb"], "approve");
    assert_eq!(card["actions"][0]["data"]["approvalId"], id.as_str());
    assert_eq!(card["actions"][0]["fallback"]["type"], "Action.Submit");

    let answer = click(fx, &bob(), &id, "approve");
    let card = card_of(&answer);
    assert_eq!(actions(card), 0, "a decided card has no buttons: {card}");
    assert!(card.to_string().contains(&format!("approved by {BOB}")), "{card}");
    assert_eq!(status(fx, &id), "approved");
    // Every posted copy is brought up to date.
    let puts = wait_updated(fx, &id, 2, |t| t.contains("approved by"));
    let posted_ids: Vec<String> = fx
        .fakes
        .connector
        .cards_for("POST", &id)
        .iter()
        .filter(|p| p.status == 201)
        .map(|p| p.conversation_id.clone())
        .collect();
    for conv in posted_ids {
        assert!(puts.iter().any(|p| p.conversation_id == conv), "copy in {conv} updated");
    }
}

fn quorum_two_shows_one_of_two(fx: &Fixture) {
    let id = create(fx, "quorum", ALICE, 2, "15m");
    wait_posted(fx, &id, &[CHANNEL_CONVERSATION]);
    let first = click(fx, &bob(), &id, "approve");
    let card = card_of(&first);
    assert!(card.to_string().contains("1/2"), "{card}");
    assert_eq!(actions(card), 2, "still open");
    assert_eq!(status(fx, &id), "pending");
    wait_updated(fx, &id, 1, |t| t.contains("pending (1/2 approvals)"));
    // The same human again does not count twice.
    let again = click(fx, &bob(), &id, "approve");
    assert!(refusal_of(&again).contains("already reviewed"), "{again}");
    // Carol, found by e-mail, completes the quorum.
    let second = click(fx, &carol(), &id, "approve");
    assert!(card_of(&second).to_string().contains("approved by"), "{second}");
    assert_eq!(status(fx, &id), "approved");
}

fn self_approval_refused_by_object_id(fx: &Fixture) {
    // The agent's owner is recorded by Entra object id.
    let id = create(fx, "sod-oid", OID_ALICE, 1, "15m");
    let answer = click(fx, &alice(), &id, "approve");
    assert!(refusal_of(&answer).contains("your own agent"), "{answer}");
    assert_eq!(status(fx, &id), "pending");
    assert_eq!(review_count(fx, &id), 0);
}

fn self_approval_refused_by_email(fx: &Fixture) {
    // Owner by e-mail; Alice clicks from an account whose object id is not configured.
    let id = create(fx, "sod-mail", ALICE, 1, "15m");
    let answer = click(fx, &alice_by_email(), &id, "approve");
    assert!(refusal_of(&answer).contains("your own agent"), "{answer}");
    assert_eq!(status(fx, &id), "pending");
    assert_eq!(review_count(fx, &id), 0);
}

fn retried_activity_records_nothing(fx: &Fixture) {
    let id = create(fx, "retry", ALICE, 2, "15m");
    let activity = fakes::invoke(&svc_url(fx), &bob(), &id, "approve", None);
    let first = send(fx, &activity);
    assert!(card_of(&first.json().unwrap()).to_string().contains("1/2"));
    // Teams retries the very same activity (same id): the current card, nothing recorded.
    let retry = send(fx, &activity);
    assert_eq!(retry.status, 200);
    let retry = retry.json().unwrap();
    assert!(card_of(&retry).to_string().contains("1/2"), "{retry}");
    assert_eq!(review_count(fx, &id), 1);
    // Even a retry carrying a deny: the id was seen, nothing is recorded.
    let mut deny = activity.clone();
    deny["value"]["action"]["verb"] = json!("deny");
    let retry = send(fx, &deny).json().unwrap();
    card_of(&retry);
    assert_eq!(review_count(fx, &id), 1);
    assert_eq!(status(fx, &id), "pending");
}

fn expired_approval_is_refused(fx: &Fixture) {
    let id = create(fx, "expired", ALICE, 1, "2s");
    thread::sleep(Duration::from_millis(2_500));
    let answer = click(fx, &bob(), &id, "approve");
    assert!(refusal_of(&answer).contains("expired"), "{answer}");
    assert_eq!(status(fx, &id), "expired");
    assert_eq!(review_count(fx, &id), 0);
}

fn approve_deny_race_has_one_winner(fx: &Fixture) {
    const ROUNDS: usize = 4;
    for round in 0..ROUNDS {
        let id = create(fx, &format!("race-{round}"), ALICE, 1, "15m");
        let barrier = Arc::new(Barrier::new(2));
        let answers: Vec<Value> = thread::scope(|s| {
            let handles: Vec<_> = [(bob(), "approve"), (carol(), "deny")]
                .into_iter()
                .map(|(user, verb)| {
                    let (barrier, id) = (barrier.clone(), id.clone());
                    s.spawn(move || {
                        let activity = fakes::invoke(&svc_url(fx), &user, &id, verb, None);
                        barrier.wait();
                        send(fx, &activity).json().unwrap()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let winners: Vec<&Value> =
            answers.iter().filter(|a| a["type"] == "application/vnd.microsoft.card.adaptive").collect();
        assert_eq!(winners.len(), 1, "exactly one decision counted: {answers:#?}");
        let loser = answers.iter().find(|a| a["type"] != "application/vnd.microsoft.card.adaptive").unwrap();
        assert!(refusal_of(loser).to_lowercase().contains("already"), "{loser}");
        let final_status = status(fx, &id);
        assert!(
            winners[0]["value"].to_string().contains(&format!("{final_status} by")),
            "{final_status}: {answers:#?}"
        );
        assert_eq!(review_count(fx, &id), 1);
    }
}

fn forged_and_foreign_activities_change_nothing(fx: &Fixture) {
    let id = create(fx, "forged", ALICE, 1, "15m");
    let url = svc_url(fx);
    let activity = fakes::invoke(&url, &bob(), &id, "approve", None);
    let body = || activity.to_string().into_bytes();
    let now = service::unix_now();
    let public_pem =
        std::fs::read(airlock_tests::wasm::workspace_root().join("approval-svc/tests/fixtures/oidc-test-key.pub.pem"))
            .unwrap();
    let valid = || TokenSpec::valid(&url);
    let key_fetches_before = fx.fakes.botframework.key_fetches();
    let unauthorized: Vec<(&str, Option<TokenSpec>)> = vec![
        ("no token", None),
        ("wrong iss", Some(valid().claim("iss", json!("https://sts.windows.net/evil/")))),
        ("wrong aud", Some(valid().claim("aud", json!("another-bot")))),
        ("expired", Some(valid().claim("exp", json!(now - 400)))),
        ("nbf in the future", Some(valid().claim("nbf", json!(now + 400)))),
        ("alg none", Some(valid().signed(Signing::None, Some(TestKey::One.kid())))),
        ("HS256 with the public key", Some(valid().signed(Signing::Hs256(public_pem), Some(TestKey::One.kid())))),
        ("signed by another key", Some(valid().signed(Signing::Rs256(TestKey::Two), Some(TestKey::One.kid())))),
        ("unknown kid", Some(valid().signed(Signing::Rs256(TestKey::One), Some("rotated-away")))),
        ("unknown kid again", Some(valid().signed(Signing::Rs256(TestKey::One), Some("rotated-away-2")))),
        ("serviceurl mismatch", Some(valid().claim("serviceurl", json!("https://smba.trafficmanager.net/emea/")))),
        ("key not endorsed for msteams", Some(valid().signed(Signing::Rs256(TestKey::Two), Some(TestKey::Two.kid())))),
    ];
    for (what, spec) in unauthorized {
        let token = spec.map(|s| fakes::mint(&s).unwrap());
        let resp = send_raw(fx, token.as_deref(), body());
        assert_eq!(resp.status, 401, "{what}: {}", resp.text());
    }
    // A flood of unknown kids fetched the keys at most once (rate-limited refresh).
    assert!(
        fx.fakes.botframework.key_fetches() <= key_fetches_before + 1,
        "unknown kids refetched {} times",
        fx.fakes.botframework.key_fetches() - key_fetches_before
    );

    // Host not allow-listed (token and activity agree on it): 403.
    let local = fx.fakes.connector.localhost_service_url();
    let resp = send(fx, &fakes::invoke(&local, &bob(), &id, "approve", None));
    assert_eq!(resp.status, 403, "host not allow-listed: {}", resp.text());
    // Foreign tenant in the activity: 403.
    let mut foreign = activity.clone();
    foreign["channelData"]["tenant"]["id"] = json!(FOREIGN_TENANT);
    foreign["conversation"]["tenantId"] = json!(FOREIGN_TENANT);
    assert_eq!(send(fx, &foreign).status, 403, "foreign tenant");
    let mut mixed = activity.clone();
    mixed["conversation"]["tenantId"] = json!(FOREIGN_TENANT);
    assert_eq!(send(fx, &mixed).status, 403, "tenants disagree");
    // Bad JSON and oversized bodies, with a valid token.
    let token = fakes::mint(&valid()).unwrap();
    let resp = send_raw(fx, Some(&token), b"{not json".to_vec());
    assert_eq!(resp.status, 400);
    assert!(resp.text().contains("not valid JSON"), "{}", resp.text());
    let resp = send_raw(fx, Some(&token), vec![b' '; 300 * 1024]);
    assert_eq!(resp.status, 413);

    // Verified activities from people who may not decide: refused, 200 with the reason.
    let mut anonymous = bob();
    anonymous.aad_object_id = None;
    assert!(refusal_of(&click(fx, &anonymous, &id, "approve")).contains("anonymous"));
    let mut anon_role =
        TeamsUser::new("29:anon-role", "00000000-0000-0000-0000-0000000a0000", "guest@elsewhere.example");
    anon_role.role = "anonymous".into();
    fx.fakes.connector.set_member(&anon_role.id, anon_role.profile());
    assert!(refusal_of(&click(fx, &anon_role, &id, "approve")).contains("anonymous"));
    let mut guest = TeamsUser::new("29:guest", OID_BOB, BOB);
    guest.tenant = FOREIGN_TENANT.into();
    fx.fakes.connector.set_member(&guest.id, guest.profile());
    let mut guest_activity = fakes::invoke(&url, &guest, &id, "approve", None);
    // The activity itself claims our tenant; the member profile says otherwise.
    guest_activity["channelData"]["tenant"]["id"] = json!(TENANT);
    guest_activity["conversation"]["tenantId"] = json!(TENANT);
    let answer = send(fx, &guest_activity).json().unwrap();
    assert!(refusal_of(&answer).contains("not one this approval service accepts"), "{answer}");
    let mallory = TeamsUser::new("29:mallory", "00000000-0000-0000-0000-00000000ba11", "mallory@teams.e2e.example");
    fx.fakes.connector.set_member(&mallory.id, mallory.profile());
    assert!(refusal_of(&click(fx, &mallory, &id, "approve")).contains("not a configured reviewer"));

    // Not a member of the conversation: the connector has no profile for them.
    let stranger = TeamsUser::new("29:not-a-member", OID_BOB, BOB);
    assert!(refusal_of(&click(fx, &stranger, &id, "approve")).contains("could not be confirmed"));

    assert_eq!(status(fx, &id), "pending", "nothing changed");
    assert_eq!(review_count(fx, &id), 0);
}

fn connector_5xx_on_update_decision_stands(fx: &Fixture) {
    let id = create(fx, "update-5xx", ALICE, 1, "15m");
    wait_posted(fx, &id, &[CHANNEL_CONVERSATION, LEARNT_CONVERSATION]);
    fx.fakes.connector.fail_next("PUT", 3, ConnectorFailure::Status(500));
    let answer = click(fx, &bob(), &id, "approve");
    card_of(&answer);
    assert_eq!(status(fx, &id), "approved", "the decision stands whatever the connector does");
    let puts = wait_updated(fx, &id, 2, |t| t.contains("approved by"));
    assert!(puts.iter().any(|p| p.status == 500), "an update failed first: {puts:#?}");
    assert_eq!(status(fx, &id), "approved");
}

fn not_in_roster_on_post_is_retried(fx: &Fixture) {
    fx.fakes.connector.fail_next("POST", 1, ConnectorFailure::NotInRoster);
    let id = create(fx, "roster", ALICE, 1, "15m");
    wait_posted(fx, &id, &[CHANNEL_CONVERSATION, LEARNT_CONVERSATION]);
    let posts = fx.fakes.connector.cards_for("POST", &id);
    assert!(posts.iter().any(|p| p.status == 403), "the first post was refused: {posts:#?}");
    assert_eq!(status(fx, &id), "pending", "the approval is unaffected");
    card_of(&click(fx, &bob(), &id, "approve"));
    assert_eq!(status(fx, &id), "approved");
}

fn submit_fallback_decides(fx: &Fixture) {
    let id = create(fx, "submit", ALICE, 1, "15m");
    let resp = send(fx, &fakes::submit(&svc_url(fx), &bob(), &id, "deny"));
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(status(fx, &id), "denied");
    wait_updated(fx, &id, 1, |t| t.contains("denied by"));
}

fn audit_records_channel_and_evidence(fx: &Fixture) {
    let id = create(fx, "audit", ALICE, 1, "15m");
    let activity = fakes::invoke(&svc_url(fx), &bob(), &id, "approve", Some("ship it"));
    let activity_id = activity["id"].as_str().unwrap().to_string();
    let raw = activity.to_string().into_bytes();
    let body_sha256 = hex::encode(Sha256::digest(&raw));
    let token = fakes::mint(&TokenSpec::valid(&svc_url(fx))).unwrap();
    let resp = send_raw(fx, Some(&token), raw);
    card_of(&resp.json().unwrap());
    let records = fx.svc.audit_export().unwrap();
    let reviews = service::records_mentioning(&records, "review", &id);
    assert_eq!(reviews.len(), 1, "{reviews:#?}");
    let text = reviews[0].to_string();
    for needle in [
        "\"channel\":\"teams\"".to_string(),
        activity_id,
        body_sha256,
        format!("\"kid\":\"{}\"", TestKey::One.kid()),
        TENANT.to_string(),
        OID_BOB.to_string(),
        "ship it".to_string(),
    ] {
        assert!(text.contains(&needle), "review record has {needle}: {text}");
    }
    let verify = fx.svc.audit_verify().unwrap();
    assert!(verify.success(), "{verify}");
}

fn bot_token_is_cached(fx: &Fixture) {
    let grants = fx.fakes.entra.grants();
    assert!(!grants.is_empty());
    assert_eq!(grants.len(), 1, "one client-credentials grant for the whole run (expires_in 3600): {grants:#?}");
    let g = &grants[0];
    assert_eq!(g.grant_type, "client_credentials");
    assert_eq!(g.client_id, fakes::APP_ID);
    assert!(g.secret_ok);
    assert_eq!(g.scope, "https://api.botframework.com/.default");
}

fn endpoint_is_404_when_teams_is_not_configured(fx: &Fixture) {
    let plain = AirlockService::start("teams-off", &ServiceOptions::default()).unwrap_or_else(|e| panic!("{e:#}"));
    let activity = fakes::invoke(&svc_url(fx), &bob(), "apr_x", "approve", None);
    let token = fakes::mint(&TokenSpec::valid(&svc_url(fx))).unwrap();
    let resp = Request::new("POST", "/teams/messages")
        .header("host", &format!("127.0.0.1:{}", plain.port()))
        .header("authorization", &format!("Bearer {token}"))
        .header("content-type", "application/json")
        .body(activity.to_string().into_bytes())
        .send(plain.addr())
        .unwrap();
    assert_eq!(resp.status, 404, "{}", resp.text());
}
