//! The request context: hands host events to the core's [`Flow`] and carries out
//! the steps it returns.

use crate::host::{log, HostRequest};
use crate::root::{read_answer, SharedWorker};
use airlock_filter::callout::Answer;
use airlock_filter::flow::{Flow, HeaderEdits, Step};
use airlock_filter::problem::{Answering, Problem, ProblemKind};
use airlock_filter::worker::Worker;
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::{Action, BufferType, LogLevel};
use std::time::Duration;

pub struct Http {
    worker: SharedWorker,
    flow: Flow,
    /// Token of the callout in flight, if any.
    callout: Option<u32>,
}

/// Where a step is carried out, which decides how a paused request goes on: inside
/// a stream callback by returning `Continue`; from a callout answer by resuming.
/// Doing both continues the stream twice.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Origin {
    StreamCallback,
    CalloutAnswer,
}

impl Http {
    pub fn new(worker: SharedWorker) -> Http {
        Http { worker, flow: Flow::new(), callout: None }
    }

    /// Run `f` with this request's flow and the worker; `None` if not configured.
    fn with_worker<R>(&mut self, f: impl FnOnce(&mut Flow, &mut Worker) -> R) -> Option<R> {
        let worker = self.worker.clone();
        let mut slot = worker.borrow_mut();
        let w = slot.as_mut()?;
        Some(f(&mut self.flow, w))
    }

    /// Carry out a step; returns the action for the current callback.
    fn apply(&mut self, step: Step, origin: Origin) -> Action {
        match step {
            Step::Continue => self.proceed(origin),
            Step::ContinueWith(edits) => {
                apply_edits(self, &edits);
                self.proceed(origin)
            }
            Step::Reply(r) => {
                let headers: Vec<(&str, &str)> = r.headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
                self.send_http_response(r.status, headers, Some(&r.body));
                Action::Pause
            }
            Step::NeedBody | Step::Hold => Action::Pause,
            Step::Call(call) => {
                let Some(cluster) = self.with_worker(|_, w| w.config.service.cluster.clone()) else {
                    return self.fail_closed("not configured");
                };
                let headers: Vec<(&str, &str)> = call.headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                let timeout = Duration::from_millis(call.timeout_ms);
                match self.dispatch_http_call(&cluster, headers, Some(&call.body), vec![], timeout) {
                    Ok(token) => {
                        self.callout = Some(token);
                        Action::Pause
                    }
                    Err(e) => {
                        log(LogLevel::Warn, &format!("airlock: dispatch to `{cluster}` failed: {e:?}"));
                        let now = self.get_current_time();
                        match self.with_worker(|flow, w| flow.on_answer(w, &Answer::default(), now)) {
                            Some(step) => self.apply(step, origin),
                            None => self.fail_closed("not configured"),
                        }
                    }
                }
            }
        }
    }

    fn proceed(&mut self, origin: Origin) -> Action {
        if origin == Origin::CalloutAnswer {
            self.resume_http_request();
        }
        Action::Continue
    }

    /// Refuse with `unavailable` when the filter itself cannot work.
    fn fail_closed(&mut self, why: &str) -> Action {
        log(LogLevel::Error, &format!("airlock: refusing request: {why}"));
        let p = Problem::new(ProblemKind::Unavailable, self.flow.decision_id(), "The gateway filter is not ready.");
        let r = p.to_reply(&Answering::Http);
        let headers: Vec<(&str, &str)> = r.headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        self.send_http_response(r.status, headers, Some(&r.body));
        Action::Pause
    }
}

fn apply_edits(ctx: &dyn HttpContext, edits: &HeaderEdits) {
    for name in &edits.remove {
        ctx.set_http_request_header(name, None);
    }
    for (name, value) in &edits.set {
        ctx.set_http_request_header(name, Some(value));
    }
}

impl Context for Http {
    fn on_http_call_response(&mut self, token: u32, num_headers: usize, body_size: usize, _trailers: usize) {
        if self.callout != Some(token) {
            return;
        }
        self.callout = None;
        let answer = read_answer(self, num_headers, body_size);
        let now = self.get_current_time();
        match self.with_worker(|flow, w| flow.on_answer(w, &answer, now)) {
            Some(step) => self.apply(step, Origin::CalloutAnswer),
            None => self.fail_closed("not configured"),
        };
    }
}

impl HttpContext for Http {
    fn on_http_request_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        let now = self.get_current_time();
        match self.with_worker(|flow, w| flow.on_headers(w, &HostRequest::read(), end_of_stream, now)) {
            Some(step) => self.apply(step, Origin::StreamCallback),
            None => self.fail_closed("not configured"),
        }
    }

    /// Trailers end the stream (HTTP/2, or HTTP/1 with trailers enabled): without this,
    /// the SDK's default would continue a request still waiting for its decision.
    fn on_http_request_trailers(&mut self, _num_trailers: usize) -> Action {
        let now = self.get_current_time();
        let read = |size: usize| hostcalls::get_buffer(BufferType::HttpRequestBody, 0, size).ok().flatten();
        match self.with_worker(|flow, w| {
            let size = flow.buffered();
            flow.on_trailers(w, || read(size), now)
        }) {
            Some(step) => self.apply(step, Origin::StreamCallback),
            None => self.fail_closed("not configured"),
        }
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        let now = self.get_current_time();
        let read = || hostcalls::get_buffer(BufferType::HttpRequestBody, 0, body_size).ok().flatten();
        match self.with_worker(|flow, w| flow.on_body(w, body_size, end_of_stream, read, now)) {
            Some(step) => self.apply(step, Origin::StreamCallback),
            None => self.fail_closed("not configured"),
        }
    }
}
