//! The strict JSON grammar, once, for every reader of a body.
//!
//! RFC 8259 without what parsers disagree on: duplicate object keys, lone surrogates,
//! trailing bytes, nesting deeper than [`MAX_DEPTH`]. What each value becomes is up to a
//! [`Build`]: the strict tree that keeps numbers as written ([`super::Json`], for the
//! JSON-RPC canonical form), or the policy engine's value built in the same pass
//! ([`super::engine`]), so the body the policy reads is scanned once.

use super::BodyError;
use std::borrow::Cow;

/// Deepest nesting of arrays and objects accepted (serde_json's own limit).
pub const MAX_DEPTH: usize = 128;

/// What the parser makes of each value it reads.
pub trait Build<'a> {
    type Value;
    type Object;
    fn null(&mut self) -> Self::Value;
    fn bool(&mut self, b: bool) -> Self::Value;
    /// A number token exactly as written (grammar already checked).
    fn number(&mut self, text: &'a str) -> Result<Self::Value, BodyError>;
    /// A string with its escapes decoded; borrowed from the text when it had none.
    fn string(&mut self, s: Cow<'a, str>) -> Self::Value;
    fn array(&mut self, items: Vec<Self::Value>) -> Self::Value;
    fn object(&mut self) -> Self::Object;
    /// Whether the member `key` of an object at nesting `depth` is wanted; when not, its
    /// value is only validated ([`Validate`]) and [`Build::skipped`] is called instead
    /// of [`Build::member`].
    fn wants(&self, _depth: usize, _key: &str) -> bool {
        true
    }
    /// Notes a member whose value was not wanted; when `key` is already a member, gives
    /// it back (the parser refuses the body).
    fn skipped(&mut self, _object: &mut Self::Object, key: Cow<'a, str>) -> Result<(), String> {
        Err(key.into_owned())
    }
    /// Adds a member; when `key` is already a member, gives it back (the parser refuses
    /// the body).
    fn member(&mut self, object: &mut Self::Object, key: Cow<'a, str>, value: Self::Value) -> Result<(), String>;
    fn close(&mut self, object: Self::Object) -> Self::Value;
}

/// Parse `text` strictly, building with `b`.
pub fn parse_with<'a, B: Build<'a>>(text: &'a str, b: &mut B) -> Result<B::Value, BodyError> {
    let mut p = Parser { s: text, b: text.as_bytes(), i: 0 };
    p.ws();
    let v = p.value(0, b)?;
    p.ws();
    if p.i != p.b.len() {
        return Err(p.err("unexpected data after the JSON value"));
    }
    Ok(v)
}

struct Parser<'a> {
    s: &'a str,
    b: &'a [u8],
    i: usize,
}

impl<'a> Parser<'a> {
    fn err(&self, what: &str) -> BodyError {
        BodyError(format!("{what} at byte {}", self.i))
    }

    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.b.get(self.i) {
            self.i += 1;
        }
    }

    fn eat(&mut self, c: u8) -> bool {
        if self.b.get(self.i) == Some(&c) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn literal(&mut self, word: &str) -> Result<(), BodyError> {
        if self.b.get(self.i..).is_some_and(|rest| rest.starts_with(word.as_bytes())) {
            self.i += word.len();
            Ok(())
        } else {
            Err(self.err("invalid literal"))
        }
    }

    fn value<B: Build<'a>>(&mut self, depth: usize, b: &mut B) -> Result<B::Value, BodyError> {
        match self.b.get(self.i) {
            None => Err(self.err("unexpected end of JSON")),
            Some(b'n') => self.literal("null").map(|_| b.null()),
            Some(b't') => self.literal("true").map(|_| b.bool(true)),
            Some(b'f') => self.literal("false").map(|_| b.bool(false)),
            Some(b'"') => Ok(b.string(self.string()?)),
            Some(b'-' | b'0'..=b'9') => {
                let text = self.number()?;
                b.number(text)
            }
            Some(b'[') => {
                if depth >= MAX_DEPTH {
                    return Err(self.err("nesting too deep"));
                }
                self.i += 1;
                let mut items = Vec::new();
                self.ws();
                if self.eat(b']') {
                    return Ok(b.array(items));
                }
                loop {
                    self.ws();
                    items.push(self.value(depth + 1, b)?);
                    self.ws();
                    if self.eat(b']') {
                        return Ok(b.array(items));
                    }
                    if !self.eat(b',') {
                        return Err(self.err("expected `,` or `]`"));
                    }
                }
            }
            Some(b'{') => {
                if depth >= MAX_DEPTH {
                    return Err(self.err("nesting too deep"));
                }
                self.i += 1;
                let mut members = b.object();
                self.ws();
                if self.eat(b'}') {
                    return Ok(b.close(members));
                }
                loop {
                    self.ws();
                    if self.b.get(self.i) != Some(&b'"') {
                        return Err(self.err("expected an object key"));
                    }
                    let at = self.i;
                    let key = self.string()?;
                    self.ws();
                    if !self.eat(b':') {
                        return Err(self.err("expected `:`"));
                    }
                    self.ws();
                    let added = if b.wants(depth, &key) {
                        let v = self.value(depth + 1, b)?;
                        b.member(&mut members, key, v)
                    } else {
                        self.value(depth + 1, &mut Validate::default())?;
                        b.skipped(&mut members, key)
                    };
                    if let Err(key) = added {
                        // Parsers disagree on which duplicate wins: the policy could read one
                        // value and the upstream act on the other.
                        return Err(BodyError(format!("duplicate object key {key:?} at byte {at}")));
                    }
                    self.ws();
                    if self.eat(b'}') {
                        return Ok(b.close(members));
                    }
                    if !self.eat(b',') {
                        return Err(self.err("expected `,` or `}`"));
                    }
                }
            }
            Some(_) => Err(self.err("unexpected character")),
        }
    }

    fn digits(&mut self) -> usize {
        let start = self.i;
        while self.b.get(self.i).is_some_and(u8::is_ascii_digit) {
            self.i += 1;
        }
        self.i - start
    }

    fn number(&mut self) -> Result<&'a str, BodyError> {
        let start = self.i;
        self.eat(b'-');
        match self.b.get(self.i) {
            Some(b'0') => self.i += 1,
            Some(b'1'..=b'9') => {
                self.digits();
            }
            _ => return Err(self.err("invalid number")),
        }
        if self.eat(b'.') && self.digits() == 0 {
            return Err(self.err("invalid number"));
        }
        if self.eat(b'e') || self.eat(b'E') {
            if !self.eat(b'+') {
                self.eat(b'-');
            }
            if self.digits() == 0 {
                return Err(self.err("invalid number"));
            }
        }
        self.s.get(start..self.i).ok_or_else(|| self.err("invalid number"))
    }

    fn hex4(&mut self) -> Result<u32, BodyError> {
        let h = self.b.get(self.i..self.i + 4).ok_or_else(|| self.err("truncated \\u escape"))?;
        let h = std::str::from_utf8(h).ok().and_then(|h| u32::from_str_radix(h, 16).ok());
        match h {
            Some(v) => {
                self.i += 4;
                Ok(v)
            }
            None => Err(self.err("invalid \\u escape")),
        }
    }

    /// The plain run of a string from `self.i`: up to a quote, a backslash, a control
    /// character or the end.
    fn run(&mut self) -> Result<&'a str, BodyError> {
        let start = self.i;
        self.i += plain_len(self.b.get(start..).unwrap_or_default());
        // `start..i` ends before an ASCII byte or at the end: a char boundary.
        self.s.get(start..self.i).ok_or_else(|| self.err("invalid string"))
    }

    fn string(&mut self) -> Result<Cow<'a, str>, BodyError> {
        self.i += 1; // the opening quote
        let first = self.run()?;
        if self.b.get(self.i) == Some(&b'"') {
            // No escapes (most strings): the text itself, not a copy.
            self.i += 1;
            return Ok(Cow::Borrowed(first));
        }
        let mut out = String::from(first);
        loop {
            match self.b.get(self.i) {
                None => return Err(self.err("unterminated string")),
                Some(b'"') => {
                    self.i += 1;
                    return Ok(Cow::Owned(out));
                }
                Some(b'\\') => {
                    self.i += 1;
                    let Some(&e) = self.b.get(self.i) else {
                        return Err(self.err("unterminated string"));
                    };
                    self.i += 1;
                    match e {
                        b'"' => out.push('"'),
                        b'\\' => out.push('\\'),
                        b'/' => out.push('/'),
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        b'n' => out.push('\n'),
                        b'r' => out.push('\r'),
                        b't' => out.push('\t'),
                        b'u' => {
                            let hi = self.hex4()?;
                            let code = if (0xD800..0xDC00).contains(&hi) {
                                if !(self.eat(b'\\') && self.eat(b'u')) {
                                    return Err(self.err("lone surrogate in \\u escape"));
                                }
                                let lo = self.hex4()?;
                                if !(0xDC00..0xE000).contains(&lo) {
                                    return Err(self.err("lone surrogate in \\u escape"));
                                }
                                0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
                            } else {
                                hi
                            };
                            match char::from_u32(code) {
                                Some(c) => out.push(c),
                                None => return Err(self.err("lone surrogate in \\u escape")),
                            }
                        }
                        _ => return Err(self.err("invalid escape")),
                    }
                }
                Some(_) => return Err(self.err("control character in string")),
            }
            let run = self.run()?;
            out.push_str(run);
        }
    }
}

