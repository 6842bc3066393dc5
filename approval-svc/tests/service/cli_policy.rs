//! `airlock policy test|eval`: the example library's tests pass (this is how they run in
//! CI), failures and load errors get the documented exit codes, eval explains a decision.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::process::{Command, Output};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn airlock(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_airlock")).current_dir(repo()).args(args).output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn library_tests_all_pass() {
    let out = airlock(&["policy", "test", "policies/library"]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{}", text(&out.stderr));
    let passes = stdout.lines().filter(|l| l.starts_with("PASS ")).count();
    // Every test_* rule of every *_test.rego is reported, with file:line.
    let mut declared = 0;
    for entry in walk(&repo().join("policies/library")) {
        if entry.to_string_lossy().ends_with("_test.rego") {
            let src = std::fs::read_to_string(&entry).unwrap();
            declared += src.lines().filter(|l| l.starts_with("test_")).count();
        }
    }
    assert!(declared >= 60, "{declared}");
    assert_eq!(passes, declared, "{stdout}");
    assert!(stdout.contains("PASS policies/library/mcp/mcp_test.rego:"), "{stdout}");
    assert!(stdout.contains("data.airlock.rules.iam.test_admin_policy_is_denied"), "{stdout}");
    assert!(stdout.trim_end().ends_with(&format!("{declared} passed, 0 failed")), "{stdout}");
}

