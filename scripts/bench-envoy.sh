#!/usr/bin/env bash
# The hot-path benchmark (issue #6), one command: real Envoy with one worker, listeners
# with no filter / an empty Wasm filter / the Airlock filter side by side, in front of
# Envoy direct_response and nginx; wrk (closed loop) and a fixed-rate open-loop generator;
# the approve-required path against the real approval service. About 4 minutes.
#
#   bash scripts/bench-envoy.sh [--seconds N] [--rounds N] [--rate N]
#
# Installs what it needs, idempotently: wrk, nginx and binaryen (Debian packages), Envoy and the
# wasm target (scripts/setup.sh). Builds the filter module (release), the approval
# service and the harness (tests/src/bin/airlock-bench.rs, release). Output is printed
# and kept in target/bench/. Method and recorded results: docs/benchmarks.md.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
say() { printf 'bench: %s\n' "$*"; }

missing=()
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
[ -x /usr/sbin/nginx ] || [ -x /usr/bin/nginx ] || missing+=(nginx-light)
command -v wasm-opt >/dev/null 2>&1 || missing+=(binaryen)
if [ "${#missing[@]}" -gt 0 ]; then
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || { say "need ${missing[*]} (apt-get install); not root and no sudo"; exit 1; }
    sudo="sudo"
  fi
  say "apt-get install ${missing[*]}"
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

bash scripts/setup.sh | grep -v ': present$' || true

say "building the filter module, the approval service and the harness (release)"
cargo build -q -p airlock-filter --target wasm32-wasip1 --release
cargo build -q -p airlock-approval-svc --release
cargo build -q -p airlock-tests --release --bin airlock-bench
# The wasm-opt -O3 build (as scripts/build-wasm.sh makes it) runs side by side as
# "airlock, alt module"; rebuilt only when the module changed.
W=target/wasm32-wasip1/release
if [ ! "$W/airlock_filter.opt.wasm" -nt "$W/airlock_filter.wasm" ]; then
  say "wasm-opt -O3 (about a minute)"
  wasm-opt -O3 --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext \
    --enable-mutable-globals --enable-multivalue --enable-reference-types \
    "$W/airlock_filter.wasm" -o "$W/airlock_filter.opt.wasm.tmp"
  mv "$W/airlock_filter.opt.wasm.tmp" "$W/airlock_filter.opt.wasm"
fi
export AIRLOCK_BENCH_ALT_WASM="${AIRLOCK_BENCH_ALT_WASM:-$ROOT/$W/airlock_filter.opt.wasm}"

mkdir -p target/bench
out="target/bench/envoy-$(date -u +%Y%m%dT%H%M%SZ).txt"
export AIRLOCK_BIN="${AIRLOCK_BIN:-$ROOT/target/release/airlock}"
# timeout: a hard bound on the whole run, whatever happens.
timeout --kill-after=10 600 target/release/airlock-bench "$@" | tee "$out"
say "kept in $out"
