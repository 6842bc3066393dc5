//! `[console]` in airlock.toml: where the web console is reached, the OIDC client it signs
//! reviewers in with, and which approvals need a fresh sign-in to decide.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

/// `[console]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsoleConfig {
    /// Serve the console (`false` keeps the section but turns it off).
    #[serde(default = "yes")]
    pub enabled: bool,
    /// How browsers reach the service, `https://host[:port]` (plain `http` only for a
    /// loopback host): the redirect URI registered with the IdP is
    /// `<public_url>/console/callback`, and links in chat cards point here.
    pub public_url: String,
    /// The console's OIDC client id at the `[oidc]` issuer.
    pub client_id: String,
    /// Environment variable holding the client secret (a confidential client).
    #[serde(default)]
    pub client_secret_env: Option<String>,
    /// File holding the client secret. Neither: a public client (PKCE only).
    #[serde(default)]
    pub client_secret_file: Option<PathBuf>,
    /// Scopes asked for; the ID token must carry `[oidc] id_claim` and `groups_claim`.
    #[serde(default = "default_scopes")]
    pub scopes: Vec<String>,
    /// Risks whose approvals need a recent sign-in to decide (compared case-insensitively
    /// with the policy's `risk`). Chat channels send reviewers of these to the console.
    #[serde(default = "default_step_up_risks")]
    pub step_up_risks: Vec<String>,
    /// How recent (OIDC `auth_time`) that sign-in must be.
    #[serde(default = "default_step_up_max_age", with = "crate::time::duration_text")]
    pub step_up_max_age: Duration,
    /// How long a console session lasts after sign-in.
    #[serde(default = "default_session_ttl", with = "crate::time::duration_text")]
    pub session_ttl: Duration,
}

fn yes() -> bool {
    true
}

fn default_scopes() -> Vec<String> {
    ["openid", "email", "profile"].iter().map(|s| s.to_string()).collect()
}

fn default_step_up_risks() -> Vec<String> {
    vec!["critical".into()]
}

fn default_step_up_max_age() -> Duration {
    Duration::from_secs(5 * 60)
}

fn default_session_ttl() -> Duration {
    Duration::from_secs(8 * 3600)
}

impl ConsoleConfig {
    /// `public_url` without a trailing slash.
    pub fn base_url(&self) -> &str {
        self.public_url.trim_end_matches('/')
    }

    /// The redirect URI registered with the IdP.
    pub fn redirect_uri(&self) -> String {
        format!("{}/console/callback", self.base_url())
    }

    /// Whether approvals of `risk` need a recent sign-in to decide.
    pub fn step_up_for(&self, risk: &str) -> bool {
        let risk = risk.trim();
        !risk.is_empty() && self.step_up_risks.iter().any(|r| r.trim().eq_ignore_ascii_case(risk))
    }

    /// Checks the section; `oidc_configured` says whether `[oidc]` is there (the console
    /// signs in against its issuer and verifies with its keys).
    pub fn validate(&self, oidc_configured: bool) -> anyhow::Result<()> {
        if !self.enabled {
            return Ok(());
        }
        if !oidc_configured {
            anyhow::bail!("console: needs an [oidc] section (the issuer reviewers sign in at)");
        }
        check_public_url(self.base_url())?;
        if self.client_id.trim().is_empty() {
            anyhow::bail!("console.client_id: must not be empty");
        }
        if self.client_secret_env.is_some() && self.client_secret_file.is_some() {
            anyhow::bail!("console: set client_secret_env or client_secret_file, not both");
        }
        if !self.scopes.iter().any(|s| s == "openid") {
            anyhow::bail!("console.scopes: must include \"openid\"");
        }
        if self.step_up_max_age.is_zero() || self.session_ttl.is_zero() {
            anyhow::bail!("console: step_up_max_age and session_ttl must be longer than zero");
        }
        Ok(())
    }
}

/// `https://host[:port]`, or `http://` for a loopback host (browsers keep `Secure`
/// cookies there); no path, query or fragment.
fn check_public_url(url: &str) -> anyhow::Result<()> {
    let fail = |why: &str| anyhow::anyhow!("console.public_url: {url:?}: {why}");
    let (scheme, rest) = url.split_once("://").ok_or_else(|| fail("must start with https://"))?;
    if rest.is_empty() || rest.contains(['/', '?', '#', '@']) || rest.contains(char::is_whitespace) {
        return Err(fail("must be scheme://host[:port], without path, query or credentials"));
    }
    // `[v6]:port` or `host:port`; the port, when given, must be a number.
    let (host, port) = match rest.strip_prefix('[').and_then(|r| r.find(']')) {
        Some(close) => rest.split_at(close + 2),
        None => rest.find(':').map_or((rest, ""), |i| rest.split_at(i)),
    };
    if !(port.is_empty() || port.strip_prefix(':').is_some_and(|p| p.parse::<u16>().is_ok())) {
        return Err(fail("bad port"));
    }
    match scheme {
        "https" => Ok(()),
        "http" if matches!(host, "127.0.0.1" | "localhost" | "[::1]") => Ok(()),
        "http" => Err(fail("plain http is only allowed for a loopback host (127.0.0.1, localhost, [::1])")),
        _ => Err(fail("must start with https://")),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;

    fn config(url: &str) -> ConsoleConfig {
        toml::from_str(&format!("public_url = {url:?}\nclient_id = \"airlock\"\n")).unwrap()
    }

    #[test]
    fn public_url_is_https_or_loopback_http() {
        for ok in [
            "https://airlock.corp.example",
            "https://airlock.corp.example:8443/",
            "http://127.0.0.1:8700",
            "http://localhost",
            "http://[::1]:9",
        ] {
            config(ok).validate(true).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        for bad in [
            "http://airlock.corp.example",
            "airlock.corp.example",
            "https://a.example/console",
            "ftp://a",
            "https://",
            "https://u@a.example",
            "http://127.0.0.1:x",
        ] {
            let e = config(bad).validate(true).unwrap_err().to_string();
            assert!(e.contains("console.public_url"), "{bad}: {e}");
        }
    }

    #[test]
    fn needs_oidc_and_defaults_to_critical_step_up() {
        let c = config("https://a.example");
        assert!(c.validate(false).unwrap_err().to_string().contains("[oidc]"));
        assert!(
            c.step_up_for("critical") && c.step_up_for(" Critical ") && !c.step_up_for("high") && !c.step_up_for("")
        );
        assert_eq!(c.step_up_max_age, Duration::from_secs(300));
        assert_eq!(c.redirect_uri(), "https://a.example/console/callback");
        let off: ConsoleConfig = toml::from_str("enabled = false\npublic_url = \"nope\"\nclient_id = \"\"").unwrap();
        off.validate(false).unwrap();
    }
}
