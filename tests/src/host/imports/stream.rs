//! Stream control: resume, reset, local reply. Envoy defers all three until the VM call
//! returns (`addAfterVmCallAction`); so does this host. Resuming detaches the request
//! header map and body at once, as Envoy's `continueStream` does.

use anyhow::Result;
use wasmtime::Caller;

use super::{hostcall, Registrar};
use crate::host::abi::{decode_pairs, Status, StreamType};
use crate::host::headers::HeaderMap;
use crate::host::memory::{read, read_string, HostResult};
use crate::host::state::{Deferred, HostState};
use crate::host::stream::LocalReply;

pub(super) fn define(reg: &mut Registrar<'_>) -> Result<()> {
    reg.func("env", "proxy_continue_stream", |mut c: Caller<'_, HostState>, ty: i32| {
        hostcall(&mut c, "proxy_continue_stream", |c| continue_stream(c.data_mut(), ty))
    })?;
    reg.func("env", "proxy_close_stream", |mut c: Caller<'_, HostState>, ty: i32| {
        hostcall(&mut c, "proxy_close_stream", |c| {
            let ty = StreamType::from_raw(ty).ok_or(Status::BadArgument)?;
            let state = c.data_mut();
            if matches!(ty, StreamType::Request | StreamType::Response) {
                let context = state.active_context();
                state.deferred.push(Deferred::Close { context });
            }
            Ok(())
        })
    })?;
    reg.func(
        "env",
        "proxy_send_local_response",
        |mut c: Caller<'_, HostState>, status: i32, dp: i32, ds: i32, bp: i32, bs: i32, hp: i32, hs: i32, grpc: i32| {
            hostcall(&mut c, "proxy_send_local_response", |c| {
                let details = read_string(c, dp, ds)?;
                let body = read(c, bp, bs)?;
                let raw_headers = read(c, hp, hs)?;
                let state = c.data_mut();
                let pairs = decode_pairs(&raw_headers).unwrap_or_else(|| {
                    state.note("proxy_send_local_response got a malformed header map".into());
                    Vec::new()
                });
                let mut headers = HeaderMap::new();
                for (k, v) in pairs {
                    headers.add(&String::from_utf8_lossy(&k), v);
                }
                let reply = LocalReply { status: status as u32, headers, body, grpc_status: grpc, details };
                let context = state.active_context();
                if state.stream(context).is_none() {
                    // Envoy has no decoder callbacks outside a request: nothing happens.
                    state.note(format!(
                        "proxy_send_local_response({}) outside a request context was ignored",
                        reply.status
                    ));
                    return Ok(());
                }
                state.deferred.push(Deferred::LocalReply { context, reply });
                Ok(())
            })
        },
    )
}

fn continue_stream(state: &mut HostState, ty: i32) -> HostResult {
    let ty = StreamType::from_raw(ty).ok_or(Status::BadArgument)?;
    let context = state.active_context();
    match ty {
        StreamType::Request | StreamType::Response => {
            if let Some(stream) = state.stream(context) {
                let mut s = stream.borrow_mut();
                if ty == StreamType::Request {
                    s.flow.headers_attached = false;
                    s.flow.body_attached = false;
                } else {
                    s.response_headers_attached = false;
                    s.response_body_attached = false;
                }
            } else {
                state.note(format!("proxy_continue_stream({ty:?}) outside a request context was ignored"));
            }
            state.deferred.push(Deferred::Continue { context, stream: ty });
            Ok(())
        }
        StreamType::Downstream => Ok(()),
        StreamType::Upstream => Err(Status::Unimplemented.into()),
    }
}
