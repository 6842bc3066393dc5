#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
use super::*;
use base64::Engine as _;

pub const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";

fn e(name: &str, bytes: &str) -> Entry {
    Entry { name: name.into(), bytes: bytes.as_bytes().to_vec() }
}

fn files() -> Vec<Entry> {
    vec![
        e(
            ".manifest",
            r#"{"revision": "r1", "roots": ["airlock", "hosts"], "airlock": {"shadow_rules": ["new-rule"]}}"#,
        ),
        e("airlock/policy.rego", "package airlock\n\ndecision := {\"effect\": \"allow\"}\n"),
        e("hosts/data.json", r#"{"api.example.com": true}"#),
    ]
}

fn signed() -> Vec<u8> {
    sign(&build(files(), None).unwrap(), "k1", KEY, &Limits::default()).unwrap()
}

fn keys() -> Keys {
    Keys::one("k1", KEY)
}

fn load_err(bytes: &[u8]) -> BundleError {
    load(bytes, &keys(), &Limits::default()).unwrap_err()
}

/// Rewrite a signed bundle's entries without re-signing.
fn tamper(f: impl FnOnce(&mut Vec<Entry>)) -> Vec<u8> {
    let mut entries = read_archive(&signed(), &Limits::default()).unwrap();
    f(&mut entries);
    write_archive(&entries).unwrap()
}

fn replace_signature(entries: &mut [Entry], token: &str) {
    let sig = entries.iter_mut().find(|e| e.name == SIGNATURES_FILE).unwrap();
    sig.bytes = serde_json::to_vec(&serde_json::json!({ "signatures": [token] })).unwrap();
}

fn token_of(entries: &[Entry]) -> String {
    let sig = entries.iter().find(|e| e.name == SIGNATURES_FILE).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&sig.bytes).unwrap();
    v["signatures"][0].as_str().unwrap().to_string()
}

#[test]
fn round_trip() {
    let (bundle, verified) = load(&signed(), &keys(), &Limits::default()).unwrap();
    assert_eq!(verified.key_id, "k1");
    assert_eq!(verified.files, 3);
    assert_eq!(bundle.manifest.revision, "r1");
    assert_eq!(bundle.manifest.shadow_rules(), ["new-rule"]);
    assert_eq!(bundle.modules.len(), 1);
    assert_eq!(bundle.data_document(None).unwrap(), serde_json::json!({"hosts": {"api.example.com": true}}));
}

#[test]
fn build_is_deterministic_and_sets_revision() {
    assert_eq!(build(files(), None).unwrap(), build(files(), None).unwrap());
    let b = sign(&build(files(), Some("r9")).unwrap(), "k1", KEY, &Limits::default()).unwrap();
    let (bundle, _) = load(&b, &keys(), &Limits::default()).unwrap();
    assert_eq!(bundle.manifest.revision, "r9");
    assert_eq!(bundle.manifest.roots.as_deref(), Some(&["airlock".to_string(), "hosts".to_string()][..]));
}

#[test]
fn resigning_replaces_the_signature() {
    let twice = sign(&signed(), "k2", b"another key, also 32 bytes long!", &Limits::default()).unwrap();
    let entries = read_archive(&twice, &Limits::default()).unwrap();
    assert_eq!(entries.iter().filter(|e| e.name == SIGNATURES_FILE).count(), 1);
    assert!(matches!(load_err(&twice), BundleError::UnknownKey(k) if k == "k2"));
}

#[test]
fn unsigned_is_refused() {
    assert!(matches!(load_err(&build(files(), None).unwrap()), BundleError::Unsigned(_)));
}

#[test]
fn changed_file_is_refused() {
    let b = tamper(|es| es[1].bytes = b"package airlock\ndecision := {\"effect\": \"deny\"}\n".to_vec());
    let err = load_err(&b);
    assert_eq!(err, BundleError::HashMismatch { name: "airlock/policy.rego".into() });
    assert!(err.to_string().contains("airlock/policy.rego"), "{err}");
}

#[test]
fn extra_file_is_refused() {
    let b = tamper(|es| es.push(e("airlock/extra.rego", "package airlock\nx := 1")));
    assert_eq!(load_err(&b), BundleError::NotSigned { name: "airlock/extra.rego".into() });
}

