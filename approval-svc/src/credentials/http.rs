//! `kind = "http"`: hand-off to an external minter (Vault, cloud STS, token exchange).
//! POSTs `{agent, host, digest, approvers, approval_id}`; expects `{"headers": {...}}`
//! (and optionally `"expires_at"`, RFC 3339).

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{json, Value};

use super::{valid_header_name, valid_header_value, MintContext, MintError, Minted};

/// An external minter.
#[derive(Clone)]
pub struct HttpMinter {
    url: String,
    timeout: Duration,
}

impl HttpMinter {
    /// Minter at `url`.
    pub fn new(url: String, timeout: Duration) -> HttpMinter {
        HttpMinter { url, timeout }
    }

    /// Calls the minter (blocking).
    pub fn mint(&self, ctx: &MintContext) -> Result<Minted, MintError> {
        let agent: ureq::Agent =
            ureq::Agent::config_builder().timeout_global(Some(self.timeout)).http_status_as_error(false).build().into();
        let body = json!({"agent": ctx.agent, "host": ctx.host, "digest": ctx.digest,
                          "approvers": ctx.approvers, "approval_id": ctx.approval_id});
        let mut answer =
            agent.post(&self.url).send_json(&body).map_err(|e| MintError::Failed(format!("{}: {e}", self.url)))?;
        let status = answer.status().as_u16();
        if status != 200 {
            return Err(MintError::Failed(format!("{} answered {status}", self.url)));
        }
        let value: Value = answer
            .body_mut()
            .read_json()
            .map_err(|e| MintError::Failed(format!("{}: answer is not JSON: {e}", self.url)))?;
        let headers_value = value
            .get("headers")
            .and_then(Value::as_object)
            .ok_or_else(|| MintError::Failed("minter answer has no headers object".into()))?;
        let mut headers = BTreeMap::new();
        for (name, v) in headers_value {
            let Some(v) = v.as_str() else {
                return Err(MintError::Failed(format!("minter header {name:?} is not a string")));
            };
            if !valid_header_name(name) {
                return Err(MintError::Failed(format!("minter header name {name:?} is not one the gateway injects")));
            }
            // Never echo the value: it is the credential.
            if !valid_header_value(v) {
                return Err(MintError::Failed(format!("minter header {name:?} has a value the gateway refuses")));
            }
            headers.insert(name.clone(), v.to_string());
        }
        let expires_at_ms = value
            .get("expires_at")
            .and_then(Value::as_str)
            .and_then(|t| humantime::parse_rfc3339(t).ok())
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(crate::time::duration_ms);
        let names: Vec<&String> = headers.keys().collect();
        let audit = json!({"kind": "http", "url": self.url, "headers": names});
        Ok(Minted { headers, expires_at_ms, audit })
    }
}