/// The length of the plain run at the start of `bytes`: up to a quote, a backslash or a
/// control character. Eight bytes are tested at once while none of them can end the run
/// (bodies are mostly string bytes, and the Wasm VM has 64-bit integers but no vectors
/// here); the word that can is finished byte by byte.
fn plain_len(bytes: &[u8]) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    // Nonzero when some byte of `x` is below `n` (≤ 0x80): the classic "has less"
    // test. Its lowest flagged byte is exact; a borrow may flag higher ones too, which
    // only matters once the word is known to hold a special byte.
    let below = |x: u64, n: u64| x.wrapping_sub(ONES * n) & !x & HIGHS;
    let special =
        |x: u64| below(x, 0x20) | below(x ^ (ONES * u64::from(b'"')), 1) | below(x ^ (ONES * u64::from(b'\\')), 1);
    let mut n = 0;
    while let Some(word) = bytes.get(n..n + 8).and_then(|w| <[u8; 8]>::try_from(w).ok()) {
        if special(u64::from_le_bytes(word)) != 0 {
            break;
        }
        n += 8;
    }
    let rest = bytes.get(n..).unwrap_or_default();
    n + rest.iter().position(|&c| c == b'"' || c == b'\\' || c < 0x20).unwrap_or(rest.len())
}

/// Builds nothing: what the strict grammar refuses is still refused, duplicate keys
/// and numbers the engine cannot hold exactly included (so a body is refused or
/// accepted whatever parts of it the policy reads), without allocating the values.
///
/// The keys of the objects being validated live on one stack, each open object owning
/// its top run: a body of thousands of small objects reuses one buffer instead of
/// allocating a list per object.
#[derive(Default)]
pub struct Validate<'a> {
    keys: Vec<Cow<'a, str>>,
}

