//! A fake approval service that speaks `docs/protocol.md` exactly, in memory.
//!
//! It really verifies every request signature (key id, ±60 s, HMAC-SHA256 in constant
//! time) and signs every answer bound to the request's signature. Approvals are keyed by
//! (agent id, digest); create-or-find is idempotent while one is pending or approved and
//! unredeemed; `hold_ms` long-polls until the test decides the approval. The test drives
//! reviewers' decisions ([`FakeService::approve`], [`FakeService::deny`], ...), can take
//! the service down or make it slow, forge its answers, and reads back every call,
//! decision-log batch and protocol violation it saw.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{anyhow, bail};
use serde_json::{json, Value};
use tokio::sync::watch;

use crate::e2e::server::{Handler, Received, Reply, Server};
use crate::e2e::signing::{self, KEY_ID_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER};
use crate::e2e::tls::ServerCert;

/// Longest hold the fake service honours, whatever the filter asks.
const MAX_HOLD: Duration = Duration::from_secs(120);

/// Credential headers that must never reach the service (protocol + spec).
const CREDENTIAL_HEADERS: [&str; 3] = ["authorization", "cookie", "proxy-authorization"];

/// The service's keys: which it accepts on requests, and which it signs answers with.
#[derive(Clone, Debug)]
pub struct ServiceKeys {
    /// Key id → key, accepted on requests.
    pub accepted: BTreeMap<String, Vec<u8>>,
    /// Key id and key for answers (the filter's current key).
    pub current: (String, Vec<u8>),
    /// The filter's previous key, for [`AnswerSigning::PreviousKey`].
    pub previous: Option<(String, Vec<u8>)>,
}

/// How the service signs its answers (to prove the filter checks them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AnswerSigning {
    /// As the protocol says, with the current key.
    Valid,
    /// As the protocol says, with the previous key (rotation: must be accepted).
    PreviousKey,
    /// With a key the filter does not know, under the current key id.
    WrongKey,
    /// No signature headers at all.
    Unsigned,
    /// Valid HMAC but a timestamp two minutes old.
    Stale,
    /// Valid HMAC but bound to some other request's signature (a replayed answer).
    BoundToOtherRequest,
}

/// Where an approval stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ApprovalStatus {
    /// Waiting for reviewers.
    Pending,
    /// Approved, not yet redeemed.
    Approved,
    /// Denied by a reviewer.
    Denied,
    /// Past its deadline.
    Expired,
    /// Cancelled.
    Cancelled,
    /// Approved and consumed by a redeem.
    Redeemed,
}

impl ApprovalStatus {
    /// The protocol's status word (a redeemed approval reports `approved`: it was).
    pub fn wire(self) -> &'static str {
        match self {
            ApprovalStatus::Pending => "pending",
            ApprovalStatus::Approved | ApprovalStatus::Redeemed => "approved",
            ApprovalStatus::Denied => "denied",
            ApprovalStatus::Expired => "expired",
            ApprovalStatus::Cancelled => "cancelled",
        }
    }
}

/// One approval as the service holds it.
#[derive(Clone, Debug)]
pub struct Approval {
    /// `apr_…`.
    pub id: String,
    /// Agent id of the request that created it.
    pub agent: String,
    /// Action digest it covers.
    pub digest: String,
    /// Where it stands.
    pub status: ApprovalStatus,
    /// Create-or-find calls that returned it (1 = created, no duplicates).
    pub create_calls: usize,
    /// Body of the create call that made it.
    pub create_request: Value,
    /// Headers the redeem answer injects (default `authorization: Bearer minted-<id>`).
    pub redeem_headers: BTreeMap<String, String>,
    /// Redeem calls made for it (successful or not).
    pub redeem_calls: usize,
}

/// One call the service received.
#[derive(Clone, Debug)]
pub struct Call {
    /// Method.
    pub method: String,
    /// `:path`.
    pub path: String,
    /// Status answered.
    pub status: u16,
    /// Whether the request signature verified.
    pub signature_ok: bool,
    /// Key id the request named.
    pub key_id: Option<String>,
    /// Raw body.
    pub body: String,
}

#[derive(Default)]
struct State {
    approvals: Vec<Approval>,
    next_id: u64,
    calls: Vec<Call>,
    decision_batches: Vec<Value>,
    violations: Vec<String>,
    delay: Duration,
    answer_signing: Option<AnswerSigning>,
    redeem_override: Option<(u16, Value)>,
    retry_after: u64,
}

struct Shared {
    state: Mutex<State>,
    changes: watch::Sender<u64>,
    keys: ServiceKeys,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn changed(&self) {
        self.changes.send_modify(|n| *n = n.wrapping_add(1));
    }
}

