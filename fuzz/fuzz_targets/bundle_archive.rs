//! Policy bundles (`airlock-bundle`): a `.tar.gz` unpacked within bounds, its
//! `.signatures.json` verified against every file, then parsed.
//!
//! The first byte picks how the rest is read: 0 — a `.tar.gz` as fetched; 1 — a tar
//! that the harness gzips (so the fuzzer reaches the tar reader); 2 — files
//! (`name\ncontent`, separated by `\n--\n`) that the harness builds into a bundle and
//! signs with the configured key.
#![no_main]
use std::io::Write as _;

use airlock_bundle::{
    build, describe, file_hash, load, read_archive, sign, write_archive, BundleError, Entry, Keys, Limits,
    SIGNATURES_FILE,
};
use airlock_fuzz::{parts, KEY};
use libfuzzer_sys::fuzz_target;

fn limits() -> Limits {
    Limits { max_files: 64, max_bytes: 1 << 20 }
}

fn keys() -> Keys {
    Keys::one("k1", KEY)
}

/// What a verified bundle must be, checked independently of `verify`: its signature
/// lists exactly its other files, each with its hash.
fn check_verified(bytes: &[u8]) {
    let entries = read_archive(bytes, &limits()).unwrap();
    let (alg, kid, payload) = describe(&entries).unwrap();
    assert_eq!((alg.as_str(), kid.as_deref()), ("HS256", Some("k1")));
    let files: Vec<&Entry> = entries.iter().filter(|e| e.name != SIGNATURES_FILE).collect();
    assert_eq!(files.len(), payload.files.len());
    for e in files {
        let listed = payload.files.iter().find(|f| f.name.trim_start_matches("/") == e.name).expect("listed");
        assert!(listed.hash.eq_ignore_ascii_case(&file_hash(&e.name, &e.bytes).unwrap()));
    }
}

fn read(bytes: &[u8]) {
    if let Ok(entries) = read_archive(bytes, &limits()) {
        // What was read writes back and reads back the same.
        if let Ok(again) = write_archive(&entries) {
            assert_eq!(read_archive(&again, &limits()).unwrap(), entries);
        }
    }
    if load(bytes, &keys(), &limits()).is_ok() {
        check_verified(bytes);
    }
    assert!(load(bytes, &Keys::one("k1", b"another key, also thirty-two b.."), &limits()).is_err());
}

fn signature_error(e: &BundleError) -> bool {
    matches!(
        e,
        BundleError::Unsigned(_)
            | BundleError::WrongAlgorithm(_)
            | BundleError::UnknownKey(_)
            | BundleError::BadSignature { .. }
            | BundleError::HashMismatch { .. }
            | BundleError::NotSigned { .. }
            | BundleError::Missing { .. }
    )
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    match mode % 3 {
        0 => read(rest),
        1 => {
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            gz.write_all(rest).unwrap();
            read(&gz.finish().unwrap());
        }
        _ => {
            let files: Vec<Entry> = parts(rest, 8)
                .into_iter()
                .filter(|p| !p.is_empty())
                .map(|p| {
                    let (name, bytes) = match p.iter().position(|&b| b == b'\n') {
                        Some(i) => (&p[..i], &p[i + 1..]),
                        None => (p, &[][..]),
                    };
                    Entry { name: String::from_utf8_lossy(name).into_owned(), bytes: bytes.to_vec() }
                })
                .collect();
            let Ok(unsigned) = build(files, Some("r1")) else { return };
            assert!(load(&unsigned, &keys(), &limits()).is_err(), "an unsigned bundle loads");
            let Ok(signed) = sign(&unsigned, "k1", KEY, &limits()) else { return };
            // Signed with the key: refused, if at all, for what it holds, never for
            // its signature.
            match load(&signed, &keys(), &limits()) {
                Ok(_) => check_verified(&signed),
                Err(e) => assert!(!signature_error(&e), "{e:?}"),
            }
            read(&signed);
        }
    }
});
