//! The Airlock demo: real Envoy with the filter and the demo policy in front of a
//! sample upstream, an approval service, and a scripted agent whose calls are allowed,
//! denied, and held for a human.
//!
//! Run with `bash scripts/demo.sh` (which installs Envoy and builds the filter first).
//! `--stay` keeps everything running afterwards so you can send your own requests.
//!
//! The approval service is the REAL one (`airlock serve`, built by
//! `cargo build -p airlock-approval-svc`), started with the same helper the end-to-end
//! tests use (`tests/src/e2e/service.rs`), its SQLite database and audit trail in
//! `target/airlock-demo/`. The reviewer approves with the `airlock` CLI: the demo prints
//! the command line and runs it, then verifies the audit trail with `airlock audit verify`.
//!
//! The service also runs its Microsoft Teams channel (`[teams]`), pointed at LOCAL
//! STAND-INS for Microsoft's services (`airlock_tests::fakes::teams`: the Bot Framework
//! token issuer and its keys, the Entra token endpoint, the Bot Connector), because a demo
//! machine has no internet and no bot registration. The evaluator sees the Adaptive Card
//! the service posts for a pending export, a second export approved by a verified Teams
//! click (the agent's owner clicking is refused first), every copy of the card updated,
//! and the agent's retry succeeding with the minted credential.
//!
//! The reviewers' web console is on too (`[oidc]` + `[console]`), signing in at a real
//! OpenID Connect provider on 127.0.0.1 (npm `oidc-provider`, `tests/oidc/`): headless
//! Chromium signs bob in and finds the pending export in his inbox (a screenshot lands
//! in `target/airlock-demo/`); with `--stay` the evaluator can sign in as well.

use airlock_tests::e2e::browser::{Browser, Chromedriver};
use airlock_tests::e2e::client::{Request, Response};
use airlock_tests::e2e::gateway::{filter_module, test_vars, Gateway};
use airlock_tests::e2e::oidc_provider::{OidcProvider, OidcUser};
use airlock_tests::e2e::plugin::{plugin_config, PluginOptions, IDENTITY_HEADER};
use airlock_tests::e2e::ports::free_port;
use airlock_tests::e2e::service::{self, AirlockService, Reviewer, ServiceOptions};
use airlock_tests::e2e::upstream::RecordingUpstream;
use airlock_tests::fakes::teams::{self as teams, TeamsFakes, TeamsUser, TokenSpec, CHANNEL_CONVERSATION};
use anyhow::Context;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const AGENT: &str = "spiffe://corp/agent/report-bot";
const REVIEWER: &str = "bob@corp.example";
/// The agent's owner (also a data owner, so only separation of duties stops her).
const OWNER: &str = "alice@corp.example";
/// Entra object ids of bob and alice: how Teams names them in a click (`aadObjectId`); the
/// reviewer directory lists them as aliases.
const BOB_OID: &str = "00000000-0000-0000-0000-0000000000b0";
const ALICE_OID: &str = "00000000-0000-0000-0000-0000000000a1";
/// How long the service's outbox may take to post or update a card (it polls every
/// 200 ms; retries start at 0.5 s).
const DELIVERY: Duration = Duration::from_secs(10);

struct Timeline {
    start: Instant,
}

impl Timeline {
    fn say(&self, who: &str, what: &str) {
        let t = self.start.elapsed().as_secs_f64();
        println!("[{t:6.2}s] {who:<9} {what}");
    }

    fn answer(&self, r: &Response) {
        let detail = match r.json() {
            Ok(v) if v.get("type").is_some() => format!(
                "{} {} — {}{}",
                r.status,
                v["type"].as_str().unwrap_or(""),
                v["detail"].as_str().unwrap_or(""),
                v["approval_id"].as_str().map(|a| format!(" [approval {a}]")).unwrap_or_default(),
            ),
            _ => format!("{} from the upstream: {}", r.status, r.text().chars().take(100).collect::<String>()),
        };
        self.say("gateway", &detail);
    }

