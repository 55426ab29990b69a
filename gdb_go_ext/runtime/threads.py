"""The runtime's Ms: each OS thread with its M, its P and the goroutines it runs or is
locked to, from runtime.allm; where the thread is, from its registers."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

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


def os_threads(rt) -> tuple[list[OSThread], list[str]]:
    """Every M on runtime.allm, in list order, and what could not be read."""
    errors: list[str] = []
    mf = rt.layout.fields("runtime.m", _FIELDS)
    goid = rt.layout.fields("runtime.g", ("goid",))
    pid = rt.layout.fields("runtime.p", ("id",))
    if mf is None or not (mf.has("alllink") and mf.has("id")):
        raise DecodeError("runtime.m has no id or alllink field")
    mem = rt.mem

    def field_at(addr, fields, name):
        """One field of the struct at addr (a P's id, a g's goid), None if unreadable."""
        off = fields.offset(name) if addr and fields is not None else None
        if off is None:
            return None
        try:
            return fields.unpack(mem.read(addr + off, 8), -off)[name]
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
            f = mf.read(mem, m)
        except ReadError as e:
            errors.append(f"cannot read an m: {e}")
            break
        th = regs.get(f.get("procid"))
        t = OSThread(f.get("procid") or 0, f["id"], field_at(f.get("p"), pid, "id"),
                     field_at(f.get("curg"), goid, "goid"), field_at(f.get("lockedg"), goid, "goid"),
                     bool(f.get("spinning")), bool(f.get("blocked")),
                     th.pc if th is not None else None)
        if t.pc:
            try:
                frames = rt.pclntab.frames(t.pc)   # a stopped thread: its pc as is
            except DecodeError:
                frames = ()
            if frames:
                t.function, t.file, t.line = frames[0].print_name, frames[0].file, frames[0].line
        out.append(t)
        m = f["alllink"]
    if m and m in seen:
        errors.append("runtime.allm list has a cycle")
    return out, errors
