#!/usr/bin/env bash
# Idempotent install of what the web console's browser test (tests/tests/e2e/console.rs)
# drives and signs in at:
#   - Debian's `chromium` and `chromium-driver` (headless Chromium through W3C WebDriver);
#   - npm `oidc-provider`, pinned by tests/oidc/package.json and package-lock.json, into
#     tests/oidc/node_modules (gitignored) with `npm ci`: a real OpenID Connect provider
#     that tests/oidc/provider.mjs configures;
#   - Node.js 20+ and npm from Debian when absent (scripts/setup-mcp.sh needs them too).
# Running it again changes nothing that is already in place.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OIDC_DIR="$ROOT/tests/oidc"

SAY_PREFIX="setup-console"
# shellcheck source=lib/install.sh
. "$ROOT/scripts/lib/install.sh"

# 1. Chromium and its WebDriver, from Debian.
if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then
  say "$(chromium --version 2>/dev/null | head -1), chromedriver: present"
else
  apt_install chromium chromium-driver
fi

# 2. Node.js and npm (oidc-provider 9 needs Node 20 or newer).
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

# 3. oidc-provider, exactly as locked.
want="$(node -p 'require(process.argv[1]).dependencies["oidc-provider"]' "$OIDC_DIR/package.json")"
have="$(node -p 'try { require(process.argv[1]).version } catch { "" }' \
  "$OIDC_DIR/node_modules/oidc-provider/package.json" 2>/dev/null || true)"
if [ "$have" = "$want" ]; then
  say "oidc-provider $want: present"
else
  say "npm ci in tests/oidc (oidc-provider $want)"
  (cd "$OIDC_DIR" && npm ci --no-audit --no-fund --loglevel=error)
fi
