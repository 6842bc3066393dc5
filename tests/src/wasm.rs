//! The one place that knows where the built filter is.

use std::path::PathBuf;

/// The command that builds the filter module the tests load.
pub const BUILD_COMMAND: &str = "cargo build -p airlock-filter --target wasm32-wasip1 --release";

/// Path of the release filter module (`target/wasm32-wasip1/release/airlock_filter.wasm`),
/// or `AIRLOCK_WASM` when set.
pub fn filter_wasm_path() -> PathBuf {
    if let Some(p) = std::env::var_os("AIRLOCK_WASM") {
        return PathBuf::from(p);
    }
    workspace_root().join("target").join("wasm32-wasip1").join("release").join("airlock_filter.wasm")
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
