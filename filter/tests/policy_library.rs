#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The example policy library in `policies/library` compiles to RVM bytecode and decides
//! inside the filter's engine exactly as its modules document.
//!
//! Modules are every `.rego` except `*_test.rego`; `data.json` files are placed by their
//! directory like an OPA bundle (`iam/data.json` → `data.iam`).

use airlock_filter::config::PolicyConfig;
use airlock_filter::decision::{from_policy_output, Effect};
use airlock_filter::policy::Policy;
use regorus::Value;
use serde_json::{json, Value as Json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn library_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies/library")
}

fn walk(dir: &Path, rel: &mut Vec<String>, modules: &mut BTreeMap<String, String>, data: &mut Json) {
    let mut entries: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    entries.sort();
    for path in entries {
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        if path.is_dir() {
            rel.push(name);
            walk(&path, rel, modules, data);
            rel.pop();
        } else if name.ends_with(".rego") && !name.ends_with("_test.rego") {
            let key = rel.iter().chain(std::iter::once(&name)).cloned().collect::<Vec<_>>().join("/");
            modules.insert(key, std::fs::read_to_string(&path).unwrap());
        } else if name == "data.json" {
            let doc: Json = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
            let mut slot = &mut *data;
            for seg in rel.iter() {
                slot = slot.as_object_mut().unwrap().entry(seg.clone()).or_insert_with(|| json!({}));
            }
            slot.as_object_mut().unwrap().extend(doc.as_object().unwrap().clone());
        }
    }
}

fn library() -> Policy {
    library_with_index(true)
}

/// The library with the rule index on or off (`policy.rule_index`).
fn library_with_index(rule_index: bool) -> Policy {
    let mut modules = BTreeMap::new();
    let mut data = json!({});
    walk(&library_dir(), &mut Vec::new(), &mut modules, &mut data);
    assert!(modules.len() >= 9, "{:?}", modules.keys());
    Policy::compile(&PolicyConfig {
        modules,
        data: Some(data),
        bundle: None,
        entrypoint: "data.airlock.decision".into(),
        revision: "library".into(),
        mode: Default::default(),
        max_instructions: 100_000,
        rule_index,
    })
    .unwrap()
}

fn req(method: &str, host: &str, path: &str) -> Json {
    json!({"request": {"method": method, "scheme": "https", "host": host, "port": 443, "path": path,
                       "query": {}, "headers": {}, "body_size": 0},
           "agent": {"id": "spiffe://corp/agent/ops-bot", "source": "mtls", "claims": {}, "acts_for": []}})
}

fn with(mut r: Json, field: &str, value: Json) -> Json {
    r["request"][field] = value;
    r
}

fn mcp(tool: &str, args: Json) -> Json {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": tool, "arguments": args}});
    let r = with(req("POST", "mcp.example.com", "/mcp"), "body", body);
    with(r, "jsonrpc", json!({"method": "tools/call", "tool": tool, "arguments": args}))
}

