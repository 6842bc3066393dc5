//! Local fakes of what a Teams bot talks to, on 127.0.0.1:
//!
//! - [`FakeBotFramework`]: the Bot Framework's token issuer — OpenID metadata and a JWKS
//!   of the test RSA keys (with `endorsements`), and [`mint`] for tokens with chosen
//!   claims, key id and algorithm (RS256, HS256, `none`).
//! - [`FakeEntra`]: the Entra token endpoint (client credentials), counting grants.
//! - [`FakeConnector`]: the Bot Connector — records posted and updated activities, serves
//!   member profiles, creates 1:1 conversations (`POST /v3/conversations`, as in the Bot
//!   Framework's proactive messaging: the bot, one member, the tenant), and can be told
//!   to fail the next posts/updates (403 `BotNotInConversationRoster`, 500, ...).
//!
//! Plus the activities Teams sends ([`invoke`], [`submit`], [`conversation_update`]) and
//! [`TeamsFakes`], all three together with the `[teams]` section that points the service
//! at them.
//!
//! The keys are TEST-ONLY fixtures from `approval-svc/tests/fixtures/` (PKCS#8 copies of
//! `oidc-test-key*.pem`, see `TEAMS-FIXTURES.md` there).

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context};
use base64::Engine as _;
use hmac::{Hmac, Mac};
use rcgen::SigningKey as _;
use serde_json::{json, Value};
use sha2::Sha256;

use crate::e2e::server::{Handler, Received, Reply, Server};
use crate::wasm::workspace_root;

/// The issuer of Bot Framework tokens.
pub const ISSUER: &str = "https://api.botframework.com";
/// The bot's app id in tests.
pub const APP_ID: &str = "00000000-0000-0000-0000-00000000b075";
/// The bot's client secret in tests (never a real one).
pub const APP_PASSWORD: &str = "e2e-teams-client-secret";
/// Environment variable carrying [`APP_PASSWORD`] to the service.
pub const APP_PASSWORD_ENV: &str = "AIRLOCK_E2E_TEAMS_SECRET";
/// The tenant of the bot and its reviewers.
pub const TENANT: &str = "11111111-2222-3333-4444-555555555555";
/// Another tenant.
pub const FOREIGN_TENANT: &str = "99999999-8888-7777-6666-555555555555";
/// The channel conversation configured statically.
pub const CHANNEL_CONVERSATION: &str = "19:approvals@thread.tacv2";

/// A test signing key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TestKey {
    /// `test-key-1` (`oidc-test-key.pem`).
    One,
    /// `test-key-2` (`oidc-test-key-2.pem`).
    Two,
}

impl TestKey {
    /// Its `kid`.
    pub fn kid(self) -> &'static str {
        match self {
            TestKey::One => "test-key-1",
            TestKey::Two => "test-key-2",
        }
    }

    fn fixture(name: &str) -> anyhow::Result<String> {
        let path = workspace_root().join("approval-svc/tests/fixtures").join(name);
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))
    }

    /// The PKCS#8 private key PEM.
    pub fn private_pem(self) -> anyhow::Result<String> {
        TestKey::fixture(match self {
            TestKey::One => "oidc-test-key.pkcs8.pem",
            TestKey::Two => "oidc-test-key-2.pkcs8.pem",
        })
    }

    /// The public JWK, endorsed for `endorsements`.
    pub fn jwk(self, endorsements: &[&str]) -> anyhow::Result<Value> {
        let mut jwk: Value = serde_json::from_str(&TestKey::fixture(match self {
            TestKey::One => "oidc-test-jwk-1.json",
            TestKey::Two => "oidc-test-jwk-2.json",
        })?)?;
        jwk["endorsements"] = json!(endorsements);
        Ok(jwk)
    }
}

/// How a token is signed.
#[derive(Clone, Debug)]
pub enum Signing {
    /// RS256 with a test key.
    Rs256(TestKey),
    /// HS256 keyed with these bytes (algorithm confusion: the public key's bytes).
    Hs256(Vec<u8>),
    /// `alg: none`, empty signature.
    None,
}

