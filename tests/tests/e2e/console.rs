//! The reviewers' web console of the REAL approval service (`airlock serve`), in a real
//! headless Chromium (Debian's, through chromedriver), signing in at a real OpenID
//! Connect provider (npm `oidc-provider`) on 127.0.0.1: sign-in with code + PKCE and the
//! session cookie's flags, a pending approval appearing in the inbox without a reload, the
//! approval page with its diff against the last approved action, approve; the agent's
//! owner sees why they may not decide; a form POST without its CSRF token is refused; a
//! critical approval demands a fresh sign-in (refused server-side too); filters and a
//! 360 px phone width; history with the audit records and the evidence export; sign-out.
//! Microsoft Teams (the local fakes of `airlock_tests::fakes::teams`) is configured too:
//! a console decision updates the posted card, and a critical approval's card opens the
//! console page the browser then decides on.
//! Screenshots of the inbox and the approval page go to `docs/img/`.
//!
//! Needs `cargo build -p airlock-approval-svc` and `bash scripts/setup-console.sh`.
//! Every wait is bounded.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use airlock_tests::e2e::browser::{Browser, Chromedriver};
use airlock_tests::e2e::cases::{self, Case};
use airlock_tests::e2e::client::{Request, Response};
use airlock_tests::e2e::oidc_provider::{OidcProvider, OidcUser};
use airlock_tests::e2e::ports::free_port;
use airlock_tests::e2e::service::{self, AirlockService, Reviewer, ServiceOptions};
use airlock_tests::fakes::teams::{TeamsFakes, CHANNEL_CONVERSATION};
use airlock_tests::wasm::workspace_root;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

const BOB: &str = "bob@console.e2e.example";
const ALICE: &str = "alice@console.e2e.example";
/// Decides through the API (with an API key): sets up the earlier approved action.
const CAROL: &str = "carol@console.e2e.example";
const CLIENT_ID: &str = "airlock-console";
const CLIENT_SECRET: &str = "console-e2e-client-secret-0123456789";
const SECRET_ENV: &str = "AIRLOCK_E2E_CONSOLE_SECRET";
/// `[console] step_up_max_age`: short, so the test can outlive it.
const STEP_UP: Duration = Duration::from_secs(20);
const AGENT: &str = "spiffe://e2e/agent/reporter";
/// How long the inbox may take to show a new approval (the stream looks every 2 s).
const LIVE: Duration = Duration::from_secs(20);
const WAIT: Duration = Duration::from_secs(15);
/// How long the outbox may take to post or update a Teams card.
const DELIVERY: Duration = Duration::from_secs(20);

struct Fixture {
    teams: TeamsFakes,
    svc: AirlockService,
    idp: OidcProvider,
    _driver: Chromedriver,
    bob: Browser,
    alice: Browser,
    /// When bob last signed in at the IdP.
    bob_signed_in: Mutex<Option<Instant>>,
    /// Approvals made by earlier scenarios, by role.
    ids: Mutex<HashMap<&'static str, String>>,
}

impl Fixture {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.svc.url())
    }
    fn remember(&self, what: &'static str, id: &str) {
        self.ids.lock().unwrap().insert(what, id.to_string());
    }
    fn id(&self, what: &str) -> String {
        self.ids
            .lock()
            .unwrap()
            .get(what)
            .cloned()
            .unwrap_or_else(|| panic!("no {what} approval (an earlier scenario failed)"))
    }
    fn carol_key(&self) -> String {
        self.svc.reviewer(CAROL).unwrap().api_key.clone()
    }
    fn show(&self, id: &str) -> Value {
        self.svc.show(id, &self.carol_key()).unwrap()
    }
}

