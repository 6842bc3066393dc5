//! Slack: the approval as a Block Kit message with Approve/Deny buttons in the configured
//! channels, clicks received on `POST /slack/interactivity` (v0-signed, checked before
//! anything is read), decisions recorded through the review use case ([`crate::approvals`]), and every
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

use crate::channels::notice::OwnerNotice;
use crate::channels::step_up::StepUp;
use crate::channels::{ApprovalView, DeliveryError, Notifier, Target};
use crate::store::Store;
use api::{Posted, WebApi};

/// Prefix of this channel's target keys.
const TARGET_PREFIX: &str = "slack:";
/// Prefix of an owner's direct-message target (`slack:owner:<user id>`).
const OWNER_PREFIX: &str = "slack:owner:";

/// The configured Slack app.
pub struct Slack {
    config: SlackConfig,
    signing_secret: Vec<u8>,
    api: WebApi,
    seen: crate::auth::replay::RecentlySeen,
    step_up: StepUp,
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
            step_up: config.step_up()?,
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

    /// Whether approvals of `risk` are decided only in the console.
    pub fn step_up_required(&self, risk: &str) -> bool {
        self.step_up.required(risk)
    }

    /// Also requires step-up for what `also` requires (the web console's rule).
    pub fn with_step_up(mut self, also: &StepUp) -> Self {
        self.step_up = self.step_up.merged(also);
        self
    }

    /// The console page of `view` when its risk needs step-up.
    pub fn console_link(&self, view: &ApprovalView) -> Option<String> {
        self.step_up_required(&view.risk).then(|| self.step_up.link(&view.id)).flatten()
    }

    fn blocks(&self, view: &ApprovalView) -> Vec<Value> {
        blocks::message(view, self.console_link(view).as_deref())
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

    fn targets(&self, view: &ApprovalView) -> Vec<Target> {
        let mut targets: Vec<Target> =
            self.config.channels.iter().map(|c| Target::reviewers(format!("{TARGET_PREFIX}{c}"))).collect();
        if let Some(user) = view.owner.as_deref().and_then(|o| self.config.owner_user(o)) {
            targets.push(Target::owner(format!("{OWNER_PREFIX}{user}")));
        }
        targets
    }

    fn post(&self, target: &str, view: &ApprovalView) -> Result<Value, DeliveryError> {
        if let Some(user) = target.strip_prefix(OWNER_PREFIX).filter(|u| !u.is_empty()) {
            // A user id as the channel: Slack posts in the app's direct messages with them.
            let notice = OwnerNotice::of(view)
                .ok_or_else(|| DeliveryError::Permanent(format!("{target}: approval {} is still open", view.id)))?;
            let posted = self.api.post_message(user, &blocks::escape(&notice.headline()), &blocks::notice(&notice))?;
            return Ok(json!({"channel": posted.channel, "ts": posted.ts}));
        }
        let posted = self.api.post_message(channel_of(target)?, &blocks::fallback_text(view), &self.blocks(view))?;
        Ok(json!({"channel": posted.channel, "ts": posted.ts}))
    }

    fn update(&self, target: &str, posted: &Value, view: &ApprovalView) -> Result<(), DeliveryError> {
        let text = |k: &str| posted.get(k).and_then(Value::as_str).filter(|v| !v.is_empty()).map(str::to_string);
        let (Some(channel), Some(ts)) =
            (text("channel").or_else(|| channel_of(target).ok().map(str::to_string)), text("ts"))
        else {
            return Err(DeliveryError::Permanent(format!("no Slack message recorded for {target}: {posted}")));
        };
        self.api.update_message(&Posted { channel, ts }, &blocks::fallback_text(view), &self.blocks(view))
    }
}
