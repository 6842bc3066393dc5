//! Airlock gateway filter.
//!
//! Everything here is host-agnostic and tested natively: configuration,
//! identity, the action and its digest, policy input and evaluation, the decision
//! [`cache`], signed policy [`bundle`]s and their polling, decisions, callouts to the
//! approval service and the per-request [`flow`]. It never touches proxy-wasm: the
//! module Envoy loads is the thin `airlock-filter-wasm` crate (`filter/wasm/`), which
//! binds this core to the hostcalls and nothing more.

pub mod action;
pub mod body;
pub mod bundle;
pub mod cache;
pub mod callout;
pub mod config;
pub mod decision;
pub mod decision_log;
pub mod digest;
pub mod flow;
pub mod identity;
pub mod input;
pub mod known;
pub mod method_field;
pub mod metrics;
pub mod number;
pub mod policy;
pub mod problem;
pub mod redact;
pub mod signing;
pub mod source;
pub mod target;
pub mod wire;
pub mod worker;

#[cfg(feature = "fault-injection")]
pub mod fault;
