//! The host's clock. It never moves by itself: tests set or advance it, so time-dependent
//! behaviour (signatures, expiry, ticks, callout timeouts) is reproducible.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[derive(Clone, Debug)]
pub(crate) struct Clock {
    wall: SystemTime,
    /// Nanoseconds since the VM started; only ever moves forward.
    monotonic: Duration,
}

impl Clock {
    pub(crate) fn starting_at(wall: SystemTime) -> Clock {
        Clock { wall, monotonic: Duration::from_secs(1) }
    }

    pub(crate) fn now(&self) -> SystemTime {
        self.wall
    }

    /// `proxy_get_current_time_nanoseconds` and WASI realtime.
    pub(crate) fn wall_nanos(&self) -> u64 {
        let since = self.wall.duration_since(UNIX_EPOCH).unwrap_or_default();
        u64::try_from(since.as_nanos()).unwrap_or(u64::MAX)
    }

    /// WASI monotonic clock.
    pub(crate) fn monotonic_nanos(&self) -> u64 {
        u64::try_from(self.monotonic.as_nanos()).unwrap_or(u64::MAX)
    }

    /// Moves both clocks forward.
    pub(crate) fn advance(&mut self, by: Duration) {
        self.wall += by;
        self.monotonic += by;
    }

    /// Jumps the wall clock (skew, NTP steps); the monotonic clock is untouched.
    pub(crate) fn set_wall(&mut self, wall: SystemTime) {
        self.wall = wall;
    }
}
