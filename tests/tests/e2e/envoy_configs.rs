//! Every shipped config in `envoy/` is checked: the Envoy ones rendered and run through
//! `envoy --mode validate` (which loads the real filter and its configuration), and read as
//! YAML for the properties that must never regress (FAIL_RELOAD, path normalization,
//! identity-header protection, admin on loopback); the Istio WasmPlugin read as YAML
//! (FAIL_CLOSE, phase) and its pluginConfig loaded into the real filter.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::e2e_support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use airlock_tests::e2e::envoy;
use airlock_tests::e2e::gateway::{test_vars, APPROVAL_HOST, UPSTREAM_HOST};
use airlock_tests::e2e::plugin::{plugin_config, PluginOptions};
use airlock_tests::e2e::template::{self, Vars};
use airlock_tests::e2e::tls::TestCa;
use e2e_support::filter_module;
use serde_json::{json, Value};
use yaml_rust2::{Yaml, YamlLoader};

const ISTIO: &str = "istio-wasmplugin.yaml";
const ISTIO_ENVOYFILTER: &str = "istio-envoyfilter.yaml";
const IDENTITY_HEADER: &str = "x-airlock-agent";

/// The Envoy templates in `envoy/` (everything but the Istio resources, `istio-*`).
fn envoy_templates() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(template::envoy_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| (n.ends_with(".yaml") || n.ends_with(".yml")) && !n.starts_with("istio-"))
        .collect();
    names.sort();
    assert!(
        ["demo.yaml", "egress-gateway.yaml", "sidecar.yaml"].iter().all(|n| names.iter().any(|m| m == n)),
        "expected configs missing from envoy/: {names:?}"
    );
    names
}

/// Test values with real files behind every path placeholder.
fn real_vars(dir: &Path, plugin: &Value) -> Vars {
    let ca = TestCa::new("config-check CA").unwrap();
    let ca_path = ca.write_pem(dir, "ca.pem").unwrap();
    let mut vars = test_vars(&filter_module(), plugin);
    vars.insert("AIRLOCK_UPSTREAM_CA".into(), ca_path.display().to_string());
    vars.insert("AIRLOCK_APPROVAL_CA".into(), ca_path.display().to_string());
    vars.insert("AIRLOCK_UPSTREAM_PORT".into(), "443".into());
    vars.insert("AIRLOCK_APPROVAL_PORT".into(), "8443".into());
    let (cert, key) = ca.client_cert("gateway.airlock.test").unwrap().write_pem(dir, "gateway-client").unwrap();
    vars.insert("AIRLOCK_APPROVAL_CLIENT_CERT".into(), cert.display().to_string());
    vars.insert("AIRLOCK_APPROVAL_CLIENT_KEY".into(), key.display().to_string());
    vars
}

fn render(dir: &Path, name: &str, vars: &Vars) -> PathBuf {
    let text = template::read_shipped(name).unwrap();
    template::render_to(&text, vars, dir, name).unwrap_or_else(|e| panic!("{name}: {e:#}"))
}

fn load_yaml(path: &Path) -> Yaml {
    let text = std::fs::read_to_string(path).unwrap();
    let mut docs = YamlLoader::load_from_str(&text).unwrap_or_else(|e| panic!("{} is not YAML: {e}", path.display()));
    assert_eq!(docs.len(), 1, "{}: one document", path.display());
    docs.remove(0)
}

/// Every mapping in the tree, depth first.
fn mappings(y: &Yaml) -> Vec<&Yaml> {
    let mut out = Vec::new();
    let mut stack = vec![y];
    while let Some(node) = stack.pop() {
        match node {
            Yaml::Hash(h) => {
                out.push(node);
                stack.extend(h.values());
            }
            Yaml::Array(a) => stack.extend(a.iter()),
            _ => {}
        }
    }
    out
}

fn scalars(y: &Yaml) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![y];
    while let Some(node) = stack.pop() {
        match node {
            Yaml::Hash(h) => {
                stack.extend(h.keys());
                stack.extend(h.values());
            }
            Yaml::Array(a) => stack.extend(a.iter()),
            Yaml::String(s) => out.push(s.clone()),
            _ => {}
        }
    }
    out
}

