//! Header maps: request/response headers of the active HTTP context and the headers of
//! the callout response being delivered.
//!
//! Availability follows Envoy's `getMap`/`getConstMap`: a map that does not exist right
//! now makes `get_header_map_value` and every write return `BadArgument` (the SDK panics
//! on that), while `get_header_map_pairs` returns an empty map.

use anyhow::Result;
use wasmtime::Caller;

use super::{hostcall, Registrar};
use crate::host::abi::{decode_pairs, MapType, Status};
use crate::host::headers::HeaderMap;
use crate::host::memory::{copy_out, read, read_string, HostResult};
use crate::host::state::HostState;

pub(super) fn define(reg: &mut Registrar<'_>) -> Result<()> {
    reg.func(
        "env",
        "proxy_get_header_map_value",
        |mut c: Caller<'_, HostState>, ty: i32, kp: i32, ks: i32, rp: i32, rs: i32| {
            hostcall(&mut c, "proxy_get_header_map_value", |c| {
                let ty = map_type(ty)?;
                let key = read_string(c, kp, ks)?;
                let map = readable(c.data(), ty).ok_or(Status::BadArgument)?;
                let mode = c.data().settings.repeated_header_get;
                let value = map.get_as_guest_sees(&key, mode).ok_or(Status::NotFound)?;
                copy_out(c, &value, rp, rs)
            })
        },
    )?;
    reg.func("env", "proxy_get_header_map_pairs", |mut c: Caller<'_, HostState>, ty: i32, rp: i32, rs: i32| {
        hostcall(&mut c, "proxy_get_header_map_pairs", |c| {
            let ty = map_type(ty)?;
            let map = readable(c.data(), ty).unwrap_or_default();
            let bytes = if map.is_empty() { Vec::new() } else { map.encode() };
            copy_out(c, &bytes, rp, rs)
        })
    })?;
    reg.func("env", "proxy_set_header_map_pairs", |mut c: Caller<'_, HostState>, ty: i32, ptr: i32, len: i32| {
        hostcall(&mut c, "proxy_set_header_map_pairs", |c| {
            let ty = map_type(ty)?;
            let raw = read(c, ptr, len)?;
            let pairs = decode_pairs(&raw).unwrap_or_else(|| {
                // Envoy's PairsUtil::toPairs yields no pairs for a malformed map.
                c.data_mut().note("proxy_set_header_map_pairs got a malformed map".into());
                Vec::new()
            });
            with_writable(c.data(), ty, |m| m.set_all(pairs))
        })
    })?;
    reg.func(
        "env",
        "proxy_add_header_map_value",
        |mut c: Caller<'_, HostState>, ty: i32, kp: i32, ks: i32, vp: i32, vs: i32| {
            hostcall(&mut c, "proxy_add_header_map_value", |c| {
                let ty = map_type(ty)?;
                let key = read_string(c, kp, ks)?;
                let value = read(c, vp, vs)?;
                with_writable(c.data(), ty, |m| m.add(&key, value))
            })
        },
    )?;
    reg.func(
        "env",
        "proxy_replace_header_map_value",
        |mut c: Caller<'_, HostState>, ty: i32, kp: i32, ks: i32, vp: i32, vs: i32| {
            hostcall(&mut c, "proxy_replace_header_map_value", |c| {
                let ty = map_type(ty)?;
                let key = read_string(c, kp, ks)?;
                let value = read(c, vp, vs)?;
                with_writable(c.data(), ty, |m| m.replace(&key, value))
            })
        },
    )?;
    reg.func("env", "proxy_remove_header_map_value", |mut c: Caller<'_, HostState>, ty: i32, kp: i32, ks: i32| {
        hostcall(&mut c, "proxy_remove_header_map_value", |c| {
            let ty = map_type(ty)?;
            let key = read_string(c, kp, ks)?;
            with_writable(c.data(), ty, |m| m.remove(&key))
        })
    })
}

fn map_type(raw: i32) -> Result<MapType, Status> {
    MapType::from_raw(raw).ok_or(Status::BadArgument)
}

/// A copy of the map the guest may read now, or `None` if it does not exist.
fn readable(state: &HostState, ty: MapType) -> Option<HeaderMap> {
    match ty {
        MapType::RequestHeaders => {
            let stream = state.active_stream()?;
            let s = stream.borrow();
            (s.flow.headers_attached || s.access_log_phase).then(|| s.request_headers.clone())
        }
        MapType::ResponseHeaders => {
            let stream = state.active_stream()?;
            let s = stream.borrow();
            let visible = s.response_headers_attached || (s.access_log_phase && s.downstream_response.is_some());
            visible.then(|| s.response_headers.clone())
        }
        MapType::CallResponseHeaders => state.call_response.as_ref().map(|r| r.headers.clone()),
        MapType::CallResponseTrailers => {
            state.call_response.as_ref().filter(|r| !r.trailers.is_empty()).map(|r| r.trailers.clone())
        }
        // No trailers or gRPC metadata are ever simulated.
        MapType::RequestTrailers
        | MapType::ResponseTrailers
        | MapType::GrpcInitialMetadata
        | MapType::GrpcTrailingMetadata => None,
    }
}

/// Runs `edit` on the map the guest may modify now; `BadArgument` if there is none
/// (callout responses are read-only, as in Envoy).
fn with_writable(state: &HostState, ty: MapType, edit: impl FnOnce(&mut HeaderMap)) -> HostResult {
    let stream = state.active_stream().ok_or(Status::BadArgument)?;
    let mut s = stream.borrow_mut();
    match ty {
        MapType::RequestHeaders if s.flow.headers_attached && !s.access_log_phase => {
            edit(&mut s.request_headers);
            Ok(())
        }
        MapType::ResponseHeaders if s.response_headers_attached && !s.access_log_phase => {
            edit(&mut s.response_headers);
            Ok(())
        }
        _ => Err(Status::BadArgument.into()),
    }
}
