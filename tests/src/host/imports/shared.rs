//! Shared data and shared queues. Enqueueing notifies the owning root context through
//! `proxy_on_queue_ready` after the current VM call, as Envoy posts it to the dispatcher.

use anyhow::Result;
use wasmtime::Caller;

use super::{hostcall, Registrar};
use crate::host::memory::{copy_out, read, read_string, write_u32};
use crate::host::state::{Deferred, HostState};

pub(super) fn define(reg: &mut Registrar<'_>) -> Result<()> {
    reg.func(
        "env",
        "proxy_get_shared_data",
        |mut c: Caller<'_, HostState>, kp: i32, ks: i32, rp: i32, rs: i32, cas_out: i32| {
            hostcall(&mut c, "proxy_get_shared_data", |c| {
                let key = read_string(c, kp, ks)?;
                let (value, cas) = c.data().shared_data.get(&key)?;
                copy_out(c, &value, rp, rs)?;
                write_u32(c, cas_out, cas)
            })
        },
    )?;
    reg.func(
        "env",
        "proxy_set_shared_data",
        |mut c: Caller<'_, HostState>, kp: i32, ks: i32, vp: i32, vs: i32, cas: i32| {
            hostcall(&mut c, "proxy_set_shared_data", |c| {
                let key = read_string(c, kp, ks)?;
                let value = read(c, vp, vs)?;
                Ok(c.data_mut().shared_data.set(&key, value, cas as u32)?)
            })
        },
    )?;
    reg.func("env", "proxy_register_shared_queue", |mut c: Caller<'_, HostState>, np: i32, ns: i32, id_out: i32| {
        hostcall(&mut c, "proxy_register_shared_queue", |c| {
            let name = read_string(c, np, ns)?;
            let state = c.data_mut();
            let vm_id = state.settings.vm_id.clone();
            let owner = state.root_id;
            let token = state.queues.register(&vm_id, &name, owner);
            write_u32(c, id_out, token)
        })
    })?;
    reg.func(
        "env",
        "proxy_resolve_shared_queue",
        |mut c: Caller<'_, HostState>, vp: i32, vs: i32, np: i32, ns: i32, id_out: i32| {
            hostcall(&mut c, "proxy_resolve_shared_queue", |c| {
                let vm_id = read_string(c, vp, vs)?;
                let name = read_string(c, np, ns)?;
                let token = c.data().queues.resolve(&vm_id, &name).ok_or(crate::host::abi::Status::NotFound)?;
                write_u32(c, id_out, token)
            })
        },
    )?;
    reg.func("env", "proxy_enqueue_shared_queue", |mut c: Caller<'_, HostState>, token: i32, vp: i32, vs: i32| {
        hostcall(&mut c, "proxy_enqueue_shared_queue", |c| {
            let value = read(c, vp, vs)?;
            let state = c.data_mut();
            let token = token as u32;
            let root = state.queues.enqueue(token, value)?;
            state.deferred.push(Deferred::QueueReady { root, token });
            Ok(())
        })
    })?;
    reg.func("env", "proxy_dequeue_shared_queue", |mut c: Caller<'_, HostState>, token: i32, rp: i32, rs: i32| {
        hostcall(&mut c, "proxy_dequeue_shared_queue", |c| {
            let value = c.data_mut().queues.dequeue(token as u32)?;
            copy_out(c, &value, rp, rs)
        })
    })
}
