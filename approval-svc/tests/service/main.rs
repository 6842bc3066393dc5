//! The approval service from outside: its HTTP APIs, its CLI, OIDC, the http minter and
//! the security regressions. One test binary (one link of the service's dependencies);
//! each suite is a module.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

mod api;
mod bundle_cli;
mod bundle_serving;
mod cli;
mod cli_policy;
mod console;
mod denied_retry;
mod find;
mod http_minter;
mod listener;
mod oidc;
mod policy_bounds;
mod review_audit;
mod security;
mod tls;
