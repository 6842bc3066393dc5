//! What the core needs from the host about the current request.
//!
//! The glue reads the whole request header map with one hostcall (one `get_map` is
//! cheaper than a read per header, and it is the only way to see repeats: Envoy's
//! single-value read returns just the first value, which would let
//! `x-airlock-agent: a` + `x-airlock-agent: b` pass as `a`). [`Headers`] keeps that map
//! as one string and spans into it: two allocations per request instead of two per
//! header, and lookups that borrow.

use std::borrow::Cow;

/// Read access to the request as the gateway holds it.
pub trait RequestSource {
    /// Every request header, lower-case names, in the order the host holds them.
    fn headers(&self) -> &Headers;
    /// A host property such as `["connection", "uri_san_peer_certificate"]`.
    fn property(&self, path: &[&str]) -> Option<Vec<u8>>;

    /// One request header, repeats joined with `,` so a repeat is visible to the caller.
    fn header(&self, name: &str) -> Option<String> {
        self.headers().get(name).map(Cow::into_owned)
    }
}

/// A request's headers: names and values in one string, in order.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Headers {
    text: String,
    /// Per header: name start, name end, value start, value end (byte offsets in `text`).
    spans: Vec<[u32; 4]>,
}

/// Why a serialized header map could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadMap(pub &'static str);

impl Headers {
    /// Parses proxy-wasm's serialized map: a little-endian `u32` count, then a
    /// (`u32` name length, `u32` value length) pair per header, then each name and value
    /// followed by a NUL. Bytes that are not UTF-8 are decoded lossily (U+FFFD); the core
    /// refuses U+FFFD wherever a value matters for security (identity, digest).
    pub fn from_serialized(bytes: &[u8]) -> Result<Headers, BadMap> {
        let word = |at: usize| -> Result<usize, BadMap> {
            let b = bytes.get(at..at + 4).ok_or(BadMap("truncated size table"))?;
            Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
        };
        if bytes.is_empty() {
            return Ok(Headers::default());
        }
        let count = word(0)?;
        let mut data = count.checked_mul(8).and_then(|n| n.checked_add(4)).ok_or(BadMap("header count overflows"))?;
        if data > bytes.len() {
            return Err(BadMap("header count larger than the map"));
        }
        let mut headers = Headers { text: String::with_capacity(bytes.len() - data), spans: Vec::with_capacity(count) };
        for i in 0..count {
            let (name_len, value_len) = (word(4 + i * 8)?, word(8 + i * 8)?);
            let name = bytes.get(data..data + name_len).ok_or(BadMap("header name past the end"))?;
            data += name_len + 1;
            let value = bytes.get(data..data + value_len).ok_or(BadMap("header value past the end"))?;
            data += value_len + 1;
            if data > bytes.len() {
                return Err(BadMap("header value past the end"));
            }
            headers.push_bytes(name, value);
        }
        Ok(headers)
    }

    /// Appends one header (native tests and benchmarks build requests this way).
    pub fn push(&mut self, name: &str, value: &str) {
        self.push_bytes(name.as_bytes(), value.as_bytes());
    }

    fn push_bytes(&mut self, name: &[u8], value: &[u8]) {
        let mut span = [0u32; 4];
        for (i, part) in [name, value].into_iter().enumerate() {
            span[i * 2] = offset(self.text.len());
            self.text.push_str(&String::from_utf8_lossy(part));
            span[i * 2 + 1] = offset(self.text.len());
        }
        self.spans.push(span);
    }

    /// Every header as (name, value), in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.spans.iter().map(|s| (self.slice(s[0], s[1]), self.slice(s[2], s[3])))
    }

    /// All values of header `name` joined with `,`; borrowed unless it is repeated.
    pub fn get(&self, name: &str) -> Option<Cow<'_, str>> {
        let mut out: Option<Cow<'_, str>> = None;
        let (text, wanted) = (self.text.as_bytes(), name.as_bytes());
        // Every request looks up a dozen names among all its headers: compare lengths,
        // then bytes, and only slice the value of a match.
        for s in &self.spans {
            let (start, end) = (s[0] as usize, s[1] as usize);
            if end - start != wanted.len() || text.get(start..end) != Some(wanted) {
                continue;
            }
            let v = self.slice(s[2], s[3]);
            out = Some(match out {
                None => Cow::Borrowed(v),
                Some(first) => {
                    let mut joined = first.into_owned();
                    joined.push(',');
                    joined.push_str(v);
                    Cow::Owned(joined)
                }
            });
        }
        out
    }

    pub fn len(&self) -> usize {
        self.spans.len()
    }

    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    fn slice(&self, start: u32, end: u32) -> &str {
        // Spans are byte offsets recorded between whole `push_str`s: always char
        // boundaries, so this never falls back.
        self.text.get(start as usize..end as usize).unwrap_or("")
    }
}

