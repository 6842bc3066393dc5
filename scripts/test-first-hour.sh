#!/usr/bin/env bash
# docs/first-hour.md, run: the guide's commands in its order — build, `airlock init`,
# `airlock serve`, Envoy started with the printed command, an agent's write held as
# approval-pending, `airlock approvals approve` with the printed API key, the identical
# retry reaching the upstream with a JWT signed by the generated credential key, and
# `airlock audit verify`. Only the ports differ from the guide (free ones, passed with
# the flags it names) and "your API" is a small recording server. Everything listens on
# 127.0.0.1; every wait is bounded. Called by scripts/test.sh.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

say() { printf 'first-hour: %s\n' "$*"; }
fail() { printf 'first-hour: FAILED: %s\n' "$*" >&2; exit 1; }

WORK="$ROOT/target/first-hour"
rm -rf "$WORK"
mkdir -p "$WORK"
PIDS=()
show_logs() {
  for f in "$WORK"/*.log; do
    [ -f "$f" ] || continue
    printf -- '----- %s (last 40 lines)\n' "$f" >&2
    tail -n 40 "$f" >&2
  done
}
cleanup() {
  status=$?
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  [ "$status" -eq 0 ] || show_logs
}
trap cleanup EXIT

# Four free ports: service, Envoy listener, Envoy admin, the upstream.
read -r SVC_PORT ENVOY_PORT ADMIN_PORT API_PORT < <(python3 - <<'PY'
import socket
socks = [socket.socket() for _ in range(4)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in socks])
PY
)

# "Your API": answers 200 and records each request's method, path and authorization.
cat > "$WORK/api.py" <<'PY'
import http.server, json, sys
class Api(http.server.BaseHTTPRequestHandler):
    def handle_one(self):
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        with open(sys.argv[2], "a") as log:
            log.write(json.dumps({"method": self.command, "path": self.path,
                                  "authorization": self.headers.get("authorization"),
                                  "body": body.decode()}) + "\n")
        self.send_response(200)
        self.send_header("content-type", "text/plain")
        self.end_headers()
        self.wfile.write(b"your API: done\n")
    do_GET = do_POST = handle_one
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Api).serve_forever()
PY
python3 "$WORK/api.py" "$API_PORT" "$WORK/api-requests.jsonl" >"$WORK/api.log" 2>&1 &
PIDS+=($!)

# wait_for URL SECONDS PID: until URL answers 2xx; fails at once if PID exits.
wait_for() {
  local deadline=$((SECONDS + $2))
  until curl -sf -o /dev/null "$1"; do
    kill -0 "$3" 2>/dev/null || fail "the process behind $1 exited"
    [ "$SECONDS" -lt "$deadline" ] || fail "$1 did not answer within $2 s"
    sleep 0.2
  done
}

# matches_openapi FILE METHOD PATH STATUS: FILE (an answer of the service) fits the
# schema approval-svc/src/openapi.json gives that response.
matches_openapi() {
  "$ROOT/.venv/bin/python" - "$ROOT/approval-svc/src/openapi.json" "$@" <<'PY' || fail "$2 $3 answered what its OpenAPI schema does not allow"
import json, sys
from jsonschema import Draft202012Validator
doc = json.load(open(sys.argv[1]))
answer = json.load(open(sys.argv[2]))
method, path, status = sys.argv[3:6]
schema = doc["paths"][path][method]["responses"][status]["content"]["application/json"]["schema"]
Draft202012Validator({**schema, "components": doc["components"]}).validate(answer)
PY
}

say "1. build (as the guide)"
bash scripts/setup.sh >"$WORK/setup.log" 2>&1 || fail "scripts/setup.sh (see $WORK/setup.log)"
bash scripts/build-wasm.sh --no-fault >"$WORK/build.log" 2>&1 || fail "build-wasm.sh (see $WORK/build.log)"
cargo build -p airlock-approval-svc >>"$WORK/build.log" 2>&1 || fail "cargo build (see $WORK/build.log)"
export PATH="$PWD/target/debug:$PWD/.venv/bin:$PATH"

cd "$WORK"
say "2. airlock init"
airlock init --dir airlock-local --upstream "127.0.0.1:$API_PORT" \
  --listen "127.0.0.1:$SVC_PORT" --envoy-listen "127.0.0.1:$ENVOY_PORT" --envoy-admin-port "$ADMIN_PORT" \
  --wasm "$ROOT/target/wasm32-wasip1/release/airlock_filter.opt.wasm" | tee init.out
API_KEY="$(sed -n 's/^  AIRLOCK_API_KEY=//p' init.out)"
[ -n "$API_KEY" ] || fail "init printed no AIRLOCK_API_KEY= line"
[ "$(stat -c %a airlock-local/keys/gateway.key)" = 600 ] || fail "gateway.key is not mode 0600"
if airlock init --dir airlock-local >init-again.out 2>&1; then fail "a second init overwrote the setup"; fi
grep -q "refusing to overwrite" init-again.out || fail "a second init did not say why it refused: $(cat init-again.out)"

# Fail closed: without the variable the filter refuses its configuration, so Envoy refuses it.
if env -u AIRLOCK_GATEWAY_KEY envoy --mode validate -c airlock-local/envoy.yaml >validate-without-key.log 2>&1; then
  fail "Envoy accepted envoy.yaml without AIRLOCK_GATEWAY_KEY"
fi
grep -q 'environment variable `AIRLOCK_GATEWAY_KEY` is not set' validate-without-key.log \
  || fail "Envoy without the key did not name the variable"

say "3. airlock serve, and Envoy with the printed command"
airlock serve --config airlock-local/airlock.toml >serve.log 2>&1 &
SERVE_PID=$!
PIDS+=("$SERVE_PID")
# The command init printed, verbatim (with this run's paths).
ENVOY_CMD="$(sed -n 's/^  \(AIRLOCK_GATEWAY_KEY=.*envoy -c .*\)$/\1/p' init.out)"
[ -n "$ENVOY_CMD" ] || fail "init printed no Envoy command"
# (bash runs a lone command in place: the pid is Envoy's.)
bash -c "$ENVOY_CMD" >envoy.log 2>&1 &
ENVOY_PID=$!
PIDS+=("$ENVOY_PID")
wait_for "http://127.0.0.1:$SVC_PORT/readyz" 30 "$SERVE_PID"
wait_for "http://127.0.0.1:$ADMIN_PORT/ready" 60 "$ENVOY_PID"
grep -q "airlock: configured" envoy.log || fail "the filter did not log its configuration"

AGENT=(-H 'x-airlock-agent: my-agent')
GATEWAY="http://127.0.0.1:$ENVOY_PORT"
say "4. the agent asks"
read_status="$(curl -s -o read.out -w '%{http_code}' "${AGENT[@]}" "$GATEWAY/v1/items")"
[ "$read_status" = 200 ] || fail "a read got $read_status: $(cat read.out)"
write() {
  curl -s -o "$1" -w '%{http_code}' -X POST "${AGENT[@]}" -H 'content-type: application/json' \
    -H 'authorization: Bearer the-agents-own-token' -d '{"name": "first"}' "$GATEWAY/v1/items"
}
status="$(write pending.json)"
[ "$status" = 403 ] || fail "the write got $status, not 403: $(cat pending.json)"
APPROVAL="$(python3 -c 'import json,sys; p=json.load(open(sys.argv[1])); assert p["type"]=="urn:airlock:problem:approval-pending", p; print(p["approval_id"])' pending.json)" \
  || fail "not approval-pending: $(cat pending.json)"
[ "$(grep -c '"POST"' api-requests.jsonl || true)" = 0 ] || fail "the held write reached the upstream"

say "5. the reviewer approves $APPROVAL"
export AIRLOCK_URL="http://127.0.0.1:$SVC_PORT" AIRLOCK_API_KEY="$API_KEY"
airlock approvals list --status pending >pending-list.json
grep -q "$APPROVAL" pending-list.json || fail "approvals list --status pending does not show $APPROVAL"
airlock approvals show "$APPROVAL" >show.json
airlock approvals approve "$APPROVAL" --comment "fine" >approve.json
matches_openapi pending-list.json get /v1/approvals 200
matches_openapi show.json get '/v1/approvals/{id}' 200
matches_openapi approve.json post '/v1/approvals/{id}/approve' 200
# A reader that closes the pipe at once is a normal end, not a panic (status 0).
set +e +o pipefail
airlock approvals list 2>closed-pipe.err | true
rc="${PIPESTATUS[0]}"
set -e -o pipefail
[ "$rc" = 0 ] || fail "approvals list into a closed pipe exited $rc: $(cat closed-pipe.err)"

say "6. the agent retries"
status="$(write retry.out)"
[ "$status" = 200 ] || fail "the retry got $status: $(cat retry.out)"
python3 - airlock-local/keys/credential.key api-requests.jsonl <<'PY' || fail "the upstream did not get the minted credential"
import base64, hashlib, hmac, json, sys, time
key = base64.b64decode(open(sys.argv[1]).read().strip())
posts = [json.loads(l) for l in open(sys.argv[2]) if json.loads(l)["method"] == "POST"]
assert len(posts) == 1, f"expected one POST upstream, got {posts}"
auth = posts[0]["authorization"] or ""
assert auth.startswith("Bearer ") and "the-agents-own-token" not in auth, auth
head, payload, sig = auth[len("Bearer "):].split(".")
unb64 = lambda s: base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))
want = hmac.new(key, f"{head}.{payload}".encode(), hashlib.sha256).digest()
assert hmac.compare_digest(unb64(sig), want), "JWT signature does not verify with keys/credential.key"
claims = json.loads(unb64(payload))
assert claims["sub"] == "my-agent", claims
assert claims["act"]["approvers"] == ["reviewer@example.com"], claims
assert claims["exp"] > time.time(), claims
assert posts[0]["body"] == '{"name": "first"}', posts[0]
print("first-hour: upstream got POST /v1/items with a JWT for", claims["sub"], "approved by", claims["act"]["sub"])
PY

say "7. airlock audit verify"
airlock audit verify --database airlock-local/airlock.db --key-file airlock-local/keys/audit.key >verify.json \
  || fail "audit verify: $(cat verify.json)"
say "ok: init -> serve -> Envoy -> pending -> approve -> retry with credential -> audit verified"
