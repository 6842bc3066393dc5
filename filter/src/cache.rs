//! The decision cache: a repeated request skips policy evaluation.
//!
//! Most agent traffic repeats (the same agent, method, host, path, headers), and
//! evaluating the policy is the largest single cost of an allowed request in Envoy's V8
//! (`docs/benchmarks.md`). A decision is a pure function of the policy, its data and
//! `input`, so a decision remembered for an identical input is the decision evaluation
//! would produce again — as long as three things hold, and this module is where each
//! is enforced:
//!
//! - **The key determines the input.** It is [`crate::input::cache_key`]: every value
//!   `input::build` turns into `input`, byte for byte, plus the identity of the compiled
//!   policy ([`Plan::On`]'s generation, unique per compilation, so a bundle swap can
//!   never meet an older entry even if the cache were not cleared). Keys are compared
//!   in full on every hit; the 64-bit hash only finds the slot, so a hash collision is
//!   a miss, never someone else's decision.
//! - **The policy is deterministic.** A policy that calls a builtin whose result
//!   depends on the clock, randomness or the network (`time.*`, `rand.*`, `uuid.*`,
//!   `http.send`, `opa.runtime`, …) is never cached: see [`plan`].
//! - **Denies are never cached.** Allows and approvals are, so even a mistake in the
//!   key could only repeat an allow or an approval for a request that looks identical
//!   to the policy; it could never turn a deny into anything else, and a repeated
//!   approval still goes to reviewers. Approvals are cached because an agent waiting
//!   for one repeats the same request until reviewers decide (SPEC's retry), and each
//!   retry would evaluate the policy only to reach the same approval again.
//!
//! Left out of the key are only the parts of `input` that differ on (almost) every
//! request *and* that the policy provably cannot read: `input.request.id` (Envoy's
//! `x-request-id`) and the headers it never names (`x-request-id`, `traceparent`, …).
//! With them in the key nothing would ever hit. What a policy can read is decided from
//! the modules' tokens ([`plan`], [`InputView`]), conservatively.
//!
//! Everything else a request does still happens on a hit: the decision record, the
//! counters, shadow handling, header removal — only evaluation is skipped, and the
//! action digest is taken from the entry ([`CachedDecision`]): it is a function of fields
//! the key holds (method, scheme, host, port, path, query, significant headers, body
//! hash), so an identical key has the identical digest.

use regorus::unstable::{Lexer, Source, TokenKind};
use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};

/// Entries per worker when the configuration does not say.
pub const DEFAULT_MAX_ENTRIES: usize = 1024;
/// Keys longer than this are not cached (very long paths or many headers): they are
/// unlikely to repeat and would make the cache's memory unbounded in practice.
pub const MAX_KEY_BYTES: usize = 2048;

/// Builtins whose result can change between two evaluations of the same input. A
/// prefix ends with `.`; matched against the compiled program's builtin table and the
/// modules' tokens. Conservative on purpose: `time.parse_ns` is deterministic but
/// shares the family, and a false positive only costs speed.
const NON_DETERMINISTIC: [&str; 8] = [
    "time.",
    "rand.",
    "uuid.",
    "http.",
    "opa.",
    "net.lookup_ip_addr",
    "io.jwt.",
    "crypto.x509.parse_and_verify_certificates",
];

/// Whether decisions of a compiled policy may be cached, decided once at compile time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// Never cache; the reason is logged once when the policy loads.
    Off(String),
    /// Cache allow decisions under keys carrying `generation`.
    On {
        /// Unique per compiled policy (per worker process).
        generation: u64,
        /// What of the per-request-unique parts of `input` the policy can read.
        view: InputView,
    },
}

/// The parts of `input` that differ on (almost) every request and that the policy may
/// or may not read: Envoy's request id (`input.request.id`) and headers such as
/// `x-request-id` or `traceparent` in `input.request.headers`. What the policy cannot
/// read is left out of the key; everything else of `input` is always keyed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputView {
    pub request_id: bool,
    pub headers: HeaderView,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderView {
    /// The policy can reach the headers object as a whole (iteration, a variable key,
    /// `input.request` passed around …).
    All,
    /// Only these header names, each written out in a reference.
    Named(Vec<String>),
}

