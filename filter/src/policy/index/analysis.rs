//! From a policy's modules and data to, for each rule another package refers to by its
//! full `data.` path, a condition on the request that must hold for that rule to be
//! defined. Derived only from the *leading* literals of each rule body, in order:
//!
//! - a literal that can never raise an error (lookups in `input`, `data` and constant
//!   rules, `==` with a string, `in` a set of strings) contributes what it implies
//!   (`data.hosts[input.request.host]` → the host is a key of `data.hosts` whose value is
//!   not `false`) and the scan goes on;
//! - a literal that may raise an error contributes only a condition whose failure makes it
//!   undefined *without* evaluating anything that could raise (a helper rule whose own
//!   condition fails; `startswith` of a field that is absent or a string without the
//!   prefix), and the scan stops there;
//! - anything else (`not`, loops, calls, local variables) stops the scan.
//!
//! So when a rule's condition fails for an input, every body of it fails at one of those
//! literals before anything could raise an error: the rule is undefined, exactly as full
//! evaluation would find. Rules with a `default`, functions, rules that `data` or other rule
//! heads overlap, and anything not understood get the condition `Always` (never skipped).
//! The RVM compiler refuses `with`, so no rule is ever evaluated against another input.

use super::ast::{self, Step};
use regorus::unstable::{
    AssignOp, BoolOp, Expr, Literal, LiteralStmt, Module as Ast, Query, Ref, Rule, RuleBody, RuleHead,
};
use serde_json::Value as Json;
use std::collections::{BTreeSet, HashMap, HashSet};

/// What must hold of one request field (a static path under `input`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Test {
    /// The field is a string in this set.
    OneOf(BTreeSet<String>),
    /// The field is absent-or-not: it is present (any value, `false` included).
    Defined,
    /// The field is present and not `false`.
    Truthy,
    /// The field is not a string without this prefix, and is present.
    Prefix(String),
    /// The field is not a string without this suffix, and is present.
    Suffix(String),
}

/// A condition over the atoms (field tests) of one policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cond {
    Always,
    Atom(usize),
    All(Vec<Cond>),
    Any(Vec<Cond>),
}

impl Cond {
    fn all(parts: Vec<Cond>) -> Cond {
        let mut out: Vec<Cond> = parts.into_iter().filter(|c| *c != Cond::Always).collect();
        match out.len() {
            0 => Cond::Always,
            1 => out.remove(0),
            _ => Cond::All(out),
        }
    }

    fn any(parts: Vec<Cond>) -> Cond {
        if parts.contains(&Cond::Always) {
            return Cond::Always;
        }
        let mut parts = parts;
        if parts.len() == 1 {
            return parts.remove(0);
        }
        Cond::Any(parts)
    }

    /// Whether the condition holds, given each atom's truth.
    pub fn holds(&self, atoms: &[bool]) -> bool {
        match self {
            Cond::Always => true,
            Cond::Atom(i) => atoms.get(*i).copied().unwrap_or(true),
            Cond::All(parts) => parts.iter().all(|c| c.holds(atoms)),
            Cond::Any(parts) => parts.iter().any(|c| c.holds(atoms)),
        }
    }
}

/// The analysis of one policy: request fields, atoms over them, and a condition per
/// referenced rule (full path, e.g. `data.airlock.rules.exports.decision`); rules whose
/// condition is `Always` are left out.
#[derive(Debug, Default)]
pub struct Analysis {
    pub fields: Vec<Vec<String>>,
    pub atoms: Vec<(usize, Test)>,
    pub rules: Vec<(String, Cond)>,
    /// Referenced rules that are evaluated for every request (condition `Always`).
    pub always: Vec<String>,
}

/// What one literal contributes (see the module comment).
enum Lit {
    Safe(Cond),
    Last(Cond),
    Stop,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Complete,
    PartialSet,
    Other,
}

struct RuleDefs<'a> {
    kind: Kind,
    /// (module index, head, bodies)
    specs: Vec<(usize, &'a RuleHead, &'a [RuleBody])>,
    has_default: bool,
}

struct Module {
    package: Vec<String>,
    aliases: HashSet<String>,
}

struct Analyser<'a> {
    modules: Vec<Module>,
    rules: HashMap<String, RuleDefs<'a>>,
    opaque: HashSet<String>,
    data: &'a Json,
    fields: Vec<Vec<String>>,
    atoms: Vec<(usize, Test)>,
    atom_ids: HashMap<(usize, Test), usize>,
    memo: HashMap<String, Cond>,
    in_progress: HashSet<String>,
}

