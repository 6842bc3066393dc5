//! HTTP callouts (`proxy_http_call`): what the filter asked for, and the answer the test
//! gives it.

use std::time::{Duration, SystemTime};

use super::headers::HeaderMap;

/// One `dispatch_http_call` the filter made.
#[derive(Clone, PartialEq, Eq)]
pub struct Callout {
    pub token: u32,
    /// The Envoy cluster (the `upstream` argument).
    pub cluster: String,
    /// Headers as sent, including `:method`, `:path`, `:authority`; Envoy adds
    /// `content-length` when there is a body, and so does this host.
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    pub trailers: HeaderMap,
    /// `None`: no timeout (the filter passed 0).
    pub timeout: Option<Duration>,
    /// The context that was effective when the call was made (Envoy registers every
    /// callout on the root context; this says which request it was for).
    pub context_id: u32,
    pub sent_at: SystemTime,
}

impl std::fmt::Debug for Callout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Callout")
            .field("token", &self.token)
            .field("cluster", &self.cluster)
            .field("headers", &self.headers)
            .field("body", &self.body_text())
            .field("trailers", &self.trailers)
            .field("timeout", &self.timeout)
            .field("context_id", &self.context_id)
            .finish()
    }
}

impl Callout {
    /// All values of `name`, joined with `,`.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers.get(name)
    }

    pub fn method(&self) -> Option<String> {
        self.header(":method")
    }

    pub fn path(&self) -> Option<String> {
        self.header(":path")
    }

    pub fn authority(&self) -> Option<String> {
        self.header(":authority")
    }

    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> anyhow::Result<serde_json::Value> {
        serde_json::from_slice(&self.body)
            .map_err(|e| anyhow::anyhow!("callout body is not JSON ({e}): {}", self.body_text()))
    }
}

/// How a callout can fail, as Envoy reports each to the filter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CalloutFailure {
    /// The stream was reset (Envoy `onFailure`): `on_http_call_response` with 0 headers,
    /// 0 body bytes; no response exists, so `get_http_call_response_header` gets
    /// `BadArgument` (the SDK panics on it) while the header list is empty.
    Reset,
    /// The callout timeout fired: Envoy's async client answers a local 504
    /// `upstream request timeout`.
    Timeout,
    /// No healthy upstream / connection refused: Envoy answers a local 503.
    Unreachable,
}

/// The answer available to the guest while `proxy_on_http_call_response` runs.
#[derive(Clone, Debug, Default)]
pub(crate) struct CallResponse {
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    pub trailers: HeaderMap,
}

impl CallResponse {
    pub(crate) fn new(status: u16, headers: &[(&str, &str)], body: &[u8]) -> CallResponse {
        let mut map = HeaderMap::new();
        map.add(":status", status.to_string());
        for (k, v) in headers {
            map.add(k, v.as_bytes().to_vec());
        }
        CallResponse { headers: map, body: body.to_vec(), trailers: HeaderMap::new() }
    }

    /// Envoy's own answer for a failure, or `None` for a reset (no response at all).
    pub(crate) fn for_failure(failure: CalloutFailure) -> Option<CallResponse> {
        let (status, body): (u16, &str) = match failure {
            CalloutFailure::Reset => return None,
            CalloutFailure::Timeout => (504, "upstream request timeout"),
            CalloutFailure::Unreachable => (
                503,
                "upstream connect error or disconnect/reset before headers. reset reason: \
                 remote connection failure, transport failure reason: delayed connect \
                 error: Connection refused",
            ),
        };
        let len = body.len().to_string();
        Some(CallResponse::new(status, &[("content-length", &len), ("content-type", "text/plain")], body.as_bytes()))
    }
}
