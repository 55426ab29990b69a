"""The scheduler: runtime.sched's counters, every P of runtime.allp (status, ticks, its
M, its local run queue with runnext, free gs, timers and the next one), every M (the
model of threads.py), the global run queue, and for the SCHED detail every g's status,
wait reason, M and locked M, as `schedtrace(true)` in proc.go reads them.

Layouts come from layout.SchedLayout (field presence, never a version number). Reads
are bulk where there are many (allp, the P structs, run queue entries, every g) and
everything is bounded: a garbage P or M pointer, an allp longer than the memory
behind it, a run queue whose head is past its tail, a cycle in the global queue each
become one line in `errors` and a partial result.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Optional

from ..errors import DecodeError, ReadError
from .threads import os_threads

MAX_PS = 1 << 12            # the runtime's GOMAXPROCS limit is below this
MAX_GLOBAL_RUNQ = 1 << 22
MAX_TIMERS = 1 << 26
_U32 = 1 << 32
_WORD = struct.Struct("<Q")
_SLICE = struct.Struct("<QQQ")

# the _P* constants by value, where the binary's DWARF has none of their names
P_STATUS_NAMES = {0: "idle", 1: "running", 2: "syscall", 3: "gcstop", 4: "dead"}
_P_CONSTANTS = ("_Pidle", "_Prunning", "_Psyscall", "_Psyscall_unused", "_Pgcstop", "_Pdead")

# the summary: (name the runtime prints, schedt path); gomaxprocs, threads and
# netpollwaiters come from elsewhere
SUMMARY = ("gomaxprocs", "idleprocs", "threads", "spinningthreads", "needspinning",
           "idlethreads", "runqueue", "gcwaiting", "nmidlelocked", "stopwait", "sysmonwait",
           "netpollwaiters")
_FROM_SCHED = {"idleprocs": "npidle", "spinningthreads": "nmspinning",
               "needspinning": "needspinning", "idlethreads": "nmidle",
               "gcwaiting": "gcwaiting", "nmidlelocked": "nmidlelocked",
               "stopwait": "stopwait", "sysmonwait": "sysmonwait"}


@dataclass(slots=True)
class NextTimer:
    when: int                  # nanotime it fires at
    function: str              # what it will call (time.sendTime, time.goFunc, ...), or ""
    pc: int


@dataclass(slots=True)
class P:
    index: int                 # in allp (the runtime prints P<index>)
    addr: int
    id: Optional[int] = None
    status: Optional[int] = None
    status_name: str = ""
    schedtick: Optional[int] = None
    syscalltick: Optional[int] = None
    m: Optional[int] = None    # its M's id
    m_addr: int = 0
    runqsize: Optional[int] = None   # tail - head, as the runtime counts it (uint32)
    runq: list = field(default_factory=list)   # goroutine ids, head first
    runnext: Optional[int] = None
    gfreecnt: Optional[int] = None
    timerslen: Optional[int] = None
    next_timer: Optional[NextTimer] = None
    error: Optional[str] = None


@dataclass(slots=True)
class GLine:
    """One g as the SCHED detail prints it."""
    goid: int
    status: int                # readgstatus: with the scan bit
    waitreason: int
    m: Optional[int]           # ids of g.m and g.lockedm; None for nil
    lockedm: Optional[int]
    error: Optional[str] = None


@dataclass(slots=True)
class Sched:
    summary: dict              # SUMMARY name -> int or bool (None: not in this version)
    ps: list
    ms: list                   # threads.OSThread, in allm order
    global_runq: list          # goroutine ids, head first (as many as asked for)
    global_runq_size: int
    now_ns: int                # the walk's clock (0: none on this core)
    clock: str
    starttime: Optional[int]   # runtime.starttime: the first schedtrace's nanotime
    nil_form: bool             # the runtime prints nil (else -1) for no P, M or G
    bools: frozenset           # summary names the runtime prints as true/false
    where: dict = field(default_factory=dict)   # M id -> Location of its curg
    gs: Optional[list] = None  # GLine per g of allgs, when asked for
    errors: list = field(default_factory=list)


def decode_sched(rt, runq_limit: Optional[int] = None, with_gs: bool = False,
                 with_where: bool = True) -> Sched:
    """The scheduler of rt's stop. runq_limit: how many of the global run queue's ids to
    read (None: all of them); with_gs: every g's SCHED detail line; with_where: where
    each M's curg is. Raises DecodeError only when the binary has no runtime.p or
    runtime.schedt; everything else is an entry of .errors."""
    from .goroutines import GoroutineWalker
    lay = rt.layout.sched
    if lay.p is None or lay.sched is None:
        raise DecodeError("the binary has no type runtime.p or runtime.schedt")
    mem, target = rt.mem, rt.target
    errors: list = []
    walker = GoroutineWalker(rt)
    now, clock = walker.now_ns()

    # runtime.sched
    try:
        sf = lay.sched.read(mem, rt.global_addr("runtime.sched"))
    except (ReadError, DecodeError) as e:
        errors.append(f"cannot read runtime.sched: {e}")
        sf = {}
    summary: dict = {}
    for name, path in _FROM_SCHED.items():
        v = sf.get(path)
        if v is None:
            v = sf.get(path + ".u")   # an atomic.Bool: its atomic.Uint8
        summary[name] = bool(v) if v is not None and path in lay.bools else v
    size = sf.get("runq.size") if sf.get("runq.size") is not None else sf.get("runqsize")
    summary["runqueue"] = size
    mnext, nmfreed = sf.get("mnext"), sf.get("nmfreed")
    summary["threads"] = _int32(mnext - nmfreed) if mnext is not None and nmfreed is not None \
        else None
    summary["gomaxprocs"] = _global_int(rt, "runtime.gomaxprocs", 4, errors)
    summary["netpollwaiters"] = _global_int(rt, "runtime.netpollWaiters", 4, errors, signed=False)
    starttime = _global_int(rt, "runtime.starttime", 8, errors)

    ms, m_errors = _ms(rt)
    errors += m_errors
    m_ids = {t.addr: t.m for t in ms}
    goid_off = lay.g.offset("goid") if lay.g is not None else None
    ps = _ps(rt, lay, m_ids, goid_off, now, errors)
    if summary["gomaxprocs"] is None:
        summary["gomaxprocs"] = len(ps)

    limit = MAX_GLOBAL_RUNQ if runq_limit is None else max(0, min(runq_limit, MAX_GLOBAL_RUNQ))
    grunq = _global_runq(rt, lay, sf.get("runq.head") or 0, size or 0, limit, walker, errors)

    where = {}
    if with_where:
        running = [t for t in ms if t.curg_addr]
        try:
            for t, g in zip(running, walker.decode_at([t.curg_addr for t in running])):
                loc = (g.user or g.current) if g is not None else None
                if loc is not None:
                    where[t.m] = loc
        except DecodeError as e:
            errors.append(f"where the Ms' goroutines are: {e}")
    gs = _g_lines(rt, walker, m_ids, errors) if with_gs else None
    errors += [e for e in walker.errors if e not in errors]
    return Sched(summary, ps, ms, grunq, size or 0, now, clock or "", starttime, lay.nil_form,
                 frozenset(n for n, p in _FROM_SCHED.items() if p in lay.bools), where, gs,
                 errors)


def _int32(v: int) -> int:
    v &= 0xffffffff
    return v - _U32 if v >= 1 << 31 else v


def _global_int(rt, name: str, size: int, errors: list, signed: bool = True) -> Optional[int]:
    addr = rt.target.symbol_address(name)
    if addr is None:
        return None
    try:
        return int.from_bytes(rt.mem.read(addr, size), "little", signed=signed)
    except ReadError as e:
        errors.append(f"cannot read {name}: {e}")
        return None


def _ms(rt) -> tuple:
    try:
        return os_threads(rt)
    except DecodeError as e:
        return [], [f"the Ms: {e}"]


def p_status_names(rt) -> dict:
    """{status code: name}: from the binary's DWARF constants (_Pidle, ... as named in its
    own source) where it has them, else the _P* constants of the runtime's source."""
    return rt.per_binary("sched.p_status_names", lambda: _p_status_names(rt))


