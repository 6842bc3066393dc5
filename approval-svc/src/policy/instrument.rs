//! Make every `with` in a test checkable against the filter's engine.
//!
//! The RVM the filter runs has no `with`, and OPA-style tests are written with it
//! (`d := decision with input as {...}`). The test runner keeps the tests as written,
//! run by regorus's interpreter, and rewrites each statement that carries `with` so that
//! the first modifier's value goes through `__airlock_agree(value, modifiers, rules)`.
//! That extension (`agreement.rs`) evaluates the rules the statement reads, with the same
//! input and data, in both the RVM and the interpreter, and fails the test on any
//! difference; then it hands the value back unchanged. A test therefore passes only when
//! the filter's engine would have decided what the test expects.
//!
//! Only statements directly in a test's body are rewritten. A `with` elsewhere (inside a
//! comprehension, `every`, or a helper rule) or one that replaces a function or a rule
//! cannot be checked this way; such a test is reported as an error that says so, never
//! passed on the interpreter's word.

use regorus::unstable::{LiteralStmt, Module, Rule, RuleHead, Span, WithModifier};

/// The extension's name as the rewritten tests call it.
pub const AGREE: &str = "__airlock_agree";

/// One source edit: replace `start..end` with `text`.
struct Edit {
    start: usize,
    end: usize,
    text: String,
}

/// What instrumenting one module found.
#[derive(Debug, Default)]
pub struct Instrumented {
    /// The module's text with every checkable `with` statement rewritten.
    pub source: String,
    /// Tests (rule names) whose `with` statements cannot all be checked, and why.
    pub unverifiable: Vec<(String, String)>,
    /// Tests (rule names) that use `with` (and so cannot run in the RVM directly).
    pub with_tests: Vec<String>,
}

/// Everything the rewrite needs to know about the policy: the path of every rule
/// (`data.pkg.name`, tests and functions excluded) and the entrypoint always compared.
pub struct Rules<'a> {
    pub paths: &'a [String],
    pub entrypoint: Option<&'a str>,
}

pub fn instrument(module: &Module, package: &str, source: &str, rules: &Rules) -> Instrumented {
    let mut out = Instrumented::default();
    let mut edits = Vec::new();
    for rule in &module.policy {
        let Rule::Spec { head, bodies, span } = rule.as_ref() else { continue };
        let Some(name) = head_name(head) else { continue };
        if !name.starts_with("test_") {
            continue;
        }
        let written = count_with_keywords(span.text());
        if written == 0 {
            continue;
        }
        if !out.with_tests.contains(&name) {
            out.with_tests.push(name.clone());
        }
        let mut seen = 0;
        for body in bodies {
            for stmt in &body.query.stmts {
                if stmt.with_mods.is_empty() {
                    continue;
                }
                seen += stmt.with_mods.len();
                match rewrite(stmt, package, rules) {
                    Ok(edit) => edits.push(edit),
                    Err(why) => out.unverifiable.push((name.clone(), why)),
                }
            }
        }
        // A `with` the walk above did not reach (nested in a comprehension or `every`).
        if seen < written && !out.unverifiable.iter().any(|(n, _)| n == &name) {
            out.unverifiable.push((
                name.clone(),
                "a `with` inside a comprehension or `every` cannot be checked against the filter's engine; \
                 move it to a statement of the test's body"
                    .into(),
            ));
        }
    }
    edits.sort_by_key(|e| std::cmp::Reverse(e.start));
    let mut text = source.to_string();
    for e in edits {
        if e.end <= text.len() && e.start <= e.end && text.is_char_boundary(e.start) && text.is_char_boundary(e.end) {
            text.replace_range(e.start..e.end, &e.text);
        }
    }
    out.source = text;
    out
}

/// The rule name of a head (first path component), for rules that are not functions.
fn head_name(head: &RuleHead) -> Option<String> {
    let refr = match head {
        RuleHead::Compr { refr, .. } | RuleHead::Set { refr, .. } => refr,
        RuleHead::Func { .. } => return None,
    };
    let components = regorus::unstable::Parser::get_path_ref_components(refr).ok()?;
    components.first().map(|c| c.text().to_string())
}

/// Occurrences of the keyword `with` followed by a target, outside string literals.
fn count_with_keywords(text: &str) -> usize {
    let mut n = 0;
    for line in text.lines() {
        let code = strip_strings_and_comment(line);
        let mut iter = code.split_whitespace().peekable();
        while let Some(w) = iter.next() {
            if w == "with" && iter.peek().is_some() {
                n += 1;
            }
        }
    }
    n
}

fn strip_strings_and_comment(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut in_str = false;
    let mut escaped = false;
    let mut in_raw = false;
    for c in line.chars() {
        if in_str {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_str = false;
            }
            out.push(' ');
            continue;
        }
        if in_raw {
            if c == '`' {
                in_raw = false;
            }
            out.push(' ');
            continue;
        }
        match c {
            '"' => {
                in_str = true;
                out.push(' ');
            }
            '`' => {
                in_raw = true;
                out.push(' ');
            }
            '#' => break,
            _ => out.push(c),
        }
    }
    out
}

