//! ARNs in session policies: the role's own, and resource ARNs that must name exactly one
//! thing. In an IAM policy `*` and `?` are wildcards and `${…}` a policy variable, so a
//! name carrying them would widen the grant; such names are refused, never escaped.

/// `arn:<partition>:iam::<account>:role/<path/name>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoleArn {
    pub partition: String,
    pub account: String,
}

impl RoleArn {
    /// Parses a role ARN (partition, 12-digit account, a role name).
    pub fn parse(arn: &str) -> Option<RoleArn> {
        let mut parts = arn.splitn(6, ':');
        let (Some("arn"), Some(partition), Some("iam"), Some(""), Some(account), Some(resource)) =
            (parts.next(), parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return None;
        };
        let name = resource.strip_prefix("role/")?;
        let ok = partition.starts_with("aws")
            && account.len() == 12
            && account.bytes().all(|b| b.is_ascii_digit())
            && !name.is_empty()
            && is_literal(name);
        ok.then(|| RoleArn { partition: partition.to_string(), account: account.to_string() })
    }
}

/// A name or ARN with nothing an IAM policy would read as a pattern or a variable.
pub fn is_literal(s: &str) -> bool {
    !s.contains(['*', '?']) && !s.contains("${") && !s.chars().any(char::is_control)
}

/// One exact ARN: `arn:` and five more `:`-separated parts, nothing pattern-like.
pub fn is_exact_arn(s: &str) -> bool {
    s.starts_with("arn:aws") && s.splitn(6, ':').count() == 6 && is_literal(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_arns_name_partition_and_account() {
        let r = RoleArn::parse("arn:aws:iam::123456789012:role/ops/airlock");
        assert_eq!(r, Some(RoleArn { partition: "aws".into(), account: "123456789012".into() }));
        assert!(RoleArn::parse("arn:aws-cn:iam::123456789012:role/x").is_some());
        for bad in [
            "arn:aws:iam::123456789012:user/x",
            "arn:aws:iam::12345:role/x",
            "arn:aws:s3:::bucket",
            "arn:aws:iam::123456789012:role/*",
            "arn:aws:iam::123456789012:role/",
        ] {
            assert!(RoleArn::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn patterns_and_variables_are_not_literal() {
        assert!(is_literal("reports/2026-12.csv"));
        for bad in ["a*", "a?", "home/${aws:username}", "a\nb"] {
            assert!(!is_literal(bad), "{bad:?}");
        }
        assert!(is_exact_arn("arn:aws:dynamodb:us-east-1:123456789012:table/orders"));
        assert!(!is_exact_arn("arn:aws:dynamodb:us-east-1:123456789012:table/*"));
        assert!(!is_exact_arn("table/orders"));
    }
}