    /// Says whether `r` was answered on `expected` or opened a new approval, and `why` a
    /// new one was needed: the gateway's answer alone reads the same either way.
    fn which_approval(&self, r: &Response, expected: &str, why: &str) {
        let id = r.json().ok().and_then(|v| v["approval_id"].as_str().map(str::to_string));
        match id.as_deref() {
            Some(id) if id == expected => self.say("service", &format!("still approval {id}")),
            Some(id) => self.say("service", &format!("opened a NEW approval {id}, not {expected}: {why}")),
            None => {}
        }
    }
}

/// The web console's OIDC client (registered at the local provider).
const CONSOLE_CLIENT: &str = "airlock-console";
const CONSOLE_SECRET: &str = "demo-console-client-secret-0123456789";
const CONSOLE_SECRET_ENV: &str = "AIRLOCK_DEMO_CONSOLE_SECRET";
/// How long the headless browser waits for a page.
const PAGE_WAIT: Duration = Duration::from_secs(20);

/// The reviewers' web console: a real OpenID Connect provider on 127.0.0.1 (npm
/// `oidc-provider`, installed by scripts/setup.sh) that the service's `[oidc]` and
/// `[console]` point at.
struct ConsoleSide {
    port: u16,
    idp: Option<OidcProvider>,
}

impl ConsoleSide {
    fn new() -> anyhow::Result<ConsoleSide> {
        Ok(ConsoleSide { port: free_port()?, idp: None })
    }

    fn issuer(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The service's `[oidc]` and `[console]` (its own port is `${PORT}`).
    fn toml(&self) -> String {
        let issuer = self.issuer();
        format!(
            "[oidc]\nissuer = \"{issuer}\"\naudience = \"airlock-api\"\njwks_url = \"{issuer}/jwks\"\n\n\
             [console]\npublic_url = \"http://127.0.0.1:${{PORT}}\"\nclient_id = \"{CONSOLE_CLIENT}\"\n\
             client_secret_env = \"{CONSOLE_SECRET_ENV}\"\nscopes = [\"openid\", \"email\", \"groups\"]\n"
        )
    }

    /// Starts the provider once the service's callback URL is known.
    fn start(&mut self, service: &AirlockService) -> anyhow::Result<()> {
        let users = [
            OidcUser { login: "bob".into(), email: REVIEWER.into(), groups: vec!["data-owners".into()] },
            OidcUser { login: "alice".into(), email: OWNER.into(), groups: vec!["data-owners".into()] },
        ];
        let redirect = format!("{}/console/callback", service.url());
        self.idp = Some(OidcProvider::start(self.port, CONSOLE_CLIENT, CONSOLE_SECRET, &redirect, &users)?);
        Ok(())
    }

    /// Bob signs in with headless Chromium and finds approval `id` in his inbox; answers
    /// the row's text and where the screenshot went.
    fn show_inbox(&self, service: &AirlockService, id: &str) -> anyhow::Result<(String, std::path::PathBuf)> {
        let driver = Chromedriver::start()?;
        let browser: Browser = driver.browser(1280, 800)?;
        browser.goto(&format!("{}/console/", service.url()))?;
        browser.wait_for("input[name=login]", PAGE_WAIT).context("the provider's login page")?;
        browser.fill("input[name=login]", "bob")?;
        browser.fill("input[name=password]", "any password: development interactions")?;
        browser.click("button[type=submit]")?;
        let row = format!("#row-{id}");
        browser.wait_for(&row, PAGE_WAIT).context("the approval in bob's inbox")?;
        let text = browser.text(&format!("{row} .action"))?;
        let shot = service.state_dir().join("console-inbox.png");
        browser.screenshot(&shot)?;
        Ok((text.lines().next().unwrap_or_default().to_string(), shot))
    }
}

fn demo_plugin() -> anyhow::Result<serde_json::Value> {
    let root = airlock_tests::wasm::workspace_root().join("policies/demo");
    let rego = std::fs::read_to_string(root.join("airlock.rego")).context("reading policies/demo/airlock.rego")?;
    let data: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(root.join("data.json"))?)?;
    let mut cfg = plugin_config(&PluginOptions { policy: rego, ..PluginOptions::default() });
    cfg["policy"]["data"] = data;
    cfg["policy"]["revision"] = json!("demo-1");
    cfg["identity"]["agents"] = json!({AGENT: {"owner": "alice@corp.example", "acts_for": []}});
    cfg["decision_log"]["flush_ms"] = json!(500);
    Ok(cfg)
}

