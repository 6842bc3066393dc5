//! Fresh databases on the test PostgreSQL that `scripts/postgres.sh start` runs (its own
//! data directory, 127.0.0.1, a free port) and names in `AIRLOCK_TEST_POSTGRES_URL`.
//! Used by the store conformance suite and the end-to-end tests; not by the service.

use std::sync::atomic::{AtomicU64, Ordering};

/// The variable naming the test server's maintenance database.
pub const URL_VARIABLE: &str = "AIRLOCK_TEST_POSTGRES_URL";

/// The test server's URL, or why there is none (with the command that starts one).
pub fn server_url() -> Result<String, String> {
    std::env::var(URL_VARIABLE).map_err(|_| {
        format!(
            "{URL_VARIABLE} is not set: these tests need a real PostgreSQL. Start one with \
             `eval \"$(bash scripts/postgres.sh start)\"` (scripts/test.sh does this)"
        )
    })
}

/// Creates an empty database on the test server and answers its URL.
pub fn fresh_database() -> Result<String, String> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let url = server_url()?;
    let name = format!(
        "airlock_t{}_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed),
        crate::time::now_ms() % 1_000_000
    );
    let mut client = postgres::Client::connect(&url, postgres::NoTls).map_err(|e| format!("{url}: {e}"))?;
    client.batch_execute(&format!("CREATE DATABASE {name}")).map_err(|e| format!("create database {name}: {e}"))?;
    let config: postgres::Config = url.parse().map_err(|e| format!("{url}: {e}"))?;
    let host = match config.get_hosts().first() {
        Some(postgres::config::Host::Tcp(h)) => h.clone(),
        _ => "127.0.0.1".to_string(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let user = config.get_user().unwrap_or("postgres");
    Ok(format!("postgres://{user}@{host}:{port}/{name}"))
}
