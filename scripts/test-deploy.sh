#!/usr/bin/env bash
# What ships to a cluster, checked without one (docs/deploy.md):
#   1. the Kubernetes and Istio manifests in deploy/kubernetes/ (tests/deploy/validate.py:
#      Kubernetes API schemas via kubernetes-validate, Istio's CRD schemas via npm
#      @kubernetes-models/istio, and how the pieces fit);
#   2. both images (scripts/test-images.sh: built from the debug binary scripts/test.sh
#      has already built, inspected with skopeo, the service run from the unpacked image
#      on the manifests' own airlock.toml).
# About 10 s once scripts/setup-images.sh has installed its tools.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash scripts/setup-images.sh | grep -v ': present$' || true
echo "test-deploy: manifests"
"$ROOT/.venv/bin/python" tests/deploy/validate.py deploy
echo "test-deploy: images"
bash scripts/test-images.sh "$@"