def _p_status_names(rt) -> dict:
    names = {}
    try:   # (binary.dwarfconst reads constants out of the ELF file's DWARF)
        from ..binary.dwarfconst import int_constant
        for c in _P_CONSTANTS:
            v = int_constant(rt.elf, "runtime." + c)
            if v is not None and v not in names:
                names[v] = c[2:]
    except (ImportError, DecodeError, OSError):
        names = {}
    return names or dict(P_STATUS_NAMES)


def _ps(rt, lay, m_ids: dict, goid_off, now: int, errors: list) -> list:
    """Every P of runtime.allp, in order."""
    mem = rt.mem
    try:
        arr, n, cap = _SLICE.unpack(mem.read(rt.global_addr("runtime.allp"), 24))
    except (ReadError, DecodeError) as e:
        errors.append(f"cannot read runtime.allp: {e}")
        return []
    if n > cap or n > MAX_PS:
        errors.append(f"runtime.allp has an absurd length {n} (capacity {cap}); "
                      f"reading at most {min(n, MAX_PS)}")
        n = min(n, MAX_PS)
    if n == 0:
        return []
    try:
        addrs = list(struct.unpack(f"<{n}Q", mem.read(arr, 8 * n)))
    except ReadError:
        addrs = []   # allp longer than the memory behind it: as many as can be read
        for i in range(n):
            try:
                addrs.append(mem.ptr(arr + 8 * i))
            except ReadError:
                break
        errors.append(f"runtime.allp has length {n} but only {len(addrs)} of its "
                      f"pointers can be read")
    names = p_status_names(rt)
    pf = lay.p
    ps = []
    bufs = mem.gather([(a, pf.size) for a in addrs])
    runq_gs = []   # (P, is runnext, g addr): goids read in bulk after
    for i, (a, got) in enumerate(zip(addrs, bufs)):
        p = P(i, a)
        ps.append(p)
        if not a:
            p.error = "nil P in runtime.allp"
            errors.append(f"P{i}: {p.error}")
            continue
        if got.__class__ is not tuple:
            p.error = f"cannot read the P: {got}"
            errors.append(f"P{i} at {a:#x}: {p.error}")
            continue
        buf, base = got
        f = pf.unpack(buf, base)
        p.id, p.status = f.get("id"), f.get("status")
        p.status_name = names.get(p.status, f"status {p.status}") if p.status is not None else ""
        p.schedtick, p.syscalltick = f.get("schedtick"), f.get("syscalltick")
        p.m_addr = f.get("m") or 0
        if p.m_addr:
            p.m = m_ids.get(p.m_addr)
            if p.m is None:
                p.m = _m_id_at(rt, p.m_addr, errors)
        p.gfreecnt = f.get("gFree.size") if f.get("gFree.size") is not None else f.get("gFree.n")
        head, tail = f.get("runqhead"), f.get("runqtail")
        if head is not None and tail is not None:
            p.runqsize = (tail - head) % _U32
            if lay.runq is not None:
                off, length = lay.runq
                if p.runqsize > length:
                    p.error = f"run queue head {head} is past its tail {tail}" if \
                        (tail - head) % _U32 >= 1 << 31 else \
                        f"run queue holds {p.runqsize} goroutines, more than its {length} slots"
                    errors.append(f"P{i}: {p.error}")
                else:
                    for k in range(p.runqsize):
                        g = _WORD.unpack_from(buf, base + off + 8 * ((head + k) % length))[0]
                        runq_gs.append((p, False, g))
        nxt = f.get("runnext")
        if nxt:
            runq_gs.append((p, True, nxt))
        _timers(rt, lay, p, buf, base, errors)
    # the goroutine ids of every run queue entry, in one gather
    if runq_gs and goid_off is not None:
        got = mem.gather([(g + goid_off, 8) for _, _, g in runq_gs])
        for (p, is_next, g), r in zip(runq_gs, got):
            if r.__class__ is not tuple:
                errors.append(f"P{p.index}: a run queue entry {g:#x} cannot be read: {r}")
                goid = -1
            else:
                goid = _WORD.unpack_from(*r)[0]
            if is_next:
                p.runnext = goid
            else:
                p.runq.append(goid)
    return ps


