#!/usr/bin/env python3
"""Differential test: the policy library evaluated by the real OPA and by Airlock.

    python3 tests/opa/diff.py --opa-lib LIB.so --airlock target/debug/airlock \
        [--policy policies/library] [--count N] [--seed S] [--entrypoint data.airlock.decision]

Generates N inputs (tests/opa/gen.py), evaluates the entrypoint in OPA (in process,
through libopabridge.so) and in Airlock (`airlock policy eval --inputs FILE.jsonl`,
the filter's RVM), normalises each side to an outcome — a decision object,
"undefined" or "error" — and compares. Undefined and error are both "no decision"
(the filter denies either way) and agree with each other; a decision object
must be equal in full (numbers compared by value, strings exactly).

Every difference is printed with its input. A difference is *accepted* only when an
entry of tests/opa/accepted.json recognises it AND Airlock's effect is at least as
strict as OPA's (deny > approve > allow; no decision counts as deny): an accepted entry
can never excuse a deny/approve that became an allow. Exit 1 if any difference is
unexplained. The last line is `opa-diff: N passed, M failed`.
"""

import argparse
import collections
import decimal
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, str(HERE))

import gen  # noqa: E402
import opa_engine  # noqa: E402

STRICTNESS = {"allow": 0, "approve": 1, "deny": 2}


def json_exact(raw):
    return json.loads(raw, parse_float=decimal.Decimal, parse_int=int)


# ---------------------------------------------------------------- Airlock side


def airlock_batch_mode(binary):
    """None (no batch mode), or the extra arguments the batch mode takes."""
    try:
        out = subprocess.run([binary, "policy", "eval", "--help"], capture_output=True, text=True, timeout=60)
    except OSError:
        return None
    if "--inputs" not in out.stdout:
        return None
    return ["--format", "jsonl"] if "jsonl" in out.stdout else []


def airlock_batch(binary, policy, entrypoint, inputs, workdir, extra=()):
    """One process for every input: `--inputs FILE.jsonl`. If the process
    dies part-way (a panic), the input it stopped at is recorded as a "crash" and the
    batch resumes after it."""
    outcomes = []
    start = 0
    while start < len(inputs):
        part = inputs[start:]
        path = Path(workdir) / "inputs.jsonl"
        path.write_bytes(b"\n".join(b for _, b in part) + b"\n")
        cmd = [binary, "policy", "eval", "--policy", str(policy), "--inputs", str(path), *extra]
        if entrypoint != "data.airlock.decision":
            cmd += ["--entrypoint", entrypoint]
        proc = subprocess.run(cmd, capture_output=True, timeout=600)
        lines = proc.stdout.split(b"\n")
        if lines and lines[-1] == b"":
            lines.pop()
        outcomes.extend(_parse_line(line) for line in lines[: len(part)])
        if len(lines) >= len(part):
            break
        if not lines and start == 0 and proc.returncode == 2:
            raise SystemExit(
                f"opa-diff: airlock printed nothing (exit {proc.returncode}); "
                f"stderr: {proc.stderr.decode(errors='replace')[-2000:]}"
            )
        err = proc.stderr.decode(errors="replace")
        m = re.search(r"panicked at [^\n]*\n[^\n]*", err)
        outcomes.append(("crash", f"exit {proc.returncode}: " + (m.group(0) if m else err[-300:]).replace("\n", " ")))
        start += len(lines) + 1
    return outcomes


def _parse_line(line):
    try:
        obj = json_exact(line)
    except ValueError as e:
        return ("error", f"unparseable airlock output line: {e}: {line[:200]!r}")
    if not isinstance(obj, dict) or "value" not in obj or "error" not in obj:
        return ("error", f"airlock output line is not {{value, error}}: {line[:200]!r}")
    if obj["error"] is not None:
        return ("error", str(obj["error"]))
    if obj["value"] is None and not obj.get("defined"):
        return ("undefined", None)  # (a null value has "defined": true)
    return ("decision", obj["value"])