#[test]
fn library_decides_as_documented_in_the_filter_engine() {
    let mut p = library();
    let cases: Vec<(Json, Effect, &str)> = vec![
        (req("GET", "api.example.com", "/v1/reports"), Effect::Allow, "known-host-read"),
        (req("GET", "evil.example.net", "/"), Effect::Deny, "unknown-host"),
        (req("POST", "api.example.com", "/v1/things"), Effect::Deny, "default-deny"),
        // exports
        (
            with(
                req("POST", "api.example.com", "/v1/exports"),
                "body",
                json!({"destination": {"uri": "s3://partner"}}),
            ),
            Effect::Approve,
            "data-export",
        ),
        (
            with(
                req("POST", "api.example.com", "/v1/exports"),
                "body",
                json!({"destination": {"uri": "s3://corp-analytics"}}),
            ),
            Effect::Allow,
            "data-export-internal",
        ),
        (req("PUT", "partner-share.s3.amazonaws.com", "/dump.csv"), Effect::Approve, "data-export-storage"),
        (req("POST", "pastebin.com", "/api/api_post.php"), Effect::Deny, "data-export-blocked"),
        // iam
        (
            with(
                req("POST", "iam.amazonaws.com", "/"),
                "query",
                json!({"Action": ["AttachRolePolicy"], "PolicyArn": ["arn:aws:iam::aws:policy/ReadOnlyAccess"]}),
            ),
            Effect::Approve,
            "iam-change",
        ),
        (
            with(
                req("POST", "iam.amazonaws.com", "/"),
                "query",
                json!({"Action": ["AttachUserPolicy"], "PolicyArn": ["arn:aws:iam::aws:policy/AdministratorAccess"]}),
            ),
            Effect::Deny,
            "iam-admin-grant",
        ),
        (
            with(req("POST", "iam.amazonaws.com", "/"), "query", json!({"Action": ["ListRoles"]})),
            Effect::Allow,
            "iam-read",
        ),
        (
            req("POST", "cloudresourcemanager.googleapis.com", "/v1/projects/corp-prod:setIamPolicy"),
            Effect::Approve,
            "iam-change",
        ),
        (
            with(
                req("POST", "k8s.corp.example", "/apis/rbac.authorization.k8s.io/v1/namespaces/team/rolebindings"),
                "body",
                json!({"roleRef": {"name": "cluster-admin"}}),
            ),
            Effect::Deny,
            "iam-admin-grant",
        ),
        // network
        (
            with(
                req("POST", "ec2.us-east-1.amazonaws.com", "/"),
                "query",
                json!({"Action": ["AuthorizeSecurityGroupIngress"], "IpPermissions.1.IpRanges.1.CidrIp": ["10.0.0.0/8"]}),
            ),
            Effect::Approve,
            "network-change",
        ),
        (
            with(
                req("POST", "ec2.us-east-1.amazonaws.com", "/"),
                "query",
                json!({"Action": ["AuthorizeSecurityGroupIngress"], "IpPermissions.1.IpRanges.1.CidrIp": ["0.0.0.0/0"]}),
            ),
            Effect::Deny,
            "network-open-to-world",
        ),
        (
            req("GET", "compute.googleapis.com", "/compute/v1/projects/p/global/firewalls"),
            Effect::Allow,
            "known-host-read",
        ),
        (
            req("DELETE", "k8s.corp.example", "/apis/networking.k8s.io/v1/namespaces/pay/networkpolicies/deny-all"),
            Effect::Approve,
            "network-change",
        ),
        // secrets: approve beats the host's GET allow
        (req("GET", "vault.corp.example", "/v1/secret/data/prod/db"), Effect::Approve, "secret-read"),
        (req("GET", "vault.corp.example", "/v1/sys/policies/acl"), Effect::Deny, "vault-sys-access"),
        (req("GET", "k8s.corp.example", "/api/v1/namespaces/prod/secrets"), Effect::Deny, "secret-bulk-read"),
        (
            with(
                req("POST", "secretsmanager.us-east-1.amazonaws.com", "/"),
                "headers",
                json!({"x-amz-target": "secretsmanager.GetSecretValue"}),
            ),
            Effect::Approve,
            "secret-read",
        ),
        // deploy
        (req("POST", "deploy.corp.example", "/v1/deployments"), Effect::Approve, "production-deploy"),
        (req("POST", "deploy.corp.example", "/v1/config"), Effect::Approve, "production-config-push"),
        (req("POST", "deploy.staging.corp.example", "/v1/deployments"), Effect::Allow, "non-production-deploy"),
        (
            req("PATCH", "k8s.corp.example", "/apis/apps/v1/namespaces/prod/deployments/web"),
            Effect::Approve,
            "production-deploy",
        ),
        (
            with(
                req("POST", "api.github.com", "/repos/corp/web/deployments"),
                "body",
                json!({"environment": "production"}),
            ),
            Effect::Approve,
            "production-deploy",
        ),
        // databases
        (req("POST", "db-admin.corp.example", "/v1/dumps"), Effect::Approve, "db-dump"),
        (
            with(req("POST", "rds.us-east-1.amazonaws.com", "/"), "query", json!({"Action": ["StartExportTask"]})),
            Effect::Approve,
            "db-dump",
        ),
        (
            with(req("POST", "warehouse.corp.example", "/v1/query"), "body", json!({"table": "orders", "limit": 100})),
            Effect::Allow,
            "db-bounded-read",
        ),
        (
            with(
                req("POST", "warehouse.corp.example", "/v1/query"),
                "body",
                json!({"table": "orders", "limit": 50000}),
            ),
            Effect::Approve,
            "db-bulk-read",
        ),
        (
            with(req("POST", "warehouse.corp.example", "/v1/query"), "body", json!({"table": "users"})),
            Effect::Approve,
            "db-bulk-read",
        ),
        // mcp
        (mcp("docs.read", json!({})), Effect::Allow, "mcp-tool-allowed"),
        (mcp("db.query", json!({"table": "payments"})), Effect::Approve, "mcp-tool-approval"),
        (mcp("db.query", json!({"table": "orders"})), Effect::Allow, "mcp-tool-allowed"),
        (mcp("k8s.scale", json!({"replicas": 0})), Effect::Approve, "mcp-tool-approval"),
        (mcp("iam.grant_role", json!({"role": "roles/owner"})), Effect::Deny, "mcp-tool-denied"),
        (mcp("shell.exec", json!({"cmd": "ls"})), Effect::Deny, "mcp-tool-denied"),
        (mcp("something.new", json!({})), Effect::Deny, "mcp-unknown-tool"),
    ];
    let mut failures = Vec::new();
    for (input, effect, rule) in &cases {
        let d = from_policy_output(p.evaluate(Value::from(input.clone())));
        if (d.effect, d.rule_or_default()) != (*effect, *rule) {
            failures.push(format!("{input}\n  expected {effect:?}/{rule}, got {d:?}"));
        }
    }
    assert!(failures.is_empty(), "{} of {} cases wrong:\n{}", failures.len(), cases.len(), failures.join("\n"));
}