fn walk(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn failing_test_exits_1_and_names_it() {
    let out = airlock(&["policy", "test", "approval-svc/tests/fixtures/policy-failing"]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains(
            "FAIL approval-svc/tests/fixtures/policy-failing/app/app_test.rego:9 data.app.test_guest_allowed_fails"
        ),
        "{stdout}"
    );
    // data.yaml under app/ is data.app: the passing test depends on it.
    assert!(
        stdout.contains(
            "PASS approval-svc/tests/fixtures/policy-failing/app/app_test.rego:5 data.app.test_admin_allowed"
        ),
        "{stdout}"
    );
    assert!(stdout.contains("1 passed, 1 failed"), "{stdout}");
}

#[test]
fn syntax_error_exits_2_and_names_the_file() {
    let out = airlock(&["policy", "test", "approval-svc/tests/fixtures/policy-syntax"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("policy-syntax/broken.rego"), "{stderr}");
    assert!(!text(&out.stdout).contains("PASS"));
}

#[test]
fn missing_directory_exits_2() {
    let out = airlock(&["policy", "test", "approval-svc/tests/fixtures/no-such-dir"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("no-such-dir"));
}

#[test]
fn eval_prints_the_decision_and_the_rules_that_fired() {
    let out = airlock(&[
        "policy",
        "eval",
        "--policy",
        "policies/library",
        "--input",
        "policies/library/examples/vault-read.json",
        "--format",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["decision"]["effect"], "approve");
    assert_eq!(v["decision"]["rule"], "secret-read");
    assert_eq!(v["decision"]["credential"], "vault-read");
    assert!(v.get("interpreter_decision").is_none(), "{v}");
    let fired: Vec<&str> = v["fired"].as_array().unwrap().iter().map(|f| f["rule"].as_str().unwrap()).collect();
    assert_eq!(fired, ["data.airlock.rules.hosts.decision", "data.airlock.rules.secrets.decision"]);
    assert!(v["not_applicable"].as_array().unwrap().iter().any(|r| r == "data.airlock.rules.mcp.decision"));

    let out = airlock(&[
        "policy",
        "eval",
        "--policy",
        "policies/library",
        "--input",
        "policies/library/examples/mcp-db-query.json",
    ]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("\"rule\": \"mcp-tool-approval\""), "{stdout}");
    assert!(stdout.contains("rules that fired (1 of 9)"), "{stdout}");
    assert!(stdout.contains("data.airlock.rules.mcp.decision (policies/library/mcp/mcp.rego:"), "{stdout}");
}

#[test]
fn eval_with_a_bad_input_file_exits_2() {
    let out = airlock(&["policy", "eval", "--policy", "policies/library", "--input", "Cargo.toml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("Cargo.toml"));
}

/// `.rego` files under `dir`: what `policy check` must count as modules.
fn rego_files(dir: &std::path::Path) -> usize {
    walk(dir).iter().filter(|p| p.extension().is_some_and(|e| e == "rego")).count()
}

#[test]
fn check_library_compiles_its_entrypoint() {
    let out = airlock(&["policy", "check", "policies/library"]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{}", text(&out.stderr));
    let modules = rego_files(&repo().join("policies/library"));
    let first = stdout.lines().next().unwrap();
    let rules: usize = first
        .strip_prefix(&format!("ok: {modules} modules, "))
        .and_then(|r| r.strip_suffix(" rules"))
        .unwrap_or_else(|| panic!("{stdout}"))
        .parse()
        .unwrap();
    // Every module defines rules; tests are rules too.
    assert!(rules > modules * 2, "{stdout}");
    // The library declares `package airlock`, so the default entrypoint is checked.
    assert!(stdout.contains("entrypoint data.airlock.decision: defined, compiles to RVM bytecode"), "{stdout}");
    // The filter's rule index: every module but the hosts allow-list (its first literal is
    // a negation) is skipped for requests its guards rule out.
    assert!(stdout.contains("rule index: 8 of 9 composed rules skipped when their leading guards fail"), "{stdout}");
    assert!(stdout.contains("evaluated for every request: data.airlock.rules.hosts.decision"), "{stdout}");
}

#[test]
fn check_accepts_a_bundle_like_a_directory() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("lib.tar.gz");
    let bundle = bundle.to_str().unwrap();
    assert_eq!(airlock(&["bundle", "build", "policies/library", "-o", bundle]).status.code(), Some(0));
    let from_dir = text(&airlock(&["policy", "check", "policies/library"]).stdout);
    let out = airlock(&["policy", "check", bundle]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), from_dir);
}

#[test]
fn check_syntax_error_exits_2_with_file_and_line() {
    let out = airlock(&["policy", "check", "approval-svc/tests/fixtures/policy-syntax"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("approval-svc/tests/fixtures/policy-syntax/broken.rego:8:1: error: expecting `}`"),
        "{stderr}"
    );
    assert!(!text(&out.stdout).contains("ok:"));
}

/// A policy directory written for one test.
fn policy_dir(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, body) in files {
        let path = dir.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, body).unwrap();
    }
    dir
}

#[test]
fn check_reports_every_broken_file() {
    let dir = policy_dir(&[
        ("a.rego", "package a\nimport rego.v1\nx := {\n"),
        ("b/b.rego", "package b\nimport rego.v1\ny if {\n  1 ==\n}\n"),
        ("c.rego", "package c\nimport rego.v1\nz := 1\n"),
        ("c/data.json", "{\n  \"k\": \n}\n"),
    ]);
    let out = airlock(&["policy", "check", dir.path().to_str().unwrap()]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    let root = dir.path().display().to_string();
    assert!(stderr.contains(&format!("{root}/a.rego:4:1: error: ")), "{stderr}");
    assert!(stderr.contains(&format!("{root}/b/b.rego:5:1: error: ")), "{stderr}");
    assert!(stderr.contains(&format!("{root}/c/data.json:3:1: error: invalid JSON")), "{stderr}");
    assert!(!stderr.contains("c.rego"), "{stderr}");
    assert!(stderr.contains("3 error(s)"), "{stderr}");
}

#[test]
fn check_compiles_the_entrypoint_as_the_filter_does() {
    // Parses, and regorus's analysis accepts it; compiling to RVM bytecode does not.
    let dir = policy_dir(&[(
        "airlock/p.rego",
        "package airlock\nimport rego.v1\ndecision := {\"effect\": \"allow\"} if {\n\tno_such_fn(input.x)\n}\n",
    )]);
    let out = airlock(&["policy", "check", dir.path().to_str().unwrap()]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("/airlock/p.rego:4:"), "{stderr}");
    assert!(
        stderr.contains("error: cannot be loaded into the filter's engine")
            && stderr.contains("cannot be compiled to bytecode"),
        "{stderr}"
    );
    assert!(stderr.contains("no_such_fn"), "{stderr}");
}

#[test]
fn check_missing_entrypoint_exits_2() {
    let out = airlock(&["policy", "check", "policies/library", "--entrypoint", "data.airlock.nope"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("entrypoint `data.airlock.nope`: error: is not defined by any module"), "{stderr}");
    assert!(!text(&out.stdout).contains("ok:"));
}

#[test]
fn check_without_package_airlock_checks_no_entrypoint_unless_asked() {
    let fixture = "approval-svc/tests/fixtures/policy-failing";
    let out = airlock(&["policy", "check", fixture]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{}", text(&out.stderr));
    // A failing test is not a compile error; `check` does not run tests.
    assert!(stdout.starts_with("ok: 2 modules, "), "{stdout}");
    assert!(stdout.contains("no entrypoint checked"), "{stdout}");
    // The filter refuses YAML data: said, but not an error here.
    assert!(text(&out.stderr).contains("app/data.yaml: the filter refuses YAML data"), "{}", text(&out.stderr));

    let out = airlock(&["policy", "check", fixture, "--entrypoint", "data.app.allow"]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{}", text(&out.stderr));
    assert!(stdout.contains("entrypoint data.app.allow: defined"), "{stdout}");
}

#[test]
fn policy_help_names_opa_fmt_as_the_formatter() {
    let out = airlock(&["policy", "--help"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out.stdout).contains("opa fmt"), "{}", text(&out.stdout));
}

/// `policy test` passes a test only when the filter's engine decides what it asserts.
/// A `with` that the filter's engine cannot reproduce (replacing a rule or a function,
/// or hidden in a comprehension) fails the test with the reason, never passes it on the
/// interpreter's word; the same policy's other tests still run.
#[test]
fn tests_the_filter_engine_cannot_check_are_errors_that_say_why() {
    let dir = policy_dir(&[
        ("app/app.rego", "package app\nimport rego.v1\nallow if input.user == \"admin\"\nlevel := 1\n"),
        (
            "app/app_test.rego",
            concat!(
                "package app\nimport rego.v1\n",
                "test_plain if allow with input as {\"user\": \"admin\"}\n",
                "test_replaces_rule if allow with level as 2 with input as {\"user\": \"admin\"}\n",
                "test_replaces_function if allow with input as {\"user\": \"admin\"} with count as 0\n",
                "test_nested if {\n\tcount([1 | allow with input as {\"user\": \"admin\"}]) == 1\n}\n",
            ),
        ),
    ]);
    let out = airlock(&["policy", "test", dir.path().to_str().unwrap()]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("PASS") && stdout.contains("data.app.test_plain"), "{stdout}");
    for (test, why) in [
        ("test_replaces_rule", "replaces the rule `data.app.level`"),
        ("test_replaces_function", "replaces a function"),
        ("test_nested", "inside a comprehension"),
    ] {
        let line = stdout.lines().find(|l| l.contains(test)).unwrap_or_default();
        assert!(line.starts_with("ERROR") && line.contains(why), "{test}: {stdout}");
    }
    assert!(stdout.contains("1 passed, 3 failed"), "{stdout}");
}
