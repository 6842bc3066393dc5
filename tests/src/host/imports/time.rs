//! The clock and the root context's timer.

use anyhow::Result;
use wasmtime::Caller;

use super::{hostcall, Registrar};
use crate::host::memory::write_u64;
use crate::host::state::HostState;

pub(super) fn define(reg: &mut Registrar<'_>) -> Result<()> {
    reg.func("env", "proxy_get_current_time_nanoseconds", |mut c: Caller<'_, HostState>, out: i32| {
        hostcall(&mut c, "proxy_get_current_time_nanoseconds", |c| {
            let now = c.data().clock.wall_nanos();
            write_u64(c, out, now)
        })
    })?;
    reg.func("env", "proxy_set_tick_period_milliseconds", |mut c: Caller<'_, HostState>, period_ms: i32| {
        hostcall(&mut c, "proxy_set_tick_period_milliseconds", |c| {
            // Envoy keeps one period per root context; this host has one root.
            let state = c.data_mut();
            let period = u64::from(period_ms as u32);
            if period == 0 {
                state.tick_period = None;
                state.next_tick = None;
            } else {
                let period = std::time::Duration::from_millis(period);
                state.tick_period = Some(period);
                let due =
                    state.clock.monotonic_nanos().saturating_add(u64::try_from(period.as_nanos()).unwrap_or(u64::MAX));
                state.next_tick = Some(due);
            }
            Ok(())
        })
    })
}
