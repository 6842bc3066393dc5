//! Outbound calls to the Bot Connector (blocking, ureq): the bot's own Entra token
//! (client credentials, cached until shortly before it expires), posting and updating
//! card activities, and reading a conversation member's profile.
//!
//! Neither the client secret nor any token is ever logged or put in an error message.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::channels::DeliveryError;

/// A token is renewed this long before Entra says it expires (clock drift, slow calls).
const RENEW_BEFORE: Duration = Duration::from_secs(300);
/// Longest error body quoted in a delivery error.
const ERROR_BODY_CHARS: usize = 300;

/// The bot's client for the Bot Connector.
pub struct Connector {
    agent: ureq::Agent,
    token_url: String,
    app_id: String,
    secret: String,
    scope: String,
    token: Mutex<Option<CachedToken>>,
}

struct CachedToken {
    value: String,
    renew_at: Instant,
}

/// A member of a conversation, as the Bot Connector describes them.
#[derive(Clone, Debug, Default)]
pub struct MemberProfile {
    /// Entra object id.
    pub aad_object_id: Option<String>,
    /// E-mail address.
    pub email: Option<String>,
    /// User principal name.
    pub user_principal_name: Option<String>,
    /// `user`, `guest`, `anonymous`.
    pub user_role: Option<String>,
    /// The member's tenant.
    pub tenant_id: Option<String>,
}

impl Connector {
    /// A client authenticating as `app_id` with `secret` at `token_url`.
    pub fn new(token_url: String, app_id: String, secret: String, scope: String, timeout: Duration) -> Connector {
        let agent =
            ureq::Agent::config_builder().timeout_global(Some(timeout)).http_status_as_error(false).build().into();
        Connector { agent, token_url, app_id, secret, scope, token: Mutex::new(None) }
    }

