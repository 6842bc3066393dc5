//! The policy's decision, parsed strictly.
//!
//! Anything that is not a well-formed decision — undefined, wrong type, unknown key,
//! unparseable duration — becomes a deny with rule `airlock.policy-error`, so a policy
//! bug can never read as permission.

use regorus::Value;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Rule name recorded when the policy itself failed.
pub const POLICY_ERROR_RULE: &str = "airlock.policy-error";

/// A policy's effect and risk rating are the protocol's: they go into the service's
/// audit trail as the policy wrote them.
pub use airlock_protocol::{Effect, Risk};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Approvers {
    #[serde(default)]
    pub groups: Vec<String>,
    #[serde(default = "one")]
    pub quorum: u32,
}

fn one() -> u32 {
    1
}

/// A decision as the policy wrote it (the wire shape of `data.airlock.decision`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Decision {
    pub effect: Effect,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub risk: Option<Risk>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approvers: Option<Approvers>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_in: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub redact: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reuse: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hold: Option<String>,
    /// `true`: only log this decision ("would have …") and let the call through —
    /// tuning a new rule before enforcing it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shadow: Option<bool>,
}

impl Decision {
    /// A deny the filter itself decided (no policy involved, or the policy failed).
    pub fn deny(rule: &str, reason: impl Into<String>) -> Decision {
        Decision {
            effect: Effect::Deny,
            reason: Some(reason.into()),
            rule: Some(rule.to_string()),
            risk: None,
            approvers: None,
            expires_in: None,
            credential: None,
            redact: Vec::new(),
            reuse: None,
            hold: None,
            shadow: None,
        }
    }

    /// The hold this decision asks for, if it names one.
    pub fn hold(&self) -> Option<Duration> {
        self.hold.as_deref().and_then(|h| humantime::parse_duration(h).ok())
    }

    pub fn rule_or_default(&self) -> &str {
        self.rule.as_deref().unwrap_or("")
    }
}

/// Turn the policy's output into a decision; every malformed shape denies.
pub fn from_policy_output(result: Result<Value, String>) -> Decision {
    let value = match result {
        Ok(Value::Undefined) => return Decision::deny(POLICY_ERROR_RULE, "policy produced no decision"),
        Ok(v) => v,
        Err(e) => return Decision::deny(POLICY_ERROR_RULE, format!("policy evaluation failed: {e}")),
    };
    let json = match serde_json::to_value(&value) {
        Ok(j) => j,
        Err(e) => return Decision::deny(POLICY_ERROR_RULE, format!("policy decision is not JSON: {e}")),
    };
    let decision: Decision = match serde_json::from_value(json) {
        Ok(d) => d,
        Err(e) => return Decision::deny(POLICY_ERROR_RULE, format!("malformed policy decision: {e}")),
    };
    match validate(&decision) {
        Ok(()) => decision,
        Err(e) => Decision::deny(POLICY_ERROR_RULE, format!("malformed policy decision: {e}")),
    }
}

fn validate(d: &Decision) -> Result<(), String> {
    for (field, value) in [("expires_in", &d.expires_in), ("hold", &d.hold)] {
        if let Some(v) = value {
            humantime::parse_duration(v).map_err(|e| format!("`{field}` `{v}` is not a duration: {e}"))?;
        }
    }
    if let Some(reuse) = &d.reuse {
        match reuse.strip_prefix("window:") {
            None if reuse == "once" => {}
            Some(w) => {
                humantime::parse_duration(w).map_err(|e| format!("`reuse` window `{w}` is not a duration: {e}"))?;
            }
            None => return Err(format!("`reuse` must be `once` or `window:<duration>`, not `{reuse}`")),
        }
    }
    if let Some(a) = &d.approvers {
        if a.quorum == 0 {
            return Err("`approvers.quorum` must be at least 1".into());
        }
    }
    for path in &d.redact {
        if !path.starts_with("request.body") {
            return Err(format!("`redact` path `{path}` must start with `request.body`"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    fn parse(json: &str) -> Decision {
        from_policy_output(Ok(Value::from_json_str(json).unwrap()))
    }

    #[test]
    fn full_decision_parses() {
        let d = parse(
            r#"{"effect": "approve", "reason": "export", "rule": "pii-export", "risk": "high",
                "approvers": {"groups": ["data-owners"], "quorum": 2}, "expires_in": "15m",
                "credential": "s3-export", "redact": ["request.body.customer.ssn"], "reuse": "window:10m"}"#,
        );
        assert_eq!(d.effect, Effect::Approve);
        assert_eq!(d.approvers.unwrap().quorum, 2);
    }

    #[test]
    fn malformed_decisions_deny() {
        for bad in [
            r#"{"effect": "permit"}"#,
            r#"{"effect": "allow", "extra": 1}"#,
            r#"{"reason": "no effect"}"#,
            r#""allow""#,
            r#"true"#,
            r#"{"effect": "approve", "expires_in": "soon"}"#,
            r#"{"effect": "approve", "reuse": "twice"}"#,
            r#"{"effect": "approve", "approvers": {"quorum": 0}}"#,
            r#"{"effect": "approve", "redact": ["agent.id"]}"#,
        ] {
            let d = parse(bad);
            assert_eq!(d.effect, Effect::Deny, "{bad}");
            assert_eq!(d.rule.as_deref(), Some(POLICY_ERROR_RULE), "{bad}");
        }
    }

    #[test]
    fn undefined_and_errors_deny() {
        assert_eq!(from_policy_output(Ok(Value::Undefined)).effect, Effect::Deny);
        assert_eq!(from_policy_output(Err("boom".into())).effect, Effect::Deny);
    }
}
