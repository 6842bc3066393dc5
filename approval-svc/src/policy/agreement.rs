//! The `__airlock_agree` extension: does the filter's engine decide what the test saw?
//!
//! Called from tests rewritten by `instrument.rs` with the statement's `with` modifiers
//! and the rules the statement reads. It applies the modifiers to the policy's input and
//! data, evaluates each rule in the filter's engine (RVM, built by
//! `airlock_filter::policy::vm`) and in the interpreter the test itself runs on, and
//! fails with both answers when they differ. Otherwise it returns its first argument,
//! so the test goes on exactly as written.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use anyhow::{anyhow, bail};
use regorus::rvm::RegoVM;
use regorus::{Engine, Value};

/// The policy as loaded (interpreter), its data, and the filter's engine per rule set.
pub struct Checker {
    interpreter: Engine,
    data: Value,
    max_instructions: usize,
    vms: HashMap<Vec<String>, Result<RegoVM, String>>,
}

impl Checker {
    pub fn new(interpreter: Engine, data: Value, max_instructions: usize) -> Checker {
        Checker { interpreter, data, max_instructions, vms: HashMap::new() }
    }

    /// Register the extension on the engine that runs the rewritten tests.
    pub fn register(self, tests: &mut Engine) -> anyhow::Result<()> {
        let checker = Arc::new(Mutex::new(self));
        tests.add_extension(
            super::instrument::AGREE.to_string(),
            3,
            Box::new(move |args: Vec<Value>| -> anyhow::Result<Value> {
                let mut c = checker.lock().map_err(|_| anyhow!("agreement checker poisoned"))?;
                c.agree(args)
            }),
        )
    }

    fn agree(&mut self, mut args: Vec<Value>) -> anyhow::Result<Value> {
        if args.len() != 3 {
            bail!("{} takes 3 arguments", super::instrument::AGREE);
        }
        let rules = args.pop().unwrap_or(Value::Undefined);
        let modifiers = args.pop().unwrap_or(Value::Undefined);
        let value = args.pop().unwrap_or(Value::Undefined);
        let (input, data) = self.apply(&modifiers)?;
        let rules: Vec<String> = rules
            .as_array()
            .map_err(|e| anyhow!("{e}"))?
            .iter()
            .filter_map(|r| r.as_string().ok().map(|s| s.to_string()))
            .collect();
        if rules.is_empty() {
            return Ok(value);
        }
        let max = self.max_instructions;
        let mut interpreter = self.interpreter.clone();
        if data != self.data {
            interpreter.clear_data();
            interpreter.add_data(data.clone()).map_err(|e| anyhow!("test data rejected: {e}"))?;
        }
        interpreter.set_input(input.clone());
        let vm = match self.vms.entry(rules.clone()) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => {
                let names: Vec<&str> = rules.iter().map(String::as_str).collect();
                let mut engine = self.interpreter.clone();
                let built =
                    airlock_filter::policy::vm::build(&mut engine, &names, self.data.clone(), max).map(|(vm, _)| vm);
                e.insert(built)
            }
        };
        let vm = match vm {
            Ok(vm) => vm,
            Err(e) => bail!("the filter's engine cannot run {}: {e}", rules.join(", ")),
        };
        vm.set_data(data).map_err(|e| anyhow!("test data rejected by the filter's engine: {e}"))?;
        for rule in &rules {
            vm.set_input(input.clone());
            let filter = vm.execute_entry_point_by_name(rule).map_err(|e| e.to_string());
            let interpreted = interpreter.eval_rule(rule.clone()).map_err(|e| e.to_string());
            let same = match (&filter, &interpreted) {
                (Ok(a), Ok(b)) => a == b,
                (Err(_), Err(_)) => true,
                _ => false,
            };
            if !same {
                bail!(
                    "the filter's engine decides differently from the interpreter for {rule} with this input: \
                     filter {}, interpreter {} (the gateway runs the filter's engine; see docs/opa-differences.md)",
                    shown(&filter),
                    shown(&interpreted)
                );
            }
        }
        Ok(value)
    }

    /// The input and data after the statement's `with` modifiers (`[[target, value], …]`).
    fn apply(&self, modifiers: &Value) -> anyhow::Result<(Value, Value)> {
        let mut input = serde_json::Value::Null;
        let mut has_input = false;
        let mut data = serde_json::to_value(&self.data)?;
        for m in modifiers.as_array().map_err(|e| anyhow!("{e}"))? {
            let pair = m.as_array().map_err(|e| anyhow!("{e}"))?;
            let (Some(target), Some(value)) = (pair.first(), pair.get(1)) else { bail!("malformed modifier") };
            let target = target.as_string().map_err(|e| anyhow!("{e}"))?.to_string();
            let value = serde_json::to_value(value)?;
            if target == "input" {
                input = value;
                has_input = true;
            } else if let Some(path) = target.strip_prefix("input.") {
                if !has_input {
                    input = serde_json::json!({});
                    has_input = true;
                }
                set_path(&mut input, path, value)?;
            } else if let Some(path) = target.strip_prefix("data.") {
                set_path(&mut data, path, value)?;
            } else {
                bail!("`with {target}` cannot be checked against the filter's engine");
            }
        }
        let input = if has_input { Value::from(input) } else { Value::Undefined };
        Ok((input, Value::from(data)))
    }
}

fn set_path(doc: &mut serde_json::Value, path: &str, value: serde_json::Value) -> anyhow::Result<()> {
    let mut slot = doc;
    let parts: Vec<&str> = path.split('.').collect();
    for (i, part) in parts.iter().enumerate() {
        if !slot.is_object() {
            *slot = serde_json::json!({});
        }
        let map = slot.as_object_mut().ok_or_else(|| anyhow!("not an object at {part}"))?;
        if i + 1 == parts.len() {
            map.insert(part.to_string(), value);
            return Ok(());
        }
        slot = map.entry(part.to_string()).or_insert_with(|| serde_json::json!({}));
    }
    Ok(())
}

fn shown(r: &Result<Value, String>) -> String {
    match r {
        Ok(Value::Undefined) => "undefined".into(),
        Ok(v) => serde_json::to_string(v).unwrap_or_else(|_| format!("{v:?}")),
        Err(e) => format!("error ({})", e.lines().last().unwrap_or(e).trim()),
    }
}
