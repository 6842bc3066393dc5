//! Plugin configuration: parsed strictly, validated once in `on_configure`.
//!
//! The wire shape (`RawConfig`) rejects unknown keys so a typo never silently turns a
//! setting off; `Config::parse` then checks what serde cannot (key lengths, header
//! names) and produces the runtime shape the request path uses without further checks.
//! See `docs/configuration.md`.

use base64::Engine as _;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;

/// Headers that carry the agent's own credentials: never in policy input, never sent
/// to the approval service, stripped before a minted credential is injected.
pub const BUILTIN_CREDENTIAL_HEADERS: [&str; 3] = ["authorization", "cookie", "proxy-authorization"];

const MIN_KEY_BYTES: usize = 32;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    policy: RawPolicy,
    identity: RawIdentity,
    approval_service: RawApprovalService,
    #[serde(default)]
    request: RawRequest,
    #[serde(default)]
    decision_log: RawDecisionLog,
    #[serde(default)]
    decision_cache: RawDecisionCache,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDecisionCache {
    #[serde(default = "default_cache_entries")]
    max_entries: usize,
}

impl Default for RawDecisionCache {
    fn default() -> Self {
        RawDecisionCache { max_entries: default_cache_entries() }
    }
}

fn default_cache_entries() -> usize {
    crate::cache::DEFAULT_MAX_ENTRIES
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    #[serde(default)]
    modules: Option<BTreeMap<String, String>>,
    #[serde(default)]
    data: Option<serde_json::Value>,
    #[serde(default)]
    bundle: Option<crate::bundle::config::RawBundle>,
    #[serde(default)]
    bundle_keys: Vec<crate::bundle::config::RawBundleKey>,
    #[serde(default = "default_entrypoint")]
    entrypoint: String,
    #[serde(default)]
    revision: Option<String>,
    #[serde(default)]
    mode: Mode,
    #[serde(default = "default_max_instructions")]
    max_instructions: usize,
    /// Evaluate only the rules whose guards can hold for the request
    /// (`crate::policy::index`); `false` evaluates every rule, for comparison.
    #[serde(default = "default_rule_index")]
    rule_index: bool,
}

