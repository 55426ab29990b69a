"""The runtime's own goroutine traceback (traceback.go: goroutineheader, traceback1/2,
printcreatedby, tracebackothers), as a model: what each goroutine's block of a dump
holds at a given GOTRACEBACK level, with the physical frames' fp/sp/pc.

Pure and bounded. The stack is unwound once more per goroutine shape, physical frame
by physical frame (the walk's Unwinder.physical: fp = sp + pcsp(pc) + 8 from the
walk's start, the return address at fp - 8, until a top frame, runtime.goexit), as the
runtime's unwinder does on amd64.

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

import numpy as np

from ..binary.pclntab import (FUNCDATA_ArgInfo, FUNCDATA_ArgLiveInfo, PCDATA_ArgLiveIndex,
                              go_minor, func_name_for_print, wrapper_func_id)
from ..errors import DecodeError
from ..target.bulk import core_words, read_words
from .layout import Fields

@dataclass(slots=True)
class TFrame:
    function: str        # as the runtime prints it (generic shapes as [...], panic)
    file: str
    line: int
    inlined: bool
    pc: int              # the physical frame's pc (a return address, or the trap pc)
    entry: int
    fp_off: int          # fp and sp less the goroutine's sp (TGoroutine.sp): frames
    sp_off: int          # are shared by the goroutines of one stack shape
    sym: int = 0         # the pc its line and arguments' liveness are read at


@dataclass(slots=True)
class TGoroutine:
    id: int
    addr: int
    header: str          # "goroutine N ...:" as the runtime prints it at this level
    running: bool
    frames: tuple        # TFrame, the ones printed, innermost first (shared: do not modify)
    sp: int = 0          # where the unwind started: a frame's fp is sp + fp_off
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
    system/crash), in allgs order, system goroutines left out below level 2.

    Leaked goroutines repeat a few stacks by the thousand, so each physical unwind is
    kept as a recipe (the stack slots it read and the return addresses found there):
    the goroutines with the same pc and stack depth are checked against it together,
    word by word, and share its frames; the others are unwound on their own."""
    version = rt.layout.go_version
    minor = go_minor(version)
    rules = _Rules(minor, wrapper_func_id(version), level)
    out = Traceback(version, level)
    tab = rt.pclntab
    st = rt.layout.status
    recs = _records(rt, walker, gs, out.errors)
    extra = _extra_fields(rt, [r[1] for r in recs], out.errors)
    heads = _Headers(rt, minor, level)
    stacks = _Stacks(walker.unwinder, rules, minor)
    fing_running = _finalizer_running(rt)
    system: dict = {}
    creators: dict = {}
    keep = []
    for rec, ex in zip(recs, extra):
        gid, startpc, gopc, parent = rec[0], rec[16], rec[15], rec[14]
        if level < 2:
            sysg = system.get(startpc)
            if sysg is None:
                sysg = system[startpc] = _is_system(tab, startpc, fing_running)
            if sysg is True or (sysg == "cleanups" and not _running_cleanups(rt, rec[1])):
                continue
        created = None
        if gopc and gid != 1:
            c = creators.get(gopc, 0)
            if c == 0:
                c = creators[gopc] = _creator(tab, gopc, rules, minor)
            if c is not None:
                created = c + (parent if minor >= 21 and parent else None,)
        keep.append((rec, ex, created))
    stacks.unwind_all([(r[9], r[10], r[11], r[12], r[13]) for r, _, _ in keep])
    header = heads.header
    running = st.running
    out.goroutines = [
        TGoroutine(rec[0], rec[1], header(rec, ex), rec[13] or rec[2] == running, r[0], rec[10],
                   r[1], r[2], created, r[3])
        for (rec, ex, created), r in zip(keep, stacks.results)]
    return out


