//! The request target as the upstream will see it: host, port, path and query.
//!
//! Envoy normalizes the path before the filter runs (`normalize_path`,
//! `merge_slashes`). Whatever is still ambiguous after that — an encoded slash,
//! backslash or NUL, dot segments, `;` parameters, doubled slashes — is refused rather
//! than guessed at, because the upstream may read it differently than the policy did.

use std::fmt;

/// Why a request target is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ambiguous(pub &'static str);

impl fmt::Display for Ambiguous {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

/// A checked path with its parsed query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathAndQuery<'a> {
    pub path: &'a str,
    /// Decoded `(name, value)` pairs in request order.
    pub query: Vec<(String, String)>,
}

/// Split `:path` into path and query and refuse anything ambiguous.
pub fn parse_path(raw: &str) -> Result<PathAndQuery<'_>, Ambiguous> {
    let (path, query) = match raw.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (raw, None),
    };
    check_path(path)?;
    let query = match query {
        Some(q) => {
            if q.bytes().any(|b| b < 0x20 || b == 0x7f || b == b'#') {
                return Err(Ambiguous("control character or fragment in query"));
            }
            let pairs: Vec<(String, String)> =
                form_urlencoded::parse(q.as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
            if pairs.iter().any(|(k, v)| k.contains('\0') || v.contains('\0')) {
                return Err(Ambiguous("encoded NUL in query"));
            }
            pairs
        }
        None => Vec::new(),
    };
    Ok(PathAndQuery { path, query })
}

fn check_path(path: &str) -> Result<(), Ambiguous> {
    if !path.starts_with('/') {
        return Err(Ambiguous("path must start with `/`"));
    }
    let bytes = path.as_bytes();
    // Decoded bytes must be UTF-8: an overlong form like %C0%AF is `/` to a lax decoder.
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => return Err(Ambiguous("backslash in path")),
            b';' => return Err(Ambiguous("`;` path parameter")),
            b'#' => return Err(Ambiguous("fragment in path")),
            b if !(0x21..0x7f).contains(&b) => return Err(Ambiguous("control, space or non-ASCII byte in path")),
            b'%' => {
                let hi = bytes.get(i + 1).copied();
                let lo = bytes.get(i + 2).copied();
                let (Some(hi), Some(lo)) = (hi, lo) else {
                    return Err(Ambiguous("truncated percent-encoding in path"));
                };
                if !hi.is_ascii_hexdigit() || !lo.is_ascii_hexdigit() {
                    return Err(Ambiguous("invalid percent-encoding in path"));
                }
                // Encoded `/`, `\`, NUL, `.` and `%` change what the path means
                // depending on who decodes it; refuse them all.
                match (hi.to_ascii_lowercase(), lo.to_ascii_lowercase()) {
                    (b'2', b'f') => return Err(Ambiguous("encoded slash (%2F) in path")),
                    (b'5', b'c') => return Err(Ambiguous("encoded backslash (%5C) in path")),
                    (b'0', b'0') => return Err(Ambiguous("encoded NUL (%00) in path")),
                    (b'2', b'e') => return Err(Ambiguous("encoded dot (%2E) in path")),
                    (b'2', b'5') => return Err(Ambiguous("double percent-encoding (%25) in path")),
                    _ => {}
                }
                decoded.push(hex_value(hi) << 4 | hex_value(lo));
                i += 3;
                continue;
            }
            b => decoded.push(b),
        }
        i += 1;
    }
    if std::str::from_utf8(&decoded).is_err() {
        return Err(Ambiguous("percent-encoding that is not valid UTF-8"));
    }
    if path.contains("//") {
        return Err(Ambiguous("empty path segment (`//`)"));
    }
    if path.split('/').any(|segment| segment == "." || segment == "..") {
        return Err(Ambiguous("dot segment in path"));
    }
    Ok(())
}

fn hex_value(h: u8) -> u8 {
    match h {
        b'0'..=b'9' => h - b'0',
        b'a'..=b'f' => h - b'a' + 10,
        _ => h - b'A' + 10,
    }
}

/// Host (lower-case, no port) and port from `:authority`.
pub fn parse_authority(authority: &str, scheme: &str) -> Result<(String, u16), Ambiguous> {
    if authority.is_empty() {
        return Err(Ambiguous("missing :authority"));
    }
    if authority.contains('@') {
        return Err(Ambiguous("userinfo in authority"));
    }
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let Some((h, after)) = rest.split_once(']') else {
            return Err(Ambiguous("unterminated IPv6 literal in authority"));
        };
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':').ok_or(Ambiguous("junk after IPv6 literal"))?),
        };
        if h.is_empty() || !h.bytes().all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.') {
            return Err(Ambiguous("invalid IPv6 literal in authority"));
        }
        (format!("[{}]", h.to_ascii_lowercase()), port)
    } else {
        let (h, p) = match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        };
        let h = h.strip_suffix('.').unwrap_or(h);
        // One trailing dot is the same host (`example.com.`); any other empty label
        // (`a..b`, `.a`, `a..`) is not a name at all.
        if h.split('.').any(str::is_empty)
            || !h.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_')
        {
            return Err(Ambiguous("invalid host in authority"));
        }
        (h.to_ascii_lowercase(), p)
    };
    let port = match port {
        Some(p) => p.parse::<u16>().map_err(|_| Ambiguous("invalid port in authority"))?,
        None if scheme == "https" => 443,
        None => 80,
    };
    Ok((host, port))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn plain_path_and_query() {
        let p = parse_path("/v1/exports?format=csv&b=%20x&format=json").unwrap();
        assert_eq!(p.path, "/v1/exports");
        assert_eq!(
            p.query,
            vec![("format".into(), "csv".into()), ("b".into(), " x".into()), ("format".into(), "json".into())]
        );
    }

    #[test]
    fn ambiguous_paths_are_refused() {
        for bad in [
            "/a%2Fb",
            "/a%2fb",
            "/a%5Cb",
            "/a%5cb",
            "/a%00",
            "/a/../b",
            "/a/./b",
            "/a/..",
            "/..",
            "/a//b",
            "//a",
            "/a;jsessionid=1",
            "/a\\b",
            "/a%2e%2e/b",
            "/a%252F",
            "/a%zz",
            "/a%2",
            "a/b",
            "/a b",
            "/é",
            "/a%C0%AFb",
            "/a%ff",
            "/a?x=%00",
        ] {
            assert!(parse_path(bad).is_err(), "{bad} must be refused");
        }
    }

    #[test]
    fn ordinary_paths_pass() {
        for ok in ["/", "/a/b/", "/a%20b", "/v1/items/123", "/a.b/c..d/.e", "/~user/x", "/caf%C3%A9"] {
            assert!(parse_path(ok).is_ok(), "{ok} must pass");
        }
    }

    #[test]
    fn authority_is_lower_cased_with_default_ports() {
        assert_eq!(parse_authority("API.Example.COM", "https").unwrap(), ("api.example.com".into(), 443));
        assert_eq!(parse_authority("api.example.com.:8443", "http").unwrap(), ("api.example.com".into(), 8443));
        assert_eq!(parse_authority("[::1]:80", "http").unwrap(), ("[::1]".into(), 80));
        assert_eq!(parse_authority("example.com", "http").unwrap().1, 80);
    }

    #[test]
    fn bad_authorities_are_refused() {
        for bad in ["", "user@host", "host:99999", "ho st", "[::1", "host:", "exa%6dple.com", "a..b", ".a", "a..", "."]
        {
            assert!(parse_authority(bad, "https").is_err(), "{bad} must be refused");
        }
    }
}
