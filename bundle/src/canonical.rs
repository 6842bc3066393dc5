//! File hashes as OPA computes them, so bundles signed by `opa sign` verify here and
//! bundles signed here verify in OPA.
//!
//! OPA (`bundle/verify.go` `VerifyBundleFile`, `cmd/sign.go` `hashFileContent`) hashes
//! `data.json`, `data.yaml` and `.manifest` as a parsed document: `util.Unmarshal` drops
//! a leading UTF-8 BOM and decodes with `json.Number` (numbers keep their spelling:
//! `1.50`, `0.10`, `-0`, `1E3` are hashed as written), then `bundle/hash.go` writes
//! objects with keys sorted and no whitespace, and every primitive as Go's
//! `encoding/json` encodes it with HTML escaping off. Every other file is hashed byte for
//! byte. serde_json cannot keep a number's spelling without changing every other user of
//! the crate (`arbitrary_precision` is workspace-wide), so the structured form is read
//! here by a small parser that follows Go's decoder: the same grammar as `json.Valid`,
//! and Go's repair of bad text inside strings (each invalid UTF-8 byte and each unpaired
//! surrogate escape becomes U+FFFD).

use std::collections::BTreeMap;

use crate::BundleError;
use sha2::{Digest, Sha256};

/// Nesting bound: serde_json's, which loads the same files afterwards.
const MAX_DEPTH: usize = 128;
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Whether OPA hashes this file as a parsed JSON document (`data.yaml` too in OPA, which
/// parses it as YAML; Airlock hashes it byte for byte: see docs/bundles.md).
pub fn is_structured(name: &str) -> bool {
    matches!(name.rsplit('/').next(), Some("data.json" | ".manifest"))
}

/// Lower-case hex SHA-256 of `bytes` as OPA hashes the file `name`.
pub fn file_hash(name: &str, bytes: &[u8]) -> Result<String, BundleError> {
    if !is_structured(name) {
        return Ok(hex::encode(Sha256::digest(bytes)));
    }
    let text = bytes.strip_prefix(BOM).unwrap_or(bytes);
    let doc = Parser::parse(text)
        .map_err(|why| BundleError::BadFile { name: name.to_string(), why: format!("invalid JSON: {why}") })?;
    let mut h = Sha256::new();
    doc.write(&mut h);
    Ok(hex::encode(h.finalize()))
}

/// OPA loads `data.json` and `.manifest` with a plain `json.Decoder`, which refuses a
/// byte-order mark although the signature hash skips it: say so rather than "invalid JSON".
pub(crate) fn refuse_bom(name: &str, bytes: &[u8]) -> Result<(), BundleError> {
    if bytes.starts_with(BOM) {
        return Err(BundleError::BadFile {
            name: name.to_string(),
            why: "starts with a UTF-8 byte-order mark, which OPA refuses to load too (its signature hash \
                  ignores the mark); save the file without one"
                .into(),
        });
    }
    Ok(())
}

/// A parsed document: strings decoded, numbers and literals kept as written.
enum Node<'a> {
    Object(BTreeMap<String, Node<'a>>),
    Array(Vec<Node<'a>>),
    String(String),
    /// A number's text, `true`, `false` or `null`.
    Verbatim(&'a [u8]),
}

impl Node<'_> {
    /// `bundle/hash.go` `walk`: `{`, keys in byte order, `:`, `,` between, `}`.
    fn write(&self, h: &mut Sha256) {
        match self {
            Node::Object(map) => {
                h.update(b"{");
                for (i, (k, v)) in map.iter().enumerate() {
                    if i > 0 {
                        h.update(b",");
                    }
                    string(k, h);
                    h.update(b":");
                    v.write(h);
                }
                h.update(b"}");
            }
            Node::Array(items) => {
                h.update(b"[");
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        h.update(b",");
                    }
                    item.write(h);
                }
                h.update(b"]");
            }
            Node::String(s) => string(s, h),
            Node::Verbatim(text) => h.update(text),
        }
    }
}

