"""The runtime's Ms: each OS thread with its M, its P and the goroutines it runs or is
locked to, from runtime.allm; where the thread is, from its registers."""
from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Optional

from ..errors import DecodeError, ReadError

MAX_MS = 100_000
_FIELDS = ("id", "procid", "p", "curg", "lockedg", "spinning", "blocked", "alllink",
           "mallocing", "throwing", "locks", "dying", "mstartfn")


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
    # what the runtime's SCHED detail prints of an M (absent in a version: None)
    addr: int = 0             # the m itself
    p_addr: int = 0
    curg_addr: int = 0
    mallocing: Optional[int] = None
    throwing: Optional[int] = None
    preemptoff: str = ""      # why preemption is off ("" when it is not)
    locks: Optional[int] = None
    dying: Optional[int] = None
    startfn: str = ""         # m.mstartfn: what the M was started for (runtime.sysmon, ...)


def os_threads(rt) -> tuple[list[OSThread], list[str]]:
    """Every M on runtime.allm, in list order, and what could not be read."""
    errors: list[str] = []
    mf = rt.layout.fields("runtime.m", _FIELDS)
    goid = rt.layout.fields("runtime.g", ("goid",))
    pid = rt.layout.fields("runtime.p", ("id",))
    if mf is None or not (mf.has("alllink") and mf.has("id")):
        raise DecodeError("runtime.m has no id or alllink field")
    mem = rt.mem
    preemptoff = rt.layout.sched.preemptoff

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
            buf = mem.read(m, mf.size)
        except ReadError as e:
            errors.append(f"cannot read an m: {e}")
            break
        f = mf.unpack(buf)
        th = regs.get(f.get("procid"))
        t = OSThread(f.get("procid") or 0, f["id"], field_at(f.get("p"), pid, "id"),
                     field_at(f.get("curg"), goid, "goid"), field_at(f.get("lockedg"), goid, "goid"),
                     bool(f.get("spinning")), bool(f.get("blocked")),
                     th.pc if th is not None else None)
        t.addr, t.p_addr, t.curg_addr = m, f.get("p") or 0, f.get("curg") or 0
        t.mallocing, t.throwing, t.locks, t.dying = (f.get("mallocing"), f.get("throwing"),
                                                     f.get("locks"), f.get("dying"))
        if preemptoff is not None:
            t.preemptoff = _string_at(mem, buf, preemptoff, errors)
        if f.get("mstartfn"):
            t.startfn = _func_value_name(rt, f["mstartfn"], errors)
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


def _string_at(mem, buf, off: int, errors: list) -> str:
    """The Go string whose header is at buf[off:] (m.preemptoff: a short constant)."""
    data, n = struct.unpack_from("<QQ", buf, off)
    if not n:
        return ""
    try:
        return mem.string_data(data, n, 256)
    except ReadError as e:
        errors.append(f"m.preemptoff: {e}")
        return "?"


def _func_value_name(rt, fv: int, errors: list) -> str:
    """The name of the function a func value (a *funcval: its first word the code) calls."""
    try:
        pc = rt.mem.ptr(fv)
        fn = rt.pclntab.func_for_pc(pc) if pc else None
    except DecodeError as e:   # (ReadError included)
        errors.append(f"m.mstartfn: {e}")
        return ""
    return fn.name if fn is not None else f"{pc:#x}"
