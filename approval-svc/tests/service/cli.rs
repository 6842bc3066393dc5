//! The `airlock` binary: key helpers, audit verify exit codes, serve + reviewer CLI.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;

fn airlock() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_airlock"));
    for var in
        ["AIRLOCK_AUDIT_KEY", "AIRLOCK_DATABASE", "AIRLOCK_URL", "AIRLOCK_API_KEY", "AIRLOCK_CONFIG", "AIRLOCK_LISTEN"]
    {
        c.env_remove(var);
    }
    c
}

#[test]
fn keys_generate_and_hash() {
    let out = airlock().args(["keys", "generate"]).output().unwrap();
    assert!(out.status.success());
    let key = base64::engine::general_purpose::STANDARD.decode(String::from_utf8(out.stdout).unwrap().trim()).unwrap();
    assert_eq!(key.len(), 32);
    let mut child =
        airlock().args(["keys", "hash-api-key"]).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(b"bob-key\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8(out.stdout).unwrap().trim(),
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(b"bob-key"))
    );
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[test]
fn serve_review_by_cli_then_verify_and_export_the_audit_trail() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("airlock.db");
    let b64 = |b: u8| base64::engine::general_purpose::STANDARD.encode([b; 32]);
    std::fs::write(dir.path().join("k2"), b64(1)).unwrap();
    let port = free_port();
    let config = format!(
        r#"
listen = "127.0.0.1:{port}"
database = "{}"
[gateway]
keys = [{{ id = "k2", secret_file = "{}" }}]
[audit]
checkpoint_key_env = "TEST_AUDIT_KEY"
checkpoint_every = 3
[[reviewers]]
id = "bob@corp.example"
api_key_sha256 = "{}"
"#,
        db.display(),
        dir.path().join("k2").display(),
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(b"bob-key")),
    );
    let config_path = dir.path().join("airlock.toml");
    std::fs::write(&config_path, config).unwrap();
    let mut server = airlock()
        .args(["serve", "--config"])
        .arg(&config_path)
        .env("TEST_AUDIT_KEY", b64(9))
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(20);
    while ureq::get(&format!("{url}/readyz")).call().is_err() {
        assert!(Instant::now() < deadline, "service did not become ready");
        std::thread::sleep(Duration::from_millis(50));
    }
    let list = airlock()
        .args(["approvals", "list", "--status", "pending", "--url", &url])
        .env("AIRLOCK_API_KEY", "bob-key")
        .output()
        .unwrap();
    assert!(list.status.success(), "{}", String::from_utf8_lossy(&list.stderr));
    assert!(String::from_utf8_lossy(&list.stdout).contains("\"approvals\""));
    let unknown = airlock()
        .args(["approvals", "approve", "apr_nope", "--url", &url])
        .env("AIRLOCK_API_KEY", "bob-key")
        .output()
        .unwrap();
    assert_eq!(unknown.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("404"));
    let cancel_unknown = airlock()
        .args(["approvals", "cancel", "apr_nope", "--reason", "not needed", "--url", &url])
        .env("AIRLOCK_API_KEY", "bob-key")
        .output()
        .unwrap();
    assert_eq!(cancel_unknown.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&cancel_unknown.stderr).contains("404"), "the cancel reached the service");
    let no_reason = airlock()
        .args(["approvals", "cancel", "apr_nope", "--url", &url])
        .env("AIRLOCK_API_KEY", "bob-key")
        .output()
        .unwrap();
    assert!(!no_reason.status.success());
    assert!(String::from_utf8_lossy(&no_reason.stderr).contains("--reason"), "a cancel without a reason is refused");
    let denied = airlock().args(["approvals", "list", "--url", &url]).env("AIRLOCK_API_KEY", "nope").output().unwrap();
    assert!(String::from_utf8_lossy(&denied.stderr).contains("401"));
    // Stop (SIGTERM) so the head is sealed.
    unsafe_free_kill(&server);
    let status = server.wait().unwrap();
    assert!(status.success(), "{status:?}");

    let verify =
        airlock().args(["audit", "verify", "--database"]).arg(&db).env("AIRLOCK_AUDIT_KEY", b64(9)).output().unwrap();
    assert_eq!(verify.status.code(), Some(0), "{}", String::from_utf8_lossy(&verify.stdout));
    let out_dir = dir.path().join("evidence");
    let export = airlock()
        .args(["audit", "export", "--database"])
        .arg(&db)
        .arg("--out")
        .arg(&out_dir)
        .env("AIRLOCK_AUDIT_KEY", b64(9))
        .output()
        .unwrap();
    assert_eq!(export.status.code(), Some(0));
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out_dir.join("summary.json")).unwrap()).unwrap();
    assert!(summary["controls"].to_string().contains("AU-9"));
    assert!(out_dir.join("records.jsonl").exists() && out_dir.join("checkpoints.jsonl").exists());

    let missing = airlock().args(["audit", "verify", "--database"]).arg(dir.path().join("none.db")).output().unwrap();
    assert_eq!(missing.status.code(), Some(2));
}