impl InputView {
    /// Everything visible: what a key must cover when nothing is known.
    pub const ALL: InputView = InputView { request_id: true, headers: HeaderView::All };

    pub fn header(&self, name: &str) -> bool {
        match &self.headers {
            HeaderView::All => true,
            HeaderView::Named(names) => names.iter().any(|n| n == name),
        }
    }

    /// From the static paths of every `input` reference in the policy.
    fn from_paths(paths: &[Vec<String>]) -> InputView {
        let covers =
            |p: &[String], target: &[&str]| p.len() <= target.len() && p.iter().zip(target).all(|(a, b)| a == b);
        let request_id = paths.iter().any(|p| covers(p, &["request", "id"]));
        let headers = if paths.iter().any(|p| covers(p, &["request", "headers"])) {
            HeaderView::All
        } else {
            let mut names: Vec<String> = paths
                .iter()
                .filter(|p| p.len() >= 3 && p[0] == "request" && p[1] == "headers")
                .map(|p| p[2].clone())
                .collect();
            names.sort();
            names.dedup();
            HeaderView::Named(names)
        };
        InputView { request_id, headers }
    }
}

/// What of a JSON body the policy can read (`crate::body::read_json`): the whole of it,
/// or only these members of the top-level object, each written out in a reference
/// (`input.request.body.destination.uri` reads `destination`). Decided from the same
/// scan as [`InputView`], so it sees every `input` reference the way the parser does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyView {
    All,
    Members(Vec<String>),
}

impl BodyView {
    /// The members the filter itself reads from a body, whatever the policy reads: the
    /// JSON-RPC call (`input.request.jsonrpc` is built from them).
    const FILTER_READS: [&'static str; 3] = ["jsonrpc", "method", "params"];

    /// Whether top-level member `key` must be built for the policy.
    pub fn member(&self, key: &str) -> bool {
        match self {
            BodyView::All => true,
            BodyView::Members(names) => BodyView::FILTER_READS.contains(&key) || names.iter().any(|n| n == key),
        }
    }

    fn from_paths(paths: &[Vec<String>]) -> BodyView {
        let covers =
            |p: &[String], target: &[&str]| p.len() <= target.len() && p.iter().zip(target).all(|(a, b)| a == b);
        if paths.iter().any(|p| covers(p, &["request", "body"])) {
            return BodyView::All;
        }
        let mut names: Vec<String> = paths
            .iter()
            .filter(|p| p.len() >= 3 && p[0] == "request" && p[1] == "body")
            .map(|p| p[2].clone())
            .collect();
        names.sort();
        names.dedup();
        BodyView::Members(names)
    }
}

/// What of a JSON body the policy in `sources` can read; all of it when a module
/// cannot be scanned.
pub fn body_view(sources: &[(&str, &str)]) -> BodyView {
    let mut paths = Vec::new();
    for (name, source) in sources {
        match scan(name, source) {
            Ok(s) => paths.extend(s.input_paths),
            Err(_) => return BodyView::All,
        }
    }
    BodyView::from_paths(&paths)
}

static GENERATION: AtomicU64 = AtomicU64::new(1);

/// Decide whether a policy's decisions can be cached: `sources` are its Rego modules,
/// `builtins` the builtin functions its compiled program calls, `host_await` whether
/// the program can suspend for the host (its result then depends on the host).
pub fn plan<'a>(sources: &[(&str, &str)], builtins: impl Iterator<Item = &'a str>, host_await: bool) -> Plan {
    if host_await {
        return Plan::Off("the policy awaits the host".into());
    }
    for name in builtins {
        if is_non_deterministic(name) {
            return Plan::Off(format!("the policy calls `{name}`, whose result can change between calls"));
        }
    }
    let mut paths = Vec::new();
    for (name, source) in sources {
        match scan(name, source) {
            Ok(s) => {
                if let Some(b) = s.non_deterministic {
                    return Plan::Off(format!("module `{name}` names `{b}`, whose result can change between calls"));
                }
                paths.extend(s.input_paths);
            }
            Err(e) => return Plan::Off(format!("module `{name}` could not be scanned: {e}")),
        }
    }
    Plan::On { generation: GENERATION.fetch_add(1, Ordering::Relaxed), view: InputView::from_paths(&paths) }
}

