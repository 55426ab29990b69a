"""The runtime's clock on a core: the latest nanotime() stamp the runtime left behind.

A core records no time, but the runtime keeps recent readings of its own clock
(nanotime, CLOCK_MONOTONIC on Linux): sysmon stamps each P's sysmontick every few
milliseconds while Ps are busy, the scheduler stamps sched.lastpoll when a blocking
netpoll returns, and the GC stamps memstats.last_gc_nanotime. The latest of these is
the best "now" a core has; the runtime's own dump of the same instant used nanotime().
"""
from __future__ import annotations

import struct
from typing import Optional

from ..errors import DecodeError, ReadError
from ..binary import types as T

MAX_PS = 1 << 12
_SANE = 1 << 62   # a nanotime stamp is positive and far below this

# (global, its type, field paths): fields found by name; versions lacking one skip it
_GLOBAL_STAMPS = (
    ("runtime.sched", "runtime.schedt", ("lastpoll", "procresizetime")),
    ("runtime.memstats", "runtime.mstats", ("last_gc_nanotime",)),
)
_P_STAMPS = ("sysmontick.schedwhen", "sysmontick.syscallwhen")


def _int_field(t: T.GoType, path: str) -> Optional[tuple[int, str]]:
    """(offset, struct format) of an integer field, through an atomic wrapper's value."""
    found = t.find(path)
    if found is None:
        return None
    off, ft = found
    if ft.kind == T.STRUCT:
        inner = ft.find("value")
        if inner is None:
            return None
        off, ft = off + inner[0], inner[1]
    fmt = T.scalar_format(ft)
    if fmt is None or ft.size != 8:
        return None
    return off, "<" + fmt


def stamps(rt) -> list[tuple[int, str]]:
    """Every plausible nanotime stamp found, as (ns, where), in no particular order."""
    target, mem = rt.target, rt.mem
    out = []

    def take(buf: bytes, t: T.GoType, paths, name: str) -> None:
        for path in paths:
            f = _int_field(t, path)
            if f is None or f[0] + 8 > len(buf):
                continue
            v = struct.unpack_from(f[1], buf, f[0])[0]
            if 0 < v < _SANE:
                out.append((v, f"{name}.{path}"))

    for sym, tname, paths in _GLOBAL_STAMPS:
        addr, t = target.symbol_address(sym), target.lookup_type(tname)
        if addr is None or t is None:
            continue
        try:
            take(mem.read(addr, t.size), t, paths, sym.split(".", 1)[1])
        except (ReadError, DecodeError):
            continue
    pt, allp = target.lookup_type("runtime.p"), target.symbol_address("runtime.allp")
    if pt is not None and allp is not None:
        try:
            arr, n, _ = struct.unpack("<QQQ", mem.read(allp, 24))
            ps = struct.unpack(f"<{min(n, MAX_PS)}Q", mem.read(arr, 8 * min(n, MAX_PS))) if n else ()
        except (ReadError, DecodeError, struct.error):
            ps = ()
        for p in ps:
            if not p:
                continue
            try:
                take(mem.read(p, pt.size), pt, _P_STAMPS, "p")
            except (ReadError, DecodeError):
                continue
    return out


def core_now(rt) -> tuple[int, str]:
    """(the latest stamp, what it was), or (0, "") when the core holds none."""
    found = stamps(rt)
    if not found:
        return 0, ""
    ns, where = max(found)
    return ns, where
