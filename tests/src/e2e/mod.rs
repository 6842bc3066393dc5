//! Real-Envoy end-to-end support: the pieces the `tests/tests/e2e_*.rs` files wire together.
//!
//! - [`envoy`]: find, validate, start and watch the PyPI Envoy (admin, stats, log on failure).
//! - [`template`]: render the `${AIRLOCK_*}` placeholders of the shipped `envoy/*.yaml`.
//! - [`plugin`]: the filter's plugin configuration and a small policy for tests.
//! - [`gateway`]: a running gateway = Envoy + recording upstream + fake approval service.
//! - [`upstream`]: a recording HTTP/HTTPS upstream ("did anything reach it?").
//! - [`fake_service`]: the approval service of `docs/protocol.md`, in memory.
//! - [`service`]: the REAL approval service (`airlock serve`) as a child process, and its CLI.
//! - [`mcp`]: the official MCP SDKs (Python, TypeScript) as server and client processes.
//! - [`signing`]: the protocol's HMAC request and answer signatures.
//! - [`server`]: the small hyper server both local servers run on (can go down and up).
//! - [`tls`]: a throw-away test CA and server certificates.
//! - [`client`]: a raw HTTP/1.1 client that sends exactly the bytes a test writes, and an
//!   h2c client (`H2Request`) for HTTP/2 framing such as request trailers.
//! - [`moto`]: AWS (S3, STS, IAM) played by moto in server mode, and a recording TCP tee.
//! - [`ports`]: free 127.0.0.1 ports.
//! - [`cases`]: run a file's scenarios against one shared gateway, report every failure.
//! - [`browser`]: headless Chromium through W3C WebDriver (chromedriver).
//! - [`oidc_provider`]: npm `oidc-provider` as a real OpenID Connect provider.

pub mod browser;
pub mod cases;
pub mod client;
pub mod envoy;
pub mod fake_service;
pub mod gateway;
pub mod mcp;
pub mod moto;
pub mod oidc_provider;
pub mod plugin;
pub mod ports;
pub mod postgres;
pub mod server;
pub mod service;
pub mod signing;
pub mod template;
pub mod tls;
pub mod upstream;
