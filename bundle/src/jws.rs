//! Compact JWS with HS256 only, as OPA signs bundles with a shared secret.
//!
//! Hand-written because it is twenty lines over hmac/sha2/base64, which the filter
//! already carries; a JOSE crate would pull RSA/EC code into a wasm module that must
//! stay small. The algorithm is fixed: `none`, `RS256` and everything else are refused
//! before any key is looked at.

use crate::BundleError;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

pub const ALG: &str = "HS256";

#[derive(Debug, Serialize, Deserialize)]
pub struct Header {
    pub alg: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub typ: Option<String>,
}

fn mac(key: &[u8], signing_input: &str) -> Result<Hmac<Sha256>, BundleError> {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(key).map_err(|e| BundleError::BadSignatureFile(format!("unusable key: {e}")))?;
    mac.update(signing_input.as_bytes());
    Ok(mac)
}

/// `header.payload.signature`, HS256 with `kid` in the header.
pub fn sign(payload: &[u8], key_id: &str, key: &[u8]) -> Result<String, BundleError> {
    let header = Header { alg: ALG.into(), kid: Some(key_id.into()), typ: Some("JWT".into()) };
    let header = serde_json::to_vec(&header).map_err(|e| BundleError::BadSignatureFile(e.to_string()))?;
    let input = format!("{}.{}", URL_SAFE_NO_PAD.encode(header), URL_SAFE_NO_PAD.encode(payload));
    let sig = mac(key, &input)?.finalize().into_bytes();
    Ok(format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig)))
}

/// A token split and decoded, not yet verified.
pub struct Parsed {
    pub header: Header,
    pub payload: Vec<u8>,
    signing_input: String,
    signature: Vec<u8>,
}

pub fn parse(token: &str) -> Result<Parsed, BundleError> {
    let bad = |why: &str| BundleError::BadSignatureFile(format!("signature is not a compact JWS: {why}"));
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(bad("expected three dot-separated parts"));
    };
    let header_bytes = URL_SAFE_NO_PAD.decode(h).map_err(|_| bad("header is not base64url"))?;
    let header: Header = serde_json::from_slice(&header_bytes).map_err(|e| bad(&format!("header: {e}")))?;
    let payload = URL_SAFE_NO_PAD.decode(p).map_err(|_| bad("payload is not base64url"))?;
    let signature = URL_SAFE_NO_PAD.decode(s).map_err(|_| bad("signature is not base64url"))?;
    Ok(Parsed { header, payload, signing_input: format!("{h}.{p}"), signature })
}

impl Parsed {
    /// Constant-time HMAC check (hmac's `verify_slice`).
    pub fn verify(&self, key_id: &str, key: &[u8]) -> Result<(), BundleError> {
        if self.header.alg != ALG {
            return Err(BundleError::WrongAlgorithm(self.header.alg.clone()));
        }
        mac(key, &self.signing_input)?
            .verify_slice(&self.signature)
            .map_err(|_| BundleError::BadSignature { key_id: key_id.to_string() })
    }
}
