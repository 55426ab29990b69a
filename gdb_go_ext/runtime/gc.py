"""The garbage collector's state: cycles, phase, pacer settings, the heap goal, the
pause history, and the heap in brief, from runtime.memstats, runtime.gcController,
runtime.gcphase and runtime.mheap_.

Every field is found by name in the binary's DWARF (layout.Fields: through atomic
wrappers; a field the version lacks reads as None and is named in `unread`), never by
version. The pause history is what runtime/debug.ReadGCStats returns (readGCStats_m's
ring arithmetic over memstats.pause_ns and pause_end); the heap goal is what
gcControllerState.heapGoal computes (MemStats.NextGC), with the constants it uses
read from the binary's DWARF where it has them.
"""
from __future__ import annotations

import struct
import time
from dataclasses import dataclass, field
from typing import Optional

from ..binary import types as T
from ..binary.dwarfconst import int_constant
from ..errors import DecodeError, ReadError
from .clock import core_now

U64 = (1 << 64) - 1
U32 = (1 << 32) - 1
MAX_PAUSES = 4096          # the ring is 256 long; a DWARF claiming more is not believed
MIN_RUNWAY = 64 << 10      # heapGoalInternal's minRunway (a function-local constant)

_MSTATS = ("numgc", "numforcedgc", "last_gc_unix", "last_gc_nanotime", "pause_total_ns",
           # where Go before 1.19 kept these (read only where the binary has them)
           "heap_inuse", "heap_released", "heap_sys", "heap_alloc", "heap_live",
           "heap_marked", "next_gc", "gc_trigger")
_CONTROLLER = ("gcPercent", "memoryLimit", "heapLive", "heapMarked", "gcPercentHeapGoal",
               "sweepDistMinTrigger", "triggered", "heapGoal", "heapInUse", "heapFree",
               "heapReleased", "totalAlloc", "totalFree", "mappedReady")
_MHEAP = ("spanalloc.inuse", "spanalloc.size")

PHASES = (("_GCoff", 0, "off"), ("_GCmark", 1, "mark"),
          ("_GCmarktermination", 2, "mark termination"))


@dataclass
class GCState:
    num_gc: Optional[int] = None
    num_forced_gc: Optional[int] = None
    phase_code: Optional[int] = None
    phase: Optional[str] = None              # "off", "mark", "mark termination"
    running: Optional[bool] = None           # a cycle is in progress (phase is not off)
    gc_percent: Optional[int] = None         # GOGC; negative: off
    memory_limit: Optional[int] = None       # GOMEMLIMIT in bytes
    heap_live: Optional[int] = None
    heap_marked: Optional[int] = None
    heap_goal: Optional[int] = None          # as gcController.heapGoal() computes it
    heap_goal_by: Optional[str] = None       # which rule set it (see heap_goal)
    last_gc_unix_ns: Optional[int] = None    # memstats.last_gc_unix
    last_gc_nanotime: Optional[int] = None   # memstats.last_gc_nanotime
    now_ns: int = 0                          # the walk's clock (nanotime), 0 if unknown
    clock: str = ""                          # what that clock was
    pause_total_ns: Optional[int] = None
    pauses: list = field(default_factory=list)   # [(ns, end_unix_ns)], most recent first
    heap: dict = field(default_factory=dict)     # heap_alloc, heap_sys, heap_inuse, ...
    unread: list = field(default_factory=list)   # what this binary or memory did not give
    errors: list = field(default_factory=list)

    @property
    def last_gc_ago_ns(self) -> Optional[int]:
        """How long before the walk's clock the last GC ended."""
        if not self.now_ns or not self.last_gc_nanotime:
            return None
        return self.now_ns - self.last_gc_nanotime


def _read_struct(rt, type_name: str, sym: str, paths, arrays=(), errors=None):
    """({path: value or None}, {array name: list of u64} , whether it was read) of the
    global sym of type type_name: one read covering the fields and arrays asked for."""
    fields = rt.layout.fields(type_name, paths)
    addr = rt.target.symbol_address(sym)
    if fields is None or addr is None:
        errors.append(f"the binary has no {sym if addr is None else type_name}")
        return {p: None for p in paths}, {}, False
    spans = [(off, size) for off, _, size in fields.spec.values()]
    arr_at = {}
    for name in arrays:
        found = fields.type.find(name)
        if found is not None and found[1].kind == T.ARRAY and found[1].elem is not None \
                and found[1].elem.size == 8 and 0 < found[1].length <= MAX_PAUSES:
            arr_at[name] = (found[0], found[1].length)
            spans.append((found[0], 8 * found[1].length))
    if not spans:
        return {p: None for p in paths}, {}, False
    lo = min(o for o, _ in spans)
    hi = max(o + s for o, s in spans)
    try:
        buf = rt.mem.read(addr + lo, hi - lo)
    except ReadError as e:
        errors.append(f"cannot read {sym}: {e}")
        return {p: None for p in paths}, {}, False
    out = fields.unpack(buf, -lo)
    for p in paths:
        out.setdefault(p, None)
    arrs = {name: list(struct.unpack_from(f"<{n}Q", buf, off - lo))
            for name, (off, n) in arr_at.items()}
    return out, arrs, True


