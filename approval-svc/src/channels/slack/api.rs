//! The few Slack Web API methods the channel needs — `chat.postMessage`, `chat.update`,
//! `users.info` — plus posting to a click's `response_url`. Blocking (ureq): the outbox
//! calls them off the async runtime, and the click handler through `spawn_blocking`.
//!
//! Slack answers most failures with HTTP 200 and `{"ok": false, "error": "…"}`, so the
//! body decides as much as the status: rate limits, Slack's own faults and transport
//! failures are worth retrying; anything else (bad token, unknown channel) is not.

use std::time::Duration;

use serde_json::{json, Value};

use crate::channels::DeliveryError;

/// `error` codes Slack documents as transient.
const RETRYABLE_ERRORS: &[&str] =
    &["ratelimited", "rate_limited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"];

/// A Web API client for one bot token.
pub struct WebApi {
    agent: ureq::Agent,
    base_url: String,
    token: String,
}

/// Where a posted message is: what `chat.update` needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Posted {
    /// Channel id (`C…`).
    pub channel: String,
    /// Message timestamp (its id within the channel).
    pub ts: String,
}

impl WebApi {
    /// A client of `base_url` (`https://slack.com/api/`) with `token`.
    pub fn new(base_url: &str, token: String, timeout: Duration) -> WebApi {
        let agent: ureq::Agent =
            ureq::Agent::config_builder().timeout_global(Some(timeout)).http_status_as_error(false).build().into();
        WebApi { agent, base_url: base_url.trim_end_matches('/').to_string(), token }
    }

    fn url(&self, method: &str) -> String {
        format!("{}/{method}", self.base_url)
    }

    /// `chat.postMessage`.
    pub fn post_message(&self, channel: &str, text: &str, blocks: &[Value]) -> Result<Posted, DeliveryError> {
        let answer =
            self.call_json("chat.postMessage", &json!({"channel": channel, "text": text, "blocks": blocks}))?;
        let ts = answer.get("ts").and_then(Value::as_str).filter(|t| !t.is_empty());
        let Some(ts) = ts else {
            return Err(DeliveryError::Permanent("chat.postMessage answered ok without a message ts".into()));
        };
        // Slack answers the channel's id even when posted by name.
        let channel = answer.get("channel").and_then(Value::as_str).unwrap_or(channel);
        Ok(Posted { channel: channel.to_string(), ts: ts.to_string() })
    }

    /// `chat.update` of the message at `posted`.
    pub fn update_message(&self, posted: &Posted, text: &str, blocks: &[Value]) -> Result<(), DeliveryError> {
        self.call_json(
            "chat.update",
            &json!({"channel": posted.channel, "ts": posted.ts, "text": text, "blocks": blocks}),
        )
        .map(|_| ())
    }

    /// The e-mail of Slack user `user_id` (`users.info`, scope `users:read.email`);
    /// `None` when Slack shows none (bots, scope missing from the profile).
    pub fn user_email(&self, user_id: &str) -> Result<Option<String>, DeliveryError> {
        let method = "users.info";
        let answer = self
            .agent
            .get(self.url(method))
            .query("user", user_id)
            .header("authorization", &format!("Bearer {}", self.token))
            .call();
        let answer = read(method, answer)?;
        Ok(answer
            .pointer("/user/profile/email")
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .map(str::to_string))
    }

    /// Posts `message` to a click's `response_url` (no token: the URL is the credential).
    pub fn respond(&self, response_url: &str, message: &Value) -> Result<(), DeliveryError> {
        let answer = self
            .agent
            .post(response_url)
            .header("content-type", "application/json; charset=utf-8")
            .send(message.to_string().as_bytes());
        match answer {
            Ok(r) if r.status().is_success() => Ok(()),
            Ok(r) => Err(classify_status("response_url", r.status().as_u16())),
            Err(e) => Err(DeliveryError::Retryable(format!("response_url: {e}"))),
        }
    }

    fn call_json(&self, method: &str, body: &Value) -> Result<Value, DeliveryError> {
        let answer = self
            .agent
            .post(self.url(method))
            .header("authorization", &format!("Bearer {}", self.token))
            .header("content-type", "application/json; charset=utf-8")
            // Compact: `send_json` pretty-prints, and block payloads are large enough.
            .send(body.to_string().as_bytes());
        read(method, answer)
    }
}

