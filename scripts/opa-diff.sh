#!/usr/bin/env bash
# Differential test of the policy library: the real OPA engine against Airlock's
# evaluator (regorus RVM, as the filter runs it). See docs/opa-differences.md.
#
#   scripts/opa-diff.sh [--count N] [--seed S] [--policy DIR] [more tests/opa/diff.py options]
#
# Then the rule-by-rule semantics programs of tests/opa/semantics/ (tests/opa/semantics.py).
# Defaults: --count 3000 --seed 1 --policy policies/library (the bounded CI run). A longer
# run is the same command with a larger count and other seeds, e.g.
#   scripts/opa-diff.sh --count 200000 --seed 7 --report target/opa/report.jsonl
#
# Installs what it needs, idempotently, under target/opa/ (gitignored):
#   - OPA v1.20.2 as a shared library: the PyPI wheel opa-golib-python-bindings==0.4.4
#     (tagged for Python >= 3.14 but a plain Go c-shared object, so it is downloaded with
#     `pip download`, checked against its SHA-256 and unpacked, not installed);
# and uses the Airlock CLI at target/debug/airlock (built with
# `cargo build -p airlock-approval-svc` only when it is missing; AIRLOCK_BIN overrides).
# Needs python3 (3.11+, standard library only) and network access to PyPI the first time.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# The workspace builds regorus with Airlock's RVM fixes (instant when up to date).
bash scripts/patch-regorus.sh >/dev/null

WHEEL_VERSION="0.4.4"
WHEEL_NAME="opa_golib_python_bindings-${WHEEL_VERSION}-py3-none-manylinux_2_34_x86_64.whl"
WHEEL_SHA256="d411c901e14b8c7c3023e23e4a944f4cf429c1d31baf80e959e57d11efbfd24a"
OPA_DIR="$ROOT/target/opa"
OPA_LIB="${OPA_LIB:-$OPA_DIR/whl/opa_bindings/libopabridge.so}"
AIRLOCK_BIN="${AIRLOCK_BIN:-$ROOT/target/debug/airlock}"
PYTHON="${PYTHON:-python3}"

say() { printf 'opa-diff: %s\n' "$*" >&2; }

count=3000
seed=1
policy="policies/library"
extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --count) count="$2"; shift 2 ;;
    --seed) seed="$2"; shift 2 ;;
    --policy) policy="$2"; shift 2 ;;
    -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
    *) extra+=("$1"); shift ;;
  esac
done

# 1. OPA (libopabridge.so from the pinned wheel).
if [ ! -f "$OPA_LIB" ]; then
  mkdir -p "$OPA_DIR/dl"
  wheel="$OPA_DIR/dl/$WHEEL_NAME"
  if [ ! -f "$wheel" ] || ! echo "$WHEEL_SHA256  $wheel" | sha256sum -c --status; then
    pip=("$PYTHON" -m pip)
    if [ -x "$ROOT/.venv/bin/python" ]; then pip=("$ROOT/.venv/bin/python" -m pip); fi
    say "pip download opa-golib-python-bindings==$WHEEL_VERSION"
    rm -f "$wheel"
    "${pip[@]}" download --quiet --disable-pip-version-check --no-deps --python-version 3.14 \
      --only-binary=:all: --platform manylinux_2_34_x86_64 \
      "opa-golib-python-bindings==$WHEEL_VERSION" -d "$OPA_DIR/dl"
  fi
  echo "$WHEEL_SHA256  $wheel" | sha256sum -c --status || { say "$wheel: SHA-256 mismatch"; exit 1; }
  rm -rf "$OPA_DIR/whl"
  "$PYTHON" -m zipfile -e "$wheel" "$OPA_DIR/whl"
  [ -f "$OPA_LIB" ] || { say "no libopabridge.so in $wheel"; exit 1; }
fi

# 2. Airlock CLI.
if [ ! -x "$AIRLOCK_BIN" ]; then
  say "building the airlock CLI (cargo build -p airlock-approval-svc)"
  nice cargo build -q -p airlock-approval-svc
fi

# 3. Run: the policy library's decisions (tests/opa/diff.py), then the rule-by-rule
#    semantics programs (tests/opa/semantics.py, tests/opa/semantics/*/). The last line
#    sums both: `opa-diff: N passed, M failed`; the exit status is 1 when M > 0.
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
set +e
"$PYTHON" "$ROOT/tests/opa/diff.py" --opa-lib "$OPA_LIB" --airlock "$AIRLOCK_BIN" \
  --policy "$policy" --count "$count" --seed "$seed" "${extra[@]}" | tee "$tmp/diff.out"
diff_rc=${PIPESTATUS[0]}
echo
"$PYTHON" "$ROOT/tests/opa/semantics.py" --opa-lib "$OPA_LIB" --airlock "$AIRLOCK_BIN" | tee "$tmp/semantics.out"
sem_rc=${PIPESTATUS[0]}
set -e
counts() { sed -n "s/^$1: \([0-9]*\) passed, \([0-9]*\) failed$/\1 \2/p" "$2" | tail -n 1; }
read -r dp df <<<"$(counts opa-diff "$tmp/diff.out")"
read -r sp sf <<<"$(counts opa-semantics "$tmp/semantics.out")"
if [ -z "${dp:-}" ] || [ -z "${sp:-}" ]; then
  say "a run ended without its summary line (diff exit $diff_rc, semantics exit $sem_rc)"
  exit 1
fi
echo
echo "library: $dp passed, $df failed; semantics: $sp passed, $sf failed"
echo "opa-diff: $((dp + sp)) passed, $((df + sf)) failed"
[ "$diff_rc" -eq 0 ] && [ "$sem_rc" -eq 0 ] && [ $((df + sf)) -eq 0 ]
