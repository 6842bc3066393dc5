//! Where reviewers are asked, and how their answers come back: Microsoft Teams (a Bot
//! Framework bot posting Adaptive Cards), Slack (Block Kit + signed interactivity) and
//! signed webhooks. Every channel renders the same [`ApprovalView`]; every chat decision
//! goes through the same use case as the API's ([`crate::approvals`]), so quorum,
//! separation of duties and expiry are the API's rules.
//!
//! Outbound messages never leave from a request handler: the store queues a notification
//! in the same transaction as the change it announces, and [`outbox`] delivers it (retry
//! with backoff, durable across restarts, each copy posted once and then updated).

pub mod notice;
pub mod outbox;
pub mod slack;
pub mod step_up;
pub mod teams;
pub mod view;
pub mod webhook;

use std::sync::Arc;

use serde_json::Value;

pub use view::ApprovalView;

use crate::approvals::Approvals;
use crate::auth::reviewer::ReviewerDirectory;

/// Why a delivery failed. Either way the approval itself is untouched: the outbox retries
/// with backoff and, after its last attempt, records the failure in metrics and audit.
#[derive(Clone, Debug, thiserror::Error)]
pub enum DeliveryError {
    /// Worth retrying (timeouts, 5xx, 429, `BotNotInConversationRoster` until the bot is
    /// installed).
    #[error("{0}")]
    Retryable(String),
    /// Retrying cannot help (configuration, 4xx other than the above).
    #[error("{0}")]
    Permanent(String),
}

/// Who a message at a target is for; the outbox posts and updates them differently.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Audience {
    /// Reviewers: the approval card is posted while it is open, then kept up to date.
    Reviewers,
    /// The agent's owner: one notice once the approval is closed (approved, denied,
    /// expired), never updated.
    Owner,
}

/// One place an approval's messages go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// Stable key, stored with the delivery: `teams:<conversation id>`,
    /// `teams:dm:<object id>`, `slack:<channel id>`, `webhook:<name>`, ...
    pub key: String,
    /// Who reads it.
    pub audience: Audience,
}

impl Target {
    /// A reviewers' target.
    pub fn reviewers(key: impl Into<String>) -> Target {
        Target { key: key.into(), audience: Audience::Reviewers }
    }

    /// The owner's target.
    pub fn owner(key: impl Into<String>) -> Target {
        Target { key: key.into(), audience: Audience::Owner }
    }
}

/// A destination for approval messages. Implementations are blocking (ureq); the outbox
/// calls them off the async runtime.
pub trait Notifier: Send + Sync {
    /// Channel name for metrics, audit and reviews: `teams`, `slack`, `webhook`.
    fn channel(&self) -> &'static str;
    /// Where `view` goes. Read at every delivery, so conversations learnt at run time
    /// (Teams installs) are included; for one approval the answer must not depend on
    /// its votes, or a copy posted earlier would drop out of the updates.
    fn targets(&self, view: &ApprovalView) -> Vec<Target>;
    /// Posts a new message for `view` to `target`; answers what [`Notifier::update`] needs
    /// to change that message later (stored with the delivery).
    fn post(&self, target: &str, view: &ApprovalView) -> Result<Value, DeliveryError>;
    /// Brings the message posted at `posted` up to date with `view` (decided, expired,
    /// approvals so far). Channels without edits (webhooks) send a new event instead.
    fn update(&self, target: &str, posted: &Value, view: &ApprovalView) -> Result<(), DeliveryError>;
}

/// What the chat callbacks (`/teams/messages`, `/slack/interactivity`) work with.
pub struct Callbacks {
    /// Where decisions go.
    pub approvals: Arc<Approvals>,
    /// Who the clickers are.
    pub reviewers: ReviewerDirectory,
    /// The Teams bot, if configured (its endpoint answers 404 otherwise).
    pub teams: Option<Arc<teams::Teams>>,
    /// The Slack app, if configured (its endpoint answers 404 otherwise).
    pub slack: Option<Arc<slack::Slack>>,
}

/// The configured channels.
#[derive(Clone, Default)]
pub struct Channels {
    /// The Teams bot, if configured (its messaging endpoint needs it).
    pub teams: Option<Arc<teams::Teams>>,
    /// The Slack app, if configured (its interactivity endpoint needs it).
    pub slack: Option<Arc<slack::Slack>>,
    /// Everything that receives approval messages (Teams, Slack, webhooks).
    pub notifiers: Vec<Arc<dyn Notifier>>,
}

impl Channels {
    /// Builds every configured channel (reading its secrets); none configured is fine.
    pub fn load(
        teams: Option<&teams::TeamsConfig>,
        slack: Option<&slack::SlackConfig>,
        webhooks: &[webhook::WebhookConfig],
        store: Arc<dyn crate::store::Store>,
    ) -> anyhow::Result<Channels> {
        Channels::load_with_step_up(teams, slack, webhooks, store, &step_up::StepUp::default())
    }

    /// [`Channels::load`], with the web console's step-up rule joined to each chat
    /// channel's own: an approval the console decides only after a fresh sign-in is never
    /// decided in chat either.
    pub fn load_with_step_up(
        teams: Option<&teams::TeamsConfig>,
        slack: Option<&slack::SlackConfig>,
        webhooks: &[webhook::WebhookConfig],
        store: Arc<dyn crate::store::Store>,
        console: &step_up::StepUp,
    ) -> anyhow::Result<Channels> {
        let mut channels = Channels::default();
        if let Some(c) = teams {
            let teams = Arc::new(teams::Teams::new(c, store.clone())?.with_step_up(console));
            channels.notifiers.push(teams.clone());
            channels.teams = Some(teams);
        }
        if let Some(c) = slack {
            let slack = Arc::new(slack::Slack::new(c, store.clone())?.with_step_up(console));
            channels.notifiers.push(slack.clone());
            channels.slack = Some(slack);
        }
        for c in webhooks {
            channels.notifiers.push(Arc::new(webhook::Webhook::new(c)?));
        }
        Ok(channels)
    }
}
