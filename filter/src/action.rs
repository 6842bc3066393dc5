//! The action: what the gateway will send upstream, read once in the headers phase.
//!
//! Both the policy input and the action digest are built from this one view, so the
//! policy judges exactly what gets digested and approved.

use crate::config::{MethodOverride, RequestConfig};
use crate::method_field;
use crate::source::RequestSource;
use crate::target::{parse_authority, parse_path};

/// Header an agent may send to point at an existing approval.
pub const APPROVAL_HEADER: &str = "x-airlock-approval";
/// Headers with which a client names another method than the request line's; upstream
/// frameworks that honour them run that method.
pub const METHOD_OVERRIDE_HEADERS: [&str; 3] = ["x-http-method-override", "x-http-method", "x-method-override"];
/// Prefix of headers that belong to Airlock; stripped before the upstream.
pub use airlock_protocol::AIRLOCK_HEADER_PREFIX;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Action {
    /// `x-request-id`, as Envoy set or kept it.
    pub request_id: Option<String>,
    pub method: String,
    pub scheme: String,
    pub host: String,
    pub port: u16,
    pub path: String,
    pub query: Vec<(String, String)>,
    /// Headers exposed to the policy: no pseudo-headers, no credentials.
    pub headers: Vec<(String, String)>,
    /// Significant headers in configured order, for the digest.
    pub significant: Vec<(String, Option<String>)>,
    pub content_type: Option<String>,
    pub content_length: Option<usize>,
    pub approval_hint: Option<String>,
    /// Names of `x-airlock-*` headers present: Airlock's own, never sent upstream.
    pub airlock_headers: Vec<String>,
}

/// Why the request was refused before any policy ran.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Malformed(pub String);

/// The method the upstream will run: the request line's, unless a method-override header
/// names another, which is refused or applied as configured.
fn overridden(mode: MethodOverride, all: &crate::source::Headers, method: String) -> Result<String, Malformed> {
    let mut named: Option<String> = None;
    for header in METHOD_OVERRIDE_HEADERS {
        let Some(value) = all.get(header) else { continue };
        if mode == MethodOverride::Refuse {
            return Err(Malformed(format!(
                "`{header}` asks the upstream to run another method than `{method}`; send the intended method \
                 itself (the gateway refuses method-override headers: request.method_override)"
            )));
        }
        let value = value.trim();
        if value.is_empty() || !value.bytes().all(|b| b.is_ascii_alphabetic()) {
            return Err(Malformed(format!("`{header}` does not name one method")));
        }
        let value = value.to_ascii_uppercase();
        match &named {
            Some(earlier) if *earlier != value => {
                return Err(Malformed("method-override headers name different methods".into()))
            }
            _ => named = Some(value),
        }
    }
    Ok(named.unwrap_or(method))
}

impl Action {
    /// Read the action from the request, touching only the headers that are needed.
    pub fn read(cfg: &RequestConfig, src: &dyn RequestSource) -> Result<Action, Malformed> {
        let all = src.headers();
        let required = |name: &str| all.get(name).ok_or_else(|| Malformed(format!("missing {name}")));
        let method = required(":method")?.into_owned();
        if method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(Malformed(format!("unusual method `{method}`")));
        }
        let method = overridden(cfg.method_override, all, method)?;
        let raw_path = required(":path")?;
        let authority = required(":authority")?;
        let scheme = match &cfg.upstream_scheme {
            Some(s) => s.clone(),
            None => all.get(":scheme").as_deref().unwrap_or("http").to_ascii_lowercase(),
        };
        let target = parse_path(&raw_path).map_err(|e| Malformed(format!("ambiguous path: {e}")))?;
        let in_query: Vec<&str> =
            target.query.iter().filter(|(k, _)| k == method_field::FIELD).map(|(_, v)| v.as_str()).collect();
        let method = match method_field::requested(cfg.method_override, &method, &in_query, "query string") {
            Ok(named) => named.unwrap_or(method),
            Err(e) => return Err(Malformed(e)),
        };
        let (host, port) =
            parse_authority(&authority, &scheme).map_err(|e| Malformed(format!("bad authority: {e}")))?;

