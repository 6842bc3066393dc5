"""Seeded, deterministic generator of policy inputs for the OPA differential test.

Every input is produced as JSON *text* (bytes) by our own encoder, so both engines read
exactly the same bytes: number literals are written as given (`1.50`, `-0`,
`1000.00000000000001`, `1e400`), strings are written raw UTF-8 or `\\u`-escaped (lone
surrogates included), and an object may repeat a key.

Where inputs come from:
  - the library's examples (`examples/*.json`) and the `with input as {…}` literals of its
    `*_test.rego` files that are plain JSON;
  - synthesis from the vocabulary the library itself names: every host, path, route,
    AWS action, GCP verb/resource, Kubernetes resource and namespace, Vault mount, MCP
    method and tool, argument value… read from the `data.json` files, plus path shapes
    the modules parse (Kubernetes `namespaces/<ns>/<resource>`, GitHub deployments and
    workflow dispatches, Google `:setIamPolicy`, Cloud SQL `…/export`, Vault `/v1/<mount>`);
  - mutations of the above: hosts (other listed hosts, unknown hosts, case, trailing dot,
    port), methods, paths (prefixes, extra segments, slashes, unicode), queries, JSON
    bodies (edge-case numbers, unicode, duplicate keys), the `request.jsonrpc` view
    (shaped as filter/src/input.rs `jsonrpc_view` builds it, and deliberately
    inconsistent or mistyped), missing fields and mistyped fields (numbers, arrays,
    objects, booleans, null where strings are expected).
"""

import copy
import json
import os
import random
import re
from pathlib import Path


# ---------------------------------------------------------------- JSON text encoder


class Raw:
    """A number (or any token) written verbatim into the JSON text."""

    def __init__(self, text):
        self.text = text

    def __repr__(self):
        return f"Raw({self.text})"


class Str:
    """A string written with a chosen escaping: 'raw' (UTF-8), 'ascii' (\\u escapes for
    everything non-ASCII) or 'lone' (contains a lone surrogate escape)."""

    def __init__(self, value, style="raw", lone=None):
        self.value = value
        self.style = style
        self.lone = lone  # text of a \\uXXXX escape appended (lone surrogate)


class Dup:
    """An object whose key/value pairs are written in order, duplicates included."""

    def __init__(self, pairs):
        self.pairs = pairs


def _enc_str(s, ascii_only):
    return json.dumps(s, ensure_ascii=ascii_only)


def encode(v, out):
    if v is None:
        out.append("null")
    elif v is True:
        out.append("true")
    elif v is False:
        out.append("false")
    elif isinstance(v, Raw):
        out.append(v.text)
    elif isinstance(v, int):
        out.append(str(v))
    elif isinstance(v, float):
        out.append(repr(v))
    elif isinstance(v, str):
        out.append(_enc_str(v, False))
    elif isinstance(v, Str):
        if v.style == "lone":
            body = _enc_str(v.value, False)[1:-1]
            out.append('"' + body + (v.lone or "\\ud800") + '"')
        else:
            out.append(_enc_str(v.value, v.style == "ascii"))
    elif isinstance(v, Dup):
        out.append("{")
        for i, (k, x) in enumerate(v.pairs):
            if i:
                out.append(",")
            encode(k, out)
            out.append(":")
            encode(x, out)
        out.append("}")
    elif isinstance(v, dict):
        out.append("{")
        for i, (k, x) in enumerate(v.items()):
            if i:
                out.append(",")
            encode(k, out)
            out.append(":")
            encode(x, out)
        out.append("}")
    elif isinstance(v, (list, tuple)):
        out.append("[")
        for i, x in enumerate(v):
            if i:
                out.append(",")
            encode(x, out)
        out.append("]")
    else:
        raise TypeError(f"cannot encode {type(v)}")


def to_bytes(v):
    out = []
    encode(v, out)
    b = "".join(out).encode("utf-8")
    assert b"\n" not in b and b"\r" not in b
    return b


# ---------------------------------------------------------------- vocabulary