fn is_non_deterministic(name: &str) -> bool {
    NON_DETERMINISTIC.iter().any(|p| if p.ends_with('.') { name.starts_with(p) } else { name == *p })
}

#[derive(Debug, Default)]
struct Scan {
    /// The static part of every `input` reference.
    input_paths: Vec<Vec<String>>,
    non_deterministic: Option<String>,
}

/// What one module can see of `input`, from the same lexer the parser uses (so a
/// comment or a string can never hide a reference, and no reference is invented).
///
/// Every `input` token starts a reference; its static part — `.name` and `["name"]`
/// steps — is followed as far as it goes. The policy can see everything under where
/// the static part stops: `input.request[k]`, `r := input.request`,
/// `some k, v in input.request`, `import input.request`, `json.marshal(input)` all
/// stop at `input.request` or above, and so count as reading `input.request.id` and
/// every header. Only a reference whose static part leaves a branch (such as
/// `input.request.method` for `input.request.id`) does not see it. The target of
/// `with input… as v` is not a read (see below).
fn scan(name: &str, source: &str) -> Result<Scan, String> {
    let src = Source::from_contents(name.to_string(), source.to_string()).map_err(|e| e.to_string())?;
    let mut lexer = Lexer::new(&src);
    let mut tokens: Vec<(TokenKind, String)> = Vec::new();
    loop {
        let t = lexer.next_token().map_err(|e| e.to_string())?;
        if t.0 == TokenKind::Eof {
            break;
        }
        tokens.push((t.0, t.1.text().to_string()));
    }
    let sym = |i: usize, s: &str| tokens.get(i).is_some_and(|(k, t)| *k == TokenKind::Symbol && t == s);
    let mut out = Scan::default();
    for (i, (kind, text)) in tokens.iter().enumerate() {
        if *kind != TokenKind::Ident || (i > 0 && sym(i - 1, ".")) {
            continue;
        }
        if text == "input" {
            // `with input as v` / `with input.x as v` replaces (part of) the input for
            // one expression: it reads nothing of the real one. (`v` is scanned on its
            // own.) Tests in a bundle use it everywhere.
            let replaced = i > 0 && tokens.get(i - 1).is_some_and(|(k, t)| *k == TokenKind::Ident && t == "with");
            if !replaced {
                out.input_paths.push(static_path(&tokens, i + 1));
            }
            continue;
        }
        // A builtin call as written: `time.now_ns(…)`; names as a dotted identifier run.
        let mut dotted = text.clone();
        let mut j = i + 1;
        while sym(j, ".") {
            match tokens.get(j + 1) {
                Some((TokenKind::Ident, t)) => {
                    dotted.push('.');
                    dotted.push_str(t);
                    j += 2;
                }
                _ => break,
            }
        }
        // A package or rule named like a builtin family (`package http`) also matches:
        // a false positive only turns caching off.
        if is_non_deterministic(&dotted) {
            out.non_deterministic = Some(dotted);
        }
    }
    Ok(out)
}

/// The static field names after an `input` token at `tokens[start..]`.
fn static_path(tokens: &[(TokenKind, String)], start: usize) -> Vec<String> {
    let sym = |i: usize, s: &str| tokens.get(i).is_some_and(|(k, t)| *k == TokenKind::Symbol && t == s);
    let mut path = Vec::new();
    let mut i = start;
    loop {
        if sym(i, ".") {
            if let Some((TokenKind::Ident, t)) = tokens.get(i + 1) {
                path.push(t.clone());
                i += 2;
                continue;
            }
        } else if sym(i, "[") && sym(i + 2, "]") {
            match tokens.get(i + 1) {
                // A string with an escape is not decoded here: stop, which counts as
                // seeing everything below.
                Some((TokenKind::String, t)) if !t.contains('\\') => {
                    path.push(t.clone());
                    i += 3;
                    continue;
                }
                Some((TokenKind::RawString, t)) => {
                    path.push(t.clone());
                    i += 3;
                    continue;
                }
                _ => {}
            }
        }
        return path;
    }
}

