//! `proxy_log` and `proxy_get_log_level`: every line is captured, whatever its level.

use anyhow::Result;
use wasmtime::Caller;

use super::{hostcall, Registrar};
use crate::host::abi::Status;
use crate::host::logs::{LogLevel, LogSource};
use crate::host::memory::{read_string, write_u32, HostResult};
use crate::host::state::HostState;

pub(super) fn define(reg: &mut Registrar<'_>) -> Result<()> {
    reg.func("env", "proxy_log", |mut c: Caller<'_, HostState>, level: i32, ptr: i32, len: i32| {
        hostcall(&mut c, "proxy_log", |c| log(c, level, ptr, len))
    })?;
    reg.func("env", "proxy_get_log_level", |mut c: Caller<'_, HostState>, out: i32| {
        hostcall(&mut c, "proxy_get_log_level", |c| {
            let level = c.data().log_level.raw();
            write_u32(c, out, level)
        })
    })
}

fn log(c: &mut Caller<'_, HostState>, level: i32, ptr: i32, len: i32) -> HostResult {
    let level = LogLevel::from_raw(level).ok_or(Status::BadArgument)?;
    let message = read_string(c, ptr, len)?;
    c.data_mut().log(level, message, LogSource::Proxy);
    Ok(())
}