def _walk_strings(v, out):
    if isinstance(v, dict):
        for k, x in v.items():
            out.add(k)
            _walk_strings(x, out)
    elif isinstance(v, list):
        for x in v:
            _walk_strings(x, out)
    elif isinstance(v, str):
        out.add(v)


def _extract_test_inputs(text):
    """The `with input as {…}` literals of a test file that are plain JSON."""
    found = []
    for m in re.finditer(r"with\s+input\s+as\s+\{", text):
        i = m.end() - 1
        depth = 0
        in_str = False
        j = i
        while j < len(text):
            c = text[j]
            if in_str:
                if c == "\\":
                    j += 1
                elif c == '"':
                    in_str = False
            elif c == '"':
                in_str = True
            elif c == "{":
                depth += 1
            elif c == "}":
                depth -= 1
                if depth == 0:
                    break
            j += 1
        try:
            found.append(json.loads(text[i : j + 1]))
        except ValueError:
            pass
    return found


class Vocab:
    def __init__(self, policy_dir):
        root = Path(policy_dir)
        self.data = {}
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            if "data.json" in filenames:
                rel = Path(dirpath).relative_to(root)
                node = self.data
                for part in rel.parts:
                    node = node.setdefault(part, {})
                node.update(json.loads((Path(dirpath) / "data.json").read_text(encoding="utf-8")))
        self.seeds = []
        for p in sorted((root / "examples").glob("*.json")) if (root / "examples").is_dir() else []:
            self.seeds.append((f"example:{p.stem}", json.loads(p.read_text(encoding="utf-8"))))
        for p in sorted(root.rglob("*_test.rego")):
            for n, inp in enumerate(_extract_test_inputs(p.read_text(encoding="utf-8"))):
                self.seeds.append((f"test:{p.relative_to(root)}#{n}", inp))
        d = self.data
        g = lambda *ks: _get(d, ks) or {}
        strings = set()
        _walk_strings(d, strings)
        self.all_strings = sorted(strings)
        hosts = set(g("hosts"))
        for section in d.values():
            if isinstance(section, dict):
                for k, v in section.items():
                    if k.endswith("hosts") or k.endswith("routes") or k == "hosts":
                        if isinstance(v, dict):
                            hosts.update(x for x in v if "." in x)
        self.hosts = sorted(hosts)
        paths = set()
        for sec in ("databases", "exports", "deploy"):
            for k, v in (d.get(sec) or {}).items():
                if isinstance(v, dict):
                    for h, routes in v.items():
                        if isinstance(routes, dict):
                            r = routes.get("routes", routes)
                            if isinstance(r, dict):
                                paths.update(p for p in r if p.startswith("/"))
        for grants in g("secrets", "agent_grants").values():
            paths.update(grants)
        self.paths = sorted(paths)
        # Per host, the paths the library routes on it (from data), so that synthesis
        # reaches the rules' inner branches instead of stopping at the host lookup.
        self.host_paths = {}
        for sec in ("databases", "exports"):
            for k, v in (d.get(sec) or {}).items():
                if k.endswith("routes") and isinstance(v, dict):
                    for h, routes in v.items():
                        self.host_paths.setdefault(h, set()).update(routes)
        for h, site in g("deploy", "hosts").items():
            self.host_paths.setdefault(h, set()).update(site.get("routes", {}))
        for h in g("secrets", "vault_hosts"):
            self.host_paths.setdefault(h, set()).update(
                ["/v1/%s/data/prod/db" % m for m in g("secrets", "vault_mounts")] + ["/v1/sys/policies"]
                + [p for grants in g("secrets", "agent_grants").values() for p in grants])
        self.host_paths = {h: sorted(ps) for h, ps in self.host_paths.items()}
        self.k8s_hosts = sorted(g("kubernetes", "api_hosts"))
        self.github_hosts = sorted(g("deploy", "github_hosts"))
        self.aws_hosts = sorted(set(g("iam", "aws_hosts")) | set(g("network", "aws_hosts")) | set(g("databases", "aws_hosts")))
        self.gcp_hosts = sorted(set(g("iam", "gcp_hosts")) | set(g("network", "gcp_hosts")) | set(g("databases", "gcp_hosts")))
        self.aws_actions = sorted(
            set(g("iam", "aws_actions")) | set(g("iam", "aws_read_actions")) | set(g("network", "aws_actions"))
            | set(g("databases", "aws_actions"))
        ) + ["DescribeInstances", "ListBuckets"]
        self.policy_arns = sorted(g("iam", "denied_policy_arns")) + ["arn:aws:iam::aws:policy/ReadOnlyAccess"]
        self.roles = sorted(g("iam", "denied_roles")) + ["roles/viewer", "view", "edit"]
        self.k8s_resources = sorted(
            set(g("iam", "k8s_rbac_resources")) | set(g("network", "k8s_resources")) | set(g("deploy", "k8s_resources"))
        ) + ["secrets", "pods", "namespaces"]
        self.namespaces = sorted(g("deploy", "production_namespaces")) + ["default", "staging", "kube-system", "namespaces"]
        self.gcp_resources = sorted(g("network", "gcp_resources")) + ["instances", "networks"]
        self.gcp_verbs = sorted(g("iam", "gcp_verbs")) + ["getIamPolicy", "testIamPermissions"]
        self.vault_mounts = sorted(set(g("secrets", "vault_mounts")) | set(g("secrets", "vault_denied_mounts"))) + ["transit", "cubbyhole"]
        self.amz_targets = sorted(g("secrets", "aws_targets")) + ["secretsmanager.ListSecrets", "DynamoDB_20120810.Scan"]
        self.cidrs = sorted(g("network", "open_cidrs")) + ["10.0.0.0/8", "0.0.0.0/1", "0.0.0.0/0 ", "::/0\u200b"]
        self.destinations = sorted(g("exports", "internal_destinations")) + ["s3://partner", "s3://corp-analytics/", "S3://corp-analytics"]
        self.tables = sorted(set(g("databases", "sensitive_tables"))) + ["orders", "Users", "events"]
        self.environments = sorted(set(g("deploy", "production_environments")) | {"staging", "dev", "Production"})
        self.mcp_methods = sorted(g("mcp", "methods")) + ["tools/call", "sampling/createMessage", "Tools/Call", "tools/call "]
        self.mcp_tools = sorted(g("mcp", "tools")) + ["something.new", "db.query ", "DB.QUERY", "db.quеry"]
        self.mcp_args = {}
        for tool, spec in g("mcp", "tools").items():
            for arg, values in (spec.get("arguments") or {}).items():
                self.mcp_args.setdefault(arg, set()).update(values)
        self.mcp_args = {k: sorted(v) for k, v in self.mcp_args.items()}
        self.agents = sorted(g("secrets", "agent_grants")) + ["spiffe://corp/agent/ops-bot", "spiffe://corp/agent/report-bot/", "spiffe://corp/agent/REPORT-BOT"]