/// Enforce decisions, or only record what would have happened (for tuning a policy).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    #[default]
    Enforce,
    Shadow,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Enforce => "enforce",
            Mode::Shadow => "shadow",
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIdentity {
    source: IdentitySourceKind,
    #[serde(default)]
    header: Option<String>,
    #[serde(default)]
    jwt: Option<RawJwt>,
    #[serde(default)]
    agents: BTreeMap<String, AgentProfile>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IdentitySourceKind {
    Mtls,
    Jwt,
    Header,
}

impl IdentitySourceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            IdentitySourceKind::Mtls => "mtls",
            IdentitySourceKind::Jwt => "jwt",
            IdentitySourceKind::Header => "header",
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawJwt {
    #[serde(default = "default_jwt_namespace")]
    metadata_namespace: String,
    #[serde(default = "default_jwt_payload_key")]
    payload_key: String,
    #[serde(default = "default_id_claim")]
    id_claim: String,
    #[serde(default)]
    owner_claim: Option<String>,
    #[serde(default)]
    claims: Vec<String>,
}

/// What the deployment knows about an agent beyond its id.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct AgentProfile {
    #[serde(default)]
    pub owner: Option<String>,
    #[serde(default)]
    pub acts_for: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawApprovalService {
    cluster: String,
    #[serde(default)]
    authority: Option<String>,
    #[serde(default = "default_timeout_ms")]
    timeout_ms: u64,
    #[serde(default)]
    hold_ms: u64,
    #[serde(default = "default_retry_after_s")]
    retry_after_s: u64,
    signing: RawSigning,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSigning {
    key_id: String,
    #[serde(default)]
    key_base64: Option<String>,
    #[serde(default)]
    key_env: Option<String>,
    #[serde(default)]
    previous: Option<RawKey>,
}

/// One HMAC key (as `RawSigning` holds the current one): its id and exactly one source
/// for its bytes. `key_env` names an
/// environment variable of the Wasm VM: the module cannot read files (WASI gives it no
/// file access), but Envoy passes its own variables listed in
/// `vm_config.environment_variables.host_env_keys` (Istio: `vmConfig.env`), so the key
/// need not sit in the Envoy configuration.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKey {
    key_id: String,
    #[serde(default)]
    key_base64: Option<String>,
    #[serde(default)]
    key_env: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRequest {
    #[serde(default = "default_max_body_bytes")]
    max_body_bytes: usize,
    #[serde(default)]
    significant_headers: Vec<String>,
    #[serde(default)]
    credential_headers: Vec<String>,
    #[serde(default)]
    input_headers: Option<Vec<String>>,
    #[serde(default)]
    upstream_scheme: Option<String>,
    #[serde(default)]
    method_override: MethodOverride,
    #[serde(default = "default_true")]
    jsonrpc_answers: bool,
    #[serde(default = "default_max_jsonrpc_batch")]
    max_jsonrpc_batch: usize,
}

impl Default for RawRequest {
    fn default() -> Self {
        RawRequest {
            max_body_bytes: default_max_body_bytes(),
            significant_headers: Vec::new(),
            credential_headers: Vec::new(),
            input_headers: None,
            upstream_scheme: None,
            method_override: MethodOverride::default(),
            jsonrpc_answers: true,
            max_jsonrpc_batch: default_max_jsonrpc_batch(),
        }
    }
}

fn default_true() -> bool {
    true
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDecisionLog {
    #[serde(default = "default_flush_ms")]
    flush_ms: u64,
    #[serde(default = "default_max_queue")]
    max_queue: usize,
    #[serde(default = "default_max_batch")]
    max_batch: usize,
}

impl Default for RawDecisionLog {
    fn default() -> Self {
        RawDecisionLog { flush_ms: default_flush_ms(), max_queue: default_max_queue(), max_batch: default_max_batch() }
    }
}

fn default_entrypoint() -> String {
    "data.airlock.decision".into()
}
fn default_revision() -> String {
    "inline".into()
}
fn default_rule_index() -> bool {
    true
}

fn default_max_instructions() -> usize {
    100_000
}
fn default_jwt_namespace() -> String {
    "envoy.filters.http.jwt_authn".into()
}
fn default_jwt_payload_key() -> String {
    "jwt_payload".into()
}
fn default_id_claim() -> String {
    "sub".into()
}
fn default_timeout_ms() -> u64 {
    2_000
}
fn default_retry_after_s() -> u64 {
    10
}
fn default_max_body_bytes() -> usize {
    64 * 1024
}
fn default_max_jsonrpc_batch() -> usize {
    16
}
/// Most calls of one JSON-RPC batch a configuration may allow: each is one policy
/// evaluation, so this bounds the work one request can cause.
pub const MAX_JSONRPC_BATCH_LIMIT: usize = 256;
fn default_flush_ms() -> u64 {
    1_000
}
fn default_max_queue() -> usize {
    4_096
}
fn default_max_batch() -> usize {
    256
}

/// A configuration problem, phrased for the operator reading Envoy's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid configuration: {}", self.0)
    }
}

impl std::error::Error for ConfigError {}

fn invalid<T>(msg: impl Into<String>) -> Result<T, ConfigError> {
    Err(ConfigError(msg.into()))
}

/// The validated configuration the request path uses.
#[derive(Debug, Clone)]
pub struct Config {
    pub policy: PolicyConfig,
    pub identity: IdentityConfig,
    pub service: ServiceConfig,
    pub request: RequestConfig,
    pub decision_log: DecisionLogConfig,
    /// Allow decisions remembered per worker (`crate::cache`); 0 turns the cache off.
    pub decision_cache_entries: usize,
    /// `request.jsonrpc_answers`: refuse a JSON-RPC call with a JSON-RPC response
    /// (`docs/mcp.md`) rather than problem+json.
    pub jsonrpc_answers: bool,
}

#[derive(Debug, Clone)]
pub struct PolicyConfig {
    /// Inline modules; empty when the policy comes from a bundle.
    pub modules: BTreeMap<String, String>,
    pub data: Option<serde_json::Value>,
    /// A signed bundle instead of inline modules (`docs/bundles.md`).
    pub bundle: Option<crate::bundle::config::BundleConfig>,
    pub entrypoint: String,
    pub revision: String,
    pub mode: Mode,
    pub max_instructions: usize,
    /// Skip the rules that cannot apply to a request (`crate::policy::index`).
    pub rule_index: bool,
}

#[derive(Debug, Clone)]
pub struct IdentityConfig {
    pub source: IdentitySource,
    pub agents: BTreeMap<String, AgentProfile>,
}

/// Where the agent's identity comes from; each variant carries exactly what it needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdentitySource {
    /// The peer certificate's URI SAN (SPIFFE id).
    Mtls,
    /// Claims verified by Envoy's `jwt_authn`, read from dynamic metadata.
    Jwt(JwtSource),
    /// A header the deployment guarantees downstream cannot set.
    Header(String),
}