/// A running fake approval service on 127.0.0.1.
pub struct FakeService {
    server: Server,
    shared: Arc<Shared>,
}

impl FakeService {
    /// Starts the service (plain HTTP) with `keys`.
    pub fn start(keys: ServiceKeys) -> anyhow::Result<FakeService> {
        Self::start_with(keys, None)
    }

    /// Starts the service over HTTPS, presenting `cert`.
    pub fn start_tls(keys: ServiceKeys, cert: &ServerCert) -> anyhow::Result<FakeService> {
        Self::start_with(keys, Some(cert.rustls_config()?))
    }

    fn start_with(keys: ServiceKeys, tls: Option<Arc<rustls::ServerConfig>>) -> anyhow::Result<FakeService> {
        let (changes, _) = watch::channel(0u64);
        let shared =
            Arc::new(Shared { state: Mutex::new(State { retry_after: 5, ..State::default() }), changes, keys });
        let for_handler = shared.clone();
        let handler: Handler = Arc::new(move |req: Received| {
            let shared = for_handler.clone();
            Box::pin(async move { handle(shared, req).await })
        });
        Ok(FakeService { server: Server::start("fake-approval-service", tls, handler)?, shared })
    }

    /// Its port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.server.port()
    }

    // ----- failure modes -------------------------------------------------------------

    /// Down: the port is closed and open calls are dropped. Up: back on the same port.
    pub fn set_down(&self, down: bool) {
        self.server.set_down(down);
    }

    /// Every answer waits this long first (zero: answer at once).
    pub fn set_delay(&self, delay: Duration) {
        self.shared.lock().delay = delay;
    }

    /// How answers are signed from now on.
    pub fn set_answer_signing(&self, mode: AnswerSigning) {
        self.shared.lock().answer_signing = Some(mode);
    }

    /// Every redeem answers `status` with `body` (still signed) instead of the real logic.
    pub fn set_redeem_override(&self, answer: Option<(u16, Value)>) {
        self.shared.lock().redeem_override = answer;
    }

    /// `retry_after` in create answers.
    pub fn set_retry_after(&self, seconds: u64) {
        self.shared.lock().retry_after = seconds;
    }

    /// Back to normal: up, no delay, valid signatures, no overrides.
    pub fn reset_behaviour(&self) {
        {
            let mut state = self.shared.lock();
            state.delay = Duration::ZERO;
            state.answer_signing = None;
            state.redeem_override = None;
        }
        self.set_down(false);
    }

    // ----- reviewers -----------------------------------------------------------------

    /// A reviewer approves `id`.
    pub fn approve(&self, id: &str) -> anyhow::Result<()> {
        self.decide(id, ApprovalStatus::Approved)
    }

    /// A reviewer denies `id`.
    pub fn deny(&self, id: &str) -> anyhow::Result<()> {
        self.decide(id, ApprovalStatus::Denied)
    }

    /// `id` passes its deadline.
    pub fn expire(&self, id: &str) -> anyhow::Result<()> {
        self.decide(id, ApprovalStatus::Expired)
    }

    /// `id` is cancelled.
    pub fn cancel(&self, id: &str) -> anyhow::Result<()> {
        self.decide(id, ApprovalStatus::Cancelled)
    }

    fn decide(&self, id: &str, status: ApprovalStatus) -> anyhow::Result<()> {
        {
            let mut state = self.shared.lock();
            let approval =
                state.approvals.iter_mut().find(|a| a.id == id).ok_or_else(|| anyhow!("no approval {id}"))?;
            approval.status = status;
        }
        self.shared.changed();
        Ok(())
    }

    /// Headers the redeem of `id` will inject.
    pub fn set_redeem_headers(&self, id: &str, headers: BTreeMap<String, String>) -> anyhow::Result<()> {
        let mut state = self.shared.lock();
        let approval = state.approvals.iter_mut().find(|a| a.id == id).ok_or_else(|| anyhow!("no approval {id}"))?;
        approval.redeem_headers = headers;
        Ok(())
    }

    // ----- what it saw ---------------------------------------------------------------

    /// Every approval.
    pub fn approvals(&self) -> Vec<Approval> {
        self.shared.lock().approvals.clone()
    }

    /// One approval by id.
    pub fn approval(&self, id: &str) -> Option<Approval> {
        self.approvals().into_iter().find(|a| a.id == id)
    }

    /// The approvals of agent `agent`.
    pub fn approvals_of(&self, agent: &str) -> Vec<Approval> {
        self.approvals().into_iter().filter(|a| a.agent == agent).collect()
    }

    /// Waits (bounded) for an approval of `agent` to exist; returns the newest.
    pub fn wait_for_approval_of(&self, agent: &str, timeout: Duration) -> Option<Approval> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(found) = self.approvals_of(agent).pop() {
                return Some(found);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Every call received, in order.
    pub fn calls(&self) -> Vec<Call> {
        self.shared.lock().calls.clone()
    }

    /// Calls whose signature did not verify.
    pub fn rejected_calls(&self) -> Vec<Call> {
        self.calls().into_iter().filter(|c| !c.signature_ok).collect()
    }

    /// Things the filter sent that the protocol forbids (credential headers, bad fields).
    pub fn violations(&self) -> Vec<String> {
        self.shared.lock().violations.clone()
    }

    /// Every decision-log batch body received.
    pub fn decision_batches(&self) -> Vec<Value> {
        self.shared.lock().decision_batches.clone()
    }

    /// Every decision record received, across batches.
    pub fn decision_records(&self) -> Vec<Value> {
        self.decision_batches()
            .iter()
            .filter_map(|b| b.get("records").and_then(Value::as_array).cloned())
            .flatten()
            .collect()
    }

    /// Waits (bounded) for a decision record matching `pred`.
    pub fn wait_for_decision(&self, pred: impl Fn(&Value) -> bool, timeout: Duration) -> Option<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(found) = self.decision_records().into_iter().find(|r| pred(r)) {
                return Some(found);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

// ----- request handling --------------------------------------------------------------

async fn handle(shared: Arc<Shared>, req: Received) -> Reply {
    let delay = shared.lock().delay;
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let key_id = req.header(KEY_ID_HEADER).map(str::to_string);
    let request_signature = req.header(SIGNATURE_HEADER).map(str::to_string);
    if let Err(why) = verify_request(&shared.keys, &req) {
        let reply = problem(401, "unauthorized", &why);
        record(&shared, &req, &reply, false, key_id);
        return reply;
    }
    let reply = route(&shared, &req).await;
    record(&shared, &req, &reply, true, key_id);
    let mode = shared.lock().answer_signing.unwrap_or(AnswerSigning::Valid);
    match request_signature {
        Some(sig) => sign_answer(&shared.keys, mode, &sig, reply),
        None => reply,
    }
}

fn record(shared: &Shared, req: &Received, reply: &Reply, signature_ok: bool, key_id: Option<String>) {
    shared.lock().calls.push(Call {
        method: req.method.clone(),
        path: req.path.clone(),
        status: reply.status,
        signature_ok,
        key_id,
        body: String::from_utf8_lossy(&req.body).into_owned(),
    });
}

fn verify_request(keys: &ServiceKeys, req: &Received) -> Result<(), String> {
    let one = |name: &str| -> Result<String, String> {
        match req.header_values(name).as_slice() {
            [v] => Ok((*v).to_string()),
            [] => Err(format!("missing {name}")),
            _ => Err(format!("repeated {name}")),
        }
    };
    let key_id = one(KEY_ID_HEADER)?;
    let timestamp = one(TIMESTAMP_HEADER)?;
    let signature = one(SIGNATURE_HEADER)?;
    let key = keys.accepted.get(&key_id).ok_or_else(|| format!("unknown key id {key_id:?}"))?;
    if !signing::timestamp_fresh(&timestamp) {
        return Err(format!("timestamp {timestamp:?} is more than 60 s away"));
    }
    let message = signing::request_string(&timestamp, &req.method, &req.path, &req.body);
    if !signing::verify(key, &message, &signature) {
        return Err("signature does not match".into());
    }
    Ok(())
}

fn sign_answer(keys: &ServiceKeys, mode: AnswerSigning, request_signature: &str, mut reply: Reply) -> Reply {
    if mode == AnswerSigning::Unsigned {
        return reply;
    }
    let now = signing::now_secs();
    let timestamp = if mode == AnswerSigning::Stale { now - 120 } else { now }.to_string();
    let bound_to = if mode == AnswerSigning::BoundToOtherRequest {
        format!("v1={}", "0".repeat(64))
    } else {
        request_signature.to_string()
    };
    let (key_id, key) = match mode {
        AnswerSigning::PreviousKey => keys.previous.clone().unwrap_or_else(|| keys.current.clone()),
        AnswerSigning::WrongKey => (keys.current.0.clone(), vec![0x5a; 32]),
        _ => keys.current.clone(),
    };
    let message = signing::response_string(&timestamp, reply.status, &bound_to, &reply.body);
    match signing::sign(&key, &message) {
        Ok(signature) => {
            reply.headers.push((KEY_ID_HEADER.into(), key_id));
            reply.headers.push((TIMESTAMP_HEADER.into(), timestamp));
            reply.headers.push((SIGNATURE_HEADER.into(), signature));
            reply
        }
        Err(e) => problem(500, "internal", &format!("cannot sign: {e}")),
    }
}

async fn route(shared: &Arc<Shared>, req: &Received) -> Reply {
    let body: Value = match serde_json::from_slice(&req.body) {
        Ok(v) => v,
        Err(e) => return problem(400, "bad-request", &format!("body is not JSON: {e}")),
    };
    let path = req.path.as_str();
    if req.method != "POST" {
        return problem(405, "method-not-allowed", "only POST");
    }
    if path == "/v1/gateway/approvals" {
        return create_or_find(shared, &body).await;
    }
    if path == "/v1/gateway/decisions" {
        return decisions(shared, body);
    }
    if let Some(id) = path.strip_prefix("/v1/gateway/approvals/").and_then(|rest| rest.strip_suffix("/redeem")) {
        return redeem(shared, id, &body);
    }
    problem(404, "not-found", &format!("no route {path}"))
}

fn violation(shared: &Shared, what: String) {
    shared.lock().violations.push(what);
}

/// Checks the create body's shape; records protocol violations.
fn check_create(shared: &Shared, body: &Value) -> Result<(String, String, u64), String> {
    let agent = body.pointer("/agent/id").and_then(Value::as_str).ok_or("agent.id missing")?;
    let digest = body.get("digest").and_then(Value::as_str).ok_or("digest missing")?;
    if digest.len() != 64 || !digest.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        return Err(format!("digest {digest:?} is not lower-case hex SHA-256"));
    }
    let hold_ms = body.get("hold_ms").and_then(Value::as_u64).ok_or("hold_ms missing")?;
    for field in ["decision_id", "policy", "request"] {
        if body.get(field).is_none() {
            return Err(format!("{field} missing"));
        }
    }
    if body.pointer("/agent/source").and_then(Value::as_str).is_none() {
        return Err("agent.source missing".into());
    }
    if let Some(headers) = body.pointer("/request/headers").and_then(Value::as_object) {
        for name in headers.keys() {
            let lower = name.to_ascii_lowercase();
            if CREDENTIAL_HEADERS.contains(&lower.as_str()) {
                violation(shared, format!("credential header {name} sent to the service"));
            }
            if lower != *name {
                violation(shared, format!("header name {name} is not lower-case"));
            }
        }
    }
    Ok((agent.to_string(), digest.to_string(), hold_ms))
}

async fn create_or_find(shared: &Arc<Shared>, body: &Value) -> Reply {
    let (agent, digest, hold_ms) = match check_create(shared, body) {
        Ok(v) => v,
        Err(why) => {
            violation(shared, format!("malformed create: {why}"));
            return problem(400, "bad-request", &why);
        }
    };
    let asked_id = body.get("approval_id").and_then(Value::as_str).map(str::to_string);
    let asked_id_echo = asked_id.clone();
    let found = {
        let mut state = shared.lock();
        let state = &mut *state;
        match asked_id {
            Some(id) => match state.approvals.iter_mut().find(|a| a.id == id) {
                Some(a) if a.agent == agent && a.digest == digest => {
                    a.create_calls += 1;
                    Some(a.id.clone())
                }
                _ => None,
            },
            None => {
                let live = state.approvals.iter_mut().find(|a| {
                    a.agent == agent
                        && a.digest == digest
                        && matches!(a.status, ApprovalStatus::Pending | ApprovalStatus::Approved)
                });
                match live {
                    Some(a) => {
                        a.create_calls += 1;
                        Some(a.id.clone())
                    }
                    None => {
                        state.next_id += 1;
                        let id = format!("apr_e2e_{:04}", state.next_id);
                        state.approvals.push(Approval {
                            id: id.clone(),
                            agent: agent.clone(),
                            digest: digest.clone(),
                            status: ApprovalStatus::Pending,
                            create_calls: 1,
                            create_request: body.clone(),
                            redeem_headers: BTreeMap::from([(
                                "authorization".to_string(),
                                format!("Bearer minted-{id}"),
                            )]),
                            redeem_calls: 0,
                        });
                        Some(id)
                    }
                }
            }
        }
    };
    shared.changed();
    let Some(id) = found else {
        // The answer schema's approval_id echoes the id that was asked about.
        let mut answer = json!({"status": "mismatch", "detail": "approval does not match this agent and action"});
        if let (Some(asked), Some(obj)) = (&asked_id_echo, answer.as_object_mut()) {
            obj.insert("approval_id".into(), json!(asked));
        }
        return Reply::json(200, &answer);
    };
    let status = hold(shared, &id, Duration::from_millis(hold_ms).min(MAX_HOLD)).await;
    let retry_after = shared.lock().retry_after;
    Reply::json(
        200,
        &json!({
            "approval_id": id,
            "status": status.wire(),
            "retry_after": retry_after,
            "expires_at": rfc3339_in(Duration::from_secs(900)),
            "detail": format!("fake service: approval is {}", status.wire()),
        }),
    )
}

/// Long-poll: waits until `id` is no longer pending or `hold` passes.
async fn hold(shared: &Arc<Shared>, id: &str, hold: Duration) -> ApprovalStatus {
    let deadline = tokio::time::Instant::now() + hold;
    let mut changes = shared.changes.subscribe();
    loop {
        changes.borrow_and_update();
        let status =
            shared.lock().approvals.iter().find(|a| a.id == id).map(|a| a.status).unwrap_or(ApprovalStatus::Cancelled);
        if status != ApprovalStatus::Pending || tokio::time::Instant::now() >= deadline {
            return status;
        }
        let _ = tokio::time::timeout_at(deadline, changes.changed()).await;
    }
}

fn redeem(shared: &Arc<Shared>, id: &str, body: &Value) -> Reply {
    let agent = body.get("agent").and_then(Value::as_str);
    let digest = body.get("digest").and_then(Value::as_str);
    let (Some(agent), Some(digest), Some(_)) = (agent, digest, body.get("decision_id")) else {
        violation(shared, format!("malformed redeem body for {id}: {body}"));
        return problem(400, "bad-request", "redeem needs decision_id, agent, digest");
    };
    let mut state = shared.lock();
    let override_answer = state.redeem_override.clone();
    let Some(approval) = state.approvals.iter_mut().find(|a| a.id == id) else {
        return Reply::json(409, &json!({"status": "mismatch"}));
    };
    approval.redeem_calls += 1;
    if let Some((status, body)) = override_answer {
        return Reply::json(status, &body);
    }
    if approval.agent != agent || approval.digest != digest {
        return Reply::json(409, &json!({"status": "mismatch"}));
    }
    match approval.status {
        ApprovalStatus::Approved => {
            approval.status = ApprovalStatus::Redeemed;
            let headers = approval.redeem_headers.clone();
            drop(state);
            shared.changed();
            Reply::json(
                200,
                &json!({
                    "approval_id": id,
                    "status": "redeemed",
                    "headers": headers,
                    "expires_at": rfc3339_in(Duration::from_secs(300)),
                }),
            )
        }
        ApprovalStatus::Redeemed => Reply::json(409, &json!({"status": "consumed"})),
        ApprovalStatus::Expired => Reply::json(410, &json!({"status": "expired"})),
        _ => Reply::json(409, &json!({"status": "not_approved"})),
    }
}

fn decisions(shared: &Arc<Shared>, body: Value) -> Reply {
    let Some(records) = body.get("records").and_then(Value::as_array) else {
        violation(shared, format!("decision batch without records: {body}"));
        return problem(400, "bad-request", "records missing");
    };
    let count = records.len();
    if body.get("dropped").and_then(Value::as_u64).is_none() {
        violation(shared, "decision batch without a numeric `dropped`".into());
    }
    shared.lock().decision_batches.push(body);
    Reply::json(202, &json!({"accepted": count}))
}

fn problem(status: u16, kind: &str, detail: &str) -> Reply {
    Reply {
        status,
        headers: vec![("content-type".into(), "application/problem+json".into())],
        body: json!({
            "type": format!("urn:airlock:problem:{kind}"),
            "title": kind,
            "status": status,
            "detail": detail,
        })
        .to_string()
        .into_bytes(),
    }
}

fn rfc3339_in(from_now: Duration) -> String {
    humantime::format_rfc3339_seconds(SystemTime::now() + from_now).to_string()
}

/// The keys the fake service and the test plugin configuration share.
pub fn keys_for(current: (&str, &[u8]), previous: Option<(&str, &[u8])>) -> anyhow::Result<ServiceKeys> {
    if current.1.len() < 32 {
        bail!("signing keys are at least 32 bytes");
    }
    let mut accepted = BTreeMap::new();
    accepted.insert(current.0.to_string(), current.1.to_vec());
    if let Some((id, key)) = previous {
        accepted.insert(id.to_string(), key.to_vec());
    }
    Ok(ServiceKeys {
        accepted,
        current: (current.0.to_string(), current.1.to_vec()),
        previous: previous.map(|(id, key)| (id.to_string(), key.to_vec())),
    })
}
