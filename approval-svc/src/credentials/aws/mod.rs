//! `kind = "aws-sigv4"`: at redeem, AssumeRole for STS's minimum lifetime with an inline
//! session policy allowing only the approved action on its one resource, then sign the
//! approved request with those keys. The gateway injects the signature headers; the
//! keys stay here. A request AWS receives with any other signed part is refused by AWS,
//! and the session can do nothing else for its 15 minutes.

mod arn;
mod config;
mod json_api;
mod query;
mod request;
mod s3;
mod scope;
mod sign;
mod source;
mod sts;

use std::sync::Arc;
use std::time::{Duration, Instant, UNIX_EPOCH};

use airlock_protocol::RequestFacts;
use serde_json::json;

pub use config::{Api, AwsSigV4Config};

use super::{valid_header_name, valid_header_value, MintContext, MintError, Minted};
use arn::RoleArn;
use request::Approved;
use sign::{sign_approved, Signer};
use source::Chain;
use sts::{AssumeRole, Sts};

/// An `aws-sigv4` profile.
#[derive(Clone)]
pub struct AwsSigV4 {
    config: Arc<AwsSigV4Config>,
    role: RoleArn,
    chain: Arc<Chain>,
}

impl AwsSigV4 {
    /// A profile from its (validated) configuration.
    pub fn new(config: AwsSigV4Config) -> anyhow::Result<AwsSigV4> {
        let role = RoleArn::parse(&config.role_arn)
            .ok_or_else(|| anyhow::anyhow!("role_arn {:?} is not an IAM role ARN", config.role_arn))?;
        let chain = Arc::new(Chain::new(config.imds_endpoint.clone(), config.timeout));
        Ok(AwsSigV4 { config: Arc::new(config), role, chain })
    }

    /// Whether this profile can sign `request`, and if not, why (asked when the approval
    /// is created, so an unmappable action is refused before a reviewer sees it).
    pub fn check(&self, request: &RequestFacts) -> Result<(), String> {
        scope::scope(&self.config, &self.role, &Approved::new(request)).map(|_| ()).map_err(|e| e.0)
    }

    /// Assumes the narrowed role and signs the approved request (blocking: two calls to
    /// STS at most, one when the source keys are cached or in the environment).
    pub fn mint(&self, ctx: &MintContext, now_ms: i64) -> Result<Minted, MintError> {
        let fail = |what: String| MintError::Failed(format!("aws-sigv4: {what}"));
        let request = ctx.request.as_ref().ok_or_else(|| fail("the approval holds no request to sign".into()))?;
        let approved = Approved::new(request);
        let scope = scope::scope(&self.config, &self.role, &approved).map_err(|e| fail(e.0))?;
        let policy = scope.session_policy();
        let policy_sha256 = scope::policy_digest(&policy);
        let session_name = session_name(&ctx.approval_id);
        let sts = Sts {
            endpoint: self.config.sts_endpoint(),
            region: self.config.sts_region().to_string(),
            timeout: self.config.timeout,
        };
        let started = Instant::now();
        let (source, origin) = self.chain.keys(&sts, now_ms).map_err(fail)?;
        let ask = AssumeRole {
            role_arn: &self.config.role_arn,
            session_name: &session_name,
            policy: &policy,
            external_id: self.config.external_id.as_deref(),
        };
        let session = sts.assume_role(&source, &ask).map_err(fail)?;
        let sts_ms = started.elapsed().as_millis();
        let now = UNIX_EPOCH + Duration::from_millis(u64::try_from(now_ms).unwrap_or(0));
        let signer = Signer { service: self.config.service(), region: &self.config.region };
        let headers = sign_approved(&signer, &approved, &session, now).map_err(|e| fail(e.0))?;
        if !headers.iter().all(|(n, v)| valid_header_name(n) && valid_header_value(v)) {
            return Err(fail("a signature header the gateway would not inject".into()));
        }
        tracing::info!(approval_id = %ctx.approval_id, role = %self.config.role_arn, session = %session_name,
                       action = %scope.action, policy_sha256 = %policy_sha256, sts_ms, "aws session assumed and request signed");
        let names: Vec<&String> = headers.keys().collect();
        let audit = json!({
            "kind": "aws-sigv4",
            "role_arn": self.config.role_arn,
            "session_name": session_name,
            "session_policy_sha256": policy_sha256,
            "action": scope.action,
            "resources": scope.resources,
            "service": self.config.service(),
            "region": self.config.region,
            "expires_at": session.expires_ms.map(crate::time::rfc3339),
            "source": origin.as_str(),
            "sts_ms": sts_ms,
            "headers": names,
        });
        Ok(Minted { expires_at_ms: session.expires_ms, headers, audit })
    }
}

