//! HTTPS on the listener, over real TCP with a throw-away PKI (rcgen): a valid signed
//! gateway call succeeds; plaintext, a client that trusts another CA, and (when a client
//! CA is configured) a client without a certificate or with one from another CA are
//! refused; bad files are startup errors that name the file; SIGHUP's reload swaps the
//! certificate for new connections and keeps the old one when the new files are bad.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use airlock_approval_svc::config::Config;
use airlock_approval_svc::listener::{serve_with, HttpLimits};
use airlock_approval_svc::tls::{Tls, TlsFiles};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use sha2::{Digest, Sha256};
use support::*;

const HOST: &str = "approval.airlock.test";

const LIMITS: HttpLimits = HttpLimits {
    header_read_timeout: Duration::from_secs(2),
    body_read_timeout: Duration::from_secs(2),
    max_connections: 16,
};

struct Ca {
    issuer: Issuer<'static, KeyPair>,
    pem: String,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        Ca { pem: cert.pem(), issuer: Issuer::new(params, key) }
    }

    /// A leaf certificate and key (PEM) for `name`, for servers or clients.
    fn leaf(&self, name: &str, usage: ExtendedKeyUsagePurpose) -> (String, String) {
        let mut params = CertificateParams::new(vec![name.to_string()]).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.use_authority_key_identifier_extension = true;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![usage];
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    fn server(&self) -> (String, String) {
        self.leaf(HOST, ExtendedKeyUsagePurpose::ServerAuth)
    }

    fn client(&self, name: &str) -> (String, String) {
        self.leaf(name, ExtendedKeyUsagePurpose::ClientAuth)
    }
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// Server files for `ca`'s server certificate, with `client_ca` as the client CA.
fn files(dir: &Path, ca: &Ca, client_ca: Option<&Ca>) -> TlsFiles {
    let (cert, key) = ca.server();
    TlsFiles {
        cert_file: write(dir, "server.pem", &cert),
        key_file: write(dir, "server.key", &key),
        client_ca_file: client_ca.map(|c| write(dir, "client-ca.pem", &c.pem)),
    }
}

async fn listening(s: &Service, tls: Tls) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(serve_with(listener, s.router.clone(), LIMITS, Some(tls), std::future::pending()));
    addr
}

/// A rustls client trusting `trust`, presenting `cert` (PEM cert, PEM key) if given.
fn client(
    trust: &Ca,
    cert: Option<&(String, String)>,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from_pem_slice(trust.pem.as_bytes()).unwrap()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(roots);
    let mut config = match cert {
        None => builder.with_no_client_auth(),
        Some((cert, key)) => builder
            .with_client_auth_cert(
                vec![CertificateDer::from_pem_slice(cert.as_bytes()).unwrap()],
                PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap(),
            )
            .unwrap(),
    };
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Arc::new(config)
}

const BOTH: &[&rustls::SupportedProtocolVersion] = &[&rustls::version::TLS13, &rustls::version::TLS12];

/// Sends `request` over TLS; the whole answer, or why there is none.
fn exchange(
    addr: SocketAddr,
    config: Arc<rustls::ClientConfig>,
    request: &[u8],
) -> Result<(String, Option<Vec<u8>>), String> {
    let tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let conn = rustls::ClientConnection::new(config, ServerName::try_from(HOST).unwrap()).unwrap();
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    tls.write_all(request).map_err(|e| e.to_string())?;
    tls.flush().map_err(|e| e.to_string())?;
    let mut got = Vec::new();
    let read = tls.read_to_end(&mut got);
    let alpn = tls.conn.alpn_protocol().map(<[u8]>::to_vec);
    match read {
        Err(e) if got.is_empty() => Err(e.to_string()),
        _ => Ok((String::from_utf8_lossy(&got).into_owned(), alpn)),
    }
}

const HEALTHZ: &[u8] = b"GET /healthz HTTP/1.1\r\nhost: approval.airlock.test\r\nconnection: close\r\n\r\n";

