//! Calls to the approval service: building signed requests and reading their answers
//! (`docs/protocol.md`). Anything unexpected in an answer is an error, and errors
//! fail closed at the caller.

use crate::config::ServiceConfig;
use crate::signing::{self, AnswerSignature, BadSignature};
use airlock_protocol::{Problem, RedeemAnswer, PROBLEM_POLICY_REFUSED};

pub use airlock_protocol::approval::MAX_COMMENT_CHARS;
pub use airlock_protocol::{
    injectable_header_name, injectable_header_value, ApprovalState, ApprovalStatus, APPROVALS_FIND_PATH,
    APPROVALS_PATH, DECISIONS_PATH,
};

/// A signed HTTP call for the glue to dispatch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub timeout_ms: u64,
    /// Kept to verify the answer, which must be bound to this signature.
    pub signature: String,
}

/// Build a signed POST of `body` to `path`.
pub fn signed_post(svc: &ServiceConfig, now_s: u64, path: &str, body: Vec<u8>, timeout_ms: u64) -> Option<Call> {
    let signature = signing::sign_request(&svc.signing, now_s, "POST", path, &body)?;
    let headers = vec![
        (":method".to_string(), "POST".to_string()),
        (":path".to_string(), path.to_string()),
        (":authority".to_string(), svc.authority.clone()),
        ("content-type".to_string(), "application/json".to_string()),
        (signing::KEY_ID_HEADER.to_string(), svc.signing.current.id.clone()),
        (signing::TIMESTAMP_HEADER.to_string(), now_s.to_string()),
        (signing::SIGNATURE_HEADER.to_string(), signature.clone()),
    ];
    Some(Call { path: path.to_string(), headers, body, timeout_ms, signature })
}

/// An answer as the glue received it. `status` is `None` when the call failed
/// (timeout, reset, no such cluster): Envoy reports those with no headers.
#[derive(Debug, Clone, Default)]
pub struct Answer {
    pub status: Option<u32>,
    pub key_id: Option<String>,
    pub timestamp: Option<String>,
    pub signature: Option<String>,
    pub body: Vec<u8>,
}

/// Why an answer could not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CalloutError {
    NoAnswer,
    BadSignature(&'static str),
    UnexpectedStatus(u32),
    Malformed(String),
    /// 429: the agent already has as many approvals pending as the service allows.
    TooManyPending,
}

impl std::fmt::Display for CalloutError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CalloutError::NoAnswer => f.write_str("no answer (unreachable or timed out)"),
            CalloutError::BadSignature(why) => write!(f, "answer refused: {why}"),
            CalloutError::UnexpectedStatus(s) => write!(f, "unexpected HTTP status {s}"),
            CalloutError::Malformed(why) => write!(f, "malformed answer: {why}"),
            CalloutError::TooManyPending => f.write_str("the agent has too many approvals pending"),
        }
    }
}

impl From<BadSignature> for CalloutError {
    fn from(b: BadSignature) -> Self {
        CalloutError::BadSignature(b.0)
    }
}

/// Check presence and signature (bound to `request_signature`, the call's); give back
/// the status.
pub fn verified(
    svc: &ServiceConfig,
    now_s: u64,
    request_signature: &str,
    answer: &Answer,
) -> Result<u32, CalloutError> {
    let status = answer.status.ok_or(CalloutError::NoAnswer)?;
    let sig = AnswerSignature {
        key_id: answer.key_id.as_deref(),
        timestamp: answer.timestamp.as_deref(),
        signature: answer.signature.as_deref(),
    };
    signing::verify_answer(&svc.signing, now_s, status, request_signature, &answer.body, &sig)?;
    Ok(status)
}

/// Longest service detail passed on to the agent.
const MAX_REFUSAL_DETAIL: usize = 512;

pub fn parse_approval(status: u32, body: &[u8]) -> Result<ApprovalState, CalloutError> {
    if status == 429 {
        return Err(CalloutError::TooManyPending);
    }
    // A policy the service will never honour is the policy's fault, not an outage: the
    // agent is denied with the reason (retrying cannot help), through the same path as
    // an approval that does not cover the action.
    if status == 422 {
        let refused: Problem = serde_json::from_slice(body).map_err(|e| CalloutError::Malformed(e.to_string()))?;
        if refused.kind != PROBLEM_POLICY_REFUSED {
            return Err(CalloutError::UnexpectedStatus(status));
        }
        let reason: String = refused.detail.chars().filter(|c| !c.is_control()).take(MAX_REFUSAL_DETAIL).collect();
        let mut state = ApprovalState::new(ApprovalStatus::Mismatch);
        state.refused = Some(format!(
            "The approval service refuses what the policy asks for this action ({reason}); the action was not \
             performed. Retrying will not help: the policy must change."
        ));
        return Ok(state);
    }
    if status != 200 {
        return Err(CalloutError::UnexpectedStatus(status));
    }
    let mut state: ApprovalState = serde_json::from_slice(body).map_err(|e| CalloutError::Malformed(e.to_string()))?;
    if let Some(until) = &state.denied_until {
        let plain = until.len() <= 40 && until.bytes().all(|b| b.is_ascii_alphanumeric() || b":.+-".contains(&b));
        if !plain {
            return Err(CalloutError::Malformed("denied_until is not an RFC 3339 time".into()));
        }
    }
    state.comment = state
        .comment
        .map(|c| c.chars().map(|c| if c.is_control() { ' ' } else { c }).take(MAX_COMMENT_CHARS).collect::<String>())
        .map(|c| c.trim().to_string())
        .filter(|c| !c.is_empty());
    match &state.approval_id {
        Some(id) if !valid_id(id) => {
            return Err(CalloutError::Malformed("approval_id is not a plain identifier".into()))
        }
        None if state.status != ApprovalStatus::Mismatch => {
            return Err(CalloutError::Malformed("approval_id missing".into()))
        }
        _ => {}
    }
    Ok(state)
}

