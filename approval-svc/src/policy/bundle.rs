//! A `.tar.gz` bundle as a policy source for `policy test|eval|check`: its modules and
//! data load as a directory's would, named `<bundle>/<file>` in reports. Authoring
//! tools do not verify the signature (they have no key); `airlock bundle verify` does.

use std::path::Path;

use regorus::Value;

use super::sources::{yaml_to_json, Item};
use super::{load_error, LoadError};

/// The bundle's modules, then its merged data document. A bundle that does not unpack
/// is an error; data that does not merge is a broken item, so `check` goes on.
pub(super) fn gather(file: &Path, items: &mut Vec<Item>) -> Result<(), LoadError> {
    let bytes = std::fs::read(file).map_err(|e| load_error(file, e))?;
    let entries =
        airlock_bundle::read_archive(&bytes, &airlock_bundle::Limits::default()).map_err(|e| load_error(file, e))?;
    let bundle = airlock_bundle::Bundle::parse(entries).map_err(|e| load_error(file, e))?;
    let shown = |name: &str| format!("{}/{name}", file.display());
    for (name, source) in &bundle.modules {
        items.push(Item::Module { file: shown(name), source: source.clone() });
    }
    let yaml = |bytes: &[u8]| -> Result<serde_json::Value, String> {
        let text = std::str::from_utf8(bytes).map_err(|_| "not UTF-8".to_string())?;
        let docs = yaml_rust2::YamlLoader::load_from_str(text).map_err(|e| format!("invalid YAML: {e}"))?;
        match docs.into_iter().next() {
            Some(doc) => yaml_to_json(doc),
            None => Ok(serde_json::json!({})),
        }
    };
    items.push(match bundle.data_document(Some(&yaml)) {
        Ok(data) => Item::Data {
            file: file.display().to_string(),
            files: bundle.data.iter().map(|d| shown(&d.name)).collect(),
            value: Value::from(data),
        },
        Err(e) => Item::Broken(load_error(file, e)),
    });
    Ok(())
}
