//! Just-in-time credentials, minted at redeem for one approved action. The secret goes
//! only into the redeem answer; the audit trail gets [`Minted::audit`] (never a secret).

mod aws;
mod config;
mod http;
mod jwt_hs256;
mod static_secret;

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{json, Value};

use crate::secrets::{read_key, read_secret_text};

pub use aws::{Api as AwsApi, AwsSigV4, AwsSigV4Config};
pub use config::{CredentialConfig, MAX_CREDENTIAL_TTL};
pub use http::HttpMinter;
pub use jwt_hs256::JwtHs256;
pub use static_secret::StaticSecret;

/// What a minter needs to know about the redeemed action.
#[derive(Clone, Debug)]
pub struct MintContext {
    /// Approval id.
    pub approval_id: String,
    /// Agent id (`sub`).
    pub agent: String,
    /// Upstream host (`aud`).
    pub host: String,
    /// Action digest.
    pub digest: String,
    /// Reviewer ids who approved.
    pub approvers: Vec<String>,
    /// The approved request as the gateway forwards it (the create body's `request`):
    /// what `aws-sigv4` signs.
    pub request: Option<airlock_protocol::RequestFacts>,
}

/// A minted credential.
#[derive(Clone, Debug)]
pub struct Minted {
    /// Headers the gateway injects (lower-case names).
    pub headers: BTreeMap<String, String>,
    /// When it stops being valid, ms since the epoch (if known).
    pub expires_at_ms: Option<i64>,
    /// What the audit trail records: kind, jti, expiry, header names. No secret.
    pub audit: Value,
}

/// Minting failed (the redeem answers 5xx; the approval is not consumed).
#[derive(Debug, thiserror::Error)]
pub enum MintError {
    /// The policy names a profile that is not configured.
    #[error("unknown credential profile {0:?}")]
    UnknownProfile(String),
    /// The minter failed.
    #[error("credential minter failed: {0}")]
    Failed(String),
}

/// One configured profile.
#[derive(Clone)]
pub enum Profile {
    /// `kind = "jwt-hs256"`.
    JwtHs256(JwtHs256),
    /// `kind = "static"`.
    Static(StaticSecret),
    /// `kind = "http"`.
    Http(HttpMinter),
    /// `kind = "aws-sigv4"`.
    AwsSigV4(AwsSigV4),
}

/// Every configured profile, by name.
#[derive(Clone, Default)]
pub struct Credentials {
    profiles: Arc<BTreeMap<String, Profile>>,
}

impl Credentials {
    /// Loads every profile, reading its secret now (fails naming the field).
    pub fn load(config: &BTreeMap<String, CredentialConfig>) -> anyhow::Result<Credentials> {
        let mut profiles = BTreeMap::new();
        for (name, c) in config {
            let field = format!("credentials.{name}");
            let profile = match c {
                CredentialConfig::JwtHs256 { secret_env, secret_file, ttl, header, issuer } => {
                    let key = read_key(&field, secret_env.as_deref(), secret_file.as_deref())?;
                    Profile::JwtHs256(JwtHs256::new(key, *ttl, header.clone(), issuer.clone()))
                }
                CredentialConfig::Static { secret_env, secret_file, header } => {
                    let secret = read_secret_text(&field, secret_env.as_deref(), secret_file.as_deref())?;
                    Profile::Static(StaticSecret::new(secret, header.clone()))
                }
                CredentialConfig::Http { url, timeout } => Profile::Http(HttpMinter::new(url.clone(), *timeout)),
                CredentialConfig::AwsSigV4(aws) => Profile::AwsSigV4(AwsSigV4::new(aws.clone())?),
            };
            profiles.insert(name.clone(), profile);
        }
        Ok(Credentials { profiles: Arc::new(profiles) })
    }

    /// Builds from ready profiles (tests).
    pub fn from_profiles(profiles: BTreeMap<String, Profile>) -> Credentials {
        Credentials { profiles: Arc::new(profiles) }
    }

    /// Whether `name` is configured.
    pub fn has(&self, name: &str) -> bool {
        self.profiles.contains_key(name)
    }

    /// Whether profile `name` can mint for `request`: `Err(None)` when it is not
    /// configured, `Err(Some(why))` when it cannot cover this action (an `aws-sigv4`
    /// profile that cannot map it to one AWS action), so the approval is refused before
    /// any reviewer is asked.
    pub fn check(&self, name: &str, request: Option<&airlock_protocol::RequestFacts>) -> Result<(), Option<String>> {
        let refused = |why: String| Some(format!("credential profile {name:?} cannot sign this action: {why}"));
        match (self.profiles.get(name), request) {
            (None, _) => Err(None),
            (Some(Profile::AwsSigV4(_)), None) => Err(refused("the request facts are incomplete".into())),
            (Some(Profile::AwsSigV4(p)), Some(request)) => p.check(request).map_err(refused),
            (Some(_), _) => Ok(()),
        }
    }

    /// Mints with profile `name` (no profile: no headers). Blocking for `http`.
    pub fn mint(&self, name: Option<&str>, ctx: &MintContext, now_ms: i64) -> Result<Minted, MintError> {
        let Some(name) = name else {
            return Ok(Minted { headers: BTreeMap::new(), expires_at_ms: None, audit: json!({"kind": "none"}) });
        };
        match self.profiles.get(name) {
            None => Err(MintError::UnknownProfile(name.to_string())),
            Some(Profile::JwtHs256(p)) => p.mint(ctx, now_ms),
            Some(Profile::Static(p)) => Ok(p.mint()),
            Some(Profile::Http(p)) => p.mint(ctx),
            Some(Profile::AwsSigV4(p)) => p.mint(ctx, now_ms),
        }
    }
}

// The gateway refuses to inject anything else; the rule lives in the protocol crate so
// the two sides cannot drift apart. Checked before an approval is consumed, so a bad
// minter answer never burns a `reuse = "once"` approval.
pub use airlock_protocol::{
    injectable_header_name as valid_header_name, injectable_header_value as valid_header_value,
};

/// Random bytes as lower-case hex.
pub fn random_hex(bytes: usize) -> Result<String, MintError> {
    let mut buf = vec![0u8; bytes];
    getrandom::getrandom(&mut buf).map_err(|e| MintError::Failed(format!("no randomness: {e}")))?;
    Ok(hex::encode(buf))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_names() {
        assert!(valid_header_name("authorization"));
        assert!(valid_header_name("x-api-key"));
        assert!(!valid_header_name("Authorization"));
        assert!(!valid_header_name(":authority"));
        assert!(!valid_header_name(""));
        assert!(!valid_header_name("bad header"));
        assert!(!valid_header_name("x_token"));
        assert!(!valid_header_name("x-airlock-agent"));
        assert!(!valid_header_name("host"));
        assert!(valid_header_value("Bearer abc.def-_=\t1"));
        assert!(!valid_header_value("a\r\nx-evil: 1"));
        assert!(!valid_header_value("caf\u{e9}"));
    }
}
