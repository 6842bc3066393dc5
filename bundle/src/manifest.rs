//! `.manifest`: OPA's fields, plus an optional `airlock` section for settings that
//! travel with the policy (shadow mode per bundle or per rule).

use crate::BundleError;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    #[serde(default)]
    pub revision: String,
    /// Path prefixes (`a/b`) this bundle owns; absent means everything.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roots: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub airlock: Option<AirlockSettings>,
    // OPA's other fields (`metadata`, `rego_version`, `wasm`, …) are ignored, so a
    // bundle built by `opa build` still loads; `build` edits the manifest as plain JSON
    // so it keeps them. (No `#[serde(flatten)]`: it costs the wasm module ~tens of KB.)
}

/// Airlock's own manifest settings; strict, so a typo is an error, not a no-op.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AirlockSettings {
    /// `enforce` (default) or `shadow`: the whole bundle only logs what it would do.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    /// Decision `rule` names whose deny/approve is only logged ("would have …").
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shadow_rules: Vec<String>,
}

impl Manifest {
    pub fn parse(bytes: &[u8]) -> Result<Manifest, BundleError> {
        crate::canonical::refuse_bom(".manifest", bytes)?;
        let m: Manifest = serde_json::from_slice(bytes).map_err(|e| BundleError::BadManifest(e.to_string()))?;
        if let Some(mode) = m.airlock.as_ref().and_then(|a| a.mode.as_deref()) {
            if !matches!(mode, "enforce" | "shadow") {
                return Err(BundleError::BadManifest(format!("airlock.mode `{mode}` must be `enforce` or `shadow`")));
            }
        }
        Ok(m)
    }

    /// Whole-bundle shadow mode.
    pub fn shadow(&self) -> bool {
        self.airlock.as_ref().and_then(|a| a.mode.as_deref()) == Some("shadow")
    }

    pub fn shadow_rules(&self) -> &[String] {
        self.airlock.as_ref().map(|a| a.shadow_rules.as_slice()).unwrap_or(&[])
    }

    /// Whether `path` (`a/b/c`) lies under one of the roots.
    pub fn owns(&self, path: &str) -> bool {
        let Some(roots) = &self.roots else { return true };
        roots.iter().any(|r| {
            let r = r.trim_matches('/');
            r.is_empty() || path == r || path.strip_prefix(r).is_some_and(|rest| rest.starts_with('/'))
        })
    }
}