fn agent_call(method: &str, host: &str, path: &str, body: Option<serde_json::Value>) -> Request {
    let r = match body {
        Some(b) => {
            Request::new(method, path).header("content-type", "application/json").body(b.to_string().into_bytes())
        }
        None => Request::new(method, path),
    };
    r.header("host", host).header(IDENTITY_HEADER, AGENT).header("authorization", "Bearer agent-own-token")
}

/// The Teams side of the demo: the local stand-ins and the two people who click.
struct TeamsSide {
    fakes: TeamsFakes,
    bob: TeamsUser,
    alice: TeamsUser,
}

impl TeamsSide {
    fn start() -> anyhow::Result<TeamsSide> {
        let fakes = TeamsFakes::start(3600).context("starting the local Teams stand-ins")?;
        let (bob, alice) = (TeamsUser::new("29:bob", BOB_OID, REVIEWER), TeamsUser::new("29:alice", ALICE_OID, OWNER));
        // The Bot Connector answers member-profile lookups for them (the service confirms
        // every clicker's tenant and object id there before it counts a click).
        for user in [&bob, &alice] {
            fakes.connector.set_member(&user.id, user.profile());
        }
        Ok(TeamsSide { fakes, bob, alice })
    }

    /// Waits (bounded) for the service to post `id`'s card; answers the posted card.
    fn posted_card(&self, id: &str) -> anyhow::Result<Value> {
        let posts = self.fakes.connector.wait_cards("POST", id, DELIVERY, |c| c.iter().any(|p| p.status == 201));
        let post = posts.iter().find(|p| p.status == 201).with_context(|| {
            format!("the service posted no Teams card for {id} within {DELIVERY:?} (connector saw {posts:?})")
        })?;
        Ok(post.card())
    }

    /// Waits (bounded) for an update of `id`'s card whose status line contains `needle`;
    /// answers that status line.
    fn updated_status(&self, id: &str, needle: &str) -> anyhow::Result<String> {
        let has = |c: &teams::ConnectorCall| c.status == 200 && status_line(&c.card()).contains(needle);
        let puts = self.fakes.connector.wait_cards("PUT", id, DELIVERY, |c| c.iter().any(has));
        let put = puts.iter().find(|c| has(c)).with_context(|| {
            format!("no Teams card update of {id} saying {needle:?} within {DELIVERY:?} (connector saw {puts:?})")
        })?;
        Ok(status_line(&put.card()))
    }

    /// A click on `verb` by `user`, sent to the service's messaging endpoint the way Teams
    /// sends it: an `adaptiveCard/action` invoke with a Bot Framework JWT, here signed by the
    /// local stand-in issuer. Answers the activity id and the invoke response.
    fn click(&self, svc: &AirlockService, user: &TeamsUser, id: &str, verb: &str) -> anyhow::Result<(String, Value)> {
        let service_url = self.fakes.connector.service_url();
        let activity = teams::invoke(&service_url, user, id, verb, None);
        let token = teams::mint(&TokenSpec::valid(&service_url))?;
        let resp = Request::new("POST", "/teams/messages")
            .header("host", &format!("127.0.0.1:{}", svc.port()))
            .header("content-type", "application/json")
            .header("authorization", &format!("Bearer {token}"))
            .timeout(Duration::from_secs(15))
            .body(activity.to_string().into_bytes())
            .send(svc.addr())?;
        if resp.status != 200 {
            anyhow::bail!("POST /teams/messages answered {}: {}", resp.status, resp.text());
        }
        Ok((activity["id"].as_str().unwrap_or_default().to_string(), resp.json()?))
    }
}

