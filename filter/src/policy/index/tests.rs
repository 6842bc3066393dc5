#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::policy::tests::policy_config;
use crate::policy::Policy;
use regorus::Value;

/// The entrypoint collects module `m`'s decision, as the library does.
fn composed(module: &str) -> String {
    format!(
        "package airlock\n\
         default decision := {{\"effect\": \"deny\"}}\n\
         decision := d if d := data.airlock.rules.m.decision\n\
         {module}"
    )
}

fn compile(rego: &str, index: bool) -> Policy {
    let (main, module) = rego.split_once("----\n").unwrap();
    let mut cfg = policy_config(main);
    cfg.modules.insert("m.rego".into(), module.to_string());
    cfg.rule_index = index;
    cfg.data = Some(serde_json::json!({
        "hosts": {"api.example.com": true, "off.example.com": false},
        "routes": {"api.example.com": {"/v1/exports": "export-api"}},
        "endpoints": [{"host": "api.example.com", "path": "/mcp"}, {"host": 7}],
        "grants": {
            "bot-a": {"/v1/a": true, "/v1/off": false},
            "bot-b": {"/v1/b": {"level": "read"}},
        },
        "lists": {"bot-c": [1, false], "bot-d": {"/v1/d": true}},
    }));
    Policy::compile(&cfg).unwrap()
}

/// Evaluate with and without the index; they must agree (value, or both an error).
/// Returns whether the index skipped the module's decision, and the outcome.
fn both(rego: &str, input: &str) -> (bool, String) {
    let mut on = compile(rego, true);
    let mut off = compile(rego, false);
    let input = Value::from_json_str(input).unwrap();
    let skipped = !on.index.undefined_for(&input).is_empty();
    let a = on.evaluate(input.clone());
    let b = off.evaluate(input);
    let show = |r: &Result<Value, String>| match r {
        Ok(v) => v.to_string(),
        Err(_) => "error".to_string(),
    };
    assert_eq!(show(&a), show(&b), "index on vs off for {rego}");
    (skipped, show(&a))
}

fn policy(module_body: &str) -> String {
    format!("{}----\npackage airlock.rules.m\nimport rego.v1\n{module_body}", composed(""))
}

const GET_API: &str = r#"{"request": {"method": "GET", "host": "api.example.com", "path": "/v1/x"}}"#;
const POST_API: &str = r#"{"request": {"method": "POST", "host": "api.example.com", "path": "/v1/exports"}}"#;
const GET_OTHER: &str = r#"{"request": {"method": "GET", "host": "other.example.com", "path": "/v1/x"}}"#;
const GET_OFF: &str = r#"{"request": {"method": "GET", "host": "off.example.com", "path": "/v1/x"}}"#;

