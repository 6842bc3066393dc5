//! The HTTP pieces every console page shares: security headers, cookies, the signed-in
//! session, form bodies and their CSRF token, redirects and HTML answers.

use std::collections::HashMap;

use axum::http::header::{self, HeaderMap, HeaderValue};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::session::Session;
use super::Console;

/// The session cookie.
pub const SESSION_COOKIE: &str = "airlock_console";
/// The cookie binding a sign-in in progress to this browser (holds its `state`).
pub const LOGIN_COOKIE: &str = "airlock_console_login";

/// No inline script or style, nothing from elsewhere, no framing, forms only to us.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
                   connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Adds the console's security headers to every answer.
pub async fn security_headers(mut response: Response) -> Response {
    let h = response.headers_mut();
    let set = |h: &mut HeaderMap, name: &'static str, value: &'static str| {
        h.insert(name, HeaderValue::from_static(value));
    };
    set(h, "content-security-policy", CSP);
    set(h, "x-content-type-options", "nosniff");
    set(h, "x-frame-options", "DENY");
    // Same-origin: a form POST still carries our Origin, nothing leaks to other sites.
    set(h, "referrer-policy", "same-origin");
    set(h, "cross-origin-opener-policy", "same-origin");
    set(h, "cross-origin-resource-policy", "same-origin");
    set(h, "permissions-policy", "camera=(), microphone=(), geolocation=(), payment=()");
    // Browsers ignore it over plain http (loopback tests) and keep it over https.
    set(h, "strict-transport-security", "max-age=31536000");
    if !h.contains_key(header::CACHE_CONTROL) {
        set(h, "cache-control", "no-store");
    }
    response
}

/// The value of cookie `name` in the request.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty())
}

/// A `Set-Cookie` value: HttpOnly, Secure (browsers keep Secure cookies on
/// http://127.0.0.1 and localhost too) and SameSite=Lax — Lax, not Strict, because the
/// sign-in comes back from the IdP's site as a top-level navigation, and Strict cookies
/// would not be sent on it. Forms are protected by their CSRF token, not by SameSite.
pub fn set_cookie(name: &str, value: &str, path: &str, max_age_secs: u64) -> String {
    format!("{name}={value}; Path={path}; Max-Age={max_age_secs}; HttpOnly; Secure; SameSite=Lax")
}

/// A `Set-Cookie` value that deletes cookie `name`.
pub fn clear_cookie(name: &str, path: &str) -> String {
    set_cookie(name, "", path, 0)
}

/// The signed-in session of the request, with its cookie token.
pub fn session(console: &Console, headers: &HeaderMap) -> Option<(String, Session)> {
    let token = cookie(headers, SESSION_COOKIE)?;
    console.sessions.get(token).map(|s| (token.to_string(), s))
}

/// 303 to `location`.
pub fn see_other(location: &str) -> Response {
    (StatusCode::SEE_OTHER, [(header::LOCATION, location.to_string())]).into_response()
}

/// 303 to the sign-in, coming back to `next` afterwards.
pub fn to_login(next: &str) -> Response {
    let next: String = form_urlencoded::byte_serialize(next.as_bytes()).collect();
    see_other(&format!("/console/login?next={next}"))
}

/// A console path to return to after sign-in; anything else (another site, `//host`,
/// backslashes) becomes the inbox.
pub fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with("/console") && !n.contains("//") && !n.contains('\\') && !n.contains(['\r', '\n']) => {
            n.to_string()
        }
        _ => "/console/".to_string(),
    }
}

/// An HTML answer.
pub fn html(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response()
}

/// A form body's fields (the last value of a repeated name wins).
pub fn form(body: &[u8]) -> HashMap<String, String> {
    form_urlencoded::parse(body).into_owned().collect()
}

/// Why a form POST is refused before anything is done with it.
pub fn refuse_post(
    console: &Console,
    headers: &HeaderMap,
    session: &Session,
    fields: &HashMap<String, String>,
) -> Option<&'static str> {
    refuse_form(console.config.base_url(), headers, session, fields)
}

/// [`refuse_post`] for a console reached at `base_url`.
fn refuse_form(
    base_url: &str,
    headers: &HeaderMap,
    session: &Session,
    fields: &HashMap<String, String>,
) -> Option<&'static str> {
    // Defence in depth next to the token: a browser names the page's origin on a POST.
    if let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        if origin != base_url {
            return Some("The form came from another site.");
        }
    }
    let token = fields.get("csrf").map(String::as_str).unwrap_or_default();
    if !session.csrf_matches(token) {
        return Some(
            "The form's security token is missing or does not belong to your session. Reload the page and try again.",
        );
    }
    None
}

#[cfg(test)]
mod tests {
    #![allow(clippy::panic)]
    use super::*;

    #[test]
    fn cookies_are_read_by_exact_name() {
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, HeaderValue::from_static("a=1; airlock_console_login=s; airlock_console=t"));
        assert_eq!(cookie(&h, SESSION_COOKIE), Some("t"));
        assert_eq!(cookie(&h, LOGIN_COOKIE), Some("s"));
        assert_eq!(cookie(&h, "b"), None);
    }

    #[test]
    fn next_stays_in_the_console() {
        assert_eq!(safe_next(Some("/console/approvals/apr_1")), "/console/approvals/apr_1");
        for bad in ["https://evil.example/", "//evil.example", "/console//evil", "/other", "/console\\x", ""] {
            assert_eq!(safe_next(Some(bad)), "/console/", "{bad}");
        }
        assert_eq!(safe_next(None), "/console/");
    }

    #[test]
    fn a_form_needs_its_sessions_token_and_our_origin() {
        let sessions = super::super::session::Sessions::new(std::time::Duration::from_secs(60));
        let reviewer = crate::lifecycle::Reviewer { id: "bob".into(), groups: vec![], aliases: vec![] };
        let token = sessions.start(reviewer, None, None).unwrap_or_default();
        let Some(session) = sessions.get(&token) else { panic!("no session") };
        let base = "https://airlock.example";
        let fields = |csrf: &str| HashMap::from([("csrf".to_string(), csrf.to_string())]);
        let mut ours = HeaderMap::new();
        ours.insert(header::ORIGIN, HeaderValue::from_static("https://airlock.example"));
        assert_eq!(refuse_form(base, &ours, &session, &fields(&session.csrf)), None);
        assert_eq!(
            refuse_form(base, &HeaderMap::new(), &session, &fields(&session.csrf)),
            None,
            "no Origin: the token decides"
        );
        assert!(refuse_form(base, &ours, &session, &HashMap::new()).is_some(), "no token");
        assert!(refuse_form(base, &ours, &session, &fields("forged")).is_some(), "another token");
        let mut theirs = HeaderMap::new();
        theirs.insert(header::ORIGIN, HeaderValue::from_static("https://evil.example"));
        assert!(refuse_form(base, &theirs, &session, &fields(&session.csrf)).is_some(), "another site");
    }

    #[test]
    fn cookies_are_http_only_secure_and_same_site() {
        let c = set_cookie(SESSION_COOKIE, "t", "/console", 60);
        assert!(c.contains("HttpOnly") && c.contains("Secure") && c.contains("SameSite=Lax"), "{c}");
    }
}
