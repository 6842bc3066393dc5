//! One HTTP request through the filter: its state as the host keeps it, and the `Stream`
//! handle a test holds to ask what became of it.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use super::flow::RequestFlow;
use super::headers::HeaderMap;

/// A local reply the filter sent (`proxy_send_local_response`).
#[derive(Clone, PartialEq, Eq)]
pub struct LocalReply {
    pub status: u32,
    /// Headers as the filter gave them (Envoy adds them to its own reply headers).
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    /// -1 when the filter set none.
    pub grpc_status: i32,
    pub details: String,
}

impl std::fmt::Debug for LocalReply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalReply")
            .field("status", &self.status)
            .field("headers", &self.headers)
            .field("body", &self.body_text())
            .field("grpc_status", &self.grpc_status)
            .field("details", &self.details)
            .finish()
    }
}

impl LocalReply {
    /// All values of `name`, joined with `,`.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers.get(name)
    }

    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body parsed as JSON (problem+json answers).
    pub fn json(&self) -> anyhow::Result<serde_json::Value> {
        serde_json::from_slice(&self.body)
            .map_err(|e| anyhow::anyhow!("local reply body is not JSON ({e}): {}", self.body_text()))
    }
}

/// What became of a request.
#[derive(Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The complete request reached the upstream (the filter continued, or paused and
    /// later resumed), with these headers and body as the upstream received them.
    Continued { upstream_headers: HeaderMap, upstream_body: Vec<u8> },
    /// The filter answered itself; nothing more goes upstream.
    LocalReply(LocalReply),
    /// The filter holds the request (waiting on a callout, or never resumed it).
    Paused,
    /// The filter reset the stream (`proxy_close_stream`).
    Reset,
    /// The VM trapped before the request was released, or had already failed. With
    /// `failure_policy: FAIL_CLOSED` Envoy answers 503 and never forwards it.
    Failed { trap: String },
}

impl std::fmt::Debug for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Outcome::Continued { upstream_headers, upstream_body } => f
                .debug_struct("Continued")
                .field("upstream_headers", upstream_headers)
                .field("upstream_body", &String::from_utf8_lossy(upstream_body))
                .finish(),
            Outcome::LocalReply(reply) => f.debug_tuple("LocalReply").field(reply).finish(),
            Outcome::Paused => f.write_str("Paused"),
            Outcome::Reset => f.write_str("Reset"),
            Outcome::Failed { trap } => f.debug_struct("Failed").field("trap", trap).finish(),
        }
    }
}

/// Host-side state of one HTTP context.
#[derive(Debug)]
pub(crate) struct StreamState {
    pub id: u32,
    pub request_headers: HeaderMap,
    /// Properties set for this request, keyed by the NUL-joined path.
    pub properties: BTreeMap<Vec<u8>, Vec<u8>>,
    pub flow: RequestFlow,
    pub local_reply: Option<LocalReply>,
    pub reset: bool,
    pub failed: Option<String>,
    /// `on_log` is running: request headers are readable again, not writable.
    pub access_log_phase: bool,
    /// Response path (only when a test drives it).
    pub response_headers: HeaderMap,
    pub response_headers_attached: bool,
    pub response_body: Vec<u8>,
    pub response_body_attached: bool,
    pub response_has_body: bool,
    pub response_headers_released: bool,
    pub response_body_released: bool,
    pub downstream_response: Option<(HeaderMap, Vec<u8>)>,
    pub finished: bool,
    /// `proxy_continue_stream(HttpRequest)` took effect during the current callback.
    pub resumed_during_call: bool,
    /// Things the filter did that Envoy would tolerate but that look like bugs.
    pub anomalies: Vec<String>,
}

impl StreamState {
    pub(crate) fn new(id: u32, headers: HeaderMap, has_body: bool) -> StreamState {
        StreamState {
            id,
            request_headers: headers,
            properties: BTreeMap::new(),
            flow: RequestFlow::new(has_body),
            local_reply: None,
            reset: false,
            failed: None,
            access_log_phase: false,
            response_headers: HeaderMap::new(),
            response_headers_attached: false,
            response_body: Vec::new(),
            response_body_attached: false,
            response_has_body: false,
            response_headers_released: false,
            response_body_released: false,
            downstream_response: None,
            finished: false,
            resumed_during_call: false,
            anomalies: Vec::new(),
        }
    }

