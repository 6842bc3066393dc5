//! `airlock serve`: builds the state from configuration, runs the API, expires due
//! approvals in the background, seals the audit chain at shutdown.

use std::sync::Arc;
use std::time::Duration;

use crate::api::{app, AppState, State};
use crate::approvals::Approvals;
use crate::auth::gateway::GatewayKeys;
use crate::auth::oidc::Oidc;
use crate::auth::reviewer::ReviewerDirectory;
use crate::channels::step_up::StepUp;
use crate::config::Config;
use crate::credentials::Credentials;
use crate::lifecycle::ExpiryLimits;
use crate::listener::HttpLimits;
use crate::secrets::read_key;
use crate::store::{PostgresStore, SqliteStore, Store};
use crate::tls::Tls;

/// How often the background task expires due approvals.
const EXPIRY_INTERVAL: Duration = Duration::from_secs(1);

/// Reads every secret the configuration names.
pub fn checkpoint_key(config: &Config) -> anyhow::Result<Option<Vec<u8>>> {
    let a = &config.audit;
    match (&a.checkpoint_key_env, &a.checkpoint_key_file) {
        (None, None) => Ok(None),
        (env, file) => Ok(Some(read_key("audit.checkpoint_key", env.as_deref(), file.as_deref())?)),
    }
}

/// Builds the handler state (opening the store) from configuration.
pub fn build_state(config: &Config) -> anyhow::Result<AppState> {
    let mut keys = Vec::new();
    for (i, k) in config.gateway.keys.iter().enumerate() {
        let key = read_key(&format!("gateway.keys[{i}]"), k.secret_env.as_deref(), k.secret_file.as_deref())?;
        keys.push((k.id.clone(), key));
    }
    let audit_key = checkpoint_key(config)?;
    if audit_key.is_none() {
        tracing::warn!("audit.checkpoint_key_env is not set: the audit chain is hashed but not sealed");
    }
    let store = open_store(config, audit_key)?;
    let oidc = config.oidc.clone().map(Oidc::new);
    let channels = crate::channels::Channels::load_with_step_up(
        config.teams.as_ref(),
        config.slack.as_ref(),
        &config.webhooks,
        store.clone(),
        &console_step_up(config.console.as_ref())?,
    )?;
    Ok(Arc::new(State {
        approvals: Arc::new(Approvals::new(store)),
        gateway_keys: GatewayKeys::new(keys),
        reviewers: ReviewerDirectory::new(&config.reviewers, oidc),
        credentials: Credentials::load(&config.credentials)?,
        limits: ExpiryLimits {
            default_expires_in: config.approvals.default_expires_in,
            max_expires_in: config.approvals.max_expires_in,
            max_reuse_window: config.approvals.max_reuse_window,
        },
        max_quorum: config.approvals.max_quorum,
        max_hold: config.gateway.max_hold,
        guards: crate::api::GatewayGuards::new(config.gateway.max_concurrent_holds),
        channels,
        bundles_dir: config.bundles.directory.clone(),
    }))
}

/// The console's step-up rule as the chat channels apply it: approvals of its
/// `step_up_risks` are decided only in the console, so Teams and Slack link there
/// instead of deciding (none while the console is off).
fn console_step_up(console: Option<&crate::console::ConsoleConfig>) -> anyhow::Result<StepUp> {
    match console {
        Some(c) if c.enabled => StepUp::new("console", &c.step_up_risks, Some(&format!("{}/console", c.base_url()))),
        _ => Ok(StepUp::default()),
    }
}

/// The web console, when `[console]` turns it on (reading its client secret).
pub fn build_console(config: &Config, state: &AppState) -> anyhow::Result<Option<Arc<crate::console::Console>>> {
    let Some(c) = &config.console else {
        return Ok(None);
    };
    let secret = match (&c.client_secret_env, &c.client_secret_file) {
        (None, None) => None,
        (env, file) => {
            Some(crate::secrets::read_secret_text("console.client_secret", env.as_deref(), file.as_deref())?)
        }
    };
    let audit = crate::console::AuditSource {
        database: config.database.clone(),
        key: checkpoint_key(config)?,
        every: i64::from(config.audit.checkpoint_every),
    };
    crate::console::Console::new(c, state.approvals.clone(), state.reviewers.clone(), secret, audit)
}

