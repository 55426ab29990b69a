"""Decoded Go values (runtime.values) written out: as fmt's %v prints them, and in JSON.

The decoders hold addresses as runtime.values.Addr; this is where they become "0x…"
(a nil pointer, channel or func "<nil>" where its type is known).
"""
from __future__ import annotations

from typing import Any, Optional

from ..binary import types as T
from ..runtime.values import Addr, go_float

__all__ = ["go_text", "go_quote", "json_default", "json_shape"]


def json_default(o: Any) -> Any:
    """json.dumps' default=: how the values JSON has no type for are written."""
    if type(o) is Addr:
        return hex(o.value)   # "0x…", as f"{o:#x}"; called per address, so the quickest spelling
    raise TypeError(f"Object of type {type(o).__name__} is not JSON serializable")


def json_shape(v: Any) -> Any:
    """A decoded value as its JSON reads back (every Addr as its "0x…" string)."""
    if isinstance(v, Addr):
        return f"{v:#x}"
    if isinstance(v, list):
        return [json_shape(x) for x in v]
    if isinstance(v, dict):
        return {k: json_shape(x) for k, x in v.items()}
    return v


def go_text(v: Any, t: Optional[T.GoType] = None) -> str:
    """A decoded value as fmt's %v prints it."""
    if v is None:
        return "<nil>"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return go_float(v)
    if isinstance(v, Addr):
        if not v and t is not None and t.kind in (T.PTR, T.CHAN, T.FUNC):
            return "<nil>"
        return f"{v:#x}"
    if isinstance(v, str):
        return v
    if isinstance(v, list):
        el = t.elem if t is not None and t.kind in (T.ARRAY, T.SLICE) else None
        return "[" + " ".join(go_text(x, el) for x in v) + "]"
    if isinstance(v, dict):
        if t is not None and t.kind == T.MAP or (t is None and set(v) == {"type", "addr", "len"}):
            addr = json_shape(v.get("addr"))
            if addr == "0x0":
                return "map[]"
            return f"{v.get('type')}(len {v.get('len')} @{addr})"
        if (t is None or t.kind in (T.EFACE, T.IFACE)) and set(v) == {"type", "value"}:
            inner = v["value"]
            if isinstance(inner, Addr) and not inner and str(v["type"]).startswith("*"):
                return "<nil>"
            return go_text(inner)
        fields = {f.name: f.type for f in t.fields} if t is not None and t.kind == T.STRUCT else {}
        return "{" + " ".join(go_text(x, fields.get(k)) for k, x in v.items()) + "}"
    return str(v)


def go_quote(v: Any, t: Optional[T.GoType] = None) -> str:
    """Like go_text, but strings quoted (as %q / %#v would): for tables where "" must show.
    Without a type, an address is quoted too ("0x…")."""
    if isinstance(v, Addr) and t is None:
        v = f"{v:#x}"
    if isinstance(v, str) and (t is None or t.kind == T.STRING):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    return go_text(v, t)