def _m_id_at(rt, addr: int, errors: list) -> Optional[int]:
    mf = rt.layout.fields("runtime.m", ("id",))
    if mf is None or not mf.has("id"):
        return None
    try:
        return mf.read(rt.mem, addr)["id"]
    except ReadError as e:
        errors.append(f"an M not on runtime.allm: {e}")
        return None


def _timers(rt, lay, p: P, buf, base: int, errors: list) -> None:
    """p.timerslen and p.next_timer (the heap's first: the earliest), from the P's bytes."""
    if lay.timers is None:
        return
    arr, n, cap = _SLICE.unpack_from(buf, base + lay.timers_off)
    p.timerslen = n
    if not n:
        return
    if n > cap or n > MAX_TIMERS:
        errors.append(f"P{p.index}: an absurd timer heap length {n} (capacity {cap})")
        return
    mem = rt.mem
    try:
        if lay.timers == "heap":
            entry = mem.read(arr, lay.esize)
            t = _WORD.unpack_from(entry, lay.tw_timer)[0]
            when = struct.unpack_from("<q", entry, lay.tw_when)[0]
        else:
            t = mem.ptr(arr)
            when = struct.unpack("<q", mem.read(t + lay.timer_when, 8))[0] \
                if lay.timer_when is not None else 0
        pc = 0
        if t and lay.timer_f is not None:
            fv = mem.ptr(t + lay.timer_f)    # a func value: its first word is the code
            pc = mem.ptr(fv) if fv else 0
    except ReadError as e:
        errors.append(f"P{p.index}: its next timer cannot be read: {e}")
        return
    name = ""
    if pc:
        try:
            fn = rt.pclntab.func_for_pc(pc)
            name = fn.name if fn is not None else f"{pc:#x}"
        except DecodeError:
            name = f"{pc:#x}"
    p.next_timer = NextTimer(when, name, pc)