/// What a cache hit gives back: the allow or approval, and the action digest that went
/// with it.
#[derive(Debug, Clone, PartialEq)]
pub struct CachedDecision {
    pub decision: crate::decision::Decision,
    pub digest: Option<String>,
    /// The JSON-RPC call the body held (how the agent is answered), so that a hit need
    /// not parse the body again.
    pub rpc: Option<crate::body::RpcCall>,
}

struct Slot<D> {
    key: Vec<u8>,
    hash: u64,
    value: D,
    /// Set on every hit, cleared as the clock hand passes: recently used entries
    /// survive one more sweep (CLOCK, an LRU approximation without a linked list).
    referenced: bool,
}

/// A bounded map from keys to decisions, per worker (one thread, no locks).
pub struct DecisionCache<D> {
    slots: Vec<Slot<D>>,
    /// Hash of a key → its slot. A second key with the same hash replaces the first
    /// here; the first becomes unreachable until the clock evicts it.
    index: HashMap<u64, usize>,
    max_entries: usize,
    hand: usize,
    /// Keyed per cache from WASI `random_get`, so keys that collide cannot be chosen.
    hasher: RandomState,
    /// Scratch buffer the key is encoded into, reused across requests.
    pub scratch: Vec<u8>,
}

impl<D: Clone> DecisionCache<D> {
    pub fn new(max_entries: usize) -> DecisionCache<D> {
        DecisionCache {
            slots: Vec::new(),
            index: HashMap::new(),
            max_entries,
            hand: 0,
            hasher: RandomState::new(),
            scratch: Vec::new(),
        }
    }

