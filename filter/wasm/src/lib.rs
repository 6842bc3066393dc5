//! The Airlock filter as a proxy-wasm module: binds the host-agnostic core
//! (`airlock_filter`) to Envoy's hostcalls. Thin on purpose — every decision is made in
//! the core, which is tested natively. `scripts/build-wasm.sh` builds and optimises it.
#![cfg(target_arch = "wasm32")]

mod host;
mod http;
mod poll;
mod root;

use proxy_wasm::types::LogLevel;

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    // A panic aborts the VM (panic = "abort"); log why first. Envoy's
    // failure_policy (FAIL_CLOSED / FAIL_RELOAD) then answers 503: never open.
    std::panic::set_hook(Box::new(|info| {
        let _ = proxy_wasm::hostcalls::log(LogLevel::Critical, &format!("airlock: panic: {info}"));
    }));
    proxy_wasm::set_root_context(|_| -> Box<dyn proxy_wasm::traits::RootContext> { Box::new(root::Root::default()) });
}}
