//! `proxy_define_metric` and friends, backed by `host::metrics::Metrics`.

use anyhow::Result;
use wasmtime::Caller;

use super::{hostcall, Registrar};
use crate::host::memory::{read_string, write_u32, write_u64};
use crate::host::state::HostState;

pub(super) fn define(reg: &mut Registrar<'_>) -> Result<()> {
    reg.func(
        "env",
        "proxy_define_metric",
        |mut c: Caller<'_, HostState>, kind: i32, np: i32, ns: i32, id_out: i32| {
            hostcall(&mut c, "proxy_define_metric", |c| {
                let name = read_string(c, np, ns)?;
                let id = c.data_mut().metrics.define(kind, &name)?;
                write_u32(c, id_out, id)
            })
        },
    )?;
    reg.func("env", "proxy_increment_metric", |mut c: Caller<'_, HostState>, id: i32, offset: i64| {
        hostcall(&mut c, "proxy_increment_metric", |c| Ok(c.data_mut().metrics.increment(id as u32, offset)?))
    })?;
    reg.func("env", "proxy_record_metric", |mut c: Caller<'_, HostState>, id: i32, value: i64| {
        hostcall(&mut c, "proxy_record_metric", |c| Ok(c.data_mut().metrics.record(id as u32, value as u64)?))
    })?;
    reg.func("env", "proxy_get_metric", |mut c: Caller<'_, HostState>, id: i32, out: i32| {
        hostcall(&mut c, "proxy_get_metric", |c| {
            let value = c.data_mut().metrics.get(id as u32)?;
            write_u64(c, out, value)
        })
    })
}
