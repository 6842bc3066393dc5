"""OPA's bundle file hash (the `hash` in `.signatures.json`), reimplemented from OPA's Go
source, step for step, to compute test vectors for bundle/src/canonical.rs.

The PyPI OPA library (libopabridge.so, tests/opa/opa_engine.py) exports evaluation only,
no bundle API, so the vectors cannot come from OPA's own code at run time. This follows:

  cmd/sign.go hashFileContent / bundle/verify.go VerifyBundleFile
      IsStructuredDoc(path) -> util.Unmarshal(bytes) -> SignatureHasher.HashFile(value)
      otherwise HashFile(raw bytes)
  util/json.go Unmarshal
      strip a leading UTF-8 BOM (if len > 2); if json.Valid: decode with UseNumber
      (numbers stay json.Number, i.e. their text); else YAML (not reproduced: reported)
  bundle/hash.go walk / encodePrimitive
      object: "{" key ":" value "," ... "}" with keys sorted (Go string order = UTF-8
      bytes); array: "[" v "," ... "]"; primitives: json.Encoder, SetEscapeHTML(false),
      trailing newline trimmed
  encoding/json decode (unquote): invalid UTF-8 -> U+FFFD per byte; an unpaired
      surrogate escape -> U+FFFD
  encoding/json encode (appendString, Go >= 1.22): \\" \\\\ \\b \\f \\n \\r \\t, other
      controls \\u00xx, U+2028/U+2029 escaped, nothing else

Usage: python3 tests/opa/bundle_hash.py NAME FILE...   (NAME decides structured or not)
   or: python3 tests/opa/bundle_hash.py --vectors      (the vectors in canonical/tests.rs)
"""

import codecs
import hashlib
import json
import sys

BOM = b"\xef\xbb\xbf"


def _go_replace(err):
    # Go's utf8.DecodeRune reports an invalid sequence one byte at a time.
    return ("\ufffd", err.start + 1)


codecs.register_error("go-utf8", _go_replace)


class Number(str):
    """json.Number: the number's text as written."""


def _reject_constant(name):
    raise ValueError(f"{name} is not JSON")


def _fix_surrogates(s):
    # Python keeps an unpaired surrogate escape as a lone code point; Go decodes it to
    # U+FFFD. Paired escapes were already combined by both.
    return "".join("\ufffd" if 0xD800 <= ord(c) <= 0xDFFF else c for c in s)


def _fix(v):
    if isinstance(v, Number):
        return v
    if isinstance(v, str):
        return _fix_surrogates(v)
    if isinstance(v, list):
        return [_fix(x) for x in v]
    if isinstance(v, dict):
        return {_fix_surrogates(k): _fix(x) for k, x in v.items()}
    return v


def go_unmarshal(bs):
    """util.Unmarshal for a JSON document; raises on anything json.Valid refuses."""
    if len(bs) > 2 and bs[:3] == BOM:
        bs = bs[3:]
    text = bs.decode("utf-8", errors="go-utf8")
    v = json.loads(
        text,
        parse_int=Number,
        parse_float=Number,
        parse_constant=_reject_constant,
        object_pairs_hook=lambda pairs: dict(pairs),  # a repeated key: the last wins
        strict=True,  # raw control characters in strings are invalid, as in Go
    )
    return _fix(v)


def go_string(s):
    out = ['"']
    for c in s:
        o = ord(c)
        if c == '"':
            out.append('\\"')
        elif c == "\\":
            out.append("\\\\")
        elif c == "\b":
            out.append("\\b")
        elif c == "\f":
            out.append("\\f")
        elif c == "\n":
            out.append("\\n")
        elif c == "\r":
            out.append("\\r")
        elif c == "\t":
            out.append("\\t")
        elif o < 0x20 or c in "\u2028\u2029":
            out.append("\\u%04x" % o)
        else:
            out.append(c)
    out.append('"')
    return "".join(out).encode("utf-8")


def encode_primitive(v):
    if isinstance(v, Number):
        return str.__str__(v).encode()
    if isinstance(v, str):
        return go_string(v)
    if v is True:
        return b"true"
    if v is False:
        return b"false"
    if v is None:
        return b"null"
    raise TypeError(type(v))


def walk(v, h):
    if isinstance(v, dict):
        h.update(b"{")
        for i, k in enumerate(sorted(v, key=lambda k: k.encode("utf-8"))):
            if i > 0:
                h.update(b",")
            h.update(encode_primitive(k))
            h.update(b":")
            walk(v[k], h)
        h.update(b"}")
    elif isinstance(v, list):
        h.update(b"[")
        for i, e in enumerate(v):
            if i > 0:
                h.update(b",")
            walk(e, h)
        h.update(b"]")
    elif isinstance(v, (bytes, bytearray)):
        h.update(v)
    else:
        h.update(encode_primitive(v))


def is_structured_doc(name):
    base = name.rsplit("/", 1)[-1]
    return base in ("data.json", "data.yaml", "signatures.json", ".manifest")


def file_hash(name, bs):
    h = hashlib.sha256()
    if is_structured_doc(name):
        walk(go_unmarshal(bs), h)
    else:
        walk(bs, h)
    return h.hexdigest()


# (file name, bytes) -> the hash asserted in bundle/src/canonical/tests.rs.
VECTORS = [
    ("data.json", b'{"price": 1.50, "rate": 0.10, "zero": -0, "big": 1E3, "exp": 1e+3, "neg": -2.50e-3}'),
    ("data.json", b'[1, 1.0, 1.00, 100, 1e2, 12345678901234567890123456789, 0.1000000000000000055511151231257827]'),
    ("data.json", BOM + b'{"b": 1, "a": [true, false, null]}'),
    ("data.json", b'{"b": 1, "a": [true, false, null]}'),
    ("x/data.json", b'{"s": "<&> \\u00e9 \\/ \\b\\f\\n\\r\\t \\u0001 \\u007f \\u2028\\u2029 \\ud83d\\ude00"}'),
    ("x/data.json", b'{"lone": "\\ud800", "low": "\\udc00x", "hi-then-other": "\\ud800\\u0041"}'),
    ("x/data.json", b'{"bad": "a\xffb\xe2\x82c\xed\xa0\x80"}'),
    ("x/data.json", b'{"k": 1, "k": 2, "\xc3\xa9": 0, "z": 0, "Z": 0}'),
    (".manifest", b'{"revision": "r1", "roots": ["airlock"], "metadata": {"n": 2.0}}'),
    ("airlock/policy.rego", BOM + b"package airlock\n"),
]


def main(argv):
    if argv[1:] == ["--vectors"]:
        for name, bs in VECTORS:
            print(f"{name}\t{file_hash(name, bs)}\t{bs!r}")
        return 0
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    name = argv[1]
    for path in argv[2:]:
        with open(path, "rb") as f:
            print(file_hash(name, f.read()), path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
