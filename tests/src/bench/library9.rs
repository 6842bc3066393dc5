//! The 9× library: `policies/library` plus 8 copies of its rule modules, as a library
//! grows when more teams add their hosts and routes with the same rule shapes. The
//! benchmark's requests touch only the original teams' hosts, so a policy engine whose
//! cost follows the rules that can apply pays for the copies nothing but the lookups
//! that rule them out; one that evaluates every module pays 9×.
//!
//! How a copy is made (copy `k` of module `m`, `k` in 1..=8):
//! - `m/m.rego` → `m_k<k>/m_k<k>.rego` in package `airlock.rules.m_k<k>`; `*_test.rego` are
//!   left out (tests are not evaluated per request).
//! - Data is mounted by directory (`policies/library/README.md`: `iam/data.json` is
//!   `data.iam`), so `m_k<k>/data.json` is `data.m_k<k>`, and every `data.m.`/`data.m[`
//!   reference in the copy is rewritten to it.
//! - The shared top-level keys of the root `data.json` (`data.kubernetes`, read by
//!   deploy, iam, network and secrets) are renamed CONSISTENTLY, not kept shared: the root
//!   data gets `kubernetes_k<k>` next to `kubernetes`, and copy `k` of every module reads
//!   `data.kubernetes_k<k>` — each team has its own clusters, like its own hosts.
//! - Every host name in the copied data (a JSON key or string value shaped like a DNS name
//!   under `.com`, `.example`, `.svc`, `.net`, `.org` or `.io`) gets `-k<k>` on its first
//!   label: `api.example.com` → `api-k3.example.com`, `kubernetes.default.svc` →
//!   `kubernetes-k3.default.svc`. MCP tool names (`db.query`), AWS targets
//!   (`secretsmanager.GetSecretValue`) and URIs are not hosts and stay.
//! - `hosts` is the exception: it is the library's allow-list gate ("a host not listed is
//!   denied", and a deny wins), so eight more copies, each listing only its team's hosts,
//!   would deny every other team's requests. It stays ONE module whose `data.hosts` lists
//!   every team's hosts (the original entries plus each copy's renamed ones) — the same
//!   rule over 9× the data, as a real library would grow it.
//! - `airlock.rego` gets a `candidates` line per copied module after the existing ones.
//!
//! So the generated library has the 9 original rule modules plus 8 × 8 copies (73 rule
//! modules, 74 with `airlock.rego`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use serde_json::{json, Value};

use crate::e2e::service::run_bounded;

/// Copies of each rule module: the original + 8 = 9×.
pub const COPIES: u32 = 8;

/// The allow-list module that is extended rather than copied (see the module doc).
const GATE: &str = "hosts";

/// Top-level domains of the names the library's data uses for hosts.
const HOST_TLDS: [&str; 6] = ["com", "example", "svc", "net", "org", "io"];

/// What was generated: the directory (a policy directory for `airlock bundle build`) and
/// its rule modules.
pub struct Library9 {
    pub dir: PathBuf,
    pub rule_modules: usize,
}

/// Writes the 9× library generated from `library` (the `policies/library` directory)
/// into `out` (created; must not exist).
pub fn generate(library: &Path, out: &Path) -> anyhow::Result<Library9> {
    std::fs::create_dir(out).with_context(|| format!("creating {}", out.display()))?;
    let composer = read(&library.join("airlock.rego"))?;
    let modules = rule_modules(&composer);
    if modules.is_empty() || !modules.iter().any(|m| m == GATE) {
        bail!("no candidates lines (or no `{GATE}` module) in {}/airlock.rego", library.display());
    }
    let root_data: Value = serde_json::from_str(&read(&library.join("data.json"))?)?;
    let shared_keys: Vec<String> = root_data.as_object().map(|o| o.keys().cloned().collect()).unwrap_or_default();

    // The originals, without their tests.
    for m in &modules {
        let src = library.join(m);
        let dst = out.join(m);
        std::fs::create_dir(&dst)?;
        std::fs::copy(src.join(format!("{m}.rego")), dst.join(format!("{m}.rego")))?;
        std::fs::copy(src.join("data.json"), dst.join("data.json"))?;
    }
    let mut rule_modules = modules.len();
    let mut gate_data: Value = serde_json::from_str(&read(&library.join(GATE).join("data.json"))?)?;
    let mut root = root_data.clone();
    let mut copied = Vec::new();
    for k in 1..=COPIES {
        for key in &shared_keys {
            root[format!("{key}_k{k}")] = rename_hosts(&root_data[key], k);
        }
        let gate_src: Value = serde_json::from_str(&read(&library.join(GATE).join("data.json"))?)?;
        merge_into(&mut gate_data, rename_hosts(&gate_src, k))?;
        for m in modules.iter().filter(|m| *m != GATE) {
            let name = format!("{m}_k{k}");
            let dst = out.join(&name);
            std::fs::create_dir(&dst)?;
            let rego = read(&library.join(m).join(format!("{m}.rego")))?;
            std::fs::write(dst.join(format!("{name}.rego")), copy_module(&rego, m, k, &shared_keys)?)?;
            let data: Value = serde_json::from_str(&read(&library.join(m).join("data.json"))?)?;
            std::fs::write(dst.join("data.json"), serde_json::to_string_pretty(&rename_hosts(&data, k))?)?;
            copied.push(name);
            rule_modules += 1;
        }
    }
    std::fs::write(out.join(GATE).join("data.json"), serde_json::to_string_pretty(&gate_data)?)?;
    std::fs::write(out.join("data.json"), serde_json::to_string_pretty(&root)?)?;
    std::fs::write(out.join("airlock.rego"), with_candidates(&composer, &copied)?)?;
    Ok(Library9 { dir: out.to_path_buf(), rule_modules })
}

