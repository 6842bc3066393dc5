//! Polling a bundle over HTTP, as a host-agnostic state machine: when to ask, what to
//! send (`If-None-Match` with the last ETag), what an answer means. The glue only
//! dispatches the request and hands back the answer.
//!
//! The ETag remembered is that of the last bundle received, accepted or refused: a
//! refused bundle does not improve by downloading it again, so the server answers 304
//! until a new one is published. Intervals are jittered (±10 %) so the workers of a
//! fleet, each polling for itself, do not hit the server in lockstep; failures retry
//! sooner, doubling from 1 s up to the interval.

use super::config::PollConfig;

const JITTER_PERCENT: u64 = 10;
const FIRST_RETRY_MS: u64 = 1_000;

#[derive(Debug)]
pub struct Poller {
    cfg: PollConfig,
    etag: Option<String>,
    next_due_ms: u64,
    in_flight: bool,
    failures: u32,
}

/// What an answer means for the serving policy.
#[derive(Debug, PartialEq, Eq)]
pub enum Polled {
    /// 304: the bundle has not changed.
    Unchanged,
    /// 200: a bundle to verify and, if it passes, install.
    Fetched(Vec<u8>),
    /// No usable answer; the serving policy stays.
    Failed(String),
}

/// An HTTP answer as the glue read it; `status: None` when the call failed outright.
#[derive(Debug, Default)]
pub struct Response {
    pub status: Option<u32>,
    pub etag: Option<String>,
    /// Declared body size (read only when within bounds).
    pub body_size: usize,
    pub body: Vec<u8>,
}

impl Poller {
    /// Due at once: the first poll is made as soon as the worker starts.
    pub fn new(cfg: PollConfig) -> Poller {
        Poller { cfg, etag: None, next_due_ms: 0, in_flight: false, failures: 0 }
    }

    pub fn config(&self) -> &PollConfig {
        &self.cfg
    }

    pub fn due(&self, now_ms: u64) -> bool {
        !self.in_flight && now_ms >= self.next_due_ms
    }

    /// Whether a body of `size` bytes should be read at all.
    pub fn accepts_size(&self, size: usize) -> bool {
        size <= self.cfg.max_bytes
    }

    /// The GET to dispatch; marks a poll in flight.
    pub fn request(&mut self) -> Vec<(String, String)> {
        self.in_flight = true;
        let mut headers = vec![
            (":method".to_string(), "GET".to_string()),
            (":path".to_string(), self.cfg.path.clone()),
            (":authority".to_string(), self.cfg.authority.clone()),
            ("accept".to_string(), "application/gzip, application/vnd.openpolicyagent.bundles".to_string()),
        ];
        if let Some(etag) = &self.etag {
            headers.push(("if-none-match".to_string(), etag.clone()));
        }
        headers
    }

    /// The dispatch itself failed (unknown cluster, …): try again later.
    pub fn dispatch_failed(&mut self, now_ms: u64, random: u64) {
        self.in_flight = false;
        self.schedule(now_ms, random, false);
    }

    /// Interpret the answer and schedule the next poll.
    pub fn on_response(&mut self, now_ms: u64, random: u64, r: Response) -> Polled {
        self.in_flight = false;
        let outcome = match r.status {
            None => Polled::Failed("no answer (unreachable or timed out)".into()),
            Some(304) if self.etag.is_some() => Polled::Unchanged,
            Some(304) => Polled::Failed("304 Not Modified to a request without If-None-Match".into()),
            Some(200) if !self.accepts_size(r.body_size) => {
                Polled::Failed(format!("bundle of {} bytes is over policy.bundle.max_bytes", r.body_size))
            }
            Some(200) if r.body.is_empty() => Polled::Failed("empty body".into()),
            Some(200) => {
                self.etag = r.etag.filter(|e| !e.is_empty() && e.bytes().all(|b| (0x20..0x7f).contains(&b)));
                Polled::Fetched(r.body)
            }
            Some(other) => Polled::Failed(format!("HTTP status {other}")),
        };
        self.schedule(now_ms, random, !matches!(outcome, Polled::Failed(_)));
        outcome
    }

