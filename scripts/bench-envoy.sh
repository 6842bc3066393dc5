#!/usr/bin/env bash
# The hot-path benchmark (issues #6 and #12), one command: real Envoy with one worker,
# listeners with no filter / an empty Wasm filter / the Airlock filter (library: cache hit
# and every request evaluated; a generated 9x library, every request evaluated) / ext_authz
# to a trivial local authorizer, side by side, in front of Envoy direct_response and nginx;
# wrk (closed loop) and a fixed-rate open-loop generator; the approve route with a 1 KB and
# a 64 KB body; the approve-required path against the real approval service (at a fixed
# rate, 100 sequential, 50 concurrent agents); Envoy's resident memory per listener
# configuration at one and two workers; and at the end one table of issue 12's targets
# (measured, distance, met / not met). About 7 minutes with the defaults.
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
# timeout: a hard bound on the whole run, whatever happens (the defaults take ~7 minutes;
# --seconds 30 --rounds 10 would not fit, and is not meant to).
timeout --kill-after=10 900 target/release/airlock-bench "$@" | tee "$out"
say "kept in $out"
