//! `airlock policy test|eval|check`: run Rego unit tests, explain decisions and check
//! that a policy compiles, with the regorus engine and feature set the gateway filter
//! runs. There is no `policy fmt`: regorus 0.14.1 has no Rego printer, and a formatter
//! that disagreed with `opa fmt` would churn diffs — `opa fmt` is the formatter.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Subcommand, ValueEnum};

use crate::policy::{self, Outcome};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run every `test_*` rule under the directories. Exit 0: all pass; 1: a test failed;
    /// 2: a file does not load or compile.
    Test {
        /// Directories holding `.rego` files and `data.json`/`data.yaml` (placed by path), or bundle `.tar.gz` files.
        #[arg(required = true)]
        dirs: Vec<PathBuf>,
        /// Print failures only (and the summary).
        #[arg(long)]
        quiet: bool,
    },
    /// Parse every module, load the data and compile the entrypoint to RVM bytecode as the
    /// filter does, without evaluating. Exit 0: prints `ok: N modules, M rules`; 2: every
    /// error printed as `file:line:col: error: …`.
    Check {
        /// Directories holding `.rego` files and `data.json`/`data.yaml` (placed by path), or bundle `.tar.gz` files.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// The rule the filter evaluates (`policy.entrypoint`): must be defined and compile
        /// to RVM bytecode. Default: `data.airlock.decision` when a module is `package
        /// airlock`; otherwise no entrypoint is checked.
        #[arg(long)]
        entrypoint: Option<String>,
    },
    /// Evaluate an input document and show the decision and which rules applied.
    Eval {
        /// Policy directory or bundle `.tar.gz` (repeatable).
        #[arg(long = "policy", required = true)]
        policies: Vec<PathBuf>,
        /// Input JSON file (`input` in Rego), e.g. a request recorded by the filter.
        #[arg(long, required_unless_present = "inputs", conflicts_with = "inputs")]
        input: Option<PathBuf>,
        /// Many inputs, one JSON document per line: prints one line per input,
        /// `{"value": <decision or null when undefined>, "defined": <bool>, "error": <null
        /// or text>}` (`defined` tells a null value from undefined) — how the differential
        /// tests against OPA drive the filter's engine.
        #[arg(long)]
        inputs: Option<PathBuf>,
        #[arg(long, default_value = "data.airlock.decision")]
        entrypoint: String,
        /// Evaluation budget, as the filter's `policy.max_instructions`.
        #[arg(long, default_value_t = 100_000)]
        max_instructions: usize,
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    Text,
    Json,
}

pub fn run(args: Args) -> ExitCode {
    match args.command {
        Command::Test { dirs, quiet } => test(&dirs, quiet),
        Command::Check { paths, entrypoint } => check(&paths, entrypoint.as_deref()),
        Command::Eval { policies, inputs: Some(inputs), entrypoint, max_instructions, .. } => {
            eval_lines(&policies, &inputs, &entrypoint, max_instructions)
        }
        Command::Eval { policies, input: Some(input), entrypoint, max_instructions, format, .. } => {
            eval(&policies, &input, &entrypoint, max_instructions, format)
        }
        Command::Eval { .. } => {
            eprintln!("airlock: give --input or --inputs");
            ExitCode::from(2)
        }
    }
}

/// Exit 2 with the reason: the command could not run at all (as opposed to a test failing).
fn unusable(reason: impl std::fmt::Display) -> ExitCode {
    eprintln!("airlock: {reason}");
    ExitCode::from(2)
}

/// The policy directories or bundles, or the exit code after saying why they do not load.
fn load(dirs: &[PathBuf]) -> Result<policy::Loaded, ExitCode> {
    policy::load(dirs).map_err(|e| unusable(format!("policy does not load: {e}")))
}