#[test]
fn missing_file_is_refused() {
    let b = tamper(|es| es.retain(|e| e.name != "hosts/data.json"));
    assert_eq!(load_err(&b), BundleError::Missing { name: "hosts/data.json".into() });
}

#[test]
fn wrong_key_is_refused() {
    let err = load(&signed(), &Keys::one("k1", b"not the key that signed it at all"), &Limits::default()).unwrap_err();
    assert_eq!(err, BundleError::BadSignature { key_id: "k1".into() });
}

#[test]
fn unknown_kid_is_refused() {
    let b = sign(&build(files(), None).unwrap(), "k7", KEY, &Limits::default()).unwrap();
    assert_eq!(load_err(&b), BundleError::UnknownKey("k7".into()));
}

#[test]
fn kid_swapped_in_header_is_refused() {
    // Same secret configured under two ids: relabelling the header's kid breaks the MAC.
    let keys = Keys(std::collections::BTreeMap::from([
        ("k1".into(), KEY.to_vec()),
        ("k2".into(), b"k2 secret k2 secret k2 secret 32".to_vec()),
    ]));
    let b = tamper(|es| {
        let token = token_of(es);
        let (_, rest) = token.split_once('.').unwrap();
        let header = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","kid":"k2"}"#);
        replace_signature(es, &format!("{header}.{rest}"));
    });
    assert!(matches!(load(&b, &keys, &Limits::default()).unwrap_err(), BundleError::BadSignature { .. }));
}

