"""gdb pretty printers for Go values: maps of both implementations, any size.

`print m` shows `map[K]V len N` and the entries (as many as `set print elements`
allows), decoded by runtime/maps.py from whole bucket/group reads.
"""
from __future__ import annotations

import json

import gdb

from ..errors import GoExtError
from ..binary import types as T
from ..runtime.maps import decode_map
from ..runtime.values import Addr
from ..views.values import go_text
from . import session


def _py(v, t):
    """A decoded value as something gdb prints well."""
    if isinstance(v, bool) or isinstance(v, int) or isinstance(v, float):
        return v
    if isinstance(v, Addr) and t is None:
        v = f"{v:#x}"
    if isinstance(v, str) and (t is None or t.kind == T.STRING):
        return json.dumps(v, ensure_ascii=False)  # quoted, as Go's %q would show it
    return go_text(v, t)


def _elements_limit():
    try:
        n = gdb.parameter("print elements")
    except (gdb.error, RuntimeError):
        return 200
    return None if n in (None, 0) or n == -1 else int(n)


class GoMapPrinter:
    def __init__(self, val: "gdb.Value"):
        self.val = val
        self.mc = None
        self.err = None
        try:
            rt = session.runtime()
            mt = rt.target.convert_type(val.type)
            addr = int(val.cast(gdb.lookup_type("uintptr")))
            self.mc = decode_map(rt, mt, addr, limit=_elements_limit())
        except (GoExtError, gdb.error, ValueError) as e:
            self.err = str(e).splitlines()[0] if str(e) else type(e).__name__

    def to_string(self):
        name = self.val.type.name or str(self.val.type)
        if self.mc is None:
            return f"{name} <{self.err}>"
        mc = self.mc
        if mc.nil:
            return f"{name} nil"
        s = f"{name} len {mc.len}"
        if mc.errors:
            s += f" <{len(mc.errors)} errors: {mc.errors[0]}>"
        return s

    def children(self):
        if self.mc is None:
            return
        kt, vt = self.mc.key_type, self.mc.elem_type
        for i, (k, v) in enumerate(self.mc.entries):
            yield f"[{2 * i}]", _py(k, kt)
            yield f"[{2 * i + 1}]", _py(v, vt)

    def display_hint(self):
        return "map"


def lookup(val: "gdb.Value"):
    try:
        t = val.type
        name = t.name or str(t)
    except gdb.error:
        return None
    if name.startswith("map[") and t.strip_typedefs().code == gdb.TYPE_CODE_PTR:
        return GoMapPrinter(val)
    return None


_registered = False


def register() -> None:
    """Add the Go printers to gdb's global list (once)."""
    global _registered
    if not _registered:
        gdb.pretty_printers.append(lookup)
        _registered = True
