//! `airlock.toml`: parsed strictly (unknown fields refused), overridden by `AIRLOCK_*`
//! environment variables, secrets only named (`*_env` / `*_file`, read by
//! [`crate::secrets`]). The sections of the modules that own their settings (reviewers,
//! OIDC, credentials, channels) are their types, checked here with the rest.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

pub use crate::auth::oidc::OidcConfig;
pub use crate::auth::reviewer::ReviewerConfig;
pub use crate::credentials::CredentialConfig;
use crate::secrets::exactly_one;
use crate::store::DEFAULT_CHECKPOINT_INTERVAL;

/// The whole file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Listen address (`AIRLOCK_LISTEN`).
    #[serde(default = "default_listen")]
    pub listen: String,
    /// SQLite file (`AIRLOCK_DATABASE`).
    #[serde(default = "default_database")]
    pub database: PathBuf,
    /// The gateway side.
    pub gateway: GatewayConfig,
    /// Approval deadlines.
    #[serde(default)]
    pub approvals: ApprovalsConfig,
    /// Audit sealing.
    #[serde(default)]
    pub audit: AuditConfig,
    /// Known reviewers.
    #[serde(default)]
    pub reviewers: Vec<ReviewerConfig>,
    /// Optional OIDC bearer tokens.
    #[serde(default)]
    pub oidc: Option<OidcConfig>,
    /// Credential profiles by name.
    #[serde(default)]
    pub credentials: BTreeMap<String, CredentialConfig>,
    /// Microsoft Teams bot (`docs/channels/teams.md`).
    #[serde(default)]
    pub teams: Option<crate::channels::teams::TeamsConfig>,
    /// Slack app (`docs/channels/slack.md`).
    #[serde(default)]
    pub slack: Option<crate::channels::slack::SlackConfig>,
    /// Signed webhooks (`docs/channels/webhook.md`).
    #[serde(default)]
    pub webhooks: Vec<crate::channels::webhook::WebhookConfig>,
    /// Policy bundles served to polling gateways (`docs/bundles.md`).
    #[serde(default)]
    pub bundles: BundlesConfig,
    /// How the SQLite store commits.
    #[serde(default)]
    pub store: StoreConfig,
    /// What a client may hold open (`docs/approval-service.md`, "Slow clients").
    #[serde(default)]
    pub http: HttpConfig,
    /// The reviewers' web console (`docs/console.md`).
    #[serde(default)]
    pub console: Option<crate::console::ConsoleConfig>,
}

/// `[http]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// Longest a client may take to send a request's headers; then the connection closes.
    #[serde(default = "default_header_read_timeout", with = "crate::time::duration_text")]
    pub header_read_timeout: Duration,
    /// Longest a client may take to send a request's body after its headers (400).
    #[serde(default = "default_body_read_timeout", with = "crate::time::duration_text")]
    pub body_read_timeout: Duration,
    /// Most connections open at once; further ones wait to be accepted.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// Server certificate chain, PEM, leaf first; with `tls_key_file`, the listener
    /// serves HTTPS only (`AIRLOCK_HTTP_TLS_CERT_FILE`).
    #[serde(default)]
    pub tls_cert_file: Option<PathBuf>,
    /// The certificate's private key, PEM (`AIRLOCK_HTTP_TLS_KEY_FILE`).
    #[serde(default)]
    pub tls_key_file: Option<PathBuf>,
    /// CA certificates, PEM: every connection must present a client certificate they
    /// sign (`AIRLOCK_HTTP_CLIENT_CA_FILE`).
    #[serde(default)]
    pub client_ca_file: Option<PathBuf>,
}

impl HttpConfig {
    /// The TLS files, when the listener serves HTTPS.
    pub fn tls_files(&self) -> Option<crate::tls::TlsFiles> {
        match (&self.tls_cert_file, &self.tls_key_file) {
            (Some(cert), Some(key)) => Some(crate::tls::TlsFiles {
                cert_file: cert.clone(),
                key_file: key.clone(),
                client_ca_file: self.client_ca_file.clone(),
            }),
            _ => None,
        }
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            header_read_timeout: default_header_read_timeout(),
            body_read_timeout: default_body_read_timeout(),
            max_connections: default_max_connections(),
            tls_cert_file: None,
            tls_key_file: None,
            client_ca_file: None,
        }
    }
}

