#!/usr/bin/env python3
"""Writes the committed seed corpora under fuzz/corpus/<target>/ (a few valid and invalid
examples per target; libFuzzer mutates from there). Separator between parts: "\\n--\\n".

    python3 fuzz/seeds.py [path/to/airlock]   # the CLI signs the bundle seeds

Signatures are computed here the way the protocol defines them (docs/protocol.md), with
the fuzz harnesses' fixed keys and clock (1_800_000_000), so seeds start past the checks.
"""
import base64, gzip, hashlib, hmac, io, json, os, shutil, subprocess, sys, tarfile, tempfile

ROOT = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(ROOT, "corpus")
KEY = b"0123456789abcdef0123456789abcdef"
KEY_B64 = base64.b64encode(KEY).decode()
OLD_KEY = b"abcdefghijklmnopqrstuvwxyz012345"
NOW = 1_800_000_000
SEP = b"\n--\n"


def write(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def join(*parts):
    return SEP.join(p.encode() if isinstance(p, str) else p for p in parts)


def minimal_config(**extra):
    c = {
        "policy": {"modules": {"a.rego": "package airlock\ndecision := {\"effect\": \"allow\"}"}},
        "identity": {"source": "header", "header": "X-Airlock-Agent"},
        "approval_service": {"cluster": "airlock_approval", "signing": {"key_id": "k1", "key_base64": KEY_B64}},
    }
    c.update(extra)
    return c


def filter_config():
    write("filter_config", "minimal.json", json.dumps(minimal_config()))
    write("filter_config", "full.json", json.dumps(minimal_config(
        identity={"source": "jwt", "jwt": {"metadata_namespace": "envoy.filters.http.jwt_authn", "payload_key": "payload",
                                            "id_claim": "sub", "owner_claim": "owner", "claims": ["team"]},
                  "agents": {"bot": {"owner": "alice@corp.example"}}},
        request={"max_body_bytes": 1024, "significant_headers": ["Content-Type", "x-tenant"],
                 "credential_headers": ["x-api-key"], "input_headers": ["accept"], "upstream_scheme": "https",
                 "method_override": "apply", "max_jsonrpc_batch": 4, "jsonrpc_answers": True},
        decision_log={"flush_ms": 500, "max_queue": 100, "max_batch": 10},
        decision_cache={"max_entries": 0})))
    b = minimal_config()
    b["policy"] = {"bundle": {"base64": "H4sIAAAAAAAA/wMAAAAAAAAAAAA="}, "bundle_keys": [{"key_id": "k1", "key_base64": KEY_B64}]}
    write("filter_config", "bundle.json", json.dumps(b))
    write("filter_config", "mtls-previous-key.json", json.dumps(minimal_config(
        identity={"source": "mtls"},
        approval_service={"cluster": "c", "authority": "approvals.internal", "timeout_ms": 500, "hold_ms": 20000,
                          "signing": {"key_id": "k2", "key_base64": KEY_B64,
                                      "previous": {"key_id": "k1", "key_base64": base64.b64encode(OLD_KEY).decode()}}})))
    write("filter_config", "bad-unknown-field.json", json.dumps(minimal_config(request={"max_body": 1})))
    write("filter_config", "bad-short-key.json", '{"policy": {"modules": {"a.rego": "package x"}}, "identity": {"source": "mtls"}, '
          '"approval_service": {"cluster": "c", "signing": {"key_id": "k", "key_base64": "c2hvcnQ="}}}')


def request_target():
    for i, s in enumerate(["/v1/items/9?x=1&y=%20z", "/a%2Fb", "/a/../b", "/caf%C3%A9", "/a?x=%00", "//x", "/a;p=1",
                           "API.Example.com:8443", "[::1]:80", "example.com.", "user@host", "a..b"]):
        write("request_target", f"seed-{i}", s)


def request_input():
    def req(method, path, extra, body=b""):
        head = f":method: {method}\n:path: {path}\n:authority: api.example.com\n:scheme: https\nx-airlock-agent: bot\n{extra}"
        return join(head, body)
    rpc = lambda name, i=1: {"jsonrpc": "2.0", "id": i, "method": "tools/call", "params": {"name": name, "arguments": {"q": "x"}}}
    write("request_input", "get-public", req("GET", "/public/readme?lang=en", "x-request-id: r1\n"))
    write("request_input", "get-private", req("GET", "/private/x", ""))
    write("request_input", "override", req("GET", "/public/a", "x-http-method-override: DELETE\n"))
    write("request_input", "mcp-search", req("POST", "/mcp", "content-type: application/json\n", json.dumps(rpc("search")).encode()))
    write("request_input", "mcp-delete", req("POST", "/mcp", "content-type: application/json\n", json.dumps(rpc("delete")).encode()))
    write("request_input", "mcp-batch", req("POST", "/mcp", "content-type: application/json\n",
                                            json.dumps([rpc("search", 1), rpc("delete", 2)]).encode()))
    write("request_input", "export", req("POST", "/v1/exports", "content-type: application/json\ncontent-length: 22\n",
                                         b'{"ssn": "1", "n": 1.50}'))
    write("request_input", "form", req("POST", "/v1/items", "content-type: application/x-www-form-urlencoded\n", b"_method=DELETE&a=1"))
    write("request_input", "bad-json", req("POST", "/mcp", "content-type: application/json\n", b'{"a":1,"a":2}'))


def policy_decision():
    for i, s in enumerate([
        '{"effect": "allow"}',
        '{"effect": "approve", "reason": "export", "rule": "pii", "risk": "high", "approvers": {"groups": ["g"], "quorum": 2},'
        ' "expires_in": "15m", "credential": "s3", "redact": ["request.body.ssn"], "reuse": "window:10m", "hold": "30s", "shadow": true}',
        '{"effect": "deny", "reason": "no"}',
        '{"effect": "approve", "approvers": {"quorum": 0}}',
        '{"effect": "approve", "reuse": "window:1000years"}',
        '{"effect": "permit"}', '"allow"', '[1, 2.50, -0, 1e3]',
    ]):
        write("policy_decision", f"seed-{i}", s)


def bundle_archive(cli):
    files = {
        ".manifest": json.dumps({"revision": "r1", "roots": ["airlock"]}),
        "airlock/policy.rego": "package airlock\n\ndecision := {\"effect\": \"allow\"}\n",
        "airlock/data.json": '{"limits": {"max": 1.50}}',
    }
    # Mode 2: files the harness builds and signs.
    write("bundle_archive", "files", b"\x02" + join(*[f"{n}\n{c}" for n, c in files.items()]))
    write("bundle_archive", "files-unsafe", b"\x02" + join("../x.rego\npackage x", "a//b.json\n{}"))
    # Mode 1: a plain tar.
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as t:
        for n, c in list(files.items())[:2]:
            info = tarfile.TarInfo(n)
            info.size = len(c)
            info.mtime = 0
            t.addfile(info, io.BytesIO(c.encode()))
    # Two files of one block each, then the two-block end marker; not the record padding.
    write("bundle_archive", "plain-tar", b"\x01" + buf.getvalue()[: 4 * 512 + 1024])
    # Mode 0: a bundle signed by the CLI, and one signed with another key.
    if cli:
        with tempfile.TemporaryDirectory() as d:
            src = os.path.join(d, "src")
            for n, c in files.items():
                p = os.path.join(src, n)
                os.makedirs(os.path.dirname(p), exist_ok=True)
                with open(p, "w") as f:
                    f.write(c)
            out = os.path.join(d, "b.tar.gz")
            env = dict(os.environ, FUZZ_KEY=KEY_B64, OTHER_KEY=base64.b64encode(OLD_KEY).decode())
            subprocess.run([cli, "bundle", "build", "-o", out, src], check=True, env=env, capture_output=True)
            for name, var in [("signed.tar.gz", "FUZZ_KEY"), ("signed-other-key.tar.gz", "OTHER_KEY")]:
                o = os.path.join(d, name)
                subprocess.run([cli, "bundle", "sign", "--key-id", "k1", "--key-env", var, "-o", o, out],
                               check=True, env=env, capture_output=True)
                with open(o, "rb") as f:
                    write("bundle_archive", name, b"\x00" + f.read())
    write("bundle_archive", "not-gzip", b"\x00not a gzip stream")


def sign_hex(key, msg, prefix):
    return prefix + hmac.new(key, msg.encode(), hashlib.sha256).hexdigest()


def gateway_signature():
    body = '{"approval_id": "apr_0123", "status": "pending", "retry_after": 5, "detail": "Waiting for reviewers."}'
    path = "/v1/gateway/approvals"
    ts = str(NOW)
    bh = hashlib.sha256(body.encode()).hexdigest()
    req = sign_hex(KEY, f"airlock-v1-request\n{ts}\nPOST\n{path}\n{bh}", "v1=")
    ans = sign_hex(KEY, f"airlock-v1-response\n{ts}\n200\n{req}\n{bh}", "v1=")
    write("gateway_signature", "signed-request", join("k1", ts, req, path, body, req, "200"))
    write("gateway_signature", "signed-answer", join("k1", ts, ans, path, body, req, "200"))
    redeem = '{"approval_id": "apr_1", "status": "redeemed", "headers": {"authorization": "Bearer minted"}}'
    write("gateway_signature", "redeem", join("k0", ts, "v1=00", "/v1/gateway/approvals/apr_1/redeem", redeem, "v1=ab", "200"))
    write("gateway_signature", "refused", join("k1", "+1800000000", "v1=zz", path,
                                               '{"type": "urn:airlock:problem:policy-refused", "detail": "quorum"}', "", "422"))
    write("gateway_signature", "denied", join("k1", ts, "", path,
                                              '{"approval_id": "apr_2", "status": "denied", "comment": "no\\u0007", "denied_until": "2027-01-01T00:00:00Z"}',
                                              "v1=1", "200"))


def slack_signature():
    secret = b"8f742231b10e8888abcd99yyyzzz85a5"
    payload = {"type": "block_actions", "api_app_id": "A1", "team": {"id": "T1"}, "user": {"id": "U1", "team_id": "T1"},
               "actions": [{"action_id": "approve", "value": "apr_1", "action_ts": "1.2"}],
               "response_url": "https://hooks.slack.com/actions/x", "container": {"channel_id": "C1", "message_ts": "1.1"}}
    from urllib.parse import quote
    body = "payload=" + quote(json.dumps(payload))
    ts = str(NOW)
    write("slack_signature", "signed", join(ts, sign_hex(secret, f"v0:{ts}:{body}", "v0="), body))
    write("slack_signature", "stale", join(str(NOW - 301), "v0=00", body))
    write("slack_signature", "two-payloads", join(" " + ts, "v0=", "payload=%7B%7D&payload=%7B%7D"))


def reviewer_tokens():
    b64 = lambda s: base64.urlsafe_b64encode(s.encode()).rstrip(b"=").decode()
    claims = '{"iss": "https://login.example.com/", "aud": "airlock", "email": "alice@corp.example", "groups": ["data-owners"], "sub": "u1", "exp": $FUTURE, "nbf": $PAST}'
    bot = '{"iss": "https://api.botframework.com", "aud": "00000000-0000-0000-0000-0000000000b0", "serviceurl": "https://smba.trafficmanager.net/amer/", "exp": $FUTURE, "nbf": $PAST}'
    write("reviewer_tokens", "api-key", b"\x00Bearer reviewer-api-key-0123456789")
    write("reviewer_tokens", "none-alg", b"\x00Bearer " + f'{b64(chr(123) + chr(34) + "alg" + chr(34) + ":" + chr(34) + "none" + chr(34) + chr(125))}.{b64(claims)}.'.encode())
    write("reviewer_tokens", "hs256", ("\x00Bearer " + b64('{"alg":"HS256","kid":"test-key-1"}') + "." + b64(claims) + ".c2ln").encode())
    write("reviewer_tokens", "oidc-claims", b"\x01" + claims.encode())
    write("reviewer_tokens", "bot-claims", b"\x01" + bot.encode())
    write("reviewer_tokens", "oidc-no-aud", b"\x01" + claims.replace('"aud": "airlock", ', "").encode())
    write("reviewer_tokens", "header-and-claims", b"\x02" + join('{"alg":"RS256","kid":"test-key-1","crit":["x"]}', bot))


def service_bodies():
    d = "a" * 64
    write("service_bodies", "create", json.dumps({"decision_id": "dec_1", "agent": {"id": "bot", "source": "header", "owner": "alice"},
                                                  "digest": d, "hold_ms": 1000, "request": {"method": "POST"},
                                                  "policy": {"approvers": {"groups": ["g"], "quorum": 2}, "expires_in": "15m", "reuse": "once"}}))
    write("service_bodies", "redeem", json.dumps({"decision_id": "dec_1", "agent": "bot", "digest": d}))
    rec = {"decision_id": "dec_1", "time_ms": 1, "effect": "approve", "enforced": "deny", "mode": "enforce", "rule": "r",
           "reason": "why", "risk": "high", "policy_revision": "r1", "agent": "bot", "digest": d, "method": "POST",
           "host": "api.example.com", "path": "/v1/exports"}
    write("service_bodies", "decisions", json.dumps({"dropped": 2, "records": [rec]}))
    write("service_bodies", "decisions-empty-record", json.dumps({"records": [{}]}))
    write("service_bodies", "review", json.dumps({"comment": "ok"}))


if __name__ == "__main__":
    cli = sys.argv[1] if len(sys.argv) > 1 else None
    shutil.rmtree(CORPUS, ignore_errors=True)
    for f in (filter_config, request_target, request_input, policy_decision, gateway_signature, slack_signature,
              reviewer_tokens, service_bodies):
        f()
    bundle_archive(cli)
