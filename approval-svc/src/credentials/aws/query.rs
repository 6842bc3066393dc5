//! Query APIs (IAM, STS, …): `Action=` names the operation and its parameters name the
//! resource: IAM names (`RoleName`, `UserName`, …) become ARNs in the role's account;
//! ARN parameters (`RoleArn`, `PolicyArn`, `ResourceArn`) are taken as they are. Only
//! parameters in the URL are read: the service is not given form bodies, so a request
//! with a body is refused rather than signed with parameters nobody mapped.

use serde_json::json;

use super::arn::{is_exact_arn, is_literal, RoleArn};
use super::request::{Approved, Unmapped};
use super::scope::Scope;

/// IAM name parameters and the ARN resource type each names.
const IAM_NAMES: [(&str, &str); 4] =
    [("RoleName", "role"), ("UserName", "user"), ("GroupName", "group"), ("InstanceProfileName", "instance-profile")];
/// Parameters that carry an ARN.
const ARN_PARAMS: [&str; 3] = ["RoleArn", "PolicyArn", "ResourceArn"];

/// The action of a query-API request to `service`.
pub fn scope(service: &str, role: &RoleArn, req: &Approved<'_>) -> Result<Scope, Unmapped> {
    if req.facts.body_size > 0 {
        return Err(Unmapped(
            "a query API request with a body: send Action and its parameters in the URL query, which the approval covers".into(),
        ));
    }
    let Some(action) = req.query_one("Action")? else {
        return Err(Unmapped("a query API request without Action= in the URL query".into()));
    };
    if action.is_empty() || !action.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(Unmapped(format!("Action {action:?} is not an operation name")));
    }
    let mut resources = Vec::new();
    if service == "iam" {
        for (param, kind) in IAM_NAMES {
            if let Some(name) = req.query_one(param)? {
                if name.is_empty() || !is_literal(name) || name.contains('/') {
                    return Err(Unmapped(format!("{param} {name:?} is not one IAM name")));
                }
                resources.push(format!("arn:{}:iam::{}:{kind}/{name}", role.partition, role.account));
            }
        }
    }
    let mut policy_arn = None;
    for param in ARN_PARAMS {
        if let Some(arn) = req.query_one(param)? {
            if !is_exact_arn(arn) {
                return Err(Unmapped(format!("{param} {arn:?} is not one exact ARN")));
            }
            if param == "PolicyArn" {
                policy_arn = Some(arn);
            }
            // An attached policy is the object of the change, not where it happens:
            // narrowed below by condition, the role or user is the resource.
            if param != "PolicyArn" || resources.is_empty() {
                resources.push(arn.to_string());
            }
        }
    }
    if resources.is_empty() {
        return Err(Unmapped(format!(
            "{service}:{action} names no resource this credential maps ({} or an ARN parameter); refused rather than allowed on every resource",
            IAM_NAMES.map(|(p, _)| p).join(", ")
        )));
    }
    // Attach/Detach*Policy carry iam:PolicyARN: the grant is for that one policy.
    let condition = match policy_arn {
        Some(arn) if service == "iam" && (action.starts_with("Attach") || action.starts_with("Detach")) => {
            Some(json!({"ArnEquals": {"iam:PolicyARN": [arn]}}))
        }
        _ => None,
    };
    Ok(Scope { action: format!("{service}:{action}"), resources, condition })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::super::request::tests::facts;
    use super::*;

    fn map(service: &str, query: &str) -> Result<Scope, Unmapped> {
        let role = RoleArn::parse("arn:aws:iam::123456789012:role/airlock").unwrap();
        let f = facts("GET", "iam.amazonaws.com", &format!("/?{query}"), &[], "");
        scope(service, &role, &Approved::new(&f))
    }

    #[test]
    fn an_iam_role_change_is_that_action_on_that_role() {
        let s = map(
            "iam",
            "Action=AttachRolePolicy&RoleName=app&PolicyArn=arn:aws:iam::aws:policy/ReadOnlyAccess&Version=2010-05-08",
        )
        .unwrap();
        assert_eq!(s.action, "iam:AttachRolePolicy");
        assert_eq!(s.resources, ["arn:aws:iam::123456789012:role/app"]);
        assert_eq!(
            s.condition,
            Some(json!({"ArnEquals": {"iam:PolicyARN": ["arn:aws:iam::aws:policy/ReadOnlyAccess"]}}))
        );
        let tag = map("iam", "Action=TagRole&RoleName=app&Tags.member.1.Key=k&Tags.member.1.Value=v").unwrap();
        assert_eq!((tag.action.as_str(), tag.condition), ("iam:TagRole", None));
        let sts = map("sts", "Action=AssumeRole&RoleArn=arn:aws:iam::123456789012:role/x&RoleSessionName=s").unwrap();
        assert_eq!(sts.resources, ["arn:aws:iam::123456789012:role/x"]);
    }

    #[test]
    fn no_resource_or_a_pattern_is_refused() {
        for (service, query, why) in [
            ("iam", "Action=ListRoles", "names no resource"),
            ("iam", "Action=AttachRolePolicy&RoleName=*&PolicyArn=arn:aws:iam::aws:policy/A", "not one IAM name"),
            ("iam", "Action=DeleteRole&RoleName=a&RoleName=b", "more than once"),
            ("iam", "RoleName=a", "without Action"),
            ("iam", "Action=Delete%20Role&RoleName=a", "not an operation"),
            ("sts", "Action=AssumeRole&RoleArn=arn:aws:iam::123456789012:role/*", "not one exact ARN"),
            ("sts", "Action=AssumeRole&RoleName=a", "names no resource"),
        ] {
            let err = map(service, query).unwrap_err().0;
            assert!(err.contains(why), "{query}: {err}");
        }
        let role = RoleArn::parse("arn:aws:iam::123456789012:role/airlock").unwrap();
        let mut f = facts("POST", "iam.amazonaws.com", "/?Action=DeleteRole&RoleName=a", &[], "");
        f.body_size = 20;
        assert!(scope("iam", &role, &Approved::new(&f)).unwrap_err().0.contains("body"));
    }
}