def airlock_single(binary, policy, entrypoint, inputs, workdir, jobs=2):
    """Fallback while the CLI has no batch mode: one `policy eval --input` per input
    (about 0.1 s each, so only for small counts)."""

    def one(idx):
        p = Path(workdir) / f"in-{idx}.json"
        p.write_bytes(inputs[idx][1])
        proc = subprocess.run(
            [binary, "policy", "eval", "--policy", str(policy), "--input", str(p), "--format", "json",
             "--entrypoint", entrypoint],
            capture_output=True, timeout=60,
        )
        if proc.returncode != 0:
            return ("error", proc.stderr.decode(errors="replace").strip())
        try:
            d = json_exact(proc.stdout).get("decision")
        except ValueError as e:
            return ("error", f"unparseable output: {e}")
        return ("undefined", None) if d is None else ("decision", d)

    with ThreadPoolExecutor(max_workers=jobs) as ex:
        return list(ex.map(one, range(len(inputs))))


# ---------------------------------------------------------------- comparison


def effect_of(outcome):
    kind, val = outcome
    if kind != "decision":
        return "deny"  # the filter denies on undefined and on error
    if isinstance(val, dict) and val.get("effect") in STRICTNESS:
        return val["effect"]
    return "deny"  # a malformed decision is denied by the filter


def same(a, b):
    if "crash" in (a[0], b[0]):
        return False  # a crash never agrees with anything
    if a[0] == "decision" and b[0] == "decision":
        return a[1] == b[1] and type_shape(a[1]) == type_shape(b[1])
    return a[0] != "decision" and b[0] != "decision"


def type_shape(v):
    """Python's == says True == 1; Rego does not. Compare types alongside values."""
    if isinstance(v, dict):
        return {k: type_shape(x) for k, x in v.items()}
    if isinstance(v, list):
        return [type_shape(x) for x in v]
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, (int, decimal.Decimal)):
        return "number"
    return type(v).__name__


def rule_of(outcome):
    kind, val = outcome
    if kind != "decision":
        return kind
    if isinstance(val, dict):
        return f"{val.get('effect')}/{val.get('rule')}"
    return "malformed"


def _quorum(outcome):
    try:
        q = outcome[1]["approvers"]["quorum"]
        return q if isinstance(q, (int, decimal.Decimal)) and not isinstance(q, bool) else None
    except (KeyError, TypeError, IndexError):
        return None


def severity(opa, air):
    if air[0] == "crash":
        return "crash"  # never acceptable
    o, a = STRICTNESS[effect_of(opa)], STRICTNESS[effect_of(air)]
    if a < o:
        return "weaker"  # Airlock lets through what OPA would stop: never acceptable
    if a > o:
        return "stricter"
    if effect_of(opa) == "approve" and opa[0] == air[0] == "decision":
        qo, qa = _quorum(opa), _quorum(air)
        if qo is not None and (qa is None or qa < qo):
            return "weaker"  # fewer approvers than OPA asks for
        if opa[1].get("approvers") != air[1].get("approvers"):
            return "same-effect, other approvers"
    return "same-effect"


def lookup(doc, dotted):
    cur = doc
    for part in dotted.split("."):
        if isinstance(cur, dict) and part in cur:
            cur = cur[part]
        elif isinstance(cur, list) and part.isdigit() and int(part) < len(cur):
            cur = cur[int(part)]
        else:
            return _MISSING
    return cur


_MISSING = object()


def _match_side(spec, outcome):
    if spec is None:
        return True
    kind, val = outcome
    if "outcome" in spec and kind not in (spec["outcome"] if isinstance(spec["outcome"], list) else [spec["outcome"]]):
        return False
    if "error_matches" in spec and not (kind == "error" and re.search(spec["error_matches"], val or "")):
        return False
    for k, want in (spec.get("decision") or {}).items():
        if kind != "decision" or lookup(val, k) is _MISSING or lookup(val, k) != want:
            return False
    return True


