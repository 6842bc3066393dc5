//! The root context: configuration, the per-worker state, and shipping the
//! decision log from its timer.

use super::host::{log, HostMetrics};
use super::http::Http;
use crate::callout::{self, Answer, Call};
use crate::config::Config;
use crate::metrics::Counter;
use crate::worker::Worker;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{ContextType, LogLevel};
use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, UNIX_EPOCH};

/// Shared by the root and every request context of this worker (one thread).
pub type SharedWorker = Rc<RefCell<Option<Worker>>>;

#[derive(Default)]
pub struct Root {
    worker: SharedWorker,
    shipping: Option<(u32, Call)>,
}

impl Root {
    fn now_s(&self) -> u64 {
        self.get_current_time().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
    }
}

impl Context for Root {
    fn on_http_call_response(&mut self, token: u32, num_headers: usize, body_size: usize, _trailers: usize) {
        let Some((expected, call)) = self.shipping.take() else { return };
        if expected != token {
            return;
        }
        let answer = read_answer(self, num_headers, body_size);
        let now_s = self.now_s();
        let mut slot = self.worker.borrow_mut();
        let Some(w) = slot.as_mut() else { return };
        match callout::verified(&w.config.service, now_s, &call, &answer) {
            Ok(202) => w.log.delivered(),
            outcome => {
                w.log.failed();
                w.metrics.count(Counter::LogShipFailure);
                log(LogLevel::Warn, &format!("airlock: decision log batch not accepted: {outcome:?}"));
            }
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
        key_id: header(crate::signing::KEY_ID_HEADER),
        timestamp: header(crate::signing::TIMESTAMP_HEADER),
        signature: header(crate::signing::SIGNATURE_HEADER),
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
        let flush = Duration::from_millis(config.decision_log.flush_ms);
        let warn = Box::new(|m: &str| log(LogLevel::Warn, &format!("airlock: {m}")));
        match Worker::new(config, Box::new(HostMetrics::define()), warn) {
            Ok(w) => {
                log(LogLevel::Info, &format!("airlock: configured, policy revision `{}`", w.config.policy.revision));
                *self.worker.borrow_mut() = Some(w);
                self.set_tick_period(flush);
                true
            }
            Err(e) => {
                log(LogLevel::Critical, &format!("airlock: invalid configuration: {e}"));
                false
            }
        }
    }

    fn on_tick(&mut self) {
        if self.shipping.is_some() {
            return;
        }
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

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Http::new(self.worker.clone())))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}
