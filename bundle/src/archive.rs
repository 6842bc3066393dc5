//! The `.tar.gz` layer: unpack into memory within bounds, refusing every name that
//! could mean something other than one file inside the bundle; and the deterministic
//! writer the CLI uses (same input → same bytes, so a rebuilt bundle has the same hashes).

use crate::BundleError;
use std::io::{Read, Write};

/// One regular file of a bundle, by its normalized name (`dir/file.rego`, no leading `/`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub name: String,
    pub bytes: Vec<u8>,
}

/// Bounds on what a bundle may unpack to: a small `.tar.gz` can inflate to gigabytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Regular files, all directories included.
    pub max_files: usize,
    /// Sum of the files' uncompressed sizes.
    pub max_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_files: 1_000, max_bytes: 32 * 1024 * 1024 }
    }
}

/// Tar headers and padding per entry, allowed on top of `max_bytes` while inflating
/// (long names add a header and a name block).
const TAR_OVERHEAD_PER_FILE: u64 = 2_048;

/// Unpack a `.tar.gz` into its regular files, in archive order.
pub fn read_archive(bytes: &[u8], limits: &Limits) -> Result<Vec<Entry>, BundleError> {
    let tar = inflate(bytes, limits)?;
    let mut archive = tar::Archive::new(tar.as_slice());
    let mut out: Vec<Entry> = Vec::new();
    let mut total: u64 = 0;
    let entries = archive.entries().map_err(|e| BundleError::Tar(e.to_string()))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| BundleError::Tar(e.to_string()))?;
        let raw = String::from_utf8(entry.path_bytes().into_owned())
            .map_err(|e| BundleError::Tar(format!("entry name is not UTF-8: {e}")))?;
        let kind = entry.header().entry_type();
        if kind.is_pax_global_extensions() || kind.is_dir() {
            // Directories carry no content: a file's path already says where it goes.
            // A dangerous directory name is still refused.
            if kind.is_dir() && !is_root(&raw) {
                normalize(raw.trim_end_matches('/'))?;
            }
            continue;
        }
        let name = normalize(&raw)?;
        if !kind.is_file() {
            return Err(BundleError::NotAFile { name, kind: format!("{kind:?}").to_lowercase() });
        }
        if out.len() >= limits.max_files {
            return Err(BundleError::TooLarge(format!("more than {} files", limits.max_files)));
        }
        let size = entry.header().size().map_err(|e| BundleError::Tar(format!("`{name}`: {e}")))?;
        total = total.saturating_add(size);
        if total > limits.max_bytes {
            return Err(BundleError::TooLarge(format!(
                "files add up to more than {} bytes uncompressed (at `{name}`)",
                limits.max_bytes
            )));
        }
        if out.iter().any(|e| e.name == name) {
            return Err(BundleError::Duplicate(name));
        }
        let mut content = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
        entry.read_to_end(&mut content).map_err(|e| BundleError::Tar(format!("`{name}`: {e}")))?;
        out.push(Entry { name, bytes: content });
    }
    Ok(out)
}

/// Gunzip with a hard bound on the output, so a gzip bomb stops at the limit instead
/// of exhausting the worker's memory.
fn inflate(bytes: &[u8], limits: &Limits) -> Result<Vec<u8>, BundleError> {
    let files = u64::try_from(limits.max_files).unwrap_or(u64::MAX);
    let bound = limits.max_bytes.saturating_add(files.saturating_add(4).saturating_mul(TAR_OVERHEAD_PER_FILE));
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .take(bound.saturating_add(1))
        .read_to_end(&mut out)
        .map_err(|e| BundleError::Gzip(e.to_string()))?;
    if u64::try_from(out.len()).unwrap_or(u64::MAX) > bound {
        return Err(BundleError::TooLarge(format!("inflates to more than {bound} bytes")));
    }
    Ok(out)
}

fn is_root(raw: &str) -> bool {
    matches!(raw, "." | "./" | "/" | "")
}

/// A bundle-relative name. `./x` (tar of a directory) and `/x` (`opa build`'s own
/// convention, relative to the bundle root) both mean `x`; anything else that is not
/// a plain relative path is refused rather than guessed at. Nothing is ever written to
/// disk, but a name that differs by spelling could slip past the signature's file list.
pub fn normalize(raw: &str) -> Result<String, BundleError> {
    let unsafe_path = |why| Err(BundleError::UnsafePath { name: raw.to_string(), why });
    let mut name = raw;
    while let Some(rest) = name.strip_prefix("./") {
        name = rest;
    }
    if let Some(rest) = name.strip_prefix('/') {
        name = rest;
    }
    if name.is_empty() {
        return unsafe_path("empty name");
    }
    if name.starts_with('/') {
        return unsafe_path("absolute path");
    }
    if name.contains('\\') {
        return unsafe_path("backslash");
    }
    if name.bytes().any(|b| b < 0x20 || b == 0x7f) {
        return unsafe_path("control character");
    }
    for (i, part) in name.split('/').enumerate() {
        match part {
            "" => return unsafe_path("empty path segment"),
            "." | ".." => return unsafe_path("dot segment"),
            p if i == 0 && p.len() == 2 && p.ends_with(':') => return unsafe_path("drive letter"),
            _ => {}
        }
    }
    Ok(name.to_string())
}

/// Write `entries` as a `.tar.gz` with fixed metadata (mtime 0, mode 0644, uid 0):
/// the same files always give the same bytes.
pub fn write_archive(entries: &[Entry]) -> Result<Vec<u8>, BundleError> {
    let gz = flate2::GzBuilder::new().mtime(0).write(Vec::new(), flate2::Compression::best());
    let mut builder = tar::Builder::new(gz);
    for e in entries {
        let mut header = tar::Header::new_gnu();
        header.set_size(e.bytes.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(0);
        header.set_uid(0);
        header.set_gid(0);
        header.set_entry_type(tar::EntryType::Regular);
        builder
            .append_data(&mut header, &e.name, e.bytes.as_slice())
            .map_err(|err| BundleError::BadFile { name: e.name.clone(), why: format!("cannot be archived: {err}") })?;
    }
    let mut gz = builder.into_inner().map_err(|e| BundleError::Tar(e.to_string()))?;
    gz.flush().map_err(|e| BundleError::Gzip(e.to_string()))?;
    gz.finish().map_err(|e| BundleError::Gzip(e.to_string()))
}
