//! `kind = "static"`: a secret only the service holds, injected into the approved request.

use std::collections::BTreeMap;

use serde_json::json;
use sha2::{Digest, Sha256};

use super::Minted;

/// A static secret header.
#[derive(Clone)]
pub struct StaticSecret {
    secret: String,
    header: String,
}

impl StaticSecret {
    /// `header: secret`.
    pub fn new(secret: String, header: String) -> StaticSecret {
        StaticSecret { secret, header }
    }

    /// The header; the audit gets a short fingerprint of the secret, never the secret.
    pub fn mint(&self) -> Minted {
        let fingerprint = hex::encode(&Sha256::digest(self.secret.as_bytes())[..4]);
        Minted {
            headers: BTreeMap::from([(self.header.clone(), self.secret.clone())]),
            expires_at_ms: None,
            audit: json!({"kind": "static", "header": self.header, "fingerprint": fingerprint}),
        }
    }
}