    /// Records what the client has received once headers (and body, if any) are out.
    pub(crate) fn settle_response(&mut self) {
        if self.response_headers_released && (!self.response_has_body || self.response_body_released) {
            self.downstream_response = Some((self.response_headers.clone(), self.response_body.clone()));
        }
    }

    /// Nothing the filter does any more changes what the client or upstream get.
    pub(crate) fn settled(&self) -> bool {
        self.failed.is_some() || self.local_reply.is_some() || self.reset || self.flow.upstream_complete
    }

    pub(crate) fn outcome(&self) -> Outcome {
        if let Some(trap) = &self.failed {
            return Outcome::Failed { trap: trap.clone() };
        }
        if let Some(reply) = &self.local_reply {
            return Outcome::LocalReply(reply.clone());
        }
        if self.reset {
            return Outcome::Reset;
        }
        if self.flow.upstream_complete {
            return Outcome::Continued {
                upstream_headers: self.flow.upstream_headers.clone().unwrap_or_default(),
                upstream_body: self.flow.upstream_body.clone(),
            };
        }
        Outcome::Paused
    }
}

/// A test's handle on one request. Cheap to clone; reflects later events (callout
/// answers, resumes) as they happen.
#[derive(Clone, Debug)]
pub struct Stream {
    pub(crate) state: Rc<RefCell<StreamState>>,
}

impl Stream {
    /// The HTTP context id the filter saw.
    pub fn id(&self) -> u32 {
        self.state.borrow().id
    }

    pub fn outcome(&self) -> Outcome {
        self.state.borrow().outcome()
    }

    pub fn local_reply(&self) -> Option<LocalReply> {
        match self.outcome() {
            Outcome::LocalReply(reply) => Some(reply),
            _ => None,
        }
    }

    pub fn is_paused(&self) -> bool {
        self.outcome() == Outcome::Paused
    }

    /// The complete request was delivered to the upstream. Always false for a request
    /// the VM failed on before releasing it, and for every request on a failed VM.
    pub fn reached_upstream(&self) -> bool {
        self.state.borrow().flow.upstream_complete
    }

    /// The upstream saw at least the request headers (Envoy forwards headers as soon as
    /// `on_request_headers` returns `Continue`, before the body is inspected).
    pub fn upstream_saw_headers(&self) -> bool {
        self.state.borrow().flow.upstream_headers.is_some()
    }

    /// The headers the upstream received, if it received any.
    pub fn upstream_headers(&self) -> Option<HeaderMap> {
        self.state.borrow().flow.upstream_headers.clone()
    }

    pub fn upstream_body(&self) -> Vec<u8> {
        self.state.borrow().flow.upstream_body.clone()
    }

    /// An upstream request header (all values joined with `,`).
    pub fn header(&self, name: &str) -> Option<String> {
        self.upstream_headers().and_then(|h| h.get(name))
    }

    /// The request headers as the filter left them (released or not).
    pub fn request_headers(&self) -> HeaderMap {
        self.state.borrow().request_headers.clone()
    }

    /// The status the client gets, when known: the local reply's, or 503 when the VM
    /// failed (fail closed). `None` while paused or when the upstream answers.
    pub fn response_status(&self) -> Option<u32> {
        match self.outcome() {
            Outcome::LocalReply(reply) => Some(reply.status),
            Outcome::Failed { .. } => Some(503),
            _ => None,
        }
    }

    /// What the client received from the upstream through the filter's response path,
    /// after `Host::upstream_response`.
    pub fn downstream_response(&self) -> Option<(HeaderMap, Vec<u8>)> {
        self.state.borrow().downstream_response.clone()
    }

    /// Suspicious things the filter did on this stream (Envoy tolerated them).
    pub fn anomalies(&self) -> Vec<String> {
        self.state.borrow().anomalies.clone()
    }
}