/// The configured store: PostgreSQL when `[store] url` is set, else the SQLite file.
fn open_store(config: &Config, audit_key: Option<Vec<u8>>) -> anyhow::Result<Arc<dyn Store>> {
    let approvals = &config.approvals;
    if let Some(url) = config.store.postgres_url()? {
        let store = PostgresStore::open(&url, audit_key, config.audit.checkpoint_every)
            .map_err(|e| anyhow::anyhow!("store.url: {e}"))?
            .with_pending_limit(approvals.max_pending_per_agent)
            .with_denied_retry_window(approvals.denied_retry_window);
        tracing::info!("store: PostgreSQL");
        return Ok(Arc::new(store));
    }
    let store = SqliteStore::open_with(
        &config.database,
        audit_key,
        config.audit.checkpoint_every,
        config.store.checkpoint_interval,
    )
    .map_err(|e| anyhow::anyhow!("database {}: {e}", config.database.display()))?
    .with_pending_limit(approvals.max_pending_per_agent)
    .with_denied_retry_window(approvals.denied_retry_window);
    tracing::info!(database = %config.database.display(), "store: SQLite");
    Ok(Arc::new(store))
}

/// Runs the expiry sweep ([`Approvals::expire_due`]) every `every`.
pub fn spawn_expiry(state: AppState, every: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(e) = state.approvals.expire_due(crate::time::now_ms()).await {
                tracing::error!(error = %e, "expiry sweep failed");
            }
        }
    })
}

/// Runs the service until SIGINT/SIGTERM.
pub async fn run(config: Config) -> anyhow::Result<()> {
    // Opening the store blocks (PostgreSQL's client runs its own runtime): off the
    // async workers, like every other store call.
    let state = {
        let config = config.clone();
        tokio::task::spawn_blocking(move || build_state(&config))
            .await
            .map_err(|e| anyhow::anyhow!("opening the store: {e}"))??
    };
    let tls = config.http.tls_files().map(Tls::load).transpose()?;
    let listener = tokio::net::TcpListener::bind(&config.listen)
        .await
        .map_err(|e| anyhow::anyhow!("listen {}: {e}", config.listen))?;
    let scheme = match &tls {
        None => "http",
        Some(t) if t.requires_client_certificates() => "https with client certificates",
        Some(_) => "https",
    };
    tracing::info!(listen = %listener.local_addr()?, scheme, database = %config.database.display(), "airlock approval service started");
    let reload = tls.clone().map(crate::tls::reload_on_sighup);
    let expiry = spawn_expiry(state.clone(), EXPIRY_INTERVAL);
    // Reviewer notifications: queued by the store, delivered by one worker per process.
    let outbox = (!state.channels.notifiers.is_empty())
        .then(|| crate::channels::outbox::spawn(state.approvals.clone(), state.channels.notifiers.clone()));
    let limits = HttpLimits {
        header_read_timeout: config.http.header_read_timeout,
        body_read_timeout: config.http.body_read_timeout,
        max_connections: config.http.max_connections,
    };
    let mut router = app(state.clone());
    if let Some(console) = build_console(&config, &state)? {
        tracing::info!(url = %format!("{}/console/", console.config.base_url()), "web console on");
        router = router.merge(crate::console::router(console));
    }
    crate::listener::serve_with(listener, router, limits, tls, shutdown_signal()).await?;
    // The background tasks' clones of the state are dropped (awaited) while `state` still
    // holds the store, so that its last reference goes in the blocking task below: a
    // PostgreSQL client blocks on its own runtime when dropped, which panics on a tokio
    // worker (SIGTERM then ended in an abort, found by tests/deploy/serve-postgres.py).
    expiry.abort();
    let _ = expiry.await;
    if let Some(reload) = reload {
        reload.abort();
    }
    if let Some(outbox) = outbox {
        outbox.abort();
        let _ = outbox.await;
    }
    tokio::task::spawn_blocking(move || {
        let sealed = state.approvals.store.checkpoint();
        drop(state);
        sealed
    })
    .await??;
    tracing::info!("audit chain sealed; stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down");
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_consoles_step_up_risks_leave_chat_for_the_console() {
        let on: crate::console::ConsoleConfig =
            toml::from_str("public_url = \"https://airlock.corp.example/\"\nclient_id = \"airlock\"\n").unwrap();
        let rule = console_step_up(Some(&on)).unwrap();
        assert!(rule.required("critical"), "the console's default step-up risk");
        assert_eq!(rule.link("apr_1").unwrap(), crate::console::approval_url(&on, "apr_1"));
        let off: crate::console::ConsoleConfig =
            toml::from_str("enabled = false\npublic_url = \"https://a.example\"\nclient_id = \"c\"\n").unwrap();
        assert!(!console_step_up(Some(&off)).unwrap().required("critical"));
        assert!(!console_step_up(None).unwrap().required("critical"));
    }
}
