//! The Airlock approval service: approvals created by the gateway filter, decided by
//! reviewers, redeemed for a just-in-time credential, all recorded in a tamper-evident
//! audit trail. The gateway-facing contract is `docs/protocol.md`; the rest is
//! `docs/approval-service.md`.

pub mod api;
pub mod approvals;
pub mod audit;
pub mod auth;
pub mod channels;
pub mod cli;
pub mod config;
pub mod console;
pub mod credentials;
pub mod lifecycle;
pub mod listener;
pub mod metrics;
pub mod policy;
pub mod problem;
pub mod secrets;
pub mod serve;
pub mod store;
pub mod time;
pub mod tls;
