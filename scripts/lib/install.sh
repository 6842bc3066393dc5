# Install helpers shared by the setup scripts (sourced, not run). The sourcing script
# sets SAY_PREFIX (e.g. "setup") and VENV (the project virtualenv) first.

say() { printf '%s: %s\n' "$SAY_PREFIX" "$*"; }

# Debian packages, as root or through sudo; `apt-get update` once per script run.
apt_updated=""
apt_install() {
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || { say "need Debian packages ($*) but not root and no sudo; install them and re-run"; exit 1; }
    sudo="sudo"
  fi
  if [ -z "$apt_updated" ]; then
    say "apt-get update"
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
    apt_updated=1
  fi
  say "apt-get install $*"
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# A PyPI package at exactly VERSION in $VENV; nothing happens when it is already there.
pip_pinned() {
  local name="$1" version="$2" installed
  installed="$("$VENV/bin/python" -m pip show "$name" 2>/dev/null | sed -n 's/^Version: //p' || true)"
  if [ "$installed" = "$version" ]; then
    say "$name $version: present"
  else
    say "pip install $name==$version"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "$name==$version"
  fi
}
