//! The policy engine's value of a body, built by the strict parser in its one pass.
//!
//! Every value is what `regorus::Value::from_json_str` makes of the same text — numbers
//! are read by that very function, except plain integers that fit 64 bits, which it
//! holds as the same integer — so the policy sees exactly what it saw when the body
//! was read twice. A number the engine cannot hold (`1e400`) or holds as another value
//! (`1000.0000000000001`, `crate::number`) refuses the body.

use super::parser::Build;
use super::BodyError;
use crate::cache::BodyView;
use regorus::Value;
use std::borrow::Cow;
use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, HashMap};

/// Builds [`Value`]s: of the top-level object, only the members `view` says the policy
/// can read (the others are validated, never built: the policy cannot tell). Object
/// keys without escapes are shared: an array of N objects with the same K keys holds K
/// key strings, not N × K (as regorus's own reader does).
pub struct EngineValue<'a, 'v> {
    keys: HashMap<&'a str, Value>,
    view: &'v BodyView,
}

impl<'a, 'v> EngineValue<'a, 'v> {
    pub fn new(view: &'v BodyView) -> EngineValue<'a, 'v> {
        EngineValue { keys: HashMap::new(), view }
    }
}

/// An object being built: its members, and the keys of members left unbuilt (for
/// refusing duplicates among all of them).
#[derive(Default)]
pub struct Members<'a> {
    map: BTreeMap<Value, Value>,
    skipped: Vec<Cow<'a, str>>,
}

/// The sign and digits of a plain integer token [`small_integer`] reads.
fn small_integer_parts(text: &str) -> Option<(bool, &str)> {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, text),
    };
    let plain = !digits.is_empty()
        && digits.len() <= 18
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'))
        // serde_json reads `-0` as the float -0.0: left to the general path.
        && !(negative && digits == "0");
    plain.then_some((negative, digits))
}

/// A JSON integer token of at most 18 digits without a leading zero (or `0`): it fits
/// `i64` and `u64`, so serde_json reads it as that integer (never as a float).
fn small_integer(text: &str) -> Option<Value> {
    let (negative, digits) = small_integer_parts(text)?;
    let n: u64 = digits.parse().ok()?;
    match (negative, n) {
        (false, n) => Some(Value::from(n)),
        (true, n) => Some(Value::from(-i64::try_from(n).ok()?)),
    }
}

/// The sign, integer and fraction digits of a decimal token [`short_decimal`] reads.
fn short_decimal_parts(text: &str) -> Option<(bool, &str, &str)> {
    let (negative, rest) = match text.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, text),
    };
    let (int, frac) = rest.split_once('.')?;
    // The grammar was checked by the parser; kept as strict here on its own.
    let too_long = int.len() + frac.len() > 15;
    let leading_zero = int.len() > 1 && int.starts_with('0');
    let short = !(int.is_empty() || frac.is_empty() || too_long || leading_zero)
        && int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit());
    short.then_some((negative, int, frac))
}

/// Exact powers of ten: every one up to 1e22 is a double.
const POW10: [f64; 16] = [1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15];

/// A decimal token `-?D+.F+` (no exponent) of at most 15 digits in all: regorus reads
/// it (serde_json's `f64_from_parts`, without `float_roundtrip`) as the digits, a
/// double exactly, divided by 10^len(F), exactly a double: one correctly rounded
/// division, computed here the same way. A decimal of at most 15 significant digits is
/// recovered from its nearest double (DBL_DIG), and the engine prints a float back as
/// the shortest decimal that reads as the same double — so the number is held exactly
/// and needs no printing back to check. Anything else takes the general path.
fn short_decimal(text: &str) -> Option<Value> {
    let (negative, int, frac) = short_decimal_parts(text)?;
    let mut significand: u64 = 0;
    for b in int.bytes().chain(frac.bytes()) {
        significand = significand * 10 + u64::from(b - b'0');
    }
    let f = significand as f64 / *POW10.get(frac.len())?;
    Some(Value::from(if negative { -f } else { f }))
}

/// Whether the engine holds the number token `text` exactly (else why the body is
/// refused), without building its value for the integers and short decimals it always
/// holds: a validated body part no policy reads is checked, never kept.
pub fn check_engine_number(text: &str) -> Result<(), BodyError> {
    if small_integer_parts(text).is_some() || short_decimal_parts(text).is_some() {
        return Ok(());
    }
    engine_number(text).map(drop)
}

