//! The root context: configuration, the per-worker state, and its timer — shipping
//! the decision log and, with a polled bundle, fetching the policy (`poll.rs`).

use crate::host::{log, HostMetrics};
use crate::http::Http;
use airlock_filter::bundle::poll::Poller;
use airlock_filter::callout::{self, Answer, Call};
use airlock_filter::config::Config;
use airlock_filter::metrics::Counter;
use airlock_filter::worker::Worker;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{ContextType, LogLevel};
use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, UNIX_EPOCH};

/// Shared by the root and every request context of this worker (one thread).
pub type SharedWorker = Rc<RefCell<Option<Worker>>>;

/// One timer per root context (proxy-wasm has no other): with a bundle to poll it
/// ticks at least this often, and the decision log ships when its own interval is due.
const POLL_TICK_MS: u64 = 1_000;

#[derive(Default)]
pub struct Root {
    worker: SharedWorker,
    shipping: Option<(u32, Call)>,
    pub(crate) poller: Option<Poller>,
    /// Token of the bundle poll in flight.
    pub(crate) polling: Option<u32>,
    flush_ms: u64,
    next_flush_ms: u64,
}

impl Root {
    fn now_s(&self) -> u64 {
        self.now_ms() / 1000
    }

    pub(crate) fn now_ms(&self) -> u64 {
        self.get_current_time().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
    }

    pub(crate) fn worker(&self) -> &SharedWorker {
        &self.worker
    }
}

impl Context for Root {
    fn on_http_call_response(&mut self, token: u32, num_headers: usize, body_size: usize, _trailers: usize) {
        if self.polling == Some(token) {
            self.polling = None;
            self.on_bundle_response(num_headers, body_size);
            return;
        }
        let Some((expected, call)) = self.shipping.take() else { return };
        if expected != token {
            self.shipping = Some((expected, call));
            return;
        }
        let answer = read_answer(self, num_headers, body_size);
        let now_s = self.now_s();
        let mut slot = self.worker.borrow_mut();
        let Some(w) = slot.as_mut() else { return };
        let backlog = match callout::verified(&w.config.service, now_s, &call.signature, &answer) {
            Ok(202) => {
                w.log.delivered();
                w.log.has_full_batch()
            }
            outcome => {
                w.log.failed();
                w.metrics.count(Counter::LogShipFailure);
                log(LogLevel::Warn, &format!("airlock: decision log batch not accepted: {outcome:?}"));
                false
            }
        };
        drop(slot);
        // A full batch already waits: ship it now rather than a flush interval later,
        // so a busy worker ships max_batch records per round trip, not per interval.
        if backlog {
            self.ship();
        }
    }
}

/// Read a callout answer through the hostcalls of `ctx`.
pub fn read_answer(ctx: &dyn Context, num_headers: usize, body_size: usize) -> Answer {
    if num_headers == 0 {
        return Answer::default();
    }
    // Bytes, not strings: the SDK's string read panics on non-UTF-8, and these
    // headers are read before the signature is checked.
    let header = |n: &str| ctx.get_http_call_response_header_bytes(n).and_then(|b| String::from_utf8(b).ok());
    Answer {
        status: header(":status").and_then(|s| s.parse().ok()),
        key_id: header(airlock_filter::signing::KEY_ID_HEADER),
        timestamp: header(airlock_filter::signing::TIMESTAMP_HEADER),
        signature: header(airlock_filter::signing::SIGNATURE_HEADER),
        body: ctx.get_http_call_response_body(0, body_size).unwrap_or_default(),
    }
}

impl RootContext for Root {
    fn on_configure(&mut self, _size: usize) -> bool {
        let bytes = self.get_plugin_configuration().unwrap_or_default();
        let config = match Config::parse(&bytes) {
            Ok(c) => c,
            Err(e) => {
                log(LogLevel::Critical, &format!("airlock: {e}"));
                return false;
            }
        };
        self.flush_ms = config.decision_log.flush_ms;
        let poll = config.policy.bundle.as_ref().and_then(|b| b.poll.clone());
        let warn = Box::new(|m: &str| log(LogLevel::Warn, &format!("airlock: {m}")));
        match Worker::new(config, Box::new(HostMetrics::define()), warn) {
            Ok(w) => {
                log(LogLevel::Info, &format!("airlock: configured, policy revision `{}`", w.policy_revision()));
                *self.worker.borrow_mut() = Some(w);
                self.next_flush_ms = self.now_ms().saturating_add(self.flush_ms);
                let tick = match &poll {
                    Some(_) => self.flush_ms.min(POLL_TICK_MS),
                    None => self.flush_ms,
                };
                self.set_tick_period(Duration::from_millis(tick));
                // A poll still in flight belongs to the previous configuration: its
                // answer is dropped, not verified against the new keys.
                self.polling = None;
                self.poller = poll.map(Poller::new);
                // Poll at once rather than a tick later: until the first bundle
                // arrives, a worker without an inline bundle denies everything.
                self.poll_if_due();
                true
            }
            Err(e) => {
                log(LogLevel::Critical, &format!("airlock: invalid configuration: {e}"));
                false
            }
        }
    }

    fn on_tick(&mut self) {
        self.poll_if_due();
        self.ship_if_due();
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Http::new(self.worker.clone())))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

impl Root {
    fn ship_if_due(&mut self) {
        if self.shipping.is_some() {
            return;
        }
        let now_ms = self.now_ms();
        // Without polling the tick period is the flush interval, so every tick ships;
        // with it, ticks come more often and half a tick of slack absorbs timer jitter.
        if self.poller.is_some() && now_ms.saturating_add(POLL_TICK_MS / 2) < self.next_flush_ms {
            return;
        }
        self.next_flush_ms = now_ms.saturating_add(self.flush_ms);
        self.ship();
    }

    /// Sends the next batch of decision records, if any.
    fn ship(&mut self) {
        let now_s = self.now_s();
        let mut slot = self.worker.borrow_mut();
        let Some(w) = slot.as_mut() else { return };
        let Some(body) = w.log.next_batch() else { return };
        let svc = &w.config.service;
        let Some(call) = callout::signed_post(svc, now_s, callout::DECISIONS_PATH, body, svc.timeout_ms) else {
            w.log.failed();
            return;
        };
        let headers: Vec<(&str, &str)> = call.headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        match self.dispatch_http_call(
            &svc.cluster,
            headers,
            Some(&call.body),
            vec![],
            Duration::from_millis(call.timeout_ms),
        ) {
            Ok(token) => self.shipping = Some((token, call)),
            Err(e) => {
                w.log.failed();
                w.metrics.count(Counter::LogShipFailure);
                log(LogLevel::Warn, &format!("airlock: cannot ship decision log: {e:?}"));
            }
        }
    }
}
