//! Microsoft Teams: a Bot Framework bot that posts an Adaptive Card per approval to
//! every known conversation and 1:1 to the reviewers the approval's groups name, tells
//! the agent's owner the outcome, and receives reviewers' clicks on its messaging
//! endpoint (`POST /teams/messages`). See `docs/channels/teams.md`.
//!
//! - [`config`] — `[teams]`.
//! - [`card`] — the card, the owner's notice and the activities carrying them.
//! - [`direct`] — who is messaged 1:1, and the personal conversations.
//! - [`manifest`] — the Teams app manifest (`airlock teams package`).
//! - [`token`] — inbound JWT verification and the key cache.
//! - [`connector`] — outbound Bot Connector calls with the bot's Entra token.
//! - [`inbound`] — the messaging endpoint (clicks, installs).
//! - [`identity`] — who clicked, as a configured reviewer.
//! - [`replay`] — retried invokes recognised by activity id.

pub mod card;
pub mod config;
pub mod connector;
pub mod direct;
mod identity;
mod inbound;
pub mod manifest;
pub mod token;

use std::sync::Arc;

use axum::routing::post;
use axum::Router;
use serde_json::{json, Value};

use crate::channels::notice::OwnerNotice;
use crate::channels::step_up::StepUp;
use crate::channels::{ApprovalView, DeliveryError, Notifier, Target};
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
    step_up: StepUp,
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
            step_up: config.step_up()?,
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
                    // A personal chat learnt before personal installs were kept apart
                    // (`direct::PERSONAL`) is one user's: it gets only what is meant for them.
                    let personal = reference.get("conversation_type").and_then(Value::as_str) == Some("personal");
                    if service_url.is_empty() || personal || all.iter().any(|c| c.conversation_id == id) {
                        continue;
                    }
                    all.push(ConversationRef { service_url, conversation_id: id });
                }
            }
            Err(e) => tracing::warn!(error = %e, "teams: reading learnt conversations failed"),
        }
        all
    }

    /// Also requires step-up for what `also` requires (the web console's rule).
    pub fn with_step_up(mut self, also: &StepUp) -> Self {
        self.step_up = self.step_up.merged(also);
        self
    }

    /// The console page of `view` when its risk needs step-up (its card links there
    /// instead of deciding in chat).
    fn console_link(&self, view: &ApprovalView) -> Option<String> {
        self.step_up_required(&view.risk).then(|| self.step_up.link(&view.id)).flatten()
    }

    /// Whether approvals of `risk` are decided only in the console.
    fn step_up_required(&self, risk: &str) -> bool {
        self.step_up.required(risk)
    }

    /// The card activity of `view` as this channel shows it.
    fn card_activity(&self, view: &ApprovalView) -> Value {
        card::activity(view, self.console_link(view).as_deref())
    }

    /// The 1:1 conversation with the user `object_id`: the stored reference (from an
    /// earlier creation or a personal install), else a new one, created proactively and
    /// stored before anything is posted to it.
    fn personal_conversation(&self, object_id: &str) -> Result<ConversationRef, DeliveryError> {
        let key = direct::object_key(object_id);
        let stored = self
            .store
            .conversations(direct::PERSONAL)
            .map_err(|e| DeliveryError::Retryable(format!("reading personal conversations: {e}")))?
            .into_iter()
            .find(|(id, _)| *id == key)
            .and_then(|(_, reference)| {
                let text =
                    |k: &str| reference.get(k).and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_string);
                Some(ConversationRef { service_url: text("service_url")?, conversation_id: text("conversation_id")? })
            });
        if let Some(found) = stored {
            self.config.service_url_allowed(&found.service_url).map_err(DeliveryError::Permanent)?;
            return Ok(found);
        }
        let service_url = self.config.direct_service_url.clone();
        self.config.service_url_allowed(&service_url).map_err(DeliveryError::Permanent)?;
        let conversation_id =
            self.connector.create_personal_conversation(&service_url, &key, &self.config.tenant_id)?;
        let reference = json!({
            "service_url": service_url,
            "conversation_id": conversation_id,
            "tenant_id": self.config.tenant_id,
            "conversation_type": "personal",
            "aad_object_id": key,
            "learnt_from": "createConversation",
        });
        self.store
            .save_conversation(direct::PERSONAL, &key, reference, crate::time::now_ms())
            .map_err(|e| DeliveryError::Retryable(format!("storing the personal conversation: {e}")))?;
        tracing::info!(object_id = %key, conversation_id, "teams: personal conversation created");
        Ok(ConversationRef { service_url, conversation_id })
    }

    /// Posts `activity` to `conversation`; answers the reference `update` needs.
    fn post_to(&self, conversation: &ConversationRef, activity: &Value) -> Result<Value, DeliveryError> {
        let activity_id = self.connector.post(&conversation.service_url, &conversation.conversation_id, activity)?;
        Ok(json!({
            "service_url": conversation.service_url,
            "conversation_id": conversation.conversation_id,
            "activity_id": activity_id,
        }))
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

    fn targets(&self, view: &ApprovalView) -> Vec<Target> {
        let mut targets: Vec<Target> = self
            .conversations()
            .into_iter()
            .map(|c| Target::reviewers(format!("{TARGET_PREFIX}{}", c.conversation_id)))
            .collect();
        targets.extend(direct::targets(&self.config, view));
        targets
    }

    fn post(&self, target: &str, view: &ApprovalView) -> Result<Value, DeliveryError> {
        if let Some(object_id) = target.strip_prefix(direct::REVIEWER_PREFIX) {
            let conversation = self.personal_conversation(object_id)?;
            return self.post_to(&conversation, &self.card_activity(view));
        }
        if let Some(object_id) = target.strip_prefix(direct::OWNER_PREFIX) {
            let notice = OwnerNotice::of(view)
                .ok_or_else(|| DeliveryError::Permanent(format!("{target}: approval {} is still open", view.id)))?;
            let conversation = self.personal_conversation(object_id)?;
            return self.post_to(&conversation, &card::notice_activity(&notice));
        }
        let conversation = self.conversation(target)?;
        self.post_to(&conversation, &self.card_activity(view))
    }

    fn update(&self, target: &str, posted: &Value, view: &ApprovalView) -> Result<(), DeliveryError> {
        let text = |k: &str| posted.get(k).and_then(Value::as_str).filter(|s| !s.is_empty());
        let (Some(service_url), Some(conversation_id), Some(activity_id)) =
            (text("service_url"), text("conversation_id"), text("activity_id"))
        else {
            return Err(DeliveryError::Permanent(format!("{target}: posted reference is incomplete")));
        };
        self.config.service_url_allowed(service_url).map_err(DeliveryError::Permanent)?;
        self.connector.update(service_url, conversation_id, activity_id, &self.card_activity(view))
    }
}