/// A token to mint.
#[derive(Clone, Debug)]
pub struct TokenSpec {
    /// Header `kid` (`None`: no kid).
    pub kid: Option<String>,
    /// How it is signed.
    pub signing: Signing,
    /// The claims.
    pub claims: Value,
}

impl TokenSpec {
    /// A valid token for an activity from `service_url`: key 1, `iss`, `aud` = [`APP_ID`],
    /// `nbf` a minute ago, `exp` in ten minutes, `serviceurl`.
    pub fn valid(service_url: &str) -> TokenSpec {
        let now = crate::e2e::service::unix_now();
        TokenSpec {
            kid: Some(TestKey::One.kid().into()),
            signing: Signing::Rs256(TestKey::One),
            claims: json!({"iss": ISSUER, "aud": APP_ID, "nbf": now - 60, "exp": now + 600,
                           "serviceurl": service_url, "appid": "d6d49420-f39b-4df7-a1dc-d59a935871db"}),
        }
    }

    /// With claim `name` set to `value`.
    pub fn claim(mut self, name: &str, value: Value) -> TokenSpec {
        self.claims[name] = value;
        self
    }

    /// Signed with `key`, naming `kid`.
    pub fn signed(mut self, signing: Signing, kid: Option<&str>) -> TokenSpec {
        self.signing = signing;
        self.kid = kid.map(str::to_string);
        self
    }
}

/// The compact JWS of `spec`.
pub fn mint(spec: &TokenSpec) -> anyhow::Result<String> {
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let alg = match spec.signing {
        Signing::Rs256(_) => "RS256",
        Signing::Hs256(_) => "HS256",
        Signing::None => "none",
    };
    let mut header = json!({"alg": alg, "typ": "JWT"});
    if let Some(kid) = &spec.kid {
        header["kid"] = json!(kid);
    }
    let signing_input = format!("{}.{}", b64.encode(header.to_string()), b64.encode(spec.claims.to_string()));
    let signature = match &spec.signing {
        Signing::Rs256(key) => {
            let pair = rcgen::KeyPair::from_pkcs8_pem_and_sign_algo(&key.private_pem()?, &rcgen::PKCS_RSA_SHA256)
                .map_err(|e| anyhow!("test key: {e}"))?;
            pair.sign(signing_input.as_bytes()).map_err(|e| anyhow!("signing: {e}"))?
        }
        Signing::Hs256(secret) => {
            let mut mac = Hmac::<Sha256>::new_from_slice(secret).map_err(|e| anyhow!("hmac: {e}"))?;
            mac.update(signing_input.as_bytes());
            mac.finalize().into_bytes().to_vec()
        }
        Signing::None => Vec::new(),
    };
    Ok(format!("{signing_input}.{}", b64.encode(signature)))
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn reply_fn(f: impl Fn(&Received) -> Reply + Send + Sync + 'static) -> Handler {
    Arc::new(move |req: Received| {
        let reply = f(&req);
        Box::pin(async move { reply })
    })
}

/// Polls `f` every 50 ms until it answers `Some`, at most `timeout`.
pub fn wait_for<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The Bot Framework's OpenID metadata and keys.
pub struct FakeBotFramework {
    server: Server,
    keys: Arc<Mutex<Vec<Value>>>,
    metadata_fetches: Arc<AtomicU64>,
    key_fetches: Arc<AtomicU64>,
}

impl FakeBotFramework {
    /// Serves key 1 endorsed for `msteams` and key 2 endorsed for `webchat` only.
    pub fn start() -> anyhow::Result<FakeBotFramework> {
        let keys = Arc::new(Mutex::new(vec![TestKey::One.jwk(&["msteams"])?, TestKey::Two.jwk(&["webchat"])?]));
        let (metadata_fetches, key_fetches) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let port = Arc::new(AtomicU64::new(0));
        let (k, m, f, p) = (keys.clone(), metadata_fetches.clone(), key_fetches.clone(), port.clone());
        let handler = reply_fn(move |req| match req.path.as_str() {
            "/v1/.well-known/openidconfiguration" => {
                m.fetch_add(1, Ordering::SeqCst);
                let base = format!("http://127.0.0.1:{}", p.load(Ordering::SeqCst));
                Reply::json(
                    200,
                    &json!({"issuer": ISSUER, "authorization_endpoint": "https://invalid.example/",
                            "jwks_uri": format!("{base}/v1/.well-known/keys"),
                            "id_token_signing_alg_values_supported": ["RS256"],
                            "token_endpoint_auth_methods_supported": ["private_key_jwt"]}),
                )
            }
            "/v1/.well-known/keys" => {
                f.fetch_add(1, Ordering::SeqCst);
                Reply::json(200, &json!({"keys": lock(&k).clone()}))
            }
            _ => Reply::json(404, &json!({})),
        });
        let server = Server::start("fake-botframework", None, handler)?;
        port.store(u64::from(server.port()), Ordering::SeqCst);
        Ok(FakeBotFramework { server, keys, metadata_fetches, key_fetches })
    }

    /// `openid_metadata_url` for the service.
    pub fn metadata_url(&self) -> String {
        format!("http://127.0.0.1:{}/v1/.well-known/openidconfiguration", self.server.port())
    }

    /// Replaces the published keys (rotation).
    pub fn set_keys(&self, keys: Vec<Value>) {
        *lock(&self.keys) = keys;
    }

    /// How many times the JWKS was fetched.
    pub fn key_fetches(&self) -> u64 {
        self.key_fetches.load(Ordering::SeqCst)
    }

    /// How many times the metadata was fetched.
    pub fn metadata_fetches(&self) -> u64 {
        self.metadata_fetches.load(Ordering::SeqCst)
    }
}

/// A client-credentials grant the fake token endpoint saw.
#[derive(Debug, Clone)]
pub struct Grant {
    /// `grant_type`.
    pub grant_type: String,
    /// `client_id`.
    pub client_id: String,
    /// Whether `client_secret` was [`APP_PASSWORD`].
    pub secret_ok: bool,
    /// `scope`.
    pub scope: String,
}

/// The Entra token endpoint.
pub struct FakeEntra {
    server: Server,
    grants: Arc<Mutex<Vec<Grant>>>,
}

/// The access token the fake Entra issues (grant `n` gets `fake-bot-token-<n>`).
pub fn access_token(n: usize) -> String {
    format!("fake-bot-token-{n}")
}

fn form(body: &[u8]) -> HashMap<String, String> {
    String::from_utf8_lossy(body)
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (percent_decode(k), percent_decode(&v.replace('+', " "))))
        .collect()
}

