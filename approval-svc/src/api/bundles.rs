//! `GET /v1/bundles/{name}`: the service as a bundle server for gateways that poll
//! (`docs/bundles.md`). Files come from `[bundles] directory`; each answer carries a
//! strong ETag (SHA-256 of the bytes) and a matching `If-None-Match` gets 304, so a poll
//! that finds nothing new costs a hash and no transfer. Bundles are signed, so serving
//! them needs no authentication; what they reveal (the policy) is why the route is off
//! unless a directory is configured.

use std::path::PathBuf;

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use sha2::{Digest, Sha256};

use super::{ApiError, AppState};

/// Largest bundle served (the filter refuses more than 8 MiB by default).
pub const MAX_BUNDLE_BYTES: u64 = 32 * 1024 * 1024;

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/bundles/{name}", get(serve))
}

/// Whether `name` is a plain bundle file name: no directories, no dot files, `.tar.gz`.
pub fn is_bundle_name(name: &str) -> bool {
    name.len() <= 128
        && name.ends_with(".tar.gz")
        && !name.starts_with('.')
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// The strong ETag of `bytes`.
pub fn etag(bytes: &[u8]) -> String {
    format!("\"{}\"", hex::encode(Sha256::digest(bytes)))
}

/// Whether an `If-None-Match` value names `tag` (or is `*`).
fn matches(if_none_match: &str, tag: &str) -> bool {
    if_none_match.split(',').map(str::trim).any(|t| t == "*" || t == tag || t.strip_prefix("W/") == Some(tag))
}

async fn serve(State(state): State<AppState>, Path(name): Path<String>, headers: HeaderMap) -> Response {
    let Some(dir) = state.bundles_dir.clone() else {
        return ApiError::NotFound.into_response();
    };
    if !is_bundle_name(&name) {
        return ApiError::NotFound.into_response();
    }
    let path: PathBuf = dir.join(&name);
    let read = tokio::task::spawn_blocking(move || -> std::io::Result<Option<Vec<u8>>> {
        match std::fs::metadata(&path) {
            Ok(m) if m.is_file() && m.len() <= MAX_BUNDLE_BYTES => std::fs::read(&path).map(Some),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    })
    .await;
    let bytes = match read {
        Ok(Ok(Some(b))) => b,
        Ok(Ok(None)) => return ApiError::NotFound.into_response(),
        Ok(Err(e)) => return ApiError::Internal(format!("reading bundle {name}: {e}")).into_response(),
        Err(e) => return ApiError::from(e).into_response(),
    };
    let tag = etag(&bytes);
    let tag_header = HeaderValue::from_str(&tag).unwrap_or(HeaderValue::from_static("\"\""));
    let cache = (header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    let inm = headers.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok());
    if inm.is_some_and(|v| matches(v, &tag)) {
        return (StatusCode::NOT_MODIFIED, [(header::ETAG, tag_header), cache]).into_response();
    }
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, HeaderValue::from_static("application/gzip")), (header::ETAG, tag_header), cache],
        bytes,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_bundle_names_are_served() {
        assert!(is_bundle_name("airlock.tar.gz"));
        assert!(is_bundle_name("team-a_2026.11.tar.gz"));
        for bad in ["../x.tar.gz", ".hidden.tar.gz", "a/b.tar.gz", "x.tgz", "x.tar.gz%00", "", "a\\b.tar.gz"] {
            assert!(!is_bundle_name(bad), "{bad}");
        }
    }

    #[test]
    fn if_none_match_lists_and_weak_tags_match() {
        let tag = etag(b"bundle");
        assert!(matches(&tag, &tag));
        assert!(matches(&format!("\"x\", {tag}"), &tag));
        assert!(matches(&format!("W/{tag}"), &tag));
        assert!(matches("*", &tag));
        assert!(!matches("\"other\"", &tag));
    }
}
