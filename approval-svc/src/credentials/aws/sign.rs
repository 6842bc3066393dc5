//! SigV4 over the approved request, with the session's temporary keys: the service
//! signs, the gateway only injects the headers. The payload hash is the approved body's
//! SHA-256 (the filter's `body_sha256`, the raw bytes it will forward), so a request
//! with any other body, path, query, host or signed header fails at AWS.

use std::collections::BTreeMap;
use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    sign, PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SigningSettings,
    UriPathNormalizationMode,
};
use aws_sigv4::sign::v4;

use super::request::{aws_encode, Approved, Unmapped};
use super::sts::Keys;

/// Where to sign: the signing name and region.
pub struct Signer<'a> {
    pub service: &'a str,
    pub region: &'a str,
}

/// The headers that make `req` an AWS request by `creds`: `authorization`,
/// `x-amz-date`, `x-amz-content-sha256`, `x-amz-security-token`.
pub fn sign_approved(
    signer: &Signer<'_>,
    req: &Approved<'_>,
    creds: &Keys,
    time: SystemTime,
) -> Result<BTreeMap<String, String>, Unmapped> {
    let f = req.facts;
    if f.body_sha256.len() != 64 || !f.body_sha256.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        return Err(Unmapped("the approved request has no body hash to sign".into()));
    }
    let s3 = signer.service == "s3";
    let mut settings = SigningSettings::default();
    settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
    // S3 signs the path as sent, encoded once and not normalised; every other service
    // encodes the (already encoded) path again.
    let path = if s3 {
        settings.percent_encoding_mode = PercentEncodingMode::Single;
        settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
        aws_encode(&req.decoded_path()?, true)
    } else {
        f.path.clone()
    };
    let query = req.encoded_query();
    let host = req.host_header();
    let uri = if query.is_empty() {
        format!("{}://{host}{path}", f.scheme)
    } else {
        format!("{}://{host}{path}?{query}", f.scheme)
    };
    let extra = req.headers_to_sign();
    let headers = std::iter::once(("host", host.as_str())).chain(extra.iter().map(|(n, v)| (n.as_str(), v.as_str())));
    let identity = Credentials::new(
        creds.access_key_id.clone(),
        creds.secret_access_key.clone(),
        creds.session_token.clone(),
        None,
        "airlock-sts",
    )
    .into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(signer.region)
        .name(signer.service)
        .time(time)
        .settings(settings)
        .build()
        .map_err(|e| Unmapped(format!("signing parameters: {e}")))?
        .into();
    let signable = SignableRequest::new(&f.method, uri, headers, SignableBody::Precomputed(f.body_sha256.clone()))
        .map_err(|e| Unmapped(format!("the approved request cannot be signed: {e}")))?;
    let (instructions, _signature) =
        sign(signable, &params).map_err(|e| Unmapped(format!("signing failed: {e}")))?.into_parts();
    let (signed, _params) = instructions.into_parts();
    Ok(signed.iter().map(|h| (h.name().to_ascii_lowercase(), h.value().to_string())).collect())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::super::request::tests::facts;
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    fn creds() -> Keys {
        Keys {
            access_key_id: "ASIAEXAMPLEKEY".into(),
            secret_access_key: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".into(),
            session_token: Some("token-1".into()),
            expires_ms: None,
        }
    }

    const EMPTY: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    // Signature computed outside Rust, with botocore 1.44.8 (as moto checks it):
    //   r = AWSRequest("PUT", "https://exports.s3.us-east-1.amazonaws.com/2026/12%20report.csv",
    //                  headers={"x-amz-content-sha256": EMPTY, "content-type": "text/csv",
    //                           "X-Amz-Date": "20261204T210000Z", "X-Amz-Security-Token": "token-1"})
    //   a = S3SigV4Auth(Credentials(KEY, SECRET, "token-1"), "s3", "us-east-1")
    //   a.signature(a.string_to_sign(r, a.canonical_request(r)), r)
    #[test]
    fn an_s3_put_is_signed_as_botocore_signs_it() {
        let f = facts(
            "PUT",
            "exports.s3.us-east-1.amazonaws.com",
            "/2026/12%20report.csv",
            &[("content-type", "text/csv"), ("x-amz-date", "ignored"), ("accept", "*/*")],
            EMPTY,
        );
        let at = UNIX_EPOCH + Duration::from_secs(1_796_418_000);
        let h =
            sign_approved(&Signer { service: "s3", region: "us-east-1" }, &Approved::new(&f), &creds(), at).unwrap();
        let names: Vec<&str> = h.keys().map(String::as_str).collect();
        assert_eq!(names, ["authorization", "x-amz-content-sha256", "x-amz-date", "x-amz-security-token"]);
        assert_eq!(h["x-amz-date"], "20261204T210000Z");
        assert_eq!(h["x-amz-content-sha256"], EMPTY);
        assert_eq!(h["x-amz-security-token"], "token-1");
        let auth = &h["authorization"];
        assert!(
            auth.starts_with("AWS4-HMAC-SHA256 Credential=ASIAEXAMPLEKEY/20261204/us-east-1/s3/aws4_request, SignedHeaders=content-type;host;x-amz-content-sha256;x-amz-date;x-amz-security-token, Signature="),
            "{auth}"
        );
        assert_eq!(auth.rsplit('=').next(), Some(BOTOCORE_S3_SIGNATURE));
        assert!(h.values().all(|v| airlock_protocol::injectable_header_value(v)));
    }

    const BOTOCORE_S3_SIGNATURE: &str = "d53f1a395323d2b933ce3cd70644043b45ceff4a9e555d3cb8b2f3bd9d9ac18f";

    #[test]
    fn no_body_hash_no_signature() {
        let f = facts("PUT", "exports.s3.us-east-1.amazonaws.com", "/k", &[], "");
        let err = sign_approved(
            &Signer { service: "s3", region: "us-east-1" },
            &Approved::new(&f),
            &creds(),
            SystemTime::now(),
        );
        assert!(err.unwrap_err().0.contains("body hash"));
    }
}