fn test(dirs: &[PathBuf], quiet: bool) -> ExitCode {
    let mut loaded = match load(dirs) {
        Ok(l) => l,
        Err(code) => return code,
    };
    let results = policy::run_tests(&mut loaded);
    let (mut passed, mut failed) = (0usize, 0usize);
    for r in &results {
        match &r.outcome {
            Outcome::Pass => {
                passed += 1;
                if !quiet {
                    crate::outln!("PASS {}:{} {}", r.file, r.line, r.name);
                }
            }
            Outcome::Fail => {
                failed += 1;
                crate::outln!("FAIL {}:{} {} (undefined or false)", r.file, r.line, r.name);
            }
            Outcome::Error(e) => {
                failed += 1;
                crate::outln!("ERROR {}:{} {}: {}", r.file, r.line, r.name, e.trim_end());
            }
        }
    }
    crate::outln!("{passed} passed, {failed} failed");
    if results.is_empty() {
        eprintln!("airlock: no test_* rules found");
    }
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn check(paths: &[PathBuf], entrypoint: Option<&str>) -> ExitCode {
    let report = policy::check(paths, entrypoint);
    for w in &report.warnings {
        eprintln!("warning: {w}");
    }
    if !report.problems.is_empty() {
        for p in &report.problems {
            eprintln!("{p}");
        }
        eprintln!("airlock: {} error(s)", report.problems.len());
        return ExitCode::from(2);
    }
    crate::outln!("ok: {} modules, {} rules", report.modules, report.rules);
    match &report.entrypoint {
        Some(e) => crate::outln!("entrypoint {e}: defined, compiles to RVM bytecode"),
        None => crate::outln!("no entrypoint checked (no `package airlock`; give --entrypoint)"),
    }
    if let Some(index) = report.index.as_ref().filter(|i| !i.indexed.is_empty() || !i.always.is_empty()) {
        // Policy authors see which composed rules cost every request (README of the
        // library: "The rule index").
        crate::outln!(
            "rule index: {} of {} composed rules skipped when their leading guards fail",
            index.indexed.len(),
            index.indexed.len() + index.always.len()
        );
        for rule in &index.always {
            crate::outln!("  evaluated for every request: {rule} (a body starts with what the index cannot read, or it has a default)");
        }
    }
    ExitCode::SUCCESS
}

/// One answer line per input line, in order; a line that is not JSON gets an error
/// answer, never a skipped line (the caller pairs answers with inputs by position).
fn eval_lines(dirs: &[PathBuf], inputs: &PathBuf, entrypoint: &str, max_instructions: usize) -> ExitCode {
    let text = match std::fs::read_to_string(inputs) {
        Ok(t) => t,
        Err(e) => return unusable(format!("{}: {e}", inputs.display())),
    };
    let mut loaded = match load(dirs) {
        Ok(l) => l,
        Err(code) => return code,
    };
    let mut evaluator = match policy::Evaluator::new(&mut loaded, entrypoint, max_instructions) {
        Ok(e) => e,
        Err(e) => return unusable(e),
    };
    use std::io::Write as _;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let answer = match regorus::Value::from_json_str(line) {
            Err(e) => {
                serde_json::json!({"value": null, "error": format!("input is not valid JSON for the engine: {e}")})
            }
            Ok(input) => match evaluator.evaluate(input) {
                Ok(v) => serde_json::json!({"value": v, "defined": v.is_some(), "error": null}),
                Err(e) => serde_json::json!({"value": null, "error": e}),
            },
        };
        if let Err(e) = writeln!(out, "{answer}") {
            super::output::finish(&e);
        }
    }
    if let Err(e) = out.flush() {
        super::output::finish(&e);
    }
    ExitCode::SUCCESS
}

fn eval(dirs: &[PathBuf], input: &PathBuf, entrypoint: &str, max_instructions: usize, format: Format) -> ExitCode {
    let input_value = match std::fs::read_to_string(input)
        .map_err(|e| e.to_string())
        .and_then(|s| regorus::Value::from_json_str(&s).map_err(|e| e.to_string()))
    {
        Ok(v) => v,
        Err(e) => {
            eprintln!("airlock: {}: {e}", input.display());
            return ExitCode::from(2);
        }
    };
    let mut loaded = match load(dirs) {
        Ok(l) => l,
        Err(code) => return code,
    };
    let ev = match policy::evaluate(&mut loaded, input_value, entrypoint, max_instructions) {
        Ok(ev) => ev,
        Err(e) => {
            eprintln!("airlock: {e}");
            return ExitCode::from(2);
        }
    };
    match format {
        Format::Json => {
            let fired: Vec<_> = ev
                .contributions
                .iter()
                .filter_map(|c| {
                    c.value
                        .as_ref()
                        .map(|v| serde_json::json!({"rule": c.rule, "file": c.file, "line": c.line, "value": v}))
                })
                .collect();
            let not_applicable: Vec<_> =
                ev.contributions.iter().filter(|c| c.value.is_none()).map(|c| c.rule.clone()).collect();
            let out = serde_json::json!({"entrypoint": entrypoint, "decision": ev.decision, "fired": fired, "not_applicable": not_applicable});
            crate::outln!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
        }
        Format::Text => {
            let decision = ev.decision.as_ref().map(|d| serde_json::to_string_pretty(d).unwrap_or_default());
            crate::outln!("{entrypoint} (RVM, as the filter evaluates it):");
            crate::outln!("{}", decision.as_deref().unwrap_or("undefined — the filter denies (airlock.policy-error)"));
            let fired: Vec<_> = ev.contributions.iter().filter(|c| c.value.is_some()).collect();
            if !ev.contributions.is_empty() {
                crate::outln!();
                crate::outln!("rules that fired ({} of {}):", fired.len(), ev.contributions.len());
                for c in &fired {
                    let v = c.value.as_ref().map(|v| v.to_string()).unwrap_or_default();
                    crate::outln!("  {} ({}:{}) = {v}", c.rule, c.file, c.line);
                }
                let idle: Vec<_> =
                    ev.contributions.iter().filter(|c| c.value.is_none()).map(|c| c.rule.as_str()).collect();
                if !idle.is_empty() {
                    crate::outln!("did not apply: {}", idle.join(", "));
                }
            }
        }
    }
    ExitCode::SUCCESS
}
