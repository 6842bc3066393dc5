#!/usr/bin/env python3
"""Checks a Teams app package (the zip `airlock teams package` writes) the way Teams'
upload does, against Microsoft's published rules:

- the zip holds manifest.json and the two icons it names, at its root;
- manifest.json is valid against Microsoft's official schema for its manifestVersion
  (npm @microsoft/app-manifest, installed by scripts/setup-teams.sh), checked with
  check-jsonschema, and that version is the newest numbered one the package ships;
- the colour icon is a 192x192 PNG; the outline icon a 32x32 PNG whose pixels are
  white or fully transparent;
- the bot id, scopes and valid domains are the expected ones.

Usage: validate_package.py PACKAGE.zip --bot-id GUID --domain HOST [--drop FIELD]
(--drop removes a top-level manifest field before validating: the test uses it to show
the schema check refuses an incomplete manifest). Exit 0 when valid, 1 with the reasons.
"""
import argparse
import json
import os
import re
import struct
import subprocess
import sys
import tempfile
import zipfile
import zlib

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCHEMAS = os.path.join(ROOT, "tests", "teams", "node_modules", "@microsoft", "app-manifest", "build",
                       "json-schemas", "teams")
CHECK_JSONSCHEMA = os.path.join(ROOT, ".venv", "bin", "check-jsonschema")
SETUP = "bash scripts/setup-teams.sh"


def png_pixels(data):
    """(width, height, rows of RGBA tuples) of an 8-bit RGBA or RGB PNG."""
    if not data.startswith(b"\x89PNG\r\n\x1a\n"):
        raise ValueError("not a PNG")
    pos, idat, header = 8, b"", None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    width, height, depth, color_type, _, _, interlace = header
    if depth != 8 or color_type not in (2, 6) or interlace != 0:
        raise ValueError(f"unsupported PNG (depth {depth}, colour type {color_type}, interlace {interlace})")
    channels = 4 if color_type == 6 else 3
    raw, stride = zlib.decompress(idat), width * channels
    rows, previous = [], bytearray(stride)
    for y in range(height):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            left = line[i - channels] if i >= channels else 0
            up, up_left = previous[i], previous[i - channels] if i >= channels else 0
            if kind == 1:
                line[i] = (line[i] + left) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + up) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 0xFF
            elif kind == 4:
                p = left + up - up_left
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - up_left)
                line[i] = (line[i] + (left if pa <= pb and pa <= pc else up if pb <= pc else up_left)) & 0xFF
        rows.append([tuple(line[x:x + channels]) + ((255,) if channels == 3 else ()) for x in range(0, stride, channels)])
        previous = line
    return width, height, rows


def newest_schema_version():
    versions = [d[1:] for d in os.listdir(SCHEMAS) if re.fullmatch(r"v\d+\.\d+", d)]
    return max(versions, key=lambda v: tuple(int(p) for p in v.split(".")))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("package")
    ap.add_argument("--bot-id", required=True)
    ap.add_argument("--domain", required=True)
    ap.add_argument("--drop", default=None)
    args = ap.parse_args()
    for need in (SCHEMAS, CHECK_JSONSCHEMA):
        if not os.path.exists(need):
            print(f"missing {need}: run {SETUP}")
            return 2
    errors = []
    with zipfile.ZipFile(args.package) as z:
        names = z.namelist()
        if "manifest.json" not in names:
            print(f"no manifest.json at the zip's root: {names}")
            return 1
        manifest = json.loads(z.read("manifest.json"))
        icons = {k: z.read(v) if v in names else None for k, v in manifest.get("icons", {}).items()}
    if any("/" in n for n in names):
        errors.append(f"files must be at the zip's root: {names}")
    if args.drop:
        manifest.pop(args.drop, None)

    version = manifest.get("manifestVersion", "")
    schema = os.path.join(SCHEMAS, f"v{version}", "MicrosoftTeams.schema.json")
    if not os.path.isfile(schema):
        errors.append(f"manifestVersion {version!r} has no official schema in {SCHEMAS}")
    else:
        if version != newest_schema_version():
            errors.append(f"manifestVersion {version} is not the current schema ({newest_schema_version()})")
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "manifest.json")
            with open(path, "w") as f:
                json.dump(manifest, f)
            run = subprocess.run([CHECK_JSONSCHEMA, "--schemafile", schema, path], capture_output=True, text=True)
            if run.returncode != 0:
                errors.append("schema: " + (run.stdout + run.stderr).strip())

    for key, size in (("color", 192), ("outline", 32)):
        data = icons.get(key)
        if data is None:
            errors.append(f"icon {key!r} is not in the package")
            continue
        try:
            width, height, rows = png_pixels(data)
        except ValueError as e:
            errors.append(f"icon {key}: {e}")
            continue
        if (width, height) != (size, size):
            errors.append(f"icon {key} is {width}x{height}, not {size}x{size}")
        if key == "outline":
            bad = [px for row in rows for px in row if px[3] != 0 and px[:3] != (255, 255, 255)]
            if bad:
                errors.append(f"outline icon has {len(bad)} pixels neither white nor transparent")
            if not any(px[3] != 0 for row in rows for px in row):
                errors.append("outline icon is empty")

    bots = manifest.get("bots", [])
    if not bots or bots[0].get("botId") != args.bot_id:
        errors.append(f"bot id is not {args.bot_id}: {bots}")
    elif sorted(bots[0].get("scopes", [])) != ["personal", "team"]:
        errors.append(f"bot scopes are not personal and team: {bots[0].get('scopes')}")
    if args.domain not in manifest.get("validDomains", []):
        errors.append(f"{args.domain} is not in validDomains: {manifest.get('validDomains')}")

    for e in errors:
        print(e)
    if not errors:
        print(f"valid: manifest {version}, bot {args.bot_id}, icons 192x192 and 32x32")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
