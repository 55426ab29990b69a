"""The runtime's own goroutine traceback (traceback.go: goroutineheader, traceback1/2,
printcreatedby, tracebackothers), as a model: what each goroutine's block of a dump
holds at a given GOTRACEBACK level, with the physical frames' fp/sp/pc.

Pure and bounded. The stack is unwound here once more per goroutine, physical frame by
physical frame (the walk's Unwinder keeps no sp/fp and must stay fast): (pc, sp) from
the walk's start, fp = sp + pcsp(pc) + 8, the return address at fp - 8, until a
top frame (runtime.goexit), as the runtime's unwinder does on amd64.

What follows the runtime's rules per version (told by what the binary has, and by the
Go version where only the runtime's code differs):
  - header: gp=/m=/mp= from Go 1.22 at level 2 (never at level 1: the runtime adds
    them there only for a goroutine throwing on its own M);
  - frames: showframe/showfuncinfo at level < 2 (runtime frames hidden except exported
    ones and gopanic past the first frame; wrappers elided unless they called a panic;
    runFinalizers/runCleanups always shown from 1.25); nothing shown -> all shown;
  - the limit: Go 1.19 stops at 100 frames and says ...additional frames elided...;
    Go 1.21+ prints 50 inner and 50 outer frames and ...N frames elided... between;
  - created by F (in goroutine P from 1.21), not for goroutine 1, not when showframe
    hides F.
Labels (debug.tracebacklabels, off by default before 1.27 and for a main module whose
go line is older) and synctest bubbles are not printed.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Optional

from ..binary.pclntab import _go_minor, func_name_for_print, injected_functions, wrapper_func_id
from ..errors import DecodeError

MAX_PHYSICAL = 1024


@dataclass
class TFrame:
    function: str        # as the runtime prints it (generic shapes as [...], panic)
    file: str
    line: int
    inlined: bool
    pc: int              # the physical frame's pc (a return address, or the trap pc)
    entry: int
    fp: int
    sp: int


@dataclass
class TGoroutine:
    id: int
    addr: int
    header: str          # "goroutine N ...:" as the runtime prints it at this level
    running: bool
    frames: list         # TFrame, the ones printed, innermost first
    elided: Optional[str] = None   # the elision line and the index it goes before
    elided_at: int = 0
    created_by: Optional[tuple] = None   # (function, file, line, offset or None, parent)
    error: Optional[str] = None


@dataclass
class Traceback:
    go_version: str
    level: int
    goroutines: list = field(default_factory=list)
    errors: list = field(default_factory=list)


_u64 = struct.Struct("<Q").unpack_from


def is_exported_runtime(name: str) -> bool:
    """The runtime's isExportedRuntime: runtime.X (or a method of an exported type) with X
    exported, which tracebacks show at GOTRACEBACK=all."""
    if not name.startswith("runtime."):
        return False
    name = name[len("runtime."):]
    rcvr = ""
    i = name.rfind(".")
    if i >= 0:
        rcvr, name = name[:i], name[i + 1:]
        if len(rcvr) >= 3 and rcvr.startswith("(*") and rcvr.endswith(")"):
            rcvr = rcvr[2:-1]
    return bool(name) and "A" <= name[0] <= "Z" and (not rcvr or "A" <= rcvr[0] <= "Z")


class _Rules:
    def __init__(self, minor: int, wrapper_id: int, level: int):
        self.minor, self.wrapper_id, self.level = minor, wrapper_id, level

    def showfuncinfo(self, name: str, func_id: int, first: bool, callee: str) -> bool:
        if self.level > 1:
            return True
        if func_id == self.wrapper_id and callee not in (
                "runtime.gopanic", "runtime.sigpanic", "runtime.panicwrap"):
            return False
        if self.minor >= 25 and name in ("runtime.runFinalizers", "runtime.runCleanups"):
            return True
        if name == "runtime.gopanic" and not first:
            return True
        return "." in name and (not name.startswith("runtime.") or is_exported_runtime(name))


def traceback(rt, walker, gs, level: int) -> Traceback:
    """The dump of goroutines gs (a walk's, any order) at GOTRACEBACK level (1: all, 2:
    system/crash), in allgs order, system goroutines left out below level 2."""
    version = rt.layout.go_version
    minor = _go_minor(version)
    rules = _Rules(minor, wrapper_func_id(version), level)
    out = Traceback(version, level)
    tab = rt.pclntab
    mem = rt.mem
    injected = injected_functions(version)
    st = rt.layout.status
    gf = rt.layout.fields("runtime.g", ("m", "gopc", "startpc", "runningCleanups"))
    mf = rt.layout.fields("runtime.m", ("id",))
    order = {a: i for i, a in enumerate(walker.g_addrs())}
    gs = sorted(gs, key=lambda g: order.get(g.addr, len(order)))

    fing_running = _finalizer_running(rt)

    def read_fields(addr):
        try:
            return gf.read(mem, addr) if gf is not None else {}
        except DecodeError as e:
            out.errors.append(f"goroutine at {addr:#x}: {e}")
            return {}

    for g in gs:
        if g.status_code in walker.dead_codes or g.status_code < 0:
            if g.status_code < 0:
                out.errors.append(f"g at {g.addr:#x}: {g.error}")
            continue
        f = read_fields(g.addr)
        startpc, gopc, mp = f.get("startpc") or 0, f.get("gopc") or 0, f.get("m") or 0
        if level < 2 and _is_system(tab, startpc, g, f, fing_running):
            continue
        header = _header(g, st, minor, level, mp, mem, mf)
        tg = TGoroutine(g.id, g.addr, header, g.status_code == st.running, [])
        trap = g.status_code == st.running and g.thread is not None
        try:
            phys, err = _unwind(tab, mem, g.pc, g.sp, g.stack_lo, g.stack_hi, trap, injected)
        except DecodeError as e:
            phys, err = [], str(e)
        if err:
            tg.error = err
        _select(tab, tg, phys, rules, minor)
        if gopc and g.id != 1:
            fn = tab.func_for_pc(gopc)
            if fn is not None and rules.showfuncinfo(fn.name, fn.func_id, False, ""):
                tracepc = gopc - 1 if gopc > fn.entry else gopc
                file, line = tab.file_line(fn, tracepc)
                name = fn.name if minor < 21 else _print_name(fn.name)
                tg.created_by = (name, file, line, gopc - fn.entry if gopc > fn.entry else None,
                                 g.parent_id if minor >= 21 and g.parent_id else None)
        out.goroutines.append(tg)
    return out


def _print_name(name: str) -> str:
    return "panic" if name == "runtime.gopanic" else func_name_for_print(name)


def _finalizer_running(rt) -> Optional[bool]:
    for sym, size, test in (("runtime.fingStatus", 4, lambda v: bool(v & 2)),
                            ("runtime.fingRunning", 1, bool)):
        try:
            a = rt.target.symbol_address(sym)
            if a:
                return test(int.from_bytes(rt.mem.read(a, size), "little"))
        except DecodeError:
            return None
    return None


def _is_system(tab, startpc: int, g, f: dict, fing_running) -> bool:
    fn = tab.func_for_pc(startpc) if startpc else None
    if fn is None:
        return False
    name = fn.name
    if name in ("runtime.main", "runtime.corostart", "runtime.handleAsyncEvent"):
        return False
    if name in ("runtime.runfinq", "runtime.runFinalizers"):
        return not fing_running if fing_running is not None else True
    if name == "runtime.runCleanups":
        return not f.get("runningCleanups")
    return name.startswith("runtime.")


def _header(g, st, minor: int, level: int, mp: int, mem, mf) -> str:
    code = g.status_code
    status = g.status
    if (code == st.waiting or (st.leaked is not None and code == st.leaked)) and g.wait_reason:
        status = g.wait_reason
    text = f"goroutine {g.id}"
    if level >= 2 and minor >= 22:
        text += f" gp={g.addr:#x}"
        if mp:
            mid = "?"
            try:
                if mf is not None:
                    mid = str(mf.read(mem, mp)["id"])
            except DecodeError:
                pass
            text += f" m={mid} mp={mp:#x}"
        else:
            text += " m=nil"
    text += " [" + status
    if st.leaked is not None and code == st.leaked:
        text += " (leaked)"
    if g.scan:
        text += " (scan)"
    if g.wait_minutes and g.wait_minutes >= 1:
        text += f", {g.wait_minutes} minutes"
    if g.locked_to_thread:
        text += ", locked to thread"
    return text + "]:"


def _unwind(tab, mem, pc, sp, lo, hi, trap, injected):
    """[(func, pc, symbolized pc, sp, fp)] outward from (pc, sp), and an error or None."""
    out = []
    if not pc:
        return out, "no saved pc"
    if not (lo <= sp < hi):
        return out, f"sp {sp:#x} outside the stack [{lo:#x}, {hi:#x})"
    base = sp
    buf = b""
    for _ in range(MAX_PHYSICAL):
        key = (pc, trap)
        info = _PC_CACHE.get(key)
        if info is None or info[0] is not tab:
            fn = tab.func_for_pc(pc)
            if fn is None:
                return out, f"pc {pc:#x} is not in Go code"
            info = (tab, fn, pc - 1 if not trap and pc > fn.entry else pc, tab.pcsp(fn, pc),
                    fn.is_topframe or fn.name in ("runtime.goexit", "runtime.mstart",
                                                  "runtime.rt0_go"),
                    fn.name in injected)
            if len(_PC_CACHE) > 1 << 16:
                _PC_CACHE.clear()
            _PC_CACHE[key] = info
        _, fn, sym, delta, top, inj = info
        if delta < 0:
            return out, f"no frame size for {fn.name} at {pc:#x}"
        fp = sp + delta + 8
        out.append((fn, pc, sym, sp, fp))
        if top:
            return out, None
        if fp > hi:
            return out, f"frame {fp:#x} outside the goroutine stack"
        off = fp - 8 - base
        if off + 8 > len(buf):
            buf = mem.read(base, min(hi - base, max(2 * len(buf), off + 1024)))
        ret = _u64(buf, off)[0]
        if ret == 0:
            return out, None
        trap = inj
        pc, sp = ret, fp
    return out, f"more than {MAX_PHYSICAL} frames"


_PC_CACHE: dict = {}


def _logical(tab, phys):
    """Every logical frame: (name, func_id, file, line, inlined, physical index)."""
    out = []
    for i, (fn, pc, sym, sp, fp) in enumerate(phys):
        for lf in tab.frames(sym):
            out.append((lf.function, lf.func_id, lf.file, lf.line, lf.inlined, i))
    return out


def _select(tab, tg: TGoroutine, phys, rules: _Rules, minor: int) -> None:
    tab_frames = _logical(tab, phys)

    def shown(show_runtime: bool):
        res, callee, n = [], "", 0
        for item in tab_frames:
            name, func_id, file, line, inlined, i = item
            c, callee = callee, name
            if show_runtime or rules.showfuncinfo(name, func_id, n == 0, c):
                res.append(item)
                n += 1
        return res

    frames = shown(False)
    if not frames:
        frames = shown(True)
    if minor < 21:
        if len(frames) >= 100:
            frames = frames[:100]
            tg.elided, tg.elided_at = "...additional frames elided...", 100
    elif len(frames) > 100:
        tg.elided, tg.elided_at = f"...{len(frames) - 100} frames elided...", 50
        frames = frames[:50] + frames[-50:]
    for name, func_id, file, line, inlined, i in frames:
        fn, pc, sym, sp, fp = phys[i]
        tg.frames.append(TFrame(_print_name(name), file, line, inlined, pc, fn.entry, fp, sp))