/// Analyse the parsed `modules` against the policy's `data`.
pub fn analyse(modules: &[Ref<Ast>], data: &Json) -> Analysis {
    let mut a = Analyser {
        modules: Vec::new(),
        rules: HashMap::new(),
        opaque: HashSet::new(),
        data,
        fields: Vec::new(),
        atoms: Vec::new(),
        atom_ids: HashMap::new(),
        memo: HashMap::new(),
        in_progress: HashSet::new(),
    };
    for m in modules {
        a.add_module(m);
    }
    a.mark_opaque();
    // The rules referred to by full path: the points where a library composes its
    // modules.
    let mut referenced = BTreeSet::new();
    for m in modules {
        for rule in &m.policy {
            visit_rule(rule, &mut |e| {
                if let Some((base @ "data", steps)) = ast::reference(e) {
                    referenced.insert(ast::static_prefix(base, &steps));
                }
            });
        }
    }
    let (mut rules, mut always) = (Vec::new(), Vec::new());
    for path in referenced {
        if !a.rules.contains_key(&path) {
            continue;
        }
        match a.rule_cond(&path) {
            Cond::Always => always.push(path),
            cond => rules.push((path, cond)),
        }
    }
    Analysis { fields: a.fields, atoms: a.atoms, rules, always }
}

/// Call `f` on every expression of a rule, nested ones included.
fn visit_rule(rule: &Rule, f: &mut dyn FnMut(&Expr)) {
    match rule {
        Rule::Spec { head, bodies, .. } => {
            match head {
                RuleHead::Compr { refr, assign, .. } => {
                    visit(refr, f);
                    if let Some(a) = assign {
                        visit(&a.value, f);
                    }
                }
                RuleHead::Set { refr, key, .. } => {
                    visit(refr, f);
                    if let Some(k) = key {
                        visit(k, f);
                    }
                }
                RuleHead::Func { refr, args, assign, .. } => {
                    visit(refr, f);
                    args.iter().for_each(|a| visit(a, f));
                    if let Some(a) = assign {
                        visit(&a.value, f);
                    }
                }
            }
            for b in bodies {
                if let Some(a) = &b.assign {
                    visit(&a.value, f);
                }
                visit_query(&b.query, f);
            }
        }
        Rule::Default { refr, args, value, .. } => {
            visit(refr, f);
            args.iter().for_each(|a| visit(a, f));
            visit(value, f);
        }
    }
}

