//! `policy test`: run every `test_*` rule so that a test passes only when the filter's
//! engine agrees with it.
//!
//! - A test without `with` runs in the filter's engine itself (RVM bytecode, as the
//!   gateway runs it); the interpreter runs it too, and a difference is an error.
//! - A test with `with` runs in the interpreter (the RVM has no `with`), rewritten so
//!   that every `with` statement first checks the rules it reads in both engines with
//!   the same input and data (`instrument.rs`, `agreement.rs`). A test whose `with`
//!   cannot be checked that way is an error saying why.

use regorus::{Engine, Value};

use super::agreement::Checker;
use super::instrument::{self, Rules};
use super::Loaded;

/// Outcome of one `test_*` rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Pass,
    /// Undefined or false.
    Fail,
    /// Evaluation raised an error, the engines disagree, or the test cannot be checked.
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

/// The budget tests run with: the filter's default `policy.max_instructions`.
pub const TEST_MAX_INSTRUCTIONS: usize = 100_000;

/// The entrypoint every `with` statement is also checked at, when the policy has it.
const ENTRYPOINT: &str = "data.airlock.decision";

fn passed(v: &Result<Value, String>) -> Outcome {
    match v {
        Ok(Value::Undefined) | Ok(Value::Bool(false)) => Outcome::Fail,
        Ok(_) => Outcome::Pass,
        Err(e) => Outcome::Error(e.clone()),
    }
}

/// Run every rule named `test_*`, in file and line order. A test passes when it is
/// defined and not `false` (OPA's rule) in the filter's engine.
pub fn run_tests(loaded: &mut Loaded) -> Vec<TestResult> {
    let paths = super::rule_paths(loaded);
    let rules = Rules { paths: &paths, entrypoint: Some(ENTRYPOINT) };

    // The tests' engine: every module, test modules rewritten.
    let mut tests = Engine::new();
    tests.set_strict_builtin_errors(true);
    let mut with_tests: Vec<String> = Vec::new();
    let mut unverifiable: Vec<(String, String)> = Vec::new();
    let mut load_error = None;
    {
        let modules = loaded.engine.get_modules().clone();
        for (i, (file, source)) in loaded.sources.iter().enumerate() {
            let package = loaded.modules.get(i).map(|m| m.package.clone()).unwrap_or_default();
            let text = match modules.get(i) {
                Some(module) => {
                    let done = instrument::instrument(module, &package, source, &rules);
                    with_tests.extend(done.with_tests.iter().map(|t| format!("{package}.{t}")));
                    unverifiable.extend(done.unverifiable.into_iter().map(|(t, why)| (format!("{package}.{t}"), why)));
                    done.source
                }
                None => source.clone(),
            };
            if let Err(e) = tests.add_policy(file.clone(), text) {
                load_error.get_or_insert(format!("{file}: rewriting `with` for the filter's engine failed: {e}"));
            }
        }
    }
    let data = loaded.engine.get_data();
    if let Err(e) = tests.add_data(data.clone()) {
        load_error.get_or_insert(format!("data: {e}"));
    }
    let checker = Checker::new(loaded.engine.clone(), data.clone(), TEST_MAX_INSTRUCTIONS);
    if let Err(e) = checker.register(&mut tests) {
        load_error.get_or_insert(format!("agreement check: {e}"));
    }

    let mut results = Vec::new();
    let modules = loaded.modules.clone();
    for module in &modules {
        for (rule, line) in &module.rules {
            if !rule.starts_with("test_") {
                continue;
            }
            let name = format!("{}.{rule}", module.package);
            if results.iter().any(|r: &TestResult| r.name == name) {
                continue; // the same test split over several files or definitions
            }
            let outcome = if let Some(e) = &load_error {
                Outcome::Error(e.clone())
            } else if let Some((_, why)) = unverifiable.iter().find(|(t, _)| t == &name) {
                Outcome::Error(why.clone())
            } else if with_tests.contains(&name) {
                passed(&tests.eval_rule(name.clone()).map_err(|e| e.to_string()))
            } else {
                in_both_engines(loaded, &name, &data)
            };
            results.push(TestResult { name, file: module.file.clone(), line: *line, outcome });
        }
    }
    results
}

/// A test without `with`: the filter's engine decides; the interpreter must agree.
fn in_both_engines(loaded: &mut Loaded, name: &str, data: &Value) -> Outcome {
    let filter = airlock_filter::policy::vm::build(&mut loaded.engine, &[name], data.clone(), TEST_MAX_INSTRUCTIONS)
        .and_then(|(mut vm, _)| vm.execute_entry_point_by_name(name).map_err(|e| e.to_string()));
    let interpreted = loaded.engine.eval_rule(name.to_string()).map_err(|e| e.to_string());
    let (f, i) = (passed(&filter), passed(&interpreted));
    match (&f, &i) {
        (Outcome::Error(e), _) => Outcome::Error(format!("in the filter's engine: {e}")),
        _ if f != i => Outcome::Error(format!(
            "the filter's engine gives {} where the interpreter gives {}",
            describe(&filter),
            describe(&interpreted)
        )),
        _ => f,
    }
}

fn describe(v: &Result<Value, String>) -> String {
    match v {
        Ok(Value::Undefined) => "undefined".into(),
        Ok(v) => serde_json::to_string(v).unwrap_or_default(),
        Err(e) => format!("an error ({e})"),
    }
}
