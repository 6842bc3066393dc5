//! Native cost of evaluating the example policy library (`policies/library`) for each
//! example input in `policies/library/examples`: the library is built into a signed
//! bundle and accepted by `bundle::activate`, the filter's own path (RVM bytecode for
//! `data.airlock.decision`, 100 000-instruction budget), then only the evaluation is
//! timed — the example file already is the `input` document. A second group times each
//! module's own `decision` for the `default-deny` input.
//!
//! Run: `cargo bench -p airlock-filter --bench library`. Results in
//! `policies/library/README.md` ("Evaluation cost"); the wasmtime counterpart is
//! `tests/benches/wasm_library.rs`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use airlock_bundle::{build, sign, Entry, Keys, Limits};
use airlock_filter::bundle::activate;
use airlock_filter::bundle::config::BundleConfig;
use airlock_filter::config::PolicyConfig;
use airlock_filter::decision::{from_policy_output, POLICY_ERROR_RULE};
use criterion::{criterion_group, criterion_main, Criterion};
use regorus::Value;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::Duration;

const KEY: &[u8] = b"bundle-signing-key-0123456789abc";

fn library_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies/library")
}

/// The policy benchmarked: the library, or the one `AIRLOCK_LIBRARY_DIR` names (the 9×
/// library: `cargo run --release -p airlock-tests --bin airlock-bench -- --write-library9 DIR`).
/// The example inputs stay the library's.
fn policy_dir() -> PathBuf {
    std::env::var_os("AIRLOCK_LIBRARY_DIR").map_or_else(library_dir, PathBuf::from)
}

/// `.manifest`, `*.rego` and `data.json` under `dir`, as `airlock bundle build` picks
/// them (test modules included: they are in shipped bundles too).
fn files(root: &Path, dir: &Path, out: &mut Vec<Entry>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            // Example inputs are documentation, not bundle content.
            if p.file_name().is_some_and(|n| n != "examples") {
                files(root, &p, out);
            }
            continue;
        }
        let name = p.strip_prefix(root).unwrap().to_str().unwrap().to_string();
        if name.ends_with(".rego") || name.ends_with("data.json") || name.ends_with(".manifest") {
            out.push(Entry { name, bytes: std::fs::read(&p).unwrap() });
        }
    }
}

fn cfg(entrypoint: &str, rule_index: bool) -> PolicyConfig {
    PolicyConfig {
        modules: Default::default(),
        data: None,
        bundle: Some(BundleConfig { inline: None, poll: None, keys: Keys::one("b1", KEY) }),
        entrypoint: entrypoint.into(),
        revision: String::new(),
        mode: Default::default(),
        max_instructions: 100_000,
        rule_index,
    }
}

/// Every example input, sorted by file name.
fn examples() -> Vec<(String, Value)> {
    let mut paths: Vec<PathBuf> =
        std::fs::read_dir(library_dir().join("examples")).unwrap().map(|e| e.unwrap().path()).collect();
    paths.retain(|p| p.extension().is_some_and(|e| e == "json"));
    paths.sort();
    assert!(!paths.is_empty(), "no example inputs");
    paths
        .iter()
        .map(|p| {
            let name = p.file_stem().unwrap().to_str().unwrap().to_string();
            (name, Value::from_json_str(&std::fs::read_to_string(p).unwrap()).unwrap())
        })
        .collect()
}

fn library(c: &mut Criterion) {
    let root = policy_dir();
    let mut entries = Vec::new();
    files(&root, &root, &mut entries);
    let bytes = sign(&build(entries, Some("bench")).unwrap(), "b1", KEY, &Limits::default()).unwrap();
    let examples = examples();

    // With the rule index (the default) and without it (`policy.rule_index: false`, every
    // module evaluated for every request), side by side.
    for (group_name, rule_index) in [("library_native", true), ("library_native_no_index", false)] {
        let mut policy = activate(&bytes, &cfg("data.airlock.decision", rule_index)).unwrap().active.policy;
        let mut group = c.benchmark_group(group_name);
        for (name, input) in examples.clone() {
            // The decision goes next to the timing in the README table; an example that
            // errors or is undefined would time the failure path, so refuse it.
            let d = from_policy_output(policy.evaluate(input.clone()));
            assert_ne!(d.rule_or_default(), POLICY_ERROR_RULE, "{name}: {d:?}");
            println!("{name}: {:?} {} (skips {} rules)", d.effect, d.rule_or_default(), policy.skipped_rules(&input));
            group.bench_function(&name, |b| b.iter(|| policy.evaluate(black_box(input.clone()))));
        }
        group.finish();
    }

    // What each module costs on its own when it is evaluated (index off: with it, a module
    // whose guards fail for this input costs nothing). The input decides nothing in any
    // module, so every rule body is tried; without the index, their sum is the floor of
    // every row above.
    let (_, input) = examples.iter().find(|(n, _)| n == "default-deny").unwrap();
    let mut group = c.benchmark_group("library_native_module_default_deny");
    for m in ["hosts", "exports", "iam", "network", "secrets", "deploy", "databases", "mcp", "aws"] {
        let entry = format!("data.airlock.rules.{m}.decision");
        let mut policy = activate(&bytes, &cfg(&entry, false)).unwrap().active.policy;
        group.bench_function(m, |b| b.iter(|| policy.evaluate(black_box(input.clone()))));
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_millis(1500));
    targets = library
}
criterion_main!(benches);
