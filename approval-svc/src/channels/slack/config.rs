//! `[slack]` in airlock.toml: the Slack app the service posts as and accepts clicks from.

use std::path::PathBuf;

use serde::Deserialize;

/// Slack's Web API.
pub const DEFAULT_API_BASE_URL: &str = "https://slack.com/api/";
/// Where Slack's `response_url`s point.
pub const DEFAULT_RESPONSE_URL_PREFIX: &str = "https://hooks.slack.com/";

/// `[slack]` in airlock.toml.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlackConfig {
    /// Environment variable holding the bot token (`xoxb-…`).
    #[serde(default)]
    pub bot_token_env: Option<String>,
    /// File holding the bot token.
    #[serde(default)]
    pub bot_token_file: Option<PathBuf>,
    /// Environment variable holding the app's signing secret.
    #[serde(default)]
    pub signing_secret_env: Option<String>,
    /// File holding the app's signing secret.
    #[serde(default)]
    pub signing_secret_file: Option<PathBuf>,
    /// Web API base (tests point it at a local fake).
    #[serde(default = "default_api_base_url")]
    pub api_base_url: String,
    /// Only `response_url`s starting with this are ever called: the URL comes inside the
    /// (signed) payload, and the service must not be made to POST anywhere else.
    #[serde(default = "default_response_url_prefix")]
    pub response_url_prefix: String,
    /// The app's id (`A…`): clicks for another app are refused.
    pub app_id: String,
    /// The workspace's id (`T…`): clicks from another workspace are refused.
    pub team_id: String,
    /// Channel ids (`C…`) every approval is posted to.
    #[serde(default)]
    pub channels: Vec<String>,
    /// Agent owners told in a direct message from the app when their agent's approval is
    /// approved, denied or expires: the owner as the gateway records it (`agent.owner`)
    /// → Slack user id (`U…`).
    #[serde(default)]
    pub owners: std::collections::BTreeMap<String, String>,
    /// Risks (`policy.risk`) whose approvals are decided only in the web console, after
    /// a fresh sign-in: their messages link there, and clicks deciding them are refused.
    #[serde(default)]
    pub step_up_risks: Vec<String>,
    /// Base URL of the web console; needed with `step_up_risks`.
    #[serde(default)]
    pub console_url: Option<String>,
    /// Timeout of each Web API call, e.g. `5s`.
    #[serde(default = "default_timeout", with = "humantime_serde_compat")]
    pub timeout: std::time::Duration,
}

fn default_api_base_url() -> String {
    DEFAULT_API_BASE_URL.to_string()
}

fn default_response_url_prefix() -> String {
    DEFAULT_RESPONSE_URL_PREFIX.to_string()
}

fn default_timeout() -> std::time::Duration {
    std::time::Duration::from_secs(5)
}

/// `"5s"`-style durations, as elsewhere in airlock.toml.
mod humantime_serde_compat {
    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<std::time::Duration, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_duration(&text).map_err(serde::de::Error::custom)
    }
}

/// The secrets of a [`SlackConfig`], read once at start.
pub struct SlackSecrets {
    /// Bot token for the Web API.
    pub bot_token: String,
    /// Key of the v0 request signatures.
    pub signing_secret: String,
}

impl SlackConfig {
    /// Reads the token and signing secret; checks the ids and URLs.
    pub fn secrets(&self) -> anyhow::Result<SlackSecrets> {
        if self.app_id.trim().is_empty() || self.team_id.trim().is_empty() {
            anyhow::bail!("slack: app_id and team_id are required (clicks are checked against both)");
        }
        for url in [&self.api_base_url, &self.response_url_prefix] {
            if !(url.starts_with("https://") || url.starts_with("http://")) {
                anyhow::bail!("slack: {url:?} is not an http(s) URL");
            }
        }
        if let Some((owner, _)) = self.owners.iter().find(|(o, u)| o.trim().is_empty() || u.trim().is_empty()) {
            anyhow::bail!("slack.owners: owner {owner:?} has an empty name or user id");
        }
        self.step_up()?;
        let bot_token = crate::secrets::read_secret_text(
            "slack.bot_token",
            self.bot_token_env.as_deref(),
            self.bot_token_file.as_deref(),
        )?;
        let signing_secret = crate::secrets::read_secret_text(
            "slack.signing_secret",
            self.signing_secret_env.as_deref(),
            self.signing_secret_file.as_deref(),
        )?;
        Ok(SlackSecrets { bot_token: bot_token.trim().to_string(), signing_secret: signing_secret.trim().to_string() })
    }

    /// The step-up rule of this channel.
    pub fn step_up(&self) -> anyhow::Result<crate::channels::step_up::StepUp> {
        crate::channels::step_up::StepUp::new("slack", &self.step_up_risks, self.console_url.as_deref())
    }

    /// The Slack user id the owner of an approval is told at, if configured.
    pub fn owner_user(&self, owner: &str) -> Option<&str> {
        let owner = crate::lifecycle::normalize_identity(owner);
        self.owners
            .iter()
            .find(|(name, _)| crate::lifecycle::normalize_identity(name) == owner)
            .map(|(_, user)| user.trim())
    }

    /// `api_base_url` joined with a method name (`chat.postMessage`).
    pub fn method_url(&self, method: &str) -> String {
        format!("{}/{method}", self.api_base_url.trim_end_matches('/'))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn parses_with_defaults_and_refuses_unknown_fields() {
        let c: SlackConfig = toml::from_str(
            "bot_token_env = \"T\"\nsigning_secret_env = \"S\"\napp_id = \"A1\"\nteam_id = \"T1\"\nchannels = [\"C1\"]\n",
        )
        .unwrap();
        assert_eq!(c.api_base_url, DEFAULT_API_BASE_URL);
        assert_eq!(c.method_url("chat.update"), "https://slack.com/api/chat.update");
        assert_eq!(c.timeout, std::time::Duration::from_secs(5));
        assert!(toml::from_str::<SlackConfig>("app_id = \"A\"\nteam_id = \"T\"\nnope = 1\n").is_err());
        let owners: SlackConfig =
            toml::from_str("app_id = \"A\"\nteam_id = \"T\"\nowners = { \"Alice@corp.example\" = \"U0ALICE\" }\n")
                .unwrap();
        assert_eq!(owners.owner_user(" alice@CORP.example"), Some("U0ALICE"));
        assert_eq!(owners.owner_user("bob@corp.example"), None);
        let no_console: SlackConfig =
            toml::from_str("app_id = \"A\"\nteam_id = \"T\"\nstep_up_risks = [\"critical\"]\n").unwrap();
        assert!(no_console.secrets().err().unwrap().to_string().contains("console_url"));
    }
}