# a goroutine as traceback reads it: (id, addr, status code, status, wait reason, scan,
# minutes, locked, labels, pc, sp, stack lo, stack hi, trap, parent id, gopc, startpc,
# m, error)
def _records(rt, walker, gs, errors: list) -> list:
    """The records of the live goroutines of a walk (its GoroutineTable), in allgs order,
    from the table's columns (rows made only for the goroutines off its fast path)."""
    dead = walker.dead_codes
    running = rt.layout.status.running
    t = gs
    shapes = [(s[0], s[1], s[3], s[2], s[9]) for s in t.shapes]   # code, status, reason, scan, error
    base_rows = t.base_rows().tolist()
    specials = t.specials
    sets = t.base.label_sets
    cols = [t.col(k).tolist() for k in ("goid", "addr", "sched_pc", "sched_sp", "stack_lo",
                                        "stack_hi", "lockedm", "parent", "gopc",
                                        "startpc")]
    out = []
    for r, si, mins, li, gid, addr, pc, sp, lo, hi, locked, parent, gopc, startpc in zip(
            base_rows, t.shapes_of().tolist(), t.minutes_of().tolist(),
            t.label_idx_of().tolist(), *cols):
        g = specials.get(r)
        if g is not None:
            out.append(_record_of(g, gopc, startpc, 0, running))
            continue
        code, status, reason, scan, err = shapes[si]
        out.append((gid, addr, code, status, reason, scan, None if mins < 0 else mins,
                    bool(locked), sets[li] if li >= 0 else None, pc, sp, lo, hi, False,
                    parent, gopc, startpc, 0, err))
    out = [r for r in out if r[2] not in dead and r[2] >= 0]   # (in allgs order)
    # g.m is not a column: read for the goroutines that can have one (a parked or
    # runnable goroutine has dropped its M)
    parked = {rt.layout.status.waiting, rt.layout.status.runnable}
    mf = rt.layout.fields("runtime.g", ("m",))
    for i, r in enumerate(out):
        if r[2] not in parked and mf is not None and mf.has("m"):
            try:
                out[i] = r[:17] + (mf.read(rt.mem, r[1])["m"] or 0,) + r[18:]
            except DecodeError:
                pass
    return out


def _record_of(g, gopc: int, startpc: int, m: int, running: int) -> tuple:
    return (g.id, g.addr, g.status_code, g.status, g.wait_reason, g.scan, g.wait_minutes,
            g.locked_to_thread, g.labels or None, g.pc, g.sp, g.stack_lo, g.stack_hi,
            g.status_code == running and g.thread is not None, g.parent_id or 0, gopc,
            startpc, m, g.error if g.status_code >= 0 else None)


def _extra_fields(rt, addrs: list, errors: list) -> list:
    """(bubble, syncGroup) of each g, where the version has them, else (0, 0)s."""
    gf = rt.layout.fields("runtime.g", ("bubble", "syncGroup"))
    if gf is None or not gf.spec or not addrs:
        return [(0, 0)] * len(addrs)
    a = np.array(addrs, dtype=np.uint64)
    cols = []
    for path in ("bubble", "syncGroup"):
        off = gf.offset(path)
        if off is None:
            cols.append(np.zeros(len(a), dtype=np.uint64))
            continue
        words, ok = read_words(rt.mem, a + np.uint64(off), 8, core_words(rt.mem))
        if not ok.all():
            errors.append(f"{int((~ok).sum())} goroutines: g.{path} unreadable")
        cols.append(words[:, 0])
    if not cols[0].any() and not cols[1].any():
        return [(0, 0)] * len(addrs)
    return list(zip(cols[0].tolist(), cols[1].tolist()))


def _running_cleanups(rt, addr: int) -> bool:
    gf = rt.layout.fields("runtime.g", ("runningCleanups",))
    try:
        return bool(gf is not None and gf.has("runningCleanups")
                    and gf.read(rt.mem, addr)["runningCleanups"])
    except DecodeError:
        return False


def labels_printed(rt) -> bool:
    """Whether this process's tracebacks print pprof labels (Go 1.26+, GODEBUG
    tracebacklabels=1, the default from 1.27 for a main module that says go 1.27)."""
    return go_minor(rt.layout.go_version) >= 26 and _debug_flag(rt, "tracebacklabels") == 1


def _creator(tab, gopc: int, rules: "_Rules", minor: int):
    """(function, file, line, offset or None) of a go statement's pc, or None when the
    runtime hides it."""
    fn = tab.func_for_pc(gopc)
    if fn is None or not rules.showfuncinfo(fn.name, fn.func_id, False, ""):
        return None
    tracepc = gopc - 1 if gopc > fn.entry else gopc
    file, line = tab.file_line(fn, tracepc)
    name = fn.name if minor < 21 else _print_name(fn.name)
    return (name, file, line, gopc - fn.entry if gopc > fn.entry else None)


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


