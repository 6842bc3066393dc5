//! `policy.bundle` and `policy.bundle_keys`: where a signed bundle comes from and the
//! keys it must verify with. Parsed strictly, like the rest of the configuration.

use crate::config::ConfigError;
use airlock_bundle::Keys;
use base64::Engine as _;
use serde::Deserialize;
use std::collections::BTreeMap;

/// Polling more often than this only adds load; ETags make each poll cheap anyway.
const MIN_POLL_MS: u64 = 1_000;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBundle {
    #[serde(default)]
    base64: Option<String>,
    #[serde(default)]
    cluster: Option<String>,
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    authority: Option<String>,
    #[serde(default = "default_poll_ms")]
    poll_ms: u64,
    #[serde(default = "default_timeout_ms")]
    timeout_ms: u64,
    #[serde(default = "default_max_bytes")]
    max_bytes: usize,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBundleKey {
    key_id: String,
    /// Exactly one of the two, as for the approval service's keys.
    #[serde(default)]
    key_base64: Option<String>,
    #[serde(default)]
    key_env: Option<String>,
}

fn default_poll_ms() -> u64 {
    30_000
}
fn default_timeout_ms() -> u64 {
    5_000
}
fn default_max_bytes() -> usize {
    8 * 1024 * 1024
}

/// A validated bundle source: inline bytes, a polled URL, or both (the inline bundle
/// serves until the first polled one is accepted).
#[derive(Clone)]
pub struct BundleConfig {
    pub inline: Option<Vec<u8>>,
    pub poll: Option<PollConfig>,
    pub keys: Keys,
}

impl std::fmt::Debug for BundleConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BundleConfig")
            .field("inline_bytes", &self.inline.as_ref().map(Vec::len))
            .field("poll", &self.poll)
            .field("keys", &self.keys)
            .finish()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PollConfig {
    pub cluster: String,
    pub path: String,
    pub authority: String,
    pub poll_ms: u64,
    pub timeout_ms: u64,
    /// Largest compressed bundle accepted from the server.
    pub max_bytes: usize,
}

fn invalid<T>(msg: impl Into<String>) -> Result<T, ConfigError> {
    Err(ConfigError(msg.into()))
}

pub fn parse(
    raw: RawBundle,
    keys: Vec<RawBundleKey>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<BundleConfig, ConfigError> {
    let inline = match raw.base64 {
        Some(b64) => Some(
            base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .map_err(|e| ConfigError(format!("policy.bundle.base64 is not valid base64: {e}")))?,
        ),
        None => None,
    };
    let poll = match raw.cluster {
        Some(cluster) if !cluster.is_empty() => {
            let Some(path) = raw.path.filter(|p| p.starts_with('/')) else {
                return invalid("policy.bundle.path must be an absolute request path (e.g. /bundles/airlock.tar.gz)");
            };
            if raw.poll_ms < MIN_POLL_MS {
                return invalid(format!("policy.bundle.poll_ms must be at least {MIN_POLL_MS}"));
            }
            if raw.timeout_ms == 0 || raw.max_bytes == 0 {
                return invalid("policy.bundle.timeout_ms and max_bytes must be greater than 0");
            }
            Some(PollConfig {
                authority: raw.authority.unwrap_or_else(|| cluster.clone()),
                cluster,
                path,
                poll_ms: raw.poll_ms,
                timeout_ms: raw.timeout_ms,
                max_bytes: raw.max_bytes,
            })
        }
        Some(_) => return invalid("policy.bundle.cluster must name an Envoy cluster"),
        None if raw.path.is_some() || raw.authority.is_some() => {
            return invalid("policy.bundle.path and authority need policy.bundle.cluster")
        }
        None => None,
    };
    if inline.is_none() && poll.is_none() {
        return invalid("policy.bundle needs `base64` (inline) and/or `cluster` + `path` (polled)");
    }
    if keys.is_empty() {
        return invalid("policy.bundle needs policy.bundle_keys: a bundle is only loaded when its signature verifies");
    }
    let mut map = BTreeMap::new();
    for k in keys {
        let secret = key(&k, env)?;
        if map.insert(k.key_id.clone(), secret).is_some() {
            return invalid(format!("policy.bundle_keys: key_id `{}` appears twice", k.key_id));
        }
    }
    Ok(BundleConfig { inline, poll, keys: Keys(map) })
}

fn key(k: &RawBundleKey, env: &dyn Fn(&str) -> Option<String>) -> Result<Vec<u8>, ConfigError> {
    if k.key_id.is_empty() {
        return invalid("policy.bundle_keys: key_id must not be empty");
    }
    let field = format!("policy.bundle_keys `{}`", k.key_id);
    crate::config::key_bytes(&field, k.key_base64.as_deref(), k.key_env.as_deref(), env)
}
