//! Secrets named in `airlock.toml`: each comes from exactly one environment variable or
//! one file, and is read once at start, never written into the configuration itself.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde::Deserialize;

/// Where a secret comes from: exactly one of the two.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretRef {
    /// Environment variable holding it.
    #[serde(default)]
    pub secret_env: Option<String>,
    /// File holding it.
    #[serde(default)]
    pub secret_file: Option<PathBuf>,
}

/// Checks, when the configuration is parsed, that `field` names exactly one source.
pub fn exactly_one(field: &str, env: &Option<String>, file: &Option<PathBuf>) -> anyhow::Result<()> {
    match (env, file) {
        (Some(_), None) | (None, Some(_)) => Ok(()),
        _ => anyhow::bail!("{field}: set exactly one of secret_env or secret_file"),
    }
}

/// Reads a secret's raw text from its environment variable or file.
pub fn read_secret_text(field: &str, env: Option<&str>, file: Option<&Path>) -> anyhow::Result<String> {
    let text = match (env, file) {
        (Some(var), None) => {
            std::env::var(var).map_err(|_| anyhow::anyhow!("{field}: environment variable {var} is not set"))?
        }
        (None, Some(path)) => std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("{field}: cannot read {}: {e}", path.display()))?,
        _ => anyhow::bail!("{field}: set exactly one of secret_env or secret_file"),
    };
    let text = text.strip_suffix('\n').unwrap_or(&text);
    let text = text.strip_suffix('\r').unwrap_or(text);
    if text.is_empty() {
        anyhow::bail!("{field}: secret is empty");
    }
    Ok(text.to_string())
}

/// Reads a key given as base64 of at least 32 bytes.
pub fn read_key(field: &str, env: Option<&str>, file: Option<&Path>) -> anyhow::Result<Vec<u8>> {
    let text = read_secret_text(field, env, file)?;
    decode_key(field, text.trim())
}

/// Decodes base64 (standard or URL-safe, padded or not) of at least 32 bytes.
pub fn decode_key(field: &str, text: &str) -> anyhow::Result<Vec<u8>> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    let bytes = [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD]
        .iter()
        .find_map(|e| e.decode(text).ok())
        .ok_or_else(|| anyhow::anyhow!("{field}: key is not base64"))?;
    if bytes.len() < 32 {
        anyhow::bail!("{field}: key must be at least 32 bytes (got {})", bytes.len());
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn keys_must_be_long_base64() {
        assert!(decode_key("k", "c2hvcnQ=").is_err());
        assert_eq!(decode_key("k", &base64::engine::general_purpose::STANDARD.encode([1u8; 32])).unwrap().len(), 32);
    }

    #[test]
    fn a_secret_has_exactly_one_source() {
        assert!(exactly_one("f", &Some("E".into()), &None).is_ok());
        assert!(exactly_one("f", &None, &Some("p".into())).is_ok());
        assert!(exactly_one("f", &None, &None).unwrap_err().to_string().starts_with("f: "));
        assert!(exactly_one("f", &Some("E".into()), &Some("p".into())).is_err());
    }
}
