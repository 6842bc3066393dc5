#!/usr/bin/env python3
"""Import cycles between the source files of a Rust crate.

Every `crate::a::b` path in a file (in `use` declarations and inline) is an edge from that
file to the file defining the longest existing module prefix (`super::` and `self::` are
resolved too). A strongly connected component of more than one file is a loop: its files
cannot be read, tested or replaced one without the others. A parent module declaring its
children (`mod x;`) is containment, not an edge, and so is a re-export (`pub use x::T`):
a path through it counts as an import of the file defining `T`.

    scripts/import-cycles.py [--depth N | --files] [CRATE_SRC]   (default approval-svc/src)

By default the graph is between the crate's top-level modules (`api`, `channels`,
`store`, ...): the layering rule. `--depth 2` also separates `channels::teams` from
`channels::slack`; `--files` shows every file, where a module and its own children
referring to each other (a facade and its parts) count as loops too.
Prints each loop with its edges and exits 1 if there is one, so CI can run it.
"""
import os
import re
import sys

PATH = re.compile(r"(?<![A-Za-z0-9_:])([A-Za-z_][A-Za-z0-9_]*)((?:::[A-Za-z_][A-Za-z0-9_]*)+)")
USE = re.compile(r"\b(pub(?:\([a-z]+\))?\s+)?use\s+([^;]*);", re.S)
LINE_COMMENT = re.compile(r"//[^\n]*")


def module_of(src, path):
    rel = os.path.relpath(path, src)[:-3].split(os.sep)
    if rel[-1] in ("mod", "lib", "main"):
        rel = rel[:-1]
    return tuple(rel)


def expand_use(tree):
    """`a::{b, c::{d, e}}` → [a::b, a::c::d, a::c::e] (the path prefixes only)."""
    tree = re.sub(r"\s+", "", tree)
    out = []

    def walk(prefix, s):
        i = s.find("{")
        if i < 0:
            out.append(prefix + s)
            return
        head, body = s[:i], s[i + 1 : s.rfind("}")]
        depth, start = 0, 0
        for j, ch in enumerate(body + ","):
            if ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
            elif ch == "," and depth == 0:
                part = body[start:j]
                if part:
                    walk(prefix + head, part)
                start = j + 1

    walk("", tree)
    return out


def paths_in(text):
    """The paths a file uses, and the ones it re-exports (`pub use`: name → path)."""
    text = LINE_COMMENT.sub("", text)
    found, reexports = [], {}
    for m in USE.finditer(text):
        for path in expand_use(m.group(2)):
            if m.group(1):
                name = path.split(" as ")[-1].split("::")[-1]
                reexports[name] = path.split(" as ")[0]
            else:
                found.append(path)
    text = USE.sub("", text)
    found += [m.group(0) for m in PATH.finditer(text)]
    return found, reexports


def resolve(path, here, modules, reexports, depth=0):
    parts = path.split("::")
    if parts[0] == "crate":
        base, rest = (), parts[1:]
    elif parts[0] in ("self", "super"):
        # In `a/mod.rs` (module a) and in `a.rs` alike, `self` is the module itself.
        base = here
        while parts and parts[0] in ("self", "super"):
            if parts[0] == "super":
                base = base[:-1]
            parts = parts[1:]
        rest = parts
    elif here + (parts[0],) in modules:
        # A child module named without `self::` (`mod gateway; ... gateway::router()`).
        base, rest = here, parts
    else:
        return None
    best, n_best = None, 0
    for n in range(len(rest) + 1):
        cand = base + tuple(rest[:n])
        if cand in modules:
            best, n_best = cand, n
    # Through a facade: `crate::m::T` where `m` only re-exports `T` from a child.
    if best is not None and n_best < len(rest) and depth < 8:
        target = reexports.get(best, {}).get(rest[n_best])
        if target is not None:
            deeper = resolve(target, best, modules, reexports, depth + 1)
            if deeper is not None:
                return deeper
    return best


def graph(src):
    files = {}
    for root, _, names in os.walk(src):
        for name in names:
            if name.endswith(".rs"):
                p = os.path.join(root, name)
                files[module_of(src, p)] = p
    edges = {m: set() for m in files}
    used, reexports = {}, {}
    for mod, p in files.items():
        with open(p, encoding="utf-8") as f:
            used[mod], reexports[mod] = paths_in(f.read())
    for mod in files:
        for path in used[mod]:
            target = resolve(path.split(" as ")[0], mod, files, reexports)
            if target is not None and target != mod and target != ():
                edges[mod].add(target)
    return files, edges


def sccs(edges):
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]
    sys.setrecursionlimit(10000)

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            out.append(comp)

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def collapse(edges, depth):
    """The graph of modules `depth` levels deep (`api`, `channels`, ... for 1)."""
    out = {}
    for v, ws in edges.items():
        out.setdefault(v[:depth], set()).update(w[:depth] for w in ws if w[:depth] != v[:depth])
    return out


def report(edges, label, name):
    loops = sorted((c for c in sccs(edges) if len(c) > 1), key=len, reverse=True)
    for comp in loops:
        print(f"loop of {len(comp)} {label}:")
        inside = set(comp)
        for v in sorted(comp):
            print(f"  {name(v)} -> " + ", ".join(sorted(name(w) for w in edges[v] if w in inside)))
    largest = len(loops[0]) if loops else 0
    print(f"{len(edges)} {label}, {sum(map(len, edges.values()))} imports, "
          f"{len(loops)} loops, largest {largest}")
    return loops


def main():
    args = sys.argv[1:]
    depth = None
    if args[:1] == ["--files"]:
        args = args[1:]
    elif args[:1] == ["--depth"]:
        depth, args = int(args[1]), args[2:]
    else:
        depth = 1
    src = args[0] if args else "approval-svc/src"
    files, edges = graph(src)
    if depth is None:
        loops = report(edges, "files", lambda v: os.path.relpath(files[v], src))
    else:
        loops = report(collapse(edges, depth), "modules", lambda v: "::".join(v) or "crate")
    return 1 if loops else 0


if __name__ == "__main__":
    sys.exit(main())