/// Decodes `%XX` escapes (lossy on bad input; test data only).
pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
            if let Some(b) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl FakeEntra {
    /// Issues tokens valid for `expires_in` seconds.
    pub fn start(expires_in: u64) -> anyhow::Result<FakeEntra> {
        let grants = Arc::new(Mutex::new(Vec::new()));
        let g = grants.clone();
        let handler = reply_fn(move |req| {
            if req.method != "POST" || !req.path.starts_with("/tenant/oauth2/v2.0/token") {
                return Reply::json(404, &json!({"error": "not_found"}));
            }
            let f = form(&req.body);
            let text = |k: &str| f.get(k).cloned().unwrap_or_default();
            let grant = Grant {
                grant_type: text("grant_type"),
                client_id: text("client_id"),
                secret_ok: text("client_secret") == APP_PASSWORD,
                scope: text("scope"),
            };
            let ok = grant.secret_ok && grant.grant_type == "client_credentials" && grant.client_id == APP_ID;
            let mut grants = lock(&g);
            grants.push(grant);
            if !ok {
                return Reply::json(401, &json!({"error": "invalid_client"}));
            }
            Reply::json(
                200,
                &json!({"token_type": "Bearer", "expires_in": expires_in, "ext_expires_in": expires_in,
                        "access_token": access_token(grants.len())}),
            )
        });
        Ok(FakeEntra { server: Server::start("fake-entra", None, handler)?, grants })
    }

    /// `token_url` for the service.
    pub fn token_url(&self) -> String {
        format!("http://127.0.0.1:{}/tenant/oauth2/v2.0/token", self.server.port())
    }

    /// Every grant, in order.
    pub fn grants(&self) -> Vec<Grant> {
        lock(&self.grants).clone()
    }
}

