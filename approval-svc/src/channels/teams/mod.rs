//! Microsoft Teams: a Bot Framework bot that posts an Adaptive Card per approval to
//! every known conversation and receives reviewers' clicks on its messaging endpoint
//! (`POST /teams/messages`). See `docs/channels/teams.md`.
//!
//! - [`config`] — `[teams]`.
//! - [`card`] — the card and the activity carrying it.
//! - [`token`] — inbound JWT verification and the key cache.
//! - [`connector`] — outbound Bot Connector calls with the bot's Entra token.
//! - [`inbound`] — the messaging endpoint (clicks, installs).
//! - [`identity`] — who clicked, as a configured reviewer.
//! - [`replay`] — retried invokes recognised by activity id.

pub mod card;
pub mod config;
pub mod connector;
mod identity;
mod inbound;
pub mod token;

use std::sync::Arc;

use axum::routing::post;
use axum::Router;
use serde_json::{json, Value};

use crate::channels::{ApprovalView, DeliveryError, Notifier};
use crate::store::Store;

pub use config::{ConversationConfig, TeamsConfig};

/// The channel name (metrics, audit, store rows).
pub const CHANNEL: &str = "teams";
/// Target keys are `teams:<conversation id>`.
const TARGET_PREFIX: &str = "teams:";

/// The configured Teams channel.
pub struct Teams {
    config: TeamsConfig,
    store: Arc<dyn Store>,
    connector: connector::Connector,
    verifier: token::TokenVerifier,
    /// Activity ids answered within 15 minutes: a retried invoke records nothing again.
    replays: crate::auth::replay::RecentlySeen,
}

/// Where a conversation lives.
#[derive(Clone, Debug, PartialEq, Eq)]
struct ConversationRef {
    service_url: String,
    conversation_id: String,
}

impl Teams {
    /// From configuration (reads the app secret).
    pub fn new(config: &TeamsConfig, store: Arc<dyn Store>) -> anyhow::Result<Teams> {
        config.validate()?;
        let secret =
            crate::secrets::read_secret_text("teams", config.secret_env.as_deref(), config.secret_file.as_deref())?;
        let connector = connector::Connector::new(
            config.token_url(),
            config.app_id.clone(),
            secret,
            config.token_scope.clone(),
            config.http_timeout,
        );
        let verifier = token::TokenVerifier::new(
            &config.openid_metadata_url,
            &config.issuer,
            &config.app_id,
            config.clock_skew,
            config.http_timeout,
        );
        Ok(Teams {
            config: config.clone(),
            store,
            connector,
            verifier,
            replays: crate::auth::replay::RecentlySeen::bounded(15 * 60, 10_000),
        })
    }

    /// Static conversations, then those learnt from installs (a learnt reference of a
    /// configured id does not replace the configured one).
    fn conversations(&self) -> Vec<ConversationRef> {
        let mut all: Vec<ConversationRef> = self
            .config
            .conversations
            .iter()
            .map(|c| ConversationRef { service_url: c.service_url.clone(), conversation_id: c.conversation_id.clone() })
            .collect();
        match self.store.conversations(CHANNEL) {
            Ok(learnt) => {
                for (id, reference) in learnt {
                    let service_url =
                        reference.get("service_url").and_then(Value::as_str).unwrap_or_default().to_string();
                    if service_url.is_empty() || all.iter().any(|c| c.conversation_id == id) {
                        continue;
                    }
                    all.push(ConversationRef { service_url, conversation_id: id });
                }
            }
            Err(e) => tracing::warn!(error = %e, "teams: reading learnt conversations failed"),
        }
        all
    }

    fn conversation(&self, target: &str) -> Result<ConversationRef, DeliveryError> {
        let id = target
            .strip_prefix(TARGET_PREFIX)
            .ok_or_else(|| DeliveryError::Permanent(format!("{target:?} is not a teams target")))?;
        let found = self
            .conversations()
            .into_iter()
            .find(|c| c.conversation_id == id)
            .ok_or_else(|| DeliveryError::Permanent(format!("no conversation {id:?} is known")))?;
        // Learnt references passed the same check when they arrived; configuration can
        // change between restarts, so check again before sending a token anywhere.
        self.config.service_url_allowed(&found.service_url).map_err(DeliveryError::Permanent)?;
        Ok(found)
    }
}

impl Notifier for Teams {
    fn channel(&self) -> &'static str {
        CHANNEL
    }

    fn targets(&self) -> Vec<String> {
        self.conversations().into_iter().map(|c| format!("{TARGET_PREFIX}{}", c.conversation_id)).collect()
    }

    fn post(&self, target: &str, view: &ApprovalView) -> Result<Value, DeliveryError> {
        let conversation = self.conversation(target)?;
        let activity_id =
            self.connector.post(&conversation.service_url, &conversation.conversation_id, &card::activity(view))?;
        Ok(json!({
            "service_url": conversation.service_url,
            "conversation_id": conversation.conversation_id,
            "activity_id": activity_id,
        }))
    }

    fn update(&self, target: &str, posted: &Value, view: &ApprovalView) -> Result<(), DeliveryError> {
        let text = |k: &str| posted.get(k).and_then(Value::as_str).filter(|s| !s.is_empty());
        let (Some(service_url), Some(conversation_id), Some(activity_id)) =
            (text("service_url"), text("conversation_id"), text("activity_id"))
        else {
            return Err(DeliveryError::Permanent(format!("{target}: posted reference is incomplete")));
        };
        self.config.service_url_allowed(service_url).map_err(DeliveryError::Permanent)?;
        self.connector.update(service_url, conversation_id, activity_id, &card::activity(view))
    }
}

/// Inbound endpoints of the channel.
pub fn router() -> Router<Arc<crate::channels::Callbacks>> {
    Router::new().route("/teams/messages", post(inbound::messages))
}
