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

use std::path::{Path, PathBuf};
use std::sync::Arc;

use regorus::unstable::{Parser, Rule, RuleHead};
use regorus::{Engine, Value};

mod bundle;
mod check;
mod sources;

pub use check::{check, CheckReport, Problem};
use sources::Item;

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
    for item in sources::gather(dirs)? {
        match item {
            Item::Module { file, source } => modules.push(add_module(&mut engine, file, source)?),
            Item::Data { file, files, value } => {
                engine.add_data(value).map_err(|e| LoadError {
                    file,
                    message: format!("data conflicts with data already loaded: {e}"),
                })?;
                data_files.extend(files);
            }
            Item::Broken(e) => return Err(e),
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
