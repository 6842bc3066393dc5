//! Native cost of accepting a policy bundle: unpack, verify the signature and every
//! hash, compile to RVM bytecode — what a worker does when a polled bundle arrives.
//!
//! Run: `cargo bench -p airlock-filter --bench bundle`. Results in `docs/bundles.md`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use airlock_bundle::{build, sign, Entry, Keys, Limits};
use airlock_filter::bundle::activate;
use airlock_filter::bundle::config::BundleConfig;
use airlock_filter::config::PolicyConfig;
use criterion::{criterion_group, criterion_main, Criterion};
use std::path::Path;

const KEY: &[u8] = b"bundle-signing-key-0123456789abc";

/// `.manifest`, `*.rego` and `data.json` under `dir`, as `airlock bundle build` picks them.
fn files(root: &Path, dir: &Path, out: &mut Vec<Entry>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            files(root, &p, out);
            continue;
        }
        let name = p.strip_prefix(root).unwrap().to_str().unwrap().to_string();
        if name.ends_with(".rego") || name.ends_with("data.json") || name.ends_with(".manifest") {
            out.push(Entry { name, bytes: std::fs::read(&p).unwrap() });
        }
    }
}

fn signed(dir: &str) -> Vec<u8> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies").join(dir);
    let mut entries = Vec::new();
    files(&root, &root, &mut entries);
    sign(&build(entries, Some("bench")).unwrap(), "b1", KEY, &Limits::default()).unwrap()
}

fn cfg() -> PolicyConfig {
    PolicyConfig {
        modules: Default::default(),
        data: None,
        bundle: Some(BundleConfig { inline: None, poll: None, keys: Keys::one("b1", KEY) }),
        entrypoint: "data.airlock.decision".into(),
        revision: String::new(),
        mode: Default::default(),
        max_instructions: 100_000,
        rule_index: true,
    }
}

fn accept(c: &mut Criterion) {
    let cfg = cfg();
    for dir in ["demo", "library"] {
        let bytes = signed(dir);
        println!("{dir} bundle: {} bytes", bytes.len());
        c.bench_function(&format!("verify only ({dir})"), |b| {
            b.iter(|| airlock_bundle::load(&bytes, &Keys::one("b1", KEY), &Limits::default()).unwrap())
        });
        c.bench_function(&format!("verify + compile ({dir})"), |b| b.iter(|| activate(&bytes, &cfg).unwrap()));
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = accept
}
criterion_main!(benches);
