//! Building a request for `Host::request()`. Names are lower-cased (Envoy's codecs do);
//! missing pseudo-headers, `x-request-id` and `content-length` are filled in the way a
//! client plus Envoy would produce them, unless `raw()` asks for exactly what was given.

use std::collections::BTreeMap;

use anyhow::Result;

use super::headers::HeaderMap;
use super::stream::Stream;
use super::vm::Host;

pub struct RequestBuilder<'h> {
    host: &'h mut Host,
    headers: HeaderMap,
    properties: BTreeMap<Vec<u8>, Vec<u8>>,
    chunks: Vec<Vec<u8>>,
    defaults: bool,
}

impl<'h> RequestBuilder<'h> {
    pub(crate) fn new(host: &'h mut Host) -> RequestBuilder<'h> {
        RequestBuilder {
            host,
            headers: HeaderMap::new(),
            properties: BTreeMap::new(),
            chunks: Vec::new(),
            defaults: true,
        }
    }

    /// Adds a header (repeat the call for repeated headers).
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.add(name, value.as_bytes().to_vec());
        self
    }

    /// Adds a header whose value is not UTF-8 (HTTP/1 obs-text reaches filters as is).
    pub fn header_bytes(mut self, name: &str, value: &[u8]) -> Self {
        self.headers.add(name, value.to_vec());
        self
    }

    pub fn method(self, method: &str) -> Self {
        self.header(":method", method)
    }

    /// `:path`, query included.
    pub fn path(self, path: &str) -> Self {
        self.header(":path", path)
    }

    pub fn authority(self, authority: &str) -> Self {
        self.header(":authority", authority)
    }

    pub fn scheme(self, scheme: &str) -> Self {
        self.header(":scheme", scheme)
    }

    /// A property of this request, e.g. `&["connection", "uri_san_peer_certificate"]`.
    pub fn property(mut self, path: &[&str], value: impl AsRef<[u8]>) -> Self {
        self.properties.insert(path.join("\0").into_bytes(), value.as_ref().to_vec());
        self
    }

    /// The body, delivered in one `on_request_body` call.
    pub fn body(mut self, body: impl AsRef<[u8]>) -> Self {
        self.chunks = vec![body.as_ref().to_vec()];
        self
    }

    /// The body in several chunks, one `on_request_body` call each (empty chunks dropped).
    pub fn body_chunks<C: AsRef<[u8]>>(mut self, chunks: impl IntoIterator<Item = C>) -> Self {
        self.chunks = chunks.into_iter().map(|c| c.as_ref().to_vec()).filter(|c| !c.is_empty()).collect();
        self
    }

    /// A JSON body with `content-type: application/json`.
    pub fn json(self, value: &serde_json::Value) -> Self {
        let body = value.to_string();
        self.header("content-type", "application/json").body(body)
    }

    /// Send exactly the headers given: no defaults filled in.
    pub fn raw(mut self) -> Self {
        self.defaults = false;
        self
    }

    /// Runs the request through the filter. A guest trap does not make this fail: the
    /// stream's outcome is then `Outcome::Failed`.
    pub fn send(mut self) -> Result<Stream> {
        self.chunks.retain(|c| !c.is_empty());
        let headers = if self.defaults {
            with_defaults(self.headers, &self.chunks, self.host.requests_sent)
        } else {
            self.headers
        };
        self.host.start_stream(headers, self.properties, self.chunks)
    }
}

/// Pseudo-headers first (as Envoy's maps keep them), then the rest in the order given.
fn with_defaults(given: HeaderMap, chunks: &[Vec<u8>], n: u64) -> HeaderMap {
    let body_len: usize = chunks.iter().map(Vec::len).sum();
    let mut pseudo = HeaderMap::new();
    let mut regular = HeaderMap::new();
    let defaults = [
        (":method", if body_len > 0 { "POST" } else { "GET" }.to_string()),
        (":scheme", "http".to_string()),
        (":authority", "localhost".to_string()),
        (":path", "/".to_string()),
    ];
    for (name, value) in &defaults {
        if !given.contains(name) {
            pseudo.add(name, value.as_bytes().to_vec());
        }
    }
    for (name, value) in given.raw_pairs() {
        if name.starts_with(':') {
            pseudo.add(name, value.clone());
        } else {
            regular.add(name, value.clone());
        }
    }
    if !given.contains("x-request-id") {
        // Envoy generates a UUID v4 when the client sent none.
        regular.add("x-request-id", format!("00000000-0000-4000-8000-{:012x}", n + 1));
    }
    if body_len > 0 && !given.contains("content-length") && !given.contains("transfer-encoding") {
        regular.add("content-length", body_len.to_string());
    }
    pseudo.raw_pairs().iter().chain(regular.raw_pairs()).map(|(k, v)| (k.as_str(), v.as_slice())).collect()
}
