#!/usr/bin/env bash
# The main job: Envoy with the Airlock filter and the demo policy in front of a sample
# upstream, the real approval service (`airlock serve`), and a scripted agent. Installs
# and builds what it needs first, quietly: one progress line, the output of setup and
# cargo in target/demo-build.log, shown only when a step fails.
# Pass --stay to keep everything running afterwards.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

LOG="$ROOT/target/demo-build.log"
mkdir -p "$ROOT/target"
: >"$LOG"
started=$SECONDS

# step WHAT COMMAND...: runs COMMAND with its output in the log, the progress line
# counting seconds meanwhile (rewritten in place on a terminal, once per step otherwise).
step() {
  local what="$1"
  shift
  printf '\n== %s: %s\n' "$what" "$*" >>"$LOG"
  "$@" >>"$LOG" 2>&1 &
  local pid=$! begun=$SECONDS
  if [ -t 1 ]; then
    while kill -0 "$pid" 2>/dev/null; do
      printf '\r\033[Kdemo: %s (%ds; cargo and setup output: %s)' "$what" $((SECONDS - begun)) "$LOG"
      sleep 1
    done
  else
    printf 'demo: %s\n' "$what"
  fi
  if ! wait "$pid"; then
    [ -t 1 ] && printf '\n'
    printf 'demo: %s failed; the end of its output:\n' "$what" >&2
    tail -n 60 "$LOG" >&2
    printf 'demo: full log: %s\n' "$LOG" >&2
    exit 1
  fi
}

step "installing Envoy and the toolchain pieces (scripts/setup.sh)" bash scripts/setup.sh
# The shipped module (wasm-opt'd), as tests/src/wasm.rs finds it.
step "building the filter (wasm32-wasip1, release)" bash scripts/build-wasm.sh --no-fault
# The real approval service (`airlock`) the demo starts, and the demo's driver.
step "building the approval service" cargo build -p airlock-approval-svc
step "building the demo driver" cargo build -p airlock-tests --bin airlock-demo
if [ -t 1 ]; then
  printf '\r\033[K'
fi
printf 'demo: built in %ds (log: %s)\n\n' $((SECONDS - started)) "$LOG"
exec "$ROOT/target/debug/airlock-demo" "$@"
