//! End to end through real Envoy (from `bash scripts/setup.sh`) and the real filter. One
//! test binary for all suites, so the test harness links once; each suite is a module.
//!
//! Needs `bash scripts/setup.sh` (Envoy), `bash scripts/build-wasm.sh` (the filter and
//! its fault-injection copy) and, for `service_*`, `cargo build -p airlock-approval-svc`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod e2e_support;

mod adversarial;
mod aws_sigv4;
mod bundle_swap;
mod console;
mod egress_tls;
mod envoy_configs;
mod flow;
mod jwt_identity;
mod mcp_sdk;
mod owners_told;
mod replicas;
mod service_flow;
mod service_races;
mod service_tls;
mod slack;
mod teams;
mod teams_dm;
mod teams_envoy;
mod teams_package;
mod vm_panic;
mod webhook;
