//! STS over HTTP (ureq): `AssumeRole`, signed with the source credentials, and
//! `AssumeRoleWithWebIdentity` (unsigned: the token is the proof). Answers are AWS's
//! query-protocol XML; only the four credential elements are read.

use std::fmt;
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;

/// AWS keys: source credentials, or a session's temporary ones.
#[derive(Clone)]
pub struct Keys {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
    /// When they stop working, ms since the epoch (`None`: long-lived).
    pub expires_ms: Option<i64>,
}

// Never print a secret, not even in a debug log.
impl fmt::Debug for Keys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keys").field("expires_ms", &self.expires_ms).finish_non_exhaustive()
    }
}

/// STS's minimum `DurationSeconds`: a session outlives its one request by as little as
/// AWS allows.
pub const MIN_DURATION_SECS: u32 = 900;

/// An STS endpoint.
pub struct Sts {
    pub endpoint: String,
    pub region: String,
    pub timeout: Duration,
}

/// What AssumeRole is asked for.
pub struct AssumeRole<'a> {
    pub role_arn: &'a str,
    pub session_name: &'a str,
    pub policy: &'a str,
    pub external_id: Option<&'a str>,
}

impl Sts {
    /// `AssumeRole` for [`MIN_DURATION_SECS`] with an inline session policy.
    pub fn assume_role(&self, source: &Keys, ask: &AssumeRole<'_>) -> Result<Keys, String> {
        let duration = MIN_DURATION_SECS.to_string();
        let mut params = vec![
            ("Action", "AssumeRole"),
            ("Version", "2011-06-15"),
            ("RoleArn", ask.role_arn),
            ("RoleSessionName", ask.session_name),
            ("DurationSeconds", duration.as_str()),
            ("Policy", ask.policy),
        ];
        if let Some(id) = ask.external_id {
            params.push(("ExternalId", id));
        }
        let body = form(&params);
        let signed = self.sign_post(source, &body)?;
        self.call("AssumeRole", &body, &signed)
    }

    /// `AssumeRoleWithWebIdentity` (Kubernetes IRSA, any OIDC token file).
    pub fn assume_role_with_web_identity(
        &self,
        role_arn: &str,
        session_name: &str,
        token: &str,
    ) -> Result<Keys, String> {
        let body = form(&[
            ("Action", "AssumeRoleWithWebIdentity"),
            ("Version", "2011-06-15"),
            ("RoleArn", role_arn),
            ("RoleSessionName", session_name),
            ("WebIdentityToken", token),
        ]);
        self.call("AssumeRoleWithWebIdentity", &body, &[])
    }

    fn sign_post(&self, source: &Keys, body: &str) -> Result<Vec<(String, String)>, String> {
        let identity = Credentials::new(
            source.access_key_id.clone(),
            source.secret_access_key.clone(),
            source.session_token.clone(),
            None,
            "airlock-source",
        )
        .into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name("sts")
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| format!("signing parameters: {e}"))?
            .into();
        let headers = [("content-type", FORM)];
        let signable = SignableRequest::new(
            "POST",
            self.endpoint.as_str(),
            headers.into_iter(),
            SignableBody::Bytes(body.as_bytes()),
        )
        .map_err(|e| format!("sts endpoint {}: {e}", self.endpoint))?;
        let (instructions, _) = sign(signable, &params).map_err(|e| format!("signing: {e}"))?.into_parts();
        let (headers, _) = instructions.into_parts();
        Ok(headers.iter().map(|h| (h.name().to_string(), h.value().to_string())).collect())
    }

    fn call(&self, action: &str, body: &str, signed: &[(String, String)]) -> Result<Keys, String> {
        let agent: ureq::Agent =
            ureq::Agent::config_builder().timeout_global(Some(self.timeout)).http_status_as_error(false).build().into();
        let mut req = agent.post(&self.endpoint).header("content-type", FORM);
        for (name, value) in signed {
            req = req.header(name.as_str(), value.as_str());
        }
        let mut answer = req.send(body.as_bytes()).map_err(|e| format!("sts {action} at {}: {e}", self.endpoint))?;
        let status = answer.status().as_u16();
        let text = answer.body_mut().read_to_string().map_err(|e| format!("sts {action}: unreadable answer: {e}"))?;
        if status != 200 {
            let code = element(&text, "Code").unwrap_or_default();
            let message = element(&text, "Message").unwrap_or_default();
            return Err(format!("sts {action} answered {status} {code}: {message}"));
        }
        keys_from(&text).map_err(|e| format!("sts {action}: {e}"))
    }
}

