//! `airlock teams package` writes the Teams app package a tenant admin uploads; the
//! package is checked by `tests/teams/validate_package.py` against Microsoft's official
//! manifest schema (npm `@microsoft/app-manifest`, with check-jsonschema) and the icon
//! rules, with the bot id and domain read from airlock.toml. The same validator refuses a
//! manifest missing a required field, and the command refuses bad input with a message
//! naming it.
//!
//! Needs `cargo build -p airlock-approval-svc` and `bash scripts/setup-teams.sh` (run by
//! `scripts/setup.sh`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::{Command, Output};

use airlock_tests::e2e::service::airlock_binary;
use airlock_tests::wasm::workspace_root;

const BOT_ID: &str = "00000000-0000-0000-0000-00000000b075";
const DOMAIN: &str = "airlock.corp.example";

fn airlock(args: &[&str]) -> Output {
    Command::new(airlock_binary().unwrap_or_else(|e| panic!("{e:#}")))
        .env_remove("AIRLOCK_CONFIG")
        .args(args)
        .output()
        .unwrap()
}

fn validate(package: &Path, extra: &[&str]) -> Output {
    let root = workspace_root();
    let python = root.join(".venv/bin/python");
    assert!(python.is_file(), "no {}: run bash scripts/setup.sh", python.display());
    Command::new(python)
        .arg(root.join("tests/teams/validate_package.py"))
        .arg(package)
        .args(["--bot-id", BOT_ID, "--domain", DOMAIN])
        .args(extra)
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

#[test]
fn teams_package_is_valid_against_the_official_schema() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("airlock.toml");
    std::fs::write(
        &config,
        format!(
            "[gateway]\nkeys_file = \"/nonexistent\"\n\n[teams]\napp_id = \"{BOT_ID}\"\ntenant_id = \"t\"\n\
             console_url = \"https://{DOMAIN}/console\"\n"
        ),
    )
    .unwrap();
    let package = dir.path().join("app.zip");
    let out = airlock(&["teams", "package", "--config", config.to_str().unwrap(), "--out", package.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    let checked = validate(&package, &[]);
    assert!(checked.status.success(), "package invalid: {}", text(&checked));

    // The validator is not a rubber stamp: a manifest without a required field fails.
    let broken = validate(&package, &["--drop", "developer"]);
    assert!(!broken.status.success(), "{}", text(&broken));
    assert!(text(&broken).contains("'developer' is a required property"), "{}", text(&broken));

    // Same inputs, same bytes: an admin can tell whether a package changed.
    let again = dir.path().join("again.zip");
    let out = airlock(&["teams", "package", "--config", config.to_str().unwrap(), "--out", again.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(std::fs::read(&package).unwrap(), std::fs::read(&again).unwrap());
}

#[test]
fn teams_package_refuses_bad_input_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let out_zip = dir.path().join("app.zip");
    let out = out_zip.to_str().unwrap();
    let small = dir.path().join("small.png");
    // A 32x32 PNG offered as the 192x192 colour icon.
    std::fs::copy(workspace_root().join("approval-svc/assets/teams/outline.png"), &small).unwrap();
    let cases: [(Vec<&str>, &str); 5] = [
        (vec!["--bot-id", "not-a-guid", "--domain", DOMAIN], "is not a GUID"),
        (vec!["--domain", DOMAIN], "no bot id"),
        (vec!["--bot-id", BOT_ID], "no domain"),
        (vec!["--bot-id", BOT_ID, "--domain", "https://airlock.corp.example"], "bare host name"),
        (vec!["--bot-id", BOT_ID, "--domain", DOMAIN, "--color-icon", small.to_str().unwrap()], "192x192"),
    ];
    for (args, needle) in cases {
        let mut all = vec!["teams", "package", "--out", out];
        all.extend(args.iter().copied());
        let o = airlock(&all);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", text(&o));
        assert!(text(&o).contains(needle), "{args:?} names {needle:?}: {}", text(&o));
        assert!(!out_zip.exists(), "{args:?}: nothing written");
    }
}
