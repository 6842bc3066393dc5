//! The callbacks the shipped module exports. Envoy calls every exported callback on
//! every request it applies to, each call into the VM costing about a microsecond, so
//! `scripts/build-wasm.sh` keeps only the ones this filter uses — and one of those is
//! security-critical: without `proxy_on_request_trailers`, a request whose stream ends
//! with trailers would be continued by the host's default, undecided.

use airlock_tests::wasm::filter_wasm_path;
use wasmparser::{Parser, Payload};

fn exports(bytes: &[u8]) -> Vec<String> {
    let mut names = Vec::new();
    for payload in Parser::new(0).parse_all(bytes) {
        if let Payload::ExportSection(section) = payload.unwrap() {
            for export in section {
                names.push(export.unwrap().name.to_string());
            }
        }
    }
    names
}

#[test]
fn the_module_exports_what_the_filter_needs_and_no_response_callbacks() {
    airlock_tests::wasm::filter_wasm().unwrap();
    let path = filter_wasm_path();
    let names = exports(&std::fs::read(&path).unwrap());
    for needed in [
        "proxy_on_memory_allocate",
        "proxy_on_vm_start",
        "proxy_on_configure",
        "proxy_on_tick",
        "proxy_on_context_create",
        "proxy_on_request_headers",
        "proxy_on_request_body",
        "proxy_on_request_trailers",
        "proxy_on_http_call_response",
        "proxy_on_delete",
    ] {
        assert!(names.iter().any(|n| n == needed), "{} lacks {needed}: {names:?}", path.display());
    }
    // Only the optimised, shipped file is trimmed (cargo's own output is the fallback
    // when it is newer, see `filter_wasm_path`).
    if path.to_string_lossy().ends_with(".opt.wasm") {
        for unused in ["proxy_on_response_headers", "proxy_on_response_body", "proxy_on_log", "proxy_on_done"] {
            assert!(!names.iter().any(|n| n == unused), "{} still exports {unused}", path.display());
        }
    }
}
