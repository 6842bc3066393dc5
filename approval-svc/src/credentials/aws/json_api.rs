//! JSON APIs (DynamoDB, KMS, Secrets Manager, …): `x-amz-target: <Prefix>.<Operation>`
//! names the operation; the resource comes from the profile's `json_resources`, one exact
//! ARN per target (the body is not read: it is signed, and the service only has it
//! redacted). A target not listed is refused.

use super::config::AwsSigV4Config;
use super::request::{Approved, Unmapped};
use super::scope::Scope;

/// The action of a JSON-API request.
pub fn scope(config: &AwsSigV4Config, req: &Approved<'_>) -> Result<Scope, Unmapped> {
    if req.facts.method != "POST" {
        return Err(Unmapped(format!("a JSON API call is a POST, not {}", req.facts.method)));
    }
    let Some(target) = req.header("x-amz-target") else {
        return Err(Unmapped("a JSON API request without x-amz-target".into()));
    };
    let operation = target.rsplit_once('.').map(|(_, op)| op).unwrap_or_default();
    if operation.is_empty() || !operation.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(Unmapped(format!("x-amz-target {target:?} does not name an operation")));
    }
    let Some(resource) = config.json_resources.get(target) else {
        return Err(Unmapped(format!("x-amz-target {target:?} has no resource in this profile's json_resources")));
    };
    Ok(Scope {
        action: format!("{}:{operation}", config.service()),
        resources: vec![resource.clone()],
        condition: None,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::super::request::tests::facts;
    use super::*;

    #[test]
    fn the_target_names_the_operation_and_the_profile_its_resource() {
        let config: AwsSigV4Config = toml::from_str(
            r#"role_arn = "arn:aws:iam::123456789012:role/a"
region = "us-east-1"
api = "json"
service = "dynamodb"
hosts = ["dynamodb.us-east-1.amazonaws.com"]
[json_resources]
"DynamoDB_20120810.DeleteItem" = "arn:aws:dynamodb:us-east-1:123456789012:table/orders"
"#,
        )
        .unwrap();
        let call = |method: &str, target: Option<&str>| {
            let headers: Vec<(&str, &str)> = target.map(|t| ("x-amz-target", t)).into_iter().collect();
            let f = facts(method, "dynamodb.us-east-1.amazonaws.com", "/", &headers, "");
            scope(&config, &Approved::new(&f))
        };
        let s = call("POST", Some("DynamoDB_20120810.DeleteItem")).unwrap();
        assert_eq!(s.action, "dynamodb:DeleteItem");
        assert_eq!(s.resources, ["arn:aws:dynamodb:us-east-1:123456789012:table/orders"]);
        assert!(call("POST", Some("DynamoDB_20120810.Scan")).unwrap_err().0.contains("json_resources"));
        assert!(call("POST", None).unwrap_err().0.contains("without x-amz-target"));
        assert!(call("GET", Some("DynamoDB_20120810.DeleteItem")).unwrap_err().0.contains("POST"));
    }
}