#[test]
fn console() {
    let started = Instant::now();
    let idp_port = free_port().unwrap();
    let issuer = format!("http://127.0.0.1:{idp_port}");
    let extra_toml = format!(
        "[oidc]\nissuer = \"{issuer}\"\naudience = \"airlock-api\"\njwks_url = \"{issuer}/jwks\"\n\n\
         [console]\npublic_url = \"http://127.0.0.1:${{PORT}}\"\nclient_id = \"{CLIENT_ID}\"\n\
         client_secret_env = \"{SECRET_ENV}\"\nscopes = [\"openid\", \"email\", \"groups\"]\n\
         step_up_max_age = \"{}s\"\n",
        STEP_UP.as_secs()
    );
    // Teams asks in a channel. No step-up keys in [teams]: the console's step_up_risks
    // reach the chat channels by themselves.
    let teams = TeamsFakes::start(3600).unwrap();
    let extra_toml = format!("{extra_toml}\n{}", teams.toml());
    let mut extra_env = teams.env();
    extra_env.push((SECRET_ENV.into(), CLIENT_SECRET.into()));
    let opts = ServiceOptions {
        reviewers: vec![Reviewer::new(CAROL, &["data-owners"])],
        extra_toml,
        extra_env,
        ..ServiceOptions::default()
    };
    let svc = AirlockService::start("console", &opts).unwrap_or_else(|e| panic!("{e:#}"));
    let users = [
        OidcUser { login: "bob".into(), email: BOB.into(), groups: vec!["data-owners".into()] },
        OidcUser { login: "alice".into(), email: ALICE.into(), groups: vec!["data-owners".into()] },
    ];
    let redirect = format!("{}/console/callback", svc.url());
    let idp =
        OidcProvider::start(idp_port, CLIENT_ID, CLIENT_SECRET, &redirect, &users).unwrap_or_else(|e| panic!("{e:#}"));
    let driver = Chromedriver::start().unwrap_or_else(|e| panic!("{e:#}"));
    let bob = driver.browser(1280, 900).unwrap_or_else(|e| panic!("{e:#}"));
    let alice = driver.browser(1280, 900).unwrap_or_else(|e| panic!("{e:#}"));
    eprintln!("[e2e_console] setup {:.1?}", started.elapsed());
    let fx = Fixture {
        teams,
        svc,
        idp,
        _driver: driver,
        bob,
        alice,
        bob_signed_in: Mutex::new(None),
        ids: Mutex::new(HashMap::new()),
    };
    let all: &[Case<Fixture>] = &[
        ("signed_out_pages_redirect_and_carry_security_headers", signed_out_pages_redirect_and_carry_security_headers),
        ("sign_in_at_the_idp_sets_a_strict_session_cookie", sign_in_at_the_idp_sets_a_strict_session_cookie),
        ("pending_approval_appears_without_reload", pending_approval_appears_without_reload),
        ("approval_page_shows_the_action_and_diff_and_approves", approval_page_shows_the_action_and_diff_and_approves),
        ("owner_sees_why_they_may_not_decide", owner_sees_why_they_may_not_decide),
        ("form_post_without_csrf_token_is_refused", form_post_without_csrf_token_is_refused),
        ("critical_approval_demands_a_fresh_sign_in", critical_approval_demands_a_fresh_sign_in),
        ("filters_and_a_phone_width", filters_and_a_phone_width),
        ("history_shows_audit_records_and_exports_evidence", history_shows_audit_records_and_exports_evidence),
        ("sign_out_ends_the_session", sign_out_ends_the_session),
    ];
    let outcome = cases::run("e2e_console", &fx, all, |_| {});
    eprintln!("[e2e_console] total {:.1?}", started.elapsed());
    if outcome.is_err() {
        fx.svc.print_logs();
        eprintln!("===== oidc-provider log =====\n{}", fx.idp.log_text());
    }
    outcome.unwrap();
}

// ---------------------------------------------------------------------------------------
// Helpers

/// Creates an approval through the signed gateway API; returns its id.
fn create(fx: &Fixture, rule: &str, risk: &str, owner: &str, rows: u64) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let digest = hex::encode(Sha256::digest(format!("console-{rule}-{n}-{}", std::process::id())));
    let body = json!({
        "decision_id": format!("dec-console-{n}"),
        "agent": {"id": AGENT, "source": "header", "owner": owner},
        "digest": digest,
        "hold_ms": 0,
        "policy": {"reason": format!("{rule}: customer data leaves the company"), "risk": risk, "rule": rule,
                   "approvers": {"groups": ["data-owners"], "quorum": 1}, "expires_in": "30m"},
        "request": {"method": "POST", "host": "api.e2e.test", "path": "/v1/exports?format=csv",
                    "query": {"format": ["csv"]}, "body": {"rows": rows, "table": "customers", "ssn": "[REDACTED]"}},
    });
    let resp = fx.svc.gateway_create(&body).unwrap();
    assert_eq!(resp.status, 200, "create: {}", resp.text());
    resp.json().unwrap()["approval_id"].as_str().unwrap().to_string()
}

/// A plain HTTP GET to the service, with `cookie` if given.
fn get(fx: &Fixture, path: &str, cookie: Option<&str>) -> Response {
    let mut req = Request::get(path).header("host", &format!("127.0.0.1:{}", fx.svc.port())).timeout(WAIT);
    if let Some(c) = cookie {
        req = req.header("cookie", c);
    }
    req.send(fx.svc.addr()).unwrap()
}

