#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use clap::Parser as _;

use super::*;

#[derive(clap::Parser)]
struct Cli {
    #[command(flatten)]
    args: Args,
}

fn init(dir: &Path, extra: &[&str]) -> anyhow::Result<()> {
    let mut argv = vec!["init".to_string(), "--dir".into(), dir.display().to_string()];
    argv.extend(extra.iter().map(|s| s.to_string()));
    run(Cli::try_parse_from(argv).unwrap().args)
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap()
}

#[test]
fn init_writes_a_service_config_that_loads_with_its_keys() {
    let tmp = tempfile::tempdir().unwrap();
    init(tmp.path(), &["--reviewer", "dana@corp.example", "--listen", "127.0.0.1:18700"]).unwrap();
    let dir = std::fs::canonicalize(tmp.path()).unwrap();
    let config = crate::config::Config::load(&dir.join("airlock.toml")).unwrap();
    assert_eq!(config.listen, "127.0.0.1:18700");
    assert_eq!(config.database, dir.join("airlock.db"));
    let key = &config.gateway.keys[0];
    assert_eq!(key.id, KEY_ID);
    // Every secret the service will read at start is there and decodes.
    let gateway = crate::secrets::read_key("gateway", None, key.secret_file.as_deref()).unwrap();
    assert_eq!(gateway.len(), 32);
    crate::secrets::read_key("audit", None, config.audit.checkpoint_key_file.as_deref()).unwrap();
    assert!(config.credentials.contains_key("upstream"), "the starter policy's credential profile");
    assert_eq!(config.reviewers[0].id, "dana@corp.example");
    assert_eq!(config.reviewers[0].groups, ["reviewers"]);
    let hash = config.reviewers[0].api_key_sha256.clone().unwrap();
    assert_eq!(hash.len(), 64);
    for name in ["gateway.key", "audit.key", "credential.key"] {
        assert_eq!(mode(&dir.join("keys").join(name)), 0o600, "{name}");
    }
    assert_eq!(mode(&dir.join("keys")), 0o700);
}

#[test]
fn the_filter_configuration_names_the_services_key_id_and_takes_the_key_from_envoy() {
    let tmp = tempfile::tempdir().unwrap();
    init(tmp.path(), &[]).unwrap();
    let plugin = read(&tmp.path().join("plugin.json"));
    let key = read(&tmp.path().join("keys/gateway.key"));
    let config = airlock_filter::config::Config::parse_with_env(plugin.as_bytes(), &|name| {
        (name == GATEWAY_KEY_ENV).then(|| key.clone())
    })
    .unwrap();
    assert_eq!(config.service.signing.current.id, KEY_ID);
    let decoded = crate::secrets::decode_key("k", key.trim()).unwrap();
    assert_eq!(config.service.signing.current.secret, decoded, "the same bytes on both sides");
    assert_eq!(config.service.cluster, "airlock_approval");
    // Not in any file Envoy reads: only in keys/.
    assert!(!plugin.contains(key.trim()));
    let envoy = read(&tmp.path().join("envoy.yaml"));
    assert!(!envoy.contains(key.trim()));
    assert!(envoy.contains("host_env_keys: [AIRLOCK_GATEWAY_KEY]"), "{envoy}");
    // The plugin configuration inside envoy.yaml is plugin.json, line for line.
    for line in plugin.lines() {
        assert!(envoy.contains(&format!("{}{line}\n", " ".repeat(20))), "missing from envoy.yaml: {line}");
    }
    let placeholder = envoy.as_bytes().windows(2).position(|w| w[0] == b'@' && w[1].is_ascii_uppercase());
    assert_eq!(placeholder, None, "a placeholder was left in envoy.yaml");
}

#[test]
fn the_starter_policy_compiles_and_its_tests_pass() {
    let tmp = tempfile::tempdir().unwrap();
    init(tmp.path(), &[]).unwrap();
    let policy = tmp.path().join("policy");
    let report = crate::policy::check(std::slice::from_ref(&policy), Some("data.airlock.decision"));
    assert!(report.problems.is_empty(), "{:?}", report.problems.iter().map(|p| p.to_string()).collect::<Vec<_>>());
    let mut loaded = crate::policy::load(&[policy]).unwrap();
    let results = crate::policy::run_tests(&mut loaded);
    assert_eq!(results.len(), 3);
    assert!(results.iter().all(|r| matches!(r.outcome, crate::policy::Outcome::Pass)));
}

#[test]
fn a_second_run_refuses_to_replace_keys_and_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    init(tmp.path(), &[]).unwrap();
    let key = read(&tmp.path().join("keys/gateway.key"));
    std::fs::remove_file(tmp.path().join("envoy.yaml")).unwrap();
    let e = init(tmp.path(), &[]).unwrap_err().to_string();
    assert!(e.contains("refusing to overwrite") && e.contains("gateway.key") && e.contains("--force"), "{e}");
    assert!(!tmp.path().join("envoy.yaml").exists(), "nothing is written when anything exists");
    assert_eq!(read(&tmp.path().join("keys/gateway.key")), key);

    std::fs::set_permissions(tmp.path().join("keys/audit.key"), std::fs::Permissions::from_mode(0o644)).unwrap();
    init(tmp.path(), &["--force"]).unwrap();
    assert_ne!(read(&tmp.path().join("keys/gateway.key")), key, "--force generates new keys");
    assert_eq!(mode(&tmp.path().join("keys/audit.key")), 0o600, "a replaced key file is 0600 again");
}

#[test]
fn envoy_only_carries_an_edited_policy_and_refuses_a_broken_one() {
    let tmp = tempfile::tempdir().unwrap();
    init(tmp.path(), &[]).unwrap();
    let toml_before = read(&tmp.path().join("airlock.toml"));
    let rego = tmp.path().join("policy/airlock.rego");
    std::fs::write(&rego, read(&rego).replace("\"OPTIONS\"}", "\"OPTIONS\", \"PROPFIND\"}")).unwrap();
    init(tmp.path(), &["--envoy-only", "--envoy-listen", "127.0.0.1:10555"]).unwrap();
    assert!(read(&tmp.path().join("plugin.json")).contains("PROPFIND"));
    assert!(read(&tmp.path().join("envoy.yaml")).contains("port_value: 10555"));
    assert_eq!(read(&tmp.path().join("airlock.toml")), toml_before, "the service side is untouched");

    let plugin_before = read(&tmp.path().join("plugin.json"));
    std::fs::write(&rego, "package airlock\n\ndecision := {\n").unwrap();
    let e = init(tmp.path(), &["--envoy-only"]).unwrap_err().to_string();
    assert!(e.contains("does not compile"), "{e}");
    assert_eq!(read(&tmp.path().join("plugin.json")), plugin_before, "a broken policy never reaches Envoy");
}

#[test]
fn bad_addresses_are_named() {
    let tmp = tempfile::tempdir().unwrap();
    let e = init(tmp.path(), &["--upstream", "localhost"]).unwrap_err().to_string();
    assert!(e.contains("HOST:PORT"), "{e}");
    let e = init(tmp.path(), &["--upstream", "localhost:http"]).unwrap_err().to_string();
    assert!(e.contains("not a port"), "{e}");
    assert!(Cli::try_parse_from(["init", "--listen", "nowhere"]).is_err());
}