fn of_type<'a>(y: &'a Yaml, type_suffix: &str) -> Vec<&'a Yaml> {
    mappings(y).into_iter().filter(|m| m["@type"].as_str().is_some_and(|t| t.ends_with(type_suffix))).collect()
}

fn yaml_to_json(y: &Yaml) -> Value {
    match y {
        Yaml::Hash(h) => Value::Object(
            h.iter()
                .map(|(k, v)| {
                    let key = match k {
                        Yaml::String(s) => s.clone(),
                        other => format!("{other:?}"),
                    };
                    (key, yaml_to_json(v))
                })
                .collect(),
        ),
        Yaml::Array(a) => Value::Array(a.iter().map(yaml_to_json).collect()),
        Yaml::String(s) => json!(s),
        Yaml::Integer(i) => json!(i),
        Yaml::Real(r) => json!(r.parse::<f64>().unwrap()),
        Yaml::Boolean(b) => json!(b),
        _ => Value::Null,
    }
}

#[test]
fn every_envoy_config_validates() {
    let dir = tempfile::tempdir().unwrap();
    let vars = real_vars(dir.path(), &plugin_config(&PluginOptions::default()));
    let mut failures = Vec::new();
    for name in envoy_templates() {
        let path = render(dir.path(), &name, &vars);
        if let Err(e) = envoy::validate(&path) {
            failures.push(format!("{name}: {e:#}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn templates_use_only_known_placeholders() {
    let known: BTreeSet<String> = test_vars(Path::new("/x.wasm"), &json!({})).into_keys().collect();
    for name in envoy_templates() {
        let used = template::placeholders(&template::read_shipped(&name).unwrap()).unwrap();
        let unknown: Vec<_> = used.difference(&known).collect();
        assert!(unknown.is_empty(), "{name}: placeholders nobody fills: {unknown:?}");
        for needed in ["AIRLOCK_WASM", "AIRLOCK_PLUGIN_CONFIG", "AIRLOCK_ADMIN_PORT", "AIRLOCK_LISTEN_PORT"] {
            assert!(used.contains(needed), "{name}: no ${{{needed}}}");
        }
    }
}

#[test]
fn configs_fail_closed_normalize_paths_and_protect_identity() {
    let dir = tempfile::tempdir().unwrap();
    let vars = real_vars(dir.path(), &plugin_config(&PluginOptions::default()));
    for name in envoy_templates() {
        let doc = load_yaml(&render(dir.path(), &name, &vars));
        let all = scalars(&doc);
        assert!(!all.iter().any(|s| s == "FAIL_OPEN"), "{name}: FAIL_OPEN passes requests unchecked after a VM crash");
        assert!(mappings(&doc).iter().all(|m| m["fail_open"].as_bool() != Some(true)), "{name}: fail_open: true");
        assert_eq!(
            doc["admin"]["address"]["socket_address"]["address"].as_str(),
            Some("127.0.0.1"),
            "{name}: admin must listen on loopback only"
        );

        let wasm = of_type(&doc, "envoy.extensions.filters.http.wasm.v3.Wasm");
        assert_eq!(wasm.len(), 1, "{name}: one Airlock filter");
        let config = &wasm[0]["config"];
        assert_eq!(config["failure_policy"].as_str(), Some("FAIL_RELOAD"), "{name}");
        // Holding the headers while reading the body: without it body requests hang, and a
        // filter that let the headers go first would have them upstream before deciding.
        assert_eq!(
            config["allow_on_headers_stop_iteration"].as_bool(),
            Some(true),
            "{name}: allow_on_headers_stop_iteration"
        );
        assert_eq!(config["vm_config"]["runtime"].as_str(), Some("envoy.wasm.runtime.v8"), "{name}");
        assert_eq!(
            config["configuration"]["@type"].as_str(),
            Some("type.googleapis.com/google.protobuf.StringValue"),
            "{name}"
        );
        let plugin: Value = serde_json::from_str(config["configuration"]["value"].as_str().unwrap())
            .unwrap_or_else(|e| panic!("{name}: configuration is not JSON: {e}"));
        let cluster = plugin["approval_service"]["cluster"].as_str().unwrap().to_string();

        let clusters: Vec<&str> =
            doc["static_resources"]["clusters"].as_vec().unwrap().iter().filter_map(|c| c["name"].as_str()).collect();
        assert!(clusters.contains(&cluster.as_str()), "{name}: no cluster {cluster}: {clusters:?}");
        assert!(clusters.contains(&"airlock_approval"), "{name}: no airlock_approval cluster");

        let hcms = of_type(&doc, "HttpConnectionManager");
        assert!(!hcms.is_empty(), "{name}: no HTTP connection manager");
        for hcm in hcms {
            assert_eq!(hcm["normalize_path"].as_bool(), Some(true), "{name}: normalize_path");
            assert_eq!(hcm["merge_slashes"].as_bool(), Some(true), "{name}: merge_slashes");
            let escaped = hcm["path_with_escaped_slashes_action"].as_str();
            assert!(
                matches!(escaped, Some("KEEP_UNCHANGED") | Some("REJECT_REQUEST")),
                "{name}: path_with_escaped_slashes_action {escaped:?}"
            );
            // A held request has no stream activity; if its VM dies nobody resumes it, and
            // only the idle timeout ends it (request_timeout did not, measured in
            // e2e_vm_panic): set, above the hold plus the callout, far below Envoy's 300 s.
            let idle = hcm["stream_idle_timeout"].as_str().and_then(|t| t.strip_suffix('s')?.parse::<u64>().ok());
            let idle = idle.unwrap_or_else(|| panic!("{name}: stream_idle_timeout (whole seconds) must be set"));
            let held_ms = plugin["approval_service"]["hold_ms"].as_u64().unwrap_or(0)
                + plugin["approval_service"]["timeout_ms"].as_u64().unwrap_or(2000);
            assert!(
                idle * 1000 > held_ms && idle <= 120,
                "{name}: stream_idle_timeout {idle}s vs hold + callout {held_ms} ms"
            );
            let filters: Vec<&str> =
                hcm["http_filters"].as_vec().unwrap().iter().filter_map(|f| f["name"].as_str()).collect();
            let wasm_at = filters.iter().position(|f| *f == "envoy.filters.http.wasm").unwrap();
            assert_eq!(filters.last(), Some(&"envoy.filters.http.router"), "{name}: {filters:?}");

            // The identity header can only come from a trusted hop: either Envoy strips it
            // from untrusted peers, or a filter before Airlock overwrites it.
            let stripped = hcm["route_config"]["internal_only_headers"]
                .as_vec()
                .is_some_and(|h| h.iter().any(|v| v.as_str() == Some(IDENTITY_HEADER)))
                && hcm["use_remote_address"].as_bool() == Some(true)
                && !hcm["internal_address_config"].is_badvalue();
            let overwritten = filters[..wasm_at].contains(&"envoy.filters.http.header_mutation");
            // Or identity does not come from a header at all: a JWT verified before Airlock.
            let verified_jwt = filters[..wasm_at].contains(&"envoy.filters.http.jwt_authn");
            assert!(stripped || overwritten || verified_jwt, "{name}: {IDENTITY_HEADER} can be spoofed");
        }
    }
}

#[test]
fn egress_configs_verify_the_upstream() {
    let dir = tempfile::tempdir().unwrap();
    let vars = real_vars(dir.path(), &plugin_config(&PluginOptions::default()));
    for name in ["egress-gateway.yaml", "sidecar.yaml"] {
        let doc = load_yaml(&render(dir.path(), name, &vars));
        let tls = of_type(&doc, "UpstreamTlsContext");
        assert_eq!(tls.len(), 2, "{name}: TLS to the upstream and to the approval service");
        for ctx in tls {
            let sni = ctx["sni"].as_str().unwrap_or("");
            assert!(sni == UPSTREAM_HOST || sni == APPROVAL_HOST, "{name}: sni {sni:?}");
            let validation = &ctx["common_tls_context"]["validation_context"];
            assert!(validation["trusted_ca"]["filename"].as_str().is_some(), "{name}: CA");
            let sans = validation["match_typed_subject_alt_names"].as_vec().unwrap();
            assert!(
                sans.iter().any(|s| s["matcher"]["exact"].as_str() == Some(sni)),
                "{name}: the certificate must name {sni}"
            );
            let params = &ctx["common_tls_context"]["tls_params"];
            assert_eq!(params["tls_minimum_protocol_version"].as_str(), Some("TLSv1_2"), "{name}: {sni}");
            if sni == APPROVAL_HOST {
                let client = &ctx["common_tls_context"]["tls_certificates"][0];
                assert!(
                    client["certificate_chain"]["filename"].as_str().is_some()
                        && client["private_key"]["filename"].as_str().is_some(),
                    "{name}: the gateway's client certificate for the approval service"
                );
            }
        }
    }
}

#[test]
fn istio_wasmplugin_fails_closed_and_its_config_loads() {
    let path = template::envoy_dir().join(ISTIO);
    let doc = load_yaml(&path);
    assert_eq!(doc["apiVersion"].as_str(), Some("extensions.istio.io/v1alpha1"));
    assert_eq!(doc["kind"].as_str(), Some("WasmPlugin"));
    let spec = &doc["spec"];
    assert_eq!(spec["failStrategy"].as_str(), Some("FAIL_CLOSE"), "never fail open");
    assert!(matches!(spec["phase"].as_str(), Some("AUTHN") | Some("AUTHZ")), "phase {:?}", spec["phase"]);
    assert_eq!(spec["type"].as_str(), Some("HTTP"));
    assert!(spec["url"].as_str().is_some_and(|u| !u.is_empty()), "url");
    assert!(spec["selector"]["matchLabels"].as_hash().is_some(), "selector");
    let plugin = yaml_to_json(&spec["pluginConfig"]);
    assert!(
        plugin["approval_service"]["cluster"].as_str().is_some_and(|c| c.starts_with("outbound|")),
        "Istio names clusters outbound|port||host: {plugin}"
    );
    assert!(plugin["approval_service"]["signing"]["key_base64"].is_string());
    assert!(plugin["policy"]["modules"].as_object().is_some_and(|m| !m.is_empty()));

    // The real filter accepts this pluginConfig (on_configure runs under --mode validate).
    let dir = tempfile::tempdir().unwrap();
    let vars = real_vars(dir.path(), &plugin);
    let rendered = render(dir.path(), "demo.yaml", &vars);
    envoy::validate(&rendered).unwrap_or_else(|e| panic!("Istio pluginConfig refused: {e:#}"));
}

#[test]
fn istio_envoyfilter_holds_headers_fails_closed_and_its_config_loads() {
    let doc = load_yaml(&template::envoy_dir().join(ISTIO_ENVOYFILTER));
    assert_eq!(doc["apiVersion"].as_str(), Some("networking.istio.io/v1alpha3"));
    assert_eq!(doc["kind"].as_str(), Some("EnvoyFilter"));
    let patches = doc["spec"]["configPatches"].as_vec().unwrap();
    assert_eq!(patches.len(), 2);
    let patch = &patches[0];
    assert_eq!(patch["applyTo"].as_str(), Some("HTTP_FILTER"));
    assert_eq!(patch["patch"]["operation"].as_str(), Some("INSERT_BEFORE"));
    let config = &patch["patch"]["value"]["typed_config"]["config"];
    assert_eq!(config["failure_policy"].as_str(), Some("FAIL_RELOAD"), "never fail open");
    assert_eq!(config["allow_on_headers_stop_iteration"].as_bool(), Some(true));
    assert_eq!(config["vm_config"]["runtime"].as_str(), Some("envoy.wasm.runtime.v8"));
    assert_eq!(
        config["vm_config"]["code"]["remote"]["sha256"].as_str().map(str::len),
        Some(64),
        "a remote module is pinned by digest"
    );
    assert!(!scalars(&doc).iter().any(|s| s == "FAIL_OPEN"));
    let plugin: Value = serde_json::from_str(config["configuration"]["value"].as_str().unwrap())
        .unwrap_or_else(|e| panic!("configuration is not JSON: {e}"));
    assert!(plugin["approval_service"]["cluster"].as_str().is_some_and(|c| c.starts_with("outbound|")));
    // The gateway's idle timeout ends a request held when the VM died (see demo.yaml).
    let hcm = &patches[1];
    assert_eq!(hcm["applyTo"].as_str(), Some("NETWORK_FILTER"));
    assert_eq!(hcm["patch"]["operation"].as_str(), Some("MERGE"));
    let idle = hcm["patch"]["value"]["typed_config"]["stream_idle_timeout"].as_str();
    let idle: u64 = idle.and_then(|t| t.strip_suffix('s')?.parse().ok()).expect("stream_idle_timeout in whole seconds");
    let held_ms = plugin["approval_service"]["hold_ms"].as_u64().unwrap_or(0)
        + plugin["approval_service"]["timeout_ms"].as_u64().unwrap_or(2000);
    assert!(idle * 1000 > held_ms && idle <= 120, "stream_idle_timeout {idle}s vs hold + callout {held_ms} ms");

    // The real filter accepts this configuration.
    let dir = tempfile::tempdir().unwrap();
    let vars = real_vars(dir.path(), &plugin);
    let rendered = render(dir.path(), "demo.yaml", &vars);
    envoy::validate(&rendered).unwrap_or_else(|e| panic!("EnvoyFilter configuration refused: {e:#}"));
}

#[test]
fn invalid_plugin_config_is_refused() {
    // Proves the validation above really runs the filter's on_configure.
    let dir = tempfile::tempdir().unwrap();
    let mut plugin = plugin_config(&PluginOptions::default());
    plugin["policy"]["max_body"] = json!(1);
    let vars = real_vars(dir.path(), &plugin);
    let rendered = render(dir.path(), "demo.yaml", &vars);
    let err = envoy::validate(&rendered).expect_err("an unknown key must be refused");
    let text = format!("{err:#}");
    assert!(text.contains("max_body"), "the refusal names the field: {text}");
}

#[test]
fn render_script_matches_the_test_renderer() {
    let dir = tempfile::tempdir().unwrap();
    let plugin = plugin_config(&PluginOptions::default());
    let plugin_file = dir.path().join("plugin.json");
    std::fs::write(&plugin_file, plugin.to_string()).unwrap();
    let vars = real_vars(dir.path(), &plugin);
    let script = airlock_tests::wasm::workspace_root().join("scripts").join("render-envoy.sh");
    for name in envoy_templates() {
        let expected = template::render(&template::read_shipped(&name).unwrap(), &vars).unwrap();
        let out = dir.path().join(format!("script-{name}"));
        let mut cmd = Command::new("bash");
        cmd.arg(&script).arg(template::envoy_dir().join(&name)).arg(&out);
        for (k, v) in &vars {
            if k != "AIRLOCK_PLUGIN_CONFIG" {
                cmd.env(k, v);
            }
        }
        cmd.env("AIRLOCK_PLUGIN_CONFIG_FILE", &plugin_file);
        let status = cmd.output().unwrap();
        assert!(status.status.success(), "{name}: {}", String::from_utf8_lossy(&status.stderr));
        assert_eq!(std::fs::read_to_string(&out).unwrap(), expected, "{name}");
    }
    // A missing value is an error that names it.
    let output = Command::new("bash")
        .arg(&script)
        .arg(template::envoy_dir().join("demo.yaml"))
        .arg(dir.path().join("never.yaml"))
        .env_remove("AIRLOCK_WASM")
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("AIRLOCK_WASM"));
}