def _match_input(conds, input_bytes):
    if not conds:
        return True
    text = input_bytes.decode("utf-8", errors="replace")
    try:
        doc = json_exact(input_bytes)
    except ValueError:
        doc = _MISSING
    for c in conds:
        if "text_matches" in c and not re.search(c["text_matches"], text):
            return False
        if "path" in c:
            v = lookup(doc, c["path"]) if doc is not _MISSING else _MISSING
            if "type" in c:
                t = {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null",
                     int: "number", decimal.Decimal: "number"}.get(type(v), "missing")
                if t not in (c["type"] if isinstance(c["type"], list) else [c["type"]]):
                    return False
            if "equals" in c and (v is _MISSING or v != c["equals"]):
                return False
            if c.get("missing") is True and v is not _MISSING:
                return False
        if c.get("inexact_number") and not (doc is not _MISSING and _has_inexact_number(lookup(doc, c["inexact_number"]))):
            return False
    return True


def _has_inexact_number(v):
    """A number regorus may not hold exactly: an integer beyond 64 bits, or a decimal with
    more than 15 significant digits (serde_json reads those without correct rounding:
    1000.0000000000001 becomes 1000). filter/src/number.rs refuses every body number whose
    value regorus does not hold exactly, which covers each difference these can cause."""
    if v is _MISSING or isinstance(v, (bool, str)) or v is None:
        return False
    if isinstance(v, int):
        return not (-(2 ** 63) <= v < 2 ** 64)
    if isinstance(v, decimal.Decimal):
        digits = v.normalize().as_tuple().digits
        return len(digits) > 15 or not v.is_finite()
    if isinstance(v, list):
        return any(_has_inexact_number(x) for x in v)
    if isinstance(v, dict):
        return any(_has_inexact_number(x) for x in v.values())
    return False


def accepted_by(entries, opa, air, input_bytes):
    for e in entries:
        m = e.get("match", {})
        if _match_side(m.get("opa"), opa) and _match_side(m.get("airlock"), air) and _match_input(m.get("input"), input_bytes):
            return e
    return None


def load_accepted(path):
    doc = json.loads(Path(path).read_text(encoding="utf-8"))
    entries = doc.get("accepted", [])
    for e in entries:
        for k in ("id", "match", "reason"):
            if k not in e:
                raise SystemExit(f"opa-diff: {path}: accepted entry without {k!r}: {e}")
    return entries


# ---------------------------------------------------------------- per-module attribution

MODULE_DOC = re.compile(r"^package\s+airlock\.rules\.([A-Za-z0-9_]+)\s*$", re.M)


def rule_modules(policy):
    mods = set()
    for p in Path(policy).rglob("*.rego"):
        if p.name.endswith("_test.rego"):
            continue
        m = MODULE_DOC.search(p.read_text(encoding="utf-8"))
        if m:
            mods.add(m.group(1))
    return sorted(mods)