/// Answer to redeem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Redeemed {
    /// Headers to inject into the upstream request.
    Credential(Vec<(String, String)>),
    /// 409: consumed, mismatched or not approved.
    Refused(String),
    /// 410: the approval expired.
    Expired,
}

pub fn parse_redeem(status: u32, body: &[u8]) -> Result<Redeemed, CalloutError> {
    let parsed: RedeemAnswer = serde_json::from_slice(body).map_err(|e| CalloutError::Malformed(e.to_string()))?;
    match (status, parsed.status.as_str()) {
        (200, "redeemed") => {
            let minted = parsed.headers.unwrap_or_default();
            let mut headers = Vec::with_capacity(minted.len());
            for (name, value) in minted {
                if !injectable_header_name(&name) || !injectable_header_value(&value) {
                    return Err(CalloutError::Malformed(format!("refusing to inject header `{name}`")));
                }
                headers.push((name, value));
            }
            Ok(Redeemed::Credential(headers))
        }
        (409, s) => Ok(Redeemed::Refused(s.to_string())),
        (410, _) => Ok(Redeemed::Expired),
        (200, s) => Err(CalloutError::Malformed(format!("redeem status `{s}`"))),
        (other, _) => Err(CalloutError::UnexpectedStatus(other)),
    }
}

fn valid_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 128 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn approval_answers_parse_strictly() {
        let s = parse_approval(200, br#"{"approval_id": "apr_1", "status": "pending", "retry_after": 5}"#).unwrap();
        assert_eq!(s.status, ApprovalStatus::Pending);
        assert!(parse_approval(200, br#"{"approval_id": "apr_1", "status": "maybe"}"#).is_err());
        assert!(parse_approval(200, br#"{"approval_id": "../x", "status": "pending"}"#).is_err());
        assert!(parse_approval(200, br#"{"status": "pending"}"#).is_err());
        assert_eq!(parse_approval(200, br#"{"status": "mismatch"}"#).unwrap().status, ApprovalStatus::Mismatch);
        assert!(parse_approval(500, br#"{"approval_id": "apr_1", "status": "approved"}"#).is_err());
        assert!(parse_approval(200, b"not json").is_err());
    }

    #[test]
    fn a_policy_the_service_refuses_is_a_deny_with_its_reason() {
        let body = br#"{"type": "urn:airlock:problem:policy-refused", "title": "Policy refused", "status": 422,
                        "detail": "quorum 0 can never be met"}"#;
        let s = parse_approval(422, body).unwrap();
        assert_eq!(s.status, ApprovalStatus::Mismatch);
        assert_eq!(s.approval_id, None);
        assert!(s.refused.unwrap().contains("quorum 0 can never be met"));
        // Any other 422 is not understood: unavailable, fail closed.
        assert_eq!(
            parse_approval(422, br#"{"type": "urn:airlock:problem:bad-request", "detail": "x"}"#),
            Err(CalloutError::UnexpectedStatus(422))
        );
        assert!(parse_approval(422, b"nope").is_err());
    }

    #[test]
    fn a_denial_carries_the_reviewers_comment_and_how_long_it_stands() {
        let s = parse_approval(
            200,
            br#"{"approval_id": "apr_1", "status": "denied", "comment": " not\nnow ", "denied_until": "2026-11-21T19:30:00Z"}"#,
        )
        .unwrap();
        assert_eq!(s.comment.as_deref(), Some("not now"));
        assert_eq!(s.denied_until.as_deref(), Some("2026-11-21T19:30:00Z"));
        let long = format!(r#"{{"approval_id": "apr_1", "status": "denied", "comment": "{}"}}"#, "x".repeat(2000));
        assert_eq!(parse_approval(200, long.as_bytes()).unwrap().comment.unwrap().len(), MAX_COMMENT_CHARS);
        let bad = br#"{"approval_id": "apr_1", "status": "denied", "denied_until": "soon <script>"}"#;
        assert!(parse_approval(200, bad).is_err());
    }

    #[test]
    fn redeem_answers() {
        let ok = parse_redeem(200, br#"{"status": "redeemed", "headers": {"authorization": "Bearer x"}}"#).unwrap();
        assert_eq!(ok, Redeemed::Credential(vec![("authorization".into(), "Bearer x".into())]));
        assert_eq!(parse_redeem(409, br#"{"status": "consumed"}"#).unwrap(), Redeemed::Refused("consumed".into()));
        assert_eq!(parse_redeem(410, br#"{"status": "expired"}"#).unwrap(), Redeemed::Expired);
        for bad in [
            br#"{"status": "redeemed", "headers": {":path": "/admin"}}"#.as_slice(),
            br#"{"status": "redeemed", "headers": {"x-airlock-agent": "root"}}"#,
            br#"{"status": "redeemed", "headers": {"authorization": "a\r\nb"}}"#,
            br#"{"status": "redeemed", "headers": {"Host": "evil"}}"#,
        ] {
            assert!(parse_redeem(200, bad).is_err());
        }
        assert!(parse_redeem(500, br#"{"status": "redeemed"}"#).is_err());
    }
}