    /// The bot's bearer token, from the cache or a fresh client-credentials grant.
    fn bearer(&self) -> Result<String, DeliveryError> {
        let mut cached = self.token.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(t) = cached.as_ref().filter(|t| Instant::now() < t.renew_at) {
            return Ok(t.value.clone());
        }
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", self.app_id.as_str()),
            ("client_secret", self.secret.as_str()),
            ("scope", self.scope.as_str()),
        ];
        let mut answer = self
            .agent
            .post(&self.token_url)
            .send_form(form)
            .map_err(|e| DeliveryError::Retryable(format!("token endpoint: {e}")))?;
        let status = answer.status().as_u16();
        if status != 200 {
            // The answer may echo the request; say only the status and Entra's error code.
            let code = answer
                .body_mut()
                .read_json::<Value>()
                .ok()
                .and_then(|v| v.get("error").and_then(Value::as_str).map(str::to_string))
                .unwrap_or_default();
            let message = format!("token endpoint answered {status} {code}");
            return Err(if retryable(status) {
                DeliveryError::Retryable(message)
            } else {
                DeliveryError::Permanent(message)
            });
        }
        let doc: Value = answer
            .body_mut()
            .read_json()
            .map_err(|_| DeliveryError::Retryable("token endpoint: answer is not JSON".into()))?;
        let value = doc
            .get("access_token")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| DeliveryError::Retryable("token endpoint: no access_token".into()))?
            .to_string();
        let lifetime = doc
            .get("expires_in")
            .and_then(|v| v.as_u64().or_else(|| v.as_str().and_then(|s| s.parse().ok())))
            .unwrap_or(0);
        let renew_at = Instant::now() + Duration::from_secs(lifetime).saturating_sub(RENEW_BEFORE);
        *cached = Some(CachedToken { value: value.clone(), renew_at });
        Ok(value)
    }

    /// Forgets the cached token (the connector refused it).
    fn forget_token(&self) {
        *self.token.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    /// Posts `activity` to a conversation; answers the new activity's id.
    pub fn post(&self, service_url: &str, conversation_id: &str, activity: &Value) -> Result<String, DeliveryError> {
        let url = format!("{}v3/conversations/{}/activities", base(service_url), encode(conversation_id));
        let answer = self.send("POST", &url, Some(activity))?;
        answer
            .get("id")
            .and_then(Value::as_str)
            .filter(|id| !id.is_empty())
            .map(str::to_string)
            .ok_or_else(|| DeliveryError::Retryable("connector answered no activity id".into()))
    }

    /// Replaces a posted activity (every reader sees the new card).
    pub fn update(
        &self,
        service_url: &str,
        conversation_id: &str,
        activity_id: &str,
        activity: &Value,
    ) -> Result<(), DeliveryError> {
        let url = format!(
            "{}v3/conversations/{}/activities/{}",
            base(service_url),
            encode(conversation_id),
            encode(activity_id)
        );
        let mut activity = activity.clone();
        if let Some(obj) = activity.as_object_mut() {
            obj.insert("id".into(), Value::String(activity_id.to_string()));
        }
        self.send("PUT", &url, Some(&activity)).map(|_| ())
    }

    /// Creates (or, if it exists, finds) the bot's 1:1 chat with the user whose Entra
    /// object id is `member_id`: `POST {serviceUrl}v3/conversations` with the bot, the
    /// member and the tenant (Bot Framework proactive messaging). Answers the
    /// conversation id. The app must be installed for the user, else 403.
    pub fn create_personal_conversation(
        &self,
        service_url: &str,
        member_id: &str,
        tenant_id: &str,
    ) -> Result<String, DeliveryError> {
        let url = format!("{}v3/conversations", base(service_url));
        let body = serde_json::json!({
            "isGroup": false,
            "bot": {"id": format!("28:{}", self.app_id)},
            "members": [{"id": member_id}],
            "tenantId": tenant_id,
            "channelData": {"tenant": {"id": tenant_id}},
        });
        // A 403 here means the app is not installed for the user (or is blocked for
        // them): retrying within the outbox's minutes rarely helps, and a retrying
        // notification holds back the updates of the approval's other copies.
        let answer = self.send("POST", &url, Some(&body)).map_err(|e| match e {
            DeliveryError::Retryable(m) if answered_forbidden(&m) => DeliveryError::Permanent(format!(
                "{m} (is the app installed for user {member_id}? Pre-install it with an app setup policy)"
            )),
            other => other,
        })?;
        answer
            .get("id")
            .and_then(Value::as_str)
            .filter(|id| !id.trim().is_empty())
            .map(str::to_string)
            .ok_or_else(|| DeliveryError::Retryable("connector created no conversation id".into()))
    }

    /// The profile of `member_id` in a conversation.
    pub fn member(
        &self,
        service_url: &str,
        conversation_id: &str,
        member_id: &str,
    ) -> Result<MemberProfile, DeliveryError> {
        let url =
            format!("{}v3/conversations/{}/members/{}", base(service_url), encode(conversation_id), encode(member_id));
        let doc = self.send("GET", &url, None)?;
        let text = |k: &str| doc.get(k).and_then(Value::as_str).filter(|s| !s.trim().is_empty()).map(str::to_string);
        Ok(MemberProfile {
            aad_object_id: text("aadObjectId").or_else(|| text("objectId")),
            email: text("email"),
            user_principal_name: text("userPrincipalName"),
            user_role: text("userRole"),
            tenant_id: text("tenantId"),
        })
    }

    fn send(&self, method: &str, url: &str, body: Option<&Value>) -> Result<Value, DeliveryError> {
        let token = self.bearer()?;
        let auth = format!("Bearer {token}");
        let body = body.unwrap_or(&Value::Null);
        let sent = match method {
            "POST" => self.agent.post(url).header("authorization", &auth).send_json(body),
            "PUT" => self.agent.put(url).header("authorization", &auth).send_json(body),
            _ => self.agent.get(url).header("authorization", &auth).call(),
        };
        // Transport failures (refused, reset, timeout) are worth retrying.
        let mut answer = sent.map_err(|e| DeliveryError::Retryable(format!("{method} {}: {e}", redact_url(url))))?;
        let status = answer.status().as_u16();
        let text = answer.body_mut().read_to_string().unwrap_or_default();
        if (200..300).contains(&status) {
            return Ok(serde_json::from_str(&text).unwrap_or(Value::Null));
        }
        if status == 401 {
            self.forget_token();
        }
        Err(classify(status, &text, &format!("{method} {}", redact_url(url))))
    }
}

