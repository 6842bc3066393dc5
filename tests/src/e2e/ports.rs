//! Free TCP ports on 127.0.0.1.
//!
//! Servers the tests own bind port 0 and read their port back, which cannot race. Envoy
//! listeners are rendered with port 0 too and found through the admin API
//! ([`crate::e2e::envoy::Envoy::listener_port`]). This helper is for the rare config that
//! must name a port before anything listens on it (a port that is meant to stay closed).

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::sync::{Mutex, OnceLock};

/// A port on 127.0.0.1 that was free a moment ago and has not been handed out before in
/// this process.
pub fn free_port() -> anyhow::Result<u16> {
    static GIVEN: OnceLock<Mutex<BTreeSet<u16>>> = OnceLock::new();
    let given = GIVEN.get_or_init(|| Mutex::new(BTreeSet::new()));
    for _ in 0..64 {
        let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))?;
        let port = listener.local_addr()?.port();
        let mut given = given.lock().map_err(|_| anyhow::anyhow!("port registry poisoned"))?;
        if given.insert(port) {
            return Ok(port);
        }
    }
    anyhow::bail!("no fresh free port on 127.0.0.1 after 64 tries")
}

/// `127.0.0.1:port`.
pub fn localhost(port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, port))
}
