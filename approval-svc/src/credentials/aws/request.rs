//! The approved request as the gateway will forward it (the create body's `request`),
//! read for what SigV4 signs: the Host header, the path, the query and the headers.

use std::collections::BTreeMap;

use airlock_protocol::RequestFacts;

/// Why an approved request gets no AWS credential.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Unmapped(pub String);

/// The approved request.
pub struct Approved<'a> {
    pub facts: &'a RequestFacts,
}

impl<'a> Approved<'a> {
    /// Wraps the create body's request.
    pub fn new(facts: &'a RequestFacts) -> Approved<'a> {
        Approved { facts }
    }

    /// The Host header Envoy forwards: the host, and the port unless it is the scheme's
    /// default (clients leave it out then, and SigV4 signs the header as sent).
    pub fn host_header(&self) -> String {
        let f = self.facts;
        let default = matches!((f.scheme.as_str(), f.port), ("https", 443) | ("http", 80));
        if default {
            f.host.clone()
        } else {
            format!("{}:{}", f.host, f.port)
        }
    }

    /// The path, percent-decoded (the filter already refused encoded slashes, dot
    /// segments and invalid escapes; a bad one here is still refused).
    pub fn decoded_path(&self) -> Result<String, Unmapped> {
        percent_decode(&self.facts.path)
            .ok_or_else(|| Unmapped(format!("path {:?} does not decode to UTF-8", self.facts.path)))
    }

    /// The one value of query parameter `name`, if present (several: refused).
    pub fn query_one(&self, name: &str) -> Result<Option<&'a str>, Unmapped> {
        match self.facts.query.get(name).map(Vec::as_slice) {
            None | Some([]) => Ok(None),
            Some([v]) => Ok(Some(v.as_str())),
            Some(_) => Err(Unmapped(format!("query parameter {name:?} is given more than once"))),
        }
    }

    /// A header of the approved request (lower-case name).
    pub fn header(&self, name: &str) -> Option<&'a str> {
        self.facts.headers.get(name).map(String::as_str)
    }

    /// Query names present.
    pub fn query_names(&self) -> impl Iterator<Item = &'a str> {
        self.facts.query.keys().map(String::as_str)
    }

    /// The query as SigV4 reads it: every decoded pair, encoded the AWS way.
    pub fn encoded_query(&self) -> String {
        let mut pairs: Vec<String> = Vec::new();
        for (name, values) in &self.facts.query {
            for v in values {
                pairs.push(format!("{}={}", aws_encode(name, false), aws_encode(v, false)));
            }
        }
        pairs.join("&")
    }

    /// Headers of the approved request SigV4 must sign besides its own: every `x-amz-*`
    /// the agent sends (S3 refuses unsigned ones, and signing pins `x-amz-target`),
    /// `content-type` and `content-md5`. The three the signer sets are left out.
    pub fn headers_to_sign(&self) -> BTreeMap<String, String> {
        self.facts
            .headers
            .iter()
            .filter(|(n, _)| {
                (n.starts_with("x-amz-") || *n == "content-type" || *n == "content-md5")
                    && !matches!(n.as_str(), "x-amz-date" | "x-amz-security-token" | "x-amz-content-sha256")
            })
            .map(|(n, v)| (n.clone(), v.clone()))
            .collect()
    }
}

/// Percent-decodes `s`; `None` for a bad escape or bytes that are not UTF-8.
pub fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// URI-encodes the AWS way: every byte but `A-Z a-z 0-9 - . _ ~` (and `/` when
/// `keep_slash`) as `%XX`, upper-case hex.
pub fn aws_encode(s: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') || (keep_slash && b == b'/') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// A request the gateway would forward.
    pub fn facts(
        method: &str,
        host: &str,
        path_and_query: &str,
        headers: &[(&str, &str)],
        body_sha256: &str,
    ) -> RequestFacts {
        let (path, query) = path_and_query.split_once('?').unwrap_or((path_and_query, ""));
        let mut q: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (k, v) in form_urlencoded::parse(query.as_bytes()) {
            q.entry(k.into_owned()).or_default().push(v.into_owned());
        }
        RequestFacts {
            body: None,
            body_sha256: body_sha256.to_string(),
            body_size: 0,
            headers: headers.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect(),
            host: host.to_string(),
            id: None,
            method: method.to_string(),
            path: path.to_string(),
            port: 443,
            query: q,
            scheme: "https".into(),
        }
    }

    #[test]
    fn host_header_keeps_only_a_non_default_port() {
        let mut f = facts("GET", "s3.example", "/", &[], "");
        assert_eq!(Approved::new(&f).host_header(), "s3.example");
        f.port = 9000;
        assert_eq!(Approved::new(&f).host_header(), "s3.example:9000");
        f.scheme = "http".into();
        f.port = 80;
        assert_eq!(Approved::new(&f).host_header(), "s3.example");
    }

    #[test]
    fn query_is_encoded_the_aws_way_and_headers_to_sign_leave_out_the_signers_own() {
        let f = facts(
            "GET",
            "h",
            "/?b=x%20y&a=1+2&a=0",
            &[("x-amz-target", "T.Op"), ("x-amz-date", "old"), ("accept", "*/*"), ("content-type", "text/csv")],
            "",
        );
        let a = Approved::new(&f);
        assert_eq!(a.encoded_query(), "a=1%202&a=0&b=x%20y");
        let signed: Vec<String> = a.headers_to_sign().into_keys().collect();
        assert_eq!(signed, ["content-type", "x-amz-target"]);
        assert_eq!(percent_decode("/a%20b/%E2%82%AC").as_deref(), Some("/a b/€"));
        assert_eq!(percent_decode("/a%2"), None);
        assert_eq!(percent_decode("/%FF"), None);
        assert_eq!(aws_encode("a b/€~", true), "a%20b/%E2%82%AC~");
    }
}
