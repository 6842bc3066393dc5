//! The service's own AWS identity, which AssumeRole is called with: the standard chain
//! of the AWS SDKs, first that answers wins: environment keys, a web identity token file
//! (Kubernetes IRSA, EKS Pod Identity-style OIDC), then the instance metadata service
//! (IMDSv2). Short-lived answers are kept until five minutes before they expire.

use std::sync::Mutex;
use std::time::Duration;

use super::sts::{Keys, Sts};

/// Where the source keys came from (recorded in the audit trail).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    Environment,
    WebIdentity,
    InstanceMetadata,
}

impl Origin {
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Environment => "environment",
            Origin::WebIdentity => "web-identity",
            Origin::InstanceMetadata => "instance-metadata",
        }
    }
}

/// Reads an environment variable (the process's; a map in tests).
pub type EnvLookup = fn(&str) -> Option<String>;

fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// Refresh this long before keys expire.
const REFRESH_MARGIN_MS: i64 = 5 * 60 * 1000;

/// The credential chain.
pub struct Chain {
    env: EnvLookup,
    imds_endpoint: Option<String>,
    timeout: Duration,
    cached: Mutex<Option<(Keys, Origin)>>,
}

impl Chain {
    /// The chain over the process environment.
    pub fn new(imds_endpoint: Option<String>, timeout: Duration) -> Chain {
        Chain::with_env(process_env, imds_endpoint, timeout)
    }

    /// The chain over `env`.
    pub fn with_env(env: EnvLookup, imds_endpoint: Option<String>, timeout: Duration) -> Chain {
        Chain { env, imds_endpoint, timeout, cached: Mutex::new(None) }
    }

    /// Source keys, with where they came from. `sts` answers web identity exchanges.
    pub fn keys(&self, sts: &Sts, now_ms: i64) -> Result<(Keys, Origin), String> {
        let env = self.env;
        // Environment keys are read each time: rotating them needs no restart.
        if let (Some(id), Some(secret)) = (env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY")) {
            let keys = Keys {
                access_key_id: id,
                secret_access_key: secret,
                session_token: env("AWS_SESSION_TOKEN"),
                expires_ms: None,
            };
            return Ok((keys, Origin::Environment));
        }
        let mut cached = self.cached.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((keys, origin)) = cached.as_ref() {
            if keys.expires_ms.is_none_or(|e| e - REFRESH_MARGIN_MS > now_ms) {
                return Ok((keys.clone(), *origin));
            }
        }
        let fresh = if let (Some(file), Some(role)) = (env("AWS_WEB_IDENTITY_TOKEN_FILE"), env("AWS_ROLE_ARN")) {
            let token =
                std::fs::read_to_string(&file).map_err(|e| format!("AWS_WEB_IDENTITY_TOKEN_FILE {file}: {e}"))?;
            let session = env("AWS_ROLE_SESSION_NAME").unwrap_or_else(|| "airlock-approval-service".into());
            (sts.assume_role_with_web_identity(&role, &session, token.trim())?, Origin::WebIdentity)
        } else if env("AWS_EC2_METADATA_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
            return Err("no AWS source credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or \
                        AWS_WEB_IDENTITY_TOKEN_FILE and AWS_ROLE_ARN (instance metadata is disabled)"
                .into());
        } else {
            let endpoint = self
                .imds_endpoint
                .clone()
                .or_else(|| env("AWS_EC2_METADATA_SERVICE_ENDPOINT"))
                .unwrap_or_else(|| "http://169.254.169.254".into());
            (instance_metadata(&endpoint, self.timeout).map_err(|e| {
                format!("no AWS source credentials: no environment keys, no web identity token file, and instance metadata: {e}")
            })?, Origin::InstanceMetadata)
        };
        *cached = Some(fresh.clone());
        Ok(fresh)
    }
}

