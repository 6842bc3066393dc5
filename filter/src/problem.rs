//! What the agent gets back when its call does not go through, in its own protocol:
//! RFC 9457 `application/problem+json` (never a 2xx) for HTTP; for a JSON-RPC (MCP)
//! call, the JSON-RPC response its client expects, carrying the same problem
//! (`docs/mcp.md`). This is the one builder of agent-facing refusals.

use crate::decision::Approvers;
use serde::Serialize;

/// The kinds of refusal, as `urn:airlock:problem:<kind>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProblemKind {
    Denied,
    ApprovalPending,
    ApprovalDenied,
    ApprovalExpired,
    Unavailable,
}

impl ProblemKind {
    fn slug(self) -> &'static str {
        match self {
            ProblemKind::Denied => "denied",
            ProblemKind::ApprovalPending => "approval-pending",
            ProblemKind::ApprovalDenied => "approval-denied",
            ProblemKind::ApprovalExpired => "approval-expired",
            ProblemKind::Unavailable => "unavailable",
        }
    }

    fn title(self) -> &'static str {
        match self {
            ProblemKind::Denied => "Denied by policy",
            ProblemKind::ApprovalPending => "Approval pending",
            ProblemKind::ApprovalDenied => "Approval denied",
            ProblemKind::ApprovalExpired => "Approval expired",
            ProblemKind::Unavailable => "Approval service unavailable",
        }
    }

    fn status(self) -> u32 {
        match self {
            ProblemKind::Unavailable => 503,
            _ => 403,
        }
    }

    /// The usual advice appended to the problem+json `detail` (see [`Problem::next_step`]).
    fn next_step(self) -> Option<&'static str> {
        match self {
            ProblemKind::Denied => Some("Do not retry the same request; it will be refused again."),
            ProblemKind::ApprovalExpired => Some("Retry the identical request to ask the reviewers again."),
            ProblemKind::ApprovalPending | ProblemKind::ApprovalDenied | ProblemKind::Unavailable => None,
        }
    }

    /// JSON-RPC error code for a method other than `tools/call` (implementation-defined
    /// server errors, -32000 to -32099; clear of the codes MCP defines).
    pub fn jsonrpc_code(self) -> i32 {
        match self {
            ProblemKind::Denied => -32010,
            ProblemKind::ApprovalPending => -32011,
            ProblemKind::ApprovalDenied => -32012,
            ProblemKind::ApprovalExpired => -32013,
            ProblemKind::Unavailable => -32014,
        }
    }
}

/// How the agent is answered.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Answering {
    /// `application/problem+json` with the problem's status.
    #[default]
    Http,
    /// A JSON-RPC response to this call, HTTP 200.
    JsonRpc(RpcAnswer),
}

/// What a JSON-RPC answer needs from the call it answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RpcAnswer {
    /// The call's `id`, as JSON text, echoed as is.
    pub id: String,
    pub method: String,
    pub tool: Option<String>,
    /// Answer as one server-sent event (the client accepts `text/event-stream` only).
    pub sse: bool,
}

/// Key of the problem in a tool result's `_meta`.
pub const META_KEY: &str = "airlock/problem";

/// A refusal ready to be sent as a local reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub kind: ProblemKind,
    pub detail: String,
    pub decision_id: String,
    pub approval_id: Option<String>,
    pub retry_after: Option<u64>,
    pub rule: Option<String>,
    /// Overrides the kind's status (413 for a body over the cap).
    pub status: Option<u32>,
    /// The policy's reason, for the model-facing text of a JSON-RPC answer.
    pub reason: Option<String>,
    /// Who must approve (pending approvals).
    pub approvers: Option<Approvers>,
    /// For a call of a JSON-RPC batch answered for the batch as a whole: what happened
    /// to the batch and what to do, in the model-facing text. For a `denied` answer it
    /// replaces the refusal's own words (this call was not the one refused).
    pub batch_note: Option<String>,
    /// What the agent should do next, appended to the problem+json `detail`; `None` when
    /// `detail` already says it. [`Problem::new`] sets the kind's usual advice.
    pub next_step: Option<String>,
    /// `approval-denied`: the reviewer's comment.
    pub comment: Option<String>,
    /// `approval-denied`: until when (RFC 3339) an identical retry gets this same answer.
    pub denied_until: Option<String>,
}