def _is_system(tab, startpc: int, fing_running):
    """The runtime's isSystemGoroutine by the start function alone: True, False, or
    "cleanups" (system unless g.runningCleanups)."""
    fn = tab.func_for_pc(startpc) if startpc else None
    if fn is None:
        return False
    name = fn.name
    if name in ("runtime.main", "runtime.corostart", "runtime.handleAsyncEvent"):
        return False
    if name in ("runtime.runfinq", "runtime.runFinalizers"):
        return not fing_running if fing_running is not None else True
    if name == "runtime.runCleanups":
        return "cleanups"
    return name.startswith("runtime.")


class _Headers:
    """goroutineheader: "goroutine N [status...]:" as this version prints it."""

    def __init__(self, rt, minor: int, level: int):
        self.rt, self.minor, self.level = rt, minor, level
        self.st = rt.layout.status
        self.mem = rt.mem
        self.mids: dict = {}
        self.bubbles: dict = {}
        self.labels_on = labels_printed(rt)
        self.idle = _idle_in_synctest(rt)
        self.plain = level < 2 or minor < 22
        self.tails: dict = {}

    def header(self, rec: tuple, extra: tuple) -> str:
        """rec: a _records record; extra: its (bubble, syncGroup)."""
        if self.plain and not extra[0] and not extra[1] and not (self.labels_on and rec[8]):
            key = (rec[2], rec[4], rec[5], rec[6], rec[7])
            tail = self.tails.get(key)
            if tail is None:
                tail = self.tails[key] = self._header(rec, extra)[len(f"goroutine {rec[0]}"):]
            return f"goroutine {rec[0]}{tail}"
        return self._header(rec, extra)

    def _header(self, rec: tuple, extra: tuple) -> str:
        gid, addr, code, status, reason, scan, minutes, locked, labels = rec[:9]
        mp = rec[17]
        bubble, group = extra
        st = self.st
        leaked = st.leaked is not None and code == st.leaked
        if (code == st.waiting or leaked) and reason:
            status = reason
        text = f"goroutine {gid}"
        if not self.plain:
            text += f" gp={addr:#x}" + (f" m={self._mid(mp)} mp={mp:#x}" if mp else " m=nil")
        text += " [" + status
        if leaked:
            text += " (leaked)"
        if scan:
            text += " (scan)"
        if bubble and code == st.waiting and self.idle.get(reason) \
                and not status.endswith("(durable)"):
            text += " (durable)"
        if minutes and minutes >= 1:
            text += f", {minutes} minutes"
        if locked:
            text += ", locked to thread"
        if bubble:
            text += f", synctest bubble {self._bubble_id(bubble)}"
        if group:
            text += f", synctest group {self._group_root(group)}"
        if self.labels_on and labels:
            labels = labels if isinstance(labels, dict) else dict(labels)
            if self.minor >= 27:
                return text + "] {" + ", ".join(
                    f"{_maybe_quoted(k)}: {_maybe_quoted(v)}" for k, v in labels.items()) + "}:"
            text += " labels:{" + ", ".join(
                f"{_quoted(k)}: {_quoted(v)}" for k, v in labels.items()) + "}"
        return text + "]:"

    def _read_field(self, type_name: str, path: str, addr: int, cache: dict):
        v = cache.get(addr)
        if v is None:
            v = "?"
            fl = self.rt.layout.fields(type_name, (path,))
            try:
                if fl is not None and fl.has(path):
                    v = str(fl.read(self.mem, addr)[path])
            except DecodeError:
                pass
            cache[addr] = v
        return v

    def _mid(self, mp: int) -> str:
        return self._read_field("runtime.m", "id", mp, self.mids)

    def _bubble_id(self, bubble: int) -> str:
        return self._read_field("runtime.synctestBubble", "id", bubble, self.bubbles)

    def _group_root(self, group: int) -> str:
        key = ("group", group)
        v = self.bubbles.get(key)
        if v is None:
            v = "?"
            gl = self.rt.layout.fields("runtime.synctestGroup", ("root",))
            try:
                root = gl.read(self.mem, group)["root"] if gl is not None else None
                if root:
                    v = self._read_field("runtime.g", "goid", root, {})
            except DecodeError:
                pass
            self.bubbles[key] = v
        return v


