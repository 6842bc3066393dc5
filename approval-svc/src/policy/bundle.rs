//! A `.tar.gz` bundle as a policy source for `policy test` / `policy eval`: its modules
//! and data load as a directory's would, named `<bundle>/<file>` in reports. Authoring
//! tools do not verify the signature (they have no key); `airlock bundle verify` does.

use std::path::Path;

use regorus::{Engine, Value};

use super::{add_module, load_error, LoadError, ModuleInfo};

pub(super) fn load_into(
    file: &Path,
    engine: &mut Engine,
    modules: &mut Vec<ModuleInfo>,
    data_files: &mut Vec<String>,
) -> Result<(), LoadError> {
    let bytes = std::fs::read(file).map_err(|e| load_error(file, e))?;
    let entries =
        airlock_bundle::read_archive(&bytes, &airlock_bundle::Limits::default()).map_err(|e| load_error(file, e))?;
    let bundle = airlock_bundle::Bundle::parse(entries).map_err(|e| load_error(file, e))?;
    let shown = |name: &str| format!("{}/{name}", file.display());
    for (name, source) in &bundle.modules {
        modules.push(add_module(engine, shown(name), source.clone())?);
    }
    let yaml = |bytes: &[u8]| -> Result<serde_json::Value, String> {
        let text = std::str::from_utf8(bytes).map_err(|_| "not UTF-8".to_string())?;
        let docs = yaml_rust2::YamlLoader::load_from_str(text).map_err(|e| format!("invalid YAML: {e}"))?;
        match docs.into_iter().next() {
            Some(doc) => super::yaml_to_json(doc),
            None => Ok(serde_json::json!({})),
        }
    };
    let data = bundle.data_document(Some(&yaml)).map_err(|e| load_error(file, e))?;
    engine
        .add_data(Value::from(data))
        .map_err(|e| load_error(file, format!("data conflicts with data already loaded: {e}")))?;
    data_files.extend(bundle.data.iter().map(|d| shown(&d.name)));
    Ok(())
}