/// Sends SIGTERM via the `kill` command (no unsafe FFI needed).
fn unsafe_free_kill(child: &std::process::Child) {
    let ok = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status().unwrap();
    assert!(ok.success());
}

#[test]
fn audit_verify_exits_1_on_tampering() {
    use airlock_approval_svc::approvals::Decisions;
    use airlock_approval_svc::store::{SqliteStore, Store};
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("airlock.db");
    {
        let store = SqliteStore::open(&db, Some(vec![5; 32]), 4).unwrap();
        let records = (0..10).map(|i| serde_json::json!({"decision_id": i, "effect": "allow"})).collect();
        store.append_decisions("v1=batch", records, 0, 0).unwrap();
        store.checkpoint().unwrap();
    }
    let key = base64::engine::general_purpose::STANDARD.encode([5u8; 32]);
    let run =
        || airlock().args(["audit", "verify", "--database"]).arg(&db).env("AIRLOCK_AUDIT_KEY", &key).output().unwrap();
    assert_eq!(run().status.code(), Some(0));
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute_batch("DROP TRIGGER audit_records_no_update; UPDATE audit_records SET event = '{}' WHERE seq = 6;")
        .unwrap();
    let out = run();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("first bad record 6"));
}

/// `airlock audit export --store-url`: the evidence bundle straight from PostgreSQL,
/// and a clear exit 2 when the database cannot be reached.
#[test]
fn audit_export_reads_postgresql() {
    use airlock_approval_svc::approvals::Decisions;
    use airlock_approval_svc::store::postgres::testing::fresh_database;
    use airlock_approval_svc::store::{PostgresStore, Store};
    let url = fresh_database().unwrap_or_else(|e| panic!("{e}"));
    {
        let store = PostgresStore::open(&url, Some(vec![5; 32]), 4).unwrap();
        let records = (0..10).map(|i| serde_json::json!({"decision_id": i, "effect": "allow"})).collect();
        store.append_decisions("v1=batch", records, 0, 0).unwrap();
        store.checkpoint().unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let key = base64::engine::general_purpose::STANDARD.encode([5u8; 32]);
    let export = airlock()
        .args(["audit", "export", "--store-url", &url, "--out"])
        .arg(dir.path())
        .env("AIRLOCK_AUDIT_KEY", &key)
        .output()
        .unwrap();
    assert_eq!(export.status.code(), Some(0), "{}", String::from_utf8_lossy(&export.stderr));
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["records_by_kind"]["decision"], 10);
    assert_eq!(summary["verification"]["seals_checked"], true);
    let lines = std::fs::read_to_string(dir.path().join("records.jsonl")).unwrap();
    assert_eq!(lines.lines().count() as u64, summary["verification"]["records"].as_u64().unwrap());
    let unreachable = airlock()
        .args(["audit", "export", "--store-url", "postgres://nobody@127.0.0.1:1/none", "--out"])
        .arg(dir.path().join("other"))
        .output()
        .unwrap();
    assert_eq!(unreachable.status.code(), Some(2));
    assert!(!dir.path().join("other").exists(), "nothing is written when the database cannot be read");
}