#[derive(Serialize)]
struct Body<'a> {
    #[serde(rename = "type")]
    type_: String,
    title: &'a str,
    status: u32,
    detail: &'a str,
    decision_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    approval_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    retry_after: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rule: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    approvers: Option<&'a Approvers>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reviewer_comment: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    denied_until: Option<&'a str>,
}

/// A local reply: status, headers and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u32,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

impl Problem {
    pub fn new(kind: ProblemKind, decision_id: &str, detail: impl Into<String>) -> Problem {
        Problem {
            kind,
            detail: detail.into(),
            decision_id: decision_id.to_string(),
            approval_id: None,
            retry_after: None,
            rule: None,
            status: None,
            reason: None,
            approvers: None,
            batch_note: None,
            next_step: kind.next_step().map(str::to_string),
            comment: None,
            denied_until: None,
        }
    }

    /// The policy's reason, if it gave one.
    fn reason(&self) -> Option<&str> {
        self.reason.as_deref().map(str::trim).filter(|r| !r.is_empty())
    }

    /// The problem+json `detail`: what happened, then what to do.
    fn full_detail(&self) -> String {
        match &self.next_step {
            Some(next) if !self.detail.is_empty() => format!("{} {next}", sentence(&self.detail)),
            Some(next) => next.clone(),
            None => self.detail.clone(),
        }
    }

    pub fn status(&self) -> u32 {
        self.status.unwrap_or_else(|| self.kind.status())
    }

    fn body<'a>(&'a self, detail: &'a str) -> Body<'a> {
        Body {
            type_: format!("urn:airlock:problem:{}", self.kind.slug()),
            title: self.kind.title(),
            status: self.status(),
            detail,
            decision_id: &self.decision_id,
            approval_id: self.approval_id.as_deref(),
            retry_after: self.retry_after,
            rule: self.rule.as_deref(),
            reason: self.reason(),
            approvers: self.approvers.as_ref(),
            reviewer_comment: self.comment.as_deref(),
            denied_until: self.denied_until.as_deref(),
        }
    }

    /// The answer to send, in the protocol of the call refused.
    pub fn to_reply(&self, answering: &Answering) -> Reply {
        let mut headers = vec![
            ("content-type", String::new()),
            ("cache-control", "no-store".to_string()),
            ("x-airlock-decision-id", self.decision_id.clone()),
        ];
        if let Some(r) = self.retry_after {
            headers.push(("retry-after", r.to_string()));
        }
        let (status, content_type, body) = match answering {
            Answering::Http => {
                // Serializing plain strings and numbers cannot fail; fall back to a fixed
                // body rather than ever sending nothing.
                let detail = self.full_detail();
                let body = serde_json::to_vec(&self.body(&detail))
                    .unwrap_or_else(|_| b"{\"type\":\"urn:airlock:problem:denied\"}".to_vec());
                (self.status(), "application/problem+json", body)
            }
            Answering::JsonRpc(call) => {
                let json = self.jsonrpc_response(call);
                if call.sse {
                    let mut event = b"event: message\ndata: ".to_vec();
                    event.extend_from_slice(json.as_bytes());
                    event.extend_from_slice(b"\n\n");
                    (200, "text/event-stream", event)
                } else {
                    (200, "application/json", json.into_bytes())
                }
            }
        };
        headers[0].1 = content_type.to_string();
        Reply { status, headers, body }
    }