/// The card's status line (`Status: pending (0/1 approvals)`, `Status: approved by …`).
fn status_line(card: &Value) -> String {
    card["body"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|b| b["text"].as_str())
        .find(|t| t.starts_with("Status:"))
        .unwrap_or("Status: ?")
        .to_string()
}

/// A short summary of an Adaptive Card: title, status, reason, risk, agent/owner, the
/// redacted body and the buttons.
fn card_summary(card: &Value) -> Vec<String> {
    let blocks: Vec<&Value> = card["body"].as_array().map(|b| b.iter().collect()).unwrap_or_default();
    let fact = |title: &str| {
        blocks
            .iter()
            .filter_map(|b| b["facts"].as_array())
            .flatten()
            .find(|f| f["title"] == title)
            .and_then(|f| f["value"].as_str())
            .unwrap_or("?")
            .to_string()
    };
    let body = blocks
        .iter()
        .filter_map(|b| b["inlines"].as_array())
        .flatten()
        .find_map(|i| i["text"].as_str())
        .map(|t| serde_json::from_str::<Value>(t).map_or_else(|_| t.to_string(), |v| v.to_string()))
        .unwrap_or_else(|| "(none)".into());
    let buttons: Vec<String> = card["actions"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|a| {
            format!(
                "[{}] ({} verb {})",
                a["title"].as_str().unwrap_or("?"),
                a["type"].as_str().unwrap_or("?"),
                a["verb"].as_str().unwrap_or("?")
            )
        })
        .collect();
    vec![
        blocks.first().and_then(|b| b["text"].as_str()).unwrap_or("?").to_string(),
        status_line(card),
        format!("reason \"{}\", risk {}", fact("Reason"), fact("Risk")),
        format!("agent {}, owner {}", fact("Agent"), fact("Owner")),
        format!("request body (redacted by the gateway): {body}"),
        format!("buttons: {}", if buttons.is_empty() { "none".to_string() } else { buttons.join("  ") }),
    ]
}

/// The first value under key `key` anywhere in `v` (audit records nest their event).
fn find_key<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    match v {
        Value::Object(o) => o.get(key).or_else(|| o.values().find_map(|x| find_key(x, key))),
        Value::Array(a) => a.iter().find_map(|x| find_key(x, key)),
        _ => None,
    }
}

/// `sub`, `aud`, approvers and lifetime of the minted credential on an upstream request
/// (its signature checked with the credential profile's secret, as the upstream would).
fn credential_summary(authorization: Option<&str>) -> String {
    let Some(token) = authorization.and_then(|a| a.strip_prefix("Bearer ")) else {
        return format!("authorization `{}`", authorization.unwrap_or("none"));
    };
    match service::verify_jwt_hs256(token, &service::credential_keys()) {
        Ok(c) => format!(
            "a minted JWT (HS256, signature verified): sub {}, aud {}, approved by {}, valid {}s",
            c["sub"].as_str().unwrap_or("?"),
            c["aud"],
            c["act"]["approvers"],
            c["exp"].as_i64().unwrap_or(0) - c["iat"].as_i64().unwrap_or(0)
        ),
        Err(e) => format!("a credential that does not verify: {e:#}"),
    }
}

/// The `[teams]` section for a real bot registration (docs/channels/teams.md).
const TEAMS_SNIPPET: &str = r#"  [teams]
  app_id = "<Entra application (client) id of the bot>"
  tenant_id = "<your directory (tenant) id>"
  secret_env = "AIRLOCK_TEAMS_APP_PASSWORD"   # the app's client secret, never in the file
  # Azure Bot resource → messaging endpoint: https://<airlock host>/teams/messages
  # conversations are learnt when the app is installed in a team or chat; or list them:
  # conversations = [{ service_url = "https://smba.trafficmanager.net/emea/", conversation_id = "19:…@thread.tacv2" }]"#;