/// Which failures the outbox retries: 429, 5xx, a rejected (maybe expired) token, and
/// `BotNotInConversationRoster` (the bot is not installed there *yet*).
fn classify(status: u16, body: &str, what: &str) -> DeliveryError {
    let code = serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| v.pointer("/error/code").and_then(Value::as_str).map(str::to_string))
        .unwrap_or_default();
    let excerpt: String = body.chars().take(ERROR_BODY_CHARS).collect();
    let message = format!("{what} answered {status} {code} {excerpt}");
    if retryable(status) || (status == 403 && code == "BotNotInConversationRoster") {
        DeliveryError::Retryable(message)
    } else {
        DeliveryError::Permanent(message)
    }
}

/// Whether a message of [`classify`] reports a 403.
fn answered_forbidden(message: &str) -> bool {
    message.contains(" answered 403 ")
}

fn retryable(status: u16) -> bool {
    status == 401 || status == 408 || status == 429 || status >= 500
}

/// `service_url` with exactly one trailing `/`.
fn base(service_url: &str) -> String {
    format!("{}/", service_url.trim().trim_end_matches('/'))
}

/// Percent-encodes one path segment (conversation ids carry `:`, `@`, `;`, `=`).
pub fn encode(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A URL for messages: scheme, host and path only (no query).
fn redact_url(url: &str) -> &str {
    url.split_once('?').map_or(url, |(u, _)| u)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn failures_are_classified_for_the_outbox() {
        let roster = r#"{"error":{"code":"BotNotInConversationRoster","message":"The bot is not part of the conversation roster."}}"#;
        assert!(matches!(classify(403, roster, "POST x"), DeliveryError::Retryable(_)));
        assert!(matches!(classify(403, r#"{"error":{"code":"Forbidden"}}"#, "x"), DeliveryError::Permanent(_)));
        assert!(matches!(classify(429, "", "x"), DeliveryError::Retryable(_)));
        assert!(matches!(classify(500, "", "x"), DeliveryError::Retryable(_)));
        assert!(matches!(classify(503, "", "x"), DeliveryError::Retryable(_)));
        assert!(matches!(classify(400, "", "x"), DeliveryError::Permanent(_)));
        assert!(matches!(classify(404, "", "x"), DeliveryError::Permanent(_)));
        assert!(answered_forbidden(&classify(403, roster, "POST x").to_string()));
        assert!(!answered_forbidden(&classify(503, "", "POST x").to_string()));
    }

    #[test]
    fn conversation_ids_are_one_path_segment() {
        assert_eq!(encode("19:abc@thread.tacv2;messageid=1"), "19%3Aabc%40thread.tacv2%3Bmessageid%3D1");
        assert_eq!(encode("a/../b"), "a%2F..%2Fb");
        assert_eq!(base("https://smba.trafficmanager.net/amer"), "https://smba.trafficmanager.net/amer/");
        assert_eq!(base("https://smba.trafficmanager.net/amer/"), "https://smba.trafficmanager.net/amer/");
    }

    #[test]
    fn an_unreachable_connector_is_retryable() {
        let c = Connector::new(
            "http://127.0.0.1:9/token".into(),
            "app".into(),
            "s3cret-value".into(),
            "scope".into(),
            Duration::from_secs(1),
        );
        let err = c.post("http://127.0.0.1:9/", "19:a", &Value::Null).unwrap_err();
        assert!(matches!(err, DeliveryError::Retryable(_)));
        assert!(!err.to_string().contains("s3cret-value"), "never the secret: {err}");
    }
}
