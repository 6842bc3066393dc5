#!/usr/bin/env bash
# Idempotent install of what the Teams app package test (tests/tests/e2e/teams_package.rs)
# validates with:
#   - Microsoft's Teams app manifest JSON schemas: npm `@microsoft/app-manifest`, pinned
#     by tests/teams/package.json and package-lock.json, into tests/teams/node_modules
#     (gitignored) with `npm ci`; Node.js and npm come from setup-mcp.sh;
#   - check-jsonschema (PyPI, pinned) into the project virtualenv .venv.
# Running it again changes nothing that is already in place.
set -euo pipefail

CHECK_JSONSCHEMA_VERSION="0.39.0"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
TEAMS_TESTS="$ROOT/tests/teams"

SAY_PREFIX="setup-teams"
# shellcheck source=lib/install.sh
. "$ROOT/scripts/lib/install.sh"

if [ ! -x "$VENV/bin/python" ]; then
  say "no virtualenv at $VENV: run bash scripts/setup.sh (it runs this script too)"
  exit 1
fi
pip_pinned check-jsonschema "$CHECK_JSONSCHEMA_VERSION"

want="$(node -p 'require(process.argv[1]).dependencies["@microsoft/app-manifest"]' "$TEAMS_TESTS/package.json")"
have="$(node -p 'try { require(process.argv[1]).version } catch { "" }' \
  "$TEAMS_TESTS/node_modules/@microsoft/app-manifest/package.json" 2>/dev/null || true)"
if [ "$have" = "$want" ]; then
  say "@microsoft/app-manifest $want: present"
else
  say "npm ci in tests/teams (@microsoft/app-manifest $want)"
  (cd "$TEAMS_TESTS" && npm ci --no-audit --no-fund --loglevel=error)
fi
