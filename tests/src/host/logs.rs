//! The captured log: `proxy_log` lines and WASI stdout/stderr, with levels.

use std::fmt;

/// proxy-wasm log levels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
    Critical,
}

impl LogLevel {
    pub(crate) fn from_raw(raw: i32) -> Option<LogLevel> {
        Some(match raw {
            0 => LogLevel::Trace,
            1 => LogLevel::Debug,
            2 => LogLevel::Info,
            3 => LogLevel::Warn,
            4 => LogLevel::Error,
            5 => LogLevel::Critical,
            _ => return None,
        })
    }

    pub(crate) fn raw(self) -> u32 {
        self as u32
    }
}

/// Where a line came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogSource {
    /// `proxy_log` (the SDK's `log` facade and its panic hook).
    Proxy,
    /// WASI `fd_write` to stdout (Envoy logs it at info).
    Stdout,
    /// WASI `fd_write` to stderr (Envoy logs it at error).
    Stderr,
    /// Written by this host (e.g. a restricted call, a trap).
    Host,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogEntry {
    pub level: LogLevel,
    pub message: String,
    /// The context the guest was running in (0 before any).
    pub context_id: u32,
    pub source: LogSource,
}

impl fmt::Display for LogEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{:?} ctx={} {:?}] {}", self.level, self.context_id, self.source, self.message)
    }
}
