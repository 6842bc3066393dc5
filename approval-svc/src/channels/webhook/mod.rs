//! Signed webhooks: every approval is POSTed as JSON (`approval.requested`) to each
//! configured URL, and each change as a new POST (`approval.updated`), signed with the
//! webhook's secret so the receiver knows it came from this service. Webhooks only
//! inform: decisions come back through the reviewer API (`links` in the event). See
//! `docs/channels/webhook.md`.

pub mod config;
pub mod payload;
pub mod signature;

use serde_json::{json, Value};

pub use config::WebhookConfig;

use crate::channels::notice::OwnerNotice;
use crate::channels::{ApprovalView, DeliveryError, Notifier, Target};
use crate::time::now_ms;

/// Prefix of this channel's target keys.
const TARGET_PREFIX: &str = "webhook:";
/// Prefix of the owner-notice target keys (`webhook-owner:<name>`).
const OWNER_PREFIX: &str = "webhook-owner:";

/// One configured webhook.
pub struct Webhook {
    config: WebhookConfig,
    secret: Vec<u8>,
    agent: ureq::Agent,
}

impl Webhook {
    /// From configuration (reads the signing secret).
    pub fn new(config: &WebhookConfig) -> anyhow::Result<Webhook> {
        let secret = config.secret()?;
        // No redirects: a redirected POST would go somewhere the operator did not name.
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(config.timeout))
            .http_status_as_error(false)
            .max_redirects(0)
            .build()
            .into();
        Ok(Webhook { config: config.clone(), secret, agent })
    }

    fn target(&self) -> String {
        format!("{TARGET_PREFIX}{}", self.config.name)
    }

    fn owner_target(&self) -> String {
        format!("{OWNER_PREFIX}{}", self.config.name)
    }

    /// Signs and POSTs `event` for `view`; answers the delivery id.
    fn send(&self, target: &str, event: &str, view: &ApprovalView) -> Result<String, DeliveryError> {
        let now = now_ms();
        let delivery = payload::delivery_id(&self.config.name, event, view);
        let api_url = self.config.api_url.as_deref();
        let body = if target == self.owner_target() && event == config::DECIDED {
            let notice = OwnerNotice::of(view)
                .ok_or_else(|| DeliveryError::Permanent(format!("{target}: approval {} is still open", view.id)))?;
            payload::decided(&delivery, view, &notice, api_url, now)
        } else if target == self.target() && event != config::DECIDED {
            payload::event(event, &delivery, view, api_url, now)
        } else {
            return Err(DeliveryError::Permanent(format!("{target} is not webhook {}", self.config.name)));
        };
        let body = body.to_string();
        let timestamp = now / 1000;
        let signature = signature::sign(&self.secret, timestamp, body.as_bytes());
        let answer = self
            .agent
            .post(&self.config.url)
            .header("content-type", "application/json")
            .header("user-agent", "airlock-webhooks/1")
            .header(signature::TIMESTAMP_HEADER, &timestamp.to_string())
            .header(signature::SIGNATURE_HEADER, &signature)
            .header(signature::DELIVERY_HEADER, &delivery)
            .header(signature::EVENT_HEADER, event)
            .send(body.as_bytes());
        let name = &self.config.name;
        let status = match answer {
            Ok(a) => a.status().as_u16(),
            Err(e) => return Err(DeliveryError::Retryable(format!("webhook {name}: {e}"))),
        };
        match status {
            200..=299 => Ok(delivery),
            408 | 429 | 500..=599 => Err(DeliveryError::Retryable(format!("webhook {name}: HTTP {status}"))),
            _ => Err(DeliveryError::Permanent(format!("webhook {name}: HTTP {status}"))),
        }
    }
}

impl Notifier for Webhook {
    fn channel(&self) -> &'static str {
        "webhook"
    }

    fn targets(&self, view: &ApprovalView) -> Vec<Target> {
        let mut targets = vec![Target::reviewers(self.target())];
        if view.owner.as_deref().is_some_and(|o| self.config.tells_owner(o)) {
            targets.push(Target::owner(self.owner_target()));
        }
        targets
    }

    fn post(&self, target: &str, view: &ApprovalView) -> Result<Value, DeliveryError> {
        if target == self.owner_target() {
            let delivery = self.send(target, config::DECIDED, view)?;
            return Ok(json!({"delivery": delivery}));
        }
        if !self.config.wants(config::REQUESTED) {
            // Nothing to send; what `update` gets back says so.
            return Ok(json!({"skipped": config::REQUESTED}));
        }
        let delivery = self.send(target, config::REQUESTED, view)?;
        Ok(json!({"delivery": delivery}))
    }

    fn update(&self, target: &str, _posted: &Value, view: &ApprovalView) -> Result<(), DeliveryError> {
        if !self.config.wants(config::UPDATED) {
            return Ok(());
        }
        self.send(target, config::UPDATED, view).map(|_| ())
    }
}
