//! Runs a test file's scenarios one after another against one shared gateway (Envoy with
//! V8 takes seconds to start), catches each scenario's panic, and fails once at the end
//! naming every failed scenario. The Envoy log is printed by [`crate::e2e::envoy::Envoy`]'s
//! drop guard while that final panic unwinds.
//!
//! `AIRLOCK_E2E_CASE=<substring>` runs only the scenarios whose name contains it.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Instant;

/// A named scenario over the shared fixture `F`.
pub type Case<F> = (&'static str, fn(&F));

/// Runs `cases` in order; `after_each` restores the fixture between scenarios. The error
/// names every failed scenario; unwrap it while the fixture is still alive so its drop
/// guards print the Envoy logs.
pub fn run<F>(file: &str, fixture: &F, cases: &[Case<F>], after_each: impl Fn(&F)) -> anyhow::Result<()> {
    let only = std::env::var("AIRLOCK_E2E_CASE").ok();
    let mut failed = Vec::new();
    let mut ran = 0usize;
    for (name, case) in cases {
        if only.as_deref().is_some_and(|o| !name.contains(o)) {
            continue;
        }
        ran += 1;
        let started = Instant::now();
        eprintln!("[{file}] {name} ...");
        let outcome = catch_unwind(AssertUnwindSafe(|| case(fixture)));
        after_each(fixture);
        let took = started.elapsed();
        match outcome {
            Ok(()) => eprintln!("[{file}] {name} ok ({took:.1?})"),
            Err(_) => {
                eprintln!("[{file}] {name} FAILED ({took:.1?})");
                failed.push(*name);
            }
        }
    }
    if ran == 0 {
        anyhow::bail!("[{file}] no scenario matched AIRLOCK_E2E_CASE={only:?}");
    }
    if !failed.is_empty() {
        anyhow::bail!(
            "[{file}] {} of {ran} scenarios failed: {failed:?} (messages above; Envoy log below)",
            failed.len()
        );
    }
    Ok(())
}
