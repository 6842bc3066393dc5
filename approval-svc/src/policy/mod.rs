//! Policy authoring: load Rego directories the way OPA loads bundles, run `test_*` rules,
//! evaluate an input the way the gateway filter does.
//!
//! Loading: every `*.rego` under each directory is a module; every `data.json` /
//! `data.yaml` / `data.yml` is placed at its directory path relative to the directory
//! given (`iam/data.json` → `data.iam`), as in OPA bundles. A `.tar.gz` bundle file is
//! accepted wherever a directory is (`bundle.rs`).
//!
//! Line numbers come from regorus's parsed modules (`Engine::get_modules`, an unstable
//! API in 0.14.1): each test is reported at the line of its first definition.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use regorus::unstable::{Parser, Rule, RuleHead};
use regorus::{Engine, Value};

mod bundle;

/// A directory could not be loaded: the file and what is wrong with it.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {message}")]
pub struct LoadError {
    pub file: String,
    pub message: String,
}

fn load_error(file: &Path, message: impl std::fmt::Display) -> LoadError {
    LoadError { file: file.display().to_string(), message: message.to_string() }
}

/// One loaded module: its file, package (`data.x.y`) and rules with the line of their
/// first definition.
#[derive(Debug, Clone)]
pub struct ModuleInfo {
    pub file: String,
    pub package: String,
    pub rules: Vec<(String, u32)>,
}

/// Every module and data document of the given directories, in one engine.
pub struct Loaded {
    pub engine: Engine,
    pub modules: Vec<ModuleInfo>,
    pub data_files: Vec<String>,
}

/// Load every `.rego` and data document under `dirs`. Parse errors, data that is not
/// valid JSON/YAML, conflicting data and policies the analyzer rejects are errors
/// naming the file.
pub fn load(dirs: &[PathBuf]) -> Result<Loaded, LoadError> {
    let mut engine = Engine::new();
    let mut modules = Vec::new();
    let mut data_files = Vec::new();
    for dir in dirs {
        if dir.is_file() {
            bundle::load_into(dir, &mut engine, &mut modules, &mut data_files)?;
            continue;
        }
        if !dir.is_dir() {
            return Err(load_error(dir, "not a directory or a bundle file"));
        }
        let mut files = Vec::new();
        collect(dir, &mut files)?;
        files.sort();
        for file in files {
            let name = file.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string();
            if name.ends_with(".rego") {
                let source = std::fs::read_to_string(&file).map_err(|e| load_error(&file, e))?;
                modules.push(add_module(&mut engine, file.display().to_string(), source)?);
            } else if matches!(name.as_str(), "data.json" | "data.yaml" | "data.yml") {
                let doc = read_data(&file)?;
                let rel = file.parent().and_then(|p| p.strip_prefix(dir).ok()).unwrap_or(Path::new(""));
                let mut value = doc;
                let segments: Vec<String> =
                    rel.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect();
                for seg in segments.iter().rev() {
                    let mut map = BTreeMap::new();
                    map.insert(Value::from(seg.as_str()), value);
                    value = Value::from(map);
                }
                engine
                    .add_data(value)
                    .map_err(|e| load_error(&file, format!("data conflicts with data already loaded: {e}")))?;
                data_files.push(file.display().to_string());
            }
        }
    }
    // Rule conflicts, undefined functions and the like surface when the engine first
    // prepares for evaluation; do it now so they are load errors, not test failures.
    if let Err(e) = engine.eval_query("true".to_string(), false) {
        let message = e.to_string();
        let file = modules
            .iter()
            .find(|m| message.contains(&m.file))
            .map(|m| m.file.clone())
            .unwrap_or_else(|| "policy".to_string());
        return Err(LoadError { file, message });
    }
    Ok(Loaded { engine, modules, data_files })
}

/// Add one module; its package and rule lines are read back from regorus.
fn add_module(engine: &mut Engine, display: String, source: String) -> Result<ModuleInfo, LoadError> {
    let package = engine
        .add_policy(display.clone(), source)
        .map_err(|e| LoadError { file: display.clone(), message: e.to_string() })?;
    let rules = engine.get_modules().last().map(|m| rule_lines(&m.policy)).unwrap_or_default();
    Ok(ModuleInfo { file: display, package, rules })
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

/// Rule names (first path component of the head) with the line of their first definition.
fn rule_lines(rules: &[regorus::unstable::Ref<Rule>]) -> Vec<(String, u32)> {
    let mut out: Vec<(String, u32)> = Vec::new();
    for rule in rules {
        let refr = match rule.as_ref() {
            Rule::Spec { head: RuleHead::Compr { refr, .. } | RuleHead::Set { refr, .. }, .. } => refr,
            Rule::Default { refr, .. } => refr,
            // Functions are never tests or decisions.
            Rule::Spec { head: RuleHead::Func { .. }, .. } => continue,
        };
        let Ok(components) = Parser::get_path_ref_components(refr) else { continue };
        let Some(first) = components.first() else { continue };
        let name = first.text().to_string();
        if !out.iter().any(|(n, _)| n == &name) {
            out.push((name, rule.span().line));
        }
    }
    out
}

/// Outcome of one `test_*` rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Pass,
    /// Undefined or false.
    Fail,
    /// Evaluation raised an error.
    Error(String),
}

