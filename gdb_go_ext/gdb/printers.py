"""gdb pretty printers for Go values: maps of both implementations, any size.

`print m` shows `map[K]V len N` and the entries (as many as `set print elements`
allows), decoded by runtime/maps.py from whole bucket/group reads.
"""
from __future__ import annotations

import json

import gdb

from ..errors import GoExtError
from ..binary import types as T
from ..binary.generics import is_param_typedef, is_shape, underlying_name
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
        self.name = val.type.name or str(val.type)
        self.mc = None
        self.err = None
        try:
            rt = session.runtime()
            mt = rt.target.convert_type(val.type)
            if is_shape(mt.name):   # generic code: as Go names it in the selected frame
                mt = rt.target.go_named(mt)
            self.name = mt.name
            addr = int(val.cast(gdb.lookup_type("uintptr")))
            self.mc = decode_map(rt, mt, addr, limit=_elements_limit())
        except (GoExtError, gdb.error, ValueError) as e:
            self.err = str(e).splitlines()[0] if str(e) else type(e).__name__

    def to_string(self):
        name = self.name
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
    if _is_map(t, name) and t.strip_typedefs().code == gdb.TYPE_CODE_PTR:
        return GoMapPrinter(val)
    return None


def _is_map(t: "gdb.Type", name: str) -> bool:
    """A Go map type: map[K]V, a shape of one (generic code), or a named map type
    (type Index map[string][]int, a type parameter's `.paramN`) over one of those."""
    for _ in range(8):
        if underlying_name(name).startswith("map["):
            return True
        if t.code == gdb.TYPE_CODE_PTR and not t.name:   # the header: hash<K,V> / map<K,V>
            target = t.target().strip_typedefs()
            return target.code == gdb.TYPE_CODE_STRUCT and \
                (target.name or "").startswith(("hash<", "map<"))
        if t.code != gdb.TYPE_CODE_TYPEDEF or not (is_param_typedef(name) or "." in name):
            return False
        t = t.target()
        name = t.name or str(t)
    return False


_registered = False


def register() -> None:
    """Add the Go printers to gdb's global list (once)."""
    global _registered
    if not _registered:
        gdb.pretty_printers.append(lookup)
        _registered = True
