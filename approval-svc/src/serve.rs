//! `airlock serve`: builds the state from configuration, runs the API, expires due
//! approvals in the background, seals the audit chain at shutdown.

use std::sync::Arc;
use std::time::Duration;

use crate::api::{app, AppState, State};
use crate::approvals::Approvals;
use crate::auth::gateway::GatewayKeys;
use crate::auth::oidc::Oidc;
use crate::auth::reviewer::ReviewerDirectory;
use crate::config::Config;
use crate::credentials::Credentials;
use crate::lifecycle::ExpiryLimits;
use crate::listener::HttpLimits;
use crate::secrets::read_key;
use crate::store::{SqliteStore, Store};
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
    let store = SqliteStore::open_with(
        &config.database,
        audit_key,
        config.audit.checkpoint_every,
        config.store.checkpoint_interval,
    )
    .map_err(|e| anyhow::anyhow!("database {}: {e}", config.database.display()))?
    .with_pending_limit(config.approvals.max_pending_per_agent)
    .with_denied_retry_window(config.approvals.denied_retry_window);
    let oidc = config.oidc.clone().map(Oidc::new);
    let store: Arc<dyn Store> = Arc::new(store);
    let channels =
        crate::channels::Channels::load(config.teams.as_ref(), config.slack.as_ref(), &config.webhooks, store.clone())?;
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
    let state = build_state(&config)?;
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
    crate::listener::serve_with(listener, app(state.clone()), limits, tls, shutdown_signal()).await?;
    expiry.abort();
    if let Some(reload) = reload {
        reload.abort();
    }
    if let Some(outbox) = outbox {
        outbox.abort();
    }
    let store = state.approvals.store.clone();
    tokio::task::spawn_blocking(move || store.checkpoint()).await??;
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