struct Parser<'a> {
    b: &'a [u8],
    i: usize,
    depth: usize,
}

impl<'a> Parser<'a> {
    fn parse(b: &'a [u8]) -> Result<Node<'a>, String> {
        let mut p = Parser { b, i: 0, depth: 0 };
        p.ws();
        let v = p.value()?;
        p.ws();
        if p.i != b.len() {
            return Err(p.err("data after the top-level value"));
        }
        Ok(v)
    }

    fn err(&self, what: &str) -> String {
        format!("{what} at byte {}", self.i)
    }

    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
    }

    fn eat(&mut self, c: u8) -> bool {
        let hit = self.peek() == Some(c);
        if hit {
            self.i += 1;
        }
        hit
    }

    fn value(&mut self) -> Result<Node<'a>, String> {
        match self.peek() {
            Some(b'{') => self.nested(Parser::object),
            Some(b'[') => self.nested(Parser::array),
            Some(b'"') => Ok(Node::String(self.string()?)),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(b't') => self.literal(b"true"),
            Some(b'f') => self.literal(b"false"),
            Some(b'n') => self.literal(b"null"),
            Some(_) => Err(self.err("expected a value")),
            None => Err(self.err("unexpected end")),
        }
    }

    fn nested(&mut self, f: fn(&mut Parser<'a>) -> Result<Node<'a>, String>) -> Result<Node<'a>, String> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.err(&format!("nested deeper than {MAX_DEPTH}")));
        }
        let v = f(self);
        self.depth -= 1;
        v
    }

    fn object(&mut self) -> Result<Node<'a>, String> {
        self.i += 1;
        let mut map = BTreeMap::new();
        self.ws();
        if self.eat(b'}') {
            return Ok(Node::Object(map));
        }
        loop {
            self.ws();
            if self.peek() != Some(b'"') {
                return Err(self.err("expected a key"));
            }
            let key = self.string()?;
            self.ws();
            if !self.eat(b':') {
                return Err(self.err("expected `:`"));
            }
            self.ws();
            // A repeated key: the last value wins, as in Go's decoder.
            map.insert(key, self.value()?);
            self.ws();
            if self.eat(b'}') {
                return Ok(Node::Object(map));
            }
            if !self.eat(b',') {
                return Err(self.err("expected `,` or `}`"));
            }
        }
    }

    fn array(&mut self) -> Result<Node<'a>, String> {
        self.i += 1;
        let mut items = Vec::new();
        self.ws();
        if self.eat(b']') {
            return Ok(Node::Array(items));
        }
        loop {
            self.ws();
            items.push(self.value()?);
            self.ws();
            if self.eat(b']') {
                return Ok(Node::Array(items));
            }
            if !self.eat(b',') {
                return Err(self.err("expected `,` or `]`"));
            }
        }
    }

    fn literal(&mut self, word: &'static [u8]) -> Result<Node<'a>, String> {
        if !self.b[self.i..].starts_with(word) {
            return Err(self.err("expected `true`, `false` or `null`"));
        }
        self.i += word.len();
        Ok(Node::Verbatim(word))
    }

    /// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`, kept as written.
    fn number(&mut self) -> Result<Node<'a>, String> {
        let start = self.i;
        self.eat(b'-');
        match self.peek() {
            Some(b'0') => self.i += 1,
            Some(b'1'..=b'9') => self.digits(),
            _ => return Err(self.err("expected a digit")),
        }
        if self.eat(b'.') {
            self.one_or_more_digits()?;
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.i += 1;
            if !self.eat(b'+') {
                self.eat(b'-');
            }
            self.one_or_more_digits()?;
        }
        Ok(Node::Verbatim(&self.b[start..self.i]))
    }

    fn digits(&mut self) {
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.i += 1;
        }
    }

    fn one_or_more_digits(&mut self) -> Result<(), String> {
        if !matches!(self.peek(), Some(b'0'..=b'9')) {
            return Err(self.err("expected a digit"));
        }
        self.digits();
        Ok(())
    }

    /// A string, decoded as Go's `unquote` does.
    fn string(&mut self) -> Result<String, String> {
        self.i += 1;
        let mut out = String::new();
        loop {
            match self.peek() {
                None => return Err(self.err("unterminated string")),
                Some(b'"') => {
                    self.i += 1;
                    return Ok(out);
                }
                Some(b'\\') => self.escape(&mut out)?,
                Some(c) if c < 0x20 => return Err(self.err("control character in a string")),
                Some(c) if c < 0x80 => {
                    out.push(char::from(c));
                    self.i += 1;
                }
                Some(c) => {
                    let width = match c {
                        0xC2..=0xDF => 2,
                        0xE0..=0xEF => 3,
                        0xF0..=0xF4 => 4,
                        _ => 1,
                    };
                    let end = (self.i + width).min(self.b.len());
                    match std::str::from_utf8(&self.b[self.i..end]) {
                        Ok(s) if width > 1 => {
                            out.push_str(s);
                            self.i = end;
                        }
                        // Go's utf8.DecodeRune: one bad byte, one U+FFFD.
                        _ => {
                            out.push(char::REPLACEMENT_CHARACTER);
                            self.i += 1;
                        }
                    }
                }
            }
        }
    }

    fn escape(&mut self, out: &mut String) -> Result<(), String> {
        let c = self.b.get(self.i + 1).copied();
        let simple = match c {
            Some(b'"') => Some('"'),
            Some(b'\\') => Some('\\'),
            Some(b'/') => Some('/'),
            Some(b'b') => Some('\u{8}'),
            Some(b'f') => Some('\u{c}'),
            Some(b'n') => Some('\n'),
            Some(b'r') => Some('\r'),
            Some(b't') => Some('\t'),
            Some(b'u') => None,
            _ => return Err(self.err("invalid escape")),
        };
        if let Some(ch) = simple {
            out.push(ch);
            self.i += 2;
            return Ok(());
        }
        let hi = self.u4(self.i).ok_or_else(|| self.err("invalid \\u escape"))?;
        self.i += 6;
        if (0xD800..0xE000).contains(&hi) {
            // A pair only if a low surrogate escape follows; otherwise this one alone
            // becomes U+FFFD and the next escape is read on its own (Go's `unquote`).
            let lo = self.u4(self.i);
            if let (true, Some(lo @ 0xDC00..=0xDFFF)) = (hi < 0xDC00, lo) {
                let code = 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
                out.push(char::from_u32(code).unwrap_or(char::REPLACEMENT_CHARACTER));
                self.i += 6;
            } else {
                out.push(char::REPLACEMENT_CHARACTER);
            }
            return Ok(());
        }
        out.push(char::from_u32(hi).unwrap_or(char::REPLACEMENT_CHARACTER));
        Ok(())
    }

    /// The code unit of a `\uXXXX` escape starting at `at`.
    fn u4(&self, at: usize) -> Option<u32> {
        let s = self.b.get(at..at + 6)?;
        if s[0] != b'\\' || s[1] != b'u' {
            return None;
        }
        let hex = std::str::from_utf8(&s[2..]).ok()?;
        if !hex.bytes().all(|c| c.is_ascii_hexdigit()) {
            return None;
        }
        u32::from_str_radix(hex, 16).ok()
    }
}

/// A JSON string as Go's encoder writes it with HTML escaping off (Go ≥ 1.22, which
/// writes `\b` and `\f` short; OPA 1.x is built with newer).
fn string(s: &str, h: &mut Sha256) {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 || c == '\u{2028}' || c == '\u{2029}' => {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    h.update(out.as_bytes());
}

#[cfg(test)]
mod tests;
