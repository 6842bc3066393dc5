#!/usr/bin/env bash
# What ships to a cluster, checked without one (docs/deploy.md):
#   1. the Kubernetes and Istio manifests in deploy/kubernetes/ (tests/deploy/validate.py:
#      Kubernetes API schemas via kubernetes-validate, Istio's CRD schemas via npm
#      @kubernetes-models/istio, and how the pieces fit);
#   2. both images (scripts/test-images.sh: built from the debug binary scripts/test.sh
#      has already built, inspected with skopeo, the service run from the unpacked image
#      on the manifests' own airlock.toml);
#   3. the postgres overlay's airlock.toml served by target/debug/airlock on a throw-away
#      PostgreSQL until /readyz answers; sslmode=require refused (tests/deploy/serve-postgres.py).
# About 20 s (measured 22 s on 2 shared cores) once scripts/setup-images.sh has installed its tools.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash scripts/setup-images.sh | grep -v ': present$' || true
echo "test-deploy: manifests"
"$ROOT/.venv/bin/python" tests/deploy/validate.py deploy
echo "test-deploy: the postgres overlay's airlock.toml, served by the real binary on a real PostgreSQL"
# A PostgreSQL of this step's own (scripts/postgres.sh in a temp dir), stopped on exit.
[ -x target/debug/airlock ] || cargo build --quiet -p airlock-approval-svc
PG_DIR="$(mktemp -d)"; chmod 755 "$PG_DIR"
stop_pg() { AIRLOCK_PG_DIR="$PG_DIR" bash scripts/postgres.sh stop 2>/dev/null || true; rm -rf "$PG_DIR"; }
trap stop_pg EXIT
eval "$(AIRLOCK_PG_DIR="$PG_DIR" bash scripts/postgres.sh start)"
timeout 120 "$ROOT/.venv/bin/python" tests/deploy/serve-postgres.py deploy "$ROOT/target/debug/airlock"
stop_pg; trap - EXIT
echo "test-deploy: images"
bash scripts/test-images.sh "$@"