/// Inputs on which regorus's RVM (the filter's engine) used to decide differently from
/// OPA and from the library's own tests (issue #16): an `else` chain whose clauses bind
/// their value in the body ended at undefined instead of falling through.
#[test]
fn library_decides_what_opa_decides_where_the_rvm_once_differed() {
    let mut p = library();
    let rbac = "/apis/rbac.authorization.k8s.io/v1/namespaces/team/rolebindings/ops";
    let cases: Vec<(Json, Effect, &str, &str)> = vec![
        // Was allow/known-host-read/low: a single Kubernetes secret read needs approval.
        (
            req("GET", "k8s.corp.example", "/api/v1/namespaces/prod/secrets/db-password"),
            Effect::Approve,
            "secret-read",
            "high",
        ),
        // Was deny/default-deny: an RBAC write is an IAM change for a reviewer.
        (
            with(req("PUT", "k8s.corp.example", rbac), "body", json!({"roleRef": {"kind": "Role", "name": "viewer"}})),
            Effect::Approve,
            "iam-change",
            "high",
        ),
        // An AWS IAM call whose action is not visible (form-encoded body) is critical.
        (req("POST", "iam.amazonaws.com", "/"), Effect::Approve, "iam-change", "critical"),
    ];
    let mut failures = Vec::new();
    for (input, effect, rule, risk) in &cases {
        let d = from_policy_output(p.evaluate(Value::from(input.clone())));
        let got_risk = d.risk.map(|r| format!("{r:?}").to_lowercase()).unwrap_or_default();
        if (d.effect, d.rule_or_default(), got_risk.as_str()) != (*effect, *rule, *risk) {
            failures.push(format!("{input}: {d:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn library_decisions_carry_the_documented_fields() {
    let mut p = library();
    let d = from_policy_output(p.evaluate(Value::from(with(
        req("POST", "api.example.com", "/v1/exports"),
        "body",
        json!({"destination": {"uri": "s3://partner", "credentials": "x"}}),
    ))));
    assert_eq!(d.effect, Effect::Approve);
    assert_eq!(d.credential.as_deref(), Some("export-api"));
    assert_eq!(d.reuse.as_deref(), Some("once"));
    assert_eq!(d.expires_in.as_deref(), Some("15m"));
    assert_eq!(d.redact, vec!["request.body.destination.credentials".to_string()]);
    assert_eq!(d.approvers.unwrap().groups, vec!["data-owners".to_string()]);

    let d = from_policy_output(p.evaluate(Value::from(with(
        req("POST", "iam.amazonaws.com", "/"),
        "query",
        json!({"Action": ["CreateAccessKey"]}),
    ))));
    assert_eq!(d.approvers.unwrap().quorum, 2);
}

/// The example inputs in `policies/library/examples` (what `policy eval` and the
/// library benches run) decide as the README's "Evaluation cost" table lists them.
#[test]
fn every_example_input_decides_as_listed() {
    let expected: BTreeMap<&str, (Effect, &str)> = [
        ("databases-bulk-read", (Effect::Approve, "db-bulk-read")),
        ("default-deny", (Effect::Deny, "default-deny")),
        ("deploy-production", (Effect::Approve, "production-deploy")),
        ("exports-partner", (Effect::Approve, "data-export")),
        ("hosts-known-read", (Effect::Allow, "known-host-read")),
        ("hosts-unknown", (Effect::Deny, "unknown-host")),
        ("iam-attach-role-policy", (Effect::Approve, "iam-change")),
        ("mcp-db-query", (Effect::Approve, "mcp-tool-approval")),
        ("network-open-to-world", (Effect::Deny, "network-open-to-world")),
        ("vault-read", (Effect::Approve, "secret-read")),
    ]
    .into_iter()
    .collect();
    let mut p = library();
    let mut seen = Vec::new();
    for entry in std::fs::read_dir(library_dir().join("examples")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_str().unwrap().to_string();
        let input = Value::from_json_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let d = from_policy_output(p.evaluate(input));
        let want = expected.get(name.as_str()).unwrap_or_else(|| panic!("{name}: add it to this list"));
        assert_eq!((d.effect, d.rule_or_default()), *want, "{name}: {d:?}");
        seen.push(name);
    }
    assert_eq!(seen.len(), expected.len(), "an example listed here is missing: {seen:?}");
}

/// A JSON-RPC message to `host` `path` by `method`, as the filter builds its input.
fn rpc(http_method: &str, host: &str, path: &str, rpc_method: &str) -> Json {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": rpc_method});
    let r = with(req(http_method, host, path), "body", body);
    with(r, "jsonrpc", json!({"method": rpc_method}))
}

/// The `mcp` module gates MCP endpoints only (`data.mcp.endpoints`): the streamable HTTP
/// transport passes there, and a JSON-RPC body anywhere else changes nothing. Before
/// this, a `ping` body turned a default-denied write on any known host into an allow.
#[test]
fn mcp_rules_apply_only_on_mcp_endpoints() {
    let mut p = library();
    let decide = |p: &mut Policy, input: &Json| {
        let d = from_policy_output(p.evaluate(Value::from(input.clone())));
        (d.effect, d.rule_or_default().to_string())
    };
    let allow = |rule: &str| (Effect::Allow, rule.to_string());
    let default_deny = (Effect::Deny, "default-deny".to_string());
    let cases: Vec<(Json, (Effect, String))> = vec![
        // Protocol methods and the transport on the endpoint.
        (rpc("POST", "mcp.example.com", "/mcp", "initialize"), allow("mcp-protocol")),
        (rpc("POST", "mcp.example.com", "/mcp", "notifications/initialized"), allow("mcp-protocol")),
        (rpc("POST", "mcp.example.com", "/mcp", "notifications/cancelled"), allow("mcp-protocol")),
        (rpc("POST", "mcp.example.com", "/mcp", "ping"), allow("mcp-protocol")),
        (rpc("POST", "mcp.example.com", "/mcp/", "tools/list"), allow("mcp-protocol")),
        (req("GET", "mcp.example.com", "/mcp"), allow("mcp-transport")),
        (req("DELETE", "mcp.example.com", "/mcp"), allow("mcp-transport")),
        // Not the endpoint: same host, other paths; other hosts; other HTTP methods.
        (rpc("POST", "mcp.example.com", "/mcpx", "ping"), default_deny.clone()),
        (rpc("POST", "mcp.example.com", "/admin", "tools/list"), default_deny.clone()),
        (req("GET", "mcp.example.com", "/admin"), default_deny.clone()),
        (rpc("PUT", "mcp.example.com", "/mcp", "ping"), default_deny.clone()),
        (rpc("POST", "api.example.com", "/v1/things", "ping"), default_deny.clone()),
        (rpc("POST", "api.example.com", "/v1/things", "initialize"), default_deny.clone()),
        (rpc("POST", "api.example.com", "/v1/things", "notifications/initialized"), default_deny.clone()),
        // An unlisted method on the endpoint is left to default-deny.
        (rpc("POST", "mcp.example.com", "/mcp", "sampling/createMessage"), default_deny.clone()),
    ];
    let mut failures = Vec::new();
    for (input, want) in &cases {
        let got = decide(&mut p, input);
        if got != *want {
            failures.push(format!("{input}\n  expected {want:?}, got {got:?}"));
        }
    }
    // A tool call off the endpoint is not a tool call: a safe tool there is no allow.
    let mut off = mcp("docs.read", json!({}));
    off["request"]["host"] = json!("api.example.com");
    off["request"]["path"] = json!("/v1/things");
    let got = decide(&mut p, &off);
    if got != default_deny {
        failures.push(format!("tools/call off the endpoint: {got:?}"));
    }
    // A RoleBinding write padded with a JSON-RPC ping is still a RoleBinding write.
    let rb =
        rpc("PUT", "k8s.corp.example", "/apis/rbac.authorization.k8s.io/v1/namespaces/team/rolebindings/x", "ping");
    let got = decide(&mut p, &rb);
    if got.0 == Effect::Allow || got.1.starts_with("mcp-") {
        failures.push(format!("rolebinding with a ping body: {got:?}"));
    }
    assert!(failures.is_empty(), "{} of {} cases wrong:\n{}", failures.len(), cases.len() + 2, failures.join("\n"));
}

/// The filter builds only the body members the policy can read
/// (`airlock_filter::cache::BodyView`); the library decides on that exactly as on the
/// whole body: every example input and a set of bodies per module, each also with a
/// bulky member no module reads.
#[test]
fn the_body_the_policy_can_read_decides_as_the_whole_body() {
    use airlock_filter::body::read_json_seen;
    use airlock_filter::cache::BodyView;
    let mut p = library();
    let view = p.body_view().clone();
    let BodyView::Members(names) = &view else { panic!("the library reads the body as a whole: {view:?}") };
    for read in ["destination", "Action", "limit", "table", "environment", "inputs", "roleRef", "policy"] {
        assert!(names.iter().any(|n| n == read), "{read} not in {names:?}");
    }
    let mut inputs: Vec<Json> = Vec::new();
    for entry in std::fs::read_dir(library_dir().join("examples")).unwrap() {
        inputs.push(serde_json::from_str(&std::fs::read_to_string(entry.unwrap().path()).unwrap()).unwrap());
    }
    let exports = req("POST", "api.example.com", "/v1/exports");
    for body in [
        json!({"destination": {"uri": "s3://partner", "credentials": "AKIA"}}),
        json!({"destination": {"uri": "s3://corp-analytics"}}),
        json!({"destination": "s3://corp-analytics"}),
        json!({"uri": "s3://corp-analytics"}),
        json!({}),
    ] {
        inputs.push(with(exports.clone(), "body", body));
    }
    let mcp_inputs = [
        mcp("db.query", json!({"table": "payments"})),
        mcp("docs.read", json!({})),
        mcp("shell.exec", json!({"cmd": "ls"})),
    ];
    inputs.extend(mcp_inputs);
    let mut checked = 0;
    for input in inputs {
        let Some(body) = input["request"].get("body").cloned() else { continue };
        let mut bodies = vec![body.clone()];
        if let Some(obj) = body.as_object() {
            let mut bulky = obj.clone();
            bulky.insert("rows".into(), json!([{"id": 1, "amount": 1.5, "ssn": "1"}, {"id": 2, "amount": 2.5}]));
            bulky.insert("zzz_unread".into(), json!({"destination": {"uri": "s3://corp-analytics"}}));
            bodies.push(Json::Object(bulky));
        }
        for body in bodies {
            let mut full = input.clone();
            full["request"]["body"] = body.clone();
            let whole = from_policy_output(p.evaluate(Value::from(full.clone())));
            let seen = read_json_seen(body.to_string().as_bytes(), &view).unwrap().value;
            let mut partial = full;
            partial["request"]["body"] = serde_json::to_value(&seen).unwrap();
            let part = from_policy_output(p.evaluate(Value::from(partial)));
            assert_eq!(whole, part, "{body}");
            checked += 1;
        }
    }
    assert!(checked >= 20, "{checked}");
}

/// Every string the library's data holds, key or value: the hosts, paths, methods, tool
/// names and ids its rules look up, so generated requests reach every module.
fn vocabulary(v: &Json, out: &mut std::collections::BTreeSet<String>) {
    match v {
        Json::Object(o) => {
            for (k, v) in o {
                out.insert(k.clone());
                vocabulary(v, out);
            }
        }
        Json::Array(a) => a.iter().for_each(|v| vocabulary(v, out)),
        Json::String(s) => {
            out.insert(s.clone());
        }
        _ => {}
    }
}

/// The rule index never changes a decision: the library's example inputs, and requests
/// generated from them by putting hosts, paths, methods and agents from the library's data
/// (and some it does not know) in their place, decide the same with the index on and off —
/// same value, or an error in both. The index must also skip something on most of them,
/// or this would prove nothing.
#[test]
fn the_rule_index_never_changes_a_library_decision() {
    let mut on = library_with_index(true);
    let mut off = library_with_index(false);
    assert!(on.indexed_rules() >= 8, "the index covers only {} of the library's modules", on.indexed_rules());
    assert_eq!(off.indexed_rules(), 0);

    let mut modules = BTreeMap::new();
    let mut data = json!({});
    walk(&library_dir(), &mut Vec::new(), &mut modules, &mut data);
    let mut words = std::collections::BTreeSet::new();
    vocabulary(&data, &mut words);
    let hosts: Vec<String> = words
        .iter()
        .filter(|w| w.contains('.') && !w.contains('/') && !w.contains(' '))
        .cloned()
        .chain(["unknown.example.com".to_string(), "".to_string()])
        .collect();
    let paths: Vec<String> =
        words.iter().filter(|w| w.starts_with('/')).cloned().chain(["/".to_string(), "/v1/x".to_string()]).collect();
    let methods = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "LIST"];
    // Agents the data grants something to (per-agent lookups), and one it does not know.
    let agents: Vec<String> = words
        .iter()
        .filter(|w| w.starts_with("spiffe://"))
        .cloned()
        .chain(["spiffe://corp/agent/unknown".to_string()])
        .collect();
    let mut examples = Vec::new();
    let mut dir: Vec<_> =
        std::fs::read_dir(library_dir().join("examples")).unwrap().map(|e| e.unwrap().path()).collect();
    dir.sort();
    for p in dir {
        examples.push(serde_json::from_str::<Json>(&std::fs::read_to_string(p).unwrap()).unwrap());
    }
    assert!(hosts.len() > 10 && paths.len() > 5 && agents.len() > 1 && !examples.is_empty(), "{hosts:?} {paths:?}");

    // A fixed linear congruential sequence: the same inputs on every run.
    let mut seed: u64 = 12;
    let mut pick = |n: usize| {
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (seed >> 33) as usize % n
    };
    let mut inputs = examples.clone();
    for _ in 0..2500 {
        let mut r = examples[pick(examples.len())].clone();
        match pick(5) {
            0 => r["request"]["host"] = json!(hosts[pick(hosts.len())]),
            1 => r["request"]["path"] = json!(paths[pick(paths.len())]),
            2 => r["request"]["method"] = json!(methods[pick(methods.len())]),
            3 => {
                r["agent"]["id"] = json!(agents[pick(agents.len())]);
                r["request"]["path"] = json!(paths[pick(paths.len())]);
                r["request"]["host"] = json!(hosts[pick(hosts.len())]);
            }
            _ => {
                r["request"]["host"] = json!(hosts[pick(hosts.len())]);
                r["request"]["path"] = json!(paths[pick(paths.len())]);
                r["request"]["method"] = json!(methods[pick(methods.len())]);
            }
        }
        inputs.push(r);
    }
    let (mut skipped_some, mut decided) = (0, std::collections::BTreeMap::<String, usize>::new());
    for input in &inputs {
        let v = Value::from_json_str(&input.to_string()).unwrap();
        let a = on.evaluate(v.clone());
        let b = off.evaluate(v.clone());
        match (&a, &b) {
            (Ok(x), Ok(y)) => assert_eq!(x, y, "index on vs off for {input}"),
            (Err(_), Err(_)) => {}
            _ => panic!("index on {a:?} vs off {b:?} for {input}"),
        }
        if on.skipped_rules(&v) > 0 {
            skipped_some += 1;
        }
        let d = from_policy_output(a);
        *decided.entry(format!("{:?} {}", d.effect, d.rule_or_default())).or_default() += 1;
    }
    assert!(
        skipped_some * 10 >= inputs.len() * 9,
        "the index skipped rules on only {skipped_some} of {}",
        inputs.len()
    );
    // The generated requests reach many rules, not only the default.
    assert!(decided.len() >= 12, "{decided:?}");
}
