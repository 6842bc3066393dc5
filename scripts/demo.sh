#!/usr/bin/env bash
# The main job: Envoy with the Airlock filter and the demo policy in front of a sample
# upstream, the real approval service (`airlock serve`), and a scripted agent. Installs
# what it needs first.
# Pass --stay to keep everything running afterwards.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

bash scripts/setup.sh
# The shipped module (wasm-opt'd), as tests/src/wasm.rs finds it.
bash scripts/build-wasm.sh --no-fault >/dev/null
# The real approval service (`airlock`) the demo starts.
cargo build --quiet -p airlock-approval-svc
exec cargo run --quiet -p airlock-tests --bin airlock-demo -- "$@"