fn visit_query(q: &Query, f: &mut dyn FnMut(&Expr)) {
    for stmt in &q.stmts {
        for w in &stmt.with_mods {
            visit(&w.refr, f);
            visit(&w.r#as, f);
        }
        match &stmt.literal {
            Literal::SomeVars { .. } => {}
            Literal::SomeIn { key, value, collection, .. } => {
                if let Some(k) = key {
                    visit(k, f);
                }
                visit(value, f);
                visit(collection, f);
            }
            Literal::Expr { expr, .. } | Literal::NotExpr { expr, .. } => visit(expr, f),
            Literal::Every { domain, query, .. } => {
                visit(domain, f);
                visit_query(query, f);
            }
        }
    }
}

fn visit(e: &Expr, f: &mut dyn FnMut(&Expr)) {
    f(e);
    match e {
        Expr::Array { items, .. } | Expr::Set { items, .. } => items.iter().for_each(|i| visit(i, f)),
        Expr::Object { fields, .. } => fields.iter().for_each(|(_, k, v)| {
            visit(k, f);
            visit(v, f);
        }),
        Expr::ArrayCompr { term, query, .. } | Expr::SetCompr { term, query, .. } => {
            visit(term, f);
            visit_query(query, f);
        }
        Expr::ObjectCompr { key, value, query, .. } => {
            visit(key, f);
            visit(value, f);
            visit_query(query, f);
        }
        Expr::Call { fcn, params, .. } => {
            visit(fcn, f);
            params.iter().for_each(|p| visit(p, f));
        }
        Expr::UnaryExpr { expr, .. } => visit(expr, f),
        // A reference is reported whole (above); its base needs no second visit, but its
        // indexes are expressions of their own.
        Expr::RefDot { refr, .. } => visit_ref_indexes(refr, f),
        Expr::RefBrack { refr, index, .. } => {
            visit_ref_indexes(refr, f);
            visit(index, f);
        }
        Expr::BinExpr { lhs, rhs, .. }
        | Expr::BoolExpr { lhs, rhs, .. }
        | Expr::ArithExpr { lhs, rhs, .. }
        | Expr::AssignExpr { lhs, rhs, .. } => {
            visit(lhs, f);
            visit(rhs, f);
        }
        Expr::Membership { key, value, collection, .. } => {
            if let Some(k) = key {
                visit(k, f);
            }
            visit(value, f);
            visit(collection, f);
        }
        _ => {}
    }
}

fn visit_ref_indexes(e: &Expr, f: &mut dyn FnMut(&Expr)) {
    match e {
        Expr::RefDot { refr, .. } => visit_ref_indexes(refr, f),
        Expr::RefBrack { refr, index, .. } => {
            visit_ref_indexes(refr, f);
            visit(index, f);
        }
        Expr::Var { .. } => {}
        other => visit(other, f),
    }
}

impl<'a> Analyser<'a> {
    fn add_module(&mut self, m: &'a Ast) {
        let package: Vec<String> = ast::dotted(&m.package.refr).unwrap_or_default();
        let mut aliases = HashSet::new();
        for imp in &m.imports {
            let path = ast::dotted(&imp.refr).unwrap_or_default();
            if path.first().is_some_and(|p| p == "rego" || p == "future") {
                continue;
            }
            // An import binds a name (its last segment, or its `as`) that may shadow a rule
            // name: such names are never resolved.
            match &imp.r#as {
                Some(alias) => aliases.insert(alias.text().to_string()),
                None => path.last().is_some_and(|last| aliases.insert(last.clone())),
            };
        }
        let idx = self.modules.len();
        self.modules.push(Module { package: package.clone(), aliases });
        for rule in &m.policy {
            let (refr, kind, head, bodies): (&Expr, Kind, Option<&'a RuleHead>, &'a [RuleBody]) = match rule.as_ref() {
                Rule::Default { refr, .. } => (refr, Kind::Complete, None, &[]),
                Rule::Spec { head, bodies, .. } => match head {
                    RuleHead::Compr { refr, .. } => (refr, Kind::Complete, Some(head), bodies),
                    RuleHead::Set { refr, .. } => (refr, Kind::PartialSet, Some(head), bodies),
                    RuleHead::Func { refr, .. } => (refr, Kind::Other, Some(head), bodies),
                },
            };
            let Some((base, steps)) = ast::reference(refr) else { continue };
            let mut path = String::from("data");
            for p in &package {
                path.push('.');
                path.push_str(p);
            }
            path.push('.');
            path.push_str(&ast::static_prefix(base, &steps));
            // `p[x] := ...`: a partial object, known by its all-field prefix.
            let kind = if steps.iter().any(|s| matches!(s, Step::Index(_))) { Kind::Other } else { kind };
            let entry = self.rules.entry(path).or_insert(RuleDefs { kind, specs: Vec::new(), has_default: false });
            if entry.kind != kind {
                entry.kind = Kind::Other;
            }
            match head {
                None => entry.has_default = true,
                Some(h) => entry.specs.push((idx, h, bodies)),
            }
        }
    }

    /// Rules whose path another rule's path extends (or is extended by), or under which
    /// `data` has a value, are not indexed: their value is not the one body's alone.
    fn mark_opaque(&mut self) {
        let paths: Vec<String> = self.rules.keys().cloned().collect();
        for p in &paths {
            let prefix = format!("{p}.");
            let overlaps = paths.iter().any(|q| q != p && (q.starts_with(&prefix) || p.starts_with(&format!("{q}."))));
            let in_data = data_at(self.data, p).is_some();
            if overlaps || in_data {
                self.opaque.insert(p.clone());
            }
        }
    }

    fn field(&mut self, path: Vec<String>) -> usize {
        if let Some(i) = self.fields.iter().position(|f| *f == path) {
            return i;
        }
        self.fields.push(path);
        self.fields.len() - 1
    }

    fn atom(&mut self, field: Vec<String>, test: Test) -> Cond {
        let f = self.field(field);
        let key = (f, test);
        if let Some(&i) = self.atom_ids.get(&key) {
            return Cond::Atom(i);
        }
        let i = self.atoms.len();
        self.atoms.push(key.clone());
        self.atom_ids.insert(key, i);
        Cond::Atom(i)
    }

    /// The condition for rule `path` to be defined (memoised; a cycle is `Always`).
    fn rule_cond(&mut self, path: &str) -> Cond {
        if let Some(c) = self.memo.get(path) {
            return c.clone();
        }
        if !self.in_progress.insert(path.to_string()) {
            return Cond::Always;
        }
        let cond = self.compute_rule_cond(path);
        self.in_progress.remove(path);
        self.memo.insert(path.to_string(), cond.clone());
        cond
    }

    fn compute_rule_cond(&mut self, path: &str) -> Cond {
        if self.opaque.contains(path) {
            return Cond::Always;
        }
        let Some(defs) = self.rules.get(path) else { return Cond::Always };
        if defs.has_default || defs.kind == Kind::Other {
            return Cond::Always;
        }
        let specs = defs.specs.clone();
        let mut alternatives = Vec::new();
        for (module, head, bodies) in specs {
            if bodies.is_empty() {
                // `p := data.x[input.f]`: defined when its value is.
                let value = match head {
                    RuleHead::Compr { assign: Some(a), .. } => Some(&a.value),
                    _ => None,
                };
                let cond = match value {
                    Some(v) if ast::is_reference(v) => match self.ref_literal(module, v, &Scope::default(), false) {
                        Lit::Safe(c) | Lit::Last(c) => c,
                        Lit::Stop => Cond::Always,
                    },
                    _ => Cond::Always,
                };
                if cond == Cond::Always {
                    return Cond::Always;
                }
                alternatives.push(cond);
                continue;
            }
            for body in bodies {
                alternatives.push(self.body_cond(module, body));
                if alternatives.last() == Some(&Cond::Always) {
                    return Cond::Always;
                }
            }
        }
        Cond::any(alternatives)
    }

    fn body_cond(&mut self, module: usize, body: &RuleBody) -> Cond {
        let mut locals = Scope::default();
        let mut parts = Vec::new();
        for stmt in &body.query.stmts {
            match self.literal(module, stmt, &mut locals) {
                Lit::Safe(c) => parts.push(c),
                Lit::Last(c) => {
                    parts.push(c);
                    break;
                }
                Lit::Stop => break,
            }
        }
        Cond::all(parts)
    }

    fn literal(&mut self, module: usize, stmt: &LiteralStmt, locals: &mut Scope<'a>) -> Lit {
        if !stmt.with_mods.is_empty() {
            return Lit::Stop;
        }
        match &stmt.literal {
            Literal::Expr { expr, .. } => self.expr_literal(module, expr, locals),
            Literal::SomeIn { key, value, collection, .. } => {
                self.some_in(module, key.as_deref(), value, collection, locals)
            }
            // `some x, y`: declares locals, evaluates nothing.
            Literal::SomeVars { vars, .. } => {
                for v in vars {
                    locals.insert(v.text().to_string());
                }
                Lit::Safe(Cond::Always)
            }
            Literal::NotExpr { .. } | Literal::Every { .. } => Lit::Stop,
        }
    }

    /// `some x in data.c` (or `some k, x in data.c`): iterating a data document never
    /// raises; `x` is remembered with the elements it ranges over, for `input.f == x.g`.
    fn some_in(
        &mut self,
        module: usize,
        key: Option<&Expr>,
        value: &Expr,
        collection: &Expr,
        locals: &mut Scope<'a>,
    ) -> Lit {
        let Some(value) = ast::var(value) else { return Lit::Stop };
        let key = match key {
            None => None,
            Some(k) => match ast::var(k) {
                Some(k) => Some(k),
                None => return Lit::Stop,
            },
        };
        let Some(doc) = self.pure_data_doc(module, collection, locals) else { return Lit::Stop };
        let elements: Vec<&'a Json> = match doc {
            Some(Json::Object(o)) => o.values().collect(),
            Some(Json::Array(a)) => a.iter().collect(),
            _ => Vec::new(),
        };
        if let Some(k) = key {
            locals.insert(k.to_string());
        }
        locals.insert(value.to_string());
        locals.iterated.insert(value.to_string(), elements);
        Lit::Safe(Cond::Always)
    }

    /// The document a static `data.a.b` reference names (`Some(None)`: nothing there), if it
    /// is plain data: no rule at, under or above it.
    fn pure_data_doc(&self, module: usize, e: &Expr, locals: &Scope<'a>) -> Option<Option<&'a Json>> {
        let (base, steps) = ast::reference(e)?;
        if !matches!(self.resolve(module, base, locals), Base::Data) {
            return None;
        }
        if steps.iter().any(|s| matches!(s, Step::Index(_))) {
            return None;
        }
        let path = ast::static_prefix("data", &steps);
        if self.names_rule(&path) {
            return None;
        }
        Some(data_at(self.data, &path))
    }

    /// Whether a rule lives at `path`, above it or under it (so `data.<path>` is not plain
    /// data).
    fn names_rule(&self, path: &str) -> bool {
        self.rules.contains_key(path) || self.under_some_rule_prefix(path)
    }

    /// `x.g.h` where `x` ranges over a data collection: the string values `g.h` takes.
    fn iterated_values(&self, e: &Expr, locals: &Scope<'a>) -> Option<BTreeSet<String>> {
        let (base, steps) = ast::reference(e)?;
        let elements = locals.iterated.get(base)?;
        let mut out = BTreeSet::new();
        for el in elements {
            let mut cur = Some(*el);
            for s in &steps {
                let Step::Field(f) = s else { return None };
                cur = cur.and_then(|c| c.as_object()).and_then(|o| o.get(*f));
            }
            match cur {
                Some(Json::String(v)) => {
                    out.insert(v.clone());
                }
                // Undefined never equals anything; any other value could equal a field
                // that is not a string, which the atom's string set cannot express.
                None => {}
                Some(_) => return None,
            }
        }
        Some(out)
    }

    fn expr_literal(&mut self, module: usize, e: &Expr, locals: &mut Scope<'a>) -> Lit {
        match e {
            Expr::Bool { value, .. } if *value == regorus::Value::Bool(true) => Lit::Safe(Cond::Always),
            Expr::Var { .. } | Expr::RefDot { .. } | Expr::RefBrack { .. } => self.ref_literal(module, e, locals, true),
            Expr::BoolExpr { op, lhs, rhs, .. } => {
                if *op == BoolOp::Eq {
                    for (a, b) in [(lhs, rhs), (rhs, lhs)] {
                        let Some(field) = self.input_field(module, a, locals) else { continue };
                        if let Some(s) = ast::string(b) {
                            return Lit::Safe(self.atom(field, Test::OneOf(BTreeSet::from([s.to_string()]))));
                        }
                        if let Some(set) = self.iterated_values(b, locals) {
                            return Lit::Safe(self.atom(field, Test::OneOf(set)));
                        }
                    }
                }
                if *op == BoolOp::Gt && number_is_zero(rhs) {
                    // `count(s) > 0` of a partial set: some body of `s` holds.
                    if let Expr::Call { fcn, params, .. } = lhs.as_ref() {
                        if let (Some("count"), [arg]) = (ast::var(fcn), params.as_slice()) {
                            if let Some(path) = self.rule_path(module, arg, locals) {
                                if self.rules.get(&path).is_some_and(|d| d.kind == Kind::PartialSet) {
                                    return Lit::Last(self.rule_cond(&path));
                                }
                            }
                        }
                    }
                }
                if self.pure(module, lhs, locals) && self.pure(module, rhs, locals) {
                    // Comparisons of anything never raise.
                    return Lit::Safe(Cond::Always);
                }
                Lit::Stop
            }
            Expr::Membership { key: None, value, collection, .. } => {
                let Some(field) = self.input_field(module, value, locals) else { return Lit::Stop };
                match string_items(collection) {
                    Some(set) => Lit::Safe(self.atom(field, Test::OneOf(set))),
                    None => Lit::Stop,
                }
            }
            Expr::Call { fcn, params, .. } => {
                let [arg, lit] = params.as_slice() else { return Lit::Stop };
                let (Some(field), Some(s)) = (self.input_field(module, arg, locals), ast::string(lit)) else {
                    return Lit::Stop;
                };
                match ast::var(fcn) {
                    Some("startswith") => Lit::Last(self.atom(field, Test::Prefix(s.to_string()))),
                    Some("endswith") => Lit::Last(self.atom(field, Test::Suffix(s.to_string()))),
                    _ => Lit::Stop,
                }
            }
            Expr::AssignExpr { op: AssignOp::ColEq, lhs, rhs, .. } => {
                let Some(name) = ast::var(lhs) else { return Lit::Stop };
                let lit = if ast::scalar(rhs) {
                    Lit::Safe(Cond::Always)
                } else if ast::is_reference(rhs) {
                    self.ref_literal(module, rhs, locals, false)
                } else {
                    Lit::Stop
                };
                locals.insert(name.to_string());
                lit
            }
            _ => Lit::Stop,
        }
    }

    /// A reference as a literal (`truthy`: it must not be `false`) or as the right-hand
    /// side of `:=` (only defined).
    fn ref_literal(&mut self, module: usize, e: &Expr, locals: &Scope<'a>, truthy: bool) -> Lit {
        let Some((base, steps)) = ast::reference(e) else { return Lit::Stop };
        match self.resolve(module, base, locals) {
            Base::Input => {
                let mut path = Vec::new();
                for s in &steps {
                    match s {
                        Step::Field(f) => path.push(f.to_string()),
                        Step::Index(_) => {
                            return if steps.iter().all(|s| self.pure_step(module, s, locals)) {
                                Lit::Safe(Cond::Always)
                            } else {
                                Lit::Stop
                            };
                        }
                    }
                }
                if path.is_empty() {
                    return Lit::Safe(Cond::Always);
                }
                Lit::Safe(self.atom(path, if truthy { Test::Truthy } else { Test::Defined }))
            }
            Base::Data => {
                // `data.a.b`: a rule, a path into a rule, or a plain data document.
                let mut path = String::from("data");
                for (i, s) in steps.iter().enumerate() {
                    let Step::Field(f) = s else { break };
                    path.push('.');
                    path.push_str(f);
                    if self.rules.contains_key(&path) {
                        return self.rule_literal(module, &path, &steps[i + 1..], locals, truthy);
                    }
                }
                if self.under_some_rule_prefix(&path) {
                    return Lit::Stop;
                }
                let static_len = steps.iter().take_while(|s| matches!(s, Step::Field(_))).count();
                let doc = data_at(self.data, &path);
                self.document_lookup(module, doc, &steps[static_len..], locals, truthy)
            }
            Base::Rule(path) => self.rule_literal(module, &path, &steps, locals, truthy),
            Base::Unknown => Lit::Stop,
        }
    }

    /// `rule[...]` as a literal: a constant rule looked up by a request field is an atom; any
    /// other rule contributes its own condition, last.
    fn rule_literal(&mut self, module: usize, path: &str, steps: &[Step], locals: &Scope<'a>, truthy: bool) -> Lit {
        if !steps.iter().all(|s| self.pure_step(module, s, locals)) {
            return Lit::Stop;
        }
        if let Some(value) = self.constant(path) {
            return self.document_lookup(module, Some(&value), steps, locals, truthy);
        }
        let kind = self.rules.get(path).map(|d| d.kind);
        match kind {
            Some(Kind::Complete) => Lit::Last(self.rule_cond(path)),
            // A partial set is always defined (empty); a member of it needs a body.
            Some(Kind::PartialSet) if !steps.is_empty() => Lit::Last(self.rule_cond(path)),
            _ => Lit::Stop,
        }
    }

    /// A lookup into a known document (data, or a constant rule's value) by `steps`. The
    /// first request-field index gives the atom.
    fn document_lookup(
        &mut self,
        module: usize,
        doc: Option<&Json>,
        steps: &[Step],
        locals: &Scope<'a>,
        truthy: bool,
    ) -> Lit {
        if !steps.iter().all(|s| self.pure_step(module, s, locals)) {
            // `data.c[rule[1]]`: undefined, without raising, when `rule` is.
            let impure: Vec<&Expr> = steps
                .iter()
                .filter_map(|s| match s {
                    Step::Index(e) if !self.pure(module, e, locals) => Some(*e),
                    _ => None,
                })
                .collect();
            if let [index] = impure.as_slice() {
                if let Some((base, rsteps)) = ast::reference(index) {
                    if let Base::Rule(path) = self.resolve(module, base, locals) {
                        if rsteps.iter().all(|s| self.pure_step(module, s, locals))
                            && self.rules.get(&path).is_some_and(|d| d.kind == Kind::Complete)
                        {
                            return Lit::Last(self.rule_cond(&path));
                        }
                    }
                }
            }
            return Lit::Stop;
        }
        if steps.is_empty() {
            return match doc {
                None => Lit::Safe(Cond::Any(Vec::new())),
                Some(Json::Bool(false)) if truthy => Lit::Safe(Cond::Any(Vec::new())),
                Some(_) => Lit::Safe(Cond::Always),
            };
        }
        // Walk the document level by level. At a request-field index the field must be a
        // key of one of the documents this level can be (`data.grants[input.agent][input.path]`:
        // the agent a key of `grants`, the path a key of some agent's grants), and the
        // next level is every value under those keys. Each such atom is necessary on its
        // own; together they rule out what a one-level atom cannot (an agent with grants,
        // asking for a path no agent is granted).
        let mut docs: Vec<&Json> = doc.into_iter().collect();
        let mut parts = Vec::new();
        for (i, step) in steps.iter().enumerate() {
            let last = i + 1 == steps.len();
            docs = match step {
                // `.name` of an array is undefined: only objects lead on.
                Step::Field(f) => docs.iter().filter_map(|d| d.as_object()?.get(*f)).collect(),
                Step::Index(index) => {
                    let Some(field) = self.input_field(module, index, locals) else {
                        return Lit::Safe(Cond::all(parts));
                    };
                    let (keys, next) = level(&docs, last && truthy);
                    if let Some(keys) = keys {
                        parts.push(self.atom(field, Test::OneOf(keys)));
                    }
                    next
                }
            };
        }
        if truthy {
            docs.retain(|d| **d != Json::Bool(false));
        }
        if docs.is_empty() {
            // Nothing this lookup can reach (and is not `false`): it never holds.
            parts.push(Cond::Any(Vec::new()));
        }
        Lit::Safe(Cond::all(parts))
    }

    /// The value of a rule that is one literal with no body (`writes := {"POST": true}`),
    /// as a data-like document (a set becomes an object of `true`).
    fn constant(&self, path: &str) -> Option<Json> {
        if self.opaque.contains(path) {
            return None;
        }
        let defs = self.rules.get(path)?;
        if defs.has_default || defs.kind != Kind::Complete || defs.specs.len() != 1 {
            return None;
        }
        let (_, head, bodies) = defs.specs[0];
        if !bodies.is_empty() {
            return None;
        }
        match head {
            RuleHead::Compr { assign: Some(a), .. } => literal_json(&a.value),
            _ => None,
        }
    }

    /// A static path under `input` (`input.request.host`), if `e` is one.
    fn input_field(&self, module: usize, e: &Expr, locals: &Scope<'a>) -> Option<Vec<String>> {
        let (base, steps) = ast::reference(e)?;
        if !matches!(self.resolve(module, base, locals), Base::Input) || steps.is_empty() {
            return None;
        }
        steps
            .iter()
            .map(|s| match s {
                Step::Field(f) => Some(f.to_string()),
                Step::Index(_) => None,
            })
            .collect()
    }

    /// An expression whose evaluation can never raise: literals, and references into
    /// `input` or plain `data` whose indexes are pure.
    fn pure(&self, module: usize, e: &Expr, locals: &Scope<'a>) -> bool {
        if ast::scalar(e) {
            return true;
        }
        let Some((base, steps)) = ast::reference(e) else { return false };
        let base_ok = match self.resolve(module, base, locals) {
            Base::Input => true,
            Base::Data => {
                let mut path = String::from("data");
                let mut ok = true;
                for s in &steps {
                    let Step::Field(f) = s else { break };
                    path.push('.');
                    path.push_str(f);
                    if self.rules.contains_key(&path) {
                        ok = false;
                        break;
                    }
                }
                ok && !self.under_some_rule_prefix(&path)
            }
            _ => false,
        };
        base_ok && steps.iter().all(|s| self.pure_step(module, s, locals))
    }

    fn pure_step(&self, module: usize, s: &Step, locals: &Scope<'a>) -> bool {
        match s {
            Step::Field(_) => true,
            Step::Index(e) => self.pure(module, e, locals),
        }
    }

    /// The rule a variable or `data.` path names, if any.
    fn rule_path(&self, module: usize, e: &Expr, locals: &Scope<'a>) -> Option<String> {
        let (base, steps) = ast::reference(e)?;
        match self.resolve(module, base, locals) {
            Base::Rule(p) if steps.is_empty() => Some(p),
            Base::Data if steps.iter().all(|s| matches!(s, Step::Field(_))) => {
                let path = ast::static_prefix("data", &steps);
                self.rules.contains_key(&path).then_some(path)
            }
            _ => None,
        }
    }

    /// Whether some rule lives under `path` (so `data.<path>` is partly virtual).
    fn under_some_rule_prefix(&self, path: &str) -> bool {
        let prefix = format!("{path}.");
        self.rules.keys().any(|r| r.starts_with(&prefix) || prefix.starts_with(&format!("{r}.")))
    }

    fn resolve(&self, module: usize, name: &str, locals: &Scope<'a>) -> Base {
        if locals.contains(name) {
            return Base::Unknown;
        }
        match name {
            "input" => return Base::Input,
            "data" => return Base::Data,
            _ => {}
        }
        let Some(m) = self.modules.get(module) else { return Base::Unknown };
        if m.aliases.contains(name) {
            return Base::Unknown;
        }
        let mut path = String::from("data");
        for p in &m.package {
            path.push('.');
            path.push_str(p);
        }
        path.push('.');
        path.push_str(name);
        if self.rules.contains_key(&path) {
            Base::Rule(path)
        } else {
            Base::Unknown
        }
    }
}