def fmt(outcome):
    kind, val = outcome
    if kind == "decision":
        return json.dumps(val, sort_keys=True, default=str, ensure_ascii=False)
    if kind in ("error", "crash"):
        return kind + ": " + (val or "").replace("\n", " ")[:300]
    return kind


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--opa-lib", required=True, help="libopabridge.so from opa-golib-python-bindings")
    ap.add_argument("--airlock", required=True, help="the airlock binary")
    ap.add_argument("--policy", default="policies/library")
    ap.add_argument("--count", type=int, default=3000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--entrypoint", default="data.airlock.decision")
    ap.add_argument("--accepted", default=str(HERE / "accepted.json"))
    ap.add_argument("--show", type=int, default=40, help="print at most this many differences in full (all go to --report)")
    ap.add_argument("--report", help="write every difference as JSON Lines here")
    ap.add_argument("--dump-inputs", help="write the generated inputs (JSON Lines) here and continue")
    ap.add_argument("--no-modules", action="store_true", help="skip the per-module attribution of differences")
    args = ap.parse_args()

    if not args.entrypoint.startswith("data."):
        raise SystemExit("opa-diff: --entrypoint must start with data.")
    t0 = time.time()
    accepted = load_accepted(args.accepted)
    inputs = gen.generate(args.policy, args.count, args.seed)
    if args.dump_inputs:
        Path(args.dump_inputs).write_bytes(b"\n".join(b for _, b in inputs) + b"\n")
    t_gen = time.time() - t0

    opa = opa_engine.Opa(args.opa_lib)
    n_mod, n_data = opa_engine.load_bundle_dir(opa, args.policy)
    doc = args.entrypoint[len("data."):]
    t1 = time.time()
    opa_out = [opa.eval_raw(doc, b) for _, b in inputs]
    t_opa = time.time() - t1

    t2 = time.time()
    batch_args = airlock_batch_mode(args.airlock)
    batch = batch_args is not None
    with tempfile.TemporaryDirectory(prefix="opa-diff-") as wd:
        if batch:
            run = lambda b, p, ep, ins, w: airlock_batch(b, p, ep, ins, w, batch_args)  # noqa: E731
        else:
            run = airlock_single
        if not batch:
            print(f"opa-diff: {args.airlock} has no batch mode (--inputs); evaluating one process per input", file=sys.stderr)
        air_out = run(args.airlock, args.policy, args.entrypoint, inputs, wd)
        t_air = time.time() - t2

        diffs = []
        n_agree = n_acc = 0
        for i, ((label, b), o, a) in enumerate(zip(inputs, opa_out, air_out)):
            if same(o, a):
                n_agree += 1
                continue
            sev = severity(o, a)
            entry = accepted_by(accepted, o, a, b)
            # An input the filter never lets reach the policy (its `unreachable` entry names
            # the filter test that proves it) is accepted whatever the two engines say.
            if entry is not None and (sev not in ("weaker", "crash") or entry.get("unreachable")):
                n_acc += 1
                diffs.append({"index": i, "accepted": entry["id"], "severity": sev, "label": label, "opa": o, "airlock": a, "input": b})
                continue
            diffs.append({"index": i, "accepted": None, "severity": sev, "label": label, "opa": o, "airlock": a, "input": b,
                          "refused": entry["id"] if entry is not None else None})

        # Which modules disagree, for each unexplained difference (needs the per-module
        # entrypoints on both sides; only computed for the differing inputs).
        unexplained = [d for d in diffs if d["accepted"] is None]
        if unexplained and not args.no_modules and args.entrypoint == "data.airlock.decision":
            sub = [(d["label"], d["input"]) for d in unexplained]
            for m in rule_modules(args.policy):
                ep = f"data.airlock.rules.{m}.decision"
                o_m = [opa.eval_raw(ep[len("data."):], b) for _, b in sub]
                try:
                    a_m = run(args.airlock, args.policy, ep, sub, wd)
                except SystemExit as e:
                    print(f"opa-diff: per-module run for {m} failed: {e}", file=sys.stderr)
                    break
                for d, om, am in zip(unexplained, o_m, a_m):
                    if not same(om, am):
                        d.setdefault("modules", []).append({"module": m, "opa": om, "airlock": am})

    # ---------------------------------------------------------------- report
    unexplained = [d for d in diffs if d["accepted"] is None]
    by_kind = collections.Counter()
    by_module = collections.Counter()
    by_accept = collections.Counter(d["accepted"] for d in diffs if d["accepted"])
    for d in unexplained:
        by_kind[(d["severity"], rule_of(d["opa"]), rule_of(d["airlock"]))] += 1
        mods = [x["module"] for x in d.get("modules", [])] or [
            "(not attributed: --no-modules)" if args.no_modules else "(no single module: composition)"]
        for x in d.get("modules", []):
            by_module[(x["module"], rule_of(x["opa"]), rule_of(x["airlock"]))] += 1
        if not d.get("modules"):
            by_module[(mods[0], rule_of(d["opa"]), rule_of(d["airlock"]))] += 1

    shown = 0
    for d in unexplained:
        if shown >= args.show:
            break
        shown += 1
        print(f"--- difference #{d['index']} [{d['severity']}] ({d['label']})")
        print(f"    input:   {d['input'].decode('utf-8', errors='replace')}")
        print(f"    opa:     {fmt(d['opa'])}")
        print(f"    airlock: {fmt(d['airlock'])}")
        for x in d.get("modules", []):
            print(f"    module {x['module']}: opa {fmt(x['opa'])[:200]} | airlock {fmt(x['airlock'])[:200]}")
        if d.get("refused"):
            print(f"    (accepted entry {d['refused']} matches but Airlock is weaker than OPA: not accepted)")
    if len(unexplained) > shown:
        print(f"... {len(unexplained) - shown} more differences (use --show or --report)")

    if args.report:
        with open(args.report, "w", encoding="utf-8") as f:
            for d in diffs:
                f.write(json.dumps({**d, "input": d["input"].decode("utf-8", errors="replace")}, default=str, ensure_ascii=False) + "\n")

    n = len(inputs)
    kinds = collections.Counter(o[0] for o in opa_out)
    print()
    print(f"policy {args.policy}: {n_mod} modules, {n_data} data.json; entrypoint {args.entrypoint}; seed {args.seed}")
    print(f"OPA outcomes: {dict(sorted(kinds.items()))}; effects: "
          f"{dict(sorted(collections.Counter(effect_of(o) if o[0] == 'decision' else o[0] for o in opa_out).items()))}")
    print(f"airlock: {'batch' if batch else 'one process per input'}; "
          f"time: generate {t_gen:.1f}s, OPA {t_opa:.1f}s, airlock {t_air:.1f}s")
    print(f"{n} inputs, {n_agree} agree, {n_acc} accepted, {len(unexplained)} unexplained "
          f"({sum(1 for d in unexplained if d['severity'] == 'weaker')} weaker in Airlock, "
          f"{sum(1 for d in unexplained if d['severity'] == 'crash')} Airlock crashes)")
    if by_accept:
        print("accepted differences:")
        for k, c in sorted(by_accept.items()):
            print(f"  {c:6d}  {k}")
    if by_kind:
        print("unexplained differences by severity, OPA → Airlock (effect/rule):")
        for (sev, o, a), c in by_kind.most_common():
            print(f"  {c:6d}  [{sev}] {o} → {a}")
        print("by module (module decision, OPA → Airlock):")
        for (m, o, a), c in by_module.most_common():
            print(f"  {c:6d}  {m}: {o} → {a}")
    # The policy's own tests must pass in OPA too: `airlock policy test` proves they pass
    # in the filter's engine; a test that only regorus passes encodes a divergence.
    opa_test_failures = []
    for name in policy_tests(args.policy):
        got = opa.eval_raw(name[len("data."):], b"{}")
        if got != ("decision", True):
            opa_test_failures.append((name, got))
    print(f"policy tests in OPA: {len(opa_test_failures)} of {len(policy_tests(args.policy))} not true")
    for name, got in opa_test_failures:
        print(f"  OPA: {name} = {got[0]} {got[1] if got[1] is not None else ''}")
    passed = n_agree + n_acc
    failed = len(unexplained) + len(opa_test_failures)
    print(f"opa-diff: {passed} passed, {failed} failed")
    return 1 if failed else 0


TEST_RULE = re.compile(r"^(test_[A-Za-z0-9_]*)\b", re.M)
PACKAGE = re.compile(r"^package\s+([A-Za-z0-9_.]+)", re.M)


def policy_tests(root):
    """`data.<package>.test_*` for every test rule in the policy's .rego files."""
    out = []
    for p in sorted(Path(root).rglob("*.rego")):
        text = p.read_text(encoding="utf-8")
        pkg = PACKAGE.search(text)
        if not pkg:
            continue
        for m in TEST_RULE.finditer(text):
            name = f"data.{pkg.group(1)}.{m.group(1)}"
            if name not in out:
                out.append(name)
    return out


if __name__ == "__main__":
    sys.exit(main())
