#!/usr/bin/env bash
# The hot-path benchmark (issue #6), one command: real Envoy with one worker, listeners
# with no filter / an empty Wasm filter / the Airlock filter side by side, in front of
# Envoy direct_response and nginx; wrk (closed loop) and a fixed-rate open-loop generator;
# the approve-required path against the real approval service. About 4 minutes.
#
#   bash scripts/bench-envoy.sh [--seconds N] [--rounds N] [--rate N]
#
# Installs what it needs, idempotently: wrk and nginx (Debian packages), Envoy, binaryen and
# the wasm target (scripts/setup.sh). Builds the filter module (release), the approval
# service and the harness (tests/src/bin/airlock-bench.rs, release). Output is printed
# and kept in target/bench/. Method and recorded results: docs/benchmarks.md.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
say() { printf 'bench: %s\n' "$*"; }

missing=()
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
[ -x /usr/sbin/nginx ] || [ -x /usr/bin/nginx ] || missing+=(nginx-light)
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
# The shipped module: cargo release + wasm-opt (scripts/build-wasm.sh; about a minute
# when the module changed). AIRLOCK_WASM=<file> benchmarks another one instead, and
# AIRLOCK_BENCH_ALT_WASM=<file> runs a second module side by side with it.
bash scripts/build-wasm.sh --no-fault >/dev/null
cargo build -q -p airlock-approval-svc --release
cargo build -q -p airlock-tests --release --bin airlock-bench

mkdir -p target/bench
out="target/bench/envoy-$(date -u +%Y%m%dT%H%M%SZ).txt"
export AIRLOCK_BIN="${AIRLOCK_BIN:-$ROOT/target/release/airlock}"
# timeout: a hard bound on the whole run, whatever happens.
timeout --kill-after=10 600 target/release/airlock-bench "$@" | tee "$out"
say "kept in $out"
