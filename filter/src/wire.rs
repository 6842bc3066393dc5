//! Bodies the filter sends to the approval service, in the protocol's types
//! (`airlock_protocol`, `docs/protocol.md`).

use crate::action::Action;
use crate::decision::Decision;
use crate::identity::Agent;
use airlock_protocol::{AgentRef, Approvers, CreateApproval, PolicyAsk, RedeemRequest, RequestFacts};
use serde_json::Value;
use std::collections::BTreeMap;

/// Body of `POST /v1/gateway/approvals`.
#[allow(clippy::too_many_arguments)]
pub fn approval_request(
    decision_id: &str,
    action: &Action,
    agent: &Agent,
    digest: &str,
    decision: &Decision,
    revision: &str,
    hold_ms: u64,
    body: Option<Value>,
    body_size: usize,
    body_sha256: &str,
) -> Vec<u8> {
    let mut query: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (k, v) in &action.query {
        query.entry(k.clone()).or_default().push(v.clone());
    }
    let request = RequestFacts {
        body,
        body_sha256: body_sha256.to_string(),
        body_size: body_size as u64,
        headers: action.headers.iter().cloned().collect(),
        host: action.host.clone(),
        id: action.request_id.clone(),
        method: action.method.clone(),
        path: action.path.clone(),
        port: action.port,
        query,
        scheme: action.scheme.clone(),
    };
    let policy = PolicyAsk {
        approvers: decision
            .approvers
            .as_ref()
            .map(|a| Approvers { groups: a.groups.clone(), quorum: Some(u64::from(a.quorum)) }),
        credential: decision.credential.clone(),
        expires_in: decision.expires_in.clone(),
        reason: decision.reason.clone(),
        reuse: decision.reuse.clone(),
        revision: revision.to_string(),
        risk: decision.risk,
        rule: decision.rule.clone(),
    };
    let create = CreateApproval {
        agent: AgentRef {
            acts_for: agent.acts_for.clone(),
            id: agent.id.clone(),
            owner: agent.owner.clone(),
            source: agent.source.as_str().to_string(),
        },
        approval_id: action.approval_hint.clone(),
        decision_id: decision_id.to_string(),
        digest: digest.to_string(),
        hold_ms,
        policy,
        request,
    };
    serde_json::to_vec(&create).unwrap_or_default()
}

/// Body of `POST /v1/gateway/approvals/{id}/redeem`.
pub fn redeem_request(decision_id: &str, agent: &str, digest: &str) -> Vec<u8> {
    let redeem =
        RedeemRequest { agent: agent.to_string(), decision_id: decision_id.to_string(), digest: digest.to_string() };
    serde_json::to_vec(&redeem).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use crate::config::IdentitySourceKind;
    use crate::decision::{Effect, Risk};

    fn action(hint: Option<&str>) -> Action {
        Action {
            request_id: None,
            method: "POST".into(),
            scheme: "https".into(),
            host: "api.example.com".into(),
            port: 443,
            path: "/v1/x".into(),
            query: vec![("format".into(), "csv".into()), ("b".into(), "1".into()), ("format".into(), "json".into())],
            headers: vec![("content-type".into(), "application/json".into())],
            significant: Vec::new(),
            content_type: None,
            content_length: None,
            approval_hint: hint.map(str::to_string),
            airlock_headers: Vec::new(),
        }
    }

    fn agent() -> Agent {
        Agent {
            id: "bot".into(),
            source: IdentitySourceKind::Header,
            owner: Some("alice".into()),
            acts_for: Vec::new(),
            claims: BTreeMap::new(),
        }
    }

    // The bytes the filter has always sent (keys sorted, absent options as null, the
    // optional `approval_id` and `request.body` left out): the service signs and
    // stores what it receives, so the wire form is pinned, not just its meaning.
    #[test]
    fn create_body_bytes_are_pinned() {
        let mut d = Decision::deny("r", "why");
        d.effect = Effect::Approve;
        d.risk = Some(Risk::High);
        d.reuse = Some("once".into());
        d.approvers = Some(crate::decision::Approvers { groups: vec!["g".into()], quorum: 2 });
        let body = Some(serde_json::json!({"z": 1, "a": [2]}));
        let bytes = approval_request("dec_1", &action(Some("apr_1")), &agent(), "ab", &d, "rev", 30000, body, 12, "cd");
        assert_eq!(
            String::from_utf8(bytes).unwrap(),
            r#"{"agent":{"acts_for":[],"id":"bot","owner":"alice","source":"header"},"approval_id":"apr_1","decision_id":"dec_1","digest":"ab","hold_ms":30000,"policy":{"approvers":{"groups":["g"],"quorum":2},"credential":null,"expires_in":null,"reason":"why","reuse":"once","revision":"rev","risk":"high","rule":"r"},"request":{"body":{"a":[2],"z":1},"body_sha256":"cd","body_size":12,"headers":{"content-type":"application/json"},"host":"api.example.com","id":null,"method":"POST","path":"/v1/x","port":443,"query":{"b":["1"],"format":["csv","json"]},"scheme":"https"}}"#
        );
        let mut d = Decision::deny("r", "why");
        d.effect = Effect::Approve;
        let bytes = approval_request("dec_2", &action(None), &agent(), "ab", &d, "rev", 0, None, 0, "e3");
        assert_eq!(
            String::from_utf8(bytes).unwrap(),
            r#"{"agent":{"acts_for":[],"id":"bot","owner":"alice","source":"header"},"decision_id":"dec_2","digest":"ab","hold_ms":0,"policy":{"approvers":null,"credential":null,"expires_in":null,"reason":"why","reuse":null,"revision":"rev","risk":null,"rule":"r"},"request":{"body_sha256":"e3","body_size":0,"headers":{"content-type":"application/json"},"host":"api.example.com","id":null,"method":"POST","path":"/v1/x","port":443,"query":{"b":["1"],"format":["csv","json"]},"scheme":"https"}}"#
        );
    }

    #[test]
    fn redeem_body_bytes_are_pinned() {
        let bytes = redeem_request("dec_1", "bot", "ab");
        assert_eq!(String::from_utf8(bytes).unwrap(), r#"{"agent":"bot","decision_id":"dec_1","digest":"ab"}"#);
    }
}
