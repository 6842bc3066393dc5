//! Bundle polling on the root context: dispatch the GET the core's [`Poller`] builds,
//! hand the answer back, install what it fetched. Each Envoy worker runs its own VM
//! and root context, so each worker polls for itself and swaps its own policy; the
//! request contexts of that worker share it through the root's `Rc<RefCell<_>>`, and
//! since a worker runs one callback at a time the swap happens between callbacks.

use crate::host::log;
use crate::root::Root;
use airlock_filter::bundle::poll::{Polled, Response};
use airlock_filter::metrics::Counter;
use proxy_wasm::traits::Context;
use proxy_wasm::types::LogLevel;
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

/// Randomness for jitter: std's `RandomState` is seeded from WASI `random_get`, which
/// Envoy provides; no extra crate needed.
fn random() -> u64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(0);
    h.finish()
}

impl Root {
    pub(crate) fn poll_if_due(&mut self) {
        let now_ms = self.now_ms();
        let Some(poller) = self.poller.as_mut() else { return };
        if self.polling.is_some() || !poller.due(now_ms) {
            return;
        }
        let headers = poller.request();
        let cfg = poller.config().clone();
        let pairs: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        match self.dispatch_http_call(&cfg.cluster, pairs, None, vec![], Duration::from_millis(cfg.timeout_ms)) {
            Ok(token) => self.polling = Some(token),
            Err(e) => {
                if let Some(p) = self.poller.as_mut() {
                    p.dispatch_failed(now_ms, random());
                }
                self.count(Counter::BundleFetchFailure);
                log(LogLevel::Warn, &format!("airlock: cannot poll bundle from `{}`: {e:?}", cfg.cluster));
            }
        }
    }

    pub(crate) fn on_bundle_response(&mut self, num_headers: usize, body_size: usize) {
        let now_ms = self.now_ms();
        let Some(poller) = self.poller.as_ref() else { return };
        // Headers as bytes: the SDK's string read panics on non-UTF-8.
        let header = |n: &str| {
            if num_headers == 0 {
                return None;
            }
            self.get_http_call_response_header_bytes(n).and_then(|b| String::from_utf8(b).ok())
        };
        let status = header(":status").and_then(|s| s.parse().ok());
        let etag = header("etag");
        // An oversized body is never copied into the VM.
        let body = if status == Some(200) && poller.accepts_size(body_size) {
            self.get_http_call_response_body(0, body_size).unwrap_or_default()
        } else {
            Vec::new()
        };
        let response = Response { status, etag, body_size, body };
        let Some(poller) = self.poller.as_mut() else { return };
        let path = poller.config().path.clone();
        match poller.on_response(now_ms, random(), response) {
            Polled::Unchanged => {}
            Polled::Failed(why) => {
                self.count(Counter::BundleFetchFailure);
                log(LogLevel::Warn, &format!("airlock: bundle poll `{path}` failed: {why}"));
            }
            Polled::Fetched(bytes) => {
                let mut slot = self.worker().borrow_mut();
                let Some(w) = slot.as_mut() else { return };
                match w.install_bundle(&bytes) {
                    Ok(line) => log(LogLevel::Info, &format!("airlock: {line} from `{path}`")),
                    Err(line) => log(LogLevel::Warn, &format!("airlock: {line} (from `{path}`)")),
                }
            }
        }
    }

    fn count(&self, c: Counter) {
        if let Some(w) = self.worker().borrow_mut().as_mut() {
            w.metrics.count(c);
        }
    }
}
