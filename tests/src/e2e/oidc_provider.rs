//! A real OpenID Connect provider on 127.0.0.1: npm `oidc-provider` (installed into
//! `tests/oidc/node_modules` by `scripts/setup-console.sh`), configured by
//! `tests/oidc/provider.mjs` with one client and test users whose ID tokens carry
//! `email` and `groups`. Its login page is the library's development interaction (any
//! password); everything else — discovery, PKCE, codes, signed ID tokens, `auth_time`,
//! `max_age`, `prompt=login` — is the library's own.

use std::fs::File;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde_json::{json, Map};

use crate::e2e::client::Request;
use crate::e2e::envoy::log_dir;
use crate::e2e::ports::localhost;
use crate::wasm::workspace_root;

/// How long the provider may take to serve its discovery document.
const READY: Duration = Duration::from_secs(20);

/// A test user: the login name typed at the provider, and the claims it gets.
pub struct OidcUser {
    /// Login name (and `sub`).
    pub login: String,
    /// `email` claim.
    pub email: String,
    /// `groups` claim.
    pub groups: Vec<String>,
}

/// The running provider.
pub struct OidcProvider {
    child: Child,
    port: u16,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl OidcProvider {
    /// Starts the provider on `port` with one confidential client (`client_id`,
    /// `client_secret`, `redirect_uri`) and `users`; returns once discovery answers.
    pub fn start(
        port: u16,
        client_id: &str,
        client_secret: &str,
        redirect_uri: &str,
        users: &[OidcUser],
    ) -> anyhow::Result<OidcProvider> {
        let script = workspace_root().join("tests/oidc/provider.mjs");
        if !workspace_root().join("tests/oidc/node_modules/oidc-provider").is_dir() {
            bail!("npm oidc-provider is not installed in tests/oidc; run:\n    bash scripts/setup-console.sh");
        }
        let dir = tempfile::Builder::new().prefix("airlock-oidc-").tempdir()?;
        let mut accounts = Map::new();
        for u in users {
            accounts.insert(u.login.clone(), json!({"email": u.email, "groups": u.groups}));
        }
        let config = json!({
            "port": port,
            "clients": [{"client_id": client_id, "client_secret": client_secret, "redirect_uris": [redirect_uri]}],
            "users": accounts,
        });
        let config_path = dir.path().join("provider.json");
        std::fs::write(&config_path, config.to_string())?;
        let log = log_dir()?.join(format!("oidc-provider-{}-{port}.log", std::process::id()));
        let out = File::create(&log)?;
        let child = Command::new("node")
            .arg(&script)
            .arg(&config_path)
            .current_dir(workspace_root().join("tests/oidc"))
            .stdin(Stdio::null())
            .stdout(Stdio::from(out.try_clone()?))
            .stderr(Stdio::from(out))
            .spawn()
            .context("starting node (scripts/setup-console.sh installs Node.js)")?;
        let mut provider = OidcProvider { child, port, log, _dir: dir };
        let deadline = Instant::now() + READY;
        loop {
            let answer = Request::get("/.well-known/openid-configuration")
                .header("host", &format!("127.0.0.1:{port}"))
                .timeout(Duration::from_secs(5))
                .send(localhost(port));
            if answer.is_ok_and(|r| r.status == 200) {
                return Ok(provider);
            }
            if let Ok(Some(status)) = provider.child.try_wait() {
                bail!("oidc-provider exited {status}:\n{}", provider.log_text());
            }
            if Instant::now() > deadline {
                bail!("oidc-provider did not answer discovery within {READY:?}:\n{}", provider.log_text());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `http://127.0.0.1:<port>`: the issuer.
    pub fn issuer(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// What the provider printed.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for OidcProvider {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("===== oidc-provider log ({}) =====\n{}", self.log.display(), self.log_text());
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
