//! Buffers: request/response bodies, the callout response body, VM and plugin
//! configuration. Missing buffers are `NotFound` (the SDK reads that as "no body").

use anyhow::Result;
use wasmtime::Caller;

use super::{hostcall, Registrar};
use crate::host::abi::{BufferType, Status};
use crate::host::memory::{addr, copy_out, read, write_u32, HostResult};
use crate::host::state::HostState;

pub(super) fn define(reg: &mut Registrar<'_>) -> Result<()> {
    reg.func(
        "env",
        "proxy_get_buffer_bytes",
        |mut c: Caller<'_, HostState>, ty: i32, start: i32, max: i32, rp: i32, rs: i32| {
            hostcall(&mut c, "proxy_get_buffer_bytes", |c| {
                let ty = BufferType::from_raw(ty).ok_or(Status::BadArgument)?;
                let buffer = readable(c.data(), ty).ok_or(Status::NotFound)?;
                let start = addr(start).min(buffer.len());
                let end = start.saturating_add(addr(max)).min(buffer.len());
                let slice = buffer.get(start..end).unwrap_or_default().to_vec();
                if slice.is_empty() {
                    write_u32(c, rp, 0)?;
                    return write_u32(c, rs, 0);
                }
                copy_out(c, &slice, rp, rs)
            })
        },
    )?;
    reg.func(
        "env",
        "proxy_set_buffer_bytes",
        |mut c: Caller<'_, HostState>, ty: i32, start: i32, size: i32, dp: i32, ds: i32| {
            hostcall(&mut c, "proxy_set_buffer_bytes", |c| {
                let ty = BufferType::from_raw(ty).ok_or(Status::BadArgument)?;
                let data = read(c, dp, ds)?;
                write(c.data(), ty, addr(start), addr(size), data)
            })
        },
    )
}

/// A copy of the buffer the guest may read now.
fn readable(state: &HostState, ty: BufferType) -> Option<Vec<u8>> {
    match ty {
        BufferType::RequestBody => {
            let stream = state.active_stream()?;
            let s = stream.borrow();
            s.flow.body_attached.then(|| s.flow.body.clone())
        }
        BufferType::ResponseBody => {
            let stream = state.active_stream()?;
            let s = stream.borrow();
            s.response_body_attached.then(|| s.response_body.clone())
        }
        BufferType::CallResponseBody => state.call_response.as_ref().map(|r| r.body.clone()),
        BufferType::VmConfiguration => Some(state.vm_configuration.clone()),
        // Envoy only has the plugin configuration while on_configure runs.
        BufferType::PluginConfiguration => state.configuring.then(|| state.plugin_configuration.clone()),
        BufferType::DownstreamData
        | BufferType::UpstreamData
        | BufferType::GrpcReceiveBuffer
        | BufferType::CallData => None,
    }
}

/// Envoy's `Buffer::copyFrom`: `start == 0` drains `size` bytes from the front and
/// prepends `data` (so `(0, len)` replaces everything); `start >= len` appends; anything
/// else is `BadArgument`. Read-only buffers are `BadArgument`, absent ones `NotFound`.
fn write(state: &HostState, ty: BufferType, start: usize, size: usize, data: Vec<u8>) -> HostResult {
    let stream = state.active_stream();
    let mut guard = match (ty, &stream) {
        (BufferType::RequestBody | BufferType::ResponseBody, Some(s)) => s.borrow_mut(),
        _ => {
            return Err(if readable(state, ty).is_some() {
                Status::BadArgument.into()
            } else {
                Status::NotFound.into()
            })
        }
    };
    let s = &mut *guard;
    let buffer = match ty {
        BufferType::RequestBody if s.flow.body_attached => &mut s.flow.body,
        BufferType::ResponseBody if s.response_body_attached => &mut s.response_body,
        _ => return Err(Status::NotFound.into()),
    };
    if start == 0 {
        let drained = size.min(buffer.len());
        buffer.drain(..drained);
        buffer.splice(0..0, data);
    } else if start >= buffer.len() {
        buffer.extend(data);
    } else {
        return Err(Status::BadArgument.into());
    }
    Ok(())
}
