//! A recording upstream: answers 200 with a small JSON body and remembers every request,
//! so a test can say "this reached the upstream, with these headers" or "nothing did".
//!
//! Tests tag each request with a [`CASE_HEADER`] so several scenarios can share one
//! upstream and still ask about their own requests only.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::e2e::server::{Handler, HeadHook, Received, Reply, Server};
use crate::e2e::tls::ServerCert;

/// The header tests put on every request to tell their requests apart.
pub const CASE_HEADER: &str = "x-e2e-case";

/// A running recording upstream.
pub struct RecordingUpstream {
    server: Server,
    /// Complete requests (head and body).
    log: Arc<Mutex<Vec<Received>>>,
    /// Every request head, recorded the moment it arrived (even if its body never came).
    heads: Arc<Mutex<Vec<Received>>>,
}

impl RecordingUpstream {
    /// Plain HTTP.
    pub fn http(name: &str) -> anyhow::Result<RecordingUpstream> {
        Self::start(name, None)
    }

    /// HTTPS, presenting `cert`.
    pub fn https(name: &str, cert: &ServerCert) -> anyhow::Result<RecordingUpstream> {
        Self::start(name, Some(cert.rustls_config()?))
    }

    fn start(name: &str, tls: Option<Arc<rustls::ServerConfig>>) -> anyhow::Result<RecordingUpstream> {
        let log: Arc<Mutex<Vec<Received>>> = Arc::new(Mutex::new(Vec::new()));
        let heads: Arc<Mutex<Vec<Received>>> = Arc::new(Mutex::new(Vec::new()));
        let sink = log.clone();
        let head_sink = heads.clone();
        let on_head: HeadHook = Arc::new(move |req: &Received| {
            if let Ok(mut heads) = head_sink.lock() {
                heads.push(req.clone());
            }
        });
        let label = name.to_string();
        let handler: Handler = Arc::new(move |req: Received| {
            let answer = serde_json::json!({
                "upstream": label,
                "method": req.method,
                "path": req.path,
                "tls": req.tls,
            });
            if let Ok(mut log) = sink.lock() {
                log.push(req);
            }
            Box::pin(async move { Reply::json(200, &answer) })
        });
        Ok(RecordingUpstream { server: Server::start_observed(name, tls, Some(on_head), handler)?, log, heads })
    }

    /// Its port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.server.port()
    }

    /// Every request received so far.
    pub fn requests(&self) -> Vec<Received> {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// Every request head that arrived, complete or not.
    pub fn heads(&self) -> Vec<Received> {
        self.heads.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// The request heads tagged with `case`: what began to reach the upstream, including
    /// requests whose body never followed. "Nothing reached the upstream" means none.
    pub fn heads_for(&self, case: &str) -> Vec<Received> {
        self.heads().into_iter().filter(|r| r.header_values(CASE_HEADER).contains(&case)).collect()
    }

    /// The complete requests tagged with `case` (see [`CASE_HEADER`]).
    pub fn requests_for(&self, case: &str) -> Vec<Received> {
        self.requests().into_iter().filter(|r| r.header_values(CASE_HEADER).contains(&case)).collect()
    }

    /// Waits (bounded) until at least `n` requests tagged `case` arrived; returns them all.
    pub fn wait_for(&self, case: &str, n: usize, timeout: Duration) -> Vec<Received> {
        let deadline = Instant::now() + timeout;
        loop {
            let got = self.requests_for(case);
            if got.len() >= n || Instant::now() >= deadline {
                return got;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Forgets everything received so far.
    pub fn clear(&self) {
        if let Ok(mut log) = self.log.lock() {
            log.clear();
        }
        if let Ok(mut heads) = self.heads.lock() {
            heads.clear();
        }
    }
}
