//! `[[webhooks]]` in airlock.toml: where signed approval events are POSTed.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

/// Event sent when an approval is created.
pub const REQUESTED: &str = "approval.requested";
/// Event sent whenever it changes (a review, decided, expired, redeemed).
pub const UPDATED: &str = "approval.updated";
/// Event telling the agent's owner the outcome (approved, denied, expired), once; sent
/// only for the owners the webhook lists in `owners`.
pub const DECIDED: &str = "approval.decided";

/// `[[webhooks]]` in airlock.toml.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// Stable name: the target key is `webhook:<name>`.
    pub name: String,
    /// Where events are POSTed.
    pub url: String,
    /// Environment variable holding the signing secret (used as raw text bytes).
    #[serde(default)]
    pub secret_env: Option<String>,
    /// File holding the signing secret.
    #[serde(default)]
    pub secret_file: Option<PathBuf>,
    /// Events to send (`approval.requested`, `approval.updated`, `approval.decided`);
    /// all when empty.
    #[serde(default)]
    pub events: Vec<String>,
    /// Agent owners (as the gateway records `agent.owner`) this webhook tells of their
    /// approvals' outcomes with `approval.decided`; `"*"` for every owner. None: no
    /// owner is told here.
    #[serde(default)]
    pub owners: Vec<String>,
    /// Base URL of this service's reviewer API as receivers reach it
    /// (`https://airlock.corp.example`); links in events are relative without it.
    #[serde(default)]
    pub api_url: Option<String>,
    /// Timeout of each delivery, e.g. `10s`.
    #[serde(default = "default_timeout", with = "duration_text")]
    pub timeout: Duration,
}

fn default_timeout() -> Duration {
    Duration::from_secs(10)
}

/// `"10s"`-style durations, as elsewhere in airlock.toml.
mod duration_text {
    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<std::time::Duration, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_duration(&text).map_err(serde::de::Error::custom)
    }
}

impl WebhookConfig {
    /// Checks the fields and reads the signing secret.
    pub fn secret(&self) -> anyhow::Result<Vec<u8>> {
        let field = format!("webhooks.{}", self.name);
        if self.name.trim().is_empty() {
            anyhow::bail!("webhooks: every webhook needs a name");
        }
        if !(self.url.starts_with("https://") || self.url.starts_with("http://")) {
            anyhow::bail!("{field}.url: {:?} is not an http(s) URL", self.url);
        }
        if let Some(e) = self.events.iter().find(|e| !matches!(e.as_str(), REQUESTED | UPDATED | DECIDED)) {
            anyhow::bail!("{field}.events: unknown event {e:?} (known: {REQUESTED}, {UPDATED}, {DECIDED})");
        }
        if self.owners.iter().any(|o| o.trim().is_empty()) {
            anyhow::bail!("{field}.owners has an empty entry");
        }
        if !self.owners.is_empty() && !self.wants(DECIDED) {
            anyhow::bail!("{field}: owners are listed but events leaves out {DECIDED}, so none would be told");
        }
        let text = crate::secrets::read_secret_text(&field, self.secret_env.as_deref(), self.secret_file.as_deref())?;
        Ok(text.into_bytes())
    }

    /// Whether `event` is sent to this webhook.
    pub fn wants(&self, event: &str) -> bool {
        self.events.is_empty() || self.events.iter().any(|e| e == event)
    }

    /// Whether the owner `owner` of an approval is told here.
    pub fn tells_owner(&self, owner: &str) -> bool {
        let owner = crate::lifecycle::normalize_identity(owner);
        !owner.is_empty()
            && self.wants(DECIDED)
            && self.owners.iter().any(|o| o.trim() == "*" || crate::lifecycle::normalize_identity(o) == owner)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn parses_filters_and_refuses_unknown_fields_and_events() {
        let c: WebhookConfig = toml::from_str(
            "name = \"pd\"\nurl = \"https://x.example/hook\"\nsecret_env = \"S\"\nevents = [\"approval.requested\"]\n",
        )
        .unwrap();
        assert!(c.wants(REQUESTED) && !c.wants(UPDATED));
        assert_eq!(c.timeout, Duration::from_secs(10));
        assert!(toml::from_str::<WebhookConfig>("name = \"x\"\nurl = \"https://x\"\nsecret = \"inline\"\n").is_err());
        let bad: WebhookConfig = toml::from_str(
            "name = \"pd\"\nurl = \"https://x.example\"\nsecret_env = \"S\"\nevents = [\"approval.nope\"]\n",
        )
        .unwrap();
        assert!(bad.secret().is_err());
    }

    #[test]
    fn owners_are_told_only_when_listed_and_the_event_is_wanted() {
        let c: WebhookConfig = toml::from_str(
            "name = \"o\"\nurl = \"https://x.example\"\nsecret_env = \"S\"\nowners = [\"Alice@corp.example\"]\n",
        )
        .unwrap();
        assert!(c.tells_owner("alice@corp.example ") && !c.tells_owner("bob@corp.example") && !c.tells_owner(""));
        let any: WebhookConfig = toml::from_str(
            "name = \"o\"\nurl = \"https://x.example\"\nevents = [\"approval.decided\"]\nowners = [\"*\"]\n",
        )
        .unwrap();
        assert!(any.tells_owner("bob@corp.example"));
        let muted: WebhookConfig = toml::from_str(
            "name = \"o\"\nurl = \"https://x.example\"\nsecret_env = \"S\"\nevents = [\"approval.updated\"]\nowners = [\"*\"]\n",
        )
        .unwrap();
        assert!(!muted.tells_owner("bob@corp.example"));
        assert!(muted.secret().unwrap_err().to_string().contains("approval.decided"));
    }
}