/// The variables a rule body has bound so far. `iterated`: the elements of the `data`
/// collection a `some x in data...` loop binds `x` to.
#[derive(Default)]
struct Scope<'j> {
    names: HashSet<String>,
    iterated: HashMap<String, Vec<&'j Json>>,
}

impl Scope<'_> {
    fn contains(&self, name: &str) -> bool {
        self.names.contains(name)
    }

    fn insert(&mut self, name: String) {
        self.names.insert(name);
    }
}

enum Base {
    Input,
    Data,
    Rule(String),
    Unknown,
}

fn number_is_zero(e: &Expr) -> bool {
    matches!(e, Expr::Number { value, .. } if *value == regorus::Value::from(0_u64))
}

/// `{"a", "b"}` or `["a", "b"]` of string literals only.
fn string_items(e: &Expr) -> Option<BTreeSet<String>> {
    let (Expr::Set { items, .. } | Expr::Array { items, .. }) = e else { return None };
    items.iter().map(|i| ast::string(i).map(str::to_string)).collect()
}

/// An object of string keys to scalar literals, or a set of strings (as an object of
/// `true`): the constant rules the index can look up.
fn literal_json(e: &Expr) -> Option<Json> {
    match e {
        Expr::Object { fields, .. } => {
            let mut out = serde_json::Map::new();
            for (_, k, v) in fields {
                let key = ast::string(k)?;
                let value = match v.as_ref() {
                    Expr::String { value, .. }
                    | Expr::RawString { value, .. }
                    | Expr::Number { value, .. }
                    | Expr::Bool { value, .. }
                    | Expr::Null { value, .. } => serde_json::to_value(value).ok()?,
                    _ => return None,
                };
                out.insert(key.to_string(), value);
            }
            Some(Json::Object(out))
        }
        Expr::Set { .. } => {
            let items = string_items(e)?;
            Some(Json::Object(items.into_iter().map(|k| (k, Json::Bool(true))).collect()))
        }
        _ => None,
    }
}

/// The data document at `data.a.b` (`path` includes the leading `data`).
/// One level of a lookup by a request field into `docs`: the keys the field may take (`None`
/// when an array is among them: arrays are indexed by numbers, which an atom's string set
/// cannot express) and every value it leads to. `drop_false`: the level is the literal's
/// last, whose value must not be `false`.
fn level<'j>(docs: &[&'j Json], drop_false: bool) -> (Option<BTreeSet<String>>, Vec<&'j Json>) {
    let mut keys = BTreeSet::new();
    let mut next = Vec::new();
    for d in docs {
        match d {
            Json::Object(o) => {
                for (k, v) in o.iter().filter(|(_, v)| !(drop_false && **v == Json::Bool(false))) {
                    keys.insert(k.clone());
                    next.push(v);
                }
            }
            Json::Array(a) => next.extend(a.iter()),
            _ => {}
        }
    }
    let arrays = docs.iter().any(|d| d.is_array());
    ((!arrays).then_some(keys), next)
}

fn data_at<'j>(data: &'j Json, path: &str) -> Option<&'j Json> {
    let mut cur = data;
    for seg in path.split('.').skip(1) {
        cur = cur.as_object()?.get(seg)?;
    }
    Some(cur)
}
