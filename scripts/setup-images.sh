#!/usr/bin/env bash
# Idempotent install of what scripts/build-images.sh and scripts/test-deploy.sh need, on
# Debian, with no Docker daemon:
#   - umoci (builds OCI image layouts from a directory, as root or rootless) and skopeo
#     (inspects, copies and pushes them), Debian packages; docker-registry (Debian's build
#     of the CNCF distribution registry) for the push test on 127.0.0.1;
#   - kubernetes-validate (PyPI, pinned) into the project virtualenv .venv: the core
#     Kubernetes kinds of deploy/kubernetes/ checked against the API's schemas;
#   - @kubernetes-models/istio (npm, pinned by tests/deploy/package.json and its lock,
#     into tests/deploy/node_modules): JSON-schema validators generated from Istio's own
#     CRDs (crd-all.gen.yaml of Istio 1.29), for the Istio kinds.
# Running it again changes nothing that is already in place.
set -euo pipefail

K8S_VALIDATE_VERSION="1.37.0"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
DEPLOY_TESTS="$ROOT/tests/deploy"

SAY_PREFIX="setup-images"
# shellcheck source=lib/install.sh
. "$ROOT/scripts/lib/install.sh"

# 1. umoci and skopeo (Debian). binutils for `strip` (the test image from a debug binary).
missing=()
for tool in umoci:umoci skopeo:skopeo strip:binutils docker-registry:docker-registry; do
  command -v "${tool%%:*}" >/dev/null 2>&1 || missing+=("${tool##*:}")
done
if [ "${#missing[@]}" -eq 0 ]; then
  say "umoci, skopeo, strip, docker-registry: present"
else
  apt_install "${missing[@]}"
fi
# 2. kubernetes-validate into .venv (created by scripts/setup.sh).
if [ ! -x "$VENV/bin/python" ]; then
  say "no virtualenv at $VENV: run bash scripts/setup.sh first"
  exit 1
fi
pip_pinned kubernetes-validate "$K8S_VALIDATE_VERSION"

# 3. Istio's CRD schemas (npm), exactly as locked. Node and npm come from setup-mcp.sh.
want="$(node -p 'require(process.argv[1]).dependencies["@kubernetes-models/istio"]' "$DEPLOY_TESTS/package.json")"
have="$(node -p 'try { require(process.argv[1]).version } catch { "" }' \
  "$DEPLOY_TESTS/node_modules/@kubernetes-models/istio/package.json" 2>/dev/null || true)"
if [ "$have" = "$want" ]; then
  say "@kubernetes-models/istio $want: present"
else
  say "npm ci in tests/deploy (@kubernetes-models/istio $want)"
  (cd "$DEPLOY_TESTS" && npm ci --no-audit --no-fund --loglevel=error)
fi
say "done"
