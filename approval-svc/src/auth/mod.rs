//! Who is calling: the gateway (HMAC-signed requests, `docs/protocol.md`) or a reviewer
//! (API key or OIDC bearer token).

pub mod gateway;
pub mod oidc;
pub mod replay;
pub mod reviewer;
