#!/usr/bin/env bash
# Idempotent install of the official MCP SDKs that tests/tests/e2e/mcp_sdk.rs runs
# (unchanged) as the MCP server and clients behind and in front of the gateway:
#   - Python: PyPI `mcp` (pinned 1.x: FastMCP + streamablehttp_client, what most
#     clients run) into the project virtualenv .venv (created by scripts/setup.sh);
#   - TypeScript: npm `@modelcontextprotocol/sdk`, pinned by tests/mcp/package.json and
#     package-lock.json, into tests/mcp/node_modules (gitignored) with `npm ci`;
#   - Node.js 20+ and npm from Debian (packages nodejs, npm) when absent.
# Running it again changes nothing that is already in place.
set -euo pipefail

MCP_PY_VERSION="1.30.0"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
MCP_DIR="$ROOT/tests/mcp"

SAY_PREFIX="setup-mcp"
# shellcheck source=lib/install.sh
. "$ROOT/scripts/lib/install.sh"

if [ ! -x "$VENV/bin/python" ]; then
  say "no virtualenv at $VENV: run bash scripts/setup.sh (it runs this script too)"
  exit 1
fi

# 1. The Python SDK, pinned.
pip_pinned mcp "$MCP_PY_VERSION"

# 2. Node.js and npm (Node 20 or newer: the client uses global fetch and web streams).
node_major() { node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }
if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 && [ "$(node_major)" -ge 20 ]; then
  say "node $(node --version), npm $(npm --version): present"
else
  apt_install nodejs npm
  if [ "$(node_major)" -lt 20 ]; then
    say "node $(node --version) is older than 20; install Node.js 20+ and re-run"
    exit 1
  fi
fi

# 3. The TypeScript SDK, exactly as locked.
want="$(node -p 'require(process.argv[1]).dependencies["@modelcontextprotocol/sdk"]' "$MCP_DIR/package.json")"
have="$(node -p 'try { require(process.argv[1]).version } catch { "" }' \
  "$MCP_DIR/node_modules/@modelcontextprotocol/sdk/package.json" 2>/dev/null || true)"
if [ "$have" = "$want" ]; then
  say "@modelcontextprotocol/sdk $want (TypeScript): present"
else
  say "npm ci in tests/mcp (@modelcontextprotocol/sdk $want)"
  (cd "$MCP_DIR" && npm ci --no-audit --no-fund --loglevel=error)
fi