def _global_runq(rt, lay, head: int, size: int, limit: int, walker, errors: list) -> list:
    """The ids of the global run queue, head first: at most min(size, limit), following
    g.schedlink; a long one is followed over every g read in bulk."""
    gl = lay.g
    want = min(size, limit) if size >= 0 else 0
    if not head or not want or gl is None or not (gl.has("goid") and gl.has("schedlink")):
        if size > 0 and not head:
            errors.append(f"the global run queue counts {size} goroutines but has no head")
        return []
    goid_off, link_off = gl.offset("goid"), gl.offset("schedlink")
    lo, hi = min(goid_off, link_off), max(goid_off, link_off) + 8
    if want > 4096:
        links = _all_links(walker, goid_off, link_off, errors)
        if links is not None:
            return _follow(head, want, size, lambda g: links.get(g), errors)

    def one(g):
        b = rt.mem.read(g + lo, hi - lo)
        return _WORD.unpack_from(b, goid_off - lo)[0], _WORD.unpack_from(b, link_off - lo)[0]
    return _follow(head, want, size, one, errors)


def _follow(head: int, want: int, size: int, step, errors: list) -> list:
    out = []
    seen = set()
    g = head
    while g and len(out) < want:
        if g in seen:
            errors.append(f"the global run queue has a cycle after {len(out)} goroutines")
            return out
        seen.add(g)
        try:
            got = step(g)
        except ReadError as e:
            got = None
            why = str(e)
        else:
            why = "not a g of runtime.allgs"
        if got is None:
            errors.append(f"the global run queue breaks after {len(out)} of {size} "
                          f"goroutines: {g:#x}: {why}")
            return out
        out.append(got[0])
        g = got[1]
    if len(out) < want:
        errors.append(f"the global run queue ends after {len(out)} goroutines but counts {size}")
    return out


def _all_links(walker, goid_off: int, link_off: int, errors: list) -> Optional[dict]:
    """{g addr: (goid, schedlink)} of every g of allgs, read in bulk."""
    try:
        addrs = walker.g_addrs()
    except (ReadError, DecodeError) as e:
        errors.append(f"runtime.allgs: {e}")
        return None
    lo = min(goid_off, link_off)
    gap = max(goid_off, link_off) - lo - 8
    shape = struct.Struct(f"<Q{gap}xQ")
    rows, bad = walker.mem.unpack_fixed([a + lo for a in addrs], shape)
    out = {}
    for i, (a, row) in enumerate(zip(addrs, rows)):
        if i not in bad:
            out[a] = row if goid_off < link_off else (row[1], row[0])
    return out


def _g_lines(rt, walker, m_ids: dict, errors: list) -> list:
    """The SCHED detail's line of every g of runtime.allgs, in its order (forEachG)."""
    try:
        addrs = walker.g_addrs()
    except (ReadError, DecodeError) as e:
        errors.append(f"runtime.allgs: {e}")
        return []
    glay = rt.layout.g
    at = glay.at
    i_id, i_st, i_wr, i_m, i_lm = at.goid, at.status, at.waitreason, at.m, at.lockedm
    rows, bad = rt.mem.unpack_fixed(addrs, glay.struct)
    out = []
    unknown: dict = {}
    for i, row in enumerate(rows):
        if i in bad:
            out.append(GLine(-1, 0, 0, None, None, f"cannot read the g at {addrs[i]:#x}"))
            continue
        row = row + (0,)
        m, lm = row[i_m], row[i_lm]
        mid = m_ids.get(m) if m else None
        lmid = m_ids.get(lm) if lm else None
        for a in (m, lm):
            if a and a not in m_ids and a not in unknown:
                unknown[a] = _m_id_at(rt, a, errors)
        if m and mid is None:
            mid = unknown.get(m)
        if lm and lmid is None:
            lmid = unknown.get(lm)
        out.append(GLine(row[i_id], row[i_st], row[i_wr], mid, lmid))
    if bad:
        errors.append(f"{len(bad)} gs of runtime.allgs cannot be read")
    return out