/// The engine's value of a number token, or why the body is refused.
pub fn engine_number(text: &str) -> Result<Value, BodyError> {
    if let Some(v) = small_integer(text).or_else(|| short_decimal(text)) {
        return Ok(v);
    }
    // regorus's own reader (not a second instance of serde_json's for `Value`, which
    // would only grow the module).
    let value =
        Value::from_json_str(text).map_err(|e| BodyError(format!("the policy engine cannot represent it ({e})")))?;
    if !crate::number::held_exactly(text, &value) {
        return Err(BodyError(format!(
            "the number {text} cannot be held exactly by the policy engine, which would compare it as a different \
             value"
        )));
    }
    Ok(value)
}

impl<'a> Build<'a> for EngineValue<'a, '_> {
    type Value = Value;
    type Object = Members<'a>;

    fn null(&mut self) -> Value {
        Value::Null
    }

    fn bool(&mut self, b: bool) -> Value {
        Value::Bool(b)
    }

    fn number(&mut self, text: &'a str) -> Result<Value, BodyError> {
        engine_number(text)
    }

    fn string(&mut self, s: Cow<'a, str>) -> Value {
        match s {
            Cow::Borrowed(s) => Value::from(s),
            Cow::Owned(s) => Value::from(s),
        }
    }

    fn array(&mut self, items: Vec<Value>) -> Value {
        Value::from(items)
    }

    fn object(&mut self) -> Self::Object {
        Members::default()
    }

    fn wants(&self, depth: usize, key: &str) -> bool {
        depth > 0 || self.view.member(key)
    }

    fn skipped(&mut self, object: &mut Self::Object, key: Cow<'a, str>) -> Result<(), String> {
        if object.skipped.contains(&key) || object.map.contains_key(&Value::from(key.as_ref())) {
            return Err(key.into_owned());
        }
        object.skipped.push(key);
        Ok(())
    }

    fn member(&mut self, object: &mut Self::Object, key: Cow<'a, str>, value: Value) -> Result<(), String> {
        if object.skipped.contains(&key) {
            return Err(key.into_owned());
        }
        let k = match key {
            Cow::Borrowed(k) => self.keys.entry(k).or_insert_with(|| Value::from(k)).clone(),
            Cow::Owned(k) => Value::from(k),
        };
        match object.map.entry(k) {
            Entry::Occupied(e) => Err(e.key().as_string().map(|s| s.to_string()).unwrap_or_default()),
            Entry::Vacant(e) => {
                e.insert(value);
                Ok(())
            }
        }
    }

    fn close(&mut self, object: Self::Object) -> Value {
        Value::from(object.map)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    /// The general path: regorus's reader, then the exactness check.
    fn general(text: &str) -> Option<Value> {
        let v = Value::from_json_str(text).ok()?;
        crate::number::held_exactly(text, &v).then_some(v)
    }

    #[test]
    fn the_short_paths_read_what_regorus_reads_and_only_exact_numbers() {
        // A fixed pseudo-random walk over tokens of every shape the short paths take,
        // and the ones at their edges (no dependency for randomness).
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = |n: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % n
        };
        let mut tokens: Vec<String> = [
            "0.0",
            "-0.0",
            "0.5",
            "-0.5",
            "1.50",
            "0.1",
            "0.3",
            "125.5",
            "999999999999999.9",
            "99999999999999.99",
            "0.000000000000001",
            "123456789012345",
            "-123456789012345678",
            "1234567890.12345",
            "00.5",
        ]
        .map(String::from)
        .to_vec();
        for _ in 0..50_000 {
            let int_len = 1 + next(9) as usize;
            let frac_len = 1 + next(15) as usize;
            let digit = |n: &mut dyn FnMut(u64) -> u64| char::from(b'0' + n(10) as u8);
            let mut t = String::new();
            if next(2) == 0 {
                t.push('-');
            }
            let first = digit(&mut next);
            t.push(if int_len > 1 && first == '0' { '7' } else { first });
            for _ in 1..int_len {
                t.push(digit(&mut next));
            }
            t.push('.');
            for _ in 0..frac_len {
                t.push(digit(&mut next));
            }
            tokens.push(t);
        }
        let mut short = 0;
        for t in &tokens {
            let fast = small_integer(t).or_else(|| short_decimal(t));
            let Some(fast) = fast else { continue };
            short += 1;
            let slow = general(t).unwrap_or_else(|| panic!("{t}: taken as exact, but the engine does not hold it"));
            assert_eq!(fast, slow, "{t}");
            assert_eq!(serde_json::to_string(&fast).unwrap(), serde_json::to_string(&slow).unwrap(), "{t}");
        }
        assert!(short > 10_000, "{short}");
    }
}
