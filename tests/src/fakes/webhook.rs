//! A webhook receiver on 127.0.0.1 that records every delivery and verifies its
//! signature the way `docs/channels/webhook.md` tells receivers to: `X-Airlock-Signature`
//! = `v1=` + hex HMAC-SHA256(secret, `X-Airlock-Timestamp` + "." + raw body), compared in
//! constant time, timestamp within 300 s. It can be told to answer an error status to
//! the next deliveries.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

use crate::e2e::server::{Handler, Received, Reply, Server};

/// Largest accepted distance between a delivery's timestamp and the receiver's clock.
pub const MAX_SKEW_SECS: i64 = 300;

/// One delivery as received.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// `X-Airlock-Event`.
    pub event: Option<String>,
    /// `X-Airlock-Delivery`.
    pub delivery_id: Option<String>,
    /// `X-Airlock-Timestamp`.
    pub timestamp: Option<String>,
    /// `X-Airlock-Signature`.
    pub signature: Option<String>,
    /// Whether the signature and timestamp verified.
    pub verified: bool,
    /// The status the receiver answered.
    pub answered: u16,
    /// The raw body.
    pub raw: Vec<u8>,
    /// The body as JSON (`Null` if it is not).
    pub body: Value,
}

#[derive(Default)]
struct State {
    deliveries: Vec<Delivery>,
    statuses: VecDeque<u16>,
}

/// A running receiver.
pub struct WebhookReceiver {
    server: Server,
    state: Arc<Mutex<State>>,
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|p| p.into_inner())
}

/// Whether `signature` is the webhook signature of `raw` sent at `timestamp`, and the
/// timestamp is within [`MAX_SKEW_SECS`] of `now_secs`.
pub fn verify(secret: &[u8], timestamp: &str, signature: &str, raw: &[u8], now_secs: i64) -> bool {
    let Ok(sent) = timestamp.parse::<i64>() else { return false };
    if (now_secs - sent).abs() > MAX_SKEW_SECS {
        return false;
    }
    let Some(expected) = signature.strip_prefix("v1=").and_then(|h| hex::decode(h).ok()) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else { return false };
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(raw);
    // `verify_slice` compares in constant time.
    mac.verify_slice(&expected).is_ok()
}

impl WebhookReceiver {
    /// Starts a receiver verifying with `secret`.
    pub fn start(secret: &[u8]) -> anyhow::Result<WebhookReceiver> {
        let state = Arc::new(Mutex::new(State::default()));
        let shared = state.clone();
        let secret = secret.to_vec();
        let handler: Handler = Arc::new(move |req: Received| {
            let header = |n: &str| req.header(n).map(str::to_string);
            let (timestamp, signature) = (header("x-airlock-timestamp"), header("x-airlock-signature"));
            let verified = match (&timestamp, &signature) {
                (Some(t), Some(s)) => verify(&secret, t, s, &req.body, crate::e2e::service::unix_now()),
                _ => false,
            };
            let mut s = lock(&shared);
            let answered = if !verified { 401 } else { s.statuses.pop_front().unwrap_or(200) };
            s.deliveries.push(Delivery {
                event: header("x-airlock-event"),
                delivery_id: header("x-airlock-delivery"),
                timestamp,
                signature,
                verified,
                answered,
                body: serde_json::from_slice(&req.body).unwrap_or(Value::Null),
                raw: req.body,
            });
            Box::pin(async move { Reply { status: answered, headers: vec![], body: Vec::new() } })
        });
        Ok(WebhookReceiver { server: Server::start("webhook-receiver", None, handler)?, state })
    }

    /// Its URL.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hooks/airlock", self.server.port())
    }

    /// The next deliveries (one per entry) are answered with these statuses.
    pub fn answer_next(&self, statuses: &[u16]) {
        lock(&self.state).statuses.extend(statuses.iter().copied());
    }

    /// Every delivery so far.
    pub fn deliveries(&self) -> Vec<Delivery> {
        lock(&self.state).deliveries.clone()
    }

    /// Deliveries about approval `id`.
    pub fn deliveries_for(&self, id: &str) -> Vec<Delivery> {
        self.deliveries()
            .into_iter()
            .filter(|d| d.body.pointer("/approval/id").and_then(Value::as_str) == Some(id))
            .collect()
    }

    /// Polls (every 50 ms, at most `timeout`) until `pred` holds for the deliveries about
    /// `id`; answers them either way.
    pub fn wait_for(&self, id: &str, timeout: Duration, pred: impl Fn(&[Delivery]) -> bool) -> Vec<Delivery> {
        let deadline = Instant::now() + timeout;
        loop {
            let got = self.deliveries_for(id);
            if pred(&got) || Instant::now() >= deadline {
                return got;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}