#[test]
fn a_data_lookup_guard_skips_the_rule_when_the_field_is_not_a_key() {
    let p = policy(r#"decision := {"effect": "allow"} if data.hosts[input.request.host]"#);
    assert_eq!(both(&p, GET_API), (false, r#"{"effect":"allow"}"#.into()));
    assert_eq!(both(&p, GET_OTHER), (true, r#"{"effect":"deny"}"#.into()));
    // A key whose value is `false` does not make the literal hold.
    assert_eq!(both(&p, GET_OFF), (true, r#"{"effect":"deny"}"#.into()));
    assert!(both(&p, r#"{"request": {"host": 5}}"#).0);
    assert!(both(&p, r#"{}"#).0);
}

#[test]
fn else_chains_need_every_branch_to_fail() {
    let p = policy(
        r#"decision := {"effect": "deny"} if {
  input.request.method == "DELETE"
} else := {"effect": "approve"} if {
  input.request.method == "POST"
  data.routes[input.request.host][input.request.path]
}"#,
    );
    assert_eq!(both(&p, POST_API), (false, r#"{"effect":"approve"}"#.into()));
    assert_eq!(both(&p, GET_API), (true, r#"{"effect":"deny"}"#.into()));
    assert!(!both(&p, r#"{"request": {"method": "DELETE"}}"#).0);
}

#[test]
fn helper_rules_and_constant_sets_are_followed() {
    let p = policy(
        r#"writes := {"POST": true, "PUT": true, "GET": false}
known if data.hosts[input.request.host]
target := input.request.path if {
  writes[input.request.method]
  known
}
decision := {"effect": "approve", "on": target} if target"#,
    );
    assert_eq!(both(&p, POST_API), (false, r#"{"effect":"approve","on":"/v1/exports"}"#.into()));
    assert!(both(&p, GET_API).0, "GET is false in `writes`");
    assert!(both(&p, r#"{"request": {"method": "PUT", "host": "x"}}"#).0);
}

#[test]
fn an_error_before_the_guard_is_never_hidden() {
    // The guard comes after a literal that raises for a non-numeric `q`: the index must
    // not use it, or it would turn the error (deny) into "undefined".
    let p = policy(
        r#"decision := {"effect": "allow"} if {
  to_number(input.request.q) > 1
  data.hosts[input.request.host]
}"#,
    );
    assert_eq!(both(&p, r#"{"request": {"host": "other", "q": "abc"}}"#), (false, "error".into()));
    // After the guard, the raising literal is not reached when the guard fails.
    let p = policy(
        r#"decision := {"effect": "allow"} if {
  data.hosts[input.request.host]
  to_number(input.request.q) > 1
}"#,
    );
    assert_eq!(both(&p, r#"{"request": {"host": "other", "q": "abc"}}"#), (true, r#"{"effect":"deny"}"#.into()));
    assert_eq!(both(&p, r#"{"request": {"host": "api.example.com", "q": "abc"}}"#), (false, "error".into()));
}

#[test]
fn a_helper_that_may_raise_ends_the_scan() {
    // `n` may raise; a guard after it must not be used, or an input where `n` raises and
    // the guard fails would become undefined instead of an error.
    let p = policy(
        r#"n := to_number(input.request.q)
decision := {"effect": "allow"} if {
  n
  data.hosts[input.request.host]
}"#,
    );
    assert_eq!(both(&p, r#"{"request": {"host": "other", "q": "abc"}}"#), (false, "error".into()));
}

#[test]
fn startswith_is_skipped_only_for_strings_without_the_prefix() {
    let p = policy(r#"decision := {"effect": "allow"} if startswith(input.request.path, "/admin")"#);
    assert_eq!(both(&p, GET_API), (true, r#"{"effect":"deny"}"#.into()));
    assert_eq!(both(&p, r#"{"request": {"path": "/admin/x"}}"#), (false, r#"{"effect":"allow"}"#.into()));
    // A number would make `startswith` raise: the rule is run and the error kept.
    assert_eq!(both(&p, r#"{"request": {"path": 5}}"#), (false, "error".into()));
    assert!(both(&p, r#"{}"#).0);
}

#[test]
fn what_the_index_does_not_understand_is_always_evaluated() {
    for body in [
        r#"default decision := {"effect": "allow"}
decision := {"effect": "approve"} if data.hosts[input.request.host]"#,
        r#"decision := {"effect": "allow"} if not data.hosts[input.request.host]"#,
        r#"decision := {"effect": "allow"} if {
  some h in data.hosts
  h
}"#,
        r#"decision := {"effect": "allow"} if {
  h := lower(input.request.host)
  data.hosts[h]
}"#,
        r#"decision := {"effect": "allow"}"#,
    ] {
        let p = policy(body);
        for input in [GET_API, GET_OTHER, POST_API, "{}"] {
            assert!(!both(&p, input).0, "{body} on {input}");
        }
    }
}

#[test]
fn data_overlapping_a_rule_is_not_indexed() {
    // `data.airlock.rules.m.decision` is also a data document: not the rule's value alone.
    let p = policy(r#"decision := {"effect": "allow"} if data.hosts[input.request.host]"#);
    let (main, module) = p.split_once("----\n").unwrap();
    let mut cfg = policy_config(main);
    cfg.modules.insert("m.rego".into(), module.to_string());
    cfg.data = Some(serde_json::json!({"hosts": {}, "airlock": {"rules": {"m": {"decision": {"effect": "allow"}}}}}));
    let on = Policy::compile(&cfg);
    if let Ok(on) = on {
        assert_eq!(on.indexed_rules(), 0);
    }
}

#[test]
fn membership_and_equality_guards() {
    let p = policy(
        r#"decision := {"effect": "allow"} if {
  input.request.method in {"GET", "HEAD"}
  "api.example.com" == input.request.host
}"#,
    );
    assert_eq!(both(&p, GET_API), (false, r#"{"effect":"allow"}"#.into()));
    assert!(both(&p, POST_API).0);
    assert!(both(&p, GET_OTHER).0);
}

#[test]
fn some_in_data_then_equality_is_a_guard() {
    let p = policy(
        r#"endpoints := [{"host": "api.example.com", "path": "/mcp"}]
decision := {"effect": "allow"} if {
  some e in endpoints
  input.request.host == e.host
}"#,
    );
    // `endpoints` is a rule here, not data: nothing to index.
    assert!(!both(&p, GET_OTHER).0);
    let p = format!(
        "{}----\npackage airlock.rules.m\nimport rego.v1\n{}",
        composed(""),
        r#"decision := {"effect": "allow"} if {
  some e in data.endpoints
  input.request.host == e.host
}"#
    );
    assert_eq!(both(&p, POST_API), (false, r#"{"effect":"allow"}"#.into()));
    // A non-string `host` in the data (7) could equal a non-string field: not indexed.
    assert_eq!(both(&p, r#"{"request": {"host": 7}}"#), (false, r#"{"effect":"allow"}"#.into()));
    assert!(!both(&p, GET_OTHER).0);
}

#[test]
fn imported_names_and_locals_are_never_taken_for_rules() {
    // `known` is an import alias of data.hosts, `writes` a local: neither resolves to a
    // rule, so the scan stops and nothing is skipped that full evaluation would not.
    let p = format!(
        "{}----\npackage airlock.rules.m\nimport rego.v1\nimport data.hosts as known\n{}",
        composed(""),
        r#"writes := {"POST": true}
decision := {"effect": "allow"} if known[input.request.host]
other := {"effect": "allow"} if {
  writes := {"GET": true}
  writes[input.request.method]
}"#
    );
    for input in [GET_API, GET_OTHER, POST_API] {
        assert!(!both(&p, input).0, "{input}");
    }
}

/// `request` for `agent` on `path`, GET to api.example.com.
fn granted(agent: &str, path: &str) -> String {
    format!(
        r#"{{"agent": {{"id": "{agent}"}}, "request": {{"method": "GET", "host": "api.example.com", "path": "{path}"}}}}"#
    )
}

#[test]
fn nested_lookups_need_a_key_at_every_level() {
    let p = policy(r#"decision := {"effect": "allow"} if data.grants[input.agent.id][input.request.path]"#);
    let allow = r#"{"effect":"allow"}"#.to_string();
    let deny = r#"{"effect":"deny"}"#.to_string();
    assert_eq!(both(&p, &granted("bot-a", "/v1/a")), (false, allow.clone()));
    // bot-b's grant is evaluated by the VM; the index cannot tell agents' paths apart.
    assert_eq!(both(&p, &granted("bot-a", "/v1/b")), (false, deny.clone()));
    // A path no agent is granted, by an agent with grants: skipped.
    assert_eq!(both(&p, &granted("bot-a", "/v1/reports")), (true, deny.clone()));
    assert_eq!(both(&p, &granted("nobody", "/v1/a")), (true, deny.clone()));
    // A grant whose value is `false` holds for nobody at the last level.
    assert_eq!(both(&p, &granted("bot-a", "/v1/off")), (true, deny.clone()));
    // An array is indexed by numbers: a level with one gets no atom.
    let p = policy(r#"decision := {"effect": "allow"} if data.lists[input.agent.id][input.request.path]"#);
    assert_eq!(both(&p, r#"{"agent": {"id": "bot-c"}, "request": {"path": 0}}"#), (false, allow.clone()));
    assert_eq!(both(&p, r#"{"agent": {"id": "bot-c"}, "request": {"path": 1}}"#), (false, deny.clone()));
    assert_eq!(both(&p, &granted("bot-c", "/v1/x")), (false, deny.clone()));
    assert_eq!(both(&p, &granted("bot-e", "/v1/d")), (true, deny.clone()));

    // A field after the nested index descends into every value it can be.
    let p = policy(r#"decision := {"effect": "allow"} if data.grants[input.agent.id][input.request.path].level"#);
    assert_eq!(both(&p, &granted("bot-b", "/v1/b")), (false, allow.clone()));
    assert_eq!(both(&p, &granted("bot-a", "/v1/a")).1, deny);
    assert_eq!(both(&p, &granted("bot-a", "/v1/x")), (true, deny.clone()));
    let p = policy(r#"decision := {"effect": "allow"} if data.grants[input.agent.id][input.request.path].missing"#);
    assert_eq!(both(&p, &granted("bot-b", "/v1/b")), (true, deny));
}
