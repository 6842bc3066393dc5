"""The real OPA engine (Go, v1.x) through the C ABI of the PyPI wheel
`opa-golib-python-bindings` (libopabridge.so), driven with ctypes.

The wheel is tagged for Python >= 3.14 but the library is a plain Go c-shared object,
so any Python loads it. We use our own ctypes declarations rather than the wheel's
wrapper because the wrapper re-serialises the input with `json.dumps`, which changes
number text (1.50 → 1.5, 1000.00000000000001 → 1000.0); here the input bytes go to
OPA unchanged and OPA parses them with `util.UnmarshalJSON` (json.Number, exact).

The bridge prepares every query with `rego.StrictBuiltinErrors(true)`: a builtin
type error (e.g. `split(5, "/")`) is an evaluation error, not undefined. The API
offers no switch for it.
"""

import ctypes
import json
import os
from pathlib import Path


class OpaError(Exception):
    def __init__(self, code, message):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class Opa:
    def __init__(self, lib_path):
        lib = ctypes.CDLL(str(lib_path))
        lib.OpaNew.restype = ctypes.c_uint64
        lib.OpaNew.argtypes = []
        lib.OpaDestroy.restype = None
        lib.OpaDestroy.argtypes = [ctypes.c_uint64]
        lib.OpaFreeString.restype = None
        lib.OpaFreeString.argtypes = [ctypes.c_void_p]
        for name, n in (("OpaAddPolicy", 2), ("OpaAddData", 2)):
            fn = getattr(lib, name)
            fn.restype = ctypes.c_void_p
            fn.argtypes = [ctypes.c_uint64] + [ctypes.c_char_p] * n
        lib.OpaEvalDocument.restype = ctypes.c_void_p
        lib.OpaEvalDocument.argtypes = [ctypes.c_uint64, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_int, ctypes.c_int]
        self._lib = lib
        self._h = lib.OpaNew()

    def _call(self, fn, *args):
        ptr = fn(self._h, *args)
        if not ptr:
            raise OpaError("internal", "native call returned NULL")
        try:
            raw = ctypes.string_at(ptr)
        finally:
            self._lib.OpaFreeString(ptr)
        env = json.loads(raw)
        err = env.get("error")
        if err is not None:
            raise OpaError(err.get("code", "unknown"), err.get("message", ""))
        return env, raw

    def add_policy(self, name, source):
        self._call(self._lib.OpaAddPolicy, name.encode(), source.encode())

    def add_data(self, dotted_path, json_bytes):
        self._call(self._lib.OpaAddData, dotted_path.encode(), json_bytes)

    def eval_raw(self, doc_path, input_bytes):
        """Evaluate data.<doc_path> with the input given as JSON text.

        Returns ("decision", value) | ("undefined", None) | ("error", message).
        The value is decoded from OPA's JSON with exact numbers (Decimal)."""
        if b"\x00" in input_bytes:
            # A C string cannot carry a NUL byte; JSON text never needs one.
            return ("error", "input contains a NUL byte")
        try:
            ptr = self._lib.OpaEvalDocument(self._h, doc_path.encode(), input_bytes, 0, 0)
            if not ptr:
                return ("error", "native call returned NULL")
            try:
                raw = ctypes.string_at(ptr)
            finally:
                self._lib.OpaFreeString(ptr)
        except OSError as e:  # pragma: no cover
            return ("error", f"ctypes: {e}")
        env = json_loads_exact(raw)
        err = env.get("error")
        if err is not None:
            return ("error", f"{err.get('code')}: {err.get('message')}")
        rs = env.get("result")
        if not rs or not rs[0].get("expressions"):
            return ("undefined", None)
        return ("decision", rs[0]["expressions"][0]["value"])


def json_loads_exact(raw):
    import decimal

    return json.loads(raw, parse_float=decimal.Decimal, parse_int=int)


def load_bundle_dir(opa, root):
    """Load a policy directory as an OPA bundle would: every .rego file is a module
    (tests included), every data.json is placed at its directory's path."""
    root = Path(root)
    n_mod = n_data = 0
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        rel = Path(dirpath).relative_to(root)
        for f in sorted(filenames):
            p = Path(dirpath) / f
            if f.endswith(".rego"):
                opa.add_policy(str(rel / f), p.read_text(encoding="utf-8"))
                n_mod += 1
            elif f == "data.json":
                dotted = ".".join(rel.parts) if rel.parts else ""
                opa.add_data(dotted, p.read_bytes())
                n_data += 1
    return n_mod, n_data
