//! `[teams]` in airlock.toml: the bot's identity, its secret, and every URL it talks to
//! (configurable so tests can point them at local fakes). See `docs/channels/teams.md`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use axum::http::Uri;
use serde::Deserialize;

/// Where Bot Framework publishes its OpenID metadata (issuer, `jwks_uri`).
pub const DEFAULT_OPENID_METADATA_URL: &str = "https://login.botframework.com/v1/.well-known/openidconfiguration";
/// The issuer of every token the Bot Framework sends to a bot.
pub const DEFAULT_ISSUER: &str = "https://api.botframework.com";
/// The scope of the bot's own (client-credentials) token for the Bot Connector.
pub const DEFAULT_SCOPE: &str = "https://api.botframework.com/.default";
/// The public cloud's Bot Connector host.
pub const DEFAULT_SERVICE_HOST: &str = "smba.trafficmanager.net";
/// Where the public cloud's Bot Connector creates 1:1 chats with users who never wrote
/// to the bot (Microsoft's proactive-messaging docs; government clouds differ).
pub const DEFAULT_DIRECT_SERVICE_URL: &str = "https://smba.trafficmanager.net/teams/";
/// Largest clock skew accepted on `nbf`/`exp` (the Bot Framework's own allowance).
pub const MAX_CLOCK_SKEW: Duration = Duration::from_secs(300);

/// `[teams]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TeamsConfig {
    /// The bot's Microsoft App ID (the Entra app registration's client id): the `aud` of
    /// inbound tokens and the `client_id` of outbound ones.
    pub app_id: String,
    /// Environment variable holding the app's client secret.
    #[serde(default)]
    pub secret_env: Option<String>,
    /// File holding the app's client secret.
    #[serde(default)]
    pub secret_file: Option<PathBuf>,
    /// The Entra tenant the bot and its reviewers belong to; activities from any other
    /// tenant are refused.
    pub tenant_id: String,
    /// Bot Framework OpenID metadata (its `jwks_uri` names the signing keys).
    #[serde(default = "default_metadata_url")]
    pub openid_metadata_url: String,
    /// Expected `iss` of inbound tokens.
    #[serde(default = "default_issuer")]
    pub issuer: String,
    /// Entra token endpoint; default `https://login.microsoftonline.com/{tenant_id}/oauth2/v2.0/token`.
    #[serde(default)]
    pub token_url: Option<String>,
    /// Scope asked for in the client-credentials grant.
    #[serde(default = "default_scope")]
    pub token_scope: String,
    /// Hosts the bot may send to (the host of every `serviceUrl`), compared exactly,
    /// case-insensitively; the port is not part of the comparison.
    #[serde(default = "default_hosts")]
    pub allowed_service_url_hosts: Vec<String>,
    /// Conversations every approval is posted to, besides those learnt from installs.
    #[serde(default)]
    pub conversations: Vec<ConversationConfig>,
    /// Reviewers told of each approval in a 1:1 chat with the bot, by approver group:
    /// Entra object ids. An approval goes to the members of the groups its policy
    /// names (all listed reviewers when it names none), except its owner. This only
    /// says who is messaged; whether a click counts is still decided by `[[reviewers]]`.
    #[serde(default)]
    pub reviewers: BTreeMap<String, Vec<String>>,
    /// Agent owners told in a 1:1 chat when their agent's approval is approved, denied
    /// or expires: the owner as the gateway records it (`agent.owner`) → Entra object id.
    #[serde(default)]
    pub owners: BTreeMap<String, String>,
    /// Bot Connector URL at which 1:1 chats are created.
    #[serde(default = "default_direct_service_url")]
    pub direct_service_url: String,
    /// Risks (`policy.risk`) whose approvals are decided only in the web console, after
    /// a fresh sign-in: their cards link there, and clicks deciding them are refused.
    #[serde(default)]
    pub step_up_risks: Vec<String>,
    /// Base URL of the web console (`https://airlock.corp.example/console`); needed with
    /// `step_up_risks`.
    #[serde(default)]
    pub console_url: Option<String>,
    /// Clock skew accepted on inbound tokens' `nbf`/`exp` (at most 5 minutes).
    #[serde(default = "default_skew", with = "humantime_serde_compat")]
    pub clock_skew: Duration,
    /// Timeout of every outbound call (token, connector, keys).
    #[serde(default = "default_timeout", with = "humantime_serde_compat")]
    pub http_timeout: Duration,
}