/// `airlock-<approval id>`, in STS's alphabet and length (2–64 of `\w+=,.@-`): the
/// approval is in CloudTrail's record of everything the session did.
fn session_name(approval_id: &str) -> String {
    let clean: String = format!("airlock-{approval_id}")
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || "_+=,.@-".contains(*c))
        .take(64)
        .collect();
    clean
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::credentials::{Credentials, Profile};
    use std::collections::BTreeMap;

    fn profile(sts_endpoint: &str) -> AwsSigV4 {
        let config: AwsSigV4Config = toml::from_str(&format!(
            "role_arn = \"arn:aws:iam::123456789012:role/r\"\nregion = \"us-east-1\"\napi = \"s3\"\n\
             hosts = [\"s3.us-east-1.amazonaws.com\"]\nsts_endpoint = \"{sts_endpoint}\"\ntimeout = \"2s\"\nimds_endpoint = \"http://127.0.0.1:9\"\n"
        ))
        .unwrap();
        AwsSigV4::new(config).unwrap()
    }

    fn ctx(request: Option<RequestFacts>) -> MintContext {
        MintContext {
            approval_id: "apr_1".into(),
            agent: "a".into(),
            host: "exports.s3.us-east-1.amazonaws.com".into(),
            digest: "ab".repeat(32),
            approvers: vec!["bob".into()],
            request,
        }
    }

    #[test]
    fn the_create_check_names_what_cannot_be_signed() {
        let creds = Credentials::from_profiles(BTreeMap::from([(
            "aws".to_string(),
            Profile::AwsSigV4(profile("http://127.0.0.1:9")),
        )]));
        let ok = request::tests::facts("PUT", "exports.s3.us-east-1.amazonaws.com", "/k.csv", &[], &"0".repeat(64));
        assert_eq!(creds.check("aws", Some(&ok)), Ok(()));
        let star = request::tests::facts("PUT", "exports.s3.us-east-1.amazonaws.com", "/k*.csv", &[], &"0".repeat(64));
        let why = creds.check("aws", Some(&star)).unwrap_err().unwrap();
        assert!(why.contains("\"aws\" cannot sign this action") && why.contains("pattern"), "{why}");
        assert!(creds.check("aws", None).unwrap_err().is_some(), "no request facts: refused");
        assert_eq!(creds.check("other", Some(&ok)), Err(None), "not configured");
    }

    #[test]
    fn a_mint_fails_closed_without_the_request_or_without_sts() {
        let p = profile("http://127.0.0.1:9");
        let err = p.mint(&ctx(None), 0).unwrap_err().to_string();
        assert!(err.contains("no request to sign"), "{err}");
        let ok = request::tests::facts("PUT", "exports.s3.us-east-1.amazonaws.com", "/k.csv", &[], &"0".repeat(64));
        let err = p.mint(&ctx(Some(ok)), 0).unwrap_err().to_string();
        assert!(err.starts_with("credential minter failed: aws-sigv4:"), "{err}");
    }

    #[test]
    fn the_session_name_carries_the_approval_id_within_stss_rules() {
        assert_eq!(session_name("apr_0123abcd"), "airlock-apr_0123abcd");
        assert_eq!(session_name(&"x".repeat(100)).len(), 64);
        assert_eq!(session_name("apr/1 2"), "airlock-apr12");
    }
}
