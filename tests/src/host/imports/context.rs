//! Context plumbing: effective context, `proxy_done`, call status, foreign functions.

use anyhow::Result;
use wasmtime::Caller;

use super::{hostcall, Registrar};
use crate::host::abi::Status;
use crate::host::memory::{copy_out, read_string, write_u32};
use crate::host::state::HostState;

pub(super) fn define(reg: &mut Registrar<'_>) -> Result<()> {
    reg.func("env", "proxy_set_effective_context", |mut c: Caller<'_, HostState>, id: i32| {
        hostcall(&mut c, "proxy_set_effective_context", |c| {
            let state = c.data_mut();
            let id = id as u32;
            if !state.contexts.contains_key(&id) {
                return Err(Status::BadArgument.into());
            }
            state.effective_context = id;
            Ok(())
        })
    })?;
    reg.func("env", "proxy_done", |mut c: Caller<'_, HostState>| {
        hostcall(&mut c, "proxy_done", |c| {
            // Only a root context whose on_done returned false may call this; the host
            // never shuts a root context down, so there is nothing pending.
            c.data_mut().note("proxy_done called with no pending shutdown".into());
            Err(Status::NotFound.into())
        })
    })?;
    reg.func("env", "proxy_get_status", |mut c: Caller<'_, HostState>, code_out: i32, rp: i32, rs: i32| {
        hostcall(&mut c, "proxy_get_status", |c| {
            let (code, message) = c.data().status.clone();
            write_u32(c, code_out, code)?;
            copy_out(c, message.as_bytes(), rp, rs)
        })
    })?;
    reg.func(
        "env",
        "proxy_call_foreign_function",
        |mut c: Caller<'_, HostState>, np: i32, ns: i32, _ap: i32, _as: i32, _rp: i32, _rs: i32| {
            hostcall(&mut c, "proxy_call_foreign_function", |c| {
                let name = read_string(c, np, ns)?;
                c.data_mut().note(format!("proxy_call_foreign_function({name}): no foreign functions"));
                Err(Status::NotFound.into())
            })
        },
    )
}