const FORM: &str = "application/x-www-form-urlencoded; charset=utf-8";

fn form(params: &[(&str, &str)]) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in params {
        s.append_pair(k, v);
    }
    s.finish()
}

/// The `Credentials` of an AssumeRole* answer.
fn keys_from(xml: &str) -> Result<Keys, String> {
    let need = |tag: &str| element(xml, tag).ok_or_else(|| format!("answer has no single <{tag}>"));
    let expiration = need("Expiration")?;
    let expires = humantime::parse_rfc3339_weak(expiration.trim_end_matches('Z'))
        .map_err(|e| format!("Expiration {expiration:?}: {e}"))?;
    let expires_ms = expires.duration_since(SystemTime::UNIX_EPOCH).map(crate::time::duration_ms).unwrap_or(0);
    Ok(Keys {
        access_key_id: need("AccessKeyId")?,
        secret_access_key: need("SecretAccessKey")?,
        session_token: Some(need("SessionToken")?),
        expires_ms: Some(expires_ms),
    })
}

/// The text of the one `<tag>…</tag>` element in `xml`, entities decoded; `None` when
/// it is absent or repeated.
pub fn element(xml: &str, tag: &str) -> Option<String> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let start = xml.find(&open)? + open.len();
    let len = xml[start..].find(&close)?;
    if xml[start + len..].contains(&open) {
        return None;
    }
    let raw = &xml[start..start + len];
    Some(
        raw.replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&apos;", "'")
            .replace("&amp;", "&"),
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const ANSWER: &str = r#"<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleResult>
    <AssumedRoleUser><Arn>arn:aws:sts::123456789012:assumed-role/r/airlock-apr_1</Arn></AssumedRoleUser>
    <Credentials>
      <AccessKeyId>ASIAEXAMPLE</AccessKeyId>
      <SecretAccessKey>s3cr&amp;t/+</SecretAccessKey>
      <SessionToken>tok</SessionToken>
      <Expiration>2026-12-04T21:15:00Z</Expiration>
    </Credentials>
  </AssumeRoleResult>
</AssumeRoleResponse>"#;

    #[test]
    fn credentials_are_read_from_the_answer() {
        let k = keys_from(ANSWER).unwrap();
        assert_eq!(k.access_key_id, "ASIAEXAMPLE");
        assert_eq!(k.secret_access_key, "s3cr&t/+");
        assert_eq!(k.session_token.as_deref(), Some("tok"));
        assert_eq!(k.expires_ms, Some(1_796_418_900_000));
        assert!(!format!("{k:?}").contains("s3cr"), "Debug never shows a secret");
        let fractional = ANSWER.replace("21:15:00Z", "21:15:00.250000Z");
        assert_eq!(keys_from(&fractional).unwrap().expires_ms, Some(1_796_418_900_250));
    }

    #[test]
    fn a_missing_or_repeated_element_is_refused() {
        assert!(keys_from(&ANSWER.replace("<SessionToken>tok</SessionToken>", "")).is_err());
        let twice = ANSWER.replace(
            "<SessionToken>tok</SessionToken>",
            "<SessionToken>a</SessionToken><SessionToken>b</SessionToken>",
        );
        assert!(keys_from(&twice).is_err());
    }

    #[test]
    fn an_unreachable_sts_fails_naming_it() {
        let sts =
            Sts { endpoint: "http://127.0.0.1:9/".into(), region: "us-east-1".into(), timeout: Duration::from_secs(2) };
        let source =
            Keys { access_key_id: "AKIA".into(), secret_access_key: "s".into(), session_token: None, expires_ms: None };
        let ask = AssumeRole {
            role_arn: "arn:aws:iam::123456789012:role/r",
            session_name: "s",
            policy: "{}",
            external_id: None,
        };
        let err = sts.assume_role(&source, &ask).unwrap_err();
        assert!(err.contains("AssumeRole") && err.contains("127.0.0.1:9"), "{err}");
    }
}
