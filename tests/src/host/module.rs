//! Compiling the module, once per test process. Compiling the ~3 MB filter with cranelift
//! is the dominant cost of a host, so compiled modules are cached (by path, size and
//! modification time for files; by content hash for bytes) and every host instantiates
//! a fresh store from the cached one.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};
use wasmtime::{Config, Engine, Module};

use crate::wasm;

/// Where the module comes from.
#[derive(Clone, Debug, Default)]
pub enum WasmSource {
    /// The release build of the filter (`crate::wasm::filter_wasm_path()`).
    #[default]
    Filter,
    Path(PathBuf),
    /// Module bytes (binary, or text when they parse as WAT).
    Bytes(Vec<u8>),
}

#[derive(Clone, PartialEq, Eq, Hash)]
enum Key {
    File(PathBuf, u64, Option<SystemTime>),
    Content([u8; 32]),
}

static ENGINE: Mutex<Option<Engine>> = Mutex::new(None);
static MODULES: Mutex<Option<HashMap<Key, Module>>> = Mutex::new(None);

/// The process-wide engine (every module and store must share it).
pub(crate) fn engine() -> Result<Engine> {
    let mut slot = ENGINE.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(engine) = &*slot {
        return Ok(engine.clone());
    }
    let engine = Engine::new(&Config::new()).map_err(|e| anyhow::anyhow!("creating the wasmtime engine: {e}"))?;
    *slot = Some(engine.clone());
    Ok(engine)
}

/// The compiled module for `source`, compiling it on first use.
pub(crate) fn load(source: &WasmSource) -> Result<Module> {
    match source {
        WasmSource::Filter => {
            let path = wasm::filter_wasm_path();
            if !path.exists() {
                // filter_wasm() builds the message naming the exact build command.
                wasm::filter_wasm()?;
            }
            load_file(&path)
        }
        WasmSource::Path(path) => load_file(path),
        WasmSource::Bytes(bytes) => {
            let key = Key::Content(Sha256::digest(bytes).into());
            cached(key, || compile(bytes, "in-memory module"))
        }
    }
}

fn load_file(path: &Path) -> Result<Module> {
    let meta = std::fs::metadata(path).with_context(|| format!("cannot read the module at {}", path.display()))?;
    let key = Key::File(path.to_path_buf(), meta.len(), meta.modified().ok());
    cached(key, || {
        let bytes = std::fs::read(path).with_context(|| format!("cannot read the module at {}", path.display()))?;
        compile(&bytes, &path.display().to_string())
    })
}

/// Holding the lock while compiling makes concurrent tests wait for the one compile
/// instead of each doing their own.
fn cached(key: Key, compile: impl FnOnce() -> Result<Module>) -> Result<Module> {
    let mut slot = MODULES.lock().unwrap_or_else(|e| e.into_inner());
    let modules = slot.get_or_insert_with(HashMap::new);
    if let Some(module) = modules.get(&key) {
        return Ok(module.clone());
    }
    let module = compile()?;
    modules.insert(key, module.clone());
    Ok(module)
}

fn compile(bytes: &[u8], what: &str) -> Result<Module> {
    let engine = engine()?;
    Module::new(&engine, bytes)
        .map_err(|e| anyhow::anyhow!("wasmtime could not compile {what}: {}", anyhow::Error::from(e)))
}

/// `(module, name)` of every import, in the module's order.
pub fn imports_of(module: &Module) -> Vec<(String, String)> {
    module.imports().map(|i| (i.module().to_string(), i.name().to_string())).collect()
}

/// The imports of the built filter, without instantiating it.
pub fn filter_module_imports() -> Result<Vec<(String, String)>> {
    Ok(imports_of(&load(&WasmSource::Filter)?))
}
