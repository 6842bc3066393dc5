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

/// A JSON integer token of at most 18 digits without a leading zero (or `0`): it fits
/// `i64` and `u64`, so serde_json reads it as that integer (never as a float).
fn small_integer(text: &str) -> Option<Value> {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, text),
    };
    let plain = !digits.is_empty()
        && digits.len() <= 18
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'));
    if !plain {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    match (negative, n) {
        (false, n) => Some(Value::from(n)),
        // serde_json reads `-0` as the float -0.0: left to the general path.
        (true, 0) => None,
        (true, n) => Some(Value::from(-i64::try_from(n).ok()?)),
    }
}

/// The engine's value of a number token, or why the body is refused.
pub fn engine_number(text: &str) -> Result<Value, BodyError> {
    if let Some(v) = small_integer(text) {
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
