//! `.signatures.json`: OPA's bundle signature format, verified against every file.
//!
//! `{"signatures": ["<JWS>"]}`; the JWS payload is
//! `{"files": [{"name", "hash", "algorithm": "SHA-256"}], "keyid", "scope"?}`. A bundle
//! verifies when the JWS is HS256 under a configured key named by its `kid`, and the
//! archive's files (except `.signatures.json`) are exactly the listed ones with exactly
//! the listed hashes: a changed, added or removed file is refused.

use crate::archive::{normalize, Entry};
use crate::canonical::file_hash;
use crate::{jws, BundleError};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

pub const SIGNATURES_FILE: &str = ".signatures.json";
const SHA256: &str = "SHA-256";

/// Verification keys by key id (HS256 shared secrets).
#[derive(Clone, Default)]
pub struct Keys(pub BTreeMap<String, Vec<u8>>);

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Key ids only: secrets never reach a log.
        f.debug_list().entries(self.0.keys()).finish()
    }
}

impl Keys {
    pub fn one(key_id: &str, key: &[u8]) -> Keys {
        Keys(BTreeMap::from([(key_id.to_string(), key.to_vec())]))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileHash {
    pub name: String,
    pub hash: String,
    pub algorithm: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignaturePayload {
    pub files: Vec<FileHash>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keyid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SignaturesFile {
    signatures: Vec<String>,
}

/// What a successful verification established.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub key_id: String,
    pub scope: Option<String>,
    pub files: usize,
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The payload listing every file of `entries` except the signatures file.
pub fn payload_for(entries: &[Entry], key_id: &str) -> Result<SignaturePayload, BundleError> {
    let mut files = Vec::with_capacity(entries.len());
    for e in entries.iter().filter(|e| e.name != SIGNATURES_FILE) {
        files.push(FileHash { name: e.name.clone(), hash: file_hash(&e.name, &e.bytes)?, algorithm: SHA256.into() });
    }
    Ok(SignaturePayload { files, keyid: Some(key_id.to_string()), scope: None })
}

/// The one JWS of `.signatures.json`, decoded but not verified (for `inspect`).
pub fn read_signature(entries: &[Entry]) -> Result<(jws::Parsed, SignaturePayload), BundleError> {
    let Some(file) = entries.iter().find(|e| e.name == SIGNATURES_FILE) else {
        return Err(BundleError::Unsigned(format!("no `{SIGNATURES_FILE}`")));
    };
    let parsed: SignaturesFile =
        serde_json::from_slice(&file.bytes).map_err(|e| BundleError::BadSignatureFile(format!("invalid JSON: {e}")))?;
    let token = match parsed.signatures.as_slice() {
        [one] => one,
        [] => return Err(BundleError::Unsigned("`signatures` is empty".into())),
        _ => return Err(BundleError::BadSignatureFile("more than one signature (OPA accepts exactly one)".into())),
    };
    let jws = jws::parse(token)?;
    let payload: SignaturePayload = serde_json::from_slice(&jws.payload)
        .map_err(|e| BundleError::BadSignatureFile(format!("payload is not a file list: {e}")))?;
    Ok((jws, payload))
}

/// Verify the signature with `keys` and every file against the signed list.
pub fn verify(entries: &[Entry], keys: &Keys) -> Result<Verified, BundleError> {
    let (jws, payload) = read_signature(entries)?;
    if jws.header.alg != jws::ALG {
        return Err(BundleError::WrongAlgorithm(jws.header.alg.clone()));
    }
    // The header's kid names the key; a payload keyid (OPA writes one) must agree, or
    // a token could claim one key in the header and another in the signed body.
    let Some(kid) = jws.header.kid.clone().or_else(|| payload.keyid.clone()) else {
        return Err(BundleError::BadSignatureFile("no key id (`kid`)".into()));
    };
    let Some(key) = keys.0.get(&kid) else {
        return Err(BundleError::UnknownKey(kid));
    };
    jws.verify(&kid, key)?;
    if payload.keyid.as_ref().is_some_and(|k| k != &kid) {
        return Err(BundleError::BadSignatureFile(format!("payload keyid differs from header kid `{kid}`")));
    }
    // OPA refuses a scope other than the configured one; no scope is configurable here.
    if payload.scope.as_ref().is_some_and(|s| !s.is_empty()) {
        return Err(BundleError::BadSignatureFile("signed for a scope; scoped signatures are not accepted".into()));
    }

    let mut signed: BTreeMap<String, &FileHash> = BTreeMap::new();
    for f in &payload.files {
        let name = normalize(&f.name)?;
        if !f.algorithm.eq_ignore_ascii_case(SHA256) {
            return Err(BundleError::UnsupportedHash { name, algorithm: f.algorithm.clone() });
        }
        if signed.insert(name.clone(), f).is_some() {
            return Err(BundleError::BadSignatureFile(format!("`{name}` is listed twice")));
        }
    }
    for e in entries.iter().filter(|e| e.name != SIGNATURES_FILE) {
        let Some(f) = signed.remove(&e.name) else {
            return Err(BundleError::NotSigned { name: e.name.clone() });
        };
        // Hex case is not significant; the bytes are.
        if !f.hash.eq_ignore_ascii_case(&file_hash(&e.name, &e.bytes)?) {
            return Err(BundleError::HashMismatch { name: e.name.clone() });
        }
    }
    if let Some(name) = signed.into_keys().next() {
        return Err(BundleError::Missing { name });
    }
    Ok(Verified { key_id: kid, scope: payload.scope, files: payload.files.len() })
}

/// The signature as written, unverified: algorithm, key id and the signed file list
/// (for `airlock bundle inspect`, which has no key).
pub fn describe(entries: &[Entry]) -> Result<(String, Option<String>, SignaturePayload), BundleError> {
    let (jws, payload) = read_signature(entries)?;
    let kid = jws.header.kid.clone().or_else(|| payload.keyid.clone());
    Ok((jws.header.alg, kid, payload))
}