    pub fn enabled(&self) -> bool {
        self.max_entries > 0
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Forget everything (a new policy serves; its keys could never match anyway).
    pub fn clear(&mut self) {
        self.slots.clear();
        self.index.clear();
        self.hand = 0;
    }

    /// The value stored under exactly `key`.
    pub fn get(&mut self, key: &[u8]) -> Option<D> {
        let hash = self.hasher.hash_one(key);
        let i = *self.index.get(&hash)?;
        let slot = self.slots.get_mut(i)?;
        if slot.hash != hash || slot.key != key {
            return None;
        }
        slot.referenced = true;
        Some(slot.value.clone())
    }

    /// [`Self::get`] with the key in `scratch`.
    pub fn get_scratch(&mut self) -> Option<D> {
        let key = std::mem::take(&mut self.scratch);
        let hit = self.get(&key);
        self.scratch = key;
        hit
    }

    /// [`Self::insert`] with the key in `scratch`.
    pub fn insert_scratch(&mut self, value: D) {
        let key = std::mem::take(&mut self.scratch);
        self.insert(&key, value);
        self.scratch = key;
    }

    /// Remember `value` under `key`, evicting the first entry the clock finds unused.
    pub fn insert(&mut self, key: &[u8], value: D) {
        if self.max_entries == 0 || key.len() > MAX_KEY_BYTES {
            return;
        }
        let hash = self.hasher.hash_one(key);
        let slot = Slot { key: key.to_vec(), hash, value, referenced: false };
        if self.slots.len() < self.max_entries {
            self.index.insert(hash, self.slots.len());
            self.slots.push(slot);
            return;
        }
        // Every slot is passed at most twice: the first pass clears the marks.
        let n = self.slots.len();
        let mut victim = self.hand % n;
        for _ in 0..2 * n {
            let i = self.hand % n;
            self.hand = (i + 1) % n;
            match self.slots.get_mut(i) {
                Some(s) if s.referenced => s.referenced = false,
                _ => {
                    victim = i;
                    break;
                }
            }
        }
        if let Some(old) = self.slots.get_mut(victim) {
            if self.index.get(&old.hash) == Some(&victim) {
                self.index.remove(&old.hash);
            }
            *old = slot;
            self.index.insert(hash, victim);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    fn plan_of(rego: &str) -> Plan {
        plan(&[("p.rego", rego)], std::iter::empty(), false)
    }

    fn body(rego: &str) -> BodyView {
        body_view(&[("p.rego", rego)])
    }

    #[test]
    fn the_body_view_names_the_members_read_and_is_all_when_the_body_can_be_reached() {
        let members = |names: &[&str]| BodyView::Members(names.iter().map(|n| n.to_string()).collect());
        let pkg = "package p\nimport rego.v1\n";
        assert_eq!(
            body(&format!("{pkg}a if input.request.body.destination.uri == \"x\"\nb if input.request[\"body\"][\"Action\"]\nc if input.request.method")),
            members(&["Action", "destination"])
        );
        assert_eq!(body(&format!("{pkg}a if input.request.method == \"GET\"")), members(&[]));
        for whole in [
            "a if input.request.body",
            "a if some k, v in input.request.body",
            "a if input.request.body[k] == 1",
            "a if input.request.body[data.x.field]",
            "a if r := input.request\nb if r.body.x",
            "a if walk(input, [p, v])",
            "a if json.marshal(input) != \"\"",
            "a if object.get(input.request.body, \"x\", 1)",
            "a if input.request[k]",
            "a if input[\"request\"].body",
        ] {
            assert_eq!(body(&format!("{pkg}{whole}")), BodyView::All, "{whole}");
        }
        assert_eq!(body("package p\nimport input.request.body\na if body.x"), BodyView::All);
        // Replacing the input in a test reads nothing of the real one.
        assert_eq!(body(&format!("{pkg}test_a if data.p.a with input.request.body as {{}}")), members(&[]));
        // What the filter itself reads is always built.
        assert!(members(&[]).member("params") && members(&[]).member("jsonrpc") && !members(&[]).member("rows"));
    }

    fn view(rego: &str) -> InputView {
        match plan_of(rego) {
            Plan::On { view, .. } => view,
            Plan::Off(why) => panic!("not cacheable: {why}"),
        }
    }

    fn sees_id(rego: &str) -> bool {
        view(rego).request_id
    }

    #[test]
    fn request_id_visibility_is_conservative() {
        let invisible = [
            "package a\nallow if input.request.method == \"GET\"",
            "package a\nallow if input.request[\"method\"] == \"GET\"",
            "package a\nallow if input.agent.id == \"bot\"",
            "package a\n# input.request.id in a comment\nallow if input.request.host == \"h\"",
            "package a\nallow if { x := \"input.request\"; input.request.path == x }",
            "package a\nallow if input.request.identity == 1",
            "package a\nallow if input.request.method == \"GET\"\ntest_x if allow with input as {\"request\": {}}",
            "package a\nx if input.request.path == \"/\"\ntest_y if x with input.request.id as \"1\"",
        ];
        for rego in invisible {
            assert!(!sees_id(rego), "{rego}");
        }
        let visible = [
            "package a\nallow if input.request.id == \"x\"",
            "package a\nallow if input.request[\"id\"] == \"x\"",
            "package a\nallow if input.request[`id`] == \"x\"",
            "package a\nallow if { r := input.request; r.id == \"x\" }",
            "package a\nallow if { some k, v in input.request; k == \"id\" }",
            "package a\nallow if { k := concat(\"\", [\"i\", \"d\"]); input.request[k] == \"x\" }",
            "package a\nallow if { x := input; x.request.id == \"x\" }",
            "package a\nallow if input[\"request\"].id == \"x\"",
            "package a\nallow if input[\"req\\u0075est\"].id == \"x\"",
            "package a\nimport input.request as r\nallow if r.id == \"x\"",
            "package a\nallow if count(json.marshal(input)) > 0",
            "package a\nallow if input . request . id == \"x\"",
            // The value given to `with` is the policy's own reading of the real input.
            "package a\nallow if x with input.request.method as input.request.id",
        ];
        for rego in visible {
            assert!(sees_id(rego), "{rego}");
        }
    }

    #[test]
    fn only_headers_named_in_the_policy_are_visible() {
        let v =
            view("package a\nallow if input.request.headers[\"x-tenant\"] == \"b\"\nx if input.request.headers.accept");
        assert_eq!(v.headers, HeaderView::Named(vec!["accept".into(), "x-tenant".into()]));
        assert!(v.header("x-tenant") && !v.header("x-request-id") && !v.request_id);
        assert_eq!(view("package a\nallow if input.request.method == \"GET\"").headers, HeaderView::Named(vec![]));
        for all in [
            "package a\nallow if count(input.request.headers) > 1",
            "package a\nallow if { some k, _ in input.request.headers; k == \"x\" }",
            "package a\nallow if input.request.headers[lower(\"X\")] == 1",
            "package a\nallow if { r := input.request; r.headers.x == 1 }",
            "package a\nallow if input == {}",
        ] {
            assert_eq!(view(all).headers, HeaderView::All, "{all}");
        }
    }

    #[test]
    fn non_deterministic_builtins_turn_caching_off() {
        for rego in [
            "package a\nallow if time.now_ns() > 0",
            "package a\nallow if rand.intn(\"x\", 10) == 1",
            "package a\nallow if uuid.rfc4122(\"x\") != \"\"",
            "package a\nallow if http.send({\"url\": \"http://x\"}).status_code == 200",
            "package a\nallow if opa.runtime().env",
            "package a\nallow if time . now_ns() > 0",
        ] {
            assert!(matches!(plan_of(rego), Plan::Off(_)), "{rego}");
        }
        // From the compiled program's builtin table, whatever the source looks like.
        let p = plan(&[("p.rego", "package a")], ["time.now_ns"].into_iter(), false);
        assert!(matches!(p, Plan::Off(_)));
        assert!(matches!(plan(&[], std::iter::empty(), true), Plan::Off(_)));
        // A field or rule that merely shares a name is not a call.
        assert!(matches!(plan_of("package a\nallow if input.request.time == 1"), Plan::On { .. }));
    }

    /// Every `.rego` file under `dir`, recursively.
    fn rego_files(dir: &std::path::Path, out: &mut Vec<(String, String)>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                rego_files(&path, out);
            } else if path.extension().is_some_and(|e| e == "rego") {
                out.push((path.display().to_string(), std::fs::read_to_string(&path).unwrap()));
            }
        }
    }

    #[test]
    fn the_shipped_policies_are_cacheable_without_the_request_id() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies");
        for set in ["demo", "library"] {
            let mut files = Vec::new();
            rego_files(&root.join(set), &mut files);
            assert!(!files.is_empty());
            let sources: Vec<(&str, &str)> = files.iter().map(|(n, s)| (n.as_str(), s.as_str())).collect();
            match plan(&sources, std::iter::empty(), false) {
                Plan::On { view, .. } => {
                    assert!(!view.request_id, "{set}");
                    assert!(!view.header("x-request-id") && !view.header("traceparent"), "{set}: {view:?}");
                }
                Plan::Off(why) => panic!("{set}: {why}"),
            }
        }
    }