/// What the fake connector saw.
#[derive(Debug, Clone)]
pub struct ConnectorCall {
    /// `POST`, `PUT`, `GET`; `CREATE` for `POST /v3/conversations`.
    pub method: String,
    /// The conversation id (decoded).
    pub conversation_id: String,
    /// The activity id (`PUT`), the member id (`GET`).
    pub item_id: Option<String>,
    /// The `authorization` header.
    pub authorization: Option<String>,
    /// The JSON body.
    pub body: Value,
    /// The answer's status.
    pub status: u16,
}

impl ConnectorCall {
    /// The Adaptive Card the activity carries.
    pub fn card(&self) -> Value {
        self.body.pointer("/attachments/0/content").cloned().unwrap_or(Value::Null)
    }

    /// The card's text, for `contains` checks.
    pub fn card_text(&self) -> String {
        self.card().to_string()
    }
}

/// How the next connector calls of a kind fail.
#[derive(Debug, Clone)]
pub enum ConnectorFailure {
    /// 403 `BotNotInConversationRoster`.
    NotInRoster,
    /// This status with an empty error.
    Status(u16),
}

/// A 1:1 conversation the fake connector created.
#[derive(Debug, Clone)]
pub struct CreatedConversation {
    /// The member named in the request (an Entra object id).
    pub member: String,
    /// The conversation id answered.
    pub conversation_id: String,
    /// The request body as sent.
    pub request: Value,
}

#[derive(Default)]
struct ConnectorState {
    calls: Vec<ConnectorCall>,
    created: Vec<CreatedConversation>,
    members: HashMap<String, Value>,
    failures: HashMap<String, VecDeque<ConnectorFailure>>,
    next_id: u64,
}

/// The Bot Connector.
pub struct FakeConnector {
    server: Server,
    state: Arc<Mutex<ConnectorState>>,
}

impl FakeConnector {
    /// Starts it; every call must carry `Bearer fake-bot-token-…`.
    pub fn start() -> anyhow::Result<FakeConnector> {
        let state = Arc::new(Mutex::new(ConnectorState::default()));
        let s = state.clone();
        let handler = reply_fn(move |req| connector_answer(&s, req));
        Ok(FakeConnector { server: Server::start("fake-bot-connector", None, handler)?, state })
    }

    /// Its `serviceUrl` (`http://127.0.0.1:<port>/`).
    pub fn service_url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.server.port())
    }

    /// The same server named `localhost` (a host the service does not allow-list).
    pub fn localhost_service_url(&self) -> String {
        format!("http://localhost:{}/", self.server.port())
    }

    /// `GET .../members/{member_id}` answers `profile`.
    pub fn set_member(&self, member_id: &str, profile: Value) {
        lock(&self.state).members.insert(member_id.to_string(), profile);
    }

    /// The next `times` calls with `method` (`POST`, `PUT`, `GET`, `CREATE`) fail with
    /// `failure`.
    pub fn fail_next(&self, method: &str, times: usize, failure: ConnectorFailure) {
        let mut s = lock(&self.state);
        s.failures.entry(method.to_string()).or_default().extend(std::iter::repeat_n(failure, times));
    }

    /// Every call, in order.
    pub fn calls(&self) -> Vec<ConnectorCall> {
        lock(&self.state).calls.clone()
    }

    /// Every 1:1 conversation created, in order.
    pub fn created(&self) -> Vec<CreatedConversation> {
        lock(&self.state).created.clone()
    }

    /// Posts and updates whose card mentions `needle` (an approval id).
    pub fn cards_for(&self, method: &str, needle: &str) -> Vec<ConnectorCall> {
        self.calls().into_iter().filter(|c| c.method == method && c.card_text().contains(needle)).collect()
    }

    /// Polls until `pred` holds for the calls mentioning `needle` (bounded); answers them.
    pub fn wait_cards(
        &self,
        method: &str,
        needle: &str,
        timeout: Duration,
        pred: impl Fn(&[ConnectorCall]) -> bool,
    ) -> Vec<ConnectorCall> {
        let mut last = Vec::new();
        let found = wait_for(timeout, || {
            last = self.cards_for(method, needle);
            pred(&last).then(|| last.clone())
        });
        found.unwrap_or(last)
    }
}

