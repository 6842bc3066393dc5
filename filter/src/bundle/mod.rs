//! Signed policy bundles in the filter: verify, compile, swap.
//!
//! All of it runs at configure time or when a polled bundle arrives, in the root
//! context — never on the request path. A new bundle is fully verified and compiled
//! before it replaces the serving one, so a refused bundle changes nothing; and since
//! one worker runs one callback at a time, the swap lands between two request
//! callbacks, never during an evaluation.

pub mod config;
pub mod poll;

use crate::config::PolicyConfig;
use crate::metrics::Counter;
use crate::policy::{ActivePolicy, Policy};
use crate::worker::Worker;
use airlock_bundle::{Limits, Verified};

/// A bundle that verified and compiled, ready to serve.
pub struct Accepted {
    pub active: ActivePolicy,
    pub verified: Verified,
    pub modules: usize,
}

/// Verify `bytes` with the configured keys, then compile them the way inline modules
/// are compiled. The error names the file or rule and the problem.
pub fn activate(bytes: &[u8], cfg: &PolicyConfig) -> Result<Accepted, String> {
    let Some(bundle_cfg) = &cfg.bundle else {
        return Err("no policy.bundle configured".into());
    };
    let (bundle, verified) =
        airlock_bundle::load(bytes, &bundle_cfg.keys, &Limits::default()).map_err(|e| e.to_string())?;
    if bundle.modules.is_empty() {
        return Err("bundle holds no Rego module".into());
    }
    // YAML would need a parser in the wasm module; `airlock bundle build` accepts it
    // on the authoring side, the filter asks for data.json.
    let data = bundle.data_document(None).map_err(|e| e.to_string())?;
    let modules = bundle.modules.iter().map(|(n, s)| (n.as_str(), s.as_str()));
    let policy = Policy::compile_modules(modules, data, cfg)?;
    let manifest = &bundle.manifest;
    if let Some(r) = manifest.shadow_rules().iter().find(|r| r.starts_with("airlock.")) {
        return Err(format!(
            "`.manifest`: airlock.shadow_rules names `{r}`; the filter's own refusals cannot be shadowed"
        ));
    }
    let active = ActivePolicy {
        policy,
        revision: manifest.revision.clone(),
        shadow: cfg.mode == crate::config::Mode::Shadow || manifest.shadow(),
        shadow_rules: manifest.shadow_rules().to_vec(),
    };
    Ok(Accepted { active, verified, modules: bundle.modules.len() })
}

impl Worker {
    /// Swap in `bytes` if it verifies and compiles; otherwise keep serving what was
    /// there. Counts `airlock.bundle.loaded` / `airlock.bundle.rejected`; the
    /// returned text is the log line.
    pub fn install_bundle(&mut self, bytes: &[u8]) -> Result<String, String> {
        // Logged so operators see what a swap costs the worker (it blocks that worker).
        let started = std::time::Instant::now();
        match activate(bytes, &self.config.policy) {
            Ok(a) => {
                self.metrics.count(Counter::BundleLoaded);
                let line = format!(
                    "policy bundle revision `{}` loaded ({} modules, {} bytes, key `{}`) in {} µs",
                    a.active.revision,
                    a.modules,
                    bytes.len(),
                    a.verified.key_id,
                    started.elapsed().as_micros()
                );
                self.set_policy(a.active);
                Ok(line)
            }
            Err(e) => {
                self.metrics.count(Counter::BundleRejected);
                let keeping = match &self.policy {
                    Some(p) => format!("keeping revision `{}`", p.revision),
                    None => "no policy loaded yet: every request is denied".into(),
                };
                Err(format!("policy bundle refused ({keeping}): {e}"))
            }
        }
    }
}

#[cfg(test)]
mod tests;
