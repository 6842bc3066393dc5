//! One request's way through the filter, as a host-agnostic state machine.
//!
//! The glue feeds it what the host reports (headers, body progress, callout answers)
//! and does what each returned [`Step`] says. Every path that is not an explicit allow
//! ends in a local reply: a failure anywhere here can only refuse.

use crate::action::Action;
use crate::body::{self, RpcCall};
use crate::cache::{BodyView, CachedDecision, Plan};
use crate::callout::{self, Answer, ApprovalStatus, Call, CalloutError, Redeemed};
use crate::decision::{self, Decision, Effect, POLICY_ERROR_RULE};
use crate::decision_log::Record;
use crate::digest::{action_digest, batch_component, body_component, sha256_hex};
use crate::identity::{self, Agent};
use crate::input::{self, BodyFacts};
use crate::method_field;
use crate::metrics::Counter;
use crate::problem::{Answering, Problem, ProblemKind, Reply, RpcAnswer};
use crate::redact::{redacted_batch_body, redacted_json_body};
use crate::source::RequestSource;
use crate::worker::Worker;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Rule recorded when a body that claims JSON does not read as strict JSON
/// (`docs/policy-input.md`).
pub const BODY_UNPARSEABLE_RULE: &str = "airlock.body-unparseable";
/// Rule recorded when a JSON array mixes JSON-RPC calls with anything else.
pub const BATCH_INVALID_RULE: &str = "airlock.jsonrpc-batch-invalid";
/// Rule recorded when a JSON-RPC batch has more calls than `request.max_jsonrpc_batch`.
pub const BATCH_TOO_LARGE_RULE: &str = "airlock.jsonrpc-batch-too-large";
/// Rule recorded when the calls of a batch need approvals one approval cannot give.
pub const BATCH_MIXED_APPROVALS_RULE: &str = "airlock.jsonrpc-batch-mixed-approvals";