/// The id the fake gives the 1:1 conversation with `member` (stable, as Teams' are).
pub fn personal_conversation_id(member: &str) -> String {
    format!("a:1personal-{member}")
}

/// `POST /v3/conversations`: a 1:1 conversation is created when the body names the bot
/// (`28:<app id>`), exactly one member, `isGroup` false and our tenant (`tenantId` or
/// `channelData.tenant.id`); otherwise 400 `BadArgument`, as the service answers a
/// malformed request.
fn create_conversation(state: &Mutex<ConnectorState>, req: &Received) -> Reply {
    let authorization = req.header("authorization").map(str::to_string);
    let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
    let mut s = lock(state);
    let failure = s.failures.get_mut("CREATE").and_then(VecDeque::pop_front);
    let authorized = authorization.as_deref().is_some_and(|a| a.starts_with("Bearer fake-bot-token-"));
    let members = body.get("members").and_then(Value::as_array).cloned().unwrap_or_default();
    let member = members.first().and_then(|m| m.get("id")).and_then(Value::as_str).unwrap_or_default().to_string();
    let tenant = body
        .get("tenantId")
        .or_else(|| body.pointer("/channelData/tenant/id"))
        .and_then(Value::as_str)
        .unwrap_or_default();
    let well_formed = body.pointer("/bot/id").and_then(Value::as_str) == Some(format!("28:{APP_ID}").as_str())
        && members.len() == 1
        && !member.is_empty()
        && body.get("isGroup").and_then(Value::as_bool) != Some(true)
        && tenant == TENANT;
    let (status, answer) = match (failure, authorized, well_formed) {
        (Some(ConnectorFailure::NotInRoster), ..) => (
            403,
            json!({"error": {"code": "BotNotInConversationRoster",
                              "message": "The bot is not part of the conversation roster."}}),
        ),
        (Some(ConnectorFailure::Status(code)), ..) => (code, json!({"error": {"code": "ServiceError"}})),
        (None, false, _) => (401, json!({"message": "Authorization has been denied for this request."})),
        (None, true, false) => (400, json!({"error": {"code": "BadArgument"}})),
        (None, true, true) => {
            let conversation_id = personal_conversation_id(&member);
            s.created.push(CreatedConversation {
                member: member.clone(),
                conversation_id: conversation_id.clone(),
                request: body.clone(),
            });
            (201, json!({"id": conversation_id}))
        }
    };
    s.calls.push(ConnectorCall {
        method: "CREATE".into(),
        conversation_id: String::new(),
        item_id: Some(member),
        authorization,
        body,
        status,
    });
    Reply::json(status, &answer)
}