fn default_header_read_timeout() -> Duration {
    Duration::from_secs(10)
}

fn default_body_read_timeout() -> Duration {
    Duration::from_secs(30)
}

fn default_max_connections() -> usize {
    4096
}

/// `[store]` (`docs/approval-service.md`, "Durability").
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// SQLite only: time between WAL checkpoints, which run off the writer thread
    /// (`AIRLOCK_STORE_CHECKPOINT_INTERVAL`).
    #[serde(default = "default_checkpoint_interval", with = "crate::time::duration_text")]
    pub checkpoint_interval: Duration,
    /// PostgreSQL, for several replicas: `postgres://user@host:port/db`
    /// (`AIRLOCK_STORE_URL`). Keep passwords out of this file: put a URL that carries
    /// one in `url_file`. Unset: the embedded SQLite file `database`.
    #[serde(default)]
    pub url: Option<String>,
    /// A file holding the PostgreSQL URL (it may carry the password), e.g. a mounted
    /// Kubernetes Secret. Takes precedence over `url`.
    #[serde(default)]
    pub url_file: Option<PathBuf>,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig { checkpoint_interval: default_checkpoint_interval(), url: None, url_file: None }
    }
}

impl StoreConfig {
    /// The PostgreSQL URL, if the service runs on PostgreSQL.
    pub fn postgres_url(&self) -> anyhow::Result<Option<String>> {
        if let Some(path) = &self.url_file {
            let text =
                std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("store.url_file {}: {e}", path.display()))?;
            return Ok(Some(text.trim().to_string()));
        }
        Ok(self.url.clone())
    }
}

fn default_checkpoint_interval() -> Duration {
    DEFAULT_CHECKPOINT_INTERVAL
}

/// `[bundles]`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BundlesConfig {
    /// Directory whose `*.tar.gz` files `GET /v1/bundles/{name}` serves; unset: off.
    #[serde(default)]
    pub directory: Option<PathBuf>,
}

fn default_listen() -> String {
    "127.0.0.1:8700".into()
}

fn default_database() -> PathBuf {
    PathBuf::from("./airlock.db")
}

/// `[gateway]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayConfig {
    /// HMAC keys; the first signs answers.
    pub keys: Vec<GatewayKeyConfig>,
    /// Longest long-poll granted (`AIRLOCK_GATEWAY_MAX_HOLD`).
    #[serde(default = "default_max_hold", with = "crate::time::duration_text")]
    pub max_hold: Duration,
    /// Most long-polls held at once; further creates answer at once.
    #[serde(default = "default_max_concurrent_holds")]
    pub max_concurrent_holds: usize,
}

/// Most long-polls held open at once by default; further creates answer at once.
pub const DEFAULT_MAX_HOLDS: usize = 1024;

fn default_max_concurrent_holds() -> usize {
    DEFAULT_MAX_HOLDS
}

fn default_max_hold() -> Duration {
    Duration::from_secs(30)
}

/// One gateway key.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayKeyConfig {
    /// Key id (`x-airlock-key-id`).
    pub id: String,
    /// Environment variable with base64 of ≥ 32 bytes.
    #[serde(default)]
    pub secret_env: Option<String>,
    /// File with base64 of ≥ 32 bytes.
    #[serde(default)]
    pub secret_file: Option<PathBuf>,
}

/// `[approvals]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApprovalsConfig {
    /// Deadline when the policy names none (`AIRLOCK_APPROVALS_DEFAULT_EXPIRES_IN`).
    #[serde(default = "default_expires_in", with = "crate::time::duration_text")]
    pub default_expires_in: Duration,
    /// Longest deadline granted (`AIRLOCK_APPROVALS_MAX_EXPIRES_IN`).
    #[serde(default = "default_max_expires_in", with = "crate::time::duration_text")]
    pub max_expires_in: Duration,
    /// Most approvals one agent may have pending; further new actions are refused (429)
    /// so a runaway or hostile agent cannot flood reviewers.
    #[serde(default = "default_max_pending_per_agent")]
    pub max_pending_per_agent: u32,
    /// Longest `reuse = "window:<d>"` a policy may ask for; a longer one is refused
    /// (`AIRLOCK_APPROVALS_MAX_REUSE_WINDOW`).
    #[serde(default = "default_max_reuse_window", with = "crate::time::duration_text")]
    pub max_reuse_window: Duration,
    /// Largest quorum a policy may ask for; a larger one is refused.
    #[serde(default = "default_max_quorum")]
    pub max_quorum: u32,
    /// How long after reviewers deny an action an identical retry (same agent, same
    /// digest) is answered `denied` again instead of asking them anew; `0s` turns it off
    /// (`AIRLOCK_APPROVALS_DENIED_RETRY_WINDOW`).
    #[serde(default = "default_denied_retry_window", with = "crate::time::duration_text")]
    pub denied_retry_window: Duration,
}

