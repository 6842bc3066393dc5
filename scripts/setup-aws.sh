#!/usr/bin/env bash
# Idempotent install of what tests/tests/e2e/aws_sigv4.rs runs as AWS:
#   - PyPI `moto[server]` (pinned) into the project virtualenv .venv (created by
#     scripts/setup.sh): `.venv/bin/moto_server` speaks S3, STS and IAM on 127.0.0.1;
#   - its boto3 and botocore (pinned with it, so a later release cannot pull them apart):
#     the tests drive moto with boto3 and check the gateway's signatures with botocore's
#     own SigV4 signer, an implementation that is not the service's.
# Running it again changes nothing that is already in place.
set -euo pipefail

MOTO_VERSION="5.2.6"
BOTO_VERSION="1.44.8"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"

SAY_PREFIX="setup-aws"
# shellcheck source=lib/install.sh
. "$ROOT/scripts/lib/install.sh"

if [ ! -x "$VENV/bin/python" ]; then
  say "no virtualenv at $VENV: run bash scripts/setup.sh (it runs this script too)"
  exit 1
fi

version_of() { "$VENV/bin/python" -m pip show "$1" 2>/dev/null | sed -n 's/^Version: //p' || true; }
if [ "$(version_of moto)" = "$MOTO_VERSION" ] && [ "$(version_of boto3)" = "$BOTO_VERSION" ] \
   && [ "$(version_of botocore)" = "$BOTO_VERSION" ] && [ -x "$VENV/bin/moto_server" ] \
   && "$VENV/bin/python" -c 'import flask, flask_cors' 2>/dev/null; then
  say "moto[server] $MOTO_VERSION, boto3/botocore $BOTO_VERSION: present"
else
  say "pip install moto[server]==$MOTO_VERSION boto3==$BOTO_VERSION botocore==$BOTO_VERSION"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
    "moto[server]==$MOTO_VERSION" "boto3==$BOTO_VERSION" "botocore==$BOTO_VERSION"
fi
say "done: $VENV/bin/moto_server"
