//! Outgoing calls: `proxy_http_call` is recorded as a pending callout the test answers;
//! gRPC is not simulated and says so.

use std::time::Duration;

use anyhow::Result;
use wasmtime::Caller;

use super::{hostcall, Registrar};
use crate::host::abi::{decode_pairs, Status};
use crate::host::callout::Callout;
use crate::host::headers::HeaderMap;
use crate::host::memory::{read, read_string, write_u32, HostResult};
use crate::host::state::HostState;

pub(super) fn define(reg: &mut Registrar<'_>) -> Result<()> {
    reg.func(
        "env",
        "proxy_http_call",
        |mut c: Caller<'_, HostState>,
         up: i32,
         us: i32,
         hp: i32,
         hs: i32,
         bp: i32,
         bs: i32,
         tp: i32,
         ts: i32,
         timeout_ms: i32,
         token_out: i32| {
            hostcall(&mut c, "proxy_http_call", |c| {
                let cluster = read_string(c, up, us)?;
                let headers = read(c, hp, hs)?;
                let body = read(c, bp, bs)?;
                let trailers = read(c, tp, ts)?;
                // Envoy writes the token slot first to check the memory is valid.
                write_u32(c, token_out, 0)?;
                let token = http_call(c.data_mut(), cluster, &headers, body, &trailers, timeout_ms)?;
                write_u32(c, token_out, token)
            })
        },
    )?;
    define_grpc(reg)
}

fn http_call(
    state: &mut HostState,
    cluster: String,
    raw_headers: &[u8],
    body: Vec<u8>,
    raw_trailers: &[u8],
    timeout_ms: i32,
) -> HostResult<u32> {
    if let Some(known) = &state.settings.clusters {
        if !known.contains(&cluster) {
            return Err(Status::BadArgument.into());
        }
    }
    // Envoy rejects a negative timeout and any call without :path, :method, :authority.
    if timeout_ms < 0 {
        return Err(Status::BadArgument.into());
    }
    let mut headers = to_map(decode_pairs(raw_headers).unwrap_or_default());
    let trailers = to_map(decode_pairs(raw_trailers).unwrap_or_default());
    if [":path", ":method", ":authority"].iter().any(|h| !headers.contains(h)) {
        return Err(Status::BadArgument.into());
    }
    if !body.is_empty() {
        headers.replace("content-length", body.len().to_string());
    }
    let token = loop {
        state.next_token = state.next_token.wrapping_add(1);
        if state.next_token != 0 && !state.pending_callouts.contains_key(&state.next_token) {
            break state.next_token;
        }
    };
    let timeout = (timeout_ms > 0).then(|| Duration::from_millis(u64::from(timeout_ms as u32)));
    let callout = Callout {
        token,
        cluster,
        headers,
        body,
        trailers,
        timeout,
        context_id: state.active_context(),
        sent_at: state.clock.now(),
    };
    if let Some(t) = timeout {
        let due = state.clock.monotonic_nanos().saturating_add(u64::try_from(t.as_nanos()).unwrap_or(u64::MAX));
        state.callout_deadlines.insert(token, due);
    }
    state.all_callouts.push(callout.clone());
    state.pending_callouts.insert(token, callout);
    Ok(token)
}

fn to_map(pairs: Vec<(Vec<u8>, Vec<u8>)>) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (k, v) in pairs {
        map.add(&String::from_utf8_lossy(&k), v);
    }
    map
}

/// No gRPC service exists in this host: calls fail the way Envoy fails them for an
/// unknown cluster, and the attempt is noted.
fn define_grpc(reg: &mut Registrar<'_>) -> Result<()> {
    reg.func(
        "env",
        "proxy_grpc_call",
        |mut c: Caller<'_, HostState>,
         _sp: i32,
         _ss: i32,
         _np: i32,
         _ns: i32,
         _mp: i32,
         _ms: i32,
         _ip: i32,
         _is: i32,
         _rp: i32,
         _rs: i32,
         _timeout: i32,
         _token: i32| {
            hostcall(&mut c, "proxy_grpc_call", |c| {
                c.data_mut().note("proxy_grpc_call: gRPC is not simulated".into());
                Err(Status::ParseFailure.into())
            })
        },
    )?;
    reg.func(
        "env",
        "proxy_grpc_stream",
        |mut c: Caller<'_, HostState>,
         _sp: i32,
         _ss: i32,
         _np: i32,
         _ns: i32,
         _mp: i32,
         _ms: i32,
         _ip: i32,
         _is: i32,
         _token: i32| {
            hostcall(&mut c, "proxy_grpc_stream", |c| {
                c.data_mut().note("proxy_grpc_stream: gRPC is not simulated".into());
                Err(Status::ParseFailure.into())
            })
        },
    )?;
    reg.func("env", "proxy_grpc_send", |mut c: Caller<'_, HostState>, _token: i32, _mp: i32, _ms: i32, _end: i32| {
        hostcall(&mut c, "proxy_grpc_send", |_| Err(Status::NotFound.into()))
    })?;
    reg.func("env", "proxy_grpc_cancel", |mut c: Caller<'_, HostState>, _token: i32| {
        hostcall(&mut c, "proxy_grpc_cancel", |_| Err(Status::NotFound.into()))
    })?;
    reg.func("env", "proxy_grpc_close", |mut c: Caller<'_, HostState>, _token: i32| {
        hostcall(&mut c, "proxy_grpc_close", |_| Err(Status::NotFound.into()))
    })
}