/// A conversation reference given in configuration.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConversationConfig {
    /// The Bot Connector base URL of the conversation (from an earlier activity).
    pub service_url: String,
    /// The conversation id (`19:...@thread.tacv2`, `a:...` for personal chats).
    pub conversation_id: String,
}

fn default_metadata_url() -> String {
    DEFAULT_OPENID_METADATA_URL.to_string()
}
fn default_issuer() -> String {
    DEFAULT_ISSUER.to_string()
}
fn default_scope() -> String {
    DEFAULT_SCOPE.to_string()
}
fn default_direct_service_url() -> String {
    DEFAULT_DIRECT_SERVICE_URL.to_string()
}
fn default_hosts() -> Vec<String> {
    vec![DEFAULT_SERVICE_HOST.to_string()]
}
fn default_skew() -> Duration {
    MAX_CLOCK_SKEW
}
fn default_timeout() -> Duration {
    Duration::from_secs(10)
}

/// Durations as humantime text (`"5m"`, `"30s"`), the way the rest of airlock.toml does.
mod humantime_serde_compat {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_duration(&text).map_err(serde::de::Error::custom)
    }
}

impl TeamsConfig {
    /// The token endpoint to use.
    pub fn token_url(&self) -> String {
        match &self.token_url {
            Some(url) => url.clone(),
            None => format!("https://login.microsoftonline.com/{}/oauth2/v2.0/token", self.tenant_id),
        }
    }

    /// Checks what serde cannot: non-empty ids, the skew bound, URLs, static references.
    pub fn validate(&self) -> anyhow::Result<()> {
        if self.app_id.trim().is_empty() || self.tenant_id.trim().is_empty() {
            anyhow::bail!("teams: app_id and tenant_id are required");
        }
        if self.clock_skew > MAX_CLOCK_SKEW {
            anyhow::bail!("teams: clock_skew must be at most 5m");
        }
        if self.allowed_service_url_hosts.iter().any(|h| h.trim().is_empty()) {
            anyhow::bail!("teams: allowed_service_url_hosts has an empty entry");
        }
        for (field, url) in [("openid_metadata_url", self.openid_metadata_url.clone()), ("token_url", self.token_url())]
        {
            endpoint_url(&url).map_err(|e| anyhow::anyhow!("teams: {field}: {e}"))?;
        }
        for c in &self.conversations {
            if c.conversation_id.trim().is_empty() {
                anyhow::bail!("teams: a conversation has an empty conversation_id");
            }
            self.service_url_allowed(&c.service_url)
                .map_err(|e| anyhow::anyhow!("teams: conversation {}: {e}", c.conversation_id))?;
        }
        for (group, ids) in &self.reviewers {
            if group.trim().is_empty() || ids.iter().any(|id| id.trim().is_empty()) {
                anyhow::bail!("teams.reviewers: group {group:?} has an empty name or object id");
            }
        }
        if let Some((owner, _)) = self.owners.iter().find(|(o, id)| o.trim().is_empty() || id.trim().is_empty()) {
            anyhow::bail!("teams.owners: owner {owner:?} has an empty name or object id");
        }
        if !self.reviewers.is_empty() || !self.owners.is_empty() {
            self.service_url_allowed(&self.direct_service_url)
                .map_err(|e| anyhow::anyhow!("teams.direct_service_url: {e}"))?;
        }
        self.step_up()?;
        Ok(())
    }

    /// The step-up rule of this channel.
    pub fn step_up(&self) -> anyhow::Result<crate::channels::step_up::StepUp> {
        crate::channels::step_up::StepUp::new("teams", &self.step_up_risks, self.console_url.as_deref())
    }

    /// Whether the bot may talk to `service_url`: an allow-listed host over HTTPS, or plain
    /// HTTP to `127.0.0.1`/`localhost` (local fakes in tests) when that host is listed.
    pub fn service_url_allowed(&self, service_url: &str) -> Result<(), String> {
        let (scheme, host) = scheme_and_host(service_url)?;
        if scheme == "http" && !is_loopback(&host) {
            return Err(format!("serviceUrl {service_url:?} is not https"));
        }
        if !self.allowed_service_url_hosts.iter().any(|h| h.trim().eq_ignore_ascii_case(&host)) {
            return Err(format!("serviceUrl host {host:?} is not in allowed_service_url_hosts"));
        }
        Ok(())
    }
}