    /// The answer to a refused JSON-RPC batch: HTTP 200 with a JSON array holding one
    /// response per request (`answers`, each with its own problem), in batch order;
    /// headers from `self`, the batch's problem. `answers` must not be empty: a batch of
    /// notifications has no JSON-RPC answer (answer it with [`Problem::to_reply`]).
    pub fn to_batch_reply(&self, answers: &[(Problem, RpcAnswer)], sse: bool) -> Reply {
        let mut reply = self.to_reply(&Answering::Http);
        let mut json = String::from("[");
        for (i, (p, call)) in answers.iter().enumerate() {
            if i > 0 {
                json.push(',');
            }
            json.push_str(&p.jsonrpc_response(call));
        }
        json.push(']');
        let (content_type, body) = if sse {
            let mut event = b"event: message\ndata: ".to_vec();
            event.extend_from_slice(json.as_bytes());
            event.extend_from_slice(b"\n\n");
            ("text/event-stream", event)
        } else {
            ("application/json", json.into_bytes())
        };
        reply.status = 200;
        reply.body = body;
        if let Some(h) = reply.headers.iter_mut().find(|(k, _)| *k == "content-type") {
            h.1 = content_type.to_string();
        }
        reply
    }

    /// The JSON-RPC response text: a tool result with `isError` for `tools/call`, an
    /// error for any other method; the problem rides along in both.
    fn jsonrpc_response(&self, call: &RpcAnswer) -> String {
        let detail = self.full_detail();
        let problem = serde_json::to_value(self.body(&detail)).unwrap_or(serde_json::Value::Null);
        let text = self.model_text(call);
        let (member, payload) = if call.method == "tools/call" {
            // The problem goes in `_meta`, not `structuredContent`: clients validate
            // `structuredContent` against the tool's output schema (the TypeScript SDK
            // even on errors), and a refusal matches no tool's schema.
            let mut meta = serde_json::Map::new();
            meta.insert(META_KEY.into(), problem);
            ("result", serde_json::json!({"content": [{"type": "text", "text": text}], "isError": true, "_meta": meta}))
        } else {
            ("error", serde_json::json!({"code": self.kind.jsonrpc_code(), "message": text, "data": problem}))
        };
        // Serializing a `json!` value cannot fail; `null` keeps the envelope well-formed.
        let payload = serde_json::to_string(&payload).unwrap_or_else(|_| "null".into());
        // `id` is JSON text from the strict reader: spliced as sent, so a client matching
        // responses to requests finds its own id, number or string, unchanged.
        format!("{{\"jsonrpc\":\"2.0\",\"id\":{},\"{member}\":{payload}}}", call.id)
    }

