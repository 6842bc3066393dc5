//! A bundle's content once verified: manifest, Rego modules and data documents.

use crate::archive::Entry;
use crate::manifest::Manifest;
use crate::{BundleError, MANIFEST_FILE, SIGNATURES_FILE};

/// Converts a YAML data file to JSON; supplied by readers that accept YAML.
pub type YamlToJson = dyn Fn(&[u8]) -> Result<serde_json::Value, String>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataFormat {
    Json,
    Yaml,
}

/// A data document and where it mounts under `data` (`iam/data.json` → `["iam"]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataFile {
    pub name: String,
    pub mount: Vec<String>,
    pub format: DataFormat,
    pub bytes: Vec<u8>,
}

#[derive(Debug, Clone)]
pub struct Bundle {
    pub manifest: Manifest,
    /// `(file name, source)`, in archive order.
    pub modules: Vec<(String, String)>,
    pub data: Vec<DataFile>,
    /// Every file as unpacked (for `inspect` and re-signing).
    pub entries: Vec<Entry>,
}

impl Bundle {
    /// Sort files into manifest, modules and data; check they lie under the roots.
    /// Other files are kept in `entries` but not interpreted (as OPA ignores them).
    pub fn parse(entries: Vec<Entry>) -> Result<Bundle, BundleError> {
        let mut manifest = Manifest::default();
        let mut modules = Vec::new();
        let mut data = Vec::new();
        for e in &entries {
            let (dir, file) = match e.name.rsplit_once('/') {
                Some((d, f)) => (d, f),
                None => ("", e.name.as_str()),
            };
            if e.name == MANIFEST_FILE {
                manifest = Manifest::parse(&e.bytes)?;
            } else if e.name == SIGNATURES_FILE {
                continue;
            } else if file.ends_with(".rego") {
                let source = String::from_utf8(e.bytes.clone())
                    .map_err(|_| BundleError::BadFile { name: e.name.clone(), why: "not UTF-8".into() })?;
                modules.push((e.name.clone(), source));
            } else if let Some(format) = data_format(file) {
                let mount = if dir.is_empty() { Vec::new() } else { dir.split('/').map(String::from).collect() };
                data.push(DataFile { name: e.name.clone(), mount, format, bytes: e.bytes.clone() });
            }
        }
        let bundle = Bundle { manifest, modules, data, entries };
        bundle.check_roots()?;
        Ok(bundle)
    }

    fn check_roots(&self) -> Result<(), BundleError> {
        for d in &self.data {
            let path = d.mount.join("/");
            // A root-level data.json may only carry keys under the roots; checked on merge.
            if !path.is_empty() && !self.manifest.owns(&path) {
                return Err(outside_roots(&d.name, &path));
            }
        }
        for (name, source) in &self.modules {
            if let Some(package) = package_of(source) {
                let path = package.replace('.', "/");
                if !self.manifest.owns(&path) {
                    return Err(outside_roots(name, &path));
                }
            }
        }
        Ok(())
    }

    /// The merged data document. `yaml` converts a YAML file (the CLI passes one;
    /// the filter passes `None` and YAML is refused).
    pub fn data_document(&self, yaml: Option<&YamlToJson>) -> Result<serde_json::Value, BundleError> {
        let mut root = serde_json::Value::Object(serde_json::Map::new());
        for d in &self.data {
            let doc = match (d.format, yaml) {
                (DataFormat::Json, _) => {
                    crate::canonical::refuse_bom(&d.name, &d.bytes)?;
                    serde_json::from_slice(&d.bytes)
                        .map_err(|e| BundleError::BadFile { name: d.name.clone(), why: format!("invalid JSON: {e}") })?
                }
                (DataFormat::Yaml, Some(convert)) => {
                    convert(&d.bytes).map_err(|why| BundleError::BadFile { name: d.name.clone(), why })?
                }
                (DataFormat::Yaml, None) => {
                    return Err(BundleError::Unsupported {
                        name: d.name.clone(),
                        why: "YAML data is not accepted here; use data.json".into(),
                    })
                }
            };
            if !doc.is_object() {
                return Err(BundleError::BadFile { name: d.name.clone(), why: "data must be a JSON object".into() });
            }
            if d.mount.is_empty() {
                if let Some(key) = doc.as_object().and_then(|o| o.keys().find(|k| !self.manifest.owns(k))) {
                    return Err(outside_roots(&d.name, key));
                }
            }
            mount(&mut root, &d.mount, doc, &d.name)?;
        }
        Ok(root)
    }
}

fn outside_roots(name: &str, path: &str) -> BundleError {
    BundleError::BadFile { name: name.to_string(), why: format!("`{path}` is outside the manifest's roots") }
}

fn data_format(file: &str) -> Option<DataFormat> {
    match file {
        "data.json" => Some(DataFormat::Json),
        "data.yaml" | "data.yml" => Some(DataFormat::Yaml),
        _ => None,
    }
}

/// The package of a module (`package a.b` → `a.b`), from its first `package` line.
/// A module without one fails to compile later anyway.
pub fn package_of(source: &str) -> Option<String> {
    source.lines().map(str::trim_start).find_map(|l| {
        let rest = l.strip_prefix("package")?;
        rest.starts_with(char::is_whitespace).then(|| rest.split_whitespace().next().unwrap_or("").to_string())
    })
}

/// Merge `doc` at `path` under `root`, objects deeply (as OPA does); two files giving
/// the same key a non-object value is an error naming the key.
fn mount(root: &mut serde_json::Value, path: &[String], doc: serde_json::Value, name: &str) -> Result<(), BundleError> {
    let mut wrapped = doc;
    for seg in path.iter().rev() {
        let mut m = serde_json::Map::new();
        m.insert(seg.clone(), wrapped);
        wrapped = serde_json::Value::Object(m);
    }
    merge(root, wrapped, name, "")
}

fn merge(target: &mut serde_json::Value, src: serde_json::Value, name: &str, at: &str) -> Result<(), BundleError> {
    match (target, src) {
        (serde_json::Value::Object(t), serde_json::Value::Object(s)) => {
            for (k, v) in s {
                let key = if at.is_empty() { k.clone() } else { format!("{at}/{k}") };
                match t.get_mut(&k) {
                    Some(existing) => merge(existing, v, name, &key)?,
                    None => {
                        t.insert(k, v);
                    }
                }
            }
            Ok(())
        }
        _ => Err(BundleError::BadFile { name: name.to_string(), why: format!("data key `{at}` is defined twice") }),
    }
}