impl IdentitySource {
    pub fn kind(&self) -> IdentitySourceKind {
        match self {
            IdentitySource::Mtls => IdentitySourceKind::Mtls,
            IdentitySource::Jwt(_) => IdentitySourceKind::Jwt,
            IdentitySource::Header(_) => IdentitySourceKind::Header,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtSource {
    pub metadata_namespace: String,
    pub payload_key: String,
    pub id_claim: String,
    pub owner_claim: Option<String>,
    pub claims: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct ServiceConfig {
    pub cluster: String,
    pub authority: String,
    pub timeout_ms: u64,
    pub hold_ms: u64,
    pub retry_after_s: u64,
    pub signing: SigningKeys,
}

/// HMAC keys shared with the approval service. The filter signs with `current`;
/// answers signed with `previous` are still accepted while keys rotate.
#[derive(Clone)]
pub struct SigningKeys {
    pub current: SigningKey,
    pub previous: Option<SigningKey>,
}

pub use airlock_protocol::signing::Key as SigningKey;

impl SigningKeys {
    /// Every key an answer may be signed with: current, then previous.
    pub fn all(&self) -> impl Iterator<Item = &SigningKey> {
        std::iter::once(&self.current).chain(self.previous.as_ref())
    }
}

impl fmt::Debug for SigningKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print key material, even in debug logs.
        f.debug_struct("SigningKeys")
            .field("current", &self.current.id)
            .field("previous", &self.previous.as_ref().map(|k| &k.id))
            .finish()
    }
}

#[derive(Debug, Clone)]
pub struct RequestConfig {
    pub max_body_bytes: usize,
    pub significant_headers: Vec<String>,
    /// Built-in and configured credential header names, lower-case.
    pub credential_headers: Vec<String>,
    /// `None`: expose every non-credential header.
    pub input_headers: Option<Vec<String>>,
    pub upstream_scheme: Option<String>,
    /// What a method-override header does (`X-HTTP-Method-Override` and kin).
    pub method_override: MethodOverride,
    /// Most calls in one JSON-RPC batch; a larger batch is denied (`docs/mcp.md`).
    pub max_jsonrpc_batch: usize,
}

/// `request.method_override`: what a request carrying `X-HTTP-Method-Override`,
/// `X-HTTP-Method` or `X-Method-Override` gets. Upstreams that honour these run the
/// named method, not the one on the request line, so deciding on the request line alone
/// would let a `GET` that is really a `DELETE` through.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MethodOverride {
    /// Refused as a malformed request (the default).
    #[default]
    Refuse,
    /// The named method is the action's method: the policy input and the digest use it.
    Apply,
}

impl RequestConfig {
    pub fn is_credential_header(&self, name: &str) -> bool {
        self.credential_headers.iter().any(|h| h == name)
    }
}

#[derive(Debug, Clone)]
pub struct DecisionLogConfig {
    pub flush_ms: u64,
    pub max_queue: usize,
    pub max_batch: usize,
}

impl Config {
    /// Parse and validate plugin configuration bytes; `key_env` keys are read from the
    /// VM's environment (WASI `environ_get`, which Envoy fills from `vm_config`).
    pub fn parse(bytes: &[u8]) -> Result<Config, ConfigError> {
        Config::parse_with_env(bytes, &|name| std::env::var(name).ok())
    }

