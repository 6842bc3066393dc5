//! A guest trap as a test sees it: which callback, wasmtime's message, and the panic
//! message the SDK's panic hook logged (at critical) just before `abort`.

use std::fmt;

use super::logs::{LogEntry, LogLevel, LogSource};
use super::wasi::ProcExit;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GuestTrap {
    /// The export that was running, e.g. `proxy_on_request_headers`.
    pub during: String,
    /// The root cause, e.g. ``wasm trap: wasm `unreachable` instruction executed``.
    pub message: String,
    /// The panic message, when the guest logged one.
    pub panic: Option<String>,
    /// The wasm backtrace wasmtime captured, if any.
    pub backtrace: Option<String>,
}

impl GuestTrap {
    pub(crate) fn new(during: &str, error: wasmtime::Error, logs_since_call: &[LogEntry]) -> GuestTrap {
        let message = match error.downcast_ref::<ProcExit>() {
            Some(exit) => exit.to_string(),
            None => error.root_cause().to_string(),
        };
        let backtrace = error.downcast_ref::<wasmtime::WasmBacktrace>().map(ToString::to_string);
        let panic = logs_since_call
            .iter()
            .rev()
            .find(|l| l.level == LogLevel::Critical && l.source == LogSource::Proxy)
            .map(|l| l.message.clone());
        GuestTrap { during: during.to_string(), message, panic, backtrace }
    }
}

impl fmt::Display for GuestTrap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the filter trapped in {}: {}", self.during, self.message)?;
        if let Some(panic) = &self.panic {
            write!(f, " (guest panic: {panic})")?;
        }
        // `{:#}` adds the wasm backtrace.
        if let (true, Some(bt)) = (f.alternate(), &self.backtrace) {
            write!(f, "\n{bt}")?;
        }
        Ok(())
    }
}

impl std::error::Error for GuestTrap {}