#[derive(Debug, Clone)]
pub struct TestResult {
    /// `data.<package>.test_name`
    pub name: String,
    pub file: String,
    pub line: u32,
    pub outcome: Outcome,
}

/// Run every rule named `test_*`, in file and line order. A test passes when it is
/// defined and not `false` (OPA's rule).
pub fn run_tests(loaded: &mut Loaded) -> Vec<TestResult> {
    let mut results = Vec::new();
    for module in &loaded.modules {
        for (rule, line) in &module.rules {
            if !rule.starts_with("test_") {
                continue;
            }
            let name = format!("{}.{rule}", module.package);
            if results.iter().any(|r: &TestResult| r.name == name) {
                continue; // the same test split over several files or definitions
            }
            let outcome = match loaded.engine.eval_rule(name.clone()) {
                Ok(Value::Undefined) | Ok(Value::Bool(false)) => Outcome::Fail,
                Ok(_) => Outcome::Pass,
                Err(e) => Outcome::Error(e.to_string()),
            };
            results.push(TestResult { name, file: module.file.clone(), line: *line, outcome });
        }
    }
    results
}

/// One rule module's own decision, for explaining the entrypoint's.
#[derive(Debug, Clone)]
pub struct Contribution {
    /// `data.<package>.<rule>`
    pub rule: String,
    pub file: String,
    pub line: u32,
    /// `None` when the rule did not apply (undefined).
    pub value: Option<serde_json::Value>,
}

/// What `policy eval` found.
#[derive(Debug, Clone)]
pub struct Evaluation {
    /// The entrypoint's value as the filter computes it (RVM); `None` = undefined.
    pub decision: Option<serde_json::Value>,
    /// The same entrypoint evaluated by the tree-walking interpreter, when it differs.
    pub interpreter_disagrees: Option<Option<serde_json::Value>>,
    /// Every other package's rule of the same name as the entrypoint's last component.
    pub contributions: Vec<Contribution>,
}

fn to_json(v: Value) -> Result<Option<serde_json::Value>, String> {
    match v {
        Value::Undefined => Ok(None),
        v => serde_json::to_value(&v).map(Some).map_err(|e| e.to_string()),
    }
}

/// Evaluate `entrypoint` for `input` the way the filter does (RVM bytecode with an
/// instruction budget), then each module's same-named rule to show which applied.
pub fn evaluate(
    loaded: &mut Loaded,
    input: Value,
    entrypoint: &str,
    max_instructions: usize,
) -> Result<Evaluation, String> {
    let entry: regorus::Rc<str> = entrypoint.into();
    let compiled = loaded
        .engine
        .compile_with_entrypoint(&entry)
        .map_err(|e| format!("entrypoint `{entrypoint}` does not compile: {e}"))?;
    let program: Arc<_> = regorus::languages::rego::compiler::Compiler::compile_from_policy(&compiled, &[entrypoint])
        .map_err(|e| format!("entrypoint `{entrypoint}` cannot be compiled to bytecode: {e}"))?;
    let mut vm = regorus::rvm::RegoVM::new_with_policy(compiled);
    vm.load_program(program);
    vm.set_data(loaded.engine.get_data()).map_err(|e| format!("data rejected by the VM: {e}"))?;
    vm.set_max_instructions(max_instructions);
    vm.set_input(input.clone());
    let decision = to_json(vm.execute().map_err(|e| format!("evaluation failed: {e}"))?)?;

    loaded.engine.set_input(input);
    let interpreted = loaded.engine.eval_rule(entrypoint.to_string()).map_err(|e| format!("evaluation failed: {e}"))?;
    let interpreted = to_json(interpreted)?;
    let interpreter_disagrees = (interpreted != decision).then_some(interpreted);

    let (entry_package, rule_name) = entrypoint.rsplit_once('.').unwrap_or(("data", entrypoint));
    let mut contributions = Vec::new();
    let modules = loaded.modules.clone();
    for module in &modules {
        if module.package == entry_package {
            continue;
        }
        let Some((_, line)) = module.rules.iter().find(|(n, _)| n == rule_name) else { continue };
        let rule = format!("{}.{rule_name}", module.package);
        if contributions.iter().any(|c: &Contribution| c.rule == rule) {
            continue;
        }
        let value = loaded.engine.eval_rule(rule.clone()).map_err(|e| format!("evaluating {rule}: {e}"))?;
        contributions.push(Contribution { rule, file: module.file.clone(), line: *line, value: to_json(value)? });
    }
    Ok(Evaluation { decision, interpreter_disagrees, contributions })
}
