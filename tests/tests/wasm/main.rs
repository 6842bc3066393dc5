//! The real filter module inside the wasmtime proxy-wasm host. One test binary for all
//! of these suites: each binary statically links wasmtime, so one link instead of four
//! keeps the build small on disk and quick to link.
//!
//! Needs the release build: `cargo build -p airlock-filter-wasm --target wasm32-wasip1 --release`
//! (`host_wat` does not).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod wasm_support;

mod adversarial;
mod bundle;
mod cache;
mod exports;
mod flow;
mod host_selftest;
mod host_wat;
mod mcp;