def _debug_flag(rt, name: str) -> Optional[int]:
    """runtime.debug.NAME (a GODEBUG setting as the process has it), or None."""
    try:
        t = rt.target.symbol_type("runtime.debug")
        a = rt.target.symbol_address("runtime.debug")
        if t is None or not a:
            return None
        fl = Fields(t, (name,))
        return fl.read(rt.mem, a)[name] if fl.has(name) else None
    except DecodeError:
        return None


def _idle_in_synctest(rt) -> dict:
    """wait reason string -> runtime.isIdleInSynctest[reason], where the binary has it."""
    reasons = rt.layout.wait_reasons
    try:
        a = rt.target.symbol_address("runtime.isIdleInSynctest")
        if not a or not reasons:
            return {}
        flags = rt.mem.read(a, len(reasons))
    except DecodeError:
        return {}
    return {r: bool(b) for r, b in zip(reasons, flags)}


def _quoted(s: str) -> str:
    """The runtime's printquoted."""
    out = ['"']
    for ch in s:
        r = ord(ch)
        if ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif ch in "\\\"":
            out.append("\\" + ch)
        elif 0x20 <= r <= 0x7e:
            out.append(ch)
        elif r < 127:
            out.append(f"\\x{r:02x}")
        elif r < 0x10000:
            out.append(f"\\u{r:04x}")
        else:
            out.append(f"\\U{r:08x}")
    out.append('"')
    return "".join(out)


def _maybe_quoted(s: str) -> str:
    """Go 1.27's labels: quoted only when something needs it (tracebackStringNeedsQuoting)."""
    for ch in s:
        if not (ch.isascii() and (ch.isalnum() or ch in "./_")):
            return _quoted(s)
    return s


class _Stacks:
    """The physical unwinds of many goroutines, with recipes (see traceback)."""

    MAX_RECIPES = 16

    def __init__(self, unwinder, rules: "_Rules", minor: int):
        self.unwinder, self.tab, self.mem = unwinder, unwinder.tab, unwinder.mem
        self.rules, self.minor = rules, minor
        self.recipes: dict = {}     # (pc, hi - sp, trap) -> [(Recipe, result)]
        self.results: list = []     # (frames, elided, elided_at, error) per goroutine

    def unwind_all(self, starts: list) -> None:
        """starts: (pc, sp, lo, hi, trap) per goroutine; results in the same order."""
        results = self.results = [None] * len(starts)
        groups: dict = {}
        for i, (pc, sp, lo, hi, trap) in enumerate(starts):
            if pc and lo <= sp < hi:
                groups.setdefault((pc, hi - sp, trap), []).append(i)
            else:
                results[i] = self._one(*starts[i])
        for key, members in groups.items():
            todo = members
            for _ in range(self.MAX_RECIPES + 1):
                if not todo:
                    break
                first = todo[0]
                results[first] = self._one(*starts[first])
                rest = todo[1:]
                recipes = self.recipes.get(key) or ()
                if not rest or not recipes:
                    todo = []
                    for i in rest:
                        results[i] = self._one(*starts[i])
                    break
                recipe, result = recipes[-1]
                same = recipe.matches(self.mem, [starts[i][1] for i in rest]).tolist()
                todo = []
                for i, ok in zip(rest, same):
                    if ok:
                        results[i] = result
                    else:
                        todo.append(i)
            for i in todo:
                results[i] = self._one(*starts[i])

    def _one(self, pc, sp, lo, hi, trap):
        key = (pc, hi - sp, trap)
        phys, err, recipe, complete = self.unwinder.physical(pc, sp, lo, hi, trap)
        if not complete:
            return ((), None, 0, err)
        result = _select(self.tab, phys, sp, self.rules, self.minor) + (err,)
        recipes = self.recipes.setdefault(key, [])
        if recipe is not None and recipe.offsets and len(recipes) < self.MAX_RECIPES:
            recipes.append((recipe, result))
        return result


def _logical(tab, phys):
    """Every logical frame: (name, func_id, file, line, inlined, physical index)."""
    out = []
    for i, (fn, pc, sym, sp, fp) in enumerate(phys):
        for lf in tab.frames(sym):
            out.append((lf.function, lf.func_id, lf.file, lf.line, lf.inlined, i))
    return out