/// Signs `browser` in as `login` at the IdP's login page (it must be showing it).
fn login_at_idp(fx: &Fixture, browser: &Browser, login: &str) {
    if let Err(e) = browser.wait_for("input[name=login]", WAIT) {
        let page = browser.execute("return document.documentElement.outerHTML", json!([])).unwrap_or_default();
        panic!("{e:#}\n--- the page ---\n{}", page.as_str().unwrap_or_default());
    }
    let at = browser.url().unwrap();
    assert!(at.starts_with(&fx.idp.issuer()), "at the IdP: {at}");
    browser.fill("input[name=login]", login).unwrap();
    browser.fill("input[name=password]", "any password: development interactions").unwrap();
    browser.click("button[type=submit]").unwrap();
}

/// Signs `browser` in from scratch, landing on the inbox.
fn sign_in(fx: &Fixture, browser: &Browser, login: &str, email: &str) {
    browser.goto(&fx.url("/console/")).unwrap();
    login_at_idp(fx, browser, login);
    browser.wait_for("#who", WAIT).unwrap();
    assert_eq!(browser.text("#who").unwrap(), email);
}

fn screenshot(browser: &Browser, name: &str) {
    let path = workspace_root().join("docs/img").join(name);
    browser.screenshot(&path).unwrap();
    eprintln!("[e2e_console] screenshot {}", path.display());
}

fn status_of(fx: &Fixture, id: &str) -> String {
    service::status_of(&fx.show(id)).unwrap_or_default().to_string()
}

// ---------------------------------------------------------------------------------------
// Scenarios