    /// What the model reads: what happened, that the call did not run, why (the policy's
    /// reason, a reviewer's comment) and what to do next.
    pub fn model_text(&self, call: &RpcAnswer) -> String {
        let what = match &call.tool {
            Some(t) => format!("The call to tool `{t}`"),
            None => format!("The `{}` request", call.method),
        };
        let because = self.reason().map(|r| format!(" Reason: {}", sentence(r))).unwrap_or_default();
        let ids = match &self.approval_id {
            Some(a) => format!(" (approval id {a}, decision id {})", self.decision_id),
            None => format!(" (decision id {})", self.decision_id),
        };
        let wait = self.retry_after.map(|s| format!(" in about {s} seconds")).unwrap_or_default();
        let note = match (&self.batch_note, self.kind) {
            (Some(note), ProblemKind::Denied) => {
                return format!("{what} was NOT performed. {}", with_ids(note, &ids));
            }
            (Some(note), _) => format!(" {note}"),
            (None, _) => String::new(),
        };
        let text = match self.kind {
            ProblemKind::ApprovalPending => {
                let who = match &self.approvers {
                    Some(a) if !a.groups.is_empty() => {
                        let n =
                            if a.quorum <= 1 { "one approval".to_string() } else { format!("{} approvals", a.quorum) };
                        format!(" It needs {n} from a member of: {}.", a.groups.join(", "))
                    }
                    _ => " It needs a human reviewer's approval.".to_string(),
                };
                format!(
                    "{what} was NOT performed: it needs human approval first, and the approval is pending.{who}{because} \
                     Tell the user it is waiting for approval{ids}. Retry exactly the same call (same tool, same \
                     arguments){wait}: it runs once approved, and until then you get this message again. A changed \
                     call needs a new approval."
                )
            }
            ProblemKind::Denied => {
                // The refusal's words are the policy's reason, or what else refused it
                // (the approval service, the request itself) with the policy's reason beside.
                let cause = match self.reason() {
                    Some(r) if !self.detail.contains(r) => {
                        format!("{} The policy's reason: {r}", sentence(&self.detail))
                    }
                    _ => self.detail.clone(),
                };
                format!(
                    "{what} was NOT performed: it was refused by policy. {} Do not retry the same call; it will be \
                     refused again.",
                    with_ids(&cause, &ids)
                )
            }
            ProblemKind::ApprovalDenied => {
                let comment =
                    self.comment.as_deref().map(|c| format!(" The reviewer's comment: \"{c}\".")).unwrap_or_default();
                let asked = match self.reason() {
                    Some(r) => format!("The policy asked for approval because: {r}"),
                    None => "The policy asked for a human's approval".to_string(),
                };
                let next = match &self.denied_until {
                    Some(t) => format!(
                        "Do not retry it unless the user asks you to: until {t} the same call gets this same answer, \
                         and after that a retry asks the reviewers again."
                    ),
                    None => "Do not retry it unless the user asks you to; a retry asks the reviewers again.".into(),
                };
                format!(
                    "{what} was NOT performed: a human reviewer denied it.{comment} {} Tell the user it was denied. \
                     {next}",
                    with_ids(&asked, &ids)
                )
            }
            ProblemKind::ApprovalExpired => format!(
                "{what} was NOT performed: {} Retrying the same call asks the reviewers again.",
                with_ids(&format!("its approval expired before it was used.{because}"), &ids)
            ),
            ProblemKind::Unavailable => format!(
                "{what} was NOT performed: the gateway could not get a decision for it. {} Retry the same call \
                 later{wait}.",
                with_ids(&format!("{}{because}", sentence(&self.detail)), &ids)
            ),
        };
        text + &note
    }
}

/// `s` as a sentence: trimmed, ending in a full stop (or its own `!`/`?`).
fn sentence(s: &str) -> String {
    let s = s.trim();
    if s.is_empty() || s.ends_with(['.', '!', '?']) {
        s.to_string()
    } else {
        format!("{s}.")
    }
}

/// `s` as a sentence with the ids in parentheses before its full stop.
fn with_ids(s: &str, ids: &str) -> String {
    let s = s.trim();
    let s = s.strip_suffix('.').unwrap_or(s);
    format!("{s}{ids}.")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn pending_reply_has_type_id_and_retry_after() {
        let mut p = Problem::new(ProblemKind::ApprovalPending, "dec_1", "A reviewer must approve");
        p.approval_id = Some("apr_1".into());
        p.retry_after = Some(10);
        let r = p.to_reply(&Answering::Http);
        assert_eq!(r.status, 403);
        assert!(r.headers.contains(&("retry-after", "10".to_string())));
        assert!(r.headers.contains(&("content-type", "application/problem+json".to_string())));
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(v["type"], "urn:airlock:problem:approval-pending");
        assert_eq!(v["approval_id"], "apr_1");
        assert_eq!(v["retry_after"], 10);
        assert_eq!(v["status"], 403);
    }

    #[test]
    fn unavailable_is_503_and_never_2xx() {
        assert_eq!(Problem::new(ProblemKind::Unavailable, "d", "x").to_reply(&Answering::Http).status, 503);
        for k in [
            ProblemKind::Denied,
            ProblemKind::ApprovalPending,
            ProblemKind::ApprovalDenied,
            ProblemKind::ApprovalExpired,
            ProblemKind::Unavailable,
        ] {
            assert!(Problem::new(k, "d", "x").to_reply(&Answering::Http).status >= 400);
        }
    }
}
