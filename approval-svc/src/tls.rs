//! HTTPS for the listener: rustls (ring) from PEM files, TLS 1.2 and 1.3 only, ALPN
//! `http/1.1`, and client certificates required and verified when a client CA is set.
//! The files are read again on SIGHUP; a reload that fails keeps the configuration in use.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

/// The PEM files the listener serves HTTPS with (`[http]` in the configuration).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    /// The server certificate chain, leaf first.
    pub cert_file: PathBuf,
    /// The server certificate's private key (PKCS#8, PKCS#1 or SEC1).
    pub key_file: PathBuf,
    /// CAs that sign client certificates; when set, every connection must present one.
    pub client_ca_file: Option<PathBuf>,
}

/// The listener's TLS configuration, replaceable while the service runs.
#[derive(Clone, Debug)]
pub struct Tls {
    files: TlsFiles,
    current: Arc<watch::Sender<Arc<ServerConfig>>>,
}

impl Tls {
    /// Reads and checks the files; the error names the file and what is wrong with it.
    pub fn load(files: TlsFiles) -> anyhow::Result<Tls> {
        let config = server_config(&files)?;
        let (current, _) = watch::channel(config);
        Ok(Tls { files, current: Arc::new(current) })
    }

    /// Reads the files again; on success new connections use them, on error nothing
    /// changes.
    pub fn reload(&self) -> anyhow::Result<()> {
        let config = server_config(&self.files)?;
        self.current.send_replace(config);
        Ok(())
    }

    /// An acceptor with the configuration in force now.
    pub fn acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from(self.current.borrow().clone())
    }

    /// Whether connections must present a client certificate.
    pub fn requires_client_certificates(&self) -> bool {
        self.files.client_ca_file.is_some()
    }
}

/// Reloads `tls` whenever the process receives SIGHUP (a no-op elsewhere).
pub fn reload_on_sighup(tls: Tls) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            let mut hup = match signal(SignalKind::hangup()) {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "no SIGHUP handler: TLS files are read only at startup");
                    return;
                }
            };
            while hup.recv().await.is_some() {
                match tls.reload() {
                    Ok(()) => tracing::info!("TLS certificate, key and client CA reloaded"),
                    Err(e) => {
                        tracing::error!(error = format!("{e:#}"), "TLS reload failed; still serving the previous files")
                    }
                }
            }
        }
        #[cfg(not(unix))]
        drop(tls);
    })
}

/// Builds the rustls server configuration from `files`.
pub fn server_config(files: &TlsFiles) -> anyhow::Result<Arc<ServerConfig>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let chain = certificates(&files.cert_file, "http.tls_cert_file")?;
    let key = private_key(&files.key_file)?;
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .context("TLS 1.2 and 1.3 with the ring provider")?;
    let builder = match &files.client_ca_file {
        None => builder.with_no_client_auth(),
        Some(path) => {
            let mut roots = RootCertStore::empty();
            for (i, cert) in certificates(path, "http.client_ca_file")?.into_iter().enumerate() {
                roots.add(cert).map_err(|e| {
                    anyhow::anyhow!(
                        "http.client_ca_file {}: certificate {} is not a usable CA: {e}",
                        path.display(),
                        i + 1
                    )
                })?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| anyhow::anyhow!("http.client_ca_file {}: {e}", path.display()))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder.with_single_cert(chain, key).map_err(|e| {
        anyhow::anyhow!(
            "http.tls_cert_file {} with http.tls_key_file {}: {e}",
            files.cert_file.display(),
            files.key_file.display()
        )
    })?;
    // The service speaks HTTP/1.1 only.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

fn read(path: &Path, field: &str) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| anyhow::anyhow!("{field} {}: {e}", path.display()))
}

fn certificates(path: &Path, field: &str) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let pem = read(path, field)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow::anyhow!("{field} {}: not PEM: {e}", path.display()))?;
    if certs.is_empty() {
        anyhow::bail!("{field} {}: no CERTIFICATE block in the file", path.display());
    }
    Ok(certs)
}

fn private_key(path: &Path) -> anyhow::Result<PrivateKeyDer<'static>> {
    let pem = read(path, "http.tls_key_file")?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => anyhow::anyhow!(
            "http.tls_key_file {}: no PRIVATE KEY block (PKCS#8, RSA or EC) in the file",
            path.display()
        ),
        e => anyhow::anyhow!("http.tls_key_file {}: not PEM: {e}", path.display()),
    })
}