/// Offsets fit in `u32`: the host caps a header map far below 4 GiB.
fn offset(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

impl<'a> FromIterator<(&'a str, &'a str)> for Headers {
    fn from_iter<I: IntoIterator<Item = (&'a str, &'a str)>>(pairs: I) -> Headers {
        let mut h = Headers::default();
        for (n, v) in pairs {
            h.push(n, v);
        }
        h
    }
}

#[cfg(test)]
pub mod fake {
    //! A map-backed request for native tests.
    use super::{Headers, RequestSource};
    use std::collections::BTreeMap;

    #[derive(Debug, Default, Clone)]
    pub struct FakeRequest {
        pub headers: Headers,
        pub properties: BTreeMap<Vec<String>, Vec<u8>>,
    }

    impl FakeRequest {
        pub fn new(method: &str, authority: &str, path: &str) -> Self {
            FakeRequest::default()
                .with(":method", method)
                .with(":authority", authority)
                .with(":path", path)
                .with(":scheme", "http")
        }

        pub fn with(mut self, name: &str, value: &str) -> Self {
            self.headers.push(name, value);
            self
        }

        pub fn with_property(mut self, path: &[&str], value: &[u8]) -> Self {
            self.properties.insert(path.iter().map(|s| s.to_string()).collect(), value.to_vec());
            self
        }
    }

    impl RequestSource for FakeRequest {
        fn headers(&self) -> &Headers {
            &self.headers
        }
        fn property(&self, path: &[&str]) -> Option<Vec<u8>> {
            let key: Vec<String> = path.iter().map(|s| s.to_string()).collect();
            self.properties.get(&key).cloned()
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    /// The map as a proxy-wasm host serializes it.
    fn serialize(pairs: &[(&[u8], &[u8])]) -> Vec<u8> {
        let mut out = (pairs.len() as u32).to_le_bytes().to_vec();
        for (n, v) in pairs {
            out.extend_from_slice(&(n.len() as u32).to_le_bytes());
            out.extend_from_slice(&(v.len() as u32).to_le_bytes());
        }
        for (n, v) in pairs {
            out.extend_from_slice(n);
            out.push(0);
            out.extend_from_slice(v);
            out.push(0);
        }
        out
    }

    #[test]
    fn reads_a_serialized_map_in_order() {
        let bytes = serialize(&[(b":method", b"GET"), (b"x-a", b""), (b"x-a", b"2"), (b"", b"v")]);
        let h = Headers::from_serialized(&bytes).unwrap();
        assert_eq!(h.iter().collect::<Vec<_>>(), vec![(":method", "GET"), ("x-a", ""), ("x-a", "2"), ("", "v")]);
        assert_eq!(h.get(":method"), Some(Cow::Borrowed("GET")));
        assert_eq!(h.get("x-a").as_deref(), Some(",2"), "a repeat stays visible, even after an empty value");
        assert_eq!(h.get("x-b"), None);
        assert_eq!(Headers::from_serialized(&[]).unwrap().len(), 0);
        assert_eq!(Headers::from_serialized(&serialize(&[])).unwrap().len(), 0);
    }

    #[test]
    fn bytes_that_are_not_utf8_become_replacement_characters() {
        let bytes = serialize(&[(b"x-agent", b"a\xffb"), (b"x-\xc3", b"ok")]);
        let h = Headers::from_serialized(&bytes).unwrap();
        assert_eq!(h.get("x-agent").as_deref(), Some("a\u{FFFD}b"));
        assert_eq!(h.iter().nth(1), Some(("x-\u{FFFD}", "ok")));
    }

    #[test]
    fn malformed_maps_are_refused_not_misread() {
        let good = serialize(&[(b"name", b"value")]);
        for cut in 1..good.len() {
            assert!(Headers::from_serialized(&good[..cut]).is_err(), "cut at {cut}");
        }
        let mut huge = good.clone();
        huge[0..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(Headers::from_serialized(&huge).is_err());
        let mut long_value = good.clone();
        long_value[8..12].copy_from_slice(&1000u32.to_le_bytes());
        assert!(Headers::from_serialized(&long_value).is_err());
    }
}
