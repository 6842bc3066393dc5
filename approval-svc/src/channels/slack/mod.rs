//! Slack: the approval as a Block Kit message with Approve/Deny buttons in the configured
//! channels, clicks received on `POST /slack/interactivity` (v0-signed, checked before
//! anything is read), decisions recorded through [`crate::channels::decide`], and every
//! posted message brought up to date with `chat.update`. See `docs/channels/slack.md`.

pub mod api;
pub mod blocks;
pub mod config;
pub mod interact;
pub mod signature;

use std::sync::Arc;

use axum::routing::post;
use axum::Router;
use serde_json::{json, Value};

pub use config::SlackConfig;

use crate::channels::{ApprovalView, DeliveryError, Notifier};
use crate::store::Store;
use api::{Posted, WebApi};

/// Prefix of this channel's target keys.
const TARGET_PREFIX: &str = "slack:";

/// The configured Slack app.
pub struct Slack {
    config: SlackConfig,
    signing_secret: Vec<u8>,
    api: WebApi,
    seen: crate::auth::replay::RecentlySeen,
}

impl Slack {
    /// From configuration (reads the bot token and signing secret). The store is not
    /// needed: decisions go through the use cases (`crate::approvals`), deliveries through the
    /// outbox.
    pub fn new(config: &SlackConfig, _store: Arc<dyn Store>) -> anyhow::Result<Slack> {
        let secrets = config.secrets()?;
        if !config.response_url_prefix.ends_with('/') {
            // Without the slash, `https://hooks.slack.com.evil.example/` would match.
            anyhow::bail!("slack.response_url_prefix must end with '/'");
        }
        Ok(Slack {
            api: WebApi::new(&config.api_base_url, secrets.bot_token, config.timeout),
            signing_secret: secrets.signing_secret.into_bytes(),
            config: config.clone(),
            // Clicks within twice the signature window; older ones fail the timestamp check.
            seen: crate::auth::replay::RecentlySeen::bounded(2 * signature::MAX_SKEW_SECS, 4096),
        })
    }

    /// The configuration it was built from.
    pub fn config(&self) -> &SlackConfig {
        &self.config
    }
}

/// Inbound endpoints of the channel.
pub fn router() -> Router<Arc<crate::channels::Callbacks>> {
    Router::new().route("/slack/interactivity", post(interact::interactivity))
}

fn channel_of(target: &str) -> Result<&str, DeliveryError> {
    target
        .strip_prefix(TARGET_PREFIX)
        .filter(|c| !c.is_empty())
        .ok_or_else(|| DeliveryError::Permanent(format!("not a Slack target: {target}")))
}

impl Notifier for Slack {
    fn channel(&self) -> &'static str {
        "slack"
    }

    fn targets(&self) -> Vec<String> {
        self.config.channels.iter().map(|c| format!("{TARGET_PREFIX}{c}")).collect()
    }

    fn post(&self, target: &str, view: &ApprovalView) -> Result<Value, DeliveryError> {
        let posted =
            self.api.post_message(channel_of(target)?, &blocks::fallback_text(view), &blocks::message(view))?;
        Ok(json!({"channel": posted.channel, "ts": posted.ts}))
    }

    fn update(&self, target: &str, posted: &Value, view: &ApprovalView) -> Result<(), DeliveryError> {
        let text = |k: &str| posted.get(k).and_then(Value::as_str).filter(|v| !v.is_empty()).map(str::to_string);
        let (Some(channel), Some(ts)) =
            (text("channel").or_else(|| channel_of(target).ok().map(str::to_string)), text("ts"))
        else {
            return Err(DeliveryError::Permanent(format!("no Slack message recorded for {target}: {posted}")));
        };
        self.api.update_message(&Posted { channel, ts }, &blocks::fallback_text(view), &blocks::message(view))
    }
}
