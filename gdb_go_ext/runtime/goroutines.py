"""Every goroutine, walked from runtime.allgs, decoded from bulk reads of g structs.

Status names and wait reasons come from the binary's own tables
(runtime.gStatusStrings, runtime.waitReasonStrings); offsets from DWARF.
"""
from __future__ import annotations

import functools
import operator
import struct
import time
from dataclasses import dataclass, field
from typing import Callable, Optional

from ..errors import DecodeError, ReadError
from . import types as T
from .pclntab import wrapper_func_id
from .stack import StackFrame, Unwinder

GSCAN = 0x1000
G_IDLE, G_RUNNABLE, G_RUNNING, G_SYSCALL, G_WAITING, G_DEAD = 0, 1, 2, 3, 4, 6
MAX_GOROUTINES = 10_000_000
MAX_MS = 100_000

_WORD = struct.Struct("<Q")
_FALLBACK_STATUS = {0: "idle", 1: "runnable", 2: "running", 3: "syscall", 4: "waiting",
                    6: "dead", 8: "enqueue", 9: "copystack", 10: "preempted"}


@dataclass(slots=True)
class Location:
    function: str
    file: str
    line: int

    def to_json(self) -> dict:
        return {"function": self.function, "file": self.file, "line": self.line}

    def text(self) -> str:
        return f"{self.function} {self.file}:{self.line}"

    @staticmethod
    def of(frame: Optional[StackFrame]) -> Optional["Location"]:
        return Location(frame.function, frame.file, frame.line) if frame else None


@dataclass(slots=True)
class Goroutine:
    id: int
    addr: int
    status_code: int
    status: str
    scan: bool = False
    wait_reason: str = ""
    wait_since_ns: int = 0
    wait_minutes: Optional[int] = None
    locked_to_thread: bool = False
    labels: dict = field(default_factory=dict)
    thread: Optional[int] = None       # LWP when on a thread
    m_id: Optional[int] = None
    parent_id: Optional[int] = None
    created_by: Optional[Location] = None
    current: Optional[Location] = None
    user: Optional[Location] = None
    start: Optional[Location] = None
    stack: Optional[list] = None       # StackFrame list when asked for
    blocked_on: Optional[str] = None   # e.g. "channel 0xc000022060"
    is_current: bool = False
    error: Optional[str] = None
    # raw start of the stack walk
    pc: int = 0
    sp: int = 0
    stack_lo: int = 0
    stack_hi: int = 0

    def to_json(self, with_stack: bool) -> dict:
        d = {
            "id": self.id, "addr": f"{self.addr:#x}", "status": self.status,
            "wait_reason": self.wait_reason, "wait_minutes": self.wait_minutes,
            "locked_to_thread": self.locked_to_thread, "labels": self.labels,
            "thread": self.thread, "m": self.m_id, "parent_id": self.parent_id,
            "created_by": self.created_by.to_json() if self.created_by else None,
            "current": self.current.to_json() if self.current else None,
            "user": self.user.to_json() if self.user else None,
            "start": self.start.to_json() if self.start else None,
            "blocked_on": self.blocked_on,
            "is_current": self.is_current,
            "error": self.error,
        }
        if with_stack:
            d["stack"] = [f.to_json() for f in (self.stack or [])]
        return d


class _GLayout:
    """Offsets of the g fields we use, as one struct.Struct over the whole g."""

    FIELDS = [
        ("goid", "goid"), ("status", "atomicstatus"), ("waitreason", "waitreason"),
        ("waitsince", "waitsince"), ("sched_sp", "sched.sp"), ("sched_pc", "sched.pc"),
        ("sched_bp", "sched.bp"), ("syscallsp", "syscallsp"), ("syscallpc", "syscallpc"),
        ("stack_lo", "stack.lo"), ("stack_hi", "stack.hi"), ("m", "m"), ("lockedm", "lockedm"),
        ("gopc", "gopc"), ("startpc", "startpc"), ("parent", "parentGoid"),
        ("labels", "labels"), ("waiting", "waiting"),
    ]

    def __init__(self, g: T.GoType):
        self.size = g.size
        items = []
        for key, path in self.FIELDS:
            found = g.find(path)
            if found is None and path == "atomicstatus":
                raise DecodeError("runtime.g has no atomicstatus field")
            if found is None:
                continue
            off, t = found
            if t.kind == T.STRUCT:  # atomic wrappers: take their value field
                inner = t.find("value")
                if inner is None:
                    continue
                off += inner[0]
                t = inner[1]
            fmt = T.scalar_format(t) or ("Q" if t.size == 8 else None)
            if fmt is None:
                continue
            items.append((off, key, fmt, t.size))
        items.sort()
        fmt = "<"
        pos = 0
        self.keys = []
        for off, key, f, size in items:
            if off < pos:
                continue
            if off > pos:
                fmt += f"{off - pos}x"
            fmt += f
            pos = off + size
            self.keys.append(key)
        self.struct = struct.Struct(fmt)
        self.has_parent = "parent" in self.keys
        # every FIELDS key in FIELDS order; absent fields read as 0
        missing = len(self.keys)
        order = [self.keys.index(k) if k in self.keys else missing for k, _ in self.FIELDS]
        getter = operator.itemgetter(*order)
        unpack = self.struct.unpack_from
        self.decode = lambda buf: getter(unpack(buf, 0) + (0,))