fn main() -> anyhow::Result<()> {
    let stay = std::env::args().any(|a| a == "--stay");
    let tl = Timeline { start: Instant::now() };
    println!("Airlock demo — agent calls through Envoy, decided by Rego in the gateway\n");

    let upstream = RecordingUpstream::http("sample-upstream")?;
    let teams = TeamsSide::start()?;
    let mut console = ConsoleSide::new()?;
    let mut extra_env = teams.fakes.env();
    extra_env.push((CONSOLE_SECRET_ENV.into(), CONSOLE_SECRET.into()));
    let state = airlock_tests::wasm::workspace_root().join("target").join("airlock-demo");
    let mut service = AirlockService::start(
        "demo",
        &ServiceOptions {
            reviewers: vec![
                Reviewer::new(REVIEWER, &["data-owners"]).alias(BOB_OID),
                Reviewer::new(OWNER, &["data-owners"]).alias(ALICE_OID),
            ],
            credentials: vec!["export-api".into()],
            state_dir: Some(state),
            // `[teams]` pointing at the local stand-ins, and the bot's (fake) client secret;
            // `[oidc]` and `[console]` pointing at the local OpenID Connect provider.
            extra_toml: format!("{}\n{}", teams.fakes.toml(), console.toml()),
            extra_env,
            ..ServiceOptions::default()
        },
    )?;
    let reviewer_key = service.reviewer(REVIEWER)?.api_key.clone();
    console.start(&service)?;
    let wasm = filter_module()?;
    let mut vars = test_vars(&wasm, &demo_plugin()?);
    vars.insert("AIRLOCK_UPSTREAM_PORT".into(), upstream.port().to_string());
    vars.insert("AIRLOCK_APPROVAL_PORT".into(), service.port().to_string());
    let started = Instant::now();
    let gw = Gateway::start("demo", "demo.yaml", &vars)?;
    tl.say(
        "setup",
        &format!(
            "Envoy ready in {:.1}s: agents → http://{}  (admin http://{}), policy policies/demo",
            started.elapsed().as_secs_f64(),
            gw.addr,
            gw.envoy.admin()
        ),
    );
    tl.say(
        "setup",
        &format!(
            "sample upstream on 127.0.0.1:{}, approval service `airlock serve` on {} (database {})",
            upstream.port(),
            service.url(),
            service.database().display()
        ),
    );
    tl.say(
        "setup",
        &format!(
            "Microsoft Teams is played by LOCAL STAND-INS for Microsoft's services (this machine has no \
             internet):\n           Bot Framework token issuer {}, Entra token endpoint {}, Bot Connector {};\n           \
             the service's [teams] points at them and posts cards to conversation {CHANNEL_CONVERSATION}",
            teams.fakes.botframework.metadata_url(),
            teams.fakes.entra.token_url(),
            teams.fakes.connector.service_url()
        ),
    );
    tl.say(
        "setup",
        &format!(
            "reviewers' web console {}/console/ signs in at a real OpenID Connect provider on {} \
             (npm oidc-provider; users bob and alice, any password)",
            service.url(),
            console.issuer()
        ),
    );
    println!();

    tl.say("agent", "GET https://api.example.com/v1/reports  (read-only)");
    tl.answer(&gw.send(&agent_call("GET", "api.example.com", "/v1/reports", None))?);

    tl.say("agent", "DELETE https://api.example.com/v1/users/42");
    tl.answer(&gw.send(&agent_call("DELETE", "api.example.com", "/v1/users/42", None))?);

    tl.say("agent", "GET https://pastebin.example.net/upload  (host not on the allow-list)");
    tl.answer(&gw.send(&agent_call("GET", "pastebin.example.net", "/upload", None))?);

    tl.say("agent", "GET https://api.example.com/v1/reports%2F..%2Fadmin  (encoded-slash path trick)");
    tl.answer(&gw.send(&agent_call("GET", "api.example.com", "/v1/reports%2F..%2Fadmin", None))?);

    let export = json!({"table": "customers", "format": "csv",
                        "destination": {"bucket": "s3://partner-drop", "credentials": "AKIA-SECRET"}});
    tl.say("agent", "POST https://api.example.com/v1/exports  (bulk export to a partner bucket)");
    let first = gw.send(&agent_call("POST", "api.example.com", "/v1/exports", Some(export.clone())))?;
    tl.answer(&first);
    let approval_id = first.json()?["approval_id"].as_str().unwrap_or_default().to_string();
    match service.show(&approval_id, &reviewer_key) {
        Ok(a) => {
            let field = |k: &str| {
                a.get(k).or_else(|| a.get("request").and_then(|r| r.get(k))).cloned().unwrap_or(serde_json::Value::Null)
            };
            let text = |v: serde_json::Value| match v {
                serde_json::Value::String(s) => s,
                serde_json::Value::Null => "?".into(),
                other => other.to_string(),
            };
            let agent = match field("agent") {
                serde_json::Value::Object(o) => o.get("id").cloned().unwrap_or_default(),
                other => other,
            };
            tl.say(
                "reviewer",
                &format!(
                    "sees: {} {}{} by {} (owner {}), risk {}, reason \"{}\", body {}",
                    text(field("method")),
                    text(field("host")),
                    text(field("path")),
                    text(agent),
                    text(field("owner")),
                    text(field("risk")),
                    text(field("reason")),
                    field("body")
                ),
            );
        }
        Err(e) => tl.say("reviewer", &format!("could not show {approval_id}: {e:#}")),
    }

    let card = teams.posted_card(&approval_id)?;
    tl.say("teams", &format!("the service posted an Adaptive Card for {approval_id} to {CHANNEL_CONVERSATION}:"));
    for line in card_summary(&card) {
        println!("           | {line}");
    }

    match console.show_inbox(&service, &approval_id) {
        Ok((row, shot)) => tl.say(
            "console",
            &format!(
                "bob signs in (headless Chromium, OIDC code flow with PKCE) and finds it in his inbox: \
                 \"{row}\"\n           at {}/console/approvals/{approval_id} (screenshot {})",
                service.url(),
                shot.display()
            ),
        ),
        Err(e) => tl.say("console", &format!("could not show the console in a headless browser: {e:#}")),
    }

    tl.say("agent", "retries the identical request before anyone decided");
    tl.answer(&gw.send(&agent_call("POST", "api.example.com", "/v1/exports", Some(export.clone())))?);
    let pending = service.list(Some("pending"), &reviewer_key)?.len();
    tl.say("service", &format!("{pending} pending approval on record (an identical retry finds the same one)"));

    let key_file = service.state_dir().join("bob.api-key");
    std::fs::write(&key_file, &reviewer_key)?;
    tl.say("reviewer", &format!("approves {approval_id} with the CLI (or in Teams, Slack, the API):"));
    println!(
        "           $ AIRLOCK_URL={} AIRLOCK_API_KEY=\"$(cat {})\" \\\n               {} approvals approve {approval_id} --comment \"partner drop agreed\"",
        service.url(),
        key_file.display(),
        service.binary().display()
    );
    let out = service
        .cli(&["approvals", "approve", &approval_id, "--comment", "partner drop agreed"], Some(&reviewer_key))?;
    match serde_json::from_str::<serde_json::Value>(&out.stdout) {
        Ok(v) => println!(
            "           | exit {}: approval {} is now {} (reviews: {})",
            out.code.map_or_else(|| "killed".to_string(), |c| c.to_string()),
            service::approval_id_of(&v).unwrap_or("?"),
            service::status_of(&v).unwrap_or("?"),
            v["reviews"]
        ),
        Err(_) => {
            for line in out.text().lines() {
                println!("           | {line}");
            }
        }
    }
    if !out.success() {
        anyhow::bail!("the reviewer's CLI approve failed: {out}");
    }
    let status = teams.updated_status(&approval_id, "approved by")?;
    tl.say("teams", &format!("the posted card was updated in place: \"{status}\", buttons removed"));

    tl.say("agent", &format!("sends a different body (a bigger export), hoping {approval_id} covers it"));
    let mut bigger = export.clone();
    bigger["table"] = json!("customers_full_history");
    let resp = gw.send(&agent_call("POST", "api.example.com", "/v1/exports", Some(bigger)))?;
    tl.answer(&resp);
    tl.which_approval(
        &resp,
        &approval_id,
        "the body is part of the action digest, so what was approved does not cover a different export",
    );

    tl.say("agent", "retries the identical request");
    tl.answer(&gw.send(&agent_call("POST", "api.example.com", "/v1/exports", Some(export.clone())))?);
    if let Some(last) = upstream.requests().last() {
        tl.say(
            "upstream",
            &format!(
                "received {} {} with authorization `{}` (the agent's own token was stripped)",
                last.method,
                last.path,
                last.header("authorization").unwrap_or("none")
            ),
        );
    }

    tl.say("agent", "replays the same request once more");
    let resp = gw.send(&agent_call("POST", "api.example.com", "/v1/exports", Some(export)))?;
    tl.answer(&resp);
    tl.which_approval(
        &resp,
        &approval_id,
        "the policy says reuse \"once\" and the retry above spent it, so the same action needs a human again",
    );

    // The second action is decided in Teams.
    println!();
    let report = json!({"report": "revenue-2026-10", "format": "pdf",
                        "destination": {"bucket": "s3://finance-share", "credentials": "AKIA-OTHER-SECRET"}});
    let report_call = || agent_call("POST", "api.example.com", "/v1/reports/export", Some(report.clone()));
    tl.say("agent", "POST https://api.example.com/v1/reports/export  (monthly revenue report to the finance share)");
    let first = gw.send(&report_call())?;
    tl.answer(&first);
    let report_id = first.json()?["approval_id"].as_str().unwrap_or_default().to_string();
    let card = teams.posted_card(&report_id)?;
    let summary = card_summary(&card);
    tl.say("teams", &format!("card posted for {report_id}: {} — {}", summary[0], summary[1]));
    println!("           | {}", summary[4]);

    let (_, answer) = teams.click(&service, &teams.alice, &report_id, "approve")?;
    let after = service.show(&report_id, &reviewer_key)?;
    if answer["type"] != "application/vnd.microsoft.activity.message" || service::status_of(&after) != Some("pending") {
        anyhow::bail!("the owner's click was not refused: {answer}; the approval: {after}");
    }
    tl.say(
        "teams",
        &format!(
            "{OWNER} (the agent's owner) clicks Approve → refused, still pending: \"{}\"",
            answer["value"].as_str().unwrap_or("?")
        ),
    );

    let (activity_id, answer) = teams.click(&service, &teams.bob, &report_id, "approve")?;
    tl.say(
        "teams",
        &format!(
            "{REVIEWER} clicks Approve → POST /teams/messages, invoke adaptiveCard/action {activity_id}, \
             Bot Framework JWT (RS256, kid test-key-1) from the local stand-in issuer"
        ),
    );
    if answer["type"] != "application/vnd.microsoft.card.adaptive" {
        anyhow::bail!("the reviewer's Teams click was not counted: {answer}");
    }
    tl.say(
        "service",
        &format!(
            "verified the token (signature, iss, aud, serviceurl, endorsement), the tenant and bob's Teams \
             profile; answered the refreshed card: \"{}\"",
            status_line(&answer["value"])
        ),
    );
    let status = teams.updated_status(&report_id, "approved by")?;
    tl.say("teams", &format!("the posted card was updated: \"{status}\""));

    tl.say("agent", "retries the identical report export");
    let resp = gw.send(&report_call())?;
    tl.answer(&resp);
    if !resp.is_success() {
        anyhow::bail!("the retry after the Teams approval was refused: {} {}", resp.status, resp.text());
    }
    if let Some(last) = upstream.requests().last() {
        tl.say(
            "upstream",
            &format!(
                "received {} {} with {}",
                last.method,
                last.path,
                credential_summary(last.header("authorization"))
            ),
        );
    }

    std::thread::sleep(Duration::from_millis(1200));
    let records = service.audit_export()?;
    let decisions: Vec<&serde_json::Value> =
        records.iter().filter(|r| service::kind_of(r) == Some("decision")).collect();
    tl.say(
        "service",
        &format!("{} allow/deny decisions shipped in batches by the gateway, in the audit trail:", decisions.len()),
    );
    for r in &decisions {
        let e = r.get("event").unwrap_or(r);
        let e = e.get("record").unwrap_or(e);
        println!(
            "           {:<6} {:<14} {} {}{}",
            e["enforced"].as_str().or(e["effect"].as_str()).unwrap_or(""),
            e["rule"].as_str().unwrap_or(""),
            e["method"].as_str().unwrap_or(""),
            e["host"].as_str().unwrap_or(""),
            e["path"].as_str().unwrap_or("")
        );
    }
    let mut kinds: std::collections::BTreeMap<String, usize> = std::collections::BTreeMap::new();
    for r in &records {
        if let Some(k) = service::kind_of(r) {
            *kinds.entry(k.to_string()).or_default() += 1;
        }
    }
    tl.say("service", &format!("audit records by kind: {kinds:?}"));
    if let Some(review) = records.iter().find(|r| {
        service::kind_of(r) == Some("review") && find_key(r, "channel").and_then(Value::as_str) == Some("teams")
    }) {
        let ev = find_key(review, "evidence").cloned().unwrap_or(Value::Null);
        tl.say(
            "service",
            &format!(
                "the Teams review's evidence: activity {}, kid {}, tenant {}, body sha256 {}",
                ev["activity_id"].as_str().unwrap_or("?"),
                ev["kid"].as_str().unwrap_or("?"),
                ev["tenant"].as_str().unwrap_or("?"),
                ev["body_sha256"].as_str().unwrap_or("?")
            ),
        );
    }
    let stats = gw.envoy.stats("wasmcustom")?;
    println!();
    tl.say("gateway", "Envoy stats:");
    for (k, v) in stats.iter().filter(|(_, v)| **v > 0) {
        println!("           {k} = {v}");
    }
    println!("\nEnvoy log: {}", gw.envoy.log_path().display());
    println!("Upstream saw {} request(s); nothing denied or pending ever reached it.", upstream.requests().len());

    if !stay {
        // A clean shutdown seals the chain head with a final checkpoint.
        service.stop()?;
    }
    let evidence = service.state_dir().join("evidence");
    let _ = std::fs::remove_dir_all(&evidence);
    let db = service.database().display().to_string();
    let ev = evidence.display().to_string();
    let export = service.cli(&["audit", "export", "--database", &db, "--out", &ev], None)?;
    println!("\nAudit trail: {db}");
    println!("Evidence bundle: {ev}/ ({})", if export.success() { "written" } else { "export failed" });
    println!("$ AIRLOCK_AUDIT_KEY=... {} audit verify --database {db}", service.binary().display());
    let verify = service.audit_verify()?;
    for line in verify.text().lines() {
        println!("  | {line}");
    }
    if !verify.success() {
        anyhow::bail!("audit verify failed: {verify}");
    }
    println!("Service logs: {} and {}", service.log_paths().0.display(), service.log_paths().1.display());

    println!(
        "\nReviewer channels, for real: docs/channels/teams.md (Teams bot registration, the checks on every click), \
         docs/channels/slack.md, docs/channels/webhook.md. Here Teams was played by local stand-ins; \
         against Microsoft, `airlock.toml` needs only:\n{TEAMS_SNIPPET}"
    );

    if stay {
        println!("\nStill running (Ctrl-C to stop). Try:\n  curl -s -H 'host: api.example.com' -H '{IDENTITY_HEADER}: {AGENT}' http://{}/v1/reports", gw.addr);
        println!("  the reviewers' console: {}/console/ (sign in as bob or alice, any password)", service.url());
        loop {
            std::thread::sleep(Duration::from_secs(3600));
        }
    }
    Ok(())
}