def _constant(rt, name: str) -> Optional[int]:
    try:
        return int_constant(rt.elf, name)
    except Exception:   # a damaged executable: the constant is unknown
        return None


def read_gc(rt) -> GCState:
    """The GC's state of the target's current stop. Never raises for bad memory: what
    cannot be read is None, named in .unread, and each failure is one line in .errors."""
    s = GCState()
    errors = s.errors
    ms, arrs, _ = _read_struct(rt, "runtime.mstats", "runtime.memstats", _MSTATS,
                               ("pause_ns", "pause_end"), errors)
    gc, _, _ = _read_struct(rt, "runtime.gcControllerState", "runtime.gcController",
                            _CONTROLLER, (), errors)
    mh, _, _ = _read_struct(rt, "runtime.mheap", "runtime.mheap_", _MHEAP, (), errors)

    def first(*vals):
        return next((v for v in vals if v is not None), None)

    s.num_gc = ms["numgc"]
    s.num_forced_gc = ms["numforcedgc"]
    s.last_gc_unix_ns = ms["last_gc_unix"]
    s.last_gc_nanotime = ms["last_gc_nanotime"]
    s.pause_total_ns = ms["pause_total_ns"]
    s.gc_percent = gc["gcPercent"]
    s.memory_limit = gc["memoryLimit"]
    s.heap_live = first(gc["heapLive"], ms["heap_live"])
    s.heap_marked = first(gc["heapMarked"], ms["heap_marked"])

    # the phase
    addr = rt.target.symbol_address("runtime.gcphase")
    if addr is None:
        errors.append("the binary has no runtime.gcphase")
    else:
        try:
            s.phase_code = rt.mem.u32(addr)
        except ReadError as e:
            errors.append(f"cannot read runtime.gcphase: {e}")
    if s.phase_code is not None:
        names = {first(_constant(rt, "runtime." + c), v): n for c, v, n in PHASES}
        s.phase = names.get(s.phase_code, f"phase {s.phase_code}")
        s.running = s.phase_code != first(_constant(rt, "runtime._GCoff"), 0)

    # the pause history, as readGCStats_m gives it to runtime/debug.ReadGCStats
    pns, pend = arrs.get("pause_ns"), arrs.get("pause_end")
    if s.num_gc is not None and pns and pend and len(pns) == len(pend):
        ring = len(pns)
        for i in range(min(s.num_gc, ring)):
            j = ((s.num_gc - 1 - i) & U32) % ring
            s.pauses.append((pns[j], pend[j]))

    s.heap_goal, s.heap_goal_by = _heap_goal(rt, gc, ms, errors)

    # the heap in brief, as ReadMemStats computes each
    h = s.heap
    if gc["totalAlloc"] is not None and gc["totalFree"] is not None:
        h["heap_alloc"] = (gc["totalAlloc"] - gc["totalFree"]) & U64
    else:
        h["heap_alloc"] = ms["heap_alloc"]
    parts = (gc["heapInUse"], gc["heapFree"], gc["heapReleased"])
    h["heap_sys"] = sum(parts) & U64 if None not in parts else ms["heap_sys"]
    h["heap_inuse"] = first(gc["heapInUse"], ms["heap_inuse"])
    h["heap_released"] = first(gc["heapReleased"], ms["heap_released"])
    inuse, size = mh["spanalloc.inuse"], mh["spanalloc.size"]
    h["spans_inuse"] = inuse // size if inuse is not None and size else None

    # the walk's clock: the one goroutine views use (live: CLOCK_MONOTONIC; a core:
    # the latest stamp the runtime left)
    if rt.target.is_live:
        s.now_ns, s.clock = time.monotonic_ns(), "live: CLOCK_MONOTONIC now"
    else:
        try:
            ns, where = core_now(rt)
        except (DecodeError, ReadError) as e:
            ns, where = 0, ""
            errors.append(f"cannot read the core's clock: {e}")
        s.now_ns, s.clock = ns, (f"core: latest runtime stamp ({where})" if ns else "")

    named = {"num_gc": "memstats.numgc", "num_forced_gc": "memstats.numforcedgc",
             "last_gc_unix_ns": "memstats.last_gc_unix", "pause_total_ns": "memstats.pause_total_ns",
             "gc_percent": "gcController.gcPercent", "memory_limit": "gcController.memoryLimit",
             "heap_live": "gcController.heapLive", "heap_marked": "gcController.heapMarked",
             "heap_goal": "gcController.heapGoal()", "phase": "runtime.gcphase"}
    s.unread = [src for attr, src in named.items() if getattr(s, attr) is None]
    if not (pns and pend):
        s.unread.append("memstats.pause_ns/pause_end")
    heap_src = {"heap_alloc": "gcController.totalAlloc-totalFree", "heap_sys": "heapInUse+heapFree+heapReleased",
                "heap_inuse": "gcController.heapInUse", "heap_released": "gcController.heapReleased",
                "spans_inuse": "mheap_.spanalloc.inuse/size"}
    s.unread += [src for k, src in heap_src.items() if h.get(k) is None]
    return s


