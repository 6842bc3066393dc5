//! The Envoy benchmark harness's parts (`src/bin/airlock-bench.rs` wires them together;
//! `scripts/bench-envoy.sh` runs it). Not used by any test: nothing here asserts a timing.
//!
//! - [`proc`]: child processes in their own group, CPU pinning, nginx, /proc readings.
//! - [`envoy`]: the listeners' YAML (floor WAT module, Wasm and ext_authz filters), one
//!   Envoy started and waited for.
//! - [`policy`]: the library as a signed bundle and the Airlock listeners' plugin config.
//! - [`library9`]: the 9× library generated from `policies/library` (more teams' hosts and
//!   routes, the same rule shapes) and its startup check.
//! - [`load`]: wrk (closed loop, optionally a Lua script for a POST body), the open-loop
//!   generator, sequential and concurrent pending runs.
//! - [`targets`]: issue 12's targets against what a run measured, as one table.

pub mod envoy;
pub mod library9;
pub mod load;
pub mod policy;
pub mod proc;
pub mod targets;

/// The agent of every allowed request and of the approve-route runs.
pub const AGENT: &str = "spiffe://corp/agent/report-bot";
/// The host of the allowed GET and of the approve-required POST.
pub const HOST: &str = "api.example.com";
/// The allowed GET (library `hosts` module: `known-host-read`).
pub const ALLOW_PATH: &str = "/v1/reports?page=2";
/// The approve-required path (library `exports` module, `data-export`).
pub const EXPORT_PATH: &str = "/v1/exports";
/// CPU the harness keeps for Envoy; wrk, nginx and the generator get the other one.
pub const ENVOY_CPU: &str = "0";
/// CPU of the load generators, nginx, the service and the harness itself.
pub const LOAD_CPU: &str = "1";
/// The problem type of an approve-required answer while the approval is pending.
pub const PENDING: &str = "urn:airlock:problem:approval-pending";

/// Nanoseconds as microseconds.
pub fn us(ns: u64) -> f64 {
    ns as f64 / 1000.0
}
