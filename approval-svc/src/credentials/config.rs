//! `[credentials.<name>]` in airlock.toml: one profile per name, checked when the file is
//! parsed (its secret is read by [`super::Credentials::load`]).

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::secrets::exactly_one;

/// Longest credential lifetime a profile may ask for.
pub const MAX_CREDENTIAL_TTL: Duration = Duration::from_secs(300);

/// `[credentials.<name>]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(tag = "kind", deny_unknown_fields)]
pub enum CredentialConfig {
    /// A short-lived JWT signed with HS256.
    #[serde(rename = "jwt-hs256")]
    JwtHs256 {
        /// Environment variable with base64 of ≥ 32 bytes.
        #[serde(default)]
        secret_env: Option<String>,
        /// File with base64 of ≥ 32 bytes.
        #[serde(default)]
        secret_file: Option<PathBuf>,
        /// Lifetime (at most 5 minutes).
        #[serde(default = "default_ttl", with = "crate::time::duration_text")]
        ttl: Duration,
        /// Header to set (value `Bearer <jwt>`).
        #[serde(default = "default_header")]
        header: String,
        /// `iss` claim.
        #[serde(default = "default_issuer")]
        issuer: String,
    },
    /// A secret only the service holds.
    #[serde(rename = "static")]
    Static {
        /// Environment variable with the header value.
        #[serde(default)]
        secret_env: Option<String>,
        /// File with the header value (one trailing newline trimmed).
        #[serde(default)]
        secret_file: Option<PathBuf>,
        /// Header to set.
        #[serde(default = "default_header")]
        header: String,
    },
    /// AWS: an STS session narrowed to the approved action signs the approved request.
    #[serde(rename = "aws-sigv4")]
    AwsSigV4(super::aws::AwsSigV4Config),
    /// Hand-off to an external minter.
    #[serde(rename = "http")]
    Http {
        /// Minter URL.
        url: String,
        /// Request timeout.
        #[serde(default = "default_minter_timeout", with = "crate::time::duration_text")]
        timeout: Duration,
    },
}

impl CredentialConfig {
    /// Checks profile `name`: one secret source, a lifetime within bounds, a header the
    /// gateway will inject, an http(s) minter.
    pub fn validate(&self, name: &str) -> anyhow::Result<()> {
        match self {
            CredentialConfig::JwtHs256 { secret_env, secret_file, ttl, header, .. } => {
                exactly_one(&format!("credentials.{name}"), secret_env, secret_file)?;
                if ttl.is_zero() || *ttl > MAX_CREDENTIAL_TTL {
                    anyhow::bail!("credentials.{name}.ttl: must be more than 0 and at most 5m");
                }
                valid_header(name, header)
            }
            CredentialConfig::Static { secret_env, secret_file, header } => {
                exactly_one(&format!("credentials.{name}"), secret_env, secret_file)?;
                valid_header(name, header)
            }
            CredentialConfig::AwsSigV4(aws) => aws.validate(name),
            CredentialConfig::Http { url, .. } => {
                if !(url.starts_with("http://") || url.starts_with("https://")) {
                    anyhow::bail!("credentials.{name}.url: must be an http(s) URL");
                }
                Ok(())
            }
        }
    }
}

fn valid_header(name: &str, header: &str) -> anyhow::Result<()> {
    if super::valid_header_name(header) {
        Ok(())
    } else {
        anyhow::bail!("credentials.{name}.header: {header:?} is not a lower-case HTTP header name")
    }
}

fn default_ttl() -> Duration {
    MAX_CREDENTIAL_TTL
}

fn default_header() -> String {
    "authorization".into()
}

fn default_issuer() -> String {
    "airlock".into()
}

fn default_minter_timeout() -> Duration {
    Duration::from_secs(2)
}
