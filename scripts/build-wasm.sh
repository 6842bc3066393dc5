#!/usr/bin/env bash
# Build the filter modules the tests and the demo load:
#   target/wasm32-wasip1/release/airlock_filter.wasm        the filter as shipped
#   target/wasm32-wasip1/release/airlock_filter.opt.wasm    the same module after
#       `wasm-opt -O3` (binaryen, Debian package `binaryen`), when wasm-opt is installed:
#       20 % smaller and ~8 % less Envoy CPU per request (docs/benchmarks.md). The tests
#       load the unoptimised file; run them against this one with
#       AIRLOCK_WASM=$PWD/target/wasm32-wasip1/release/airlock_filter.opt.wasm.
#   target/wasm32-wasip1/release/airlock_filter_fault.wasm  test-only copy with the
#       `fault-injection` feature (`x-airlock-fault: panic` makes it panic), used by
#       tests/tests/e2e_vm_panic.rs to prove Envoy fails closed. Never deploy it.
#
# Both feature sets write the same cdylib file, so the fault build goes first and the
# shipped build last (cargo rebuilds the filter crate alone on each switch, seconds);
# the script then checks the shipped module is not the fault-injecting one.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
OUT="target/wasm32-wasip1/release"

cargo build -p airlock-filter --target wasm32-wasip1 --release --features fault-injection
cp "$OUT/airlock_filter.wasm" "$OUT/airlock_filter_fault.wasm.tmp"
mv "$OUT/airlock_filter_fault.wasm.tmp" "$OUT/airlock_filter_fault.wasm"

cargo build -p airlock-filter --target wasm32-wasip1 --release

if cmp -s "$OUT/airlock_filter.wasm" "$OUT/airlock_filter_fault.wasm"; then
  echo "build-wasm: $OUT/airlock_filter.wasm is the fault-injection build; refusing" >&2
  rm -f "$OUT/airlock_filter.wasm"
  exit 1
fi
if [ "$OUT/airlock_filter.opt.wasm" -nt "$OUT/airlock_filter.wasm" ]; then
  : # up to date
elif command -v wasm-opt >/dev/null 2>&1; then
  # The features rustc enables by default for wasm32-wasip1; wasm-opt must keep them.
  wasm-opt -O3 --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext \
    --enable-mutable-globals --enable-multivalue --enable-reference-types \
    "$OUT/airlock_filter.wasm" -o "$OUT/airlock_filter.opt.wasm.tmp"
  mv "$OUT/airlock_filter.opt.wasm.tmp" "$OUT/airlock_filter.opt.wasm"
else
  echo "build-wasm: wasm-opt not found (apt-get install binaryen): no airlock_filter.opt.wasm" >&2
fi
ls -l "$OUT"/airlock_filter*.wasm
