//! Requests through the filter: the request path, the response path and the end of a
//! stream, with Envoy's decoder-chain semantics (see `host::flow`).

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use anyhow::{bail, Result};

use super::Host;
use crate::host::abi::Action;
use crate::host::headers::HeaderMap;
use crate::host::state::ContextKind;
use crate::host::stream::{Stream, StreamState};

impl Host {
    /// Starts building a request to send through the filter.
    pub fn request(&mut self) -> crate::host::request::RequestBuilder<'_> {
        crate::host::request::RequestBuilder::new(self)
    }

    /// Runs a request through the filter: context creation, `on_request_headers`
    /// (end of stream when there is no body), then `on_request_body` per chunk. A trap
    /// is not an error here: the stream's outcome is `Failed`.
    pub(crate) fn start_stream(
        &mut self,
        headers: HeaderMap,
        properties: BTreeMap<Vec<u8>, Vec<u8>>,
        chunks: Vec<Vec<u8>>,
    ) -> Result<Stream> {
        self.requests_sent += 1;
        let id = self.next_context;
        self.next_context += 1;
        let n_headers = headers.len() as i32;
        let mut state = StreamState::new(id, headers, !chunks.is_empty());
        state.properties = properties;
        let shared = Rc::new(RefCell::new(state));
        let stream = Stream { state: Rc::clone(&shared) };
        if let Some(failure) = &self.failure {
            shared.borrow_mut().failed =
                Some(format!("the VM had already failed ({failure}); Envoy answers 503 without calling it"));
            return Ok(stream);
        }
        self.store.data_mut().contexts.insert(id, ContextKind::Http(Rc::clone(&shared)));
        let root = self.root_id as i32;
        let create = self.exports.context_create.clone();
        if self.call("proxy_on_context_create", id, |s| create.call(s, (id as i32, root))).is_err() {
            return Ok(stream);
        }
        let eos = i32::from(chunks.is_empty());
        shared.borrow_mut().resumed_during_call = false;
        let action = match self.exports.request_headers.clone() {
            Some(f) => match self.call("proxy_on_request_headers", id, |s| f.call(s, (id as i32, n_headers, eos))) {
                Ok(raw) => Action::from_raw(raw),
                Err(_) => return Ok(stream),
            },
            None => Action::Continue,
        };
        double_continue(&shared, action, "proxy_on_request_headers");
        after(&shared, |s| s.flow.after_headers(action, &s.request_headers));
        let last = chunks.len().saturating_sub(1);
        for (i, chunk) in chunks.iter().enumerate() {
            if shared.borrow().settled() {
                break;
            }
            let eos = i == last;
            let size = {
                let mut s = shared.borrow_mut();
                s.resumed_during_call = false;
                s.flow.present_chunk(chunk, eos) as i32
            };
            let action = match self.exports.request_body.clone() {
                Some(f) => {
                    match self.call("proxy_on_request_body", id, |s| f.call(s, (id as i32, size, i32::from(eos)))) {
                        Ok(raw) => Action::from_raw(raw),
                        Err(_) => return Ok(stream),
                    }
                }
                None => Action::Continue,
            };
            double_continue(&shared, action, "proxy_on_request_body");
            after(&shared, |s| s.flow.after_body(action, &s.request_headers));
        }
        let _ = self.pump();
        Ok(stream)
    }

    /// Sends the upstream's answer back through the filter's response path
    /// (`on_response_headers`, `on_response_body`); `Stream::downstream_response` then
    /// says what the client got.
    pub fn upstream_response(
        &mut self,
        stream: &Stream,
        status: u16,
        headers: &[(&str, &str)],
        body: impl AsRef<[u8]>,
    ) -> Result<()> {
        let shared = Rc::clone(&stream.state);
        let id = shared.borrow().id;
        if !shared.borrow().flow.upstream_complete {
            bail!("request {id} never reached the upstream, so there is no upstream response");
        }
        let body = body.as_ref().to_vec();
        let mut map = HeaderMap::new();
        map.add(":status", status.to_string());
        for (k, v) in headers {
            map.add(k, v.as_bytes().to_vec());
        }
        if self.failure.is_some() {
            // Envoy's failStream on the encoder path: the client gets a 503.
            let mut reply = HeaderMap::new();
            reply.add(":status", "503");
            shared.borrow_mut().downstream_response = Some((reply, Vec::new()));
            return Ok(());
        }
        let n = map.len() as i32;
        {
            let mut s = shared.borrow_mut();
            s.response_headers = map;
            s.response_headers_attached = true;
            s.response_has_body = !body.is_empty();
        }
        let eos = i32::from(body.is_empty());
        let action = match self.exports.response_headers.clone() {
            Some(f) => {
                Action::from_raw(self.call("proxy_on_response_headers", id, |s| f.call(s, (id as i32, n, eos)))?)
            }
            None => Action::Continue,
        };
        after(&shared, |s| {
            if action == Action::Continue {
                s.response_headers_released = true;
                s.response_headers_attached = false;
            }
        });
        if !body.is_empty() {
            let size = body.len() as i32;
            {
                let mut s = shared.borrow_mut();
                s.response_body = body;
                s.response_body_attached = true;
            }
            let action = match self.exports.response_body.clone() {
                Some(f) => {
                    Action::from_raw(self.call("proxy_on_response_body", id, |s| f.call(s, (id as i32, size, 1)))?)
                }
                None => Action::Continue,
            };
            after(&shared, |s| {
                if action == Action::Continue {
                    s.response_headers_released = true;
                    s.response_body_released = true;
                    s.response_body_attached = false;
                }
            });
        }
        shared.borrow_mut().settle_response();
        self.pump()?;
        Ok(())
    }

    /// The end of a request: `on_log` (request headers readable again), `on_done`,
    /// `on_delete`. Pending callouts of the request stay pending: Envoy owns them on
    /// the root context.
    pub fn finish(&mut self, stream: &Stream) -> Result<()> {
        let shared = Rc::clone(&stream.state);
        let id = shared.borrow().id;
        if shared.borrow().finished {
            return Ok(());
        }
        shared.borrow_mut().finished = true;
        let known = self.store.data().contexts.contains_key(&id);
        if !known || self.failure.is_some() {
            self.store.data_mut().contexts.remove(&id);
            return Ok(());
        }
        shared.borrow_mut().access_log_phase = true;
        let logged = match self.exports.log.clone() {
            Some(f) => self.call("proxy_on_log", id, |s| f.call(s, id as i32)),
            None => Ok(()),
        };
        shared.borrow_mut().access_log_phase = false;
        logged?;
        if let Some(f) = self.exports.done.clone() {
            self.call("proxy_on_done", id, |s| f.call(s, id as i32))?;
        }
        if let Some(f) = self.exports.delete.clone() {
            self.call("proxy_on_delete", id, |s| f.call(s, id as i32))?;
        }
        self.store.data_mut().contexts.remove(&id);
        self.pump()?;
        Ok(())
    }
}

/// Resuming inside a request callback and also returning `Continue` asks Envoy to
/// continue twice: its deferred `continueDecoding()` runs as the VM call returns, still
/// inside `decodeHeaders`/`decodeData`, and then the `Continue` status is handled. The
/// SDK idiom is one or the other; flagged.
fn double_continue(shared: &Rc<RefCell<StreamState>>, action: Action, callback: &str) {
    let mut s = shared.borrow_mut();
    if s.resumed_during_call && action == Action::Continue {
        s.anomalies.push(format!("{callback} called proxy_continue_stream(HttpRequest) and also returned Continue"));
    }
    s.resumed_during_call = false;
}

/// Applies a flow step unless the stream is already settled by a local reply, reset or
/// failure (Envoy stops iterating the chain once it answered).
fn after(shared: &Rc<RefCell<StreamState>>, step: impl FnOnce(&mut StreamState)) {
    let mut guard = shared.borrow_mut();
    if guard.local_reply.is_some() || guard.reset || guard.failed.is_some() {
        return;
    }
    step(&mut guard);
}
