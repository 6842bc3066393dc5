#!/usr/bin/env python3
"""Differential semantics test: small Rego programs evaluated rule by rule by the real
OPA engine and by Airlock's evaluator (regorus RVM, as the filter runs it).

    python3 tests/opa/semantics.py --opa-lib LIB.so --airlock target/debug/airlock \
        [--cases tests/opa/semantics] [--accepted tests/opa/semantics/accepted.json]

Where tests/opa/diff.py compares the library's final decision on generated requests,
this compares every rule of small programs that each pin one corner of the language
(e.g. `not` over an undefined or mistyped operand), so a divergence is seen where it
arises instead of only when some library rule happens to depend on it.

Each directory under --cases is one program, loaded as diff.py loads a policy (every
.rego a module, every data.json at its directory's path), with:
  - inputs.jsonl: base inputs, one JSON document per line;
and is evaluated for every base input and for every variant of it with one field
removed or replaced by a value of another type (number, string, null, array, object,
boolean), so each operand is seen defined, undefined and mistyped.

A case may also hold `*_test.rego` files pinning OPA's answers: each `test_*` rule must be
true in OPA and pass `airlock policy test` (which checks the RVM, and the interpreter
against it), so a policy author's test of such a rule passes in both.

Every rule of the other files (functions excluded) is compared, for
every input: outcome kind (value / undefined / error) and the value, types exact.
Undefined and error are different here (an error ends the whole evaluation, and the
filter denies; undefined lets the other rules decide). A difference is accepted only
when an entry of --accepted (the format of tests/opa/accepted.json, plus an optional
`rule_matches` regex) recognises it AND Airlock's outcome is an error: an accepted entry
never excuses Airlock producing a value or undefined where OPA does otherwise.
Exit 1 on any unexplained difference. The last line is `opa-semantics: N passed, M failed`.
"""

import argparse
import collections
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.dont_write_bytecode = True
sys.path.insert(0, str(HERE))

import diff  # noqa: E402  (the Airlock batch runner, outcome comparison, accepted entries)
import opa_engine  # noqa: E402

