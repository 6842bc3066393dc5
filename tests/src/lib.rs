//! Test support for Airlock: everything the integration tests in `tests/tests/` share.
//!
//! - [`wasm`]: where the built filter lives, and the exact command to build it.
//! - [`host`]: a proxy-wasm host on wasmtime that runs the real `.wasm`.
//! - [`e2e`]: real Envoy, local upstreams and a fake approval service.
//! - [`bench`]: the Envoy benchmark harness's parts (`src/bin/airlock-bench.rs`).

pub mod bench;
pub mod e2e;
pub mod fakes;
pub mod host;
pub mod wasm;
