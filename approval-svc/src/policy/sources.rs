//! What a policy directory or bundle holds, before anything is parsed: its Rego sources
//! and its data documents placed at their paths. `load` stops at the first file that
//! cannot be read; `check` reports every one, so unreadable files are items too.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use regorus::Value;

use super::{load_error, LoadError};

/// One file's contribution, in the order files are loaded (sorted per directory).
pub enum Item {
    /// A `.rego` file: the name reports use, and its text.
    Module { file: String, source: String },
    /// A data document already nested under its directory path (`iam/data.json` →
    /// `{"iam": …}`); `files` are the data files it came from (several for a bundle).
    Data { file: String, files: Vec<String>, value: Value },
    /// A file that could not be read or whose data does not parse.
    Broken(LoadError),
}

/// Every module and data document under `paths` (directories or bundle files). A path
/// that is neither, or a directory that cannot be listed, is an error.
pub fn gather(paths: &[PathBuf]) -> Result<Vec<Item>, LoadError> {
    let mut items = Vec::new();
    for path in paths {
        if path.is_file() {
            super::bundle::gather(path, &mut items)?;
        } else if path.is_dir() {
            gather_dir(path, &mut items)?;
        } else {
            return Err(load_error(path, "not a directory or a bundle file"));
        }
    }
    Ok(items)
}

fn gather_dir(dir: &Path, items: &mut Vec<Item>) -> Result<(), LoadError> {
    let mut files = Vec::new();
    collect(dir, &mut files)?;
    files.sort();
    for file in files {
        let name = file.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string();
        if name.ends_with(".rego") {
            items.push(match std::fs::read_to_string(&file) {
                Ok(source) => Item::Module { file: file.display().to_string(), source },
                Err(e) => Item::Broken(load_error(&file, e)),
            });
        } else if matches!(name.as_str(), "data.json" | "data.yaml" | "data.yml") {
            let doc = match read_data(&file) {
                Ok(doc) => doc,
                Err(e) => {
                    items.push(Item::Broken(e));
                    continue;
                }
            };
            let rel = file.parent().and_then(|p| p.strip_prefix(dir).ok()).unwrap_or(Path::new(""));
            let mut value = doc;
            let segments: Vec<String> =
                rel.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect();
            for seg in segments.iter().rev() {
                let mut map = BTreeMap::new();
                map.insert(Value::from(seg.as_str()), value);
                value = Value::from(map);
            }
            let shown = file.display().to_string();
            items.push(Item::Data { file: shown.clone(), files: vec![shown], value });
        }
    }
    Ok(())
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), LoadError> {
    for entry in std::fs::read_dir(dir).map_err(|e| load_error(dir, e))? {
        let path = entry.map_err(|e| load_error(dir, e))?.path();
        if path.is_dir() {
            collect(&path, out)?;
        } else {
            out.push(path);
        }
    }
    Ok(())
}

fn read_data(file: &Path) -> Result<Value, LoadError> {
    let text = std::fs::read_to_string(file).map_err(|e| load_error(file, e))?;
    let json: serde_json::Value = if file.extension().is_some_and(|e| e == "json") {
        serde_json::from_str(&text).map_err(|e| load_error(file, format!("invalid JSON: {e}")))?
    } else {
        let docs =
            yaml_rust2::YamlLoader::load_from_str(&text).map_err(|e| load_error(file, format!("invalid YAML: {e}")))?;
        match docs.into_iter().next() {
            Some(doc) => yaml_to_json(doc).map_err(|e| load_error(file, e))?,
            None => serde_json::json!({}),
        }
    };
    if !json.is_object() {
        return Err(load_error(file, "data document must be an object"));
    }
    Ok(Value::from(json))
}

pub(crate) fn yaml_to_json(y: yaml_rust2::Yaml) -> Result<serde_json::Value, String> {
    use yaml_rust2::Yaml;
    Ok(match y {
        Yaml::Null => serde_json::Value::Null,
        Yaml::Boolean(b) => b.into(),
        Yaml::Integer(i) => i.into(),
        Yaml::Real(s) => {
            let f: f64 = s.parse().map_err(|_| format!("invalid number `{s}`"))?;
            serde_json::Number::from_f64(f).map(serde_json::Value::Number).ok_or(format!("invalid number `{s}`"))?
        }
        Yaml::String(s) => s.into(),
        Yaml::Array(a) => a.into_iter().map(yaml_to_json).collect::<Result<Vec<_>, _>>()?.into(),
        Yaml::Hash(h) => {
            let mut map = serde_json::Map::new();
            for (k, v) in h {
                let key = match k {
                    Yaml::String(s) => s,
                    Yaml::Integer(i) => i.to_string(),
                    Yaml::Boolean(b) => b.to_string(),
                    Yaml::Real(s) => s,
                    other => return Err(format!("unsupported YAML key {other:?}")),
                };
                map.insert(key, yaml_to_json(v)?);
            }
            serde_json::Value::Object(map)
        }
        other => return Err(format!("unsupported YAML value {other:?}")),
    })
}