RULE = re.compile(r"^([A-Za-z][A-Za-z0-9_]*)\s*(?:if\b|:=|=|\{|contains\b|\[)", re.M)
FUNCTION = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)\(", re.M)
PACKAGE = re.compile(r"^package\s+([A-Za-z0-9_.]+)", re.M)
MUTANTS = [0, 7, "7", "", None, [], ["x"], {}, {"x": 1}, True, False]


def rules_of(case_dir):
    """[data.<package>.<rule>] for every rule of the case's modules."""
    out = []
    for p in sorted(case_dir.rglob("*.rego")):
        if p.name.endswith("_test.rego"):
            continue  # the tests run as tests (policy_tests_in_both)
        text = p.read_text(encoding="utf-8")
        pkg = PACKAGE.search(text)
        if not pkg:
            continue
        functions = set(FUNCTION.findall(text))
        for name in RULE.findall(text):
            if name in ("package", "import", "default") or name in functions:
                continue
            ep = f"data.{pkg.group(1)}.{name}"
            if ep not in out:
                out.append(ep)
    # `default x := v` declares x too; it is compared through its other definitions.
    return out


def leaf_paths(doc, prefix=()):
    """Every key path of the document (objects only), outermost first."""
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield prefix + (k,)
            yield from leaf_paths(v, prefix + (k,))


def with_path(doc, path, value, remove=False):
    doc = json.loads(json.dumps(doc))
    cur = doc
    for k in path[:-1]:
        cur = cur[k]
    if remove:
        del cur[path[-1]]
    else:
        cur[path[-1]] = value
    return doc


def variants(base_docs):
    """(label, JSON bytes) for each base input and its one-field mutations, deduplicated."""
    seen, out = set(), []

    def add(label, doc):
        raw = json.dumps(doc, sort_keys=True, ensure_ascii=False).encode()
        if raw not in seen:
            seen.add(raw)
            out.append((label, raw))

    for i, doc in enumerate(base_docs):
        add(f"base {i + 1}", doc)
        for path in leaf_paths(doc):
            dotted = ".".join(path)
            add(f"base {i + 1} without {dotted}", with_path(doc, path, None, remove=True))
            for m in MUTANTS:
                add(f"base {i + 1} with {dotted} = {json.dumps(m)}", with_path(doc, path, m))
    return out


def kind_equal(o, a):
    """Outcomes agree: same kind; equal values with the same types."""
    if o[0] != a[0]:
        return False
    if o[0] == "decision":
        return o[1] == a[1] and diff.type_shape(o[1]) == diff.type_shape(a[1])
    return True


def accepted_by(entries, ep, o, a, input_bytes):
    if a[0] != "error":
        return None  # only an Airlock error (the filter then denies) can be accepted
    for e in entries:
        if "rule_matches" in e.get("match", {}) and not re.search(e["match"]["rule_matches"], ep):
            continue
        if diff.accepted_by([e], o, a, input_bytes):
            return e
    return None


def fmt(outcome):
    kind, val = outcome
    if kind == "decision":
        return json.dumps(val, sort_keys=True, default=str, ensure_ascii=False)
    return kind if kind == "undefined" else f"{kind}: {(val or '').splitlines()[-1][:160] if val else ''}"


def run_case(case_dir, opa_lib, airlock, accepted, workdir):
    base_docs = [json.loads(line) for line in (case_dir / "inputs.jsonl").read_text(encoding="utf-8").splitlines()
                 if line.strip()]
    inputs = variants(base_docs)
    opa = opa_engine.Opa(opa_lib)
    opa_engine.load_bundle_dir(opa, case_dir)
    rows = []  # (rule, label, input, opa, airlock, accepted-id or None)
    for ep in rules_of(case_dir):
        o_out = [opa.eval_raw(ep[len("data."):], b) for _, b in inputs]
        try:
            a_out = diff.airlock_batch(airlock, case_dir, ep, inputs, workdir)
        except SystemExit as e:  # the program does not compile for Airlock
            a_out = [("error", str(e))] * len(inputs)
        for (label, b), o, a in zip(inputs, o_out, a_out):
            if kind_equal(o, a):
                rows.append((ep, label, b, o, a, "agree"))
                continue
            entry = accepted_by(accepted, ep, o, a, b)
            rows.append((ep, label, b, o, a, entry["id"] if entry else None))
    return inputs, rows


def policy_tests_in_both(case_dir, opa_lib, airlock):
    """The case's own `test_*` rules (pinned to OPA's answers): true in OPA, and passing
    `airlock policy test` (the RVM, and the interpreter for statements with `with`).
    Returns (passed, failure messages)."""
    names = diff.policy_tests(case_dir)
    if not names:
        return 0, []
    failures = []
    opa = opa_engine.Opa(opa_lib)
    opa_engine.load_bundle_dir(opa, case_dir)
    for name in names:
        got = opa.eval_raw(name[len("data."):], b"{}")
        if got != ("decision", True):
            failures.append(f"OPA: {name} = {fmt(got)}")
    proc = subprocess.run([airlock, "policy", "test", "--quiet", str(case_dir)], capture_output=True, text=True,
                          timeout=600)
    if proc.returncode != 0:
        failures.append(f"airlock policy test {case_dir} (exit {proc.returncode}):\n{proc.stdout}{proc.stderr}")
    return 2 * len(names) - len(failures), failures


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--opa-lib", required=True)
    ap.add_argument("--airlock", required=True)
    ap.add_argument("--cases", default=str(HERE / "semantics"))
    ap.add_argument("--accepted", default=str(HERE / "semantics" / "accepted.json"))
    ap.add_argument("--show", type=int, default=40, help="differences printed in full")
    args = ap.parse_args()

    accepted = diff.load_accepted(args.accepted)
    cases = sorted(p for p in Path(args.cases).iterdir() if p.is_dir() and (p / "inputs.jsonl").exists())
    if not cases:
        raise SystemExit(f"opa-semantics: no case directories with inputs.jsonl under {args.cases}")
    passed = failed = shown = 0
    by_rule = collections.Counter()
    by_accept = collections.Counter()
    with tempfile.TemporaryDirectory(prefix="opa-semantics-") as wd:
        for case in cases:
            inputs, rows = run_case(case, args.opa_lib, args.airlock, accepted, wd)
            n_rules = len({r[0] for r in rows})
            bad = [r for r in rows if r[5] is None]
            print(f"{case.name}: {n_rules} rules x {len(inputs)} inputs, {len(diff.policy_tests(case))} tests; "
                  f"{sum(1 for r in rows if r[5] == 'agree')} agree, "
                  f"{sum(1 for r in rows if r[5] not in (None, 'agree'))} accepted, {len(bad)} differ")
            n_ok, test_failures = policy_tests_in_both(case, args.opa_lib, args.airlock)
            passed += n_ok
            failed += len(test_failures)
            for msg in test_failures:
                print(f"--- policy test: {msg}")
            for ep, label, b, o, a, acc in rows:
                if acc is None:
                    failed += 1
                    by_rule[(case.name, ep, fmt(o)[:40], fmt(a)[:40])] += 1
                    if shown < args.show:
                        shown += 1
                        print(f"--- {ep} ({label})")
                        print(f"    input:   {b.decode()}")
                        print(f"    opa:     {fmt(o)}")
                        print(f"    airlock: {fmt(a)}")
                else:
                    passed += 1
                    if acc != "agree":
                        by_accept[acc] += 1
    if by_accept:
        print("accepted differences:")
        for k, c in sorted(by_accept.items()):
            print(f"  {c:6d}  {k}")
    if by_rule:
        print("differences by rule (OPA → Airlock):")
        for (case, ep, o, a), c in by_rule.most_common():
            print(f"  {c:6d}  {ep}: {o} → {a}")
    print(f"opa-semantics: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