/// The `ok: true` answer of a Web API call, or why not.
fn read(method: &str, answer: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Result<Value, DeliveryError> {
    let mut answer = answer.map_err(|e| DeliveryError::Retryable(format!("{method}: {e}")))?;
    let status = answer.status().as_u16();
    if status != 200 {
        return Err(classify_status(method, status));
    }
    let value: Value = answer
        .body_mut()
        .read_json()
        .map_err(|e| DeliveryError::Retryable(format!("{method}: answer is not JSON: {e}")))?;
    if value.get("ok").and_then(Value::as_bool) == Some(true) {
        return Ok(value);
    }
    let error = value.get("error").and_then(Value::as_str).unwrap_or("unknown_error");
    if RETRYABLE_ERRORS.contains(&error) {
        Err(DeliveryError::Retryable(format!("{method}: {error}")))
    } else {
        Err(DeliveryError::Permanent(format!("{method}: {error}")))
    }
}

fn classify_status(method: &str, status: u16) -> DeliveryError {
    let message = format!("{method}: HTTP {status}");
    if status == 429 || status == 408 || status >= 500 {
        DeliveryError::Retryable(message)
    } else {
        DeliveryError::Permanent(message)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::io::{Read, Write};

    /// A one-connection HTTP server on 127.0.0.1 answering `status` with `body`; answers
    /// its URL and a handle yielding the request text it received.
    fn answer_once(status: u16, body: &str) -> (String, std::thread::JoinHandle<String>) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/api/", listener.local_addr().unwrap());
        let body = body.to_string();
        let handle = std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut got = Vec::new();
            let mut buf = [0u8; 4096];
            // Head, then as much body as content-length says.
            while let Ok(n) = conn.read(&mut buf) {
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&got).to_string();
                if let Some((head, rest)) = text.split_once("\r\n\r\n") {
                    let len = head
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_string())
                        })
                        .and_then(|v| v.parse::<usize>().ok())
                        .unwrap_or(0);
                    if rest.len() >= len {
                        break;
                    }
                }
            }
            let reply = format!(
                "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            conn.write_all(reply.as_bytes()).unwrap();
            String::from_utf8_lossy(&got).to_string()
        });
        (url, handle)
    }

    fn api(url: &str) -> WebApi {
        WebApi::new(url, "xoxb-t".into(), Duration::from_secs(5))
    }

    #[test]
    fn post_message_sends_the_bearer_token_and_answers_where_it_went() {
        let (url, server) = answer_once(200, r#"{"ok":true,"channel":"C9","ts":"1.000001"}"#);
        let posted = api(&url).post_message("C1", "text", &[json!({"type": "divider"})]).unwrap();
        assert_eq!(posted, Posted { channel: "C9".into(), ts: "1.000001".into() });
        let request = server.join().unwrap();
        assert!(request.starts_with("POST /api/chat.postMessage "), "{request}");
        assert!(request.to_ascii_lowercase().contains("authorization: bearer xoxb-t"), "{request}");
        assert!(request.contains(r#""channel":"C1""#), "{request}");
    }

    #[test]
    fn slack_errors_are_classified() {
        for (status, body, retryable) in [
            (200, r#"{"ok":false,"error":"ratelimited"}"#, true),
            (200, r#"{"ok":false,"error":"internal_error"}"#, true),
            (429, r#"{}"#, true),
            (502, r#"{}"#, true),
            (200, r#"{"ok":false,"error":"channel_not_found"}"#, false),
            (200, r#"{"ok":false,"error":"invalid_auth"}"#, false),
            (200, r#"{"ok":true}"#, false),
        ] {
            let (url, server) = answer_once(status, body);
            let err = api(&url).post_message("C1", "t", &[]).unwrap_err();
            server.join().unwrap();
            assert_eq!(matches!(err, DeliveryError::Retryable(_)), retryable, "{status} {body}: {err}");
        }
    }

    #[test]
    fn users_info_reads_the_profile_email() {
        let (url, server) =
            answer_once(200, r#"{"ok":true,"user":{"id":"U1","profile":{"email":"bob@corp.example"}}}"#);
        assert_eq!(api(&url).user_email("U1").unwrap().as_deref(), Some("bob@corp.example"));
        assert!(server.join().unwrap().starts_with("GET /api/users.info?user=U1 "));
        let (url, server) = answer_once(200, r#"{"ok":true,"user":{"id":"B1","profile":{}}}"#);
        assert_eq!(api(&url).user_email("B1").unwrap(), None);
        server.join().unwrap();
    }

    #[test]
    fn an_unreachable_api_is_retryable() {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let err = api(&format!("http://127.0.0.1:{port}/api/")).post_message("C1", "t", &[]).unwrap_err();
        assert!(matches!(err, DeliveryError::Retryable(_)), "{err}");
    }

    #[test]
    fn rate_limits_and_server_faults_are_retried_client_errors_are_not() {
        assert!(matches!(classify_status("m", 429), DeliveryError::Retryable(_)));
        assert!(matches!(classify_status("m", 503), DeliveryError::Retryable(_)));
        assert!(matches!(classify_status("m", 404), DeliveryError::Permanent(_)));
        assert!(matches!(classify_status("m", 403), DeliveryError::Permanent(_)));
    }
}
