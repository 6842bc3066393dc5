#!/usr/bin/env bash
# Build the filter modules the tests and the demo load:
#   target/wasm32-wasip1/release/airlock_filter.wasm        the filter as shipped
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
ls -l "$OUT/airlock_filter.wasm" "$OUT/airlock_filter_fault.wasm"
