//! `airlock bundle build|sign|verify|inspect` from outside, and bundles as sources for
//! `policy test|eval`: the round trip succeeds, every kind of tampering exits 1 naming
//! the file, and usage problems exit 2.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const KEY_B64: &str = "YnVuZGxlLXNpZ25pbmcta2V5LTAxMjM0NTY3ODlhYmM="; // 32 bytes
const OTHER_KEY_B64: &str = "c29tZS1vdGhlci1rZXktMDEyMzQ1Njc4OWFiY2RlZiE="; // 32 bytes

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn airlock(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_airlock"))
        .current_dir(repo())
        .env("BUNDLE_KEY", KEY_B64)
        .env("OTHER_KEY", OTHER_KEY_B64)
        .args(args)
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The example library, built and signed into `dir`.
fn signed_library(dir: &Path) -> PathBuf {
    let out = dir.join("library.tar.gz");
    let b = airlock(&["bundle", "build", "policies/library", "-o", s(&out), "--revision", "lib-7"]);
    assert_eq!(b.status.code(), Some(0), "{}", text(&b.stderr));
    let sg = airlock(&["bundle", "sign", s(&out), "--key-id", "k1", "--key-env", "BUNDLE_KEY"]);
    assert_eq!(sg.status.code(), Some(0), "{}", text(&sg.stderr));
    out
}

fn verify(bundle: &Path, key_env: &str) -> Output {
    airlock(&["bundle", "verify", s(bundle), "--key-id", "k1", "--key-env", key_env])
}

/// Re-pack a bundle's files after `f` edits them, keeping the old signature.
fn tampered(bundle: &Path, name: &str, f: impl FnOnce(&mut Vec<airlock_bundle::Entry>)) -> PathBuf {
    let limits = airlock_bundle::Limits::default();
    let mut entries = airlock_bundle::read_archive(&std::fs::read(bundle).unwrap(), &limits).unwrap();
    f(&mut entries);
    let out = bundle.with_file_name(name);
    std::fs::write(&out, airlock_bundle::write_archive(&entries).unwrap()).unwrap();
    out
}

#[test]
fn build_sign_verify_inspect_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = signed_library(dir.path());
    let v = verify(&bundle, "BUNDLE_KEY");
    let stdout = text(&v.stdout);
    assert_eq!(v.status.code(), Some(0), "{stdout}{}", text(&v.stderr));
    assert!(stdout.contains("revision `lib-7`") && stdout.contains("key `k1`"), "{stdout}");

    let i = airlock(&["bundle", "inspect", s(&bundle)]);
    let stdout = text(&i.stdout);
    assert_eq!(i.status.code(), Some(0));
    assert!(stdout.contains("revision: lib-7"), "{stdout}");
    assert!(stdout.contains("HS256, key id `k1`"), "{stdout}");
    let rego = std::fs::read(repo().join("policies/library/iam/iam.rego")).unwrap();
    let line = format!("{}  iam/iam.rego", airlock_bundle::sha256_hex(&rego));
    assert!(stdout.contains(&line), "{stdout}");

    // Building twice gives the same bytes (reproducible bundles).
    let again = dir.path().join("again.tar.gz");
    airlock(&["bundle", "build", "policies/library", "-o", s(&again), "--revision", "lib-7"]);
    let first = dir.path().join("first.tar.gz");
    airlock(&["bundle", "build", "policies/library", "-o", s(&first), "--revision", "lib-7"]);
    assert_eq!(std::fs::read(&again).unwrap(), std::fs::read(&first).unwrap());
}

#[test]
fn tampering_and_wrong_keys_exit_1_naming_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = signed_library(dir.path());
    let cases: Vec<(PathBuf, &str)> = vec![
        (
            tampered(&bundle, "changed.tar.gz", |es| {
                let e = es.iter_mut().find(|e| e.name == "iam/iam.rego").unwrap();
                e.bytes.extend_from_slice(b"\n# changed\n");
            }),
            "`iam/iam.rego`: SHA-256 differs",
        ),
        (
            tampered(&bundle, "extra.tar.gz", |es| {
                es.push(airlock_bundle::Entry { name: "evil.rego".into(), bytes: b"package evil".to_vec() })
            }),
            "`evil.rego`: not listed",
        ),
        (
            tampered(&bundle, "missing.tar.gz", |es| es.retain(|e| e.name != "hosts/data.json")),
            "`hosts/data.json`: signed but missing",
        ),
    ];
    for (path, needle) in cases {
        let out = verify(&path, "BUNDLE_KEY");
        assert_eq!(out.status.code(), Some(1), "{needle}");
        assert!(text(&out.stderr).contains(needle), "{}", text(&out.stderr));
    }
    let out = verify(&bundle, "OTHER_KEY");
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("does not verify with key `k1`"), "{}", text(&out.stderr));

    // Unsigned: refused, and inspect says so.
    let unsigned = dir.path().join("unsigned.tar.gz");
    airlock(&["bundle", "build", "policies/demo", "-o", s(&unsigned)]);
    assert_eq!(verify(&unsigned, "BUNDLE_KEY").status.code(), Some(1));
    assert!(text(&airlock(&["bundle", "inspect", s(&unsigned)]).stdout).contains("signature: none"));

    // A signed bundle whose Rego does not compile is refused by verify, as the filter would.
    let broken = dir.path().join("broken");
    std::fs::create_dir_all(&broken).unwrap();
    std::fs::write(broken.join("p.rego"), "package airlock\ndecision := {").unwrap();
    let b = dir.path().join("broken.tar.gz");
    airlock(&["bundle", "build", s(&broken), "-o", s(&b)]);
    airlock(&["bundle", "sign", s(&b), "--key-id", "k1", "--key-env", "BUNDLE_KEY"]);
    let out = verify(&b, "BUNDLE_KEY");
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("p.rego"), "{}", text(&out.stderr));
}

#[test]
fn usage_errors_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = signed_library(dir.path());
    let no_env = airlock(&["bundle", "verify", s(&bundle), "--key-id", "k1", "--key-env", "NO_SUCH_VAR"]);
    assert_eq!(no_env.status.code(), Some(2));
    assert!(text(&no_env.stderr).contains("NO_SUCH_VAR"));
    let both = airlock(&["bundle", "verify", s(&bundle), "--key-id", "k1", "--key-env", "X", "--key-file", "y"]);
    assert_eq!(both.status.code(), Some(2));
    let missing = airlock(&["bundle", "inspect", "no-such.tar.gz"]);
    assert_eq!(missing.status.code(), Some(2));
    let short_key = dir.path().join("short.key");
    std::fs::write(&short_key, "c2hvcnQ=").unwrap();
    let short = airlock(&["bundle", "sign", s(&bundle), "--key-id", "k1", "--key-file", s(&short_key)]);
    assert_eq!(short.status.code(), Some(2));
    assert!(text(&short.stderr).contains("at least 32"));
}

#[test]
fn policy_test_and_eval_accept_a_bundle() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = signed_library(dir.path());
    let out = airlock(&["policy", "test", s(&bundle)]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    assert!(stdout.contains(&format!("PASS {}/mcp/mcp_test.rego:", bundle.display())), "{stdout}");
    assert!(stdout.trim_end().ends_with(", 0 failed"), "{stdout}");

    let out = airlock(&[
        "policy",
        "eval",
        "--policy",
        s(&bundle),
        "--input",
        "policies/library/examples/vault-read.json",
        "--format",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["decision"]["rule"], "secret-read");
}
