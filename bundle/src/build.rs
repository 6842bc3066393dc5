//! Making bundles (the CLI's side): build from files, sign in place.

use crate::archive::{read_archive, write_archive, Entry, Limits};
use crate::manifest::Manifest;
use crate::signatures::{payload_for, SIGNATURES_FILE};
use crate::{jws, BundleError, MANIFEST_FILE};

/// An unsigned bundle of `files`. `revision` sets the manifest's revision (creating a
/// manifest if there is none). Files are sorted, `.manifest` first, so the same
/// input always gives the same bytes; an existing signature is dropped (it would no
/// longer match).
pub fn build(mut files: Vec<Entry>, revision: Option<&str>) -> Result<Vec<u8>, BundleError> {
    files.retain(|e| e.name != SIGNATURES_FILE);
    if let Some(rev) = revision {
        // Edited as JSON, not through `Manifest`, so fields this crate does not model
        // (OPA's `metadata`, `rego_version`, …) survive.
        let mut manifest = match files.iter().find(|e| e.name == MANIFEST_FILE) {
            Some(e) => {
                Manifest::parse(&e.bytes)?;
                serde_json::from_slice(&e.bytes).map_err(|e| BundleError::BadManifest(e.to_string()))?
            }
            None => serde_json::json!({}),
        };
        if let Some(obj) = manifest.as_object_mut() {
            obj.insert("revision".into(), serde_json::Value::String(rev.to_string()));
        }
        let bytes = serde_json::to_vec_pretty(&manifest).map_err(|e| BundleError::BadManifest(e.to_string()))?;
        files.retain(|e| e.name != MANIFEST_FILE);
        files.push(Entry { name: MANIFEST_FILE.into(), bytes });
    } else if let Some(e) = files.iter().find(|e| e.name == MANIFEST_FILE) {
        Manifest::parse(&e.bytes)?;
    }
    files.sort_by(|a, b| (a.name != MANIFEST_FILE, &a.name).cmp(&(b.name != MANIFEST_FILE, &b.name)));
    for w in files.windows(2) {
        if let [a, b] = w {
            if a.name == b.name {
                return Err(BundleError::Duplicate(a.name.clone()));
            }
        }
    }
    write_archive(&files)
}

/// Sign `bundle` with HS256 under `key_id`: `.signatures.json` (replaced if present)
/// lists every other file with its SHA-256.
pub fn sign(bundle: &[u8], key_id: &str, key: &[u8], limits: &Limits) -> Result<Vec<u8>, BundleError> {
    let mut entries = read_archive(bundle, limits)?;
    entries.retain(|e| e.name != SIGNATURES_FILE);
    let payload = serde_json::to_vec(&payload_for(&entries, key_id)?)
        .map_err(|e| BundleError::BadSignatureFile(e.to_string()))?;
    let token = jws::sign(&payload, key_id, key)?;
    let file = serde_json::to_vec(&serde_json::json!({ "signatures": [token] }))
        .map_err(|e| BundleError::BadSignatureFile(e.to_string()))?;
    entries.push(Entry { name: SIGNATURES_FILE.into(), bytes: file });
    write_archive(&entries)
}

/// The files of a policy directory that belong in a bundle, as OPA's `build` picks
/// them: `.manifest`, `*.rego`, `data.json`/`data.yaml`/`data.yml`, named relative to `dir`.
#[cfg(feature = "fs")]
pub fn files_from_dir(dir: &std::path::Path) -> Result<Vec<Entry>, BundleError> {
    let mut out = Vec::new();
    walk(dir, dir, &mut out)?;
    Ok(out)
}

#[cfg(feature = "fs")]
fn walk(root: &std::path::Path, dir: &std::path::Path, out: &mut Vec<Entry>) -> Result<(), BundleError> {
    let io = |p: &std::path::Path, e: std::io::Error| BundleError::BadFile {
        name: p.display().to_string(),
        why: e.to_string(),
    };
    let mut paths: Vec<_> =
        std::fs::read_dir(dir).map_err(|e| io(dir, e))?.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for path in paths {
        if path.is_dir() {
            walk(root, &path, out)?;
            continue;
        }
        let file = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        let wanted =
            file == MANIFEST_FILE || file.ends_with(".rego") || matches!(file, "data.json" | "data.yaml" | "data.yml");
        if !wanted {
            continue;
        }
        let rel = path.strip_prefix(root).unwrap_or(&path);
        let name: Vec<String> = rel.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect();
        let name = crate::archive::normalize(&name.join("/"))?;
        let bytes = std::fs::read(&path).map_err(|e| io(&path, e))?;
        out.push(Entry { name, bytes });
    }
    Ok(())
}

/// `files_from_dir` then `build`.
#[cfg(feature = "fs")]
pub fn build_dir(dir: &std::path::Path, revision: Option<&str>) -> Result<Vec<u8>, BundleError> {
    build(files_from_dir(dir)?, revision)
}
