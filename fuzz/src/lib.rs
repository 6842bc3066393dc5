//! Helpers shared by the fuzz targets.

use airlock_filter::source::{Headers, RequestSource};

/// Splits `data` into at most `n` parts at the separator line `\n--\n` (the seed corpora
/// are written that way, so the fuzzer can mutate each part on its own).
pub fn parts(data: &[u8], n: usize) -> Vec<&[u8]> {
    const SEP: &[u8] = b"\n--\n";
    let mut out = Vec::with_capacity(n);
    let mut rest = data;
    while out.len() + 1 < n {
        match rest.windows(SEP.len()).position(|w| w == SEP) {
            Some(i) => {
                out.push(&rest[..i]);
                rest = &rest[i + SEP.len()..];
            }
            None => break,
        }
    }
    out.push(rest);
    while out.len() < n {
        out.push(&[]);
    }
    out
}

/// A request as the host would hand it to the filter.
#[derive(Debug, Default)]
pub struct Request {
    pub headers: Headers,
    pub properties: Vec<(Vec<String>, Vec<u8>)>,
}

impl RequestSource for Request {
    fn headers(&self) -> &Headers {
        &self.headers
    }
    fn property(&self, path: &[&str]) -> Option<Vec<u8>> {
        self.properties
            .iter()
            .find(|(p, _)| p.iter().map(String::as_str).eq(path.iter().copied()))
            .map(|(_, v)| v.clone())
    }
}

/// `name: value` lines (a name may start with `:`); lines without a separator are skipped.
pub fn header_lines(text: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut out = Vec::new();
    for line in text.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            continue;
        }
        let Some(at) = line.iter().skip(1).position(|&b| b == b':').map(|i| i + 1) else { continue };
        let value = &line[at + 1..];
        let value = value.strip_prefix(b" ").unwrap_or(value);
        out.push((line[..at].to_vec(), value.to_vec()));
    }
    out
}

/// A header map serialized the way proxy-wasm hosts hand it over.
pub fn serialize_map(pairs: &[(Vec<u8>, Vec<u8>)]) -> Vec<u8> {
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

/// The 32-byte key the filter-side targets are configured with (base64 in configs).
pub const KEY: &[u8; 32] = b"0123456789abcdef0123456789abcdef";
pub const KEY_B64: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
