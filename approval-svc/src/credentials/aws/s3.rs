//! S3 REST: the bucket from the host (virtual-hosted) or the first path segment
//! (path-style), the key from the rest of the path, the action from the method. Only
//! plain object writes, reads and deletes and bucket listings are mapped; a request
//! with a sub-resource (`?acl`, `?uploads`, `?tagging`, …) or a copy is refused.

use serde_json::json;

use super::arn::{is_literal, RoleArn};
use super::request::{Approved, Unmapped};
use super::scope::Scope;

/// Query parameters of ListObjects(V2); anything else names a sub-resource.
const LIST_PARAMS: [&str; 9] = [
    "list-type",
    "prefix",
    "delimiter",
    "max-keys",
    "continuation-token",
    "start-after",
    "encoding-type",
    "marker",
    "fetch-owner",
];

/// The action of an S3 request to one of `hosts` (path-style) or `<bucket>.<host>`.
pub fn scope(hosts: &[String], role: &RoleArn, req: &Approved<'_>) -> Result<Scope, Unmapped> {
    let host = req.host_header();
    let path = req.decoded_path()?;
    let rest = path.strip_prefix('/').unwrap_or(&path);
    let (bucket, key) = if hosts.contains(&host) {
        rest.split_once('/').unwrap_or((rest, ""))
    } else if let Some(bucket) =
        hosts.iter().find_map(|h| host.strip_suffix(h.as_str()).and_then(|p| p.strip_suffix('.')))
    {
        (bucket, rest)
    } else {
        return Err(Unmapped(format!("host {host:?} is not one this credential signs for ({})", hosts.join(", "))));
    };
    if !is_bucket_name(bucket) {
        return Err(Unmapped(format!("{bucket:?} is not an S3 bucket name")));
    }
    if !is_literal(key) {
        return Err(Unmapped(format!(
            "object key {key:?} contains `*`, `?` or `${{`, which an IAM policy reads as a pattern"
        )));
    }
    let partition = &role.partition;
    let object = || vec![format!("arn:{partition}:s3:::{bucket}/{key}")];
    let names: Vec<&str> = req.query_names().collect();
    let method = req.facts.method.as_str();
    let one = |action: &str, resources: Vec<String>| Scope { action: action.into(), resources, condition: None };
    match (method, key.is_empty(), names.is_empty()) {
        ("PUT", false, true) if req.header("x-amz-copy-source").is_some() => {
            Err(Unmapped("an S3 copy (x-amz-copy-source) also reads its source; it is not mapped".into()))
        }
        ("PUT", false, true) => Ok(one("s3:PutObject", object())),
        ("GET" | "HEAD", false, true) => Ok(one("s3:GetObject", object())),
        ("DELETE", false, true) => Ok(one("s3:DeleteObject", object())),
        ("GET", true, _) if names.iter().all(|n| LIST_PARAMS.contains(n)) => {
            let mut s = one("s3:ListBucket", vec![format!("arn:{partition}:s3:::{bucket}")]);
            if let Some(prefix) = req.query_one("prefix")? {
                s.condition = Some(json!({"StringEquals": {"s3:prefix": [prefix]}}));
            }
            Ok(s)
        }
        _ => Err(Unmapped(format!(
            "S3 {method} on {} with query [{}] is not an action this credential maps (object PUT, GET, HEAD, DELETE and bucket listings are)",
            if key.is_empty() { format!("bucket {bucket:?}") } else { format!("{bucket}/{key}") },
            names.join(", ")
        ))),
    }
}

/// S3's bucket naming rules: 3–63 of `a-z 0-9 . -`, starting and ending alphanumeric.
fn is_bucket_name(b: &str) -> bool {
    (3..=63).contains(&b.len())
        && b.bytes().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'.' || c == b'-')
        && b.bytes().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && b.bytes().last().is_some_and(|c| c.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::super::request::tests::facts;
    use super::*;

    fn role() -> RoleArn {
        RoleArn::parse("arn:aws:iam::123456789012:role/airlock").unwrap()
    }

    fn map(method: &str, host: &str, path: &str, headers: &[(&str, &str)]) -> Result<Scope, Unmapped> {
        let f = facts(method, host, path, headers, "");
        scope(&["s3.us-east-1.amazonaws.com".to_string()], &role(), &Approved::new(&f))
    }

    #[test]
    fn a_put_maps_to_put_object_on_exactly_that_key_both_styles() {
        let want = Scope {
            action: "s3:PutObject".into(),
            resources: vec!["arn:aws:s3:::exports/2026/12 report.csv".into()],
            condition: None,
        };
        assert_eq!(map("PUT", "exports.s3.us-east-1.amazonaws.com", "/2026/12%20report.csv", &[]).unwrap(), want);
        assert_eq!(map("PUT", "s3.us-east-1.amazonaws.com", "/exports/2026/12%20report.csv", &[]).unwrap(), want);
        assert_eq!(map("GET", "s3.us-east-1.amazonaws.com", "/exports/a", &[]).unwrap().action, "s3:GetObject");
        assert_eq!(map("DELETE", "s3.us-east-1.amazonaws.com", "/exports/a", &[]).unwrap().action, "s3:DeleteObject");
        let list = map("GET", "exports.s3.us-east-1.amazonaws.com", "/?list-type=2&prefix=2026/", &[]).unwrap();
        assert_eq!(list.resources, ["arn:aws:s3:::exports"]);
        assert_eq!(list.condition, Some(json!({"StringEquals": {"s3:prefix": ["2026/"]}})));
    }

    #[test]
    fn anything_else_is_refused_saying_why() {
        let cases = [
            ("PUT", "exports.s3.evil.example", "/k", "not one this credential signs for"),
            ("PUT", "s3.us-east-1.amazonaws.com", "/exports/a*", "pattern"),
            ("PUT", "s3.us-east-1.amazonaws.com", "/exports/${aws:username}", "pattern"),
            ("PUT", "s3.us-east-1.amazonaws.com", "/exports/k?acl", "not an action"),
            ("POST", "s3.us-east-1.amazonaws.com", "/exports/k?uploads", "not an action"),
            ("PUT", "s3.us-east-1.amazonaws.com", "/exports", "not an action"),
            ("PUT", "s3.us-east-1.amazonaws.com", "/Bad_Bucket/k", "bucket name"),
            ("GET", "s3.us-east-1.amazonaws.com", "/exports?policy", "not an action"),
        ];
        for (method, host, path, why) in cases {
            let err = map(method, host, path, &[]).unwrap_err().0;
            assert!(err.contains(why), "{method} {host}{path}: {err}");
        }
        let copy = map("PUT", "s3.us-east-1.amazonaws.com", "/exports/k", &[("x-amz-copy-source", "other/k")]);
        assert!(copy.unwrap_err().0.contains("copy"));
    }
}
