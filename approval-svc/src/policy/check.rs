//! `policy check`: parse every module, load the data, analyze the whole policy and
//! compile the entrypoint to RVM bytecode exactly as the filter's `Policy::compile`
//! does — everything short of evaluating. Every file that fails to parse is reported,
//! not only the first: each module is parsed on its own first, and the policy as a
//! whole is only compiled when they all parse (a parse error would otherwise be
//! reported twice).

use std::collections::BTreeSet;
use std::path::PathBuf;

use airlock_filter::policy::index::{RuleIndex, Summary};
use regorus::unstable::{Parser, Rule, RuleHead};
use regorus::Engine;

use super::sources::{self, Item};
use super::LoadError;

/// The entrypoint checked when none is given and a module declares `package airlock`.
const DEFAULT_ENTRYPOINT: &str = "data.airlock.decision";

/// One problem: where (`file:line:col` when regorus or serde say, else the file or the
/// entrypoint) and what, with regorus's source excerpt when it gave one.
#[derive(Debug, Clone)]
pub struct Problem {
    pub location: String,
    pub message: String,
    pub excerpt: Vec<String>,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: error: {}", self.location, self.message)?;
        for line in &self.excerpt {
            write!(f, "\n{line}")?;
        }
        Ok(())
    }
}

/// What `check` found.
#[derive(Debug, Default)]
pub struct CheckReport {
    pub modules: usize,
    /// Distinct rules and functions (`package.name`), tests included.
    pub rules: usize,
    /// The entrypoint compiled, if one was checked.
    pub entrypoint: Option<String>,
    pub problems: Vec<Problem>,
    /// Accepted here, refused by the filter (YAML data).
    pub warnings: Vec<String>,
    /// What the filter's rule index can skip (`airlock_filter::policy::index`).
    pub index: Option<airlock_filter::policy::index::Summary>,
}

/// Check the directories or bundles in `paths`. `entrypoint`: the rule the filter
/// evaluates; without it, `data.airlock.decision` when a module is `package airlock`.
pub fn check(paths: &[PathBuf], entrypoint: Option<&str>) -> CheckReport {
    let mut report = CheckReport::default();
    let items = match sources::gather(paths) {
        Ok(items) => items,
        Err(e) => {
            report.problems.push(from_load_error(e));
            return report;
        }
    };
    let mut rules = BTreeSet::new();
    let mut packages = BTreeSet::new();
    for item in &items {
        match item {
            Item::Module { file, source } => {
                report.modules += 1;
                let mut engine = Engine::new();
                match engine.add_policy(file.clone(), source.clone()) {
                    Ok(package) => {
                        let module_rules = engine.get_modules().last().map(|m| rule_names(&m.policy));
                        rules.extend(module_rules.unwrap_or_default().into_iter().map(|r| format!("{package}.{r}")));
                        packages.insert(package);
                    }
                    Err(e) => report.problems.push(locate(file, &format!("{e:#}"))),
                }
            }
            Item::Data { files, .. } => {
                for f in files.iter().filter(|f| f.ends_with(".yaml") || f.ends_with(".yml")) {
                    report.warnings.push(format!(
                        "{f}: the filter refuses YAML data (no YAML parser in the wasm module); convert it to data.json before shipping"
                    ));
                }
            }
            Item::Broken(e) => report.problems.push(locate(&e.file, &e.message)),
        }
    }
    report.rules = rules.len();
    if report.modules == 0 && report.problems.is_empty() {
        let shown: Vec<_> = paths.iter().map(|p| p.display().to_string()).collect();
        report.problems.push(Problem {
            location: shown.join(", "),
            message: "no .rego module found".into(),
            excerpt: Vec::new(),
        });
    }
    if !report.problems.is_empty() {
        return report;
    }
    let entrypoint = match entrypoint {
        Some(e) => Some(e.to_string()),
        None => packages.contains("data.airlock").then(|| DEFAULT_ENTRYPOINT.to_string()),
    };
    match compile(items, entrypoint.as_deref()) {
        Err(p) => report.problems.push(p),
        Ok(index) => {
            report.entrypoint = entrypoint;
            report.index = index;
        }
    }
    report
}

