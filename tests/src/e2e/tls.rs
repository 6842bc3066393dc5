//! A throw-away test CA (rcgen) and server certificates for the HTTPS upstream.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

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
        let names: Vec<String> = dns_names.iter().map(|n| n.to_string()).collect();
        let mut params = CertificateParams::new(names)?;
        if let Some(first) = dns_names.first() {
            params.distinguished_name.push(DnType::CommonName, *first);
        }
        params.use_authority_key_identifier_extension = true;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(ServerCert { cert_der: cert.der().clone(), key_der: key.serialize_der() })
    }
}

/// A server certificate and its private key.
pub struct ServerCert {
    cert_der: CertificateDer<'static>,
    key_der: Vec<u8>,
}

impl ServerCert {
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