/// Inbound endpoints of the channel.
pub fn router() -> Router<Arc<crate::channels::Callbacks>> {
    Router::new().route("/teams/messages", post(inbound::messages))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn teams(dir: &tempfile::TempDir) -> Teams {
        std::fs::write(dir.path().join("secret"), "s3cret\n").unwrap();
        let config: TeamsConfig = toml::from_str(&format!(
            "app_id = \"app\"\ntenant_id = \"t1\"\nsecret_file = {:?}\nallowed_service_url_hosts = [\"127.0.0.1\"]\n\
             direct_service_url = \"http://127.0.0.1:9/\"\n\
             conversations = [{{ service_url = \"http://127.0.0.1:9/\", conversation_id = \"19:configured\" }}]\n\
             reviewers = {{ \"sre\" = [\"OID-BOB\"] }}\n",
            dir.path().join("secret")
        ))
        .unwrap();
        let store: Arc<dyn Store> =
            Arc::new(crate::store::SqliteStore::open(&dir.path().join("db"), None, 100).unwrap());
        Teams::new(&config, store).unwrap()
    }

    fn view(groups: &[&str]) -> ApprovalView {
        let mut v = ApprovalView::of(&crate::store::Approval {
            id: "apr_1".into(),
            status: crate::lifecycle::Status::Pending,
            agent: "a".into(),
            digest: "d".into(),
            created_ms: 0,
            expires_ms: 1,
            decided_ms: None,
            usable_until_ms: None,
            redeem_count: 0,
            quorum: 1,
            reuse: "once".into(),
            credential: None,
            create: json!({}),
            reviews: vec![],
        });
        v.groups = groups.iter().map(|g| g.to_string()).collect();
        v
    }

    #[test]
    fn learnt_team_chats_are_broadcast_but_personal_chats_are_not() {
        let dir = tempfile::tempdir().unwrap();
        let t = teams(&dir);
        let learn = |id: &str, kind: &str| {
            let reference =
                json!({"service_url": "http://127.0.0.1:9/", "conversation_id": id, "conversation_type": kind});
            t.store.save_conversation(CHANNEL, id, reference, 0).unwrap();
        };
        learn("19:team-channel", "channel");
        learn("a:old-personal-install", "personal");
        let keys: Vec<String> = t.targets(&view(&["sre"])).into_iter().map(|t| t.key).collect();
        assert_eq!(keys, vec!["teams:19:configured", "teams:19:team-channel", "teams:dm:oid-bob"]);
        let other: Vec<String> = t.targets(&view(&["finance"])).into_iter().map(|t| t.key).collect();
        assert_eq!(other, vec!["teams:19:configured", "teams:19:team-channel"], "bob is no finance reviewer");
    }
}
