//! Heap the filter needs to load a policy bundle, and keeps: the peak during
//! `bundle::activate` (verify, unpack, parse, compile, index) and what stays allocated
//! after, for the example library (`policies/library`). The wasm module's linear memory
//! grows to its peak and never shrinks, so the peak is what a VM costs Envoy (measured
//! here natively: 64-bit pointers make these figures an upper bound of wasm32's).
//!
//! Run: `cargo run -p airlock-filter --example load_memory` (heap counts do not depend on
//! the profile).

#![allow(clippy::expect_used, clippy::unwrap_used)]

use airlock_bundle::{build, sign, Entry, Keys, Limits};
use airlock_filter::bundle::activate;
use airlock_filter::bundle::config::BundleConfig;
use airlock_filter::config::PolicyConfig;
use std::alloc::{GlobalAlloc, Layout, System};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

struct Counting;
static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call forwards to the system allocator unchanged; only counts are added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let now = LIVE.fetch_add(l.size(), Relaxed) + l.size();
        PEAK.fetch_max(now, Relaxed);
        // SAFETY: forwarded as received.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size(), Relaxed);
        // SAFETY: forwarded as received.
        unsafe { System.dealloc(p, l) }
    }
}

#[global_allocator]
static A: Counting = Counting;

const KEY: &[u8] = b"bundle-signing-key-0123456789abc";

fn files(root: &Path, dir: &Path, out: &mut Vec<(String, Vec<u8>)>) {
    for e in std::fs::read_dir(dir).expect("library dir") {
        let p = e.expect("entry").path();
        if p.is_dir() {
            if p.file_name().is_some_and(|n| n != "examples") {
                files(root, &p, out);
            }
            continue;
        }
        let name = p.strip_prefix(root).expect("under root").to_string_lossy().to_string();
        if name.ends_with(".rego") || name.ends_with("data.json") {
            out.push((name, std::fs::read(&p).expect("read")));
        }
    }
}

fn mib(n: usize) -> f64 {
    n as f64 / 1048576.0
}

fn main() {
    let root: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies/library");
    let mut lib = Vec::new();
    files(&root, &root, &mut lib);
    let entries: Vec<Entry> = lib.into_iter().map(|(name, bytes)| Entry { name, bytes }).collect();
    let bytes = sign(&build(entries, Some("mem")).expect("build"), "b1", KEY, &Limits::default()).expect("sign");
    let cfg = PolicyConfig {
        modules: Default::default(),
        data: None,
        bundle: Some(BundleConfig { inline: None, poll: None, keys: Keys::one("b1", KEY) }),
        entrypoint: "data.airlock.decision".into(),
        revision: String::new(),
        mode: Default::default(),
        max_instructions: 100_000,
        rule_index: true,
    };
    let before = LIVE.load(Relaxed);
    PEAK.store(before, Relaxed);
    let accepted = activate(&bytes, &cfg).expect("activate");
    let peak = PEAK.load(Relaxed) - before;
    let kept = LIVE.load(Relaxed) - before;
    println!("bundle {} bytes, {} modules", bytes.len(), accepted.modules);
    println!("activate: peak heap {:.2} MiB, kept after {:.2} MiB", mib(peak), mib(kept));
    drop(accepted);
    println!("after drop: {:.2} MiB still allocated", mib(LIVE.load(Relaxed) - before));
}