fn signed_out_pages_redirect_and_carry_security_headers(fx: &Fixture) {
    let inbox = get(fx, "/console/", None);
    assert_eq!(inbox.status, 303, "{}", inbox.text());
    assert!(inbox.header("location").unwrap().starts_with("/console/login?next="), "{:?}", inbox.headers);
    let csp = inbox.header("content-security-policy").unwrap();
    for directive in ["default-src 'none'", "script-src 'self'", "frame-ancestors 'none'", "form-action 'self'"] {
        assert!(csp.contains(directive), "{csp}");
    }
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert_eq!(inbox.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(inbox.header("x-frame-options"), Some("DENY"));
    let login = get(fx, "/console/login?next=/console/history", None);
    assert_eq!(login.status, 303);
    let to = login.header("location").unwrap();
    assert!(to.starts_with(&format!("{}/auth?", fx.idp.issuer())), "{to}");
    assert!(
        to.contains("code_challenge_method=S256") && to.contains("code_challenge=") && to.contains("nonce="),
        "{to}"
    );
    let cookie = login.header("set-cookie").unwrap();
    assert!(cookie.contains("HttpOnly") && cookie.contains("Secure") && cookie.contains("SameSite=Lax"), "{cookie}");
    // A callback this browser did not start is refused.
    let forged = get(fx, "/console/callback?code=x&state=y", None);
    assert_eq!(forged.status, 400, "{}", forged.text());
    // The static script is a file of our own, the only script the pages load.
    let js = get(fx, "/console/static/console.js", None);
    assert_eq!(js.status, 200);
    assert!(js.header("content-type").unwrap().starts_with("text/javascript"));
}

fn sign_in_at_the_idp_sets_a_strict_session_cookie(fx: &Fixture) {
    sign_in(fx, &fx.bob, "bob", BOB);
    *fx.bob_signed_in.lock().unwrap() = Some(Instant::now());
    let cookies = fx.bob.cookies().unwrap();
    let session = cookies.iter().find(|c| c["name"] == "airlock_console").unwrap_or_else(|| panic!("{cookies:?}"));
    assert_eq!(session["httpOnly"], true, "{session}");
    assert_eq!(session["secure"], true, "{session}");
    assert_eq!(session["sameSite"], "Lax", "{session}");
    assert!(fx.bob.url().unwrap().starts_with(&fx.url("/console/")));
    // A script cannot read it.
    assert_eq!(fx.bob.execute("return document.cookie", json!([])).unwrap(), "");
}

fn pending_approval_appears_without_reload(fx: &Fixture) {
    // The last approved action of this agent and rule: 10 rows.
    let before = create(fx, "exports", "high", ALICE, 10);
    let approved = fx.svc.approve(&before, &fx.carol_key()).unwrap();
    assert_eq!(approved.status, 200, "{}", approved.text());
    fx.remember("previous", &before);
    fx.bob.goto(&fx.url("/console/")).unwrap();
    fx.bob.wait_for("#inbox", WAIT).unwrap();
    fx.bob.execute("window.airlockSamePage = 'yes'; return true", json!([])).unwrap();
    let id = create(fx, "exports", "high", ALICE, 5000);
    fx.remember("exports", &id);
    fx.bob.wait_for(&format!("#row-{id}"), LIVE).unwrap();
    let iam = create(fx, "iam", "critical", ALICE, 1);
    fx.remember("iam", &iam);
    fx.bob.wait_for(&format!("#row-{iam}"), LIVE).unwrap();
    assert_eq!(fx.bob.execute("return window.airlockSamePage", json!([])).unwrap(), "yes", "the page was not reloaded");
    let row = fx.bob.text(&format!("#row-{id}")).unwrap();
    assert!(row.contains("api.e2e.test") && row.contains("high") && row.contains("0/1"), "{row}");
    screenshot(&fx.bob, "console-inbox.png");
}

/// Waits until the Teams card of `id` was posted to the channel; answers the post.
fn wait_card_posted(fx: &Fixture, id: &str) -> airlock_tests::fakes::teams::ConnectorCall {
    let posts = fx.teams.connector.wait_cards("POST", id, DELIVERY, |calls| {
        calls.iter().any(|c| c.status == 201 && c.conversation_id == CHANNEL_CONVERSATION)
    });
    posts
        .into_iter()
        .find(|c| c.status == 201 && c.conversation_id == CHANNEL_CONVERSATION)
        .unwrap_or_else(|| panic!("the card of {id} was not posted to the Teams channel"))
}

fn approval_page_shows_the_action_and_diff_and_approves(fx: &Fixture) {
    let id = fx.id("exports");
    wait_card_posted(fx, &id);
    fx.bob.click(&format!("#row-{id} a")).unwrap();
    fx.bob.wait_for("#decide", WAIT).unwrap();
    assert_eq!(fx.bob.text("#fact-host").unwrap(), "api.e2e.test");
    assert_eq!(fx.bob.text("#fact-method").unwrap(), "POST");
    assert!(fx.bob.text("#fact-body").unwrap().contains("[REDACTED]"));
    assert_eq!(fx.bob.text("#fact-owner").unwrap(), ALICE);
    assert_eq!(fx.bob.text("#fact-digest").unwrap().len(), 64);
    assert_eq!(fx.bob.text("#diff-previous").unwrap(), fx.id("previous"));
    let removed = fx.bob.text("#diff-lines .del").unwrap();
    let added = fx.bob.text("#diff-lines .add").unwrap();
    assert!(removed.contains("\"rows\": 10"), "{removed}");
    assert!(added.contains("\"rows\": 5000"), "{added}");
    assert_eq!(fx.bob.text("#quorum-progress").unwrap(), "0 of 1");
    let notifications = fx.bob.text("#notifications").unwrap();
    assert!(notifications.contains(CHANNEL_CONVERSATION), "where the Teams card went: {notifications}");
    // Tall enough to show the decision, the diff and the quorum in one picture.
    fx.bob.resize(1280, 1300).unwrap();
    screenshot(&fx.bob, "console-approval.png");
    fx.bob.resize(1280, 900).unwrap();
    fx.bob.fill("#comment", "5000 rows: checked with the data owner").unwrap();
    fx.bob.click("#approve").unwrap();
    assert_eq!(fx.bob.wait_text("#status", "approved", WAIT).unwrap(), "approved");
    assert!(fx.bob.find("#decide").unwrap().is_none());
    let shown = fx.show(&id);
    assert_eq!(service::status_of(&shown), Some("approved"), "{shown}");
    let review = &shown["reviews"][0];
    assert_eq!(review["reviewer"], BOB, "{shown}");
    assert_eq!(review["channel"], "console", "{shown}");
    assert_eq!(review["comment"], "5000 rows: checked with the data owner", "{shown}");
    // The Teams card posted for it is brought up to date with the console's decision.
    let updated = |calls: &[airlock_tests::fakes::teams::ConnectorCall]| {
        calls.iter().any(|c| c.status == 200 && c.card_text().contains(&format!("approved by {BOB}")))
    };
    let puts = fx.teams.connector.wait_cards("PUT", &id, DELIVERY, updated);
    assert!(updated(&puts), "the Teams card of {id} shows the console's approval: {puts:#?}");
}

fn owner_sees_why_they_may_not_decide(fx: &Fixture) {
    sign_in(fx, &fx.alice, "alice", ALICE);
    let id = create(fx, "exports", "high", ALICE, 7);
    fx.remember("owned", &id);
    fx.alice.goto(&fx.url(&format!("/console/approvals/{id}"))).unwrap();
    let why = fx.alice.text("#refusal").unwrap();
    assert!(why.contains("your own agent"), "{why}");
    assert!(fx.alice.find("#decide").unwrap().is_none(), "no approve/deny for the owner");
    fx.alice.goto(&fx.url("/console/")).unwrap();
    fx.alice.wait_for("#inbox", WAIT).unwrap();
    assert!(fx.alice.find(&format!("#row-{id}")).unwrap().is_none(), "not in the owner's inbox");
    // The owner can still follow the request among every pending approval.
    fx.alice.click("#toggle").unwrap();
    let row = fx.alice.text(&format!("#row-{id}")).unwrap();
    assert!(row.contains("not yours to decide"), "{row}");
    assert_eq!(status_of(fx, &id), "pending");
}

fn form_post_without_csrf_token_is_refused(fx: &Fixture) {
    let id = fx.id("owned");
    for (how, script) in [
        ("removed", "document.querySelector('#decide input[name=csrf]').remove(); return true"),
        ("forged", "document.querySelector('#decide input[name=csrf]').value = 'forged'; return true"),
    ] {
        fx.bob.goto(&fx.url(&format!("/console/approvals/{id}"))).unwrap();
        fx.bob.wait_for("#decide", WAIT).unwrap();
        fx.bob.execute(script, json!([])).unwrap();
        fx.bob.click("#approve").unwrap();
        let message = fx.bob.text("#message").unwrap();
        assert!(message.contains("security token"), "{how}: {message}");
        let shown = fx.show(&id);
        assert_eq!(service::status_of(&shown), Some("pending"), "{how}: {shown}");
        assert_eq!(shown["reviews"].as_array().map_or(0, Vec::len), 0, "{how}: {shown}");
    }
}

fn critical_approval_demands_a_fresh_sign_in(fx: &Fixture) {
    let id = create(fx, "exports", "critical", ALICE, 1_000_000);
    fx.remember("critical", &id);
    // Outlive the step-up window since bob's sign-in (bounded: STEP_UP + 1 s at most).
    let signed_in = fx.bob_signed_in.lock().unwrap().expect("bob signed in");
    let stale_at = signed_in + STEP_UP + Duration::from_secs(1);
    if let Some(left) = stale_at.checked_duration_since(Instant::now()) {
        std::thread::sleep(left);
    }
    let page = fx.url(&format!("/console/approvals/{id}"));
    // Its Teams card cannot decide: its one button opens this console page.
    let card = wait_card_posted(fx, &id).card();
    let actions = card["actions"].as_array().cloned().unwrap_or_default();
    assert_eq!(actions.len(), 1, "{card}");
    assert_eq!(actions[0]["type"], "Action.OpenUrl", "{card}");
    assert_eq!(actions[0]["url"], page.as_str(), "{card}");
    fx.bob.goto(actions[0]["url"].as_str().unwrap()).unwrap();
    let why = fx.bob.text("#refusal").unwrap();
    assert!(why.contains("critical-risk") && why.contains("Sign in again"), "{why}");
    assert!(fx.bob.find("#decide").unwrap().is_none());
    fx.bob.wait_for("#step-up", WAIT).unwrap();
    // The server refuses the vote too, with a valid CSRF token (a form built by hand).
    let forced = "const f = document.createElement('form'); f.method = 'post'; \
                  f.action = location.pathname + '/decide'; \
                  for (const [k, v] of [['csrf', document.querySelector('.signout input[name=csrf]').value], ['vote', 'approve']]) { \
                    const i = document.createElement('input'); i.type = 'hidden'; i.name = k; i.value = v; f.appendChild(i); } \
                  document.body.appendChild(f); f.submit(); return true";
    fx.bob.execute(forced, json!([])).unwrap();
    let refused = fx.bob.text("#message").unwrap();
    assert!(refused.contains("critical-risk"), "{refused}");
    assert_eq!(status_of(fx, &id), "pending");
    // Sign in again: the IdP asks for the login again (prompt=login), then back here.
    fx.bob.click("#next").unwrap();
    login_at_idp(fx, &fx.bob, "bob");
    fx.bob.wait_for("#decide", WAIT).unwrap();
    *fx.bob_signed_in.lock().unwrap() = Some(Instant::now());
    assert_eq!(fx.bob.url().unwrap(), page);
    fx.bob.click("#approve").unwrap();
    assert_eq!(fx.bob.wait_text("#status", "approved", WAIT).unwrap(), "approved");
    let shown = fx.show(&id);
    assert_eq!(service::status_of(&shown), Some("approved"), "{shown}");
    assert_eq!(shown["reviews"][0]["channel"], "console", "{shown}");
}

fn filters_and_a_phone_width(fx: &Fixture) {
    let iam = fx.id("iam");
    let exports = fx.id("owned");
    fx.bob.goto(&fx.url("/console/?rule=iam")).unwrap();
    fx.bob.wait_for(&format!("#row-{iam}"), WAIT).unwrap();
    assert!(fx.bob.find(&format!("#row-{exports}")).unwrap().is_none(), "filtered out by rule");
    fx.bob.goto(&fx.url("/console/?risk=high&rule=exports")).unwrap();
    fx.bob.wait_for(&format!("#row-{exports}"), WAIT).unwrap();
    assert!(fx.bob.find(&format!("#row-{iam}")).unwrap().is_none(), "filtered out by rule");
    // 360 px wide: nothing scrolls sideways.
    fx.bob.resize(360, 780).unwrap();
    for path in ["/console/".to_string(), format!("/console/approvals/{iam}")] {
        fx.bob.goto(&fx.url(&path)).unwrap();
        fx.bob.wait_for("#who", WAIT).unwrap();
        let fits =
            fx.bob.execute("return document.documentElement.scrollWidth <= window.innerWidth", json!([])).unwrap();
        assert_eq!(fits, true, "{path} is wider than 360 px");
        if path == "/console/" {
            screenshot(&fx.bob, "console-inbox-360.png");
        }
    }
    fx.bob.resize(1280, 900).unwrap();
}

fn history_shows_audit_records_and_exports_evidence(fx: &Fixture) {
    let id = fx.id("exports");
    fx.bob.goto(&fx.url("/console/history")).unwrap();
    let row = fx.bob.text(&format!("#row-{id}")).unwrap();
    assert!(row.contains("approved") && row.contains(BOB), "{row}");
    fx.bob.click(&format!("#row-{id} a")).unwrap();
    let audit = fx.bob.text("#audit").unwrap();
    assert!(audit.contains("approval.created") && audit.contains("console"), "{audit}");
    let cookies = fx.bob.cookies().unwrap();
    let session = cookies.iter().find(|c| c["name"] == "airlock_console").unwrap();
    let cookie = format!("airlock_console={}", session["value"].as_str().unwrap());
    let tar = get(fx, "/console/history/evidence.tar", Some(&cookie));
    assert_eq!(tar.status, 200, "{}", tar.text());
    assert_eq!(tar.header("content-type"), Some("application/x-tar"));
    let body = String::from_utf8_lossy(&tar.body);
    // The refused stale-session vote on the critical approval is evidence too.
    let critical = fx.id("critical");
    for needle in [
        "evidence/records.jsonl",
        "evidence/summary.json",
        "airlock-evidence-v1",
        id.as_str(),
        "step-up-required",
        critical.as_str(),
    ] {
        assert!(body.contains(needle), "the export has {needle}");
    }
    assert_eq!(get(fx, "/console/history/evidence.tar", None).status, 303, "signed out: to the sign-in");
}

fn sign_out_ends_the_session(fx: &Fixture) {
    let cookies = fx.bob.cookies().unwrap();
    let token = cookies.iter().find(|c| c["name"] == "airlock_console").unwrap()["value"].as_str().unwrap().to_string();
    fx.bob.goto(&fx.url("/console/")).unwrap();
    fx.bob.click(".signout button").unwrap();
    assert!(fx.bob.text("#message").unwrap().contains("signed out"));
    // The old token is dead on the server, not only deleted in the browser.
    let after = get(fx, "/console/", Some(&format!("airlock_console={token}")));
    assert_eq!(after.status, 303);
    // Signing in again goes through the IdP (whose own session lets bob straight back)
    // and starts a new session: the old token is never revived.
    fx.bob.goto(&fx.url("/console/")).unwrap();
    fx.bob.wait_for("#who", WAIT).unwrap();
    let cookies = fx.bob.cookies().unwrap();
    let fresh = cookies.iter().find(|c| c["name"] == "airlock_console").unwrap()["value"].as_str().unwrap().to_string();
    assert_ne!(fresh, token);
}