/// A signed `POST /v1/gateway/approvals`, as the filter sends it.
fn signed_create() -> Vec<u8> {
    let body = create_body(&digest("tls"), 0, Some("export-api"), 1).to_string();
    let path = "/v1/gateway/approvals";
    let ts = now_secs();
    let msg = format!("airlock-v1-request\n{ts}\nPOST\n{path}\n{}", hex::encode(Sha256::digest(body.as_bytes())));
    format!(
        "POST {path} HTTP/1.1\r\nhost: {HOST}\r\nconnection: close\r\ncontent-type: application/json\r\n\
         x-airlock-key-id: k2\r\nx-airlock-timestamp: {ts}\r\nx-airlock-signature: {}\r\n\
         content-length: {}\r\n\r\n{body}",
        hmac_hex(&GATEWAY_KEY, &msg),
        body.len()
    )
    .into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_gateway_call_with_a_client_certificate_succeeds() {
    let s = service();
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("airlock test CA");
    let gateway_cert = ca.client("gateway.airlock.test");
    let addr = listening(&s, Tls::load(files(dir.path(), &ca, Some(&ca))).unwrap()).await;
    let config = client(&ca, Some(&gateway_cert), BOTH);
    let (answer, alpn) =
        tokio::task::spawn_blocking(move || exchange(addr, config, &signed_create())).await.unwrap().unwrap();
    assert!(answer.starts_with("HTTP/1.1 201") || answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("apr_"), "{answer}");
    assert!(
        answer.to_ascii_lowercase().contains("x-airlock-signature: v1="),
        "answers are signed over TLS too: {answer}"
    );
    assert_eq!(alpn.as_deref(), Some(&b"http/1.1"[..]), "HTTP/1.1 is the only protocol offered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_1_2_is_served_and_no_client_certificate_is_needed_without_a_client_ca() {
    let s = service();
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("airlock test CA");
    let addr = listening(&s, Tls::load(files(dir.path(), &ca, None)).unwrap()).await;
    for versions in [BOTH, &[&rustls::version::TLS12][..]] {
        let config = client(&ca, None, versions);
        let (answer, _) = tokio::task::spawn_blocking(move || exchange(addr, config, HEALTHZ)).await.unwrap().unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plaintext_http_is_refused() {
    let s = service();
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("airlock test CA");
    let addr = listening(&s, Tls::load(files(dir.path(), &ca, None)).unwrap()).await;
    let answer = tokio::task::spawn_blocking(move || {
        let mut c = TcpStream::connect(addr).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        c.write_all(HEALTHZ).unwrap();
        let mut got = Vec::new();
        let _ = c.read_to_end(&mut got);
        String::from_utf8_lossy(&got).into_owned()
    })
    .await
    .unwrap();
    assert!(!answer.contains("HTTP/1.1"), "a plaintext request got an HTTP answer: {answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_trusts_another_ca_refuses_the_service() {
    let s = service();
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("airlock test CA");
    let other = Ca::new("some other CA");
    let addr = listening(&s, Tls::load(files(dir.path(), &ca, None)).unwrap()).await;
    let config = client(&other, None, BOTH);
    let err = tokio::task::spawn_blocking(move || exchange(addr, config, HEALTHZ)).await.unwrap().unwrap_err();
    assert!(err.contains("UnknownIssuer") || err.contains("invalid peer certificate"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_client_ca_a_client_certificate_is_required() {
    let s = service();
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("airlock test CA");
    let other = Ca::new("some other CA");
    let stranger = other.client("gateway.airlock.test");
    let addr = listening(&s, Tls::load(files(dir.path(), &ca, Some(&ca))).unwrap()).await;
    for (what, config) in [
        ("no certificate", client(&ca, None, BOTH)),
        ("a certificate from another CA", client(&ca, Some(&stranger), BOTH)),
    ] {
        let outcome = tokio::task::spawn_blocking(move || exchange(addr, config, &signed_create())).await.unwrap();
        assert!(outcome.is_err(), "a client with {what} was served: {outcome:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_applies_to_new_connections_and_a_bad_reload_keeps_the_old_files() {
    let s = service();
    let dir = tempfile::tempdir().unwrap();
    let first = Ca::new("first CA");
    let second = Ca::new("second CA");
    let files = files(dir.path(), &first, None);
    let tls = Tls::load(files.clone()).unwrap();
    let addr = listening(&s, tls.clone()).await;
    let healthz = |trust: &Ca| {
        let config = client(trust, None, BOTH);
        async move { tokio::task::spawn_blocking(move || exchange(addr, config, HEALTHZ)).await.unwrap() }
    };
    assert!(healthz(&first).await.is_ok());

    std::fs::write(&files.cert_file, "not a certificate").unwrap();
    let err = format!("{:#}", tls.reload().unwrap_err());
    assert!(err.contains("http.tls_cert_file") && err.contains("server.pem"), "{err}");
    assert!(healthz(&first).await.is_ok(), "a failed reload keeps serving the old certificate");

    let (cert, key) = second.server();
    std::fs::write(&files.cert_file, cert).unwrap();
    std::fs::write(&files.key_file, key).unwrap();
    tls.reload().unwrap();
    assert!(healthz(&second).await.is_ok(), "new connections get the new certificate");
    assert!(healthz(&first).await.is_err());
}

#[test]
fn bad_tls_files_are_startup_errors_that_name_the_file_and_the_fault() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("airlock test CA");
    let good = files(dir.path(), &ca, Some(&ca));
    let (_, other_key) = ca.server();
    let cases: Vec<(&str, TlsFiles, &[&str])> = vec![
        (
            "missing certificate",
            TlsFiles { cert_file: dir.path().join("absent.pem"), ..good.clone() },
            &["http.tls_cert_file", "absent.pem", "No such file"],
        ),
        (
            "no certificate in the file",
            TlsFiles { cert_file: write(dir.path(), "empty.pem", "hello\n"), ..good.clone() },
            &["http.tls_cert_file", "empty.pem", "no CERTIFICATE"],
        ),
        (
            "a key where the certificate belongs",
            TlsFiles { cert_file: good.key_file.clone(), ..good.clone() },
            &["http.tls_cert_file", "server.key", "no CERTIFICATE"],
        ),
        (
            "no key in the key file",
            TlsFiles { key_file: good.cert_file.clone(), ..good.clone() },
            &["http.tls_key_file", "server.pem", "no PRIVATE KEY"],
        ),
        (
            "a key that is not the certificate's",
            TlsFiles { key_file: write(dir.path(), "other.key", &other_key), ..good.clone() },
            &["http.tls_cert_file", "http.tls_key_file", "other.key"],
        ),
        (
            "an empty client CA file",
            TlsFiles { client_ca_file: Some(write(dir.path(), "no-ca.pem", "")), ..good.clone() },
            &["http.client_ca_file", "no-ca.pem", "no CERTIFICATE"],
        ),
        (
            "a broken PEM block",
            TlsFiles {
                client_ca_file: Some(write(dir.path(), "cut.pem", "-----BEGIN CERTIFICATE-----\nMIIB\n")),
                ..good.clone()
            },
            &["http.client_ca_file", "cut.pem", "not PEM"],
        ),
    ];
    for (what, files, want) in cases {
        let err = format!("{:#}", Tls::load(files).unwrap_err());
        for w in want {
            assert!(err.contains(w), "{what}: {err:?} does not mention {w:?}");
        }
    }
    assert!(Tls::load(good).is_ok());
}

#[test]
fn tls_settings_come_as_a_pair_and_client_certificates_need_tls() {
    let gateway = "[gateway]\nkeys = [{ id = \"k2\", secret_env = \"UNUSED\" }]\n";
    let parse = |http: &str| Config::from_toml(&format!("{gateway}\n[http]\n{http}"), |_| None);
    let err = parse("tls_cert_file = \"/c.pem\"").unwrap_err().to_string();
    assert!(err.contains("tls_cert_file and tls_key_file"), "{err}");
    let err = parse("client_ca_file = \"/ca.pem\"").unwrap_err().to_string();
    assert!(err.contains("http.client_ca_file"), "{err}");
    let config = parse("tls_cert_file = \"/c.pem\"\ntls_key_file = \"/k.pem\"\nclient_ca_file = \"/ca.pem\"").unwrap();
    let files = config.http.tls_files().unwrap();
    assert_eq!(files.client_ca_file.as_deref(), Some(Path::new("/ca.pem")));
    let env = |name: &str| (name == "AIRLOCK_HTTP_TLS_KEY_FILE").then(|| "/env.key".to_string());
    let config =
        Config::from_toml(&format!("{gateway}\n[http]\ntls_cert_file = \"/c.pem\"\ntls_key_file = \"/k.pem\""), env)
            .unwrap();
    assert_eq!(config.http.tls_files().unwrap().key_file, Path::new("/env.key"));
}
