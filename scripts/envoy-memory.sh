#!/usr/bin/env bash
# Where Envoy's memory goes with the Airlock filter (issue 12): the configuration
# `airlock init` writes (starter policy, one Wasm filter, V8), run without the filter, with
# it, with it on 2 workers, with Envoy's overload manager releasing free heap
# (`envoy.overload_actions.shrink_heap`), and without the configuration's background
# release of free memory (`memory_allocator_manager`). For each: VmRSS and Envoy's tcmalloc figures from
# the admin `/memory` endpoint (allocated = live; heap_size - allocated = free memory
# tcmalloc keeps: page heap free + thread caches). About 30 s; 127.0.0.1 only.
#
#   bash scripts/envoy-memory.sh [--wasm FILE]
#
# Needs the shipped module (scripts/build-wasm.sh) and the CLI (cargo build -p
# airlock-approval-svc); Envoy from scripts/setup.sh. Results: docs/benchmarks.md.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WASM="$ROOT/target/wasm32-wasip1/release/airlock_filter.opt.wasm"
[ "${1:-}" = "--wasm" ] && WASM="$2"
AIRLOCK="${AIRLOCK_BIN:-$ROOT/target/debug/airlock}"
ENVOY="$ROOT/.venv/bin/envoy"
for f in "$WASM" "$AIRLOCK" "$ENVOY"; do
  [ -x "$f" ] || [ -f "$f" ] || { echo "envoy-memory: missing $f (bash scripts/build-wasm.sh; cargo build -p airlock-approval-svc; bash scripts/setup.sh)" >&2; exit 1; }
done
DIR="$(mktemp -d)"
trap 'rm -rf "$DIR"' EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
ADMIN="$(free_port)"
"$AIRLOCK" init --dir "$DIR" --envoy-admin-port "$ADMIN" --envoy-listen "127.0.0.1:$(free_port)" \
  --listen "127.0.0.1:$(free_port)" >/dev/null
python3 - "$DIR" "$WASM" <<'PY'
import sys
d, wasm = sys.argv[1], sys.argv[2]
s = open(f"{d}/envoy.yaml").read()
import re
s = re.sub(r'filename: "[^"]*"', f'filename: "{wasm}"', s)
open(f"{d}/with.yaml", "w").write(s)
i = s.index("          - name: envoy.filters.http.wasm")
j = s.index("          - name: envoy.filters.http.router")
open(f"{d}/without.yaml", "w").write(s[:i] + s[j:])
open(f"{d}/shrink.yaml", "w").write(s + """
overload_manager:
  refresh_interval: 1s
  resource_monitors:
  - name: envoy.resource_monitors.fixed_heap
    typed_config:
      "@type": type.googleapis.com/envoy.extensions.resource_monitors.fixed_heap.v3.FixedHeapConfig
      max_heap_size_bytes: 1073741824
  actions:
  - name: envoy.overload_actions.shrink_heap
    triggers:
    - name: envoy.resource_monitors.fixed_heap
      threshold: {value: 0.01}
""")
k = s.index("memory_allocator_manager:")
open(f"{d}/hold.yaml", "w").write(s[:k] + s[s.index("static_resources:"):])
PY
export AIRLOCK_GATEWAY_KEY="$(cat "$DIR/keys/gateway.key")"
printf '%-34s %8s %10s %10s %10s\n' "configuration" "RSS MiB" "live MiB" "free MiB" "unmapped"
measure() {
  local label="$1" config="$2" workers="$3"
  "$ENVOY" -c "$DIR/$config" --concurrency "$workers" -l error --disable-hot-restart \
    --base-id "$((RANDOM + 1000))" >"$DIR/envoy.log" 2>&1 &
  local pid=$!
  for _ in $(seq 1 150); do
    curl -s "127.0.0.1:$ADMIN/ready" 2>/dev/null | grep -q LIVE && break
    sleep 0.1
  done
  curl -s "127.0.0.1:$ADMIN/ready" | grep -q LIVE || { cat "$DIR/envoy.log" >&2; kill "$pid"; exit 1; }
  sleep "${SETTLE:-8}"
  local rss mem
  rss="$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")"
  mem="$(curl -s "127.0.0.1:$ADMIN/memory")"
  kill "$pid"
  wait "$pid" 2>/dev/null || true
  python3 - "$label" "$rss" "$mem" <<'PY'
import json, sys
label, rss, m = sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3])
mib = lambda v: int(v) / 1048576
live = mib(m["allocated"])
free = mib(m["heap_size"]) - live - mib(m["pageheap_unmapped"])
print(f"{label:<34} {rss/1024:8.1f} {live:10.1f} {free:10.1f} {mib(m['pageheap_unmapped']):10.1f}")
PY
}
measure "no Wasm filter, 1 worker" without.yaml 1
measure "Airlock filter, 1 worker" with.yaml 1
measure "Airlock filter, 2 workers" with.yaml 2
measure "Airlock filter + shrink_heap, 1 w." shrink.yaml 1
measure "Airlock filter, no release, 1 w." hold.yaml 1
