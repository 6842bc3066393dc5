//! The one place that knows where the built filter is.

use std::path::PathBuf;

/// The command that builds the filter module the tests load.
pub const BUILD_COMMAND: &str = "bash scripts/build-wasm.sh";

/// Cargo's name for the module: the cdylib crate `airlock-filter-wasm` (filter/wasm/).
pub const CARGO_ARTIFACT: &str = "airlock_filter_wasm.wasm";

/// The module the tests, the demo and the benchmark load: `AIRLOCK_WASM` when set;
/// else the shipped, `wasm-opt`-optimised `target/wasm32-wasip1/release/airlock_filter.opt.wasm`
/// that `scripts/build-wasm.sh` writes, as long as it is newer than cargo's output;
/// else cargo's output itself, `airlock_filter_wasm.wasm` (a plain `cargo build -p
/// airlock-filter-wasm` after the last `build-wasm.sh`: the same code unoptimised,
/// rather than an optimised stale one).
pub fn filter_wasm_path() -> PathBuf {
    if let Some(p) = std::env::var_os("AIRLOCK_WASM") {
        return PathBuf::from(p);
    }
    let dir = workspace_root().join("target").join("wasm32-wasip1").join("release");
    let plain = dir.join(CARGO_ARTIFACT);
    let optimised = dir.join("airlock_filter.opt.wasm");
    let modified = |p: &PathBuf| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    match (modified(&optimised), modified(&plain)) {
        (Some(o), Some(p)) if o >= p => optimised,
        (Some(_), None) => optimised,
        _ => plain,
    }
}

/// The filter module's bytes; an error naming the build command when it is missing.
pub fn filter_wasm() -> anyhow::Result<Vec<u8>> {
    let path = filter_wasm_path();
    std::fs::read(&path).map_err(|e| {
        anyhow::anyhow!(
            "cannot read the filter module at {} ({e}); build it first with:\n    {BUILD_COMMAND}",
            path.display()
        )
    })
}

/// The workspace root (the parent of this crate's directory).
pub fn workspace_root() -> PathBuf {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    here.parent().map(PathBuf::from).unwrap_or(here)
}
