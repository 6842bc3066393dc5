//! Airlock policy bundles: OPA-compatible signed `.tar.gz` archives.
//!
//! One crate for both readers — the gateway filter (wasm32-wasip1, so no file system,
//! pure-Rust gzip, nothing heavy) and the `airlock bundle` CLI — so the two can never
//! disagree about what a valid bundle is. See `docs/bundles.md`.
//!
//! A bundle holds `.manifest` (revision, roots, optional `airlock` settings), `*.rego`
//! modules, `data.json` documents mounted at their directory's path, and
//! `.signatures.json`: one HS256 JWS (with a key id) whose payload lists every other
//! file with its SHA-256. [`load`] is the one entry point readers use: it unpacks with
//! bounds, verifies the signature and every hash, then parses — in that order, so
//! nothing unverified is ever interpreted.

mod archive;
mod build;
mod canonical;
mod content;
mod error;
mod jws;
mod manifest;
mod signatures;

pub use archive::{read_archive, write_archive, Entry, Limits};
pub use build::{build, sign};
#[cfg(feature = "fs")]
pub use build::{build_dir, files_from_dir};
pub use canonical::{file_hash, is_structured};
pub use content::{package_of, Bundle, DataFile, DataFormat, YamlToJson};
pub use error::BundleError;
pub use manifest::{AirlockSettings, Manifest};
pub use signatures::{describe, sha256_hex, verify, FileHash, Keys, SignaturePayload, Verified, SIGNATURES_FILE};

/// The manifest's file name (OPA's).
pub const MANIFEST_FILE: &str = ".manifest";

/// Unpack within `limits`, verify the signature with `keys`, then parse. Anything
/// unsigned, altered, unsafe or malformed is an error naming the file.
pub fn load(bytes: &[u8], keys: &Keys, limits: &Limits) -> Result<(Bundle, Verified), BundleError> {
    let entries = read_archive(bytes, limits)?;
    let verified = verify(&entries, keys)?;
    let bundle = Bundle::parse(entries)?;
    Ok((bundle, verified))
}

#[cfg(test)]
mod tests;