/// `airlock init`'s setup is runnable as written: `serve` starts on it at the first try,
/// the printed API key is the reviewer's, and `audit verify --key-file` checks the seals
/// with the generated key.
#[test]
fn init_writes_a_setup_serve_starts_on_and_the_audit_key_file_checks() {
    let dir = tempfile::tempdir().unwrap();
    let setup = dir.path().join("setup");
    let port = free_port();
    let init = airlock()
        .args(["init", "--dir"])
        .arg(&setup)
        .args(["--listen", &format!("127.0.0.1:{port}"), "--reviewer", "dana@corp.example"])
        .output()
        .unwrap();
    assert!(init.status.success(), "{}", String::from_utf8_lossy(&init.stderr));
    let printed = String::from_utf8(init.stdout).unwrap();
    let api_key = printed.lines().find_map(|l| l.trim().strip_prefix("AIRLOCK_API_KEY=")).unwrap().to_string();
    // Records for the seals to cover, sealed with the generated key as the service seals.
    {
        use airlock_approval_svc::approvals::Decisions;
        use airlock_approval_svc::store::SqliteStore;
        let key = std::fs::read_to_string(setup.join("keys/audit.key")).unwrap();
        let key = base64::engine::general_purpose::STANDARD.decode(key.trim()).unwrap();
        let store = SqliteStore::open(&setup.join("airlock.db"), Some(key), 4).unwrap();
        let records = (0..5).map(|i| serde_json::json!({"decision_id": i, "effect": "allow"})).collect();
        store.append_decisions("v1=init-test", records, 0, 0).unwrap();
    }

    let mut server = airlock()
        .args(["serve", "--log-format", "text", "--config"])
        .arg(setup.join("airlock.toml"))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(20);
    while ureq::get(&format!("{url}/readyz")).call().is_err() {
        assert!(server.try_wait().unwrap().is_none(), "serve exited on the init setup");
        assert!(Instant::now() < deadline, "service did not become ready");
        std::thread::sleep(Duration::from_millis(50));
    }
    // A filter flag is not read from the environment: AIRLOCK_STATUS is ignored.
    let list = airlock()
        .args(["approvals", "list", "--url", &url])
        .env("AIRLOCK_API_KEY", &api_key)
        .env("AIRLOCK_STATUS", "no-such-status")
        .output()
        .unwrap();
    assert!(list.status.success(), "{}", String::from_utf8_lossy(&list.stderr));
    // Output into a pipe whose reader is gone ends quietly with status 0, not a panic.
    let mut closed = airlock()
        .args(["approvals", "list", "--url", &url])
        .env("AIRLOCK_API_KEY", &api_key)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(closed.stdout.take());
    let out = closed.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.stderr.is_empty(), "{}", String::from_utf8_lossy(&out.stderr));
    unsafe_free_kill(&server);
    let served = server.wait_with_output().unwrap();
    assert!(served.status.success());
    let logs = String::from_utf8_lossy(&served.stderr);
    assert!(logs.contains("INFO") && !logs.trim_start().starts_with('{'), "text logs: {logs}");

    let db = setup.join("airlock.db");
    let verify = |key_file: &std::path::Path| {
        airlock().args(["audit", "verify", "--database"]).arg(&db).arg("--key-file").arg(key_file).output().unwrap()
    };
    let ok = verify(&setup.join("keys/audit.key"));
    assert_eq!(ok.status.code(), Some(0), "{}", String::from_utf8_lossy(&ok.stderr));
    assert!(String::from_utf8_lossy(&ok.stdout).contains("\"seals_checked\": true"));
    // Another key does not verify the seals the service made.
    let wrong = verify(&setup.join("keys/credential.key"));
    assert_eq!(wrong.status.code(), Some(1), "{}", String::from_utf8_lossy(&wrong.stdout));
    let missing = verify(&setup.join("keys/none.key"));
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("--key-file"));
}
