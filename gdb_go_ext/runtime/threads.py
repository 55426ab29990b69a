"""The runtime's Ms: each OS thread with its M, its P and the goroutines it runs or is
locked to, from runtime.allm; where the thread is, from its registers."""
from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Optional

from ..binary import types as T
from ..errors import DecodeError, ReadError

MAX_MS = 100_000
_FIELDS = ("id", "procid", "p", "curg", "lockedg", "spinning", "blocked", "alllink")


@dataclass(slots=True)
class OSThread:
    lwp: int
    m: int
    p: Optional[int]          # the P's id, when the M holds one
    curg: Optional[int]       # the goroutine it runs
    lockedg: Optional[int]    # the goroutine locked to it (runtime.LockOSThread)
    spinning: bool
    blocked: bool
    pc: Optional[int]         # where the thread is, when the debugger has its registers
    function: str = ""
    file: str = ""
    line: int = 0


def _field(t: T.GoType, path: str) -> Optional[tuple[int, str]]:
    """(offset, struct format) of a scalar field, through atomic wrappers."""
    found = t.find(path)
    if found is None:
        return None
    off, ft = found
    if ft.kind == T.STRUCT and ft.find("value") is not None:
        inner = ft.find("value")
        off, ft = off + inner[0], inner[1]
    fmt = T.scalar_format(ft) or ("Q" if ft.size == 8 else None)
    return (off, "<" + fmt) if fmt else None


def os_threads(rt) -> tuple[list[OSThread], list[str]]:
    """Every M on runtime.allm, in list order, and what could not be read."""
    errors: list[str] = []
    mt, gt, pt = rt.type("runtime.m"), rt.type("runtime.g"), rt.type("runtime.p")
    mf = {k: _field(mt, k) for k in _FIELDS}
    goid, pid = _field(gt, "goid"), _field(pt, "id")
    if mf["alllink"] is None or mf["id"] is None:
        raise DecodeError("runtime.m has no id or alllink field")
    mem = rt.mem

    def at(buf, f):
        return struct.unpack_from(f[1], buf, f[0])[0] if f is not None else 0

    def word_at(addr, f):
        if not addr or f is None:
            return None
        try:
            return struct.unpack(f[1], mem.read(addr + f[0], struct.calcsize(f[1])))[0]
        except ReadError as e:
            errors.append(str(e))
            return None

    try:
        regs = {th.lwp: th for th in rt.target.threads()}
    except Exception as e:  # a debugger's trouble listing threads must not lose the Ms
        errors.append(f"cannot list threads: {e}")
        regs = {}
    out: list[OSThread] = []
    seen: set = set()
    m = mem.ptr(rt.global_addr("runtime.allm"))
    while m and m not in seen and len(seen) < MAX_MS:
        seen.add(m)
        try:
            buf = mem.read(m, mt.size)
        except ReadError as e:
            errors.append(f"cannot read an m: {e}")
            break
        lwp = at(buf, mf["procid"])
        th = regs.get(lwp)
        t = OSThread(lwp, at(buf, mf["id"]), word_at(at(buf, mf["p"]), pid),
                     word_at(at(buf, mf["curg"]), goid), word_at(at(buf, mf["lockedg"]), goid),
                     bool(at(buf, mf["spinning"])), bool(at(buf, mf["blocked"])),
                     th.pc if th is not None else None)
        if t.pc:
            try:
                frames = rt.pclntab.frames(t.pc)   # a stopped thread: its pc as is
            except DecodeError:
                frames = ()
            if frames:
                t.function, t.file, t.line = frames[0].print_name, frames[0].file, frames[0].line
        out.append(t)
        m = at(buf, mf["alllink"])
    if m and m in seen:
        errors.append("runtime.allm list has a cycle")
    return out, errors