/// What the glue must do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Let the request go upstream unchanged.
    Continue,
    /// Remove then set these request headers, then let the request go upstream.
    ContinueWith(HeaderEdits),
    /// Answer the agent locally; nothing goes upstream.
    Reply(Reply),
    /// Keep buffering the body and report progress.
    NeedBody,
    /// Dispatch this call and report its answer.
    Call(Call),
    /// Keep the request paused: a call is in flight, or it was answered locally.
    Hold,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeaderEdits {
    pub remove: Vec<String>,
    pub set: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Stage {
    Headers,
    Body,
    AwaitApproval,
    AwaitRedeem,
    Done,
}

/// Per-request state.
#[derive(Debug)]
pub struct Flow {
    stage: Stage,
    decision_id: String,
    action: Option<Action>,
    agent: Option<Agent>,
    digest: Option<String>,
    body_sha256: Option<String>,
    body: Vec<u8>,
    /// The raw method, authority and path of a request refused before its action could
    /// be read: the suspicious ones are exactly those an auditor wants to see.
    raw_target: Option<(String, String, String)>,
    /// Size seen when the body outgrew the buffer cap (then `body` stays empty).
    body_size_over_cap: usize,
    /// Body bytes the host held at the last body event (read again when trailers end
    /// the stream).
    buffered: usize,
    /// The request was let through upstream (allowed, or approved with a credential).
    continued: bool,
    decision: Option<Decision>,
    /// The signature of the call in flight, which its answer must be bound to.
    call_signature: Option<String>,
    /// The call in flight is a find (`callout::APPROVALS_FIND_PATH`): a 404 to it means
    /// "send the full create".
    finding: bool,
    approval_id: Option<String>,
    /// The JSON-RPC call the body carries: its digest part, and how to answer it.
    rpc: Option<RpcCall>,
    /// The agent accepts `text/event-stream` but not JSON (`Accept`).
    sse_only: bool,
    /// The calls of a JSON-RPC batch body, and how each was decided.
    batch: Option<Batch>,
}

/// A JSON-RPC batch: every call is evaluated on its own, the strictest effect decides
/// the request as a whole (deny > approve > allow), and each request is answered.
#[derive(Debug)]
struct Batch {
    calls: Vec<RpcCall>,
    /// Per call, once evaluated: the policy's decision and the effect it would enforce.
    decisions: Vec<(Decision, Effect)>,
    /// The batch's effect once decided.
    outcome: Option<Effect>,
    /// What the batch as a whole means for each call's answer (`Problem::batch_note`).
    note: Option<String>,
}

impl Batch {
    /// `call 2 of 3 (tool `k8s.scale`)`.
    fn describe(&self, i: usize) -> String {
        let what = match self.calls.get(i) {
            Some(RpcCall { tool: Some(t), .. }) => format!(" (tool `{t}`)"),
            Some(c) => format!(" (`{}`)", c.method),
            None => String::new(),
        };
        format!("call {} of {}{what}", i + 1, self.calls.len())
    }
}

fn risk_rank(r: crate::decision::Risk) -> u8 {
    use crate::decision::Risk;
    match r {
        Risk::Low => 0,
        Risk::Medium => 1,
        Risk::High => 2,
        Risk::Critical => 3,
    }
}

fn rank(e: Effect) -> u8 {
    match e {
        Effect::Allow => 0,
        Effect::Approve => 1,
        Effect::Deny => 2,
    }
}

impl Default for Flow {
    fn default() -> Self {
        Flow::new()
    }
}

/// The raw method, authority and path (bounded), read only when a request is refused
/// before its action could be read.
fn raw_target(src: &dyn RequestSource) -> (String, String, String) {
    let raw = |name: &str| src.header(name).map(|v| v.chars().take(512).collect()).unwrap_or_default();
    (raw(":method"), raw(":authority"), raw(":path"))
}

/// Whether an `Accept` value admits `text/event-stream` but not JSON (media-range
/// parameters, `q` included, are not weighed).
fn sse_only(accept: &str) -> bool {
    let ranges = || accept.split(',').map(|r| r.split(';').next().unwrap_or("").trim().to_ascii_lowercase());
    let sse = ranges().any(|r| r == "text/event-stream");
    let json = ranges().any(|r| r == "application/json" || r == "application/*" || r == "*/*");
    sse && !json
}

fn unix_ms(now: SystemTime) -> u64 {
    now.duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

impl Flow {
    pub fn new() -> Flow {
        Flow {
            stage: Stage::Headers,
            decision_id: String::new(),
            action: None,
            agent: None,
            digest: None,
            body_sha256: None,
            body: Vec::new(),
            raw_target: None,
            body_size_over_cap: 0,
            buffered: 0,
            continued: false,
            decision: None,
            call_signature: None,
            finding: false,
            approval_id: None,
            rpc: None,
            sse_only: false,
            batch: None,
        }
    }

    /// Body bytes the host held at the last body event.
    pub fn buffered(&self) -> usize {
        self.buffered
    }

    pub fn decision_id(&self) -> &str {
        &self.decision_id
    }

    /// The request headers are in. `end_of_stream`: there is no body.
    pub fn on_headers(
        &mut self,
        w: &mut Worker,
        src: &dyn RequestSource,
        end_of_stream: bool,
        now: SystemTime,
    ) -> Step {
        self.decision_id = match src.headers().get("x-request-id") {
            Some(id) if !id.is_empty() && id.len() <= 128 && id.bytes().all(|b| b.is_ascii_graphic()) => {
                let mut d = String::with_capacity(4 + id.len());
                d.push_str("dec_");
                d.push_str(&id);
                d
            }
            _ => w.next_decision_id(now),
        };
        #[cfg(feature = "fault-injection")]
        crate::fault::maybe_panic(src);

        let agent = match identity::resolve(&w.config.identity, src) {
            Ok(a) => a,
            Err(e) => {
                self.raw_target = Some(raw_target(src));
                return self.refuse(w, now, "airlock.no-identity", format!("no agent identity: {}", e.0));
            }
        };
        self.agent = Some(agent);
        self.sse_only = src.header("accept").is_some_and(|a| sse_only(&a));
        let action = match Action::read(&w.config.request, src) {
            Ok(a) => a,
            Err(e) => {
                self.raw_target = Some(raw_target(src));
                return self.refuse(w, now, "airlock.malformed-request", e.0);
            }
        };
        let cap = w.config.request.max_body_bytes;
        let declared = action.content_length;
        self.action = Some(action);
        if end_of_stream {
            return self.evaluate(w, now, Some(0));
        }
        if declared.is_some_and(|n| n > cap) {
            // Known to be over the cap: decide without buffering; the body streams on
            // if (and only if) the policy allows.
            self.body_size_over_cap = declared.unwrap_or(0);
            return self.evaluate(w, now, None);
        }
        self.stage = Stage::Body;
        Step::NeedBody
    }

    /// Body progress: `buffered` bytes are held by the host so far.
    pub fn on_body(
        &mut self,
        w: &mut Worker,
        buffered: usize,
        end_of_stream: bool,
        read: impl FnOnce() -> Option<Vec<u8>>,
        now: SystemTime,
    ) -> Step {
        if self.stage != Stage::Body {
            // Decided already (an allowed over-cap body): let it flow. Anything else —
            // refused, or a call in flight — stays paused.
            return if self.continued { Step::Continue } else { Step::Hold };
        }
        self.buffered = buffered;
        if buffered > w.config.request.max_body_bytes {
            self.body_size_over_cap = buffered;
            return self.evaluate(w, now, None);
        }
        if !end_of_stream {
            return Step::NeedBody;
        }
        match read() {
            Some(bytes) => {
                self.body = bytes;
                let n = self.body.len();
                self.evaluate(w, now, Some(n))
            }
            None if buffered == 0 => self.evaluate(w, now, Some(0)),
            None => self.refuse(w, now, "airlock.body-unreadable", "the request body could not be read".into()),
        }
    }

    /// Request trailers arrived. They end the stream: a request still waiting for its
    /// body is decided now on what was buffered. (Letting trailers pass would let an
    /// HTTP/2 request carry its body upstream undecided: the host resumes a stream whose
    /// trailers callback continues.) While a call is in flight the request stays
    /// paused; after an allow it flows on.
    pub fn on_trailers(&mut self, w: &mut Worker, read: impl FnOnce() -> Option<Vec<u8>>, now: SystemTime) -> Step {
        match self.stage {
            Stage::Body => self.on_body(w, self.buffered, true, read, now),
            // Only a request the flow let through goes on; a refused one was answered.
            Stage::Done if self.continued => Step::Continue,
            Stage::Done => Step::Hold,
            Stage::Headers | Stage::AwaitApproval | Stage::AwaitRedeem => Step::Hold,
        }
    }

    /// The answer to the call from the last [`Step::Call`].
    pub fn on_answer(&mut self, w: &mut Worker, answer: &Answer, now: SystemTime) -> Step {
        let Some(signature) = self.call_signature.take() else {
            return self.unavailable(w, "answer without a call in flight".into());
        };
        if std::mem::take(&mut self.finding) && self.stage == Stage::AwaitApproval && answer.status == Some(404) {
            // No approval to find (or a service that does not know finds): send the full
            // create. Taken even unsigned, as a 404 from a service without the route is:
            // it can only make the filter do what it would have done without the hint,
            // and the create's own answer is verified.
            if let (Some(agent), Some(digest)) = (&self.agent, &self.digest) {
                w.known.forget(&agent.id, digest);
            }
            return self.ask_service(w, now, false);
        }
        let now_s = unix_ms(now) / 1000;
        let status = match callout::verified(&w.config.service, now_s, &signature, answer) {
            Ok(s) => s,
            Err(e) => return self.unavailable(w, e.to_string()),
        };
        match self.stage {
            Stage::AwaitApproval => match callout::parse_approval(status, &answer.body) {
                Ok(state) => self.on_approval_state(w, state, now),
                // Still `unavailable` (the agent-facing types are fixed), but saying why:
                // this agent must wait for reviewers, not for the service to come back.
                Err(CalloutError::TooManyPending) => {
                    w.log_warn(&format!("{}: too many approvals pending for this agent", self.decision_id));
                    self.unavailable_reply(
                        w,
                        "This agent already has as many actions waiting for review as the approval service \
                         allows; the action was not performed. Retry after reviewers have decided some.",
                    )
                }
                Err(e) => self.unavailable(w, e.to_string()),
            },
            Stage::AwaitRedeem => match callout::parse_redeem(status, &answer.body) {
                Ok(r) => self.on_redeemed(w, r),
                Err(e) => self.unavailable(w, e.to_string()),
            },
            _ => self.unavailable(w, "answer in an unexpected stage".into()),
        }
    }

    fn evaluate(&mut self, w: &mut Worker, now: SystemTime, body_len: Option<usize>) -> Step {
        if let Err(why) = self.apply_method_field(w, body_len.is_some()) {
            return self.refuse(w, now, "airlock.malformed-request", why);
        }
        let (Some(action), Some(agent)) = (&self.action, &self.agent) else {
            return self.refuse(w, now, POLICY_ERROR_RULE, "request not read".into());
        };
        let sha = body_len.map(|_| sha256_hex(&self.body));
        let json = body_len.is_some_and(|n| n > 0) && action.is_json();
        // Looked up before the body is parsed: the key holds the body's hash, and a body
        // byte for byte the same as one decided before parses the same way — a JSON body
        // whose parse failed, or a batch, was never remembered. What the parse gave that
        // the flow still needs (the JSON-RPC call) comes back with the decision.
        let size = body_len.unwrap_or(self.body_size_over_cap);
        let keyed = match w.policy.as_ref().map(|p| p.policy.cache_plan()) {
            Some(Plan::On { generation, view }) if w.cache.enabled() => {
                let key = &mut w.cache.scratch;
                key.clear();
                key.extend_from_slice(&generation.to_le_bytes());
                input::cache_key(key, action, agent, size, sha.as_deref(), json, view)
            }
            _ => false,
        };
        if let Some(hit) = keyed.then(|| w.cache.get_scratch()).flatten() {
            w.metrics.count(Counter::CacheHit);
            self.body_sha256 = sha;
            self.digest = hit.digest;
            self.rpc = hit.rpc;
            return self.decide(w, now, hit.decision);
        }
        let facts = match (body_len, sha) {
            (Some(n), Some(sha)) => {
                let parsed = if json {
                    // Only what the serving policy can read of it is built (all of it with
                    // no policy: the request is refused anyway).
                    let view = w.policy.as_ref().map_or(&BodyView::All, |p| p.policy.body_view());
                    match body::read_json_seen(&self.body, view) {
                        Ok(b) => {
                            self.rpc = b.call;
                            match b.batch {
                                Some(Ok(calls)) => {
                                    self.batch = Some(Batch { calls, decisions: Vec::new(), outcome: None, note: None })
                                }
                                // Never partly decided: the upstream would run the calls.
                                Some(Err(e)) => {
                                    self.body_sha256 = Some(sha);
                                    self.digest = self.body_sha256.as_deref().map(|sha| action_digest(action, sha));
                                    let why = format!("The request body is a JSON array that mixes JSON-RPC calls with something else: {e}. No call was performed; send a batch of requests and notifications only, or each message on its own.");
                                    return self.refuse(w, now, BATCH_INVALID_RULE, why);
                                }
                                None => {}
                            }
                            Some(b.value)
                        }
                        // Never evaluated as if absent: the rules that read the body would
                        // not run, and the upstream may read what the policy could not.
                        Err(e) => {
                            let ct = action.content_type.clone().unwrap_or_default();
                            self.body_sha256 = Some(sha);
                            self.digest = self.body_sha256.as_deref().map(|sha| action_digest(action, sha));
                            let why = format!("The request body is not valid JSON, as its content type ({ct}) says it is: {e}. The action was not performed; send well-formed JSON (no duplicate keys, numbers within 64-bit float range, valid UTF-8 without lone surrogates).");
                            return self.refuse(w, now, BODY_UNPARSEABLE_RULE, why);
                        }
                    }
                } else {
                    None
                };
                BodyFacts { size: n, sha256: Some(sha), parsed }
            }
            _ => BodyFacts { size, sha256: None, parsed: None },
        };
        self.body_sha256 = facts.sha256.clone();
        let rpc = self.rpc.as_ref();
        let batch = self.batch.as_ref().map(|b| batch_component(&b.calls));
        let digest_of = |sha: &str| match &batch {
            Some(part) => action_digest(action, part),
            None => action_digest(action, &body_component(sha, rpc)),
        };
        let cap = w.config.request.max_jsonrpc_batch;
        if let Some(n) = self.batch.as_ref().map(|b| b.calls.len()).filter(|n| *n > cap) {
            self.digest = facts.sha256.as_deref().map(digest_of);
            let why = format!(
                "The JSON-RPC batch has {n} calls; this gateway decides at most {cap} in one request \
                 (request.max_jsonrpc_batch). No call of the batch was performed."
            );
            if let Some(b) = self.batch.as_mut() {
                b.note = Some(format!(
                    "It was sent in a JSON-RPC batch of {n} calls, more than the {cap} this gateway decides in one \
                     request, so no call of the batch was performed. Send the calls in smaller batches or one by one."
                ));
            }
            return self.refuse(w, now, BATCH_TOO_LARGE_RULE, why);
        }
        let Some(active) = w.policy.as_mut() else {
            // Fail closed: no bundle has verified yet (or ever).
            self.digest = facts.sha256.as_deref().map(digest_of);
            w.metrics.count(Counter::PolicyError);
            return self.refuse(w, now, POLICY_ERROR_RULE, "no valid policy bundle is loaded".into());
        };
        if self.batch.is_some() {
            // Each call is its own evaluation; batches are never cached.
            self.digest = facts.sha256.as_deref().map(digest_of);
            return self.evaluate_batch(w, now, facts);
        }
        self.digest = facts.sha256.as_deref().map(digest_of);
        let input = input::build(action, agent, &facts, self.digest.as_deref());
        let started = std::time::Instant::now();
        let result = active.policy.evaluate(input);
        w.metrics.eval_time_us(started.elapsed().as_micros() as u64);
        let decision = decision::from_policy_output(result);
        // Allows and approvals are remembered, denies never: the cache can never turn a
        // deny into anything, nor an approval into an allow (`crate::cache`).
        if keyed && matches!(decision.effect, Effect::Allow | Effect::Approve) {
            // The key is still in the cache's scratch space: nothing since the lookup
            // used it.
            let rpc = self.rpc.clone();
            w.cache.insert_scratch(CachedDecision { decision: decision.clone(), digest: self.digest.clone(), rpc });
        }
        if decision.rule.as_deref() == Some(POLICY_ERROR_RULE) {
            w.metrics.count(Counter::PolicyError);
            w.log_warn(&format!("{}: {}", self.decision_id, decision.reason.as_deref().unwrap_or("")));
        }
        self.decide(w, now, decision)
    }

    fn decide(&mut self, w: &mut Worker, now: SystemTime, decision: Decision) -> Step {
        let shadow = w.policy.as_ref().is_some_and(|p| p.shadows(&decision));
        let mut enforced = if shadow { Effect::Allow } else { decision.effect };
        let mut reason = decision.reason.clone().unwrap_or_default();
        if enforced == Effect::Approve && self.digest.is_none() {
            // Never evaluate an approval on a truncated body: no digest, no approval.
            enforced = Effect::Deny;
            reason = format!("request body larger than {} bytes cannot be approved", w.config.request.max_body_bytes);
        }
        if shadow && decision.effect != Effect::Allow {
            w.metrics.count(Counter::ShadowAllow);
        }
        if enforced != Effect::Approve {
            self.record(w, now, &decision, enforced, shadow);
        }
        let rule = decision.rule.clone();
        self.decision = Some(decision);
        self.enact(w, now, enforced, reason, rule)
    }

    /// Each call of a batch is evaluated on its own, as if it came alone (with the
    /// batch beside it, `input.request.jsonrpc_batch`); never from the cache.
    /// A form body's `_method` field (`crate::method_field`): refused, or made the
    /// action's method. A POST form over the buffer cap cannot be checked, so it is refused.
    fn apply_method_field(&mut self, w: &Worker, buffered: bool) -> Result<(), String> {
        let Some(action) = self.action.as_ref() else { return Ok(()) };
        if !method_field::is_form(action.content_type.as_deref()) {
            return Ok(());
        }
        if !buffered {
            if action.method != "POST" {
                return Ok(());
            }
            return Err(format!(
                "a form body larger than {} bytes cannot be checked for a `_method` field, which would let the \
                 upstream run another method; send a smaller body or the intended method itself",
                w.config.request.max_body_bytes
            ));
        }
        let values: Vec<String> = method_field::in_body(action.content_type.as_deref(), &self.body)?
            .into_iter()
            .map(|v| v.into_owned())
            .collect();
        let refs: Vec<&str> = values.iter().map(String::as_str).collect();
        if let Some(named) = method_field::requested(w.config.request.method_override, &action.method, &refs, "body")? {
            if let Some(a) = self.action.as_mut() {
                a.method = named;
            }
        }
        Ok(())
    }

    fn evaluate_batch(&mut self, w: &mut Worker, now: SystemTime, facts: BodyFacts) -> Step {
        let messages: Vec<regorus::Value> = match &facts.parsed {
            Some(regorus::Value::Array(a)) => a.iter().cloned().collect(),
            _ => Vec::new(),
        };
        let n = self.batch.as_ref().map_or(0, |b| b.calls.len());
        let views = input::jsonrpc_views(&messages).filter(|_| n > 0 && messages.len() == n);
        let (Some(views), Some(action), Some(agent), Some(active)) =
            (views, &self.action, &self.agent, w.policy.as_mut())
        else {
            // The strict reader and the engine disagree on the batch: fail closed.
            w.metrics.count(Counter::PolicyError);
            return self.refuse(w, now, POLICY_ERROR_RULE, "the JSON-RPC batch could not be evaluated".into());
        };
        let mut decided = Vec::with_capacity(n);
        let mut errors = Vec::new();
        for (i, message) in messages.into_iter().enumerate() {
            let call = BodyFacts { size: facts.size, sha256: facts.sha256.clone(), parsed: Some(message) };
            let input = input::build_batch_call(action, agent, &call, self.digest.as_deref(), &views, i);
            let started = std::time::Instant::now();
            let result = active.policy.evaluate(input);
            w.metrics.eval_time_us(started.elapsed().as_micros() as u64);
            let decision = decision::from_policy_output(result);
            if decision.rule.as_deref() == Some(POLICY_ERROR_RULE) {
                w.metrics.count(Counter::PolicyError);
                errors.push(format!("{}#{}: {}", self.decision_id, i + 1, decision.reason.as_deref().unwrap_or("")));
            }
            let shadow = active.shadows(&decision);
            decided.push((decision, shadow));
        }
        for e in errors {
            w.log_warn(&e);
        }
        self.decide_batch(w, now, decided)
    }

    /// The strictest effect of the calls decides the batch: deny > approve > allow.
    /// `decided`: per call, its decision and whether it is only shadowed.
    fn decide_batch(&mut self, w: &mut Worker, now: SystemTime, decided: Vec<(Decision, bool)>) -> Step {
        let enforced: Vec<Effect> =
            decided.iter().map(|(d, shadow)| if *shadow { Effect::Allow } else { d.effect }).collect();
        for (d, shadow) in &decided {
            if *shadow && d.effect != Effect::Allow {
                w.metrics.count(Counter::ShadowAllow);
            }
        }
        let worst = enforced.iter().copied().max_by_key(|e| rank(*e));
        let cause = worst.and_then(|worst| enforced.iter().position(|e| *e == worst));
        let (Some(batch), Some(worst), Some(cause), Some((cause_d, _))) =
            (self.batch.as_mut(), worst, cause, cause.and_then(|c| decided.get(c)))
        else {
            return self.refuse(w, now, POLICY_ERROR_RULE, "an empty JSON-RPC batch cannot be decided".into());
        };
        let n = batch.calls.len();
        let because = |d: &Decision| d.reason.as_deref().filter(|r| !r.is_empty()).map(|r| format!(" ({r})"));
        let (outcome, combined, note) = match worst {
            Effect::Allow => (Effect::Allow, cause_d.clone(), None),
            Effect::Deny => {
                let mut d = Decision::deny(
                    "",
                    format!("{} was refused: {}", batch.describe(cause), cause_d.reason.as_deref().unwrap_or("")),
                );
                d.rule = cause_d.rule.clone();
                d.risk = cause_d.risk;
                let note = format!(
                    "It was sent in a JSON-RPC batch of {n} calls, which goes upstream only as a whole, and {} was \
                     refused by policy{}; so no call of the batch was performed. This call itself was not refused: \
                     send it again without the refused call.",
                    batch.describe(cause),
                    because(cause_d).unwrap_or_default()
                );
                (Effect::Deny, d, Some(note))
            }
            Effect::Approve => {
                let approving: Vec<usize> = (0..n).filter(|i| enforced.get(*i) == Some(&Effect::Approve)).collect();
                let terms =
                    |d: &Decision| (d.approvers.clone(), d.credential.clone(), d.expires_in.clone(), d.reuse.clone());
                let differs = approving
                    .iter()
                    .copied()
                    .find(|i| decided.get(*i).is_some_and(|(d, _)| terms(d) != terms(cause_d)));
                match differs {
                    Some(other) => {
                        let (a, b) = (batch.describe(cause), batch.describe(other));
                        let d = Decision::deny(
                            BATCH_MIXED_APPROVALS_RULE,
                            format!(
                                "{a} and {b} need different approvals (approvers, credential, expiry or reuse), which \
                                 one approval of the batch cannot give. No call was performed; send them in separate \
                                 requests."
                            ),
                        );
                        let note = format!(
                            "It was sent in a JSON-RPC batch whose calls need different approvals ({a}, {b}), which \
                             one approval cannot give, so no call of the batch was performed. Send the calls that need \
                             approval in separate requests."
                        );
                        (Effect::Deny, d, Some(note))
                    }
                    None => {
                        let mut d = cause_d.clone();
                        let reasons: Vec<String> = approving
                            .iter()
                            .filter_map(|i| {
                                decided.get(*i).map(|(d, _)| {
                                    format!("{}: {}", batch.describe(*i), d.reason.as_deref().unwrap_or(""))
                                })
                            })
                            .collect();
                        d.reason = Some(format!(
                            "JSON-RPC batch of {n} calls, approved as a whole (its other calls are allowed by \
                             policy); {}",
                            reasons.join("; ")
                        ));
                        d.risk = approving
                            .iter()
                            .filter_map(|i| decided.get(*i).and_then(|(d, _)| d.risk))
                            .max_by_key(|r| risk_rank(*r));
                        // Each call's `redact` applies to its own message (`request_approval`).
                        d.redact = Vec::new();
                        d.shadow = None;
                        let note = format!(
                            "It was sent in a JSON-RPC batch of {n} calls, which needs one approval as a whole because \
                             {} needs approval{}. Retry the identical batch (the same calls in the same order; new ids \
                             are fine).",
                            batch.describe(cause),
                            because(cause_d).unwrap_or_default()
                        );
                        (Effect::Approve, d, Some(note))
                    }
                }
            }
        };
        batch.decisions = decided.iter().zip(&enforced).map(|((d, _), e)| (d.clone(), *e)).collect();
        batch.outcome = Some(outcome);
        batch.note = note;
        if outcome != Effect::Approve {
            // One record per call (`<decision id>#<n>`), enforced as the batch was; a
            // refused batch also gets the batch's own record under the decision id.
            for (i, (d, shadow)) in decided.iter().enumerate() {
                let id = format!("{}#{}", self.decision_id, i + 1);
                self.record_as(w, now, id, d, outcome, *shadow);
            }
            if outcome == Effect::Deny {
                self.record(w, now, &combined, Effect::Deny, false);
            }
        }
        let rule = combined.rule.clone();
        let reason = combined.reason.clone().unwrap_or_default();
        self.decision = Some(combined);
        self.enact(w, now, outcome, reason, rule)
    }

    /// Carry out the enforced effect.
    fn enact(
        &mut self,
        w: &mut Worker,
        now: SystemTime,
        enforced: Effect,
        reason: String,
        rule: Option<String>,
    ) -> Step {
        match enforced {
            Effect::Allow => {
                w.metrics.count(Counter::Allow);
                self.stage = Stage::Done;
                self.continued = true;
                // Taken, not cloned: nothing reads the action's header list after an allow.
                match self.action.as_mut().map(|a| std::mem::take(&mut a.airlock_headers)).filter(|h| !h.is_empty()) {
                    Some(remove) => Step::ContinueWith(HeaderEdits { remove, set: vec![] }),
                    None => Step::Continue,
                }
            }
            Effect::Deny => {
                w.metrics.count(Counter::Deny);
                self.stage = Stage::Done;
                let mut p = Problem::new(ProblemKind::Denied, &self.decision_id, reason.clone());
                p.rule = rule;
                p.reason = Some(reason);
                if self.digest.is_none() && self.decision.as_ref().is_some_and(|d| d.effect == Effect::Approve) {
                    p.status = Some(413);
                }
                self.reply(w, &p)
            }
            Effect::Approve => {
                w.metrics.count(Counter::Approve);
                self.request_approval(w, now)
            }
        }
    }

    /// Ask the service for this action's approval: only to find it when the service is
    /// known to hold one (`crate::known`) or the agent names one (a named approval is
    /// never created anyway), else the full create-or-find with the redacted body.
    fn request_approval(&mut self, w: &mut Worker, now: SystemTime) -> Step {
        let known = match (&self.action, &self.agent, &self.digest) {
            (Some(action), _, _) if action.approval_hint.is_some() => true,
            (_, Some(agent), Some(digest)) => w.known.contains(&agent.id, digest),
            _ => false,
        };
        self.ask_service(w, now, known)
    }

    /// `find`: the body-less find (`callout::APPROVALS_FIND_PATH`); else create-or-find.
    fn ask_service(&mut self, w: &mut Worker, now: SystemTime, find: bool) -> Step {
        let (Some(action), Some(agent), Some(decision), Some(digest), Some(body_sha256)) =
            (&self.action, &self.agent, &self.decision, &self.digest, &self.body_sha256)
        else {
            return self.unavailable(w, "approval requested without a complete action".into());
        };
        let hold = decision.hold().unwrap_or(Duration::from_millis(w.config.service.hold_ms));
        let hold_ms = hold.as_millis() as u64;
        let body = match &self.batch {
            // A find carries no body: the service has the one reviewers were shown.
            _ if find => None,
            Some(b) => {
                let paths: Vec<&[String]> = b.decisions.iter().map(|(d, _)| d.redact.as_slice()).collect();
                redacted_batch_body(&self.body, &paths)
            }
            None if action.is_json() => redacted_json_body(&self.body, &decision.redact),
            None => None,
        };
        let request = crate::wire::approval_request(
            &self.decision_id,
            action,
            agent,
            digest,
            decision,
            w.policy_revision(),
            hold_ms,
            body,
            self.body.len(),
            body_sha256,
        );
        self.stage = Stage::AwaitApproval;
        let path = if find { callout::APPROVALS_FIND_PATH } else { callout::APPROVALS_PATH };
        let step = self.send(w, now, path.to_string(), request, hold_ms + w.config.service.timeout_ms);
        self.finding = find && matches!(step, Step::Call(_));
        step
    }

    fn send(&mut self, w: &mut Worker, now: SystemTime, path: String, body: Vec<u8>, timeout_ms: u64) -> Step {
        match callout::signed_post(&w.config.service, unix_ms(now) / 1000, &path, body, timeout_ms) {
            Some(call) => {
                // Only the signature is kept (the answer is bound to it), not a copy of
                // the body just handed to the host.
                self.call_signature = Some(call.signature.clone());
                Step::Call(call)
            }
            None => self.unavailable(w, "could not sign the call".into()),
        }
    }

    fn on_approval_state(&mut self, w: &mut Worker, state: callout::ApprovalState, now: SystemTime) -> Step {
        if let (Some(agent), Some(digest)) = (&self.agent, &self.digest) {
            // What a find would find again: an approval the service holds for this
            // action, live or denied (a denial answers retries for its window).
            match state.status {
                ApprovalStatus::Pending
                | ApprovalStatus::Approved
                | ApprovalStatus::Denied
                | ApprovalStatus::Cancelled
                    if state.approval_id.is_some() =>
                {
                    w.known.remember(&agent.id, digest)
                }
                _ => w.known.forget(&agent.id, digest),
            }
        }
        let retry_after = state.retry_after.unwrap_or(w.config.service.retry_after_s);
        let kind = match state.status {
            ApprovalStatus::Approved => {
                let (Some(agent), Some(digest), Some(approval_id)) = (&self.agent, &self.digest, state.approval_id)
                else {
                    return self.unavailable(w, "approved without a digest or an approval id".into());
                };
                let body = crate::wire::redeem_request(&self.decision_id, &agent.id, digest);
                let path = format!("{}/{}/redeem", callout::APPROVALS_PATH, approval_id);
                self.approval_id = Some(approval_id);
                self.stage = Stage::AwaitRedeem;
                let timeout = w.config.service.timeout_ms;
                return self.send(w, now, path, body, timeout);
            }
            ApprovalStatus::Pending => ProblemKind::ApprovalPending,
            ApprovalStatus::Denied | ApprovalStatus::Cancelled => ProblemKind::ApprovalDenied,
            ApprovalStatus::Expired => ProblemKind::ApprovalExpired,
            ApprovalStatus::Mismatch => ProblemKind::Denied,
        };
        self.stage = Stage::Done;
        let reason = self.policy_reason();
        let because = reason.as_deref().map(|r| format!(" Reason: {r}.")).unwrap_or_default();
        let approval = state.approval_id.as_deref().unwrap_or("unknown");
        // Said in the filter's words: the service's `detail` is not shown.
        let (detail, next_step) = match kind {
            ProblemKind::ApprovalPending => (
                format!("A reviewer must approve this action before it runs (approval id {approval}).{because}"),
                Some(format!(
                    "Retry the identical request in about {retry_after} seconds: it runs once approved, and until \
                     then you get this answer again."
                )),
            ),
            ProblemKind::ApprovalDenied => {
                let comment =
                    state.comment.as_deref().map(|c| format!(" The reviewer's comment: \"{c}\".")).unwrap_or_default();
                let next = match &state.denied_until {
                    Some(t) => format!(
                        "Do not retry it unless the user asks: until {t} the identical request gets this same \
                         answer, and after that a retry asks the reviewers again."
                    ),
                    None => "Do not retry it unless the user asks: a retry asks the reviewers again.".into(),
                };
                (format!("A reviewer denied this action (approval id {approval}).{comment}{because}"), Some(next))
            }
            ProblemKind::ApprovalExpired => (
                format!("The approval for this action (approval id {approval}) expired before it was used.{because}"),
                Some("Retry the identical request to ask the reviewers again.".into()),
            ),
            // A policy the service refuses (422): its detail says what to do.
            _ => match state.refused {
                Some(refused) => (refused, None),
                None => (
                    "The approval named in x-airlock-approval does not cover this request.".into(),
                    Some("Retry without x-airlock-approval (or naming the approval of this request).".into()),
                ),
            },
        };
        let mut p = Problem::new(kind, &self.decision_id, detail);
        p.next_step = next_step;
        p.approval_id = state.approval_id;
        p.rule = self.decision.as_ref().and_then(|d| d.rule.clone());
        p.reason = reason;
        if kind == ProblemKind::ApprovalDenied {
            p.comment = state.comment;
            p.denied_until = state.denied_until;
        }
        if kind == ProblemKind::ApprovalPending {
            p.retry_after = Some(retry_after);
            p.approvers = self.decision.as_ref().and_then(|d| d.approvers.clone());
        }
        self.reply(w, &p)
    }

    /// The policy's reason for the decision being enforced, if it gave one.
    fn policy_reason(&self) -> Option<String> {
        self.decision.as_ref().and_then(|d| d.reason.clone()).filter(|r| !r.trim().is_empty())
    }

    fn on_redeemed(&mut self, w: &mut Worker, redeemed: Redeemed) -> Step {
        self.stage = Stage::Done;
        if let (Some(agent), Some(digest)) = (&self.agent, &self.digest) {
            // Used, refused or expired: the next identical request asks afresh.
            w.known.forget(&agent.id, digest);
        }
        match redeemed {
            Redeemed::Credential(set) => {
                w.metrics.count(Counter::CredentialInjected);
                self.continued = true;
                let mut remove = w.config.request.credential_headers.clone();
                if let Some(a) = &self.action {
                    remove.extend(a.airlock_headers.iter().cloned());
                }
                Step::ContinueWith(HeaderEdits { remove, set })
            }
            Redeemed::Refused(why) => {
                let mut p = Problem::new(
                    ProblemKind::Denied,
                    &self.decision_id,
                    format!("The approval cannot be used for this request ({why})."),
                );
                p.approval_id = self.approval_id.clone();
                p.reason = self.policy_reason();
                p.next_step =
                    Some("Retry the identical request without x-airlock-approval to ask for a new approval.".into());
                self.reply(w, &p)
            }
            Redeemed::Expired => {
                let mut p = Problem::new(
                    ProblemKind::ApprovalExpired,
                    &self.decision_id,
                    "The approval for this action expired before it was used.",
                );
                p.approval_id = self.approval_id.clone();
                p.reason = self.policy_reason();
                self.reply(w, &p)
            }
        }
    }

    /// How this agent is answered: a JSON-RPC response to a JSON-RPC request (unless
    /// configured off), problem+json to anything else — notifications included, which
    /// JSON-RPC gives no response (MCP: an HTTP error status).
    fn answering(&self, w: &Worker) -> Answering {
        match &self.rpc {
            Some(RpcCall { id: Some(id), method, tool, .. }) if w.config.jsonrpc_answers => {
                Answering::JsonRpc(RpcAnswer {
                    id: id.clone(),
                    method: method.clone(),
                    tool: tool.clone(),
                    sse: self.sse_only,
                })
            }
            _ => Answering::Http,
        }
    }

    fn reply(&self, w: &Worker, p: &Problem) -> Step {
        if let Some(b) = self.batch.as_ref().filter(|_| w.config.jsonrpc_answers) {
            let answers: Vec<(Problem, RpcAnswer)> = b
                .calls
                .iter()
                .enumerate()
                .filter_map(|(i, c)| {
                    let id = c.id.clone()?;
                    let call = RpcAnswer { id, method: c.method.clone(), tool: c.tool.clone(), sse: self.sse_only };
                    Some((self.batch_problem(b, i, p), call))
                })
                .collect();
            // A batch of notifications only has no JSON-RPC answer: problem+json.
            if !answers.is_empty() {
                return Step::Reply(p.to_batch_reply(&answers, self.sse_only));
            }
        }
        Step::Reply(p.to_reply(&self.answering(w)))
    }

    /// The answer to call `i` of a batch whose answer is `p`: a call the policy itself
    /// refused gets its own refusal; every other call gets `p` with the batch's note
    /// (why the batch as a whole was not performed, and what to do).
    fn batch_problem(&self, b: &Batch, i: usize, p: &Problem) -> Problem {
        if p.kind == ProblemKind::Denied && b.outcome == Some(Effect::Deny) {
            if let Some((d, Effect::Deny)) = b.decisions.get(i) {
                let mut own =
                    Problem::new(ProblemKind::Denied, &self.decision_id, d.reason.clone().unwrap_or_default());
                own.rule = d.rule.clone();
                own.reason = d.reason.clone();
                return own;
            }
        }
        let mut q = p.clone();
        q.batch_note = b.note.clone();
        q
    }

    /// Refuse before or instead of policy evaluation.
    fn refuse(&mut self, w: &mut Worker, now: SystemTime, rule: &str, reason: String) -> Step {
        let decision = Decision::deny(rule, reason.clone());
        self.record(w, now, &decision, Effect::Deny, false);
        w.metrics.count(Counter::Deny);
        self.stage = Stage::Done;
        let mut p = Problem::new(ProblemKind::Denied, &self.decision_id, reason.clone());
        p.rule = Some(rule.to_string());
        p.reason = Some(reason);
        self.reply(w, &p)
    }

    fn unavailable(&mut self, w: &mut Worker, why: String) -> Step {
        w.metrics.count(Counter::CalloutFailure);
        w.log_warn(&format!("{}: approval service unusable: {why}", self.decision_id));
        self.unavailable_reply(
            w,
            "The approval service could not be reached; the action was not performed. Retry later.",
        )
    }

    /// The agent's `unavailable` answer (503, `Retry-After`) with `detail`.
    fn unavailable_reply(&mut self, w: &Worker, detail: &str) -> Step {
        self.stage = Stage::Done;
        let mut p = Problem::new(ProblemKind::Unavailable, &self.decision_id, detail);
        p.approval_id = self.approval_id.clone();
        p.reason = self.policy_reason();
        p.retry_after = Some(w.config.service.retry_after_s);
        self.reply(w, &p)
    }

    fn record(&self, w: &mut Worker, now: SystemTime, decision: &Decision, enforced: Effect, shadow: bool) {
        self.record_as(w, now, self.decision_id.clone(), decision, enforced, shadow)
    }

    fn record_as(
        &self,
        w: &mut Worker,
        now: SystemTime,
        decision_id: String,
        decision: &Decision,
        enforced: Effect,
        shadow: bool,
    ) {
        let action = self.action.as_ref();
        let record = Record {
            decision_id,
            time_ms: unix_ms(now),
            effect: decision.effect,
            enforced,
            mode: if shadow { airlock_protocol::Mode::Shadow } else { airlock_protocol::Mode::Enforce },
            rule: decision.rule_or_default().to_string(),
            reason: decision.reason.clone().unwrap_or_default(),
            risk: decision.risk,
            policy_revision: w.policy_revision().to_string(),
            agent: self.agent.as_ref().map(|a| a.id.clone()).unwrap_or_default(),
            digest: self.digest.clone(),
            method: String::new(),
            host: String::new(),
            path: String::new(),
        };
        let record = match (action, &self.raw_target) {
            (Some(a), _) => Record { method: a.method.clone(), host: a.host.clone(), path: a.path.clone(), ..record },
            (None, Some((m, h, p))) => Record { method: m.clone(), host: h.clone(), path: p.clone(), ..record },
            (None, None) => record,
        };
        if !w.log.push(record) {
            w.metrics.count(Counter::LogDropped);
        }
    }
}

#[cfg(test)]
mod batch_tests;
#[cfg(test)]
mod find_tests;
#[cfg(test)]
mod mcp_tests;
#[cfg(test)]
mod method_field_tests;
#[cfg(test)]
mod tests;