/// An object being validated: where its keys start on the stack, and once it has more
/// than [`FEW_KEYS`] of them, a sorted set instead (so a huge object costs O(n log n),
/// not O(n²)).
pub struct Keys<'a> {
    start: usize,
    many: Option<std::collections::BTreeSet<Cow<'a, str>>>,
}

const FEW_KEYS: usize = 16;

impl<'a> Build<'a> for Validate<'a> {
    type Value = ();
    type Object = Keys<'a>;

    fn null(&mut self) {}

    fn bool(&mut self, _: bool) {}

    fn number(&mut self, text: &'a str) -> Result<(), BodyError> {
        super::engine::check_engine_number(text)
    }

    fn string(&mut self, _: Cow<'a, str>) {}

    fn array(&mut self, _: Vec<()>) {}

    fn object(&mut self) -> Self::Object {
        Keys { start: self.keys.len(), many: None }
    }

    fn member(&mut self, object: &mut Self::Object, key: Cow<'a, str>, _: ()) -> Result<(), String> {
        if let Some(many) = &mut object.many {
            if many.contains(&key) {
                return Err(key.into_owned());
            }
            many.insert(key);
            return Ok(());
        }
        let few = self.keys.get(object.start..).unwrap_or_default();
        if few.contains(&key) {
            return Err(key.into_owned());
        }
        if few.len() < FEW_KEYS {
            self.keys.push(key);
            return Ok(());
        }
        let mut many: std::collections::BTreeSet<_> = self.keys.drain(object.start..).collect();
        many.insert(key);
        object.many = Some(many);
        Ok(())
    }

    fn close(&mut self, object: Self::Object) {
        self.keys.truncate(object.start);
    }
}

#[cfg(test)]
mod tests {
    use super::plain_len;

    #[test]
    fn a_plain_run_ends_at_the_first_quote_backslash_or_control_character() {
        let slow = |b: &[u8]| b.iter().position(|&c| c == b'"' || c == b'\\' || c < 0x20).unwrap_or(b.len());
        let fillers: [&[u8]; 4] = [b"a", "é".as_bytes(), b"\x7f", b" "];
        let enders: [u8; 6] = [b'"', b'\\', 0x00, 0x1f, b'\n', b'\t'];
        for filler in fillers {
            for len in 0..40 {
                let run: Vec<u8> = filler.iter().copied().cycle().take(len).collect();
                assert_eq!(plain_len(&run), slow(&run), "{len} × {filler:?}");
                for ender in enders {
                    for tail in [&b""[..], b"\"\\x", b"abcdefghijklmnop"] {
                        let mut b = run.clone();
                        b.push(ender);
                        b.extend_from_slice(tail);
                        assert_eq!(plain_len(&b), len, "{len} × {filler:?} then {ender:#x}");
                    }
                }
            }
        }
        // Bytes just above the limits never end a run; every byte value is tried.
        for c in 0..=255u8 {
            let b = [b'a', b'b', b'c', c, b'd', b'e', b'f', b'g', b'h', b'i'];
            assert_eq!(plain_len(&b), slow(&b), "{c:#x}");
        }
    }
}