fn default_denied_retry_window() -> Duration {
    crate::store::DEFAULT_DENIED_RETRY_WINDOW
}

fn default_max_reuse_window() -> Duration {
    Duration::from_secs(3600)
}

fn default_max_quorum() -> u32 {
    10
}

fn default_max_pending_per_agent() -> u32 {
    20
}

impl Default for ApprovalsConfig {
    fn default() -> Self {
        ApprovalsConfig {
            default_expires_in: default_expires_in(),
            max_expires_in: default_max_expires_in(),
            max_pending_per_agent: default_max_pending_per_agent(),
            max_reuse_window: default_max_reuse_window(),
            max_quorum: default_max_quorum(),
            denied_retry_window: default_denied_retry_window(),
        }
    }
}

fn default_expires_in() -> Duration {
    Duration::from_secs(15 * 60)
}

fn default_max_expires_in() -> Duration {
    Duration::from_secs(24 * 3600)
}

/// `[audit]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditConfig {
    /// Environment variable with base64 of ≥ 32 bytes.
    #[serde(default)]
    pub checkpoint_key_env: Option<String>,
    /// File with base64 of ≥ 32 bytes.
    #[serde(default)]
    pub checkpoint_key_file: Option<PathBuf>,
    /// Records between checkpoints (`AIRLOCK_AUDIT_CHECKPOINT_EVERY`).
    #[serde(default = "default_checkpoint_every")]
    pub checkpoint_every: u32,
}

impl Default for AuditConfig {
    fn default() -> Self {
        AuditConfig {
            checkpoint_key_env: None,
            checkpoint_key_file: None,
            checkpoint_every: default_checkpoint_every(),
        }
    }
}

fn default_checkpoint_every() -> u32 {
    100
}

