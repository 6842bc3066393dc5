//! Rendering the shipped Envoy configs: `${NAME}` placeholders replaced verbatim.
//!
//! The same rule as `scripts/render-envoy.sh` (which uses `envsubst`): every placeholder is
//! `${UPPER_CASE_NAME}`, each must be given a value, and nothing that looks like a
//! placeholder may survive. Values are inserted as they are, so they must be YAML scalars;
//! the plugin configuration is passed as a JSON string literal ([`yaml_string`]), which is
//! also a valid YAML double-quoted scalar.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

/// Values for a template's placeholders, by name (without `${` `}`).
pub type Vars = BTreeMap<String, String>;

/// The directory of the shipped configs (`<workspace>/envoy`).
pub fn envoy_dir() -> PathBuf {
    crate::wasm::workspace_root().join("envoy")
}

/// Reads `envoy/<name>`.
pub fn read_shipped(name: &str) -> anyhow::Result<String> {
    let path = envoy_dir().join(name);
    std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))
}

/// A string as a JSON string literal: safe as a YAML double-quoted scalar.
pub fn yaml_string(value: &str) -> String {
    // Serializing a &str cannot fail; fall back to a debug quote just in case.
    serde_json::to_string(value).unwrap_or_else(|_| format!("{value:?}"))
}

/// The placeholder names a template uses.
pub fn placeholders(template: &str) -> anyhow::Result<BTreeSet<String>> {
    let mut names = BTreeSet::new();
    let mut rest = template;
    while let Some(start) = rest.find("${") {
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            bail!("unterminated placeholder near {:?}", excerpt(&rest[start..]));
        };
        let name = &after[..end];
        if !is_name(name) {
            bail!("malformed placeholder ${{{name}}} (want ${{UPPER_CASE}})");
        }
        names.insert(name.to_string());
        rest = &after[end + 1..];
    }
    Ok(names)
}

/// Replaces every placeholder; an unknown placeholder is an error (names it).
pub fn render(template: &str, vars: &Vars) -> anyhow::Result<String> {
    let needed = placeholders(template)?;
    let missing: Vec<&String> = needed.iter().filter(|n| !vars.contains_key(*n)).collect();
    if !missing.is_empty() {
        bail!("no value for placeholder(s) {missing:?}");
    }
    let mut out = String::with_capacity(template.len() + 256);
    let mut rest = template;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find('}').with_context(|| "unterminated placeholder".to_string())?;
        let name = &after[..end];
        let value = vars.get(name).with_context(|| format!("no value for ${{{name}}}"))?;
        out.push_str(value);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Renders `template` and writes it to `dir/file_name`; returns the written path.
pub fn render_to(template: &str, vars: &Vars, dir: &Path, file_name: &str) -> anyhow::Result<PathBuf> {
    let rendered = render(template, vars)?;
    let path = dir.join(file_name);
    std::fs::write(&path, rendered).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

fn is_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_uppercase())
        && chars.all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}

fn excerpt(s: &str) -> String {
    s.chars().take(40).collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn renders_and_refuses_unknown_names() {
        let mut vars = Vars::new();
        vars.insert("AIRLOCK_PORT".into(), "0".into());
        assert_eq!(render("port: ${AIRLOCK_PORT}\n", &vars).unwrap(), "port: 0\n");
        assert!(render("x: ${AIRLOCK_OTHER}", &vars).is_err());
        assert!(render("x: ${lower}", &vars).is_err());
        assert!(render("x: ${AIRLOCK_PORT", &vars).is_err());
    }

    #[test]
    fn json_literal_is_a_yaml_scalar() {
        assert_eq!(yaml_string("{\"a\": \"b\"}\n"), "\"{\\\"a\\\": \\\"b\\\"}\\n\"");
    }
}
