//! Reading regorus's module AST (`regorus::unstable`): only what the index needs.

use regorus::unstable::Expr;

fn text(v: &regorus::Value) -> Option<&str> {
    v.as_string().ok().map(|s| &**s)
}

/// The name of a variable.
pub fn var(e: &Expr) -> Option<&str> {
    match e {
        Expr::Var { value, .. } => text(value),
        _ => None,
    }
}

/// The value of a string literal.
pub fn string(e: &Expr) -> Option<&str> {
    match e {
        Expr::String { value, .. } | Expr::RawString { value, .. } => text(value),
        _ => None,
    }
}

/// A literal whose evaluation does nothing: a string, number, boolean or null.
pub fn scalar(e: &Expr) -> bool {
    matches!(
        e,
        Expr::String { .. } | Expr::RawString { .. } | Expr::Number { .. } | Expr::Bool { .. } | Expr::Null { .. }
    )
}

/// A reference: a variable, `.field` or `[index]` of one.
pub fn is_reference(e: &Expr) -> bool {
    matches!(e, Expr::Var { .. } | Expr::RefDot { .. } | Expr::RefBrack { .. })
}

/// One step of a reference after its base variable.
#[derive(Debug, Clone, Copy)]
pub enum Step<'a> {
    /// `.name` or `["name"]`.
    Field(&'a str),
    /// `[expr]` with anything but a string literal inside.
    Index(&'a Expr),
}

/// `a.b["c"][x]` as (`a`, [Field b, Field c, Index x]); `None` when the expression is not a
/// reference rooted at a variable (a call's result, a literal, a comprehension).
pub fn reference(e: &Expr) -> Option<(&str, Vec<Step<'_>>)> {
    let mut steps = Vec::new();
    let mut cur = e;
    loop {
        match cur {
            Expr::Var { value, .. } => {
                steps.reverse();
                return Some((text(value)?, steps));
            }
            Expr::RefDot { refr, field, .. } => {
                steps.push(Step::Field(text(&field.1)?));
                cur = refr;
            }
            Expr::RefBrack { refr, index, .. } => {
                steps.push(match string(index) {
                    Some(s) => Step::Field(s),
                    None => Step::Index(index),
                });
                cur = refr;
            }
            _ => return None,
        }
    }
}

/// A reference made only of fields (a package, a rule head, `data.a.b`) as its dotted
/// segments, base included.
pub fn dotted(e: &Expr) -> Option<Vec<String>> {
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

/// The longest all-field prefix of a reference to `base`, as a dotted path
/// (`data.a.b` of `data.a.b[x].c`).
pub fn static_prefix(base: &str, steps: &[Step]) -> String {
    let mut path = String::from(base);
    for s in steps {
        match s {
            Step::Field(f) => {
                path.push('.');
                path.push_str(f);
            }
            Step::Index(_) => break,
        }
    }
    path
}
