//! The rule index: evaluate only the rules that can apply to a request.
//!
//! A library composes modules (`candidates contains d if d := data.airlock.rules.x.decision`)
//! and, without an index, every module is evaluated for every request, so the cost grows
//! with the bundle, not with what the request touches (issue 12). OPA answers this with
//! rule indexing; here, at policy load, `analysis` derives for each rule that is referred
//! to by its full `data.` path a condition on request fields that must hold for the rule
//! to be defined (from the leading guards of its bodies and of the helper rules they start
//! with). Per request, the fields are read once from the input, the conditions checked,
//! and the rules whose condition fails are declared undefined to the VM (regorus patch
//! 0010), which then never runs them.
//!
//! Soundness rests on one property, argued in `analysis`: a failed condition means full
//! evaluation would find the rule undefined without raising an error. Tests compare index
//! on and off on the library's examples and generated requests (`tests.rs`), and
//! `scripts/opa-diff.sh` compares the indexed engine with OPA.

mod analysis;
mod ast;
mod clauses;
#[cfg(test)]
mod tests;

use analysis::Test;
use clauses::Check;
use regorus::rvm::program::Program;
use regorus::rvm::RegoVM;
use regorus::Value;
use std::collections::HashMap;

/// The composed rules of a policy (those named by their full `data.` path and compiled
/// into the program), by whether the index can skip them.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Summary {
    /// Skipped for a request when their guards fail.
    pub indexed: Vec<String>,
    /// Evaluated for every request: a body starts with something the index cannot read
    /// (a negation, a call, a loop over the input), or the rule has a default.
    pub always: Vec<String>,
}

/// One request field the index reads, with what its tests need.
#[derive(Debug)]
struct Field {
    /// The path under `input`, as regorus keys (built once).
    path: Vec<Value>,
    /// `OneOf` atoms: string value → the atoms it satisfies.
    one_of: HashMap<Box<str>, Vec<u32>>,
    /// Every `OneOf` atom of this field (false unless the value is listed).
    one_of_atoms: Vec<u32>,
    /// The other atoms of this field.
    tests: Vec<(u32, Test)>,
}

/// The index of one compiled policy. Not shared across threads (scratch space inside).
#[derive(Debug, Default)]
pub struct RuleIndex {
    fields: Vec<Field>,
    /// (rule index in the program, its condition)
    rules: Vec<(u16, Check)>,
    /// By atom: the rules (positions in `rules`) anchored on it (`clauses`).
    anchored: Vec<Vec<u32>>,
    /// Rules with no anchor, checked for every request.
    unanchored: Vec<u32>,
    /// What a policy author is told (`airlock policy check`).
    summary: Summary,
    atoms: Vec<bool>,
    /// `OneOf` atoms true for the current request.
    true_one_of: Vec<u32>,
    /// Per rule, the request (`request`) for which it was found to possibly apply.
    applies: Vec<u32>,
    request: u32,
    undefined: Vec<u16>,
}

impl RuleIndex {
    /// An index that skips nothing (`policy.rule_index: false`).
    pub fn off() -> RuleIndex {
        RuleIndex::default()
    }

    /// Build the index of the modules loaded in `engine`, compiled into `program`.
    pub fn build(engine: &mut regorus::Engine, program: &Program, data: &serde_json::Value) -> RuleIndex {
        let analysis = analysis::analyse(engine.get_modules(), data);
        let mut fields: Vec<Field> = analysis
            .fields
            .iter()
            .map(|p| Field {
                path: p.iter().map(|s| Value::from(s.as_str())).collect(),
                one_of: HashMap::new(),
                one_of_atoms: Vec::new(),
                tests: Vec::new(),
            })
            .collect();
        for (id, (field, test)) in analysis.atoms.iter().enumerate() {
            // Beyond u32::MAX atoms (never in practice) the rest stay false: holds() of a
            // missing atom is true, so nothing more is skipped.
            let Ok(id) = u32::try_from(id) else { break };
            let Some(f) = fields.get_mut(*field) else { continue };
            match test {
                Test::OneOf(values) => {
                    f.one_of_atoms.push(id);
                    for v in values {
                        f.one_of.entry(v.as_str().into()).or_default().push(id);
                    }
                }
                other => f.tests.push((id, other.clone())),
            }
        }
        let position = |path: &str| program.rule_infos.iter().position(|r| r.name == path && r.function_info.is_none());
        let is_one_of = |a: u32| matches!(analysis.atoms.get(a as usize), Some((_, Test::OneOf(_))));
        let mut rules = Vec::new();
        let mut anchored = vec![Vec::new(); analysis.atoms.len()];
        let mut unanchored = Vec::new();
        let mut summary = Summary::default();
        for (path, cond) in analysis.rules {
            // Only rules the program runs as rules; an index the VM does not know is skipped.
            let Some(i) = position(&path).and_then(|i| u16::try_from(i).ok()) else { continue };
            let Ok(slot) = u32::try_from(rules.len()) else { break };
            let check = Check::new(cond);
            match check.anchors(is_one_of) {
                Some(atoms) => {
                    for a in atoms {
                        if let Some(rules) = anchored.get_mut(a as usize) {
                            rules.push(slot);
                        }
                    }
                }
                None => unanchored.push(slot),
            }
            rules.push((i, check));
            summary.indexed.push(path);
        }
        // The entrypoint is evaluated by definition; it is not a composed rule.
        let entry = |p: &String| program.entry_points.contains_key(p.as_str());
        summary.always = analysis.always.into_iter().filter(|p| position(p).is_some() && !entry(p)).collect();
        RuleIndex {
            fields,
            applies: vec![0; rules.len()],
            rules,
            anchored,
            unanchored,
            summary,
            atoms: vec![false; analysis.atoms.len()],
            true_one_of: Vec::new(),
            request: 0,
            undefined: Vec::new(),
        }
    }

