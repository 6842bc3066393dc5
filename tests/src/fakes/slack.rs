//! A fake Slack Web API on 127.0.0.1: `chat.postMessage`, `chat.update`, `users.info`,
//! and the `response_url`s of clicks. Records every call (with its bearer token), answers
//! as Slack does (`{"ok": true, …}` / `{"ok": false, "error": …}` with HTTP 200), and can
//! be told to fail the next calls of a method — with a Slack error code or an HTTP status.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::e2e::server::{Handler, Received, Reply, Server};

/// A Web API call the fake received.
#[derive(Debug, Clone)]
pub struct SlackCall {
    /// `chat.postMessage`, `chat.update`, `users.info`.
    pub method: String,
    /// The `authorization` header, as sent.
    pub authorization: Option<String>,
    /// The JSON body (`users.info`: `{"user": …}` from the query).
    pub body: Value,
    /// What the fake answered (`{}` for an HTTP error status).
    pub answer: Value,
}

/// How the next call of a method fails.
#[derive(Debug, Clone)]
pub enum SlackFailure {
    /// HTTP 200 with `{"ok": false, "error": <code>}`.
    Error(String),
    /// This HTTP status, empty JSON body.
    Status(u16),
}

#[derive(Default)]
struct State {
    calls: Vec<SlackCall>,
    responses: Vec<(String, Value)>,
    emails: HashMap<String, String>,
    failures: HashMap<String, VecDeque<SlackFailure>>,
    next_ts: u64,
}

/// A running fake Slack.
pub struct FakeSlack {
    server: Server,
    state: Arc<Mutex<State>>,
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|p| p.into_inner())
}

impl FakeSlack {
    /// Starts it; calls must carry `Bearer <token>`.
    pub fn start(token: &str) -> anyhow::Result<FakeSlack> {
        let state = Arc::new(Mutex::new(State::default()));
        let shared = state.clone();
        let expected = format!("Bearer {token}");
        let handler: Handler = Arc::new(move |req: Received| {
            let reply = answer(&shared, &expected, &req);
            Box::pin(async move { reply })
        });
        Ok(FakeSlack { server: Server::start("fake-slack", None, handler)?, state })
    }

    /// `api_base_url` for the service.
    pub fn api_base_url(&self) -> String {
        format!("http://127.0.0.1:{}/api/", self.server.port())
    }

    /// `response_url_prefix` for the service.
    pub fn response_url_prefix(&self) -> String {
        format!("http://127.0.0.1:{}/response/", self.server.port())
    }

    /// A `response_url` of a click, named `name`.
    pub fn response_url(&self, name: &str) -> String {
        format!("{}{name}", self.response_url_prefix())
    }

    /// `users.info` shows `email` for `user`.
    pub fn set_email(&self, user: &str, email: &str) {
        lock(&self.state).emails.insert(user.to_string(), email.to_string());
    }

    /// The next `times` calls of `method` fail with `failure`.
    pub fn fail_next(&self, method: &str, times: usize, failure: SlackFailure) {
        let mut s = lock(&self.state);
        let queue = s.failures.entry(method.to_string()).or_default();
        queue.extend(std::iter::repeat_n(failure, times));
    }

    /// Every call of `method`, in order.
    pub fn calls(&self, method: &str) -> Vec<SlackCall> {
        lock(&self.state).calls.iter().filter(|c| c.method == method).cloned().collect()
    }

    /// Every message posted to a `response_url` named `name`.
    pub fn responses(&self, name: &str) -> Vec<Value> {
        lock(&self.state).responses.iter().filter(|(n, _)| n == name).map(|(_, v)| v.clone()).collect()
    }

    /// Polls (every 50 ms, at most `timeout`) until `pred` holds for the calls of
    /// `method`; answers them either way.
    pub fn wait_calls(&self, method: &str, timeout: Duration, pred: impl Fn(&[SlackCall]) -> bool) -> Vec<SlackCall> {
        let deadline = Instant::now() + timeout;
        loop {
            let calls = self.calls(method);
            if pred(&calls) || Instant::now() >= deadline {
                return calls;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Polls until a message arrives at `response_url` `name` (bounded).
    pub fn wait_response(&self, name: &str, timeout: Duration) -> Option<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(v) = self.responses(name).pop() {
                return Some(v);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn answer(state: &Mutex<State>, expected_auth: &str, req: &Received) -> Reply {
    let (path, query) = req.path.split_once('?').unwrap_or((req.path.as_str(), ""));
    if let Some(name) = path.strip_prefix("/response/") {
        let body = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
        lock(state).responses.push((name.to_string(), body));
        return Reply { status: 200, headers: vec![], body: b"ok".to_vec() };
    }
    let Some(method) = path.strip_prefix("/api/") else {
        return Reply::json(404, &json!({"ok": false, "error": "unknown_path"}));
    };
    let body = if method == "users.info" {
        let user = query.split('&').find_map(|kv| kv.strip_prefix("user=")).unwrap_or_default();
        json!({"user": user})
    } else {
        serde_json::from_slice(&req.body).unwrap_or(Value::Null)
    };
    let authorization = req.header("authorization").map(str::to_string);
    let mut s = lock(state);
    let (status, answer) = web_api(&mut s, method, &body, authorization.as_deref() == Some(expected_auth));
    s.calls.push(SlackCall { method: method.to_string(), authorization, body, answer: answer.clone() });
    Reply::json(status, &answer)
}

/// Slack's answer to `method` with `body`: status and JSON.
fn web_api(s: &mut State, method: &str, body: &Value, authorized: bool) -> (u16, Value) {
    if let Some(failure) = s.failures.get_mut(method).and_then(VecDeque::pop_front) {
        return match failure {
            SlackFailure::Error(code) => (200, json!({"ok": false, "error": code})),
            SlackFailure::Status(status) => (status, json!({})),
        };
    }
    if !authorized {
        return (200, json!({"ok": false, "error": "invalid_auth"}));
    }
    match method {
        "chat.postMessage" => {
            s.next_ts += 1;
            let ts = format!("1700000000.{:06}", s.next_ts);
            // A user id as the channel posts in the app's DM with that user; Slack
            // answers the DM's own channel id (`D…`).
            let channel = match body["channel"].as_str() {
                Some(u) if u.starts_with('U') || u.starts_with('W') => json!(format!("D{}", &u[1..])),
                _ => body["channel"].clone(),
            };
            (200, json!({"ok": true, "channel": channel, "ts": ts, "message": {"text": body["text"]}}))
        }
        "chat.update" => (200, json!({"ok": true, "channel": body["channel"], "ts": body["ts"]})),
        "users.info" => {
            let user = body["user"].as_str().unwrap_or_default().to_string();
            match s.emails.get(&user) {
                Some(email) => (200, json!({"ok": true, "user": {"id": user, "profile": {"email": email}}})),
                None => (200, json!({"ok": false, "error": "user_not_found"})),
            }
        }
        _ => (200, json!({"ok": false, "error": "unknown_method"})),
    }
}