/// IMDSv2: a session token (PUT), the instance role's name, then its keys.
fn instance_metadata(endpoint: &str, timeout: Duration) -> Result<Keys, String> {
    let base = endpoint.trim_end_matches('/');
    let agent: ureq::Agent =
        ureq::Agent::config_builder().timeout_global(Some(timeout)).http_status_as_error(false).build().into();
    let read = |resp: Result<ureq::http::Response<ureq::Body>, ureq::Error>, what: &str| -> Result<String, String> {
        let mut resp = resp.map_err(|e| format!("{base} ({what}): {e}"))?;
        let status = resp.status().as_u16();
        if status != 200 {
            return Err(format!("{base} ({what}) answered {status}"));
        }
        resp.body_mut().read_to_string().map_err(|e| format!("{base} ({what}): {e}"))
    };
    let token = read(
        agent
            .put(format!("{base}/latest/api/token"))
            .header("x-aws-ec2-metadata-token-ttl-seconds", "300")
            .send_empty(),
        "token",
    )?;
    let path = format!("{base}/latest/meta-data/iam/security-credentials/");
    let role = read(agent.get(&path).header("x-aws-ec2-metadata-token", token.trim()).call(), "role")?;
    let role = role.lines().next().unwrap_or_default().trim().to_string();
    if role.is_empty() || role.contains('/') {
        return Err(format!("{base}: no instance role"));
    }
    let doc = read(agent.get(format!("{path}{role}")).header("x-aws-ec2-metadata-token", token.trim()).call(), "keys")?;
    let v: serde_json::Value = serde_json::from_str(&doc).map_err(|e| format!("{base}: keys are not JSON: {e}"))?;
    let field = |k: &str| v.get(k).and_then(serde_json::Value::as_str).map(str::to_string);
    let (Some(id), Some(secret), Some(token), Some(exp)) =
        (field("AccessKeyId"), field("SecretAccessKey"), field("Token"), field("Expiration"))
    else {
        return Err(format!("{base}: the keys document lacks AccessKeyId, SecretAccessKey, Token or Expiration"));
    };
    let expires =
        humantime::parse_rfc3339_weak(exp.trim_end_matches('Z')).map_err(|e| format!("Expiration {exp:?}: {e}"))?;
    let expires_ms = expires.duration_since(std::time::UNIX_EPOCH).map(crate::time::duration_ms).unwrap_or(0);
    Ok(Keys { access_key_id: id, secret_access_key: secret, session_token: Some(token), expires_ms: Some(expires_ms) })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::TcpListener;

    fn sts() -> Sts {
        Sts { endpoint: "http://127.0.0.1:9/".into(), region: "us-east-1".into(), timeout: Duration::from_secs(1) }
    }

    #[test]
    fn environment_keys_come_first() {
        fn env(name: &str) -> Option<String> {
            match name {
                "AWS_ACCESS_KEY_ID" => Some("AKIAENV".into()),
                "AWS_SECRET_ACCESS_KEY" => Some("secret".into()),
                _ => None,
            }
        }
        let (keys, origin) = Chain::with_env(env, None, Duration::from_secs(1)).keys(&sts(), 0).unwrap();
        assert_eq!((keys.access_key_id.as_str(), keys.session_token, origin), ("AKIAENV", None, Origin::Environment));
    }

    #[test]
    fn nothing_answers_fails_closed_saying_what_was_tried() {
        fn env(name: &str) -> Option<String> {
            (name == "AWS_EC2_METADATA_DISABLED").then(|| "true".into())
        }
        let err = Chain::with_env(env, None, Duration::from_secs(1)).keys(&sts(), 0).unwrap_err();
        assert!(err.contains("AWS_ACCESS_KEY_ID") && err.contains("AWS_WEB_IDENTITY_TOKEN_FILE"), "{err}");
        fn none(_: &str) -> Option<String> {
            None
        }
        let chain = Chain::with_env(none, Some("http://127.0.0.1:9".into()), Duration::from_secs(1));
        assert!(chain.keys(&sts(), 0).unwrap_err().contains("instance metadata"));
    }

    /// A local IMDSv2: answers the token PUT, the role listing and the keys, and
    /// refuses a GET without the session token, as EC2 does.
    fn imds() -> (String, std::thread::JoinHandle<usize>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let handle = std::thread::spawn(move || {
            let mut served = 0;
            for stream in listener.incoming().take(3) {
                let mut stream = stream.unwrap();
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                let mut token = false;
                loop {
                    let mut h = String::new();
                    reader.read_line(&mut h).unwrap();
                    if h.trim().is_empty() {
                        break;
                    }
                    token |= h.to_ascii_lowercase().starts_with("x-aws-ec2-metadata-token: imds-token");
                }
                let mut _rest = Vec::new();
                let _ = reader.take(0).read_to_end(&mut _rest);
                let body = match (line.split_whitespace().nth(1).unwrap_or(""), token) {
                    ("/latest/api/token", _) => "imds-token".to_string(),
                    ("/latest/meta-data/iam/security-credentials/", true) => "node-role\n".to_string(),
                    ("/latest/meta-data/iam/security-credentials/node-role", true) => {
                        r#"{"Code":"Success","AccessKeyId":"ASIAIMDS","SecretAccessKey":"s","Token":"t","Expiration":"2026-12-04T21:15:00Z"}"#.to_string()
                    }
                    _ => String::new(),
                };
                let status = if body.is_empty() { "401 Unauthorized" } else { "200 OK" };
                served += 1;
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
            served
        });
        (url, handle)
    }

    /// A local STS answering one AssumeRoleWithWebIdentity; hands back the form it got.
    fn sts_once() -> (String, std::thread::JoinHandle<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        let handle = std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut length = 0usize;
            loop {
                let mut h = String::new();
                reader.read_line(&mut h).unwrap();
                if h.trim().is_empty() {
                    break;
                }
                if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap();
                }
            }
            let mut form = vec![0u8; length];
            reader.read_exact(&mut form).unwrap();
            let body = "<AssumeRoleWithWebIdentityResponse><AssumeRoleWithWebIdentityResult><Credentials>\
                <AccessKeyId>ASIAWEB</AccessKeyId><SecretAccessKey>w</SecretAccessKey><SessionToken>t</SessionToken>\
                <Expiration>2026-12-04T21:15:00Z</Expiration></Credentials></AssumeRoleWithWebIdentityResult>\
                </AssumeRoleWithWebIdentityResponse>";
            let _ =
                write!(stream, "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}", body.len());
            String::from_utf8(form).unwrap()
        });
        (url, handle)
    }

    #[test]
    fn a_web_identity_token_file_is_exchanged_with_sts() {
        let dir = tempfile::tempdir().unwrap();
        let token = dir.path().join("token");
        std::fs::write(&token, "eyJ.irsa.token\n").unwrap();
        // fn pointers cannot capture: the path goes through a process-wide cell.
        static TOKEN_FILE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
        TOKEN_FILE.set(token.display().to_string()).unwrap();
        fn env(name: &str) -> Option<String> {
            match name {
                "AWS_WEB_IDENTITY_TOKEN_FILE" => TOKEN_FILE.get().cloned(),
                "AWS_ROLE_ARN" => Some("arn:aws:iam::123456789012:role/airlock-service".into()),
                _ => None,
            }
        }
        let (url, server) = sts_once();
        let sts = Sts { endpoint: url, region: "us-east-1".into(), timeout: Duration::from_secs(2) };
        let (keys, origin) = Chain::with_env(env, None, Duration::from_secs(2)).keys(&sts, 1_796_418_000_000).unwrap();
        assert_eq!((keys.access_key_id.as_str(), origin), ("ASIAWEB", Origin::WebIdentity));
        let form: std::collections::BTreeMap<String, String> =
            form_urlencoded::parse(server.join().unwrap().as_bytes()).into_owned().collect();
        assert_eq!(form["Action"], "AssumeRoleWithWebIdentity");
        assert_eq!(form["RoleArn"], "arn:aws:iam::123456789012:role/airlock-service");
        assert_eq!(form["WebIdentityToken"], "eyJ.irsa.token", "the token file's text, trimmed");
        assert_eq!(form["RoleSessionName"], "airlock-approval-service");
    }

    #[test]
    fn instance_metadata_is_asked_with_a_session_token_and_cached() {
        fn none(_: &str) -> Option<String> {
            None
        }
        let (url, server) = imds();
        let chain = Chain::with_env(none, Some(url), Duration::from_secs(2));
        let now = 1_796_418_000_000;
        let (keys, origin) = chain.keys(&sts(), now).unwrap();
        assert_eq!((keys.access_key_id.as_str(), origin), ("ASIAIMDS", Origin::InstanceMetadata));
        assert_eq!(keys.expires_ms, Some(1_796_418_900_000));
        assert_eq!(server.join().unwrap(), 3);
        // Served from the cache: the server is gone.
        assert_eq!(chain.keys(&sts(), now).unwrap().0.access_key_id, "ASIAIMDS");
        // Within five minutes of expiry it asks again (and, with nobody there, fails).
        assert!(chain.keys(&sts(), 1_796_418_900_000 - 60_000).is_err());
    }
}
