//! The filter's plugin configuration (`Config::parse`), as Envoy hands it over.
#![no_main]
use airlock_filter::config::{Config, IdentitySource, BUILTIN_CREDENTIAL_HEADERS};
use libfuzzer_sys::fuzz_target;

fn is_header_name(n: &str) -> bool {
    !n.is_empty()
        && n.bytes().all(|b| !b.is_ascii_uppercase() && (b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)))
}

fuzz_target!(|data: &[u8]| {
    let Ok(c) = Config::parse(data) else { return };
    // What the request path relies on without checking again.
    assert!(c.policy.entrypoint.starts_with("data."));
    assert!(c.policy.max_instructions > 0);
    assert!(c.policy.modules.is_empty() != c.policy.bundle.is_none(), "exactly one source of Rego");
    assert!(c.service.signing.current.secret.len() >= 32);
    assert!(c
        .service
        .signing
        .previous
        .as_ref()
        .is_none_or(|p| p.secret.len() >= 32 && p.id != c.service.signing.current.id));
    assert!(c.service.timeout_ms > 0 && !c.service.cluster.is_empty());
    for h in &BUILTIN_CREDENTIAL_HEADERS {
        assert!(c.request.is_credential_header(h));
    }
    for h in c.request.significant_headers.iter().chain(&c.request.credential_headers) {
        assert!(is_header_name(h), "{h:?}");
    }
    assert!(c.request.significant_headers.iter().all(|h| !c.request.is_credential_header(h)));
    assert!(c.request.upstream_scheme.as_deref().is_none_or(|s| s == "http" || s == "https"));
    if let IdentitySource::Header(h) = &c.identity.source {
        assert!(is_header_name(h) && !BUILTIN_CREDENTIAL_HEADERS.contains(&h.as_str()));
    }
    assert!(c.decision_log.flush_ms > 0 && c.decision_log.max_queue > 0 && c.decision_log.max_batch > 0);
});
