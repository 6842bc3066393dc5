//! `[credentials.<name>]` with `kind = "aws-sigv4"`: which role to assume, where, and how
//! an approved HTTP request maps to one AWS action on one resource.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

/// How the approved request names its AWS action.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Api {
    /// S3 REST: the method and the object (virtual-hosted or path-style) name the action.
    S3,
    /// Query APIs (IAM, STS, …): `Action=` and its parameters in the URL query.
    Query,
    /// JSON APIs: the `x-amz-target` header names the operation.
    Json,
}

/// `kind = "aws-sigv4"`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AwsSigV4Config {
    /// The role assumed for each approved action (its account and partition are the
    /// resources' too).
    pub role_arn: String,
    /// Signing region of the approved request (`us-east-1` for IAM).
    pub region: String,
    /// How the action is read from the request.
    pub api: Api,
    /// Signing name and IAM action prefix (`s3`, `iam`, `sts`, `dynamodb`, …); `s3` by
    /// default for `api = "s3"`.
    #[serde(default)]
    pub service: Option<String>,
    /// Hosts this profile signs for, exactly as the agent addresses them (for S3 also
    /// `<bucket>.<host>`). Any other host is refused.
    pub hosts: Vec<String>,
    /// STS endpoint for AssumeRole (and AssumeRoleWithWebIdentity).
    #[serde(default)]
    pub sts_endpoint: Option<String>,
    /// Signing region of the STS calls (default: `region`).
    #[serde(default)]
    pub sts_region: Option<String>,
    /// `ExternalId` the role's trust policy asks for, if any.
    #[serde(default)]
    pub external_id: Option<String>,
    /// Instance metadata endpoint (default `http://169.254.169.254`, or
    /// `AWS_EC2_METADATA_SERVICE_ENDPOINT`).
    #[serde(default)]
    pub imds_endpoint: Option<String>,
    /// Timeout of each call to STS or the metadata service.
    #[serde(default = "default_timeout", with = "crate::time::duration_text")]
    pub timeout: Duration,
    /// `api = "json"`: the one resource ARN each `x-amz-target` acts on. A target not
    /// listed is refused.
    #[serde(default)]
    pub json_resources: BTreeMap<String, String>,
}

impl AwsSigV4Config {
    /// Signing name and IAM prefix.
    pub fn service(&self) -> &str {
        match (&self.service, self.api) {
            (Some(s), _) => s,
            (None, Api::S3) => "s3",
            // validate() refuses this combination.
            (None, _) => "",
        }
    }

    /// STS endpoint: configured, else the regional one.
    pub fn sts_endpoint(&self) -> String {
        self.sts_endpoint.clone().unwrap_or_else(|| format!("https://sts.{}.amazonaws.com", self.sts_region()))
    }

    /// STS signing region.
    pub fn sts_region(&self) -> &str {
        self.sts_region.as_deref().unwrap_or(&self.region)
    }

    /// Checks profile `name` when the file is parsed.
    pub fn validate(&self, name: &str) -> anyhow::Result<()> {
        let field = |f: &str| format!("credentials.{name}.{f}");
        if super::arn::RoleArn::parse(&self.role_arn).is_none() {
            anyhow::bail!(
                "{}: {:?} is not an IAM role ARN (arn:aws:iam::<account>:role/<name>)",
                field("role_arn"),
                self.role_arn
            );
        }
        if !is_token(&self.region) {
            anyhow::bail!("{}: {:?} is not a region name", field("region"), self.region);
        }
        match (&self.service, self.api) {
            (None, Api::Query | Api::Json) => {
                anyhow::bail!(
                    "{}: required for api = \"query\" and \"json\" (e.g. \"iam\", \"dynamodb\")",
                    field("service")
                )
            }
            (Some(s), _) if !is_token(s) => anyhow::bail!("{}: {s:?} is not a service name", field("service")),
            _ => {}
        }
        if self.hosts.is_empty() || self.hosts.iter().any(|h| !is_host(h)) {
            anyhow::bail!(
                "{}: list the lower-case host names (with :port if not the default) this profile signs for",
                field("hosts")
            );
        }
        for (f, url) in [("sts_endpoint", &self.sts_endpoint), ("imds_endpoint", &self.imds_endpoint)] {
            if let Some(u) = url {
                if !(u.starts_with("https://") || u.starts_with("http://")) {
                    anyhow::bail!("{}: must be an http(s) URL", field(f));
                }
            }
        }
        if self.timeout.is_zero() || self.timeout > Duration::from_secs(30) {
            anyhow::bail!("{}: must be more than 0 and at most 30s", field("timeout"));
        }
        if self.api != Api::Json && !self.json_resources.is_empty() {
            anyhow::bail!("{}: only for api = \"json\"", field("json_resources"));
        }
        for (target, arn) in &self.json_resources {
            if !super::arn::is_exact_arn(arn) {
                anyhow::bail!("{}.{target:?}: {arn:?} is not one exact ARN (no wildcards)", field("json_resources"));
            }
        }
        Ok(())
    }
}

fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

fn is_host(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'.' | b':'))
}

fn default_timeout() -> Duration {
    Duration::from_secs(5)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn parse(text: &str) -> anyhow::Result<AwsSigV4Config> {
        let c: AwsSigV4Config = toml::from_str(text)?;
        c.validate("p")?;
        Ok(c)
    }

    const S3: &str = r#"
role_arn = "arn:aws:iam::123456789012:role/airlock-s3"
region = "eu-west-1"
api = "s3"
hosts = ["s3.eu-west-1.amazonaws.com"]
"#;

    #[test]
    fn an_s3_profile_defaults_to_the_regional_sts_and_the_s3_service() {
        let c = parse(S3).unwrap();
        assert_eq!(c.service(), "s3");
        assert_eq!(c.sts_endpoint(), "https://sts.eu-west-1.amazonaws.com");
        assert_eq!(c.timeout, Duration::from_secs(5));
    }

    #[test]
    fn bad_profiles_are_refused_naming_the_field() {
        let cases = [
            (S3.replace("role/airlock-s3", "user/airlock-s3"), "role_arn"),
            (S3.replace("eu-west-1\"\napi", "EU\"\napi"), "region"),
            (S3.replace("api = \"s3\"", "api = \"query\""), "service"),
            (S3.replace("[\"s3.eu-west-1.amazonaws.com\"]", "[]"), "hosts"),
            (S3.replace("[\"s3.eu-west-1.amazonaws.com\"]", "[\"S3.Example\"]"), "hosts"),
            (format!("{S3}sts_endpoint = \"ftp://x\"\n"), "sts_endpoint"),
            (format!("{S3}timeout = \"0s\"\n"), "timeout"),
            (format!("{S3}[json_resources]\n\"X.Y\" = \"arn:aws:s3:::b\"\n"), "json_resources"),
        ];
        for (text, field) in cases {
            let err = parse(&text).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(err.contains(field), "{field}: {err:?} for {text}");
        }
        let json = S3.replace("api = \"s3\"", "api = \"json\"\nservice = \"dynamodb\"");
        let err = parse(&format!("{json}[json_resources]\n\"X.Y\" = \"arn:aws:dynamodb:eu-west-1:1:table/*\"\n"));
        assert!(err.err().map(|e| e.to_string()).unwrap_or_default().contains("wildcards"));
        assert!(parse(&format!("{S3}colour = \"red\"\n")).is_err(), "unknown fields are refused");
    }

    #[test]
    fn it_is_a_credential_kind_of_airlock_toml() {
        let c: crate::credentials::CredentialConfig = toml::from_str(&format!("kind = \"aws-sigv4\"\n{S3}")).unwrap();
        c.validate("s3-export").unwrap();
        let typo = toml::from_str::<crate::credentials::CredentialConfig>(&format!(
            "kind = \"aws-sigv4\"\n{S3}rgion = \"x\"\n"
        ));
        assert!(typo.is_err(), "unknown fields are refused inside the kind too");
    }
}