fn connector_answer(state: &Mutex<ConnectorState>, req: &Received) -> Reply {
    let path = req.path.split('?').next().unwrap_or_default();
    let segments: Vec<String> = path.trim_start_matches('/').split('/').map(percent_decode).collect();
    let parts: Vec<&str> = segments.iter().map(String::as_str).collect();
    if req.method == "POST" && parts.as_slice() == ["v3", "conversations"] {
        return create_conversation(state, req);
    }
    let (conversation_id, kind, item) = match parts.as_slice() {
        ["v3", "conversations", c, kind] => (c.to_string(), kind.to_string(), None),
        ["v3", "conversations", c, kind, item] => (c.to_string(), kind.to_string(), Some(item.to_string())),
        _ => return Reply::json(404, &json!({"error": {"code": "NotFound"}})),
    };
    let authorization = req.header("authorization").map(str::to_string);
    let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
    let mut s = lock(state);
    let failure = s.failures.get_mut(&req.method).and_then(VecDeque::pop_front);
    let authorized = authorization.as_deref().is_some_and(|a| a.starts_with("Bearer fake-bot-token-"));
    let (status, answer) = match (&failure, authorized, req.method.as_str(), kind.as_str(), &item) {
        (Some(ConnectorFailure::NotInRoster), ..) => (
            403,
            json!({"error": {"code": "BotNotInConversationRoster",
                              "message": "The bot is not part of the conversation roster."}}),
        ),
        (Some(ConnectorFailure::Status(code)), ..) => (*code, json!({"error": {"code": "ServiceError"}})),
        (None, false, ..) => (401, json!({"message": "Authorization has been denied for this request."})),
        (None, true, "POST", "activities", None) => {
            s.next_id += 1;
            (201, json!({"id": format!("1:activity-{}", s.next_id)}))
        }
        (None, true, "PUT", "activities", Some(id)) => (200, json!({"id": id})),
        (None, true, "GET", "members", Some(member)) => match s.members.get(member) {
            Some(profile) => (200, profile.clone()),
            None => (404, json!({"error": {"code": "MemberNotFoundInConversation"}})),
        },
        _ => (400, json!({"error": {"code": "BadArgument"}})),
    };
    s.calls.push(ConnectorCall {
        method: req.method.clone(),
        conversation_id,
        item_id: item,
        authorization,
        body,
        status,
    });
    Reply::json(status, &answer)
}

/// A Teams user as the connector and activities describe them.
#[derive(Debug, Clone)]
pub struct TeamsUser {
    /// The channel account id (`29:...`).
    pub id: String,
    /// Entra object id (`None`: anonymous).
    pub aad_object_id: Option<String>,
    /// E-mail / UPN.
    pub email: String,
    /// `user`, `guest`, `anonymous`.
    pub role: String,
    /// Their tenant.
    pub tenant: String,
}

impl TeamsUser {
    /// A member of [`TENANT`].
    pub fn new(id: &str, aad_object_id: &str, email: &str) -> TeamsUser {
        TeamsUser {
            id: id.into(),
            aad_object_id: Some(aad_object_id.into()),
            email: email.into(),
            role: "user".into(),
            tenant: TENANT.into(),
        }
    }

    /// The profile the connector serves.
    pub fn profile(&self) -> Value {
        json!({"id": self.id, "name": self.email, "aadObjectId": self.aad_object_id, "email": self.email,
               "userPrincipalName": self.email, "userRole": self.role, "tenantId": self.tenant})
    }
}

fn from_of(user: &TeamsUser) -> Value {
    let mut from = json!({"id": user.id, "name": user.email});
    if let Some(oid) = &user.aad_object_id {
        from["aadObjectId"] = json!(oid);
    }
    from
}

fn next_activity_id() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!("f:e2e-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed))
}

/// An `invoke` `adaptiveCard/action` click by `user` (fresh activity id).
pub fn invoke(service_url: &str, user: &TeamsUser, approval_id: &str, verb: &str, comment: Option<&str>) -> Value {
    let mut data = json!({"approvalId": approval_id});
    if let Some(c) = comment {
        data["comment"] = json!(c);
    }
    json!({
        "type": "invoke", "name": "adaptiveCard/action", "id": next_activity_id(),
        "channelId": "msteams", "serviceUrl": service_url,
        "timestamp": "2026-11-21T12:00:00.000Z",
        "from": from_of(user),
        "recipient": {"id": format!("28:{APP_ID}"), "name": "Airlock"},
        "conversation": {"id": CHANNEL_CONVERSATION, "conversationType": "channel", "tenantId": user.tenant},
        "channelData": {"tenant": {"id": user.tenant}},
        "value": {"action": {"type": "Action.Execute", "verb": verb, "data": data}, "trigger": "manual"},
    })
}

/// The `Action.Submit` fallback: a `message` whose `value` is the button's data.
pub fn submit(service_url: &str, user: &TeamsUser, approval_id: &str, verb: &str) -> Value {
    json!({
        "type": "message", "id": next_activity_id(), "channelId": "msteams", "serviceUrl": service_url,
        "from": from_of(user),
        "recipient": {"id": format!("28:{APP_ID}")},
        "conversation": {"id": CHANNEL_CONVERSATION, "conversationType": "channel", "tenantId": user.tenant},
        "channelData": {"tenant": {"id": user.tenant}},
        "value": {"approvalId": approval_id, "verb": verb},
    })
}