def _select(tab, phys, base: int, rules: _Rules, minor: int) -> tuple:
    """(frames, elided line or None, where it goes) of one unwind, as the runtime
    prints them at this level."""
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
    elided, elided_at = None, 0
    if minor < 21:
        if len(frames) >= 100:
            frames = frames[:100]
            elided, elided_at = "...additional frames elided...", 100
    elif len(frames) > 100:
        elided, elided_at = f"...{len(frames) - 100} frames elided...", 50
        frames = frames[:50] + frames[-50:]
    out = []
    for name, func_id, file, line, inlined, i in frames:
        fn, pc, sym, sp, fp = phys[i]
        out.append(TFrame(_print_name(name), file, line, inlined, pc, fn.entry, fp - base,
                          sp - base, sym))
    return tuple(out), elided, elided_at


# --- arguments (--args): printArgs ------------------------------------------------------
_END_SEQ, _START_AGG, _END_AGG, _DOTDOTDOT, _TOO_LARGE = 0xff, 0xfe, 0xfd, 0xfc, 0xfb
_ARGS_MAX_LEN = (5 * 3 + 2) * 10 + 1    # abi.TraceArgsMaxLen
UNREADABLE = "?unreadable"


class ArgPrinter:
    """The runtime's printArgs: each frame's argument words as its traceback prints them,
    from FUNCDATA_ArgInfo (offsets and sizes from the frame's argp = fp, aggregates in
    {}, ... and _ where it stops), with ? after a word whose register spill slot
    FUNCDATA_ArgLiveInfo says is not live at the frame's pc. A word that cannot be read
    is written ?unreadable."""

    def __init__(self, tab, mem):
        self.tab, self.mem = tab, mem
        self.ops: dict = {}        # entry -> (ops, live info or None)

    def _ops(self, fn):
        hit = self.ops.get(fn.entry)
        if hit is None:
            raw = self.tab.funcdata_bytes(fn, FUNCDATA_ArgInfo, _ARGS_MAX_LEN)
            ops = []
            if raw:
                i = 0
                while i < len(raw):
                    o = raw[i]
                    i += 1
                    if o == _END_SEQ:
                        break
                    if o in (_START_AGG, _END_AGG, _DOTDOTDOT, _TOO_LARGE):
                        ops.append((o, 0))
                    elif i < len(raw):
                        ops.append((o, raw[i]))
                        i += 1
            live = self.tab.funcdata_addr(fn, FUNCDATA_ArgLiveInfo)
            hit = self.ops[fn.entry] = (ops, live)
        return hit

    def text(self, frame: TFrame, fp: int, stack: Optional[tuple] = None) -> str:
        """The words between the parentheses. stack: (base address, bytes) holding
        the frame's argument area, else it is read."""
        fn = self.tab.func_for_pc(frame.pc)
        if fn is None:
            return ""
        ops, live = self._ops(fn)
        if not ops:
            return ""
        live_idx = self.tab.pcdata(fn, PCDATA_ArgLiveIndex, frame.sym) if live is not None else -1
        start_off = 0xff
        bits = b""
        if live is not None:
            raw = self.tab.funcdata_bytes(fn, FUNCDATA_ArgLiveInfo, 1 + max(live_idx, 0) + 32)
            if raw:
                start_off = raw[0]
                bits = raw[live_idx:] if live_idx > 0 else b""
        out, start, slot = [], True, 0
        for o, size in ops:
            if o == _START_AGG:
                if not start:
                    out.append(", ")
                out.append("{")
                start = True
                continue
            if o == _END_AGG:
                out.append("}")
            elif o == _DOTDOTDOT:
                if not start:
                    out.append(", ")
                out.append("...")
            elif o == _TOO_LARGE:
                if not start:
                    out.append(", ")
                out.append("_")
            else:
                if not start:
                    out.append(", ")
                word = self._word(fp + o, stack)
                if word is None:
                    out.append(UNREADABLE)
                else:
                    if size < 8:
                        word &= (1 << (8 * size)) - 1
                    out.append(f"{word:#x}")
                    if live is not None and live_idx > 0 and o >= start_off:
                        k = slot // 8
                        if k >= len(bits) or not bits[k] & (1 << (slot % 8)):
                            out.append("?")
                if o >= start_off:
                    slot += 1
            start = False
        return "".join(out)

    def _word(self, addr: int, stack) -> Optional[int]:
        if stack is not None:
            base, data = stack
            if base <= addr and addr + 8 <= base + len(data):
                return _u64(data, addr - base)[0]
        try:
            return _u64(self.mem.read(addr, 8))[0]
        except (DecodeError, struct.error):
            return None
