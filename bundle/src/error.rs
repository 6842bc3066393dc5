//! Why a bundle was refused, phrased for an operator reading a log line: each variant
//! names the file (when there is one) and the problem.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BundleError {
    /// Not gzip, or a corrupt gzip stream.
    Gzip(String),
    /// Not a tar archive, or a corrupt one.
    Tar(String),
    /// A name that could escape the bundle or is ambiguous: `..`, `\`, NUL, `//`.
    UnsafePath { name: String, why: &'static str },
    /// Two entries with the same (normalized) name.
    Duplicate(String),
    /// Links, devices and the like: a bundle holds regular files and directories only.
    NotAFile { name: String, kind: String },
    /// Over the file count or uncompressed size bound (zip-bomb guard).
    TooLarge(String),
    /// No `.signatures.json`, or it does not hold exactly one signature.
    Unsigned(String),
    /// `.signatures.json` or the JWS inside it is not well-formed.
    BadSignatureFile(String),
    /// The JWS uses an algorithm other than HS256 (e.g. `none`, `RS256`).
    WrongAlgorithm(String),
    /// The key id is not one of the configured keys.
    UnknownKey(String),
    /// The HMAC does not match: wrong key, or the signed payload was altered.
    BadSignature { key_id: String },
    /// A file's SHA-256 differs from the signed one.
    HashMismatch { name: String },
    /// A file the signature does not list (added after signing).
    NotSigned { name: String },
    /// A file the signature lists that the archive does not hold.
    Missing { name: String },
    /// A listed hash algorithm other than SHA-256.
    UnsupportedHash { name: String, algorithm: String },
    /// `.manifest` is not valid JSON of the expected shape.
    BadManifest(String),
    /// A module that is not UTF-8, a data file that is not a JSON object, conflicting data.
    BadFile { name: String, why: String },
    /// A file this reader does not accept (e.g. `data.yaml` in the filter).
    Unsupported { name: String, why: String },
}

impl fmt::Display for BundleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BundleError::Gzip(e) => write!(f, "not a gzip stream: {e}"),
            BundleError::Tar(e) => write!(f, "not a valid tar archive: {e}"),
            BundleError::UnsafePath { name, why } => write!(f, "`{name}`: unsafe path ({why})"),
            BundleError::Duplicate(name) => write!(f, "`{name}`: appears more than once"),
            BundleError::NotAFile { name, kind } => write!(f, "`{name}`: a {kind}, not a regular file"),
            BundleError::TooLarge(why) => write!(f, "bundle too large: {why}"),
            BundleError::Unsigned(why) => write!(f, "bundle is not signed: {why}"),
            BundleError::BadSignatureFile(why) => write!(f, "`.signatures.json`: {why}"),
            BundleError::WrongAlgorithm(alg) => {
                write!(f, "`.signatures.json`: algorithm `{alg}` refused (only HS256 is accepted)")
            }
            BundleError::UnknownKey(kid) => write!(f, "`.signatures.json`: key id `{kid}` is not a configured key"),
            BundleError::BadSignature { key_id } => {
                write!(f, "`.signatures.json`: signature does not verify with key `{key_id}`")
            }
            BundleError::HashMismatch { name } => write!(f, "`{name}`: SHA-256 differs from the signed hash"),
            BundleError::NotSigned { name } => write!(f, "`{name}`: not listed in the signature"),
            BundleError::Missing { name } => write!(f, "`{name}`: signed but missing from the bundle"),
            BundleError::UnsupportedHash { name, algorithm } => {
                write!(f, "`{name}`: hash algorithm `{algorithm}` refused (only SHA-256)")
            }
            BundleError::BadManifest(why) => write!(f, "`.manifest`: {why}"),
            BundleError::BadFile { name, why } => write!(f, "`{name}`: {why}"),
            BundleError::Unsupported { name, why } => write!(f, "`{name}`: {why}"),
        }
    }
}

impl std::error::Error for BundleError {}