    /// Which composed rules the index can skip and which it always evaluates.
    pub fn summary(&self) -> &Summary {
        &self.summary
    }

    /// How many rules the index can skip (for logs and tests).
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The program's rules that cannot apply to `input`, in the index's order.
    pub fn undefined_for(&mut self, input: &Value) -> &[u16] {
        self.undefined.clear();
        if self.rules.is_empty() {
            return &self.undefined;
        }
        self.true_one_of.clear();
        for f in &self.fields {
            let mut v = input;
            for key in &f.path {
                v = match v {
                    Value::Object(o) => o.get(key).unwrap_or(&Value::Undefined),
                    _ => &Value::Undefined,
                };
            }
            for &id in &f.one_of_atoms {
                set(&mut self.atoms, id, false);
            }
            if let Value::String(s) = v {
                for &id in f.one_of.get(s.as_ref()).into_iter().flatten() {
                    set(&mut self.atoms, id, true);
                    self.true_one_of.push(id);
                }
            }
            for (id, test) in &f.tests {
                set(&mut self.atoms, *id, holds(test, v));
            }
        }
        // A new mark per request; on wrap-around, every old mark is cleared first.
        self.request = self.request.wrapping_add(1);
        if self.request == 0 {
            self.applies.fill(0);
            self.request = 1;
        }
        // Only the rules anchored on a true atom, and those without an anchor, can apply.
        let anchored = self.true_one_of.iter().filter_map(|&a| self.anchored.get(a as usize)).flatten();
        for &slot in self.unanchored.iter().chain(anchored) {
            let s = slot as usize;
            let Some(mark) = self.applies.get_mut(s) else { continue };
            if *mark != self.request && self.rules.get(s).is_some_and(|(_, check)| check.holds(&self.atoms)) {
                *mark = self.request;
            }
        }
        for ((rule, _), mark) in self.rules.iter().zip(&self.applies) {
            if *mark != self.request {
                self.undefined.push(*rule);
            }
        }
        &self.undefined
    }

    /// Tell `vm` which rules cannot apply to `input` (call right before executing).
    pub fn prepare(&mut self, vm: &mut RegoVM, input: &Value) {
        let undefined = self.undefined_for(input);
        vm.set_known_undefined_rules(undefined);
    }
}

fn set(atoms: &mut [bool], id: u32, value: bool) {
    if let Some(a) = atoms.get_mut(id as usize) {
        *a = value;
    }
}

/// Whether a non-`OneOf` test holds for a field's value. `Prefix`/`Suffix` hold for a
/// present non-string value: `startswith` would raise there, so the rule must be run.
fn holds(test: &Test, v: &Value) -> bool {
    match (test, v) {
        (_, Value::Undefined) => false,
        (Test::Defined, _) => true,
        (Test::Truthy, v) => *v != Value::Bool(false),
        (Test::Prefix(p), Value::String(s)) => s.starts_with(p.as_str()),
        (Test::Suffix(p), Value::String(s)) => s.ends_with(p.as_str()),
        (Test::Prefix(_) | Test::Suffix(_), _) => true,
        (Test::OneOf(values), Value::String(s)) => values.contains(s.as_ref()),
        (Test::OneOf(_), _) => false,
    }
}
