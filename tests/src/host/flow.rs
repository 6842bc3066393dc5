//! What Envoy's decoder filter chain does with a request around this filter: which header
//! map and body buffer the guest can reach, and what has been released to the upstream.
//!
//! Mirrors `Envoy::Extensions::Common::Wasm::Context::decodeHeaders/decodeData` and
//! `continueStream`: `Continue` from `on_request_headers` sends the headers upstream at
//! once (even when a body follows) and detaches the header map; `Pause` from
//! `on_request_body` buffers, and the next call sees the whole buffer; resuming releases
//! headers and buffered body and detaches both.

use super::abi::Action;
use super::headers::HeaderMap;

#[derive(Clone, Debug, Default)]
pub(crate) struct RequestFlow {
    /// The guest can read and modify the request header map.
    pub headers_attached: bool,
    /// The body buffer the guest sees as `HttpRequestBody`, if any.
    pub body: Vec<u8>,
    pub body_attached: bool,
    /// The last `on_request_body` returned `Pause`: `body` is held, not forwarded.
    pub buffering: bool,
    /// The client has sent its whole request.
    pub downstream_complete: bool,
    /// What the upstream has received so far.
    pub upstream_headers: Option<HeaderMap>,
    pub upstream_body: Vec<u8>,
    /// The upstream has the complete request.
    pub upstream_complete: bool,
}

impl RequestFlow {
    pub(crate) fn new(has_body: bool) -> RequestFlow {
        RequestFlow { headers_attached: true, downstream_complete: !has_body, ..RequestFlow::default() }
    }

    fn release_headers(&mut self, current: &HeaderMap) {
        if self.upstream_headers.is_none() {
            self.upstream_headers = Some(current.clone());
        }
        self.headers_attached = false;
    }

    fn release_body(&mut self) {
        let body = std::mem::take(&mut self.body);
        self.upstream_body.extend(body);
        self.buffering = false;
        self.body_attached = false;
    }

    fn settle(&mut self) {
        if self.upstream_headers.is_some() && self.downstream_complete && !self.buffering {
            self.upstream_complete = true;
        }
    }

    /// After `on_request_headers` returned `action`.
    pub(crate) fn after_headers(&mut self, action: Action, current: &HeaderMap) {
        if action == Action::Continue {
            self.release_headers(current);
            self.settle();
        }
    }

    /// Before `on_request_body`: the buffer the guest will see and its size.
    pub(crate) fn present_chunk(&mut self, chunk: &[u8], end_of_stream: bool) -> usize {
        if !self.buffering {
            self.body.clear();
        }
        self.body.extend_from_slice(chunk);
        self.body_attached = true;
        if end_of_stream {
            self.downstream_complete = true;
        }
        self.body.len()
    }

    /// After `on_request_body` returned `action`.
    pub(crate) fn after_body(&mut self, action: Action, current: &HeaderMap) {
        match action {
            Action::Continue => {
                self.release_headers(current);
                self.release_body();
                self.settle();
            }
            Action::Pause => self.buffering = true,
        }
    }

    /// `proxy_continue_stream(HttpRequest)`, applied after the VM call returns.
    /// Returns false when nothing was held (the call was a no-op).
    pub(crate) fn resume(&mut self, current: &HeaderMap) -> bool {
        let held = self.upstream_headers.is_none() || self.buffering;
        self.release_headers(current);
        self.release_body();
        self.settle();
        held
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn headers() -> HeaderMap {
        [(":path", "/x")].into_iter().collect()
    }

    #[test]
    fn continue_on_headers_with_body_sends_headers_early() {
        let h = headers();
        let mut f = RequestFlow::new(true);
        f.after_headers(Action::Continue, &h);
        assert!(f.upstream_headers.is_some() && !f.upstream_complete);
        assert!(!f.headers_attached);
        f.present_chunk(b"ab", true);
        f.after_body(Action::Continue, &h);
        assert!(f.upstream_complete);
        assert_eq!(f.upstream_body, b"ab");
    }

    #[test]
    fn paused_body_accumulates_until_resumed() {
        let h = headers();
        let mut f = RequestFlow::new(true);
        f.after_headers(Action::Pause, &h);
        assert_eq!(f.present_chunk(b"ab", false), 2);
        f.after_body(Action::Pause, &h);
        assert_eq!(f.present_chunk(b"cd", true), 4);
        f.after_body(Action::Pause, &h);
        assert!(f.upstream_headers.is_none());
        assert!(f.resume(&h));
        assert!(f.upstream_complete);
        assert_eq!(f.upstream_body, b"abcd");
        assert!(!f.body_attached && !f.headers_attached);
    }
}
