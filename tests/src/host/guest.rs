//! The module's exports the host calls, resolved once per instance with their exact
//! signatures (ABI 0.2.1, wasm32: `usize` and `bool` are i32).

use anyhow::{bail, Result};
use wasmtime::{Instance, Store, TypedFunc, WasmParams, WasmResults};

use super::state::HostState;

type F<P, R> = TypedFunc<P, R>;
/// `proxy_on_http_call_response(context, token, headers, body size, trailers)`.
type CallResponseFn = F<(i32, i32, i32, i32, i32), ()>;

pub(crate) struct Exports {
    pub initialize: Option<F<(), ()>>,
    pub start: Option<F<(), ()>>,
    pub main: Option<F<(i32, i32), i32>>,
    pub context_create: F<(i32, i32), ()>,
    pub vm_start: Option<F<(i32, i32), i32>>,
    pub configure: Option<F<(i32, i32), i32>>,
    pub tick: Option<F<i32, ()>>,
    pub queue_ready: Option<F<(i32, i32), ()>>,
    pub request_headers: Option<F<(i32, i32, i32), i32>>,
    pub request_body: Option<F<(i32, i32, i32), i32>>,
    pub response_headers: Option<F<(i32, i32, i32), i32>>,
    pub response_body: Option<F<(i32, i32, i32), i32>>,
    pub http_call_response: Option<CallResponseFn>,
    pub log: Option<F<i32, ()>>,
    pub done: Option<F<i32, i32>>,
    pub delete: Option<F<i32, ()>>,
}

/// ABI versions this host speaks (the Rust SDK 0.2.5 exports 0_2_1).
const ABI_VERSIONS: [&str; 2] = ["proxy_abi_version_0_2_1", "proxy_abi_version_0_2_0"];

impl Exports {
    pub(crate) fn resolve(store: &mut Store<HostState>, instance: &Instance) -> Result<Exports> {
        let names: Vec<String> = instance.exports(&mut *store).map(|e| e.name().to_string()).collect();
        if !ABI_VERSIONS.iter().any(|v| names.iter().any(|n| n == v)) {
            let found: Vec<&String> = names.iter().filter(|n| n.starts_with("proxy_abi_version")).collect();
            bail!(
                "the module is not a proxy-wasm 0.2.x module: it exports none of {ABI_VERSIONS:?} \
                 (ABI markers found: {found:?})"
            );
        }
        let Some(context_create) = optional(store, instance, "proxy_on_context_create")? else {
            bail!("the module does not export proxy_on_context_create");
        };
        if optional::<i32, i32>(store, instance, "proxy_on_memory_allocate")?.is_none() {
            bail!("the module does not export proxy_on_memory_allocate");
        }
        Ok(Exports {
            initialize: optional(store, instance, "_initialize")?,
            start: optional(store, instance, "_start")?,
            main: optional(store, instance, "main")?,
            context_create,
            vm_start: optional(store, instance, "proxy_on_vm_start")?,
            configure: optional(store, instance, "proxy_on_configure")?,
            tick: optional(store, instance, "proxy_on_tick")?,
            queue_ready: optional(store, instance, "proxy_on_queue_ready")?,
            request_headers: optional(store, instance, "proxy_on_request_headers")?,
            request_body: optional(store, instance, "proxy_on_request_body")?,
            response_headers: optional(store, instance, "proxy_on_response_headers")?,
            response_body: optional(store, instance, "proxy_on_response_body")?,
            http_call_response: optional(store, instance, "proxy_on_http_call_response")?,
            log: optional(store, instance, "proxy_on_log")?,
            done: optional(store, instance, "proxy_on_done")?,
            delete: optional(store, instance, "proxy_on_delete")?,
        })
    }
}

/// `None` when the export is absent; an error when it exists with another signature.
fn optional<P: WasmParams, R: WasmResults>(
    store: &mut Store<HostState>,
    instance: &Instance,
    name: &str,
) -> Result<Option<TypedFunc<P, R>>> {
    let Some(func) = instance.get_func(&mut *store, name) else {
        return Ok(None);
    };
    let ty = func.ty(&*store);
    func.typed::<P, R>(&*store).map(Some).map_err(|e| {
        anyhow::anyhow!("export {name} has signature {ty}, not the proxy-wasm ABI's: {}", anyhow::Error::from(e))
    })
}