/// The bot was added to `conversation_id` (`conversationUpdate` with `membersAdded`).
pub fn conversation_update(service_url: &str, conversation_id: &str, tenant: &str) -> Value {
    json!({
        "type": "conversationUpdate", "id": next_activity_id(), "channelId": "msteams", "serviceUrl": service_url,
        "from": {"id": "29:installer"},
        "recipient": {"id": format!("28:{APP_ID}")},
        "membersAdded": [{"id": format!("28:{APP_ID}")}],
        "conversation": {"id": conversation_id, "conversationType": "channel", "tenantId": tenant},
        "channelData": {"tenant": {"id": tenant}, "eventType": "teamMemberAdded"},
    })
}

/// `user` installed the app personally: a `conversationUpdate` in their 1:1 chat.
pub fn personal_install(service_url: &str, conversation_id: &str, user: &TeamsUser) -> Value {
    json!({
        "type": "conversationUpdate", "id": next_activity_id(), "channelId": "msteams", "serviceUrl": service_url,
        "from": from_of(user),
        "recipient": {"id": format!("28:{APP_ID}")},
        "membersAdded": [{"id": format!("28:{APP_ID}")}],
        "conversation": {"id": conversation_id, "conversationType": "personal", "tenantId": user.tenant},
        "channelData": {"tenant": {"id": user.tenant}},
    })
}

/// The three fakes, started together.
pub struct TeamsFakes {
    /// Token issuer and keys.
    pub botframework: FakeBotFramework,
    /// Client-credentials endpoint.
    pub entra: FakeEntra,
    /// Bot Connector.
    pub connector: FakeConnector,
}

impl TeamsFakes {
    /// Starts all three; Entra tokens live `token_lifetime_secs`.
    pub fn start(token_lifetime_secs: u64) -> anyhow::Result<TeamsFakes> {
        Ok(TeamsFakes {
            botframework: FakeBotFramework::start()?,
            entra: FakeEntra::start(token_lifetime_secs)?,
            connector: FakeConnector::start()?,
        })
    }

    /// The `[teams]` section pointing the service at the fakes, posting to
    /// [`CHANNEL_CONVERSATION`].
    pub fn toml(&self) -> String {
        self.toml_with("")
    }

    /// [`TeamsFakes::toml`] with more `[teams]` keys (`extra`, one per line), 1:1 chats
    /// created at the fake connector.
    pub fn toml_with(&self, extra: &str) -> String {
        format!(
            "[teams]\napp_id = {app}\nsecret_env = {env}\ntenant_id = {tenant}\n\
             direct_service_url = {svc}\n{extra}\n\
             openid_metadata_url = {meta}\ntoken_url = {token}\nallowed_service_url_hosts = [\"127.0.0.1\"]\n\
             conversations = [{{ service_url = {svc}, conversation_id = {conv} }}]\n\n",
            app = q(APP_ID),
            env = q(APP_PASSWORD_ENV),
            tenant = q(TENANT),
            meta = q(&self.botframework.metadata_url()),
            token = q(&self.entra.token_url()),
            svc = q(&self.connector.service_url()),
            conv = q(CHANNEL_CONVERSATION),
        )
    }

    /// The service's environment: the app secret.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![(APP_PASSWORD_ENV.to_string(), APP_PASSWORD.to_string())]
    }
}

fn q(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| format!("{s:?}"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn decodes_percent_escapes() {
        assert_eq!(percent_decode("19%3Aa%40thread.tacv2"), "19:a@thread.tacv2");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%4"), "%4");
    }

    #[test]
    fn mints_three_part_tokens() {
        let t = mint(&TokenSpec::valid("http://127.0.0.1:1/")).unwrap();
        assert_eq!(t.split('.').count(), 3);
        let none = mint(&TokenSpec::valid("x").signed(Signing::None, None)).unwrap();
        assert!(none.ends_with('.'));
    }
}
