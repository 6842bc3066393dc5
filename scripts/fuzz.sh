#!/usr/bin/env bash
# Coverage-guided fuzzing of every parser that reads bytes from outside (fuzz/,
# docs/fuzzing.md):
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]     # default: 60 s, every target
#
# Installs cargo-fuzz (pinned) if missing, builds the targets with nightly into
# target/fuzz (never the main target dirs), then runs each for the given time starting
# from its committed seeds (fuzz/corpus/<target>; what it learns goes to
# target/fuzz/corpus/<target>, never back into git). Prints per target: executions,
# exec/s, coverage (libFuzzer's final cov/ft) and crashes. Exits non-zero on any crash;
# the crashing input is in target/fuzz/artifacts/<target>/ and reproduces with
#   target/fuzz/x86_64-unknown-linux-gnu/release/<target> <file>
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

CARGO_FUZZ_VERSION="0.13.1"
SECONDS_PER_TARGET="${1:-60}"
shift || true
ALL_TARGETS=(filter_config request_target request_input policy_decision bundle_archive gateway_signature
  slack_signature reviewer_tokens service_bodies)
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=("${ALL_TARGETS[@]}")
# FUZZ_TARGET_DIR: another build directory (a clean build, to measure one).
OUT="${FUZZ_TARGET_DIR:-$ROOT/target/fuzz}"
BIN_DIR="$OUT/x86_64-unknown-linux-gnu/release"

say() { printf 'fuzz: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

[[ "$SECONDS_PER_TARGET" =~ ^[0-9]+$ ]] || die "SECONDS_PER_TARGET must be a whole number, not '$SECONDS_PER_TARGET'"
for t in "${TARGETS[@]}"; do
  [[ " ${ALL_TARGETS[*]} " == *" $t "* ]] || die "unknown target '$t' (targets: ${ALL_TARGETS[*]})"
done
cargo +nightly --version >/dev/null 2>&1 || die "no nightly toolchain (rustup toolchain install nightly)"
if [ "$(cargo fuzz --version 2>/dev/null | awk '{print $2}')" != "$CARGO_FUZZ_VERSION" ]; then
  say "installing cargo-fuzz $CARGO_FUZZ_VERSION"
  cargo install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked
fi
# The fuzz crate builds against the same patched regorus as the workspace.
bash scripts/patch-regorus.sh

# Release with debug assertions and overflow checks. No sanitizer: the fuzzed code is
# safe Rust (the only `unsafe` is the wasm-only glue, not built here), so ASan would
# halve the executions and find nothing libFuzzer and the overflow checks do not.
build_start=$SECONDS
cargo +nightly fuzz build --fuzz-dir fuzz --target-dir "$OUT" -O -a -s none --codegen-units 16 \
  >"$OUT.build.log" 2>&1 || { tail -50 "$OUT.build.log" >&2; die "build failed (log: $OUT.build.log)"; }
say "built in $((SECONDS - build_start)) s"

printf '%-18s %12s %8s %7s %7s %8s\n' target executions exec/s cov ft crashes
failed=0
for t in "${TARGETS[@]}"; do
  corpus="$OUT/corpus/$t"
  artifacts="$OUT/artifacts/$t"
  log="$OUT/logs/$t.log"
  mkdir -p "$corpus" "$artifacts" "$(dirname "$log")"
  before=$(find "$artifacts" -type f | wc -l)
  rc=0
  "$BIN_DIR/$t" "$corpus" "fuzz/corpus/$t" -max_total_time="$SECONDS_PER_TARGET" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$artifacts/" >"$log" 2>&1 || rc=$?
  crashes=$(($(find "$artifacts" -type f | wc -l) - before))
  if [ "$rc" -ne 0 ] && [ "$crashes" -eq 0 ]; then crashes=1; fi
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  # The last status line holds the final coverage: `#N <EVENT> cov: C ft: F corp: ...`.
  cov=$(sed -n 's/.* cov: \([0-9]*\) .*/\1/p' "$log" | tail -1)
  ft=$(sed -n 's/.* ft: \([0-9]*\) .*/\1/p' "$log" | tail -1)
  printf '%-18s %12s %8s %7s %7s %8s\n' "$t" "${execs:-?}" "${rate:-?}" "${cov:-?}" "${ft:-?}" "$crashes"
  if [ "$crashes" -ne 0 ]; then
    failed=1
    say "$t: crashed (rc $rc); log: $log; inputs: $artifacts/"
    grep -m1 -A12 -E '^(thread .* panicked|==[0-9]+== ERROR|ERROR: libFuzzer)' "$log" >&2 || tail -20 "$log" >&2
  fi
done
exit "$failed"
