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
    assert!(stdout.contains("rules that fired (1 of 8)"), "{stdout}");
    assert!(stdout.contains("data.airlock.rules.mcp.decision (policies/library/mcp/mcp.rego:"), "{stdout}");
}

#[test]
fn eval_with_a_bad_input_file_exits_2() {
    let out = airlock(&["policy", "eval", "--policy", "policies/library", "--input", "Cargo.toml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("Cargo.toml"));
}