/// The whole policy in one engine, as the filter loads it; then the entrypoint, and what
/// the filter's rule index makes of it.
fn compile(items: Vec<Item>, entrypoint: Option<&str>) -> Result<Option<Summary>, Problem> {
    let mut engine = Engine::new();
    for item in items {
        match item {
            Item::Module { file, source } => {
                engine.add_policy(file.clone(), source).map_err(|e| locate(&file, &format!("{e:#}")))?;
            }
            Item::Data { file, value, .. } => {
                engine
                    .add_data(value)
                    .map_err(|e| locate(&file, &format!("data conflicts with data already loaded: {e:#}")))?;
            }
            Item::Broken(e) => return Err(from_load_error(e)),
        }
    }
    // Conflicting rules, unknown functions, unsafe variables: the analysis regorus runs
    // before any evaluation, over every module (tests included).
    engine.eval_query("true".to_string(), false).map_err(|e| locate("policy", &format!("{e:#}")))?;
    let Some(entrypoint) = entrypoint else { return Ok(None) };
    let at = format!("entrypoint `{entrypoint}`");
    let entry: regorus::Rc<str> = entrypoint.into();
    // First for its message: regorus names the line of a rule that does not compile.
    engine.compile_with_entrypoint(&entry).map_err(|e| {
        let message = format!("{e:#}");
        // regorus says "not a valid rule path" for a rule no module defines; say so.
        if message.contains("-->") {
            locate(&at, &message)
        } else {
            locate(&at, &format!("is not defined by any module or does not compile: {message}"))
        }
    })?;
    let data = engine.get_data();
    let (_, program) = airlock_filter::policy::vm::build(&mut engine, &[entrypoint], data.clone(), 1)
        .map_err(|e| locate(&at, &format!("cannot be loaded into the filter's engine: {e}")))?;
    let data = serde_json::to_value(&data).unwrap_or_default();
    Ok(Some(RuleIndex::build(&mut engine, &program, &data).summary().clone()))
}

fn from_load_error(e: LoadError) -> Problem {
    locate(&e.file, &e.message)
}

/// Split a message into location, text and excerpt. regorus writes
/// `\n--> file:line:col\n  |\n8 | src\n  | ^\nerror: text`; serde_json ends with
/// `at line L column C`. Anything else is reported at `fallback`.
pub(crate) fn locate(fallback: &str, message: &str) -> Problem {
    let lines: Vec<&str> = message.lines().collect();
    if let Some(arrow) = lines.iter().position(|l| l.starts_with("--> ")) {
        let location = lines[arrow].trim_start_matches("--> ").trim().to_string();
        let prefix = lines[..arrow].join(" ").trim().trim_end_matches(':').trim().to_string();
        let mut rest: Vec<&str> = lines[arrow + 1..].to_vec();
        let text = match rest.iter().rposition(|l| l.starts_with("error: ")) {
            Some(i) => rest.remove(i).trim_start_matches("error: ").to_string(),
            None => String::new(),
        };
        let text = [prefix, text].into_iter().filter(|s| !s.is_empty()).collect::<Vec<_>>().join(": ");
        return Problem { location, message: text, excerpt: rest.into_iter().map(String::from).collect() };
    }
    if let Some((text, pos)) = message.rsplit_once(" at line ") {
        if let Some((line, column)) = pos.split_once(" column ") {
            if line.parse::<u32>().is_ok() && column.parse::<u32>().is_ok() {
                let location = format!("{fallback}:{line}:{column}");
                return Problem { location, message: text.to_string(), excerpt: Vec::new() };
            }
        }
    }
    Problem { location: fallback.to_string(), message: message.trim().to_string(), excerpt: Vec::new() }
}

/// Every rule and function a module defines, by the first component of its name.
fn rule_names(rules: &[regorus::unstable::Ref<Rule>]) -> BTreeSet<String> {
    rules
        .iter()
        .filter_map(|rule| {
            let refr = match rule.as_ref() {
                Rule::Spec {
                    head: RuleHead::Compr { refr, .. } | RuleHead::Set { refr, .. } | RuleHead::Func { refr, .. },
                    ..
                } => refr,
                Rule::Default { refr, .. } => refr,
            };
            let components = Parser::get_path_ref_components(refr).ok()?;
            components.first().map(|c| c.text().to_string())
        })
        .collect()
}
