//! A proxy-wasm host on wasmtime that runs the real filter module the way Envoy does, so
//! tests can assert outcomes (what reached the upstream, the local reply, the callouts
//! made, metrics, logs) without an Envoy process.
//!
//! ```no_run
//! use airlock_tests::host::{Host, Outcome};
//! # fn main() -> anyhow::Result<()> {
//! let mut host = Host::new(r#"{"...": "plugin configuration"}"#)?;
//! let stream = host
//!     .request()
//!     .method("POST")
//!     .path("/v1/exports")
//!     .header("x-airlock-agent", "spiffe://corp/agent/report-bot")
//!     .body(r#"{"format":"csv"}"#)
//!     .send()?;
//! if let Some(callout) = host.pending_callouts().first() {
//!     host.respond_callout(callout.token, 200, &[], r#"{"status":"pending"}"#)?;
//! }
//! assert!(!stream.reached_upstream());
//! host.finish(&stream)?;
//! # Ok(()) }
//! ```
//!
//! Fidelity notes (each checked against Envoy's `source/extensions/common/wasm/context.cc`
//! and proxy-wasm-cpp-host):
//! - `Continue` from `on_request_headers` forwards the headers upstream at once, even when
//!   a body follows, and the request header map is then gone (`BadArgument`);
//!   `Stream::upstream_saw_headers` exposes that early release.
//! - `get_header_map_value` of a repeated header returns the first value (Envoy), unless
//!   `HostOptions::repeated_header_get` says otherwise.
//! - `proxy_http_call` belongs to the root context; the response is delivered with the
//!   root context id, and the SDK switches to the request with
//!   `proxy_set_effective_context`.
//! - Resume, reset and local replies take effect when the VM call returns.
//! - A trap fails the VM: unsettled requests and every later one are `Outcome::Failed`
//!   (Envoy's `FAIL_CLOSED`: 503, never forwarded).
//! - The clock is frozen; tests move it (`advance_time` fires due ticks and callout
//!   timeouts).

mod abi;
mod callout;
mod clock;
mod flow;
mod guest;
mod headers;
mod imports;
mod logs;
mod memory;
mod metrics;
mod module;
mod request;
mod shared;
mod state;
mod stream;
mod trap;
mod vm;
mod wasi;

pub use callout::{Callout, CalloutFailure};
pub use headers::{HeaderMap, RepeatedHeaderGet};
pub use logs::{LogEntry, LogLevel, LogSource};
pub use metrics::MetricValue;
pub use module::{filter_module_imports, imports_of, WasmSource};
pub use request::RequestBuilder;
pub use stream::{LocalReply, Outcome, Stream};
pub use trap::GuestTrap;
pub use vm::{Host, HostOptions};
pub use wasi::ProcExit;