/// Scheme and lower-case host of an absolute http(s) URL.
pub fn scheme_and_host(url: &str) -> Result<(String, String), String> {
    let uri: Uri = url.parse().map_err(|_| format!("{url:?} is not a URL"))?;
    let scheme = uri.scheme_str().map(str::to_ascii_lowercase).ok_or_else(|| format!("{url:?} has no scheme"))?;
    if scheme != "https" && scheme != "http" {
        return Err(format!("{url:?} is not http(s)"));
    }
    let host = uri.host().map(str::to_ascii_lowercase).ok_or_else(|| format!("{url:?} has no host"))?;
    Ok((scheme, host))
}

/// An identity-provider URL: HTTPS, or plain HTTP to a loopback host (tests).
fn endpoint_url(url: &str) -> Result<(), String> {
    let (scheme, host) = scheme_and_host(url)?;
    if scheme == "http" && !is_loopback(&host) {
        return Err(format!("{url:?} must be https (plain http only to 127.0.0.1/localhost)"));
    }
    Ok(())
}

fn is_loopback(host: &str) -> bool {
    host == "127.0.0.1" || host == "localhost"
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn parse(text: &str) -> TeamsConfig {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn defaults_and_bounds() {
        let c = parse(
            r#"app_id = "app"
            tenant_id = "t1"
            secret_env = "S""#,
        );
        assert_eq!(c.openid_metadata_url, DEFAULT_OPENID_METADATA_URL);
        assert_eq!(c.token_url(), "https://login.microsoftonline.com/t1/oauth2/v2.0/token");
        assert_eq!(c.clock_skew, MAX_CLOCK_SKEW);
        c.validate().unwrap();
        assert!(c.service_url_allowed("https://smba.trafficmanager.net/amer/").is_ok());
        assert!(c.service_url_allowed("https://SMBA.trafficmanager.net/emea").is_ok());
        assert!(c.service_url_allowed("http://smba.trafficmanager.net/amer/").is_err(), "plain http");
        assert!(c.service_url_allowed("https://evil.example/amer/").is_err());
        assert!(c.service_url_allowed("https://smba.trafficmanager.net.evil.example/").is_err());
        let skewed = parse(
            r#"app_id = "app"
            tenant_id = "t1"
            clock_skew = "6m""#,
        );
        assert!(skewed.validate().is_err());
        assert!(toml::from_str::<TeamsConfig>("app_id = \"a\"\ntenant_id = \"t\"\nbogus = 1").is_err());
    }

    #[test]
    fn direct_messages_need_an_allowed_service_url_and_real_ids() {
        let ok = parse(
            r#"app_id = "app"
            tenant_id = "t1"
            reviewers = { "data-owners" = ["oid-bob", "oid-carol"] }
            owners = { "alice@corp.example" = "oid-alice" }"#,
        );
        ok.validate().unwrap();
        assert_eq!(ok.direct_service_url, DEFAULT_DIRECT_SERVICE_URL);
        let elsewhere = parse(
            r#"app_id = "app"
            tenant_id = "t1"
            direct_service_url = "https://evil.example/teams/"
            reviewers = { "data-owners" = ["oid-bob"] }"#,
        );
        assert!(elsewhere.validate().unwrap_err().to_string().contains("direct_service_url"));
        let empty = parse(
            r#"app_id = "app"
            tenant_id = "t1"
            reviewers = { "data-owners" = [" "] }"#,
        );
        assert!(empty.validate().is_err());
        let no_console = parse(
            r#"app_id = "app"
            tenant_id = "t1"
            step_up_risks = ["critical"]"#,
        );
        assert!(no_console.validate().unwrap_err().to_string().contains("console_url"));
    }

    #[test]
    fn plain_http_only_to_listed_loopback() {
        let c = parse(
            r#"app_id = "app"
            tenant_id = "t1"
            allowed_service_url_hosts = ["127.0.0.1"]
            token_url = "http://127.0.0.1:9/token"
            openid_metadata_url = "http://127.0.0.1:9/meta"
            conversations = [{ service_url = "http://127.0.0.1:9/", conversation_id = "19:a" }]"#,
        );
        c.validate().unwrap();
        assert!(c.service_url_allowed("http://localhost:9/").is_err(), "localhost is not listed");
        let bad = parse(
            r#"app_id = "app"
            tenant_id = "t1"
            token_url = "http://idp.example/token""#,
        );
        assert!(bad.validate().is_err());
    }
}
