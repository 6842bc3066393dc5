//! `airlock approvals list | show | approve | deny | cancel`: an HTTP client of the reviewer API.

use std::path::PathBuf;

use clap::Subcommand;
use serde_json::{json, Value};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Base URL of the running service.
    #[arg(long, env = "AIRLOCK_URL", default_value = "http://127.0.0.1:8700", global = true)]
    url: String,
    /// File holding the reviewer's API key.
    #[arg(long, env = "AIRLOCK_API_KEY_FILE", global = true)]
    api_key_file: Option<PathBuf>,
    /// The reviewer's API key (or OIDC token); prefer the environment or a file.
    #[arg(long, env = "AIRLOCK_API_KEY", hide_env_values = true, global = true)]
    api_key: Option<String>,
    /// CA certificates (PEM) that verify an `https` service, instead of the public roots.
    #[arg(long, env = "AIRLOCK_CA_FILE", global = true)]
    ca_file: Option<PathBuf>,
    /// Client certificate chain (PEM), for a service that sets `http.client_ca_file`.
    #[arg(long, env = "AIRLOCK_CLIENT_CERT", global = true, requires = "client_key")]
    client_cert: Option<PathBuf>,
    /// The client certificate's private key (PEM).
    #[arg(long, env = "AIRLOCK_CLIENT_KEY", global = true, requires = "client_cert")]
    client_key: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// List approvals, newest first.
    List {
        /// Only this status (pending, approved, denied, expired, cancelled, redeemed).
        /// A filter of this one listing, so deliberately not read from the environment.
        #[arg(long)]
        status: Option<String>,
    },
    /// Show one approval in full.
    Show { id: String },
    /// Vote to approve.
    Approve {
        id: String,
        #[arg(long)]
        comment: Option<String>,
    },
    /// Deny (a comment is required).
    Deny {
        id: String,
        #[arg(long)]
        comment: String,
    },
    /// Call off a pending approval (the agent's owner only; a reason is required and
    /// recorded in the audit trail).
    Cancel {
        id: String,
        #[arg(long)]
        reason: String,
    },
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let token = match (&args.api_key, &args.api_key_file) {
        (_, Some(file)) => std::fs::read_to_string(file)
            .map_err(|e| anyhow::anyhow!("--api-key-file {}: {e}", file.display()))?
            .trim()
            .to_string(),
        (Some(key), None) => key.trim().to_string(),
        (None, None) => anyhow::bail!("no API key: set AIRLOCK_API_KEY or --api-key-file"),
    };
    let base = args.url.trim_end_matches('/');
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .tls_config(tls_config(&args)?)
        .http_status_as_error(false)
        .timeout_global(Some(std::time::Duration::from_secs(30)))
        .build()
        .into();
    let auth = format!("Bearer {token}");
    let (url, body) = match &args.command {
        Command::List { status } => {
            let q = status.as_deref().map(|s| format!("?status={s}")).unwrap_or_default();
            (format!("{base}/v1/approvals{q}"), None)
        }
        Command::Show { id } => (format!("{base}/v1/approvals/{id}"), None),
        Command::Approve { id, comment } => {
            (format!("{base}/v1/approvals/{id}/approve"), Some(json!({"comment": comment})))
        }
        Command::Deny { id, comment } => (format!("{base}/v1/approvals/{id}/deny"), Some(json!({"comment": comment}))),
        Command::Cancel { id, reason } => (format!("{base}/v1/approvals/{id}/cancel"), Some(json!({"reason": reason}))),
    };
    let answer = match body {
        None => agent.get(&url).header("authorization", &auth).call(),
        Some(b) => agent.post(&url).header("authorization", &auth).send_json(&b),
    };
    let mut answer = answer.map_err(|e| anyhow::anyhow!("{url}: {e}"))?;
    let status = answer.status().as_u16();
    let text = answer.body_mut().read_to_string().unwrap_or_default();
    let value: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    if status >= 400 {
        let detail = value.get("detail").and_then(Value::as_str).unwrap_or("");
        let kind = value.get("type").and_then(Value::as_str).unwrap_or("");
        anyhow::bail!("{status} {kind}: {detail}");
    }
    crate::outln!("{}", serde_json::to_string_pretty(&value)?);
    Ok(())
}

/// The TLS client: `--ca-file` replaces the public roots; `--client-cert`/`--client-key`
/// answer a service that requires client certificates.
fn tls_config(args: &Args) -> anyhow::Result<ureq::tls::TlsConfig> {
    use ureq::tls::{Certificate, ClientCert, PemItem, PrivateKey, RootCerts, TlsConfig};
    let read =
        |flag: &str, path: &PathBuf| std::fs::read(path).map_err(|e| anyhow::anyhow!("{flag} {}: {e}", path.display()));
    let certs = |flag: &str, path: &PathBuf| -> anyhow::Result<Vec<Certificate<'static>>> {
        let pem = read(flag, path)?;
        let mut out = Vec::new();
        for item in ureq::tls::parse_pem(&pem) {
            match item.map_err(|e| anyhow::anyhow!("{flag} {}: {e}", path.display()))? {
                PemItem::Certificate(c) => out.push(c),
                _ => continue,
            }
        }
        if out.is_empty() {
            anyhow::bail!("{flag} {}: no CERTIFICATE block in the file", path.display());
        }
        Ok(out)
    };
    let mut tls = TlsConfig::builder();
    if let Some(path) = &args.ca_file {
        tls = tls.root_certs(RootCerts::new_with_certs(&certs("--ca-file", path)?));
    }
    if let (Some(cert), Some(key)) = (&args.client_cert, &args.client_key) {
        let chain = certs("--client-cert", cert)?;
        let key = PrivateKey::from_pem(&read("--client-key", key)?)
            .map_err(|e| anyhow::anyhow!("--client-key {}: {e}", key.display()))?;
        tls = tls.client_cert(Some(ClientCert::new_with_certs(&chain, key)));
    }
    Ok(tls.build())
}
