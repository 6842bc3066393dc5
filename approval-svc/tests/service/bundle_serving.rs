//! `GET /v1/bundles/{name}`: the service serving signed policy bundles to polling
//! gateways with strong ETags, 304 on a match, and nothing outside its directory.

use axum::body::Body;
use axum::http::Request;

use crate::support::*;

async fn get(s: &Service, path: &str, if_none_match: Option<&str>) -> Answer {
    let mut b = Request::builder().method("GET").uri(path);
    if let Some(tag) = if_none_match {
        b = b.header("if-none-match", tag);
    }
    send(&s.router, b.body(Body::empty()).unwrap()).await
}

#[tokio::test]
async fn bundles_are_served_with_etags_and_304_on_a_match() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("airlock.tar.gz"), b"bundle-v1").unwrap();
    std::fs::write(dir.path().join(".secret.tar.gz"), b"no").unwrap();
    let s = service_with_bundles(dir.path().to_path_buf());

    let first = get(&s, "/v1/bundles/airlock.tar.gz", None).await;
    assert_eq!(first.status, 200);
    assert_eq!(first.body, b"bundle-v1");
    let tag = first.headers["etag"].to_str().unwrap().to_string();
    assert!(tag.starts_with('"') && tag.len() == 66, "strong SHA-256 ETag: {tag}");

    let again = get(&s, "/v1/bundles/airlock.tar.gz", Some(&tag)).await;
    assert_eq!(again.status, 304);
    assert!(again.body.is_empty());

    // A new revision published under the same name: new ETag, full answer.
    std::fs::write(dir.path().join("airlock.tar.gz"), b"bundle-v2").unwrap();
    let changed = get(&s, "/v1/bundles/airlock.tar.gz", Some(&tag)).await;
    assert_eq!(changed.status, 200);
    assert_eq!(changed.body, b"bundle-v2");
    assert_ne!(changed.headers["etag"].to_str().unwrap(), tag);

    for path in ["/v1/bundles/missing.tar.gz", "/v1/bundles/.secret.tar.gz", "/v1/bundles/..%2Fairlock.db"] {
        assert_eq!(get(&s, path, None).await.status, 404, "{path}");
    }
}

#[tokio::test]
async fn without_a_directory_nothing_is_served() {
    let s = service();
    assert_eq!(get(&s, "/v1/bundles/airlock.tar.gz", None).await.status, 404);
}
