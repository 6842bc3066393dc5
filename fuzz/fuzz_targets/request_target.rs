//! The request target checks (`filter/src/target.rs`): `:path` and `:authority`.
#![no_main]
use airlock_filter::target::{parse_authority, parse_path};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(p) = parse_path(text) {
        // A path that passes is one every decoder reads the same way.
        assert!(p.path.starts_with('/') && text.starts_with(p.path));
        assert!(!p.path.contains("//") && !p.path.contains('\\') && !p.path.contains(';'));
        assert!(p.path.split('/').all(|s| s != "." && s != ".."));
        let lower = p.path.to_ascii_lowercase();
        for bad in ["%2f", "%5c", "%00", "%2e", "%25"] {
            assert!(!lower.contains(bad), "{bad} in {text:?}");
        }
        assert!(p.path.bytes().all(|b| (0x21..0x7f).contains(&b)));
        assert!(p.query.iter().all(|(k, v)| !k.contains('\0') && !v.contains('\0')));
        // Checking is idempotent.
        assert_eq!(parse_path(p.path).map(|q| q.path), Ok(p.path));
    }
    for scheme in ["http", "https"] {
        if let Ok((host, port)) = parse_authority(text, scheme) {
            assert!(!host.is_empty() && !host.contains('@'));
            assert_eq!(host, host.to_ascii_lowercase());
            // The normalized form reads back as itself.
            assert_eq!(parse_authority(&format!("{host}:{port}"), scheme), Ok((host.clone(), port)), "{text:?}");
        }
    }
});
