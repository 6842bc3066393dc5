//! A throw-away test CA (rcgen), server and client certificates, and a TLS client: for
//! the HTTPS upstream and the approval service over (mutual) TLS.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};

use crate::e2e::client::{parse_response, Request, Response};

/// A certificate authority that exists only for one test run.
pub struct TestCa {
    issuer: Issuer<'static, KeyPair>,
    cert_pem: String,
}

impl TestCa {
    /// A new CA named `name`.
    pub fn new(name: &str) -> anyhow::Result<TestCa> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.distinguished_name.push(DnType::OrganizationName, "Airlock e2e tests");
        params.key_usages =
            vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
        let key = KeyPair::generate()?;
        let cert = params.self_signed(&key)?;
        Ok(TestCa { cert_pem: cert.pem(), issuer: Issuer::new(params, key) })
    }

    /// The CA certificate, PEM.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// Writes the CA certificate to `dir/file_name` (for Envoy's `trusted_ca`).
    pub fn write_pem(&self, dir: &Path, file_name: &str) -> anyhow::Result<PathBuf> {
        let path = dir.join(file_name);
        std::fs::write(&path, &self.cert_pem).with_context(|| format!("writing {}", path.display()))?;
        Ok(path)
    }

    /// A server certificate for `dns_names`, signed by this CA.
    pub fn server_cert(&self, dns_names: &[&str]) -> anyhow::Result<ServerCert> {
        self.leaf(dns_names, ExtendedKeyUsagePurpose::ServerAuth)
    }

    /// A client certificate for `name` (a gateway presenting itself to the approval
    /// service), signed by this CA.
    pub fn client_cert(&self, name: &str) -> anyhow::Result<ServerCert> {
        self.leaf(&[name], ExtendedKeyUsagePurpose::ClientAuth)
    }

    /// A leaf for `names` (the first is also the common name) with one extended usage.
    fn leaf(&self, names: &[&str], usage: ExtendedKeyUsagePurpose) -> anyhow::Result<ServerCert> {
        let mut params = CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())?;
        if let Some(first) = names.first() {
            params.distinguished_name.push(DnType::CommonName, *first);
        }
        params.use_authority_key_identifier_extension = true;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![usage];
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(ServerCert {
            cert_der: cert.der().clone(),
            key_der: key.serialize_der(),
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

/// A leaf certificate (server or client) and its private key.
pub struct ServerCert {
    cert_der: CertificateDer<'static>,
    key_der: Vec<u8>,
    cert_pem: String,
    key_pem: String,
}

impl ServerCert {
    /// Writes the certificate and its key as PEM to `dir/<stem>.pem` and `dir/<stem>.key`
    /// (for Envoy's `tls_certificates`, or the service's `[http]` TLS files).
    pub fn write_pem(&self, dir: &Path, stem: &str) -> anyhow::Result<(PathBuf, PathBuf)> {
        let cert = dir.join(format!("{stem}.pem"));
        let key = dir.join(format!("{stem}.key"));
        std::fs::write(&cert, &self.cert_pem).with_context(|| format!("writing {}", cert.display()))?;
        std::fs::write(&key, &self.key_pem).with_context(|| format!("writing {}", key.display()))?;
        Ok((cert, key))
    }

    /// A rustls server configuration presenting this certificate (HTTP/1.1 only).
    pub fn rustls_config(&self) -> anyhow::Result<Arc<rustls::ServerConfig>> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key_der.clone()));
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(vec![self.cert_der.clone()], key)?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}

/// A rustls client trusting `ca` (TLS 1.2+), presenting `client` when given.
pub fn client_config(ca: &TestCa, client: Option<&ServerCert>) -> anyhow::Result<Arc<rustls::ClientConfig>> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_slice_iter(ca.cert_pem().as_bytes()) {
        roots.add(cert?)?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots);
    let config = match client {
        None => builder.with_no_client_auth(),
        Some(c) => builder.with_client_auth_cert(
            vec![c.cert_der.clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(c.key_der.clone())),
        )?,
    };
    Ok(Arc::new(config))
}

/// Sends `request` over TLS to `addr` (verifying the server as `server_name`) and reads
/// the whole response (the request says `connection: close`).
pub fn send_tls(
    addr: SocketAddr,
    server_name: &str,
    config: Arc<rustls::ClientConfig>,
    request: &Request,
    timeout: Duration,
) -> anyhow::Result<Response> {
    let tcp = TcpStream::connect_timeout(&addr, timeout).with_context(|| format!("connecting to {addr}"))?;
    tcp.set_read_timeout(Some(timeout))?;
    tcp.set_write_timeout(Some(timeout))?;
    let name = ServerName::try_from(server_name.to_string())?;
    let conn = rustls::ClientConnection::new(config, name)?;
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    tls.write_all(&request.to_bytes()).with_context(|| format!("TLS to {addr} ({server_name})"))?;
    let mut buf = Vec::new();
    match tls.read_to_end(&mut buf) {
        Ok(_) => {}
        // A peer that closes without close_notify after a whole answer still answered.
        Err(e) if !buf.is_empty() && e.kind() == std::io::ErrorKind::UnexpectedEof => {}
        Err(e) => return Err(anyhow::anyhow!(e).context(format!("TLS to {addr} ({server_name})"))),
    }
    parse_response(&buf).with_context(|| format!("parsing the response from {addr}"))
}