    /// Parse and validate, looking `key_env` variables up with `env`.
    pub fn parse_with_env(bytes: &[u8], env: &dyn Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let raw: RawConfig = serde_json::from_slice(bytes).map_err(|e| ConfigError(e.to_string()))?;
        Ok(Config {
            policy: policy(raw.policy, env)?,
            identity: identity(raw.identity)?,
            service: service(raw.approval_service, env)?,
            jsonrpc_answers: raw.request.jsonrpc_answers,
            request: request(raw.request)?,
            decision_log: decision_log(raw.decision_log)?,
            decision_cache_entries: raw.decision_cache.max_entries,
        })
    }
}

fn policy(raw: RawPolicy, env: &dyn Fn(&str) -> Option<String>) -> Result<PolicyConfig, ConfigError> {
    if !raw.entrypoint.starts_with("data.") {
        return invalid(format!("policy.entrypoint `{}` must be a rule path starting with `data.`", raw.entrypoint));
    }
    if raw.max_instructions == 0 {
        return invalid("policy.max_instructions must be greater than 0");
    }
    // Exactly one source of Rego: a bundle carries its own modules, data and revision,
    // so mixing in inline ones would make "which policy ran" ambiguous.
    let (modules, bundle) = match (raw.modules, raw.bundle) {
        (Some(_), Some(_)) => return invalid("policy.modules and policy.bundle are alternatives; give one"),
        (None, None) => return invalid("policy needs `modules` (inline Rego) or `bundle` (a signed bundle)"),
        (Some(modules), None) => {
            if modules.is_empty() {
                return invalid("policy.modules must hold at least one Rego module");
            }
            if !raw.bundle_keys.is_empty() {
                return invalid("policy.bundle_keys only applies with policy.bundle");
            }
            (modules, None)
        }
        (None, Some(b)) => {
            if raw.data.is_some() || raw.revision.is_some() {
                return invalid("policy.data and policy.revision come from the bundle; remove them");
            }
            (BTreeMap::new(), Some(crate::bundle::config::parse(b, raw.bundle_keys, env)?))
        }
    };
    if let Some(data) = &raw.data {
        if !data.is_object() {
            return invalid("policy.data must be a JSON object");
        }
    }
    Ok(PolicyConfig {
        modules,
        data: raw.data,
        bundle,
        entrypoint: raw.entrypoint,
        revision: raw.revision.unwrap_or_else(default_revision),
        mode: raw.mode,
        max_instructions: raw.max_instructions,
        rule_index: raw.rule_index,
    })
}

fn identity(raw: RawIdentity) -> Result<IdentityConfig, ConfigError> {
    let source = match raw.source {
        IdentitySourceKind::Mtls => {
            if raw.header.is_some() || raw.jwt.is_some() {
                return invalid("identity.source `mtls` takes neither `header` nor `jwt`");
            }
            IdentitySource::Mtls
        }
        IdentitySourceKind::Header => {
            let Some(h) = raw.header else {
                return invalid("identity.source `header` needs identity.header (the trusted header's name)");
            };
            let h = header_name("identity.header", &h)?;
            if BUILTIN_CREDENTIAL_HEADERS.contains(&h.as_str()) {
                return invalid(format!("identity.header `{h}` is a credential header"));
            }
            IdentitySource::Header(h)
        }
        IdentitySourceKind::Jwt => {
            let jwt = raw.jwt.unwrap_or(RawJwt {
                metadata_namespace: default_jwt_namespace(),
                payload_key: default_jwt_payload_key(),
                id_claim: default_id_claim(),
                owner_claim: None,
                claims: Vec::new(),
            });
            if raw.header.is_some() {
                return invalid("identity.source `jwt` does not take identity.header");
            }
            for (field, v) in [
                ("identity.jwt.metadata_namespace", &jwt.metadata_namespace),
                ("identity.jwt.payload_key", &jwt.payload_key),
                ("identity.jwt.id_claim", &jwt.id_claim),
            ] {
                if v.is_empty() {
                    return invalid(format!("{field} must not be empty"));
                }
            }
            IdentitySource::Jwt(JwtSource {
                metadata_namespace: jwt.metadata_namespace,
                payload_key: jwt.payload_key,
                id_claim: jwt.id_claim,
                owner_claim: jwt.owner_claim,
                claims: jwt.claims,
            })
        }
    };
    Ok(IdentityConfig { source, agents: raw.agents })
}

fn service(raw: RawApprovalService, env: &dyn Fn(&str) -> Option<String>) -> Result<ServiceConfig, ConfigError> {
    if raw.cluster.is_empty() {
        return invalid("approval_service.cluster must name an Envoy cluster");
    }
    if raw.timeout_ms == 0 {
        return invalid("approval_service.timeout_ms must be greater than 0");
    }
    let s = raw.signing;
    let current = RawKey { key_id: s.key_id, key_base64: s.key_base64, key_env: s.key_env };
    let current = key("approval_service.signing", &current, env)?;
    let previous = match s.previous {
        Some(p) => Some(key("approval_service.signing.previous", &p, env)?),
        None => None,
    };
    if previous.as_ref().is_some_and(|p| p.id == current.id) {
        return invalid("approval_service.signing.previous must have a different key_id than the current key");
    }
    Ok(ServiceConfig {
        authority: raw.authority.unwrap_or_else(|| raw.cluster.clone()),
        cluster: raw.cluster,
        timeout_ms: raw.timeout_ms,
        hold_ms: raw.hold_ms,
        retry_after_s: raw.retry_after_s,
        signing: SigningKeys { current, previous },
    })
}

fn key(field: &str, raw: &RawKey, env: &dyn Fn(&str) -> Option<String>) -> Result<SigningKey, ConfigError> {
    let id = &raw.key_id;
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)) {
        return invalid(format!("{field}.key_id must be non-empty [A-Za-z0-9._-]"));
    }
    let secret = key_bytes(field, raw.key_base64.as_deref(), raw.key_env.as_deref(), env)?;
    Ok(SigningKey { id: id.to_string(), secret })
}