    fn schedule(&mut self, now_ms: u64, random: u64, ok: bool) {
        let base = if ok {
            self.failures = 0;
            self.cfg.poll_ms
        } else {
            self.failures = self.failures.saturating_add(1);
            let backoff = FIRST_RETRY_MS.saturating_mul(1 << self.failures.saturating_sub(1).min(16));
            backoff.min(self.cfg.poll_ms)
        };
        self.next_due_ms = now_ms.saturating_add(jittered(base, random));
    }

    pub fn next_due_ms(&self) -> u64 {
        self.next_due_ms
    }
}

/// `base` ± 10 %, from a random number the glue supplies.
pub fn jittered(base: u64, random: u64) -> u64 {
    let spread = base * JITTER_PERCENT / 100;
    base - spread + random % (2 * spread + 1)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    fn poller() -> Poller {
        Poller::new(PollConfig {
            cluster: "bundles".into(),
            path: "/b.tar.gz".into(),
            authority: "bundles".into(),
            poll_ms: 30_000,
            timeout_ms: 5_000,
            max_bytes: 100,
        })
    }

    fn ok(etag: &str, body: &[u8]) -> Response {
        Response { status: Some(200), etag: Some(etag.into()), body_size: body.len(), body: body.to_vec() }
    }

    fn header<'a>(h: &'a [(String, String)], name: &str) -> Option<&'a str> {
        h.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    #[test]
    fn etag_cycle() {
        let mut p = poller();
        assert!(p.due(0));
        let h = p.request();
        assert_eq!(header(&h, ":path"), Some("/b.tar.gz"));
        assert_eq!(header(&h, "if-none-match"), None);
        assert!(!p.due(0), "one poll in flight at a time");
        assert_eq!(p.on_response(0, 0, ok("\"v1\"", b"x")), Polled::Fetched(b"x".to_vec()));
        assert!(!p.due(26_999) && p.due(27_000), "30 s minus at most 10 %");
        let h = p.request();
        assert_eq!(header(&h, "if-none-match"), Some("\"v1\""));
        let not_modified = Response { status: Some(304), ..Response::default() };
        assert_eq!(p.on_response(27_000, 0, not_modified), Polled::Unchanged);
        p.request();
        assert_eq!(p.on_response(54_000, 0, ok("\"v2\"", b"y")), Polled::Fetched(b"y".to_vec()));
        assert_eq!(header(&p.request(), "if-none-match"), Some("\"v2\""));
    }

    #[test]
    fn failures_back_off_and_keep_the_etag() {
        let mut p = poller();
        p.request();
        p.on_response(0, 0, ok("\"v1\"", b"x"));
        let mut now = 100_000;
        for expected in [1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000] {
            p.request();
            let r = Response { status: Some(503), ..Response::default() };
            assert!(matches!(p.on_response(now, 5_000_000, r), Polled::Failed(_)));
            let wait = p.next_due_ms() - now;
            assert!(wait.abs_diff(expected) <= expected / 10, "{wait} vs {expected}");
            now += wait;
        }
        assert_eq!(header(&p.request(), "if-none-match"), Some("\"v1\""));
        assert!(matches!(p.on_response(now, 0, Response::default()), Polled::Failed(_)));
    }

    #[test]
    fn odd_answers_fail() {
        let mut p = poller();
        p.request();
        let r = Response { status: Some(304), ..Response::default() };
        assert!(matches!(p.on_response(0, 0, r), Polled::Failed(_)), "304 without an ETag sent");
        p.request();
        let big = Response { status: Some(200), etag: None, body_size: 101, body: vec![] };
        assert!(matches!(p.on_response(0, 0, big), Polled::Failed(m) if m.contains("max_bytes")));
        p.request();
        p.dispatch_failed(0, 0);
        assert!(!p.due(0) && p.due(4_000));
    }

    #[test]
    fn jitter_stays_within_ten_percent() {
        for r in [0, 1, 2_999, 3_000, 3_001, u64::MAX] {
            let j = jittered(30_000, r);
            assert!((27_000..=33_000).contains(&j), "{j}");
        }
        assert_eq!(jittered(0, 7), 0);
    }
}
