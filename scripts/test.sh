#!/usr/bin/env bash
# Every test: native unit tests, the filter inside the wasmtime proxy-wasm host, and
# real Envoy end to end. Installs what it needs first (scripts/setup.sh).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

bash scripts/setup.sh

# The approval service's top-level modules import each other in no loop (issue 10).
python3 scripts/import-cycles.py

# The OpenAPI document is valid OpenAPI 3.1 (the reference validator from PyPI); that it
# lists every route is checked by the service's tests, that answers match it by
# scripts/test-first-hour.sh.
.venv/bin/openapi-spec-validator approval-svc/src/openapi.json

bash scripts/build-wasm.sh

# One format for the whole workspace (rustfmt.toml).
cargo fmt --all --check

# Lints are part of the contract: no unwrap/expect/panic outside tests.
cargo clippy -p airlock-filter --target wasm32-wasip1 --release -- -D warnings
cargo clippy -p airlock-filter-wasm --target wasm32-wasip1 --release -- -D warnings
cargo clippy -p airlock-bundle --target wasm32-wasip1 --release -- -D warnings
cargo clippy -p airlock-protocol --target wasm32-wasip1 --release -- -D warnings

# The real approval service binary the e2e_service_* suites start (target/debug/airlock).
cargo build -p airlock-approval-svc

# docs/first-hour.md, command by command: init, serve, Envoy, pending, approve, retry (~25 s).
bash scripts/test-first-hour.sh

# The images (from that debug binary) and the Kubernetes/Istio manifests, ~10 s (docs/deploy.md).
bash scripts/test-deploy.sh

# The policy library decides what the real OPA decides (issue #16): a bounded
# differential run; longer runs: `bash scripts/opa-diff.sh --count 200000 --seed N`.
bash scripts/opa-diff.sh --count 3000

# Every fuzz target briefly from its committed seeds (docs/fuzzing.md); a crash fails.
bash scripts/fuzz.sh 10

# A throw-away PostgreSQL for the store conformance suite (both backends run it) and the
# store benchmark's checks; the two-replica e2e test starts one of its own.
eval "$(bash scripts/postgres.sh start)"
trap 'bash scripts/postgres.sh stop || true' EXIT

cargo test --workspace --no-fail-fast