fn with_alg(alg: &str) -> Vec<u8> {
    tamper(|es| {
        let token = token_of(es);
        let mut parts = token.split('.');
        let (_, payload, sig) = (parts.next().unwrap(), parts.next().unwrap(), parts.next().unwrap());
        let header = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(format!(r#"{{"alg":"{alg}","kid":"k1"}}"#).as_bytes());
        let sig = if alg == "none" { "" } else { sig };
        replace_signature(es, &format!("{header}.{payload}.{sig}"));
    })
}

#[test]
fn alg_none_and_rs256_are_refused() {
    assert_eq!(load_err(&with_alg("none")), BundleError::WrongAlgorithm("none".into()));
    assert_eq!(load_err(&with_alg("RS256")), BundleError::WrongAlgorithm("RS256".into()));
    assert_eq!(load_err(&with_alg("hs256")), BundleError::WrongAlgorithm("hs256".into()));
}

#[test]
fn bad_json_is_refused() {
    // Signatures file that is not JSON.
    let b = tamper(|es| es.iter_mut().find(|e| e.name == SIGNATURES_FILE).unwrap().bytes = b"{not json".to_vec());
    assert!(matches!(load_err(&b), BundleError::BadSignatureFile(m) if m.contains("invalid JSON")));
    // data.json that is not JSON cannot be signed, and replacing a signed one with
    // broken JSON is refused by name.
    let mut fs = files();
    fs[2].bytes = b"{\"a\": ".to_vec();
    let err = sign(&build(fs, None).unwrap(), "k1", KEY, &Limits::default()).unwrap_err();
    assert!(matches!(&err, BundleError::BadFile { name, .. } if name == "hosts/data.json"), "{err}");
    let b = tamper(|es| es[2].bytes = b"{\"api.example.com\": tru".to_vec());
    let err = load_err(&b);
    assert!(
        matches!(&err, BundleError::BadFile { name, why } if name == "hosts/data.json" && why.contains("invalid JSON")),
        "{err}"
    );
    // A manifest that is not JSON cannot be signed either.
    let mut fs = files();
    fs[0].bytes = b"revision: r1".to_vec();
    let err = sign(&write_archive(&fs).unwrap(), "k1", KEY, &Limits::default()).unwrap_err();
    assert!(matches!(&err, BundleError::BadFile { name, .. } if name == ".manifest"), "{err}");
    // A signed payload that is not a file list.
    let b = tamper(|es| {
        let token = jws::sign(br#"{"files": 3}"#, "k1", KEY).unwrap();
        replace_signature(es, &token);
    });
    assert!(matches!(load_err(&b), BundleError::BadSignatureFile(m) if m.contains("payload")));
}

#[test]
fn two_signatures_are_refused() {
    let b = tamper(|es| {
        let t = token_of(es);
        es.iter_mut().find(|e| e.name == SIGNATURES_FILE).unwrap().bytes =
            serde_json::to_vec(&serde_json::json!({"signatures": [t, t]})).unwrap();
    });
    assert!(matches!(load_err(&b), BundleError::BadSignatureFile(_)));
}

/// A raw tar entry with any name (the tar crate's builder refuses `..`, as it should).
fn raw_tar(names: &[(&str, tar::EntryType)]) -> Vec<u8> {
    use std::io::Write;
    let mut tar = Vec::new();
    for (name, kind) in names {
        let mut h = tar::Header::new_old();
        h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        h.set_size(if kind.is_file() { 1 } else { 0 });
        h.set_mode(0o644);
        h.set_entry_type(*kind);
        h.set_cksum();
        tar.extend_from_slice(h.as_bytes());
        if kind.is_file() {
            tar.extend_from_slice(b"x");
            tar.extend_from_slice(&[0u8; 511]);
        }
    }
    tar.extend_from_slice(&[0u8; 1024]);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar).unwrap();
    gz.finish().unwrap()
}

#[test]
fn traversal_and_unsafe_names_are_refused() {
    use tar::EntryType::Regular;
    for name in ["../x.rego", "a/../../x.rego", "//etc/passwd", "a//b.rego", "a\\b.rego", "C:/x.rego", "a/./b.rego"] {
        let err = read_archive(&raw_tar(&[(name, Regular)]), &Limits::default()).unwrap_err();
        assert!(matches!(&err, BundleError::UnsafePath { .. }), "{name}: {err}");
        assert!(err.to_string().contains(name), "{err}");
    }
    // OPA's own convention (`/x`) and tar's (`./x`) name the same file.
    let entries = read_archive(&raw_tar(&[("/a.rego", Regular), ("./b.rego", Regular)]), &Limits::default()).unwrap();
    assert_eq!(entries.iter().map(|e| e.name.as_str()).collect::<Vec<_>>(), ["a.rego", "b.rego"]);
}

#[test]
fn duplicates_links_and_bombs_are_refused() {
    use tar::EntryType::{Regular, Symlink};
    let dup = raw_tar(&[("a.rego", Regular), ("./a.rego", Regular)]);
    assert_eq!(read_archive(&dup, &Limits::default()).unwrap_err(), BundleError::Duplicate("a.rego".into()));
    let link = raw_tar(&[("a.rego", Symlink)]);
    assert!(matches!(read_archive(&link, &Limits::default()).unwrap_err(), BundleError::NotAFile { .. }));
    let many = raw_tar(&[("a", Regular), ("b", Regular), ("c", Regular)]);
    let limits = Limits { max_files: 2, max_bytes: 1_000 };
    assert!(matches!(read_archive(&many, &limits).unwrap_err(), BundleError::TooLarge(_)));
    // 64 MiB of zeros compresses to ~64 KiB; it must stop at the bound, not inflate.
    let big = vec![Entry { name: "data.json".into(), bytes: vec![b' '; 64 << 20] }];
    let bomb = write_archive(&big).unwrap();
    assert!(bomb.len() < 1 << 20);
    assert!(matches!(read_archive(&bomb, &Limits::default()).unwrap_err(), BundleError::TooLarge(_)));
    assert!(matches!(read_archive(b"not gzip", &Limits::default()).unwrap_err(), BundleError::Gzip(_)));
}

#[test]
fn data_mounts_merge_and_conflicts_are_named() {
    let fs =
        vec![e("data.json", r#"{"a": {"x": 1}}"#), e("a/data.json", r#"{"y": 2}"#), e("a/b/data.json", r#"{"z": 3}"#)];
    let b = Bundle::parse(fs).unwrap();
    assert_eq!(b.data_document(None).unwrap(), serde_json::json!({"a": {"x": 1, "y": 2, "b": {"z": 3}}}));
    let fs = vec![e("data.json", r#"{"a": {"x": 1}}"#), e("a/data.json", r#"{"x": 2}"#)];
    let err = Bundle::parse(fs).unwrap().data_document(None).unwrap_err();
    assert!(err.to_string().contains("a/data.json") && err.to_string().contains("a/x"), "{err}");
    let yaml = Bundle::parse(vec![e("a/data.yaml", "x: 1")]).unwrap();
    assert!(matches!(yaml.data_document(None).unwrap_err(), BundleError::Unsupported { .. }));
}

#[test]
fn roots_are_enforced() {
    let fs =
        vec![e(".manifest", r#"{"revision": "r", "roots": ["airlock"]}"#), e("other/p.rego", "package other\nx := 1")];
    let err = Bundle::parse(fs).unwrap_err();
    assert!(err.to_string().contains("other/p.rego"), "{err}");
    let fs = vec![e(".manifest", r#"{"roots": ["airlock"]}"#), e("data.json", r#"{"hosts": {}}"#)];
    assert!(Bundle::parse(fs).unwrap().data_document(None).is_err());
    let bad_mode = vec![e(".manifest", r#"{"airlock": {"mode": "audit"}}"#)];
    assert!(matches!(Bundle::parse(bad_mode).unwrap_err(), BundleError::BadManifest(_)));
}

#[test]
fn json_documents_are_signed_by_content_as_opa_does() {
    // Reformatting data.json keeps the signature valid (OPA hashes parsed JSON);
    // changing a value does not.
    let b = tamper(|es| es[2].bytes = b"{\n  \"api.example.com\" : true\n}\n".to_vec());
    assert!(load(&b, &keys(), &Limits::default()).is_ok());
    let b = tamper(|es| es[2].bytes = br#"{"api.example.com": false}"#.to_vec());
    assert_eq!(load_err(&b), BundleError::HashMismatch { name: "hosts/data.json".into() });
    // The hashes listed are OPA's: canonical JSON for data.json and .manifest, bytes otherwise.
    let entries = read_archive(&signed(), &Limits::default()).unwrap();
    let (_, _, payload) = describe(&entries).unwrap();
    let data = payload.files.iter().find(|f| f.name == "hosts/data.json").unwrap();
    assert_eq!(data.hash, sha256_hex(br#"{"api.example.com":true}"#));
    let rego = payload.files.iter().find(|f| f.name == "airlock/policy.rego").unwrap();
    assert_eq!(rego.hash, sha256_hex(files()[1].bytes.as_slice()));
}

#[test]
fn a_byte_order_mark_keeps_the_signature_but_is_refused_on_load_as_opa_does() {
    // OPA's hash skips a leading BOM, so the signature still verifies; its loader then
    // refuses the file, and so do we, saying why.
    let b = tamper(|es| es[2].bytes = [b"\xEF\xBB\xBF".as_slice(), &es[2].bytes].concat());
    let (bundle, _) = load(&b, &keys(), &Limits::default()).unwrap();
    let err = bundle.data_document(None).unwrap_err();
    assert!(
        matches!(&err, BundleError::BadFile { name, why } if name == "hosts/data.json" && why.contains("byte-order mark")),
        "{err}"
    );
    let b = tamper(|es| es[0].bytes = [b"\xEF\xBB\xBF".as_slice(), &es[0].bytes].concat());
    let err = load_err(&b);
    assert!(
        matches!(&err, BundleError::BadFile { name, why } if name == ".manifest" && why.contains("byte-order mark")),
        "{err}"
    );
}

#[test]
fn scoped_signatures_are_refused() {
    let b = tamper(|es| {
        let entries: Vec<Entry> = es.iter().filter(|e| e.name != SIGNATURES_FILE).cloned().collect();
        let mut payload = signatures::payload_for(&entries, "k1").unwrap();
        payload.scope = Some("write".into());
        let token = jws::sign(&serde_json::to_vec(&payload).unwrap(), "k1", KEY).unwrap();
        replace_signature(es, &token);
    });
    assert!(matches!(load_err(&b), BundleError::BadSignatureFile(m) if m.contains("scope")));
}

#[test]
fn build_keeps_opa_manifest_fields() {
    let mut fs = files();
    fs[0].bytes = br#"{"revision": "old", "metadata": {"team": "sec"}, "rego_version": 1}"#.to_vec();
    let b = build(fs, Some("new")).unwrap();
    let entries = read_archive(&b, &Limits::default()).unwrap();
    let m: serde_json::Value = serde_json::from_slice(&entries[0].bytes).unwrap();
    assert_eq!(m, serde_json::json!({"revision": "new", "metadata": {"team": "sec"}, "rego_version": 1}));
}