        let headers = match &cfg.input_headers {
            Some(names) => names.iter().filter_map(|n| all.get(n).map(|v| (n.clone(), v.into_owned()))).collect(),
            None => all
                .iter()
                .filter(|(n, _)| !n.starts_with(':') && !cfg.is_credential_header(n))
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
        };
        let significant: Vec<(String, Option<String>)> =
            cfg.significant_headers.iter().map(|n| (n.clone(), all.get(n).map(|v| v.into_owned()))).collect();
        // Values that were not UTF-8 arrive with U+FFFD; two different byte strings
        // could then digest alike, so refuse them where they are digested.
        if let Some((n, _)) = significant.iter().find(|(_, v)| v.as_deref().is_some_and(|v| v.contains('\u{FFFD}'))) {
            return Err(Malformed(format!("`{n}` header is not valid UTF-8")));
        }
        let single = |name: &str| -> Result<Option<String>, Malformed> {
            match all.get(name) {
                Some(v) if v.contains(',') => Err(Malformed(format!("repeated `{name}` header"))),
                other => Ok(other.map(|v| v.into_owned())),
            }
        };
        let content_length = match single("content-length")? {
            Some(v) => Some(v.trim().parse::<usize>().map_err(|_| Malformed("invalid content-length".into()))?),
            None => None,
        };
        let mut airlock_headers: Vec<String> = Vec::new();
        for (name, _) in all.iter() {
            if name.starts_with(AIRLOCK_HEADER_PREFIX) && !airlock_headers.iter().any(|h| h == name) {
                airlock_headers.push(name.to_string());
            }
        }
        Ok(Action {
            airlock_headers,
            request_id: all.get("x-request-id").map(|v| v.into_owned()),
            method,
            scheme,
            host,
            port,
            path: target.path.to_string(),
            query: target.query,
            headers,
            significant,
            content_type: single("content-type")?,
            content_length,
            approval_hint: single(APPROVAL_HEADER)?,
        })
    }

    /// Whether the body should be parsed as JSON for the policy.
    pub fn is_json(&self) -> bool {
        self.content_type.as_deref().is_some_and(|ct| {
            let essence = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
            essence == "application/json" || essence.ends_with("+json")
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use crate::source::fake::FakeRequest;

    pub(crate) fn request_config() -> RequestConfig {
        RequestConfig {
            max_body_bytes: 1024,
            significant_headers: vec!["content-type".into()],
            credential_headers: vec!["authorization".into(), "cookie".into(), "proxy-authorization".into()],
            input_headers: None,
            upstream_scheme: Some("https".into()),
            method_override: MethodOverride::Refuse,
            max_jsonrpc_batch: 16,
        }
    }

    #[test]
    fn reads_target_and_hides_credentials() {
        let req = FakeRequest::new("POST", "API.example.com", "/v1/exports?format=csv")
            .with("authorization", "Bearer agent-secret")
            .with("cookie", "s=1")
            .with("content-type", "application/json")
            .with("x-request-id", "r1");
        let a = Action::read(&request_config(), &req).unwrap();
        assert_eq!((a.host.as_str(), a.port, a.scheme.as_str()), ("api.example.com", 443, "https"));
        assert_eq!(a.query, vec![("format".to_string(), "csv".to_string())]);
        assert!(a.headers.iter().all(|(n, _)| n != "authorization" && n != "cookie" && !n.starts_with(':')));
        assert!(a.is_json());
    }

    #[test]
    fn repeated_single_headers_are_refused() {
        let req = FakeRequest::new("POST", "h", "/")
            .with("content-type", "application/json")
            .with("content-type", "text/plain");
        assert!(Action::read(&request_config(), &req).is_err());
        let req = FakeRequest::new("POST", "h", "/").with(APPROVAL_HEADER, "a").with(APPROVAL_HEADER, "b");
        assert!(Action::read(&request_config(), &req).is_err());
    }

    #[test]
    fn method_override_headers_are_refused_by_default() {
        for header in METHOD_OVERRIDE_HEADERS {
            let req = FakeRequest::new("GET", "h", "/v1/items/9").with(header, "DELETE");
            let e = Action::read(&request_config(), &req).unwrap_err();
            assert!(e.0.contains(header) && e.0.contains("request.method_override"), "{}", e.0);
        }
        let plain = FakeRequest::new("GET", "h", "/v1/items/9");
        assert_eq!(Action::read(&request_config(), &plain).unwrap().method, "GET");
    }

    #[test]
    fn method_override_is_the_actions_method_when_configured() {
        let mut cfg = request_config();
        cfg.method_override = MethodOverride::Apply;
        let req = FakeRequest::new("GET", "h", "/v1/items/9").with("x-http-method-override", "delete");
        assert_eq!(Action::read(&cfg, &req).unwrap().method, "DELETE");
        let both = FakeRequest::new("POST", "h", "/")
            .with("x-http-method-override", "DELETE")
            .with("x-method-override", "DELETE");
        assert_eq!(Action::read(&cfg, &both).unwrap().method, "DELETE");
        for bad in [
            FakeRequest::new("POST", "h", "/").with("x-http-method", "DELETE").with("x-method-override", "PUT"),
            FakeRequest::new("POST", "h", "/").with("x-http-method", "DELETE").with("x-http-method", "PUT"),
            FakeRequest::new("POST", "h", "/").with("x-http-method", "DEL ETE"),
            FakeRequest::new("POST", "h", "/").with("x-http-method", ""),
        ] {
            assert!(Action::read(&cfg, &bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn ambiguous_path_is_refused() {
        assert!(Action::read(&request_config(), &FakeRequest::new("GET", "h", "/a%2fb")).is_err());
    }
}
