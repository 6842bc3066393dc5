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

use airlock_filter::policy::index::RuleIndex;
use regorus::unstable::{Parser, Rule, RuleHead};
use regorus::{Engine, Value};

mod agreement;
mod bundle;
mod check;
mod instrument;
mod sources;
mod testing;

pub use check::{check, CheckReport, Problem};
use sources::Item;
pub use testing::{run_tests, Outcome, TestResult};

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
    /// The interpreter, with strict builtin errors like the filter's engine.
    pub engine: Engine,
    pub modules: Vec<ModuleInfo>,
    pub data_files: Vec<String>,
    /// Each module's file name and text, as given to the engine.
    pub sources: Vec<(String, String)>,
}

/// Load every `.rego` and data document under `dirs`. Parse errors, data that is not
/// valid JSON/YAML, conflicting data and policies the analyzer rejects are errors
/// naming the file.
pub fn load(dirs: &[PathBuf]) -> Result<Loaded, LoadError> {
    let mut engine = Engine::new();
    engine.set_strict_builtin_errors(true);
    let mut modules = Vec::new();
    let mut data_files = Vec::new();
    let mut texts = Vec::new();
    for item in sources::gather(dirs)? {
        match item {
            Item::Module { file, source } => {
                texts.push((file.clone(), source.clone()));
                modules.push(add_module(&mut engine, file, source)?)
            }
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
    Ok(Loaded { engine, modules, data_files, sources: texts })
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
    /// Every other package's rule of the same name as the entrypoint's last component.
    pub contributions: Vec<Contribution>,
}

fn to_json(v: Value) -> Result<Option<serde_json::Value>, String> {
    match v {
        Value::Undefined => Ok(None),
        v => serde_json::to_value(&v).map(Some).map_err(|e| e.to_string()),
    }
}

/// Every rule path the policy defines (`data.pkg.name`), tests excluded.
pub fn rule_paths(loaded: &Loaded) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for m in &loaded.modules {
        for (name, _) in &m.rules {
            let path = format!("{}.{name}", m.package);
            if !name.starts_with("test_") && !out.contains(&path) {
                out.push(path);
            }
        }
    }
    out
}

/// Evaluate `entrypoint` for `input` in the filter's engine (RVM bytecode, strict
/// builtin errors, the instruction budget: `airlock_filter::policy::vm`), then each
/// module's same-named rule in the same engine to show which applied.
pub fn evaluate(
    loaded: &mut Loaded,
    input: Value,
    entrypoint: &str,
    max_instructions: usize,
) -> Result<Evaluation, String> {
    let (entry_package, rule_name) = entrypoint.rsplit_once('.').unwrap_or(("data", entrypoint));
    let mut parts = Vec::new();
    for module in &loaded.modules {
        if module.package == entry_package {
            continue;
        }
        let Some((_, line)) = module.rules.iter().find(|(n, _)| n == rule_name) else { continue };
        let rule = format!("{}.{rule_name}", module.package);
        if !parts.iter().any(|(r, _, _): &(String, String, u32)| r == &rule) {
            parts.push((rule, module.file.clone(), *line));
        }
    }
    let mut names = vec![entrypoint];
    names.extend(parts.iter().map(|(r, _, _)| r.as_str()));
    let data = loaded.engine.get_data();
    let (mut vm, program) =
        airlock_filter::policy::vm::build(&mut loaded.engine, &names, data.clone(), max_instructions)?;
    let mut index = rule_index(&mut loaded.engine, &program, &data);
    index.prepare(&mut vm, &input);
    vm.set_input(input.clone());
    let decision = to_json(vm.execute_entry_point_by_name(entrypoint).map_err(|e| format!("evaluation failed: {e}"))?)?;
    let mut contributions = Vec::new();
    for (rule, file, line) in parts {
        index.prepare(&mut vm, &input);
        vm.set_input(input.clone());
        let value = vm.execute_entry_point_by_name(&rule).map_err(|e| format!("evaluating {rule}: {e}"))?;
        contributions.push(Contribution { rule, file, line, value: to_json(value)? });
    }
    Ok(Evaluation { decision, contributions })
}

/// The filter's rule index over `program` (`airlock_filter::policy::index`), as the
/// gateway builds it, so `policy eval` (and the OPA differential run through it) decides
/// with the same skipped rules.
fn rule_index(engine: &mut Engine, program: &regorus::rvm::program::Program, data: &Value) -> RuleIndex {
    match serde_json::to_value(data) {
        Ok(data) => RuleIndex::build(engine, program, &data),
        // Data the index cannot read: every rule is evaluated.
        Err(_) => RuleIndex::off(),
    }
}

/// The filter's engine for one entrypoint, to evaluate many inputs (`policy eval --inputs`).
pub struct Evaluator {
    vm: regorus::rvm::RegoVM,
    index: RuleIndex,
}

impl Evaluator {
    pub fn new(loaded: &mut Loaded, entrypoint: &str, max_instructions: usize) -> Result<Evaluator, String> {
        let data = loaded.engine.get_data();
        let (vm, program) =
            airlock_filter::policy::vm::build(&mut loaded.engine, &[entrypoint], data.clone(), max_instructions)?;
        let index = rule_index(&mut loaded.engine, &program, &data);
        Ok(Evaluator { vm, index })
    }

    /// The entrypoint's value (`None`: undefined) or the evaluation error.
    pub fn evaluate(&mut self, input: Value) -> Result<Option<serde_json::Value>, String> {
        self.index.prepare(&mut self.vm, &input);
        self.vm.set_input(input);
        to_json(self.vm.execute().map_err(|e| e.to_string())?)
    }
}