impl Config {
    /// Reads `path`, applies environment overrides, and validates.
    pub fn load(path: &Path) -> anyhow::Result<Config> {
        let text =
            std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("cannot read config {}: {e}", path.display()))?;
        Config::from_toml(&text, |name| std::env::var(name).ok())
    }

    /// Parses TOML text, applies overrides from `env`, validates.
    pub fn from_toml(text: &str, env: impl Fn(&str) -> Option<String>) -> anyhow::Result<Config> {
        let mut config: Config = toml::from_str(text).map_err(|e| anyhow::anyhow!("config: {e}"))?;
        config.apply_env(&env)?;
        config.validate()?;
        Ok(config)
    }

    fn apply_env(&mut self, env: &impl Fn(&str) -> Option<String>) -> anyhow::Result<()> {
        let duration =
            |name: &str, v: String| humantime::parse_duration(&v).map_err(|e| anyhow::anyhow!("{name}: {v:?}: {e}"));
        if let Some(v) = env("AIRLOCK_LISTEN") {
            self.listen = v;
        }
        if let Some(v) = env("AIRLOCK_DATABASE") {
            self.database = PathBuf::from(v);
        }
        if let Some(v) = env("AIRLOCK_GATEWAY_MAX_HOLD") {
            self.gateway.max_hold = duration("AIRLOCK_GATEWAY_MAX_HOLD", v)?;
        }
        if let Some(v) = env("AIRLOCK_APPROVALS_DEFAULT_EXPIRES_IN") {
            self.approvals.default_expires_in = duration("AIRLOCK_APPROVALS_DEFAULT_EXPIRES_IN", v)?;
        }
        if let Some(v) = env("AIRLOCK_APPROVALS_MAX_EXPIRES_IN") {
            self.approvals.max_expires_in = duration("AIRLOCK_APPROVALS_MAX_EXPIRES_IN", v)?;
        }
        if let Some(v) = env("AIRLOCK_APPROVALS_MAX_REUSE_WINDOW") {
            self.approvals.max_reuse_window = duration("AIRLOCK_APPROVALS_MAX_REUSE_WINDOW", v)?;
        }
        if let Some(v) = env("AIRLOCK_APPROVALS_DENIED_RETRY_WINDOW") {
            self.approvals.denied_retry_window = duration("AIRLOCK_APPROVALS_DENIED_RETRY_WINDOW", v)?;
        }
        if let Some(v) = env("AIRLOCK_AUDIT_CHECKPOINT_EVERY") {
            self.audit.checkpoint_every =
                v.parse().map_err(|e| anyhow::anyhow!("AIRLOCK_AUDIT_CHECKPOINT_EVERY: {v:?}: {e}"))?;
        }
        if let Some(v) = env("AIRLOCK_HTTP_TLS_CERT_FILE") {
            self.http.tls_cert_file = Some(PathBuf::from(v));
        }
        if let Some(v) = env("AIRLOCK_HTTP_TLS_KEY_FILE") {
            self.http.tls_key_file = Some(PathBuf::from(v));
        }
        if let Some(v) = env("AIRLOCK_HTTP_CLIENT_CA_FILE") {
            self.http.client_ca_file = Some(PathBuf::from(v));
        }
        if let Some(v) = env("AIRLOCK_STORE_URL") {
            self.store.url = Some(v);
        }
        if let Some(v) = env("AIRLOCK_STORE_CHECKPOINT_INTERVAL") {
            self.store.checkpoint_interval = duration("AIRLOCK_STORE_CHECKPOINT_INTERVAL", v)?;
        }
        Ok(())
    }

    fn validate(&self) -> anyhow::Result<()> {
        if self.gateway.keys.is_empty() {
            anyhow::bail!("gateway.keys: at least one key is required");
        }
        for (i, key) in self.gateway.keys.iter().enumerate() {
            if key.id.is_empty() {
                anyhow::bail!("gateway.keys[{i}].id: must not be empty");
            }
            exactly_one(&format!("gateway.keys[{i}]"), &key.secret_env, &key.secret_file)?;
        }
        if self.approvals.default_expires_in.is_zero() || self.approvals.max_expires_in.is_zero() {
            anyhow::bail!("approvals: default_expires_in and max_expires_in must be longer than zero");
        }
        if self.approvals.max_reuse_window.is_zero() {
            anyhow::bail!("approvals.max_reuse_window: must be longer than zero");
        }
        if self.approvals.max_quorum == 0 {
            anyhow::bail!("approvals.max_quorum: must be at least 1");
        }
        if self.http.header_read_timeout.is_zero() || self.http.body_read_timeout.is_zero() {
            anyhow::bail!("http: header_read_timeout and body_read_timeout must be longer than zero");
        }
        if self.http.max_connections == 0 {
            anyhow::bail!("http.max_connections: must be at least 1");
        }
        match (&self.http.tls_cert_file, &self.http.tls_key_file) {
            (Some(_), Some(_)) | (None, None) => {}
            _ => anyhow::bail!("http: set both tls_cert_file and tls_key_file, or neither"),
        }
        if self.http.client_ca_file.is_some() && self.http.tls_cert_file.is_none() {
            anyhow::bail!("http.client_ca_file: client certificates need TLS; set tls_cert_file and tls_key_file too");
        }
        if let Some(url) = &self.store.url {
            if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
                anyhow::bail!(
                    "store.url: {url:?} is not a postgres:// URL (unset it to use the SQLite file `database`)"
                );
            }
        }
        if self.store.checkpoint_interval.is_zero() {
            anyhow::bail!("store.checkpoint_interval: must be longer than zero");
        }
        if self.audit.checkpoint_key_env.is_some() && self.audit.checkpoint_key_file.is_some() {
            anyhow::bail!("audit: set checkpoint_key_env or checkpoint_key_file, not both");
        }
        for (i, r) in self.reviewers.iter().enumerate() {
            if r.id.trim().is_empty() {
                anyhow::bail!("reviewers[{i}].id: must not be empty");
            }
            if let Some(h) = &r.api_key_sha256 {
                if h.len() != 64 || !h.bytes().all(|b| b.is_ascii_hexdigit()) {
                    anyhow::bail!(
                        "reviewers[{i}].api_key_sha256: must be 64 hex characters (`airlock keys hash-api-key`)"
                    );
                }
            }
        }
        for (name, c) in &self.credentials {
            c.validate(name)?;
        }
        if let Some(console) = &self.console {
            console.validate(self.oidc.is_some())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const MINIMAL: &str = r#"
        [gateway]
        keys = [{ id = "k1", secret_env = "K1" }]
    "#;

    #[test]
    fn minimal_config_takes_defaults_and_env_overrides() {
        let c = Config::from_toml(MINIMAL, |n| (n == "AIRLOCK_LISTEN").then(|| "0.0.0.0:9".to_string())).unwrap();
        assert_eq!(c.listen, "0.0.0.0:9");
        assert_eq!(c.gateway.max_hold, Duration::from_secs(30));
        assert_eq!(c.approvals.default_expires_in, Duration::from_secs(900));
    }

    #[test]
    fn errors_name_the_field() {
        let e = Config::from_toml("bogus = 1\n[gateway]\nkeys = []", |_| None).unwrap_err().to_string();
        assert!(e.contains("bogus"), "{e}");
        let e = Config::from_toml("[gateway]\nkeys = [{ id = \"k\" }]", |_| None).unwrap_err().to_string();
        assert!(e.contains("gateway.keys[0]"), "{e}");
        let e = Config::from_toml(
            &format!("{MINIMAL}\n[credentials.x]\nkind = \"jwt-hs256\"\nsecret_env = \"X\"\nttl = \"10m\""),
            |_| None,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("credentials.x.ttl"), "{e}");
        let e =
            Config::from_toml(&format!("{MINIMAL}\n[credentials.x]\nkind = \"static\"\nsecret = \"inline\""), |_| None)
                .unwrap_err()
                .to_string();
        assert!(e.contains("secret"), "{e}");
    }

    #[test]
    fn store_table_is_optional_with_defaults() {
        let c = Config::from_toml(MINIMAL, |_| None).unwrap();
        assert_eq!(c.store.checkpoint_interval, Duration::from_secs(1));
        assert_eq!(c.store.checkpoint_interval, DEFAULT_CHECKPOINT_INTERVAL);
        let c = Config::from_toml(&format!("{MINIMAL}\n[store]\n"), |_| None).unwrap();
        assert_eq!(c.store.checkpoint_interval, DEFAULT_CHECKPOINT_INTERVAL);
    }

    #[test]
    fn store_table_parses_and_env_overrides() {
        let text = format!("{MINIMAL}\n[store]\ncheckpoint_interval = \"250ms\"\n");
        let c = Config::from_toml(&text, |_| None).unwrap();
        assert_eq!(c.store.checkpoint_interval, Duration::from_millis(250));
        let env = |n: &str| match n {
            "AIRLOCK_STORE_CHECKPOINT_INTERVAL" => Some("5s".to_string()),
            _ => None,
        };
        let c = Config::from_toml(&text, env).unwrap();
        assert_eq!(c.store.checkpoint_interval, Duration::from_secs(5));
    }

    #[test]
    fn store_table_errors_are_clear() {
        let e = Config::from_toml(&format!("{MINIMAL}\n[store]\nsynchronous = \"off\"\n"), |_| None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown field") && e.contains("synchronous") && e.contains("checkpoint_interval"), "{e}");
        let e = Config::from_toml(&format!("{MINIMAL}\n[store]\ncheckpoint_interval = \"soon\"\n"), |_| None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("soon"), "{e}");
        let e = Config::from_toml(&format!("{MINIMAL}\n[store]\ncheckpoint_interval = \"0s\"\n"), |_| None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("store.checkpoint_interval"), "{e}");
    }

    #[test]
    fn http_limits_default_and_parse() {
        let c = Config::from_toml(MINIMAL, |_| None).unwrap();
        assert_eq!(c.http.header_read_timeout, Duration::from_secs(10));
        assert_eq!(c.http.max_connections, 4096);
        let c = Config::from_toml(&format!("{MINIMAL}\n[http]\nbody_read_timeout = \"5s\"\n"), |_| None).unwrap();
        assert_eq!(c.http.body_read_timeout, Duration::from_secs(5));
        let e = Config::from_toml(&format!("{MINIMAL}\n[http]\nmax_connections = 0\n"), |_| None).unwrap_err();
        assert!(e.to_string().contains("http.max_connections"), "{e}");
    }
}