/// A key's bytes from exactly one of `key_base64` (inline) or `key_env` (a variable of the
/// VM's environment), base64 of at least 32 bytes. Errors name the field or the variable,
/// never the value.
pub(crate) fn key_bytes(
    field: &str,
    key_base64: Option<&str>,
    key_env: Option<&str>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<u8>, ConfigError> {
    let (source, b64) = match (key_base64, key_env) {
        (Some(b64), None) => (format!("{field}.key_base64"), b64.to_string()),
        (None, Some(var)) => {
            if var.is_empty() {
                return invalid(format!("{field}.key_env must name an environment variable"));
            }
            let source = format!("{field}.key_env: environment variable `{var}`");
            match env(var) {
                Some(v) if !v.trim().is_empty() => (source, v),
                Some(_) => return invalid(format!("{source} is empty")),
                None => {
                    return invalid(format!(
                        "{source} is not set in the Wasm VM (Envoy passes only the variables listed in \
                         vm_config.environment_variables.host_env_keys)"
                    ))
                }
            }
        }
        (Some(_), Some(_)) => return invalid(format!("{field}: give key_base64 or key_env, not both")),
        (None, None) => {
            return invalid(format!("{field}: give key_base64 (inline) or key_env (a VM environment variable)"))
        }
    };
    let secret = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .map_err(|e| ConfigError(format!("{source} is not valid base64: {e}")))?;
    if secret.len() < MIN_KEY_BYTES {
        return invalid(format!("{source} decodes to {} bytes; at least {MIN_KEY_BYTES} are required", secret.len()));
    }
    Ok(secret)
}

fn request(raw: RawRequest) -> Result<RequestConfig, ConfigError> {
    let significant = header_list("request.significant_headers", raw.significant_headers)?;
    let mut credential: Vec<String> = BUILTIN_CREDENTIAL_HEADERS.iter().map(|s| s.to_string()).collect();
    for h in header_list("request.credential_headers", raw.credential_headers)? {
        if !credential.contains(&h) {
            credential.push(h);
        }
    }
    if let Some(h) = significant.iter().find(|h| credential.contains(h)) {
        return invalid(format!(
            "request.significant_headers names credential header `{h}`; credentials never enter the digest"
        ));
    }
    let input_headers = match raw.input_headers {
        Some(list) => Some(header_list("request.input_headers", list)?),
        None => None,
    };
    let upstream_scheme = match raw.upstream_scheme.as_deref() {
        None => None,
        Some(s @ ("http" | "https")) => Some(s.to_string()),
        Some(other) => return invalid(format!("request.upstream_scheme `{other}` must be `http` or `https`")),
    };
    if raw.max_jsonrpc_batch > MAX_JSONRPC_BATCH_LIMIT {
        return invalid(format!(
            "request.max_jsonrpc_batch {} is above {MAX_JSONRPC_BATCH_LIMIT}: every call of a batch is one policy evaluation",
            raw.max_jsonrpc_batch
        ));
    }
    Ok(RequestConfig {
        max_jsonrpc_batch: raw.max_jsonrpc_batch,
        max_body_bytes: raw.max_body_bytes,
        significant_headers: significant,
        credential_headers: credential,
        input_headers,
        upstream_scheme,
        method_override: raw.method_override,
    })
}

fn decision_log(raw: RawDecisionLog) -> Result<DecisionLogConfig, ConfigError> {
    if raw.flush_ms == 0 || raw.max_queue == 0 || raw.max_batch == 0 {
        return invalid("decision_log.flush_ms, max_queue and max_batch must be greater than 0");
    }
    Ok(DecisionLogConfig { flush_ms: raw.flush_ms, max_queue: raw.max_queue, max_batch: raw.max_batch })
}

fn header_list(field: &str, names: Vec<String>) -> Result<Vec<String>, ConfigError> {
    let mut out = Vec::with_capacity(names.len());
    for n in names {
        let n = header_name(field, &n)?;
        if !out.contains(&n) {
            out.push(n);
        }
    }
    Ok(out)
}

/// A header name as Envoy stores it: lower-case RFC 9110 token, no pseudo-headers.
fn header_name(field: &str, name: &str) -> Result<String, ConfigError> {
    let valid = !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    if !valid {
        return invalid(format!("{field}: `{name}` is not a valid HTTP header name"));
    }
    Ok(name.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    pub(crate) const KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="; // 32 bytes

    fn minimal() -> serde_json::Value {
        serde_json::json!({
            "policy": {"modules": {"a.rego": "package airlock\ndecision := {\"effect\": \"allow\"}"}},
            "identity": {"source": "header", "header": "X-Airlock-Agent"},
            "approval_service": {"cluster": "airlock_approval", "signing": {"key_id": "k1", "key_base64": KEY}}
        })
    }

    fn parse(v: serde_json::Value) -> Result<Config, ConfigError> {
        Config::parse(v.to_string().as_bytes())
    }

    #[test]
    fn minimal_config_gets_defaults() {
        let c = parse(minimal()).unwrap();
        assert_eq!(c.policy.entrypoint, "data.airlock.decision");
        assert_eq!(c.identity.source, IdentitySource::Header("x-airlock-agent".into()));
        assert_eq!(c.service.authority, "airlock_approval");
        assert_eq!(c.request.max_body_bytes, 65536);
        assert_eq!(c.request.max_jsonrpc_batch, 16);
        assert!(c.request.is_credential_header("cookie"));
        assert_eq!(c.policy.mode, Mode::Enforce);
        assert!(c.policy.rule_index);
    }

    #[test]
    fn the_rule_index_can_be_turned_off() {
        let mut v = minimal();
        v["policy"]["rule_index"] = serde_json::json!(false);
        assert!(!parse(v.clone()).unwrap().policy.rule_index);
        v["policy"]["rule_index"] = serde_json::json!("no");
        assert!(parse(v).unwrap_err().0.contains("boolean"));
    }

    #[test]
    fn the_batch_cap_is_bounded() {
        let mut v = minimal();
        v["request"] = serde_json::json!({"max_jsonrpc_batch": 0});
        assert_eq!(parse(v.clone()).unwrap().request.max_jsonrpc_batch, 0);
        v["request"]["max_jsonrpc_batch"] = serde_json::json!(257);
        assert!(parse(v).unwrap_err().0.contains("max_jsonrpc_batch"));
    }

    #[test]
    fn unknown_key_is_named() {
        let mut v = minimal();
        v["request"] = serde_json::json!({"max_body": 10});
        let e = parse(v).unwrap_err();
        assert!(e.to_string().contains("unknown field `max_body`"), "{e}");
    }

    #[test]
    fn short_key_is_refused() {
        let mut v = minimal();
        v["approval_service"]["signing"]["key_base64"] = "c2hvcnQ=".into();
        let e = parse(v).unwrap_err();
        assert!(e.to_string().contains("at least 32"), "{e}");
    }

    #[test]
    fn header_source_needs_header_name() {
        let mut v = minimal();
        v["identity"] = serde_json::json!({"source": "header"});
        assert!(parse(v).unwrap_err().to_string().contains("identity.header"));
    }

    #[test]
    fn credential_header_cannot_be_significant() {
        let mut v = minimal();
        v["request"] = serde_json::json!({"significant_headers": ["Authorization"]});
        assert!(parse(v).unwrap_err().to_string().contains("credential"));
    }

    #[test]
    fn method_override_is_refused_unless_configured() {
        let c = parse(minimal()).unwrap();
        assert_eq!(c.request.method_override, MethodOverride::Refuse);
        let mut v = minimal();
        v["request"] = serde_json::json!({"method_override": "apply"});
        assert_eq!(parse(v.clone()).unwrap().request.method_override, MethodOverride::Apply);
        v["request"] = serde_json::json!({"method_override": "ignore"});
        assert!(parse(v).unwrap_err().to_string().contains("ignore"));
    }

    #[test]
    fn bad_json_is_reported_with_position() {
        let e = Config::parse(b"{\"policy\": ").unwrap_err();
        assert!(e.to_string().contains("line 1"), "{e}");
    }

    #[test]
    fn signing_key_can_come_from_the_vm_environment() {
        let mut v = minimal();
        v["approval_service"]["signing"] = serde_json::json!({
            "key_id": "k2", "key_env": "AIRLOCK_GATEWAY_KEY",
            "previous": {"key_id": "k1", "key_env": "AIRLOCK_GATEWAY_KEY_OLD"}
        });
        let env = |name: &str| match name {
            "AIRLOCK_GATEWAY_KEY" => Some(format!("{KEY}\n")),
            "AIRLOCK_GATEWAY_KEY_OLD" => Some(KEY.to_string()),
            _ => None,
        };
        let c = Config::parse_with_env(v.to_string().as_bytes(), &env).unwrap();
        assert_eq!(c.service.signing.current.id, "k2");
        assert_eq!(c.service.signing.current.secret, b"0123456789abcdef0123456789abcdef");
        assert_eq!(c.service.signing.previous.unwrap().id, "k1");
    }

    #[test]
    fn a_missing_empty_or_short_environment_key_is_refused_by_name() {
        let mut v = minimal();
        v["approval_service"]["signing"] = serde_json::json!({"key_id": "k1", "key_env": "GW_KEY"});
        let bytes = v.to_string();
        let parse_env = |value: Option<&str>| {
            let value = value.map(str::to_string);
            Config::parse_with_env(bytes.as_bytes(), &move |_: &str| value.clone()).unwrap_err().to_string()
        };
        let unset = parse_env(None);
        assert!(unset.contains("`GW_KEY`") && unset.contains("host_env_keys"), "{unset}");
        assert!(parse_env(Some(" \n")).contains("`GW_KEY` is empty"));
        let short = parse_env(Some("c2hvcnQ="));
        assert!(short.contains("`GW_KEY` decodes to 5 bytes"), "{short}");
        assert!(!short.contains("c2hvcnQ"), "the key's value is never echoed: {short}");
        assert!(parse_env(Some("not base64!")).contains("not valid base64"));
    }

    #[test]
    fn bundle_keys_can_come_from_the_vm_environment_too() {
        let mut v = minimal();
        v["policy"] = serde_json::json!({
            "bundle": {"cluster": "bundles", "path": "/v1/bundles/a.tar.gz"},
            "bundle_keys": [{"key_id": "b1", "key_env": "BUNDLE_KEY"}]
        });
        let bytes = v.to_string();
        let with = |value: Option<&str>| {
            let value = value.map(str::to_string);
            Config::parse_with_env(bytes.as_bytes(), &move |n: &str| {
                (n == "BUNDLE_KEY").then(|| value.clone()).flatten()
            })
        };
        let c = with(Some(KEY)).unwrap();
        assert!(c.policy.bundle.is_some());
        let e = with(None).unwrap_err().to_string();
        assert!(e.contains("policy.bundle_keys `b1`.key_env") && e.contains("`BUNDLE_KEY` is not set"), "{e}");
        assert!(with(Some("c2hvcnQ=")).unwrap_err().to_string().contains("at least 32"));
    }

    #[test]
    fn a_signing_key_has_exactly_one_source() {
        let mut v = minimal();
        v["approval_service"]["signing"]["key_env"] = "GW_KEY".into();
        assert!(parse(v.clone()).unwrap_err().to_string().contains("not both"));
        v["approval_service"]["signing"] = serde_json::json!({"key_id": "k1"});
        assert!(parse(v.clone()).unwrap_err().to_string().contains("give key_base64"));
        v["approval_service"]["signing"] = serde_json::json!({"key_id": "k1", "key_file": "/etc/k"});
        assert!(parse(v).unwrap_err().to_string().contains("unknown field `key_file`"));
    }

    #[test]
    fn signing_keys_debug_hides_secrets() {
        let c = parse(minimal()).unwrap();
        let dbg = format!("{:?}", c.service.signing);
        assert!(!dbg.contains("48, 49"), "{dbg}");
        assert!(dbg.contains("k1"));
    }
}