    #[test]
    fn generations_are_unique() {
        let g = |p: Plan| match p {
            Plan::On { generation, .. } => generation,
            Plan::Off(_) => panic!(),
        };
        assert_ne!(g(plan_of("package a")), g(plan_of("package a")));
    }

    #[test]
    fn keys_compare_in_full_and_the_clock_evicts_unused_entries() {
        let mut c: DecisionCache<u32> = DecisionCache::new(2);
        c.insert(b"a", 1);
        c.insert(b"b", 2);
        assert_eq!(c.get(b"a"), Some(1));
        assert_eq!(c.get(b"ab"), None);
        c.insert(b"c", 3); // `a` was used, `b` was not: `b` goes
        assert_eq!((c.get(b"a"), c.get(b"b"), c.get(b"c")), (Some(1), None, Some(3)));
        assert_eq!(c.len(), 2);
        c.clear();
        assert_eq!(c.get(b"a"), None);
    }

    #[test]
    fn disabled_and_oversized_keys_are_not_stored() {
        let mut off: DecisionCache<u32> = DecisionCache::new(0);
        off.insert(b"a", 1);
        assert_eq!(off.get(b"a"), None);
        let mut c: DecisionCache<u32> = DecisionCache::new(4);
        let big = vec![7u8; MAX_KEY_BYTES + 1];
        c.insert(&big, 1);
        assert_eq!(c.get(&big), None);
    }

    #[test]
    fn a_full_cache_always_finds_room() {
        let mut c: DecisionCache<usize> = DecisionCache::new(3);
        for i in 0..50usize {
            let k = i.to_be_bytes();
            c.insert(&k, i);
            assert_eq!(c.get(&k), Some(i), "just inserted");
        }
        assert_eq!(c.len(), 3);
    }
}
