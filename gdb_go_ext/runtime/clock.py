"""The runtime's clock on a core: the latest nanotime() stamp the runtime left behind.

A core records no time, but the runtime keeps recent readings of its own clock
(nanotime, CLOCK_MONOTONIC on Linux): sysmon stamps each P's sysmontick every few
milliseconds while Ps are busy, the scheduler stamps sched.lastpoll when a blocking
netpoll returns, and the GC stamps memstats.last_gc_nanotime. The latest of these is
the best "now" a core has; the runtime's own dump of the same instant used nanotime().
"""
from __future__ import annotations

import struct

from ..errors import DecodeError, ReadError

MAX_PS = 1 << 12
_SANE = 1 << 62   # a nanotime stamp is positive and far below this

# (global, its type, field paths): fields found by name; versions lacking one skip it
_GLOBAL_STAMPS = (
    ("runtime.sched", "runtime.schedt", ("lastpoll", "procresizetime")),
    ("runtime.memstats", "runtime.mstats", ("last_gc_nanotime",)),
)
_P_STAMPS = ("sysmontick.schedwhen", "sysmontick.syscallwhen")

def stamps(rt) -> list[tuple[int, str]]:
    """Every plausible nanotime stamp found, as (ns, where), in no particular order."""
    target, mem = rt.target, rt.mem
    out = []

    def take(values: dict, name: str) -> None:
        for path, v in values.items():
            if v is not None and 0 < v < _SANE:
                out.append((v, f"{name}.{path}"))

    for sym, tname, paths in _GLOBAL_STAMPS:
        fields, addr = rt.layout.fields(tname, paths), target.symbol_address(sym)
        if fields is None or addr is None:
            continue
        try:
            take(fields.read(mem, addr), sym.split(".", 1)[1])
        except (ReadError, DecodeError):
            continue
    pf, allp = rt.layout.fields("runtime.p", _P_STAMPS), target.symbol_address("runtime.allp")
    if pf is not None and allp is not None:
        try:
            arr, n, _ = struct.unpack("<QQQ", mem.read(allp, 24))
            ps = struct.unpack(f"<{min(n, MAX_PS)}Q", mem.read(arr, 8 * min(n, MAX_PS))) if n else ()
        except (ReadError, DecodeError, struct.error):
            ps = ()
        for p in ps:
            if not p:
                continue
            try:
                take(pf.read(mem, p), "p")
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