def _get(d, ks):
    for k in ks:
        if not isinstance(d, dict) or k not in d:
            return None
        d = d[k]
    return d


# ---------------------------------------------------------------- value pools

EDGE_NUMBERS = [
    "0", "-0", "-0.0", "0.0", "1", "2", "100", "999", "1000", "1001", "1000.0", "1000.00", "1e3", "1E+3",
    "1000.00000000000001", "1000.0000000000001", "999.99999999999999", "1.50", "0.1", "-1", "1e308",
    "-1e308", "1e400", "5e-324", "1e-400", "9007199254740993", "18446744073709551616",
    "123456789012345678901234567890", "-9223372036854775809", "1.7976931348623157e308", "50000",
]
EDGE_NUMBER_STRINGS = [
    "1000", "1001", "1000.00000000000001", "1e3", "0x10", " 1000", "1_000", "", "NaN", "Infinity",
    "-0", "1e400", "abc", "１０００", "1001\u200b", "+1001", ".5", "5.",
]
UNICODE_STRINGS = [
    "é", "e\u0301", "\u00e9t\u00e9", "😀", "\U0001f469\u200d\U0001f4bb", "\u202eevil", "\u0000", "\ufeff",
    "ａｐｉ.example.com", "\u2028", "İ", "ß", "Ω", "中文", "\x7f", "tab\there",
]
UNKNOWN_HOSTS = ["evil.example.net", "api.example.com.evil.net", "localhost", "127.0.0.1", "", "xn--80ak6aa92e.com",
                 "api.example.org", "[::1]", "*.corp.example", "api.exämple.com"]
METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "LIST", "OPTIONS", "CONNECT", "get", "Post", "TRACE", ""]


class Gen:
    def __init__(self, vocab, seed):
        self.v = vocab
        self.r = random.Random(seed)

    # -- small helpers
    def pick(self, xs):
        return xs[self.r.randrange(len(xs))]

    def chance(self, p):
        return self.r.random() < p

    def number(self):
        return Raw(self.pick(EDGE_NUMBERS))

    def mistyped(self, like=None):
        r = self.r.randrange(10)
        if r == 0:
            return None
        if r == 1:
            return self.number()
        if r == 2:
            return [like] if like is not None else []
        if r == 3:
            return {"value": like} if like is not None else {}
        if r == 4:
            return self.chance(0.5)
        if r == 5:
            return [like, like] if like is not None else [1, "a"]
        if r == 6:
            return ""
        if r == 7:
            return self.unicode_str(like)
        if r == 8:
            return Raw("1.50")
        return [[like]] if like is not None else [[]]

    def unicode_str(self, base=None):
        base = base if isinstance(base, str) else ""
        u = self.pick(UNICODE_STRINGS)
        s = self.pick([base + u, u + base, u]) if base else u
        style = self.pick(["raw", "raw", "ascii", "lone"]) if self.chance(0.3) else "raw"
        if style == "lone":
            return Str(s, "lone", self.pick(["\\ud800", "\\udc00", "\\udbff"]))
        return Str(s, style)

    def host(self):
        r = self.r.randrange(10)
        if r < 7:
            return self.pick(self.v.hosts)
        return self.pick(UNKNOWN_HOSTS)

    def method(self):
        return self.pick(METHODS) if self.chance(0.3) else self.pick(["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"])

    # -- paths the modules parse
    def path(self, host=None):
        v = self.v
        r = self.r.randrange(12)
        ns = self.pick(v.namespaces)
        res = self.pick(v.k8s_resources)
        if r == 0 and v.paths:
            return self.pick(v.paths)
        if r == 1:
            grp = self.pick(["/api/v1", "/apis/apps/v1", "/apis/rbac.authorization.k8s.io/v1", "/apis/networking.k8s.io/v1"])
            tail = self.pick(["", "/web", "/web/status", "/" + self.pick(v.k8s_resources)])
            return f"{grp}/namespaces/{ns}/{res}{tail}"
        if r == 2:
            return self.pick(["/repos/corp/web/deployments", "/repos/corp/web/actions/workflows/ci.yml/dispatches",
                              "/repos/corp/web/deployments/1", "/repos/corp/deployments", "/repos/a/b/actions/workflows/1/dispatches/x"])
        if r == 3:
            return self.pick([f"/v1/projects/p:{self.pick(v.gcp_verbs)}", f"/v3/projects/p/x:{self.pick(v.gcp_verbs)}",
                              "/v1/projects/p", "/v1/projects/p:setIamPolicy:extra", f"/compute/v1/projects/p/global/{self.pick(v.gcp_resources)}",
                              f"/compute/v1/projects/p/global/{self.pick(v.gcp_resources)}/fw-1"])
        if r == 4:
            return self.pick(["/v1/projects/p/instances/i/export", "/sql/v1beta4/projects/p/instances/i/export", "/export", "/v1/export/"])
        if r == 5:
            mount = self.pick(v.vault_mounts)
            return self.pick([f"/v1/{mount}/data/prod/db", f"/v1/{mount}", f"/v1/{mount}/", f"/v2/{mount}/x", f"/v1/{mount}/policies"])
        if r == 6:
            return self.pick(["/", "", "/?", "//", "/v1", "/mcp", "/api", "/" + "a/" * 40])
        if r == 7:
            return "/" + "/".join(self.pick(["namespaces", ns, res, "x", "deployments", "secrets", "export"]) for _ in range(self.r.randrange(1, 8)))
        if r == 8 and v.paths:
            p = self.pick(v.paths)
            return self.pick([p + "/", p.upper(), p + "/extra", "/" + p, p.rstrip("/").rsplit("/", 1)[0], p + "?x=1"])
        if r == 9:
            grp = "/api/v1"
            return f"{grp}/namespaces/{ns}/configmaps/x/namespaces/{self.pick(v.namespaces)}/{self.pick(v.k8s_resources)}"
        if r == 10:
            return "/" + self.pick(UNICODE_STRINGS) + "/v1/exports"
        return "/v1/" + self.pick(["exports", "reports/export", "dumps", "query", "deployments", "config", "things"])

    def query(self):
        v = self.v
        q = {}
        for _ in range(self.r.randrange(0, 4)):
            k = self.pick(["Action", "PolicyArn", "limit", "IpPermissions.1.IpRanges.1.CidrIp", "CidrIp", "Version", "format", "Action"])
            if k == "Action":
                val = self.pick(v.aws_actions)
            elif k == "PolicyArn":
                val = self.pick(v.policy_arns)
            elif k == "limit":
                val = self.pick(EDGE_NUMBER_STRINGS)
            elif "Cidr" in k:
                val = self.pick(v.cidrs)
            else:
                val = self.pick(["csv", "2016-11-15", ""])
            q.setdefault(k, []).append(val)
        return q

    def body(self, host, path):
        v = self.v
        b = {}
        keys = self.r.sample(
            ["Action", "PolicyArn", "policy", "roleRef", "sourceRanges", "destination", "table", "limit", "environment",
             "inputs", "data", "stringData", "format"], self.r.randrange(0, 4))
        for k in keys:
            if k == "Action":
                b[k] = self.pick(v.aws_actions)
            elif k == "PolicyArn":
                b[k] = self.pick(v.policy_arns)
            elif k == "policy":
                b[k] = {"bindings": [{"role": self.pick(v.roles), "members": ["user:x"]} for _ in range(self.r.randrange(0, 3))]}
            elif k == "roleRef":
                b[k] = {"kind": "ClusterRole", "name": self.pick(v.roles)}
            elif k == "sourceRanges":
                b[k] = [self.pick(v.cidrs) for _ in range(self.r.randrange(0, 3))]
            elif k == "destination":
                b[k] = {"uri": self.pick(v.destinations), "credentials": {"key": "AKIA..."}}
            elif k == "table":
                b[k] = self.pick(v.tables)
            elif k == "limit":
                b[k] = self.number() if self.chance(0.8) else self.pick(EDGE_NUMBER_STRINGS)
            elif k == "environment":
                b[k] = self.pick(v.environments)
            elif k == "inputs":
                b[k] = {"environment": self.pick(v.environments)}
            elif k in ("data", "stringData"):
                b[k] = {"password": "hunter2"}
            else:
                b[k] = "csv"
        if path in self.v.paths and self.chance(0.5):
            # The library's routed paths read these: give them edge-case values often.
            b.setdefault("table", self.pick(self.v.tables))
            b["limit"] = self.number() if self.chance(0.8) else self.pick([False, None, "1001", [1001]])
        return b

    def jsonrpc_body(self):
        v = self.v
        method = self.pick(v.mcp_methods) if self.chance(0.4) else "tools/call"
        body = {"jsonrpc": "2.0", "id": self.pick([1, 7, "abc", None, Raw("1.50"), Raw("1e308")]), "method": method}
        if method == "tools/call" or self.chance(0.2):
            params = {}
            if self.chance(0.93):
                params["name"] = self.pick(v.mcp_tools)
            if self.chance(0.85):
                args = {}
                for arg, values in v.mcp_args.items():
                    if self.chance(0.6):
                        args[arg] = self.pick(values + ["orders", "roles/viewer"])
                if self.chance(0.3):
                    args[self.pick(["url", "token", "cmd", "deployment", "replicas", "id"])] = self.pick(["x", Raw("0"), Raw("-0"), "s3cr3t"])
                params["arguments"] = args
            body["params"] = params
        return body

    # -- the jsonrpc view, as filter/src/input.rs jsonrpc_view builds it
    @staticmethod
    def jsonrpc_view(body):
        if not isinstance(body, dict) or body.get("jsonrpc") != "2.0" or "method" not in body:
            return None
        view = {"method": body["method"]}
        params = body.get("params")
        if isinstance(params, dict):
            if "name" in params:
                view["tool"] = params["name"]
            if "arguments" in params:
                view["arguments"] = params["arguments"]
        return view

    def agent(self):
        return {"id": self.pick(self.v.agents), "source": self.pick(["mtls", "jwt", "header"]),
                "owner": "alice@corp.example", "claims": {}, "acts_for": []}

    def coherent(self):
        """A host and a path that the library routes together."""
        v = self.v
        r = self.r.randrange(6)
        if r < 2 and v.host_paths:
            h = self.pick(sorted(v.host_paths))
            return h, self.pick(v.host_paths[h])
        if r == 2 and v.k8s_hosts:
            ns, res = self.pick(v.namespaces), self.pick(v.k8s_resources)
            grp = self.pick(["/api/v1", "/apis/apps/v1", "/apis/rbac.authorization.k8s.io/v1", "/apis/networking.k8s.io/v1"])
            return self.pick(v.k8s_hosts), f"{grp}/namespaces/{ns}/{res}" + self.pick(["", "/web"])
        if r == 3 and v.github_hosts:
            return self.pick(v.github_hosts), self.pick(["/repos/corp/web/deployments", "/repos/corp/web/actions/workflows/ci.yml/dispatches"])
        if r == 4 and v.aws_hosts:
            return self.pick(v.aws_hosts), "/"
        if v.gcp_hosts:
            return self.pick(v.gcp_hosts), self.path()
        return self.host(), self.path()

    def fresh(self):
        """A well-formed input synthesised from the library's vocabulary."""
        if self.chance(0.5):
            host, path = self.coherent()
            method = self.pick(["POST", "POST", "PUT", "PATCH", "DELETE", "GET", "HEAD"])
        else:
            host = self.host()
            method = self.method()
            path = self.path(host)
        req = {"id": f"req-{self.r.randrange(10**6)}", "method": method, "scheme": "https", "host": host, "port": 443,
               "path": path, "query": self.query(), "headers": {"content-type": "application/json"}}
        if self.chance(0.2):
            req["headers"]["x-amz-target"] = self.pick(self.v.amz_targets)
        if self.chance(0.25):
            body = self.jsonrpc_body()
            req["host"] = self.pick(["mcp.example.com", host])
            req["method"] = "POST" if self.chance(0.9) else method
            req["path"] = "/mcp" if self.chance(0.7) else path
        elif method in ("POST", "PUT", "PATCH", "DELETE") or self.chance(0.2):
            body = self.body(host, path)
        else:
            body = None
        req["body_size"] = self.r.randrange(0, 5000)
        req["body_sha256"] = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        req["digest"] = "sha256:" + "ab" * 32
        if body is not None:
            req["body"] = body
            view = self.jsonrpc_view(body)
            if view is not None:
                req["jsonrpc"] = view
        return {"request": req, "agent": self.agent()}

    # -- mutations (each returns the new input; may return a non-dict input)
    def _req(self, inp):
        if not isinstance(inp, dict):
            return None
        req = inp.get("request")
        return req if isinstance(req, dict) else None

    def m_host(self, inp):
        req = self._req(inp)
        if req is None:
            return inp
        h = req.get("host") if isinstance(req.get("host"), str) else self.pick(self.v.hosts)
        r = self.r.randrange(8)
        req["host"] = [self.host(), h.upper(), h + ".", h + ":443", " " + h, h.replace(".", "\u3002"), self.mistyped(h), h.title()][r]
        return inp

    def m_method(self, inp):
        req = self._req(inp)
        if req is not None:
            m = self.method()
            req["method"] = self.pick([m, m.lower(), self.mistyped(m)]) if self.chance(0.4) else m
        return inp

    def m_path(self, inp):
        req = self._req(inp)
        if req is not None:
            req["path"] = self.path(req.get("host")) if self.chance(0.85) else self.mistyped(req.get("path"))
        return inp

    def m_query(self, inp):
        req = self._req(inp)
        if req is None:
            return inp
        r = self.r.randrange(6)
        if r < 3:
            req["query"] = self.query()
        elif r == 3:
            q = req.get("query") if isinstance(req.get("query"), dict) else {}
            k = self.pick(["Action", "limit", "PolicyArn", "CidrIp"])
            q[k] = self.pick([self.pick(self.v.aws_actions), [], [self.number()], ["0.0.0.0/0"], [None], {"0": "x"},
                              self.pick(EDGE_NUMBER_STRINGS), [self.pick(EDGE_NUMBER_STRINGS), "1"], False])
            req["query"] = q
        else:
            req["query"] = self.mistyped({})
        return inp

    def m_body(self, inp):
        req = self._req(inp)
        if req is None:
            return inp
        body = req.get("body")
        if not isinstance(body, dict):
            body = self.body(req.get("host"), req.get("path"))
        r = self.r.randrange(7)
        if r == 0:
            body["limit"] = self.number()
        elif r == 1:
            body["limit"] = self.pick([False, None, True, "1001", [1001], {"n": 1}, Raw("0")])
        elif r == 2 and body:
            k = self.pick(sorted(body))
            body[k] = self.mistyped(body[k] if isinstance(body[k], str) else None)
        elif r == 3:
            body = self.pick([[], "text", Raw("1e308"), None, True])
        elif r == 4:
            body["table"] = self.pick(self.v.tables + [Str("users", "ascii"), self.unicode_str("users")])
        elif r == 5:
            body["destination"] = self.pick([{"uri": self.pick(self.v.destinations)}, {"uri": self.number()}, "s3://corp-analytics", []])
        else:
            body = self.body(req.get("host"), req.get("path"))
        req["body"] = body
        return inp

    def m_jsonrpc(self, inp):
        req = self._req(inp)
        if req is None:
            return inp
        r = self.r.randrange(8)
        if r < 3 or not isinstance(req.get("jsonrpc"), dict):
            body = self.jsonrpc_body()
            req["body"] = body
            view = self.jsonrpc_view(body)
            if view is None:
                req.pop("jsonrpc", None)
            else:
                req["jsonrpc"] = view
            return inp
        view = req["jsonrpc"]
        if r == 3:
            view["tool"] = self.mistyped(view.get("tool"))
        elif r == 4:
            view["arguments"] = self.pick([[], "table=users", None, {"table": self.mistyped("users")},
                                           {"table": ["users"]}, {"role": {"x": 1}}, Raw("1.50")])
        elif r == 5:
            view["method"] = self.mistyped(view.get("method"))
        elif r == 6:
            view.pop(self.pick(["tool", "arguments", "method"]), None)
        else:
            view["tool"] = self.unicode_str(view.get("tool") if isinstance(view.get("tool"), str) else "db.query")
        return inp

    def m_missing(self, inp):
        if not isinstance(inp, dict):
            return inp
        req = self._req(inp)
        r = self.r.randrange(10)
        if r == 0:
            inp.pop("request", None)
        elif r == 1:
            inp.pop("agent", None)
        elif req is not None and req:
            req.pop(self.pick(sorted(req)), None)
        return inp

    def m_mistype(self, inp):
        r = self.r.randrange(12)
        if r == 0:
            return self.pick([[], "request", None, Raw("1"), [inp]])
        if not isinstance(inp, dict):
            return inp
        if r == 1:
            inp["request"] = self.mistyped(None)
            return inp
        req = self._req(inp)
        if req is not None and req:
            k = self.pick(sorted(req))
            req[k] = self.mistyped(req[k] if isinstance(req[k], str) else None)
        return inp

    def m_agent(self, inp):
        if not isinstance(inp, dict):
            return inp
        a = inp.get("agent") if isinstance(inp.get("agent"), dict) else self.agent()
        r = self.r.randrange(4)
        if r == 0:
            a["id"] = self.mistyped(a.get("id"))
        elif r == 1:
            a["id"] = self.pick(self.v.agents)
        elif r == 2:
            a = self.mistyped(None)
        else:
            a["claims"] = {"sub": self.unicode_str("x"), "n": self.number()}
        inp["agent"] = a
        return inp

    def m_header(self, inp):
        req = self._req(inp)
        if req is not None:
            hs = req.get("headers") if isinstance(req.get("headers"), dict) else {}
            hs["x-amz-target"] = self.pick(self.v.amz_targets) if self.chance(0.7) else self.mistyped("secretsmanager.GetSecretValue")
            req["headers"] = hs if self.chance(0.9) else self.mistyped(None)
        return inp

    def m_unicode(self, inp):
        req = self._req(inp)
        if req is not None:
            k = self.pick(["host", "path", "method"])
            cur = req.get(k) if isinstance(req.get(k), str) else ""
            req[k] = self.unicode_str(cur)
        return inp

    def m_dup(self, inp):
        """A duplicated key, in `request` or in the body: engines may keep the first or
        the last value (or refuse the text)."""
        req = self._req(inp)
        if req is None:
            return inp
        if self.chance(0.5) and isinstance(req.get("body"), dict) and req["body"]:
            body = req["body"]
            k = self.pick(sorted(body))
            pairs = list(body.items()) + [(k, self.mistyped(body[k] if isinstance(body[k], str) else None))]
            req["body"] = Dup(pairs)
        else:
            k = self.pick(["host", "method", "path"])
            alt = {"host": self.host(), "method": self.method(), "path": self.path()}[k]
            pairs = list(req.items())
            if self.chance(0.5):
                pairs = [(k, alt)] + pairs
            else:
                pairs = pairs + [(k, alt)]
            inp["request"] = Dup(pairs)
        return inp

    # -- one input
    def one(self, i):
        """The i-th input: (origin label, JSON bytes)."""
        v = self.v
        r = self.r.random()
        if v.seeds and (i < len(v.seeds)):
            label, base = v.seeds[i]
            return label, to_bytes(base)
        if v.seeds and r < 0.35:
            label, base = self.pick(v.seeds)
            inp = copy.deepcopy(base)
            label = "mut:" + label
        else:
            inp = self.fresh()
            label = "gen"
        n = self.r.choice([0, 1, 1, 2, 2, 3, 4]) if label == "gen" else self.r.choice([1, 1, 2, 3])
        ops = []
        for _ in range(n):
            before = len(ops)
            op = self.pick([self.m_host, self.m_method, self.m_path, self.m_query, self.m_body, self.m_jsonrpc,
                            self.m_missing, self.m_mistype, self.m_agent, self.m_header, self.m_unicode, self.m_dup])
            if isinstance(inp, dict) and any(isinstance(x, Dup) for x in inp.values()) and op is not self.m_dup:
                continue  # Dup objects are final: mutate before duplicating
            if isinstance(inp, dict) and isinstance(inp.get("request"), dict) and isinstance(inp["request"].get("body"), Dup):
                continue
            inp = op(inp)
            ops.append(op.__name__[2:])
        if ops:
            label += "+" + ",".join(ops)
        return label, to_bytes(inp)


def generate(policy_dir, count, seed):
    """`count` inputs as (label, bytes), deterministic for (policy_dir contents, count, seed)."""
    vocab = Vocab(policy_dir)
    g = Gen(vocab, seed)
    return [g.one(i) for i in range(count)]
