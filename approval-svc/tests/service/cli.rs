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
