#!/usr/bin/env bash
# Build the filter modules the tests, the demo and the benchmark load. The module is the
# cdylib crate airlock-filter-wasm (filter/wasm/, the proxy-wasm glue over the
# airlock-filter core); cargo writes it as airlock_filter_wasm.wasm, and this script
# publishes it under the names every consumer uses:
#   target/wasm32-wasip1/release/airlock_filter.opt.wasm    THE SHIPPED MODULE: cargo's
#       release output after `wasm-opt -O3` (binaryen, Debian package `binaryen`, installed
#       by scripts/setup.sh), which also drops the name section. Smaller and faster in
#       Envoy (docs/benchmarks.md). tests/src/wasm.rs loads it while it is newer than
#       cargo's output (after a plain `cargo build` the unoptimised module is loaded
#       instead, never a stale optimised one).
#   target/wasm32-wasip1/release/airlock_filter.wasm        cargo's output, unoptimised,
#       with function names (readable stack traces in wasm tools).
#   target/wasm32-wasip1/release/airlock_filter_fault.wasm  test-only copy with the
#       `fault-injection` feature (`x-airlock-fault: panic` makes it panic), used by
#       tests/tests/e2e/vm_panic.rs to prove Envoy fails closed. Never deploy it.
#       `--no-fault` skips it (the demo and the benchmark do not need it).
#
# Both feature sets write the same cdylib file, so the fault build goes first and the
# shipped build last (the core keeps one build per feature set; only the thin crate is
# rebuilt and relinked on each switch); the script then checks the shipped module is not
# the fault-injecting one.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# The workspace builds regorus with Airlock's RVM fixes (instant when up to date).
bash scripts/patch-regorus.sh >/dev/null
OUT="target/wasm32-wasip1/release"
CARGO_OUT="$OUT/airlock_filter_wasm.wasm"
fault=1
[ "${1:-}" = "--no-fault" ] && fault=""

if [ -n "$fault" ]; then
  cargo build -p airlock-filter-wasm --target wasm32-wasip1 --release --features fault-injection
  cp "$CARGO_OUT" "$OUT/airlock_filter_fault.wasm.tmp"
  mv "$OUT/airlock_filter_fault.wasm.tmp" "$OUT/airlock_filter_fault.wasm"
fi

cargo build -p airlock-filter-wasm --target wasm32-wasip1 --release

if [ -f "$OUT/airlock_filter_fault.wasm" ] && cmp -s "$CARGO_OUT" "$OUT/airlock_filter_fault.wasm"; then
  echo "build-wasm: $CARGO_OUT is the fault-injection build; refusing" >&2
  rm -f "$OUT/airlock_filter.wasm" "$OUT/airlock_filter.opt.wasm"
  exit 1
fi
# -p keeps cargo's time stamp, which tests/src/wasm.rs and the check below compare.
if ! cmp -s "$CARGO_OUT" "$OUT/airlock_filter.wasm"; then
  cp -p "$CARGO_OUT" "$OUT/airlock_filter.wasm.tmp"
  mv "$OUT/airlock_filter.wasm.tmp" "$OUT/airlock_filter.wasm"
fi
if [ "$OUT/airlock_filter.opt.wasm" -nt "$CARGO_OUT" ]; then
  : # up to date
else
  if ! command -v wasm-opt >/dev/null 2>&1; then
    echo "build-wasm: wasm-opt not found: run scripts/setup.sh (apt-get install binaryen)" >&2
    exit 1
  fi
  # The features rustc enables by default for wasm32-wasip1; wasm-opt must keep them.
  # -O3 rather than -Oz: measured smaller by 1 % only, and slower in Envoy (docs/benchmarks.md).
  features=(--enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext
    --enable-mutable-globals --enable-multivalue --enable-reference-types)
  # Keep only the exports this HTTP filter uses. The SDK exports every proxy-wasm
  # callback, and Envoy calls each exported one — response headers and body, log, done —
  # on every request; each call into the VM costs ~1 µs in V8 (docs/benchmarks.md).
  # Absent ones get the host's default (continue). proxy_on_request_trailers stays: it
  # decides requests whose stream ends with trailers (never let them pass undecided).
  graph="$OUT/airlock_filter.exports.json"
  {
    printf '['
    sep=""
    for e in memory _initialize proxy_abi_version_0_2_1 proxy_on_memory_allocate \
      proxy_on_vm_start proxy_on_configure proxy_on_tick proxy_on_context_create \
      proxy_on_request_headers proxy_on_request_body proxy_on_request_trailers \
      proxy_on_http_call_response proxy_on_delete; do
      printf '%s{"name": "%s", "root": true, "export": "%s"}' "$sep" "$e" "$e"
      sep=", "
    done
    printf ']\n'
  } > "$graph"
  wasm-metadce "${features[@]}" -f "$graph" "$CARGO_OUT" -o "$OUT/airlock_filter.dce.wasm.tmp" >/dev/null
  wasm-opt -O3 "${features[@]}" "$OUT/airlock_filter.dce.wasm.tmp" -o "$OUT/airlock_filter.opt.wasm.tmp"
  rm -f "$OUT/airlock_filter.dce.wasm.tmp"
  mv "$OUT/airlock_filter.opt.wasm.tmp" "$OUT/airlock_filter.opt.wasm"
fi
ls -l "$OUT"/airlock_filter*.wasm
