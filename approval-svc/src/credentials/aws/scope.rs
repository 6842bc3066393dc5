//! The one AWS action an approved request performs, and the inline session policy that
//! allows exactly that: the intersection AWS computes with the role's own policies can
//! only be narrower.

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::arn::RoleArn;
use super::config::{Api, AwsSigV4Config};
use super::request::{Approved, Unmapped};
use super::{json_api, query, s3};

/// One action on named resources, optionally with a condition.
#[derive(Clone, Debug, PartialEq)]
pub struct Scope {
    /// `service:Operation`, e.g. `s3:PutObject`.
    pub action: String,
    /// Exact ARNs.
    pub resources: Vec<String>,
    /// An IAM `Condition` block narrowing it further.
    pub condition: Option<Value>,
}

impl Scope {
    /// The session policy: allow this action on these resources, nothing else.
    pub fn session_policy(&self) -> String {
        let mut statement = json!({
            "Sid": "AirlockApprovedAction",
            "Effect": "Allow",
            "Action": [self.action],
            "Resource": self.resources,
        });
        if let (Some(c), Some(obj)) = (&self.condition, statement.as_object_mut()) {
            obj.insert("Condition".into(), c.clone());
        }
        json!({"Version": "2012-10-17", "Statement": [statement]}).to_string()
    }
}

/// Hex SHA-256 of a session policy's exact text (what the audit trail records).
pub fn policy_digest(policy: &str) -> String {
    hex::encode(Sha256::digest(policy.as_bytes()))
}

/// Maps the approved request to its one action, or says why it cannot.
pub fn scope(config: &AwsSigV4Config, role: &RoleArn, req: &Approved<'_>) -> Result<Scope, Unmapped> {
    let host_header = req.host_header();
    let listed = |h: &str| config.hosts.iter().any(|c| c == h);
    if config.api != Api::S3 && !listed(&host_header) {
        return Err(Unmapped(format!(
            "host {host_header:?} is not one this credential signs for ({})",
            config.hosts.join(", ")
        )));
    }
    match config.api {
        Api::S3 => s3::scope(&config.hosts, role, req),
        Api::Query => query::scope(config.service(), role, req),
        Api::Json => json_api::scope(config, req),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_session_policy_allows_one_action_on_the_named_resources() {
        let s = Scope {
            action: "s3:PutObject".into(),
            resources: vec!["arn:aws:s3:::exports/2026/12.csv".into()],
            condition: None,
        };
        let doc: Value = serde_json::from_str(&s.session_policy()).unwrap();
        assert_eq!(
            doc,
            json!({"Version": "2012-10-17", "Statement": [{"Sid": "AirlockApprovedAction", "Effect": "Allow",
                   "Action": ["s3:PutObject"], "Resource": ["arn:aws:s3:::exports/2026/12.csv"]}]})
        );
        assert_eq!(policy_digest(&s.session_policy()).len(), 64);
    }
}
