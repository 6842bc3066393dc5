//! Reading regorus's module AST, as `Engine::get_ast_as_json` serialises it: every node is
//! a one-key object naming its variant (`{"RefDot": {...}}`). Only what the index needs.

use serde_json::Value as Json;

/// The variant name and fields of an AST node.
pub fn node(v: &Json) -> Option<(&str, &Json)> {
    let obj = v.as_object()?;
    if obj.len() != 1 {
        return None;
    }
    obj.iter().next().map(|(k, v)| (k.as_str(), v))
}

/// The name of a `Var` node.
pub fn var(e: &Json) -> Option<&str> {
    match node(e)? {
        ("Var", f) => f["value"].as_str(),
        _ => None,
    }
}

/// The value of a `String` or `RawString` literal.
pub fn string(e: &Json) -> Option<&str> {
    match node(e)? {
        ("String" | "RawString", f) => f["value"].as_str(),
        _ => None,
    }
}

/// One step of a reference after its base variable.
#[derive(Debug, Clone, Copy)]
pub enum Step<'a> {
    /// `.name` or `["name"]`.
    Field(&'a str),
    /// `[expr]` with anything but a string literal inside.
    Index(&'a Json),
}

/// `a.b["c"][x]` as (`a`, [Field b, Field c, Index x]); `None` when the expression is not a
/// reference rooted at a variable (a call's result, a literal, a comprehension).
pub fn reference(e: &Json) -> Option<(&str, Vec<Step<'_>>)> {
    let mut steps = Vec::new();
    let mut cur = e;
    loop {
        match node(cur)? {
            ("Var", f) => {
                steps.reverse();
                return Some((f["value"].as_str()?, steps));
            }
            ("RefDot", f) => {
                steps.push(Step::Field(f["field"].get(1)?.as_str()?));
                cur = &f["refr"];
            }
            ("RefBrack", f) => {
                let index = &f["index"];
                steps.push(match string(index) {
                    Some(s) => Step::Field(s),
                    None => Step::Index(index),
                });
                cur = &f["refr"];
            }
            _ => return None,
        }
    }
}

/// A reference made only of fields (`data.airlock.rules`, a package or rule head) as its
/// dotted segments, base included.
pub fn dotted(e: &Json) -> Option<Vec<String>> {
    let (base, steps) = reference(e)?;
    let mut out = vec![base.to_string()];
    for s in steps {
        match s {
            Step::Field(f) => out.push(f.to_string()),
            Step::Index(_) => return None,
        }
    }
    Some(out)
}