def _heap_goal(rt, gc: dict, ms: dict, errors: list) -> tuple:
    """(goal, the rule that set it) as gcControllerState.heapGoal computes it:
    gcPercentHeapGoal, or the memory limit's goal when lower, else pushed up to the
    sweep distance's minimum trigger and to minRunway past the trigger point. For a
    binary without gcPercentHeapGoal, the goal field it keeps (heapGoal, next_gc)."""
    goal = gc["gcPercentHeapGoal"]
    if goal is None:
        old = gc["heapGoal"] if gc["heapGoal"] is not None else ms["next_gc"]
        return old, ("recorded" if old is not None else None)
    limit_goal = _memory_limit_goal(rt, gc, errors)
    if limit_goal is not None and limit_goal < goal \
            and _constant(rt, "runtime.go119MemoryLimitSupport") != 0:
        return limit_goal, "memory_limit"
    by = "gc_percent"
    sweep = gc["sweepDistMinTrigger"]
    if sweep is not None and sweep > goal:
        goal, by = sweep, "sweep_distance"
    trig = gc["triggered"]
    if trig is not None and trig != U64 and goal < ((trig + MIN_RUNWAY) & U64):
        goal, by = (trig + MIN_RUNWAY) & U64, "min_runway"
    return goal, by


def _memory_limit_goal(rt, gc: dict, errors: list) -> Optional[int]:
    """gcControllerState.memoryLimitHeapGoal, in the runtime's uint64 arithmetic; None
    where the binary has no memory limit or its counters are missing."""
    need = ("memoryLimit", "heapFree", "totalAlloc", "totalFree", "mappedReady", "heapMarked")
    if any(gc[k] is None for k in need):
        return None
    heap_free = gc["heapFree"]
    heap_alloc = (gc["totalAlloc"] - gc["totalFree"]) & U64
    mapped = gc["mappedReady"]
    if heap_free + heap_alloc > mapped:
        # the runtime spins until these agree; a stopped target caught them mid-update
        errors.append("the memory-limit heap goal is unknown: the runtime's counters were "
                      "caught mid-update (heapFree+heapAlloc > mappedReady)")
        return None
    limit = gc["memoryLimit"] & U64
    marked = gc["heapMarked"]
    non_heap = (mapped - heap_free - heap_alloc) & U64
    overage = mapped - limit if mapped > limit else 0
    if (non_heap + overage) & U64 >= limit:
        return marked
    goal = (limit - (non_heap + overage)) & U64
    pct = _constant(rt, "runtime.memoryLimitHeapGoalHeadroomPercent")
    flat = _constant(rt, "runtime.memoryLimitHeapGoalHeadroom")
    if pct is None and flat is not None:          # Go 1.19-1.20: a flat headroom
        headroom = flat
    else:                                         # since: a percentage, with a minimum
        headroom = goal // 100 * (3 if pct is None else pct)
        least = _constant(rt, "runtime.memoryLimitMinHeapGoalHeadroom")
        headroom = max(headroom, 1 << 20 if least is None else least)
    if goal < headroom or goal - headroom < headroom:
        goal = headroom
    else:
        goal -= headroom
    return max(goal, marked)
