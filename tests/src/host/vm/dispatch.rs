//! Calling into the guest: every call goes through `Host::call`, which applies the
//! effects Envoy defers to the end of a VM call and turns a trap into a failed VM.

use super::Host;
use crate::host::abi::StreamType;
use crate::host::logs::{LogLevel, LogSource};
use crate::host::state::{ContextKind, Deferred, HostState};
use crate::host::trap::GuestTrap;
use wasmtime::Store;

/// Bounds `proxy_on_queue_ready` ping-pong between enqueue and dequeue.
const MAX_QUEUE_DELIVERIES: usize = 10_000;

impl Host {
    /// Runs one top-level call into the guest on `context`. Deferred effects are applied
    /// afterwards even if it trapped (Envoy runs them from a destructor); a trap fails
    /// the VM. A failed VM is never called again.
    pub(crate) fn call<R>(
        &mut self,
        during: &str,
        context: u32,
        f: impl FnOnce(&mut Store<HostState>) -> wasmtime::Result<R>,
    ) -> std::result::Result<R, GuestTrap> {
        if let Some(failure) = &self.failure {
            return Err(failure.clone());
        }
        let mark = {
            let s = self.store.data_mut();
            s.current_context = context;
            s.effective_context = 0;
            s.logs.len()
        };
        let result = f(&mut self.store);
        let deferred = std::mem::take(&mut self.store.data_mut().deferred);
        self.apply(deferred);
        match result {
            Ok(value) => Ok(value),
            Err(error) => {
                let logs = self.store.data().logs.get(mark..).unwrap_or_default();
                let trap = GuestTrap::new(during, error, logs);
                self.fail(trap.clone());
                Err(trap)
            }
        }
    }

    pub(super) fn fail(&mut self, trap: GuestTrap) {
        let text = trap.to_string();
        for ctx in self.store.data().contexts.values() {
            if let ContextKind::Http(stream) = ctx {
                let mut s = stream.borrow_mut();
                if !s.settled() {
                    s.failed = Some(text.clone());
                }
            }
        }
        self.host_log(
            LogLevel::Critical,
            format!("wasm VM failed ({text}); fail closed: every later request gets 503"),
        );
        self.failure = Some(trap);
    }

    pub(super) fn host_log(&mut self, level: LogLevel, message: String) {
        self.store.data_mut().log(level, message, LogSource::Host);
    }

    /// Applies effects the guest requested during the call that just returned.
    fn apply(&mut self, deferred: Vec<Deferred>) {
        for effect in deferred {
            match effect {
                Deferred::QueueReady { root, token } => self.queue_ready.push_back((root, token)),
                Deferred::Continue { context, stream } => self.apply_continue(context, stream),
                Deferred::Close { context } => {
                    if let Some(stream) = self.store.data().stream(context) {
                        let mut s = stream.borrow_mut();
                        if s.local_reply.is_none() && s.failed.is_none() {
                            s.reset = true;
                        }
                    }
                }
                Deferred::LocalReply { context, reply } => {
                    let Some(stream) = self.store.data().stream(context) else {
                        continue;
                    };
                    let mut s = stream.borrow_mut();
                    if let Some(first) = &s.local_reply {
                        let note = format!(
                            "a second local reply ({}) was sent after {}; Envoy ignores it",
                            reply.status, first.status
                        );
                        s.anomalies.push(note);
                    } else if s.failed.is_none() && !s.reset {
                        if s.flow.upstream_complete {
                            s.anomalies.push(format!(
                                "local reply {} sent after the complete request reached the upstream",
                                reply.status
                            ));
                        }
                        s.local_reply = Some(reply);
                    }
                }
            }
        }
    }

    fn apply_continue(&mut self, context: u32, stream_type: StreamType) {
        let Some(stream) = self.store.data().stream(context) else {
            return;
        };
        let mut guard = stream.borrow_mut();
        let s = &mut *guard;
        if stream_type == StreamType::Response {
            s.response_headers_released = true;
            s.response_body_released = true;
            s.settle_response();
            return;
        }
        if s.local_reply.is_some() || s.reset || s.failed.is_some() {
            s.anomalies.push("resumed a request that had already been answered or reset".into());
            return;
        }
        s.resumed_during_call = true;
        if !s.flow.resume(&s.request_headers) {
            s.anomalies.push("proxy_continue_stream(HttpRequest) on a request that was not paused".into());
        }
    }

    /// Delivers `proxy_on_queue_ready` notifications collected so far.
    pub(super) fn pump(&mut self) -> std::result::Result<(), GuestTrap> {
        let mut delivered = 0;
        while let Some((root, token)) = self.queue_ready.pop_front() {
            let Some(f) = self.exports.queue_ready.clone() else {
                continue;
            };
            if delivered >= MAX_QUEUE_DELIVERIES || self.failure.is_some() {
                self.queue_ready.clear();
                break;
            }
            delivered += 1;
            self.call("proxy_on_queue_ready", root, |s| f.call(s, (root as i32, token as i32)))?;
        }
        Ok(())
    }
}
