//! The `_method` field: Rails, Laravel, Symfony and Express's `method-override` read the
//! method the upstream runs from a `_method` form field (and some from the query string)
//! of a POST. A gateway that decided the request as a POST would let a DELETE through.
//! Like the method-override headers (`crate::action`), the field is refused unless
//! `request.method_override` is `apply`, which makes it the action's method.

use crate::config::MethodOverride;

/// The field's name in forms and query strings.
pub const FIELD: &str = "_method";

/// What the field asks for: the method it names when it should become the action's
/// method (`apply`, on a POST), `Ok(None)` when there is no field, or why the request is
/// refused.
pub fn requested(mode: MethodOverride, method: &str, values: &[&str], place: &str) -> Result<Option<String>, String> {
    let Some(first) = values.first() else { return Ok(None) };
    if mode == MethodOverride::Refuse {
        return Err(format!(
            "the {place} carries a `{FIELD}` field, which asks the upstream to run another method than `{method}`; \
             send the intended method itself (the gateway refuses method overrides: request.method_override)"
        ));
    }
    let named = first.trim().to_ascii_uppercase();
    if named.is_empty() || !named.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(format!("the {place}'s `{FIELD}` field does not name one method"));
    }
    if values.iter().any(|v| !v.trim().eq_ignore_ascii_case(&named)) {
        return Err(format!("the {place}'s `{FIELD}` fields name different methods"));
    }
    // Frameworks honour the field on a POST only; on any other method it is ambiguous.
    if method != "POST" && method != named {
        return Err(format!("a `{FIELD}` field naming {named} on a {method} request is ambiguous"));
    }
    Ok(Some(named))
}

/// The `_method` values of a form-encoded body, or `Err` for a multipart body that names
/// the field (its parts are not parsed here, so it is refused in either mode). `None`
/// for other content types.
pub fn in_body<'a>(content_type: Option<&str>, body: &'a [u8]) -> Result<Vec<std::borrow::Cow<'a, str>>, String> {
    if is_media_type(content_type, URLENCODED) {
        Ok(form_urlencoded::parse(body).filter(|(k, _)| k == FIELD).map(|(_, v)| v).collect())
    } else if is_media_type(content_type, MULTIPART) && mentions_field(body) {
        Err(format!("the multipart body has a `{FIELD}` part; send the intended method itself"))
    } else {
        Ok(Vec::new())
    }
}

/// Whether a form content type is one a framework reads `_method` from.
pub fn is_form(content_type: Option<&str>) -> bool {
    is_media_type(content_type, URLENCODED) || is_media_type(content_type, MULTIPART)
}

const URLENCODED: &str = "application/x-www-form-urlencoded";
const MULTIPART: &str = "multipart/form-data";

/// The content type's media type (before any parameter) is `media`, in any case. Checked
/// on every request with a body, so it allocates nothing.
fn is_media_type(content_type: Option<&str>, media: &str) -> bool {
    content_type.is_some_and(|c| c.split(';').next().unwrap_or("").trim().eq_ignore_ascii_case(media))
}

fn mentions_field(body: &[u8]) -> bool {
    let needle = b"name=\"_method\"";
    body.windows(needle.len()).any(|w| w.eq_ignore_ascii_case(needle))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    const FORM: Option<&str> = Some("application/x-www-form-urlencoded; charset=utf-8");

    fn field(body: &str) -> Vec<String> {
        in_body(FORM, body.as_bytes()).unwrap().into_iter().map(|c| c.into_owned()).collect()
    }

    #[test]
    fn a_form_field_is_refused_by_default() {
        let values = field("name=x&_method=DELETE");
        let refs: Vec<&str> = values.iter().map(String::as_str).collect();
        let e = requested(MethodOverride::Refuse, "POST", &refs, "body").unwrap_err();
        assert!(e.contains("_method") && e.contains("request.method_override"), "{e}");
        assert_eq!(requested(MethodOverride::Refuse, "POST", &[], "body"), Ok(None));
    }

    #[test]
    fn applied_on_a_post_it_is_the_method() {
        assert_eq!(requested(MethodOverride::Apply, "POST", &["delete"], "body"), Ok(Some("DELETE".into())));
        assert!(requested(MethodOverride::Apply, "GET", &["DELETE"], "query").is_err());
        assert_eq!(requested(MethodOverride::Apply, "PUT", &["put"], "query"), Ok(Some("PUT".into())));
        assert!(requested(MethodOverride::Apply, "POST", &["DELETE", "PUT"], "body").is_err());
        assert!(requested(MethodOverride::Apply, "POST", &["DEL ETE"], "body").is_err());
    }

    #[test]
    fn encoded_names_and_multipart_parts_are_found() {
        assert_eq!(field("%5Fmethod=PATCH"), vec!["PATCH"]);
        assert!(field("method=DELETE&x_method=PUT").is_empty());
        let multipart = b"--b\r\nContent-Disposition: form-data; NAME=\"_METHOD\"\r\n\r\nDELETE\r\n--b--";
        assert!(in_body(Some("multipart/form-data; boundary=b"), multipart).is_err());
        assert!(in_body(Some("application/json"), b"{\"_method\": \"DELETE\"}").unwrap().is_empty());
    }
}