fn text(span: &Span) -> &str {
    span.text()
}

/// Rewrite one statement's first `with` value into a call of the agreement extension.
fn rewrite(stmt: &LiteralStmt, package: &str, rules: &Rules) -> Result<Edit, String> {
    let mut modifiers = Vec::new();
    for m in &stmt.with_mods {
        let target = text(m.refr.span()).trim().to_string();
        let is_input = target == "input" || target.starts_with("input.") || target.starts_with("input[");
        let is_data = target.starts_with("data.");
        let local_rule = format!("{package}.{target}");
        if !is_input && !is_data && rules.paths.iter().any(|r| covers(r, &local_rule) || covers(&local_rule, r)) {
            return Err(format!(
                "`with {target} as …` replaces the rule `{local_rule}`; the filter's engine cannot, so this test \
                 cannot show what the filter decides: mock the data the rule reads instead"
            ));
        }
        if !is_input && !is_data {
            return Err(format!(
                "`with {target} as …` replaces a function; the filter's engine has no `with`, so this test \
                 cannot show what the filter decides"
            ));
        }
        if is_data {
            let path = target.trim_start_matches("data.");
            if let Some(rule) = rules
                .paths
                .iter()
                .find(|r| covers(r.trim_start_matches("data."), path) || covers(path, r.trim_start_matches("data.")))
            {
                return Err(format!(
                    "`with {target} as …` replaces the rule `{rule}`; the filter's engine cannot, so this test \
                     cannot show what the filter decides: mock the data the rule reads instead"
                ));
            }
        }
        if target.contains('[') {
            return Err(format!("`with {target} as …`: only dotted paths can be checked against the filter's engine"));
        }
        let (start, end) = value_range(m).ok_or_else(|| format!("`with {target}`: value not found"))?;
        let source = m.span.source.get_contents();
        modifiers.push((target, source.get(start..end).unwrap_or_default().to_string()));
    }
    let Some(first) = stmt.with_mods.first() else {
        return Err("no `with` modifier".into());
    };
    let literal_end = first.span.start as usize;
    let literal_start = stmt.span.start as usize;
    let source = stmt.span.source.get_contents();
    let literal = source.get(literal_start..literal_end).unwrap_or_default();
    let read = referenced_rules(literal, package, rules);
    let mods: Vec<String> = modifiers
        .iter()
        .map(|(target, value)| format!("[{}, {value}]", serde_json::Value::from(target.as_str())))
        .collect();
    let rule_list: Vec<String> = read.iter().map(|r| serde_json::Value::from(r.as_str()).to_string()).collect();
    let (start, end) = value_range(first).ok_or("`with`: value not found")?;
    let value = source.get(start..end).unwrap_or_default();
    Ok(Edit { start, end, text: format!("{AGREE}({value}, [{}], [{}])", mods.join(", "), rule_list.join(", ")) })
}

/// The byte range of a modifier's value: after `as`, to the modifier's end. (The value
/// expression's own span is not always the whole expression in regorus 0.14.1.)
fn value_range(m: &WithModifier) -> Option<(usize, usize)> {
    let source = m.span.source.get_contents();
    let after_target = m.refr.span().end as usize;
    let end = m.span.end as usize;
    let rest = source.get(after_target..end)?;
    let trimmed = rest.trim_start();
    let after_as = trimmed.strip_prefix("as")?;
    let start = end - after_as.trim_start().len();
    let value = source.get(start..end)?;
    Some((start, start + value.trim_end().len()))
}

/// `a` is `b` or a prefix of it by whole components.
fn covers(a: &str, b: &str) -> bool {
    b == a || b.starts_with(&format!("{a}."))
}

/// The rules a statement reads: identifiers naming a rule of its own package, and
/// `data.…` references by their longest prefix that is a rule; plus the entrypoint.
fn referenced_rules(literal: &str, package: &str, rules: &Rules) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let code = strip_strings_and_comment(&literal.replace('\n', " "));
    for chain in code.split(|c: char| !(c.is_alphanumeric() || c == '_' || c == '.')) {
        if chain.is_empty() || chain.starts_with(|c: char| c.is_ascii_digit()) {
            continue;
        }
        let full = if chain.starts_with("data.") { chain.to_string() } else { format!("{package}.{chain}") };
        let mut best: Option<&String> = None;
        for rule in rules.paths {
            if covers(rule, &full) && best.is_none_or(|b| rule.len() > b.len()) {
                best = Some(rule);
            }
        }
        if let Some(rule) = best {
            if !out.contains(rule) {
                out.push(rule.clone());
            }
        }
    }
    if let Some(entry) = rules.entrypoint {
        if rules.paths.iter().any(|p| p == entry) && !out.iter().any(|r| r == entry) {
            out.push(entry.to_string());
        }
    }
    out
}
