#!/usr/bin/env bash
# Render one of the envoy/*.yaml templates: every ${AIRLOCK_*} placeholder is replaced by
# the environment variable of the same name, verbatim. Fails, naming them, if any
# placeholder has no value, so a half-rendered config never reaches Envoy.
#
#   AIRLOCK_PLUGIN_CONFIG_FILE=plugin.json AIRLOCK_WASM=$PWD/target/.../airlock_filter.wasm \
#   AIRLOCK_ADMIN_PORT=9901 ... scripts/render-envoy.sh envoy/demo.yaml out/demo.yaml
#
# AIRLOCK_PLUGIN_CONFIG_FILE (a JSON file) is the convenient way to give the filter's
# configuration: its text becomes AIRLOCK_PLUGIN_CONFIG as a JSON string literal (which is
# also a valid YAML double-quoted scalar). Validate the result with
#   .venv/bin/envoy --mode validate -c out/demo.yaml
set -euo pipefail

if [ $# -ne 2 ]; then
  echo "usage: $0 TEMPLATE OUTPUT" >&2
  exit 2
fi

exec python3 - "$1" "$2" <<'PY'
import json
import os
import re
import sys

template_path, output_path = sys.argv[1], sys.argv[2]
with open(template_path, encoding="utf-8") as f:
    template = f.read()

values = dict(os.environ)
config_file = values.get("AIRLOCK_PLUGIN_CONFIG_FILE")
if config_file:
    with open(config_file, encoding="utf-8") as f:
        text = f.read()
    try:
        json.loads(text)
    except ValueError as e:
        sys.exit(f"{config_file}: not JSON: {e}")
    values["AIRLOCK_PLUGIN_CONFIG"] = json.dumps(text, ensure_ascii=False)

placeholder = re.compile(r"\$\{([^}]*)\}")
names = set(placeholder.findall(template))
bad = sorted(n for n in names if not re.fullmatch(r"[A-Z][A-Z0-9_]*", n))
if bad:
    sys.exit(f"{template_path}: malformed placeholder(s): {bad}")
missing = sorted(n for n in names if n not in values)
if missing:
    sys.exit(f"{template_path}: no value for: {', '.join(missing)}")

rendered = placeholder.sub(lambda m: values[m.group(1)], template)
os.makedirs(os.path.dirname(os.path.abspath(output_path)), exist_ok=True)
with open(output_path, "w", encoding="utf-8") as f:
    f.write(rendered)
PY
