#!/usr/bin/env bash
# A throw-away PostgreSQL for the tests and benchmarks: its own data directory under
# target/postgres/, listening on 127.0.0.1 only, on a free port, trust authentication
# for the `airlock` user (nothing else can reach it).
#
#   eval "$(bash scripts/postgres.sh start)"   # prints: export AIRLOCK_TEST_POSTGRES_URL=…
#   bash scripts/postgres.sh stop
#   bash scripts/postgres.sh status
#
# Needs Debian's `postgresql` package (scripts/setup.sh installs it). As root, the server
# runs as the `postgres` user the package creates (PostgreSQL refuses to run as root).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BASE="${AIRLOCK_PG_DIR:-$ROOT/target/postgres}"
DATA="$BASE/data"
SOCK="$BASE/sock"
LOG="$BASE/server.log"

say() { printf 'postgres: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

BIN="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)"
[ -n "$BIN" ] && [ -x "$BIN/pg_ctl" ] || die "PostgreSQL server binaries not found: apt-get install postgresql (scripts/setup.sh does)"

as_owner() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

url() { printf 'postgres://airlock@127.0.0.1:%s/postgres' "$(cat "$BASE/port")"; }

running() { [ -f "$BASE/port" ] && as_owner "$BIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

start() {
  if running; then
    say "already running on $(cat "$BASE/port")"
  else
    mkdir -p "$BASE"
    if [ "$(id -u)" = 0 ]; then chown postgres "$BASE"; chmod 755 "$(dirname "$BASE")"; fi
    if [ ! -f "$DATA/PG_VERSION" ]; then
      as_owner "$BIN/initdb" -D "$DATA" -U airlock -A trust -E UTF8 --no-instructions >"$BASE/initdb.log" 2>&1 \
        || { cat "$BASE/initdb.log" >&2; die "initdb failed"; }
    fi
    as_owner mkdir -p "$SOCK"
    # AIRLOCK_PG_PORT: come back on the port a test's clients already know.
    if [ -n "${AIRLOCK_PG_PORT:-}" ]; then echo "$AIRLOCK_PG_PORT" >"$BASE/port"; else free_port >"$BASE/port"; fi
    local port; port="$(cat "$BASE/port")"
    # fsync stays on: the tests check durability claims against the real thing.
    as_owner "$BIN/pg_ctl" -D "$DATA" -l "$LOG" -w -t 60 \
      -o "-p $port -c listen_addresses=127.0.0.1 -k $SOCK -c max_connections=200" start >/dev/null \
      || { tail -20 "$LOG" >&2 || true; die "server did not start"; }
    say "running on 127.0.0.1:$port (data $DATA)"
  fi
  printf 'export AIRLOCK_TEST_POSTGRES_URL=%s\n' "$(url)"
}

stop() {
  if running; then as_owner "$BIN/pg_ctl" -D "$DATA" -m fast -w stop >/dev/null; say "stopped"; else say "not running"; fi
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) if running; then say "running: $(url)"; else say "not running"; exit 1; fi ;;
  *) die "usage: scripts/postgres.sh start|stop|status" ;;
esac