fn read(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

/// The rule modules `airlock.rego` composes, in its order, from its `candidates` lines
/// (`candidates contains d if d := data.airlock.rules.<m>.decision`).
fn rule_modules(composer: &str) -> Vec<String> {
    composer
        .lines()
        .filter(|l| l.starts_with("candidates contains"))
        .filter_map(|l| l.split("data.airlock.rules.").nth(1)?.strip_suffix(".decision").map(str::to_string))
        .collect()
}

/// Module `m`'s Rego as copy `k`: its package and its data references renamed.
fn copy_module(rego: &str, m: &str, k: u32, shared_keys: &[String]) -> anyhow::Result<String> {
    let package = format!("package airlock.rules.{m}\n");
    if !rego.contains(&package) {
        bail!("{m}.rego does not declare `{}`", package.trim_end());
    }
    let mut out = rego.replace(&package, &format!("package airlock.rules.{m}_k{k}\n"));
    for key in std::iter::once(m).chain(shared_keys.iter().map(String::as_str)) {
        for sep in [".", "["] {
            out = out.replace(&format!("data.{key}{sep}"), &format!("data.{key}_k{k}{sep}"));
        }
    }
    Ok(out)
}

/// `composer` with a `candidates` line for each of `copies` after its last one.
fn with_candidates(composer: &str, copies: &[String]) -> anyhow::Result<String> {
    let lines: Vec<&str> = composer.lines().collect();
    let last = lines
        .iter()
        .rposition(|l| l.starts_with("candidates contains"))
        .ok_or_else(|| anyhow!("no candidates line in airlock.rego"))?;
    let mut out: Vec<String> = lines[..=last].iter().map(|l| l.to_string()).collect();
    out.extend(copies.iter().map(|m| format!("candidates contains d if d := data.airlock.rules.{m}.decision")));
    out.extend(lines[last + 1..].iter().map(|l| l.to_string()));
    Ok(out.join("\n") + "\n")
}

/// `host` as team `k`'s host (`-k<k>` on the first label), or None if it is not a host.
fn team_host(s: &str, k: u32) -> Option<String> {
    let labels: Vec<&str> = s.split('.').collect();
    let dns = labels.len() >= 2
        && labels
            .iter()
            .all(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'));
    if !dns || !HOST_TLDS.contains(labels.last()?) {
        return None;
    }
    let (first, rest) = s.split_once('.')?;
    Some(format!("{first}-k{k}.{rest}"))
}

/// `v` with every host name (object key or string) renamed for team `k`.
fn rename_hosts(v: &Value, k: u32) -> Value {
    match v {
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(key, val)| (team_host(key, k).unwrap_or_else(|| key.clone()), rename_hosts(val, k)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(|x| rename_hosts(x, k)).collect()),
        Value::String(s) => Value::String(team_host(s, k).unwrap_or_else(|| s.clone())),
        other => other.clone(),
    }
}

/// Adds `extra`'s keys to the object `into`; a key already there is an error (two teams
/// claiming one host would make the copies' decisions depend on merge order).
fn merge_into(into: &mut Value, extra: Value) -> anyhow::Result<()> {
    let (Some(into), Value::Object(extra)) = (into.as_object_mut(), extra) else {
        bail!("{GATE}/data.json is not an object");
    };
    for (key, val) in extra {
        if into.insert(key.clone(), val).is_some() {
            bail!("host {key} listed twice in the generated {GATE}/data.json");
        }
    }
    Ok(())
}

/// The inputs the startup check evaluates, shaped as the filter builds `input`:
/// the benchmark's allowed GET, its approve-required POST, and the same POST to team 3's
/// copy of the export API (which only the generated library knows).
pub fn check_inputs(agent: &str, host: &str, allow_path: &str, export_path: &str) -> Vec<Value> {
    let (path, query) = allow_path.split_once('?').unwrap_or((allow_path, ""));
    let query: serde_json::Map<String, Value> =
        query.split('&').filter_map(|kv| kv.split_once('=')).map(|(k, v)| (k.to_string(), json!([v]))).collect();
    let agent = json!({"id": agent, "source": "header", "owner": "alice@corp.example", "claims": {}, "acts_for": []});
    let request = |method: &str, host: &str, path: &str, query: Value, body: Option<Value>| {
        let mut r = json!({"id": "bench-check", "method": method, "scheme": "http", "host": host, "port": 80,
            "path": path, "query": query, "headers": {"user-agent": "airlock-bench/1"}, "body_size": 0});
        if let Some(b) = body {
            r["headers"]["content-type"] = json!("application/json");
            r["body_size"] = json!(b.to_string().len());
            r["body"] = b;
        }
        json!({"request": r, "agent": agent})
    };
    let export = json!({"format": "csv", "destination": {"uri": "s3://partner-bench-check"}});
    let team3 = team_host(host, 3).unwrap_or_else(|| host.to_string());
    vec![
        request("GET", host, path, Value::Object(query), None),
        request("POST", host, export_path, json!({}), Some(export.clone())),
        request("POST", &team3, export_path, json!({}), Some(export)),
    ]
}

/// (effect, rule) per input, from `airlock policy eval --inputs` on `policy` (a bundle
/// or a directory): the filter's engine, entrypoint and default instruction budget.
pub fn decide(airlock: &Path, policy: &Path, inputs: &[Value], dir: &Path) -> anyhow::Result<Vec<(String, String)>> {
    let file = dir.join("check-inputs.jsonl");
    std::fs::write(&file, inputs.iter().map(|i| i.to_string() + "\n").collect::<String>())?;
    let mut cmd = Command::new(airlock);
    cmd.args(["policy", "eval", "--policy"]).arg(policy).arg("--inputs").arg(&file);
    let out = run_bounded(cmd, format!("airlock policy eval --policy {}", policy.display()), Duration::from_secs(60))?
        .ok()?;
    let mut decisions = Vec::new();
    for line in out.stdout.lines().filter(|l| !l.trim().is_empty()) {
        let v: Value = serde_json::from_str(line).with_context(|| format!("policy eval printed {line}"))?;
        if !v["error"].is_null() || v["defined"] != true {
            bail!("policy eval on {}: {line}", policy.display());
        }
        let s = |f: &str| v["value"][f].as_str().unwrap_or_default().to_string();
        decisions.push((s("effect"), s("rule")));
    }
    if decisions.len() != inputs.len() {
        bail!("policy eval on {} answered {} of {} inputs", policy.display(), decisions.len(), inputs.len());
    }
    Ok(decisions)
}

/// `airlock policy check` on the generated directory: parses and compiles it as the
/// filter does (exit 2 on any error).
pub fn compiles(airlock: &Path, dir: &Path) -> anyhow::Result<String> {
    let mut cmd = Command::new(airlock);
    cmd.args(["policy", "check"]).arg(dir);
    let out = run_bounded(cmd, format!("airlock policy check {}", dir.display()), Duration::from_secs(60))?.ok()?;
    Ok(out.stdout.lines().next().unwrap_or_default().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_get_the_team_suffix_and_other_names_stay() {
        assert_eq!(team_host("api.example.com", 3).as_deref(), Some("api-k3.example.com"));
        assert_eq!(team_host("kubernetes.default.svc", 1).as_deref(), Some("kubernetes-k1.default.svc"));
        for not_host in ["db.query", "secretsmanager.GetSecretValue", "s3://corp-analytics", "/v1/exports", "iam"] {
            assert_eq!(team_host(not_host, 2), None, "{not_host}");
        }
    }

    #[test]
    fn a_copy_reads_its_own_and_its_teams_shared_data() {
        let rego = "package airlock.rules.iam\n\nx if data.iam.aws_hosts[h]\ny if data.kubernetes.api_hosts[h]\nz if data.iamx.q\n";
        let copy = copy_module(rego, "iam", 4, &["kubernetes".to_string()]).unwrap_or_default();
        assert!(copy.starts_with("package airlock.rules.iam_k4\n"));
        assert!(copy.contains("data.iam_k4.aws_hosts[h]"));
        assert!(copy.contains("data.kubernetes_k4.api_hosts[h]"));
        assert!(copy.contains("data.iamx.q"), "another key with the module's name as a prefix stays");
    }
}