class GoroutineWalker:
    """Decodes all goroutines of a GoRuntime."""

    def __init__(self, rt, progress: Optional[Callable[[int, int], None]] = None):
        self.rt = rt
        self.mem = rt.mem
        self.progress = progress
        self.errors: list[str] = list(getattr(rt.target, "warnings", []))
        self.glay = _GLayout(rt.type("runtime.g"))
        self.status_names = rt.status_names
        self.wait_reasons = rt.wait_reasons
        tab = rt.pclntab
        main = tab.lookup_func("runtime.main")
        goroot_src = None
        if main is not None:
            file, _ = tab.file_line(main, main.entry)
            i = file.rfind("/src/runtime/")
            if i >= 0:
                goroot_src = file[: i + len("/src/")]
        self.unwinder = Unwinder(self.mem, tab, goroot_src, wrapper_func_id(rt.layout.go_version))
        self._start_cache: dict = {}
        self._frame_locs: dict = {}
        self._keep: list = []
        self._templates: dict = {}
        self._created_cache: dict = {}

    # --- the list of g pointers
    def g_addrs(self) -> list[int]:
        allgs = self.rt.global_addr("runtime.allgs")
        arr, n, _cap = struct.unpack("<QQQ", self.mem.read(allgs, 24))
        glen = self._allglen()
        if glen and glen < n:  # a corrupt slice length must not lose every g
            if n - glen > 1:  # (allgadd stores the slice first, allglen right after)
                self.errors.append(f"runtime.allgs has length {n} but runtime.allglen is {glen};"
                                   f" reading {glen}")
            n = glen
        if n > MAX_GOROUTINES:
            self.errors.append(f"runtime.allgs has an absurd length {n}; reading the first {MAX_GOROUTINES}")
            n = MAX_GOROUTINES
        if n == 0:
            return []
        try:
            raw = self.mem.read(arr, 8 * n)
        except ReadError as e:
            self.errors.append(f"cannot read runtime.allgs: {e}")
            return []
        return list(struct.unpack(f"<{n}Q", raw))

    def _allglen(self) -> Optional[int]:
        """runtime.allglen, the runtime's own count of allgs, when readable and plausible."""
        addr = self.rt.target.symbol_address("runtime.allglen")
        if addr is None:
            return None
        try:
            n = self.mem.u64(addr)
        except ReadError:
            return None
        return n if n <= MAX_GOROUTINES else None

    # --- threads: which g runs where
    def thread_map(self) -> tuple[dict, Optional[int]]:
        """{g addr: (lwp, m id, regs Thread or None)} and the g on the selected thread."""
        by_lwp = {}
        selected_lwp = None
        try:
            for th in self.rt.target.threads():
                by_lwp[th.lwp] = th
                if th.current:
                    selected_lwp = th.lwp
        except Exception as e:  # backend trouble must not kill the listing
            self.errors.append(f"cannot list threads: {e}")
        out = {}
        current_g = None
        mt = self.rt.target.lookup_type("runtime.m")
        allm_addr = self.rt.target.symbol_address("runtime.allm")
        if mt is None or allm_addr is None:
            return out, None
        o_procid, o_curg, o_id, o_link = (mt.offset("procid"), mt.offset("curg"),
                                          mt.offset("id"), mt.offset("alllink"))
        try:
            m = self.mem.ptr(allm_addr)
        except ReadError as e:
            self.errors.append(f"cannot read runtime.allm: {e}")
            return out, None
        seen = set()
        while m and m not in seen and len(seen) < MAX_MS:
            seen.add(m)
            try:
                buf = self.mem.read(m, mt.size)
            except ReadError as e:
                self.errors.append(f"cannot read an m: {e}")
                break
            procid = struct.unpack_from("<Q", buf, o_procid)[0]
            curg = struct.unpack_from("<Q", buf, o_curg)[0]
            mid = struct.unpack_from("<q", buf, o_id)[0]
            if curg:
                out[curg] = (procid, mid, by_lwp.get(procid))
                if procid == selected_lwp:
                    current_g = curg
            m = struct.unpack_from("<Q", buf, o_link)[0]
        if m in seen:
            self.errors.append("runtime.allm list has a cycle")
        return out, current_g

    # --- clock for wait durations
    def now_ns(self) -> tuple[int, str]:
        if self.rt.target.is_live:
            return time.monotonic_ns(), "live: CLOCK_MONOTONIC now"
        return 0, "core: latest runtime timestamp"

    # --- the walk
    def walk(self, with_stack: int = 0, include_dead: bool = False,
             want_labels: bool = True, want_user: bool = True,
             want_blocked: bool = True) -> list[Goroutine]:
        addrs = self.g_addrs()
        threads, current_g = self.thread_map()
        gsize = self.glay.size
        blobs = self.mem.bulk_fixed(addrs, gsize)
        out: list[Goroutine] = []
        total = len(addrs)
        progress = self.progress
        for i, a in enumerate(addrs):
            if progress and i % 5000 == 0:
                progress(i, total)
            buf = blobs[i]
            if buf.__class__ is ReadError:
                out.append(Goroutine(id=-1, addr=a, status_code=-1, status="unreadable",
                                     error=str(buf)))
                continue
            g = self.decode_g(a, buf, threads, current_g, with_stack, include_dead,
                              want_labels, want_user, want_blocked)
            if g is not None:
                out.append(g)
        if self.progress:
            self.progress(total, total)
        self._fill_wait_minutes(out)
        return out

    def find(self, goid: int, with_stack: int = 256) -> Optional[Goroutine]:
        """One goroutine by id, with its stack: only its g is decoded in full."""
        addrs = self.g_addrs()
        blobs = self.mem.bulk_fixed(addrs, self.glay.size)
        for a, buf in zip(addrs, blobs):
            if buf.__class__ is ReadError or self.glay.decode(buf)[0] != goid:
                continue
            threads, current_g = self.thread_map()
            g = self.decode_g(a, buf, threads, current_g, with_stack, True, True, True, True)
            if g is not None:  # a core has no clock: use the latest waitsince of all goroutines
                latest = max((self.glay.decode(b)[3] for b in blobs if b.__class__ is not ReadError),
                             default=0)
                self._fill_wait_minutes([g], latest)
            return g
        return None

    def _fill_wait_minutes(self, gs: list[Goroutine], core_now: int = 0) -> None:
        now, self.clock = self.now_ns()
        if not now:
            now = core_now or max((g.wait_since_ns for g in gs), default=0)
            self.clock = "core: latest waitsince among goroutines"
        minute = 60_000_000_000
        for g in gs:
            if g.status_code == G_WAITING:
                since = g.wait_since_ns
                g.wait_minutes = (now - since) // minute if since and now > since else 0

    def decode_g(self, addr: int, buf: bytes, threads: dict, current_g, with_stack: int,
                 include_dead: bool, want_labels: bool, want_user: bool,
                 want_blocked: bool = True) -> Optional[Goroutine]:
        (goid, raw, wr, waitsince, sched_sp, sched_pc, _bp, syscallsp, syscallpc, lo, hi,
         _m, lockedm, gopc, startpc, parent, labels, waiting) = self.glay.decode(buf)
        # what leaked goroutines share is computed once per distinct combination
        tkey = (raw, wr, startpc, gopc, goid == 1)
        tmpl = self._templates.get(tkey)
        if tmpl is None:
            tmpl = self._template(raw, wr, startpc, gopc, goid == 1)
        code, name, scan, reason, start, created, terr = tmpl
        if code == G_DEAD and not include_dead:
            return None
        g = Goroutine(goid, addr, code, name, scan, reason, waitsince if reason else 0, None,
                      bool(lockedm), {}, None, None, parent or None, created, None, None, start,
                      None, None, False, terr, 0, 0, lo, hi)
        pc, sp = sched_pc, sched_sp
        if threads:
            on_thread = threads.get(addr)
            if on_thread is not None and code in (G_RUNNING, G_SYSCALL):
                g.thread, g.m_id = on_thread[0], on_thread[1]
                regs = on_thread[2]
                if code == G_RUNNING and regs is not None and lo <= regs.sp < hi:
                    pc, sp = regs.pc, regs.sp
            if addr == current_g:
                g.is_current = True
        if code == G_SYSCALL and syscallsp:
            pc, sp = syscallpc, syscallsp
        g.pc, g.sp = pc, sp
        if code != G_DEAD and pc:
            frames, err = self.unwinder.walk(pc, sp, lo if lo else sp, hi or sp + (1 << 20),
                                             with_stack or 64, not with_stack)
            cu = self._frame_locs.get(id(frames))
            if cu is None:
                cu = self._locations_of(frames)
            g.current, g.user = cu
            if with_stack:
                g.stack = frames
            if err and not g.error and (with_stack or g.user is None):
                g.error = f"stack: {err}"
        if want_labels and labels:
            try:
                g.labels = self.rt.labels_at(labels)
            except DecodeError as e:
                g.error = g.error or f"labels: {e}"
        if want_blocked and code == G_WAITING and waiting:
            g.blocked_on = self._blocked_on(waiting, g.wait_reason)
        return g

    def _template(self, raw: int, wr: int, startpc: int, gopc: int, is_main: bool) -> tuple:
        code = raw & ~GSCAN
        names = self.status_names
        name = names[code] if 0 <= code < len(names) and names[code] else \
            _FALLBACK_STATUS.get(code, f"status {code}")
        reason = ""
        if code == G_WAITING:
            reasons = self.wait_reasons
            reason = reasons[wr] if 0 <= wr < len(reasons) else f"waitReason({wr})"
        start = created = err = None
        try:
            if startpc:
                start = self._func_loc(startpc, self._start_cache, True)
            if gopc and not is_main:  # the runtime prints no creator for main
                created = self._created_by(gopc)
        except DecodeError as e:
            err = str(e)
        tmpl = (code, name, bool(raw & GSCAN), reason, start, created, err)
        self._templates[(raw, wr, startpc, gopc, is_main)] = tmpl
        return tmpl

    def _locations_of(self, frames) -> tuple:
        """(current, user) Locations of a (shared) frame list, made once per list."""
        current = user = None
        if frames:
            first = frames[0]
            current = Location(first.function, first.file, first.line)
            for fr in frames:
                if fr.user:
                    user = current if fr is first else Location(fr.function, fr.file, fr.line)
                    break
        cu = (current, user)
        self._frame_locs[id(frames)] = cu
        self._keep.append(frames)  # ids stay valid while the list lives
        return cu

    def _func_loc(self, pc: int, cache: dict, exact: bool) -> Optional[Location]:
        if not pc:
            return None
        hit = cache.get(pc)
        if hit is None:
            tab = self.rt.pclntab
            fn = tab.func_for_pc(pc)
            if fn is None:
                hit = Location(f"{pc:#x}", "?", 0)
            else:
                file, line = tab.file_line(fn, pc)
                hit = Location(fn.name, file, line)
            cache[pc] = hit
        return hit

    def _created_by(self, gopc: int) -> Optional[Location]:
        hit = self._created_cache.get(gopc)
        if hit is None:
            tab = self.rt.pclntab
            fn = tab.func_for_pc(gopc)
            if fn is None:
                hit = Location(f"{gopc:#x}", "?", 0)
            else:
                trace = gopc - 1 if gopc > fn.entry else gopc
                file, line = tab.file_line(fn, trace)
                from .pclntab import func_name_for_print
                hit = Location(func_name_for_print(fn.name), file, line)
            self._created_cache[gopc] = hit
        return hit

    def _blocked_on(self, sudog: int, wait_reason: str) -> Optional[str]:
        """What the runtime recorded this goroutine waits on, from its sudogs."""
        if self._sudog is None:
            return None
        o_c, o_elem, o_link, size = self._sudog
        word = _WORD.unpack_from
        try:
            if "chan" in wait_reason or "select" in wait_reason:
                chans = []
                seen = set()
                s = sudog
                # a select has one sudog per case, linked by waitlink; bounded
                while s and s not in seen and len(seen) < 64:
                    seen.add(s)
                    raw = self.mem.read(s, size)
                    c = word(raw, o_c)[0]
                    if c:
                        chans.append(c)
                    if "select" not in wait_reason or o_link is None:
                        break
                    s = word(raw, o_link)[0]
                if chans:
                    return "channel " + ", ".join(f"{c:#x}" for c in dict.fromkeys(chans))
                return None
            if o_elem is not None and ("sync" in wait_reason or "sema" in wait_reason):
                addr = self.mem.ptr(sudog + o_elem)
                return f"semaphore {addr:#x}" if addr else None
        except ReadError:
            return None
        return None

    @functools.cached_property
    def _sudog(self):
        st = self.rt.target.lookup_type("runtime.sudog")
        if st is None or st.find("c") is None:
            return None
        elem = st.find("elem")
        link = st.find("waitlink")
        c = st.find("c")[0]
        size = max(c, link[0] if link else 0) + 8
        return c, elem[0] if elem else None, link[0] if link else None, size
