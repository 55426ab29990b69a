"""Every goroutine, walked from runtime.allgs, decoded from bulk reads of g structs.

Status names and wait reasons come from the binary's own tables
(runtime.gStatusStrings, runtime.waitReasonStrings); offsets from DWARF.
"""
from __future__ import annotations

import collections
import functools
import itertools
import operator
import struct
import time
from dataclasses import dataclass, field
from typing import Callable, Optional

from ..errors import DecodeError, ReadError
from ..gcpause import gc_paused
from ..binary import types as T
from .clock import core_now
from ..binary.pclntab import func_name_for_print, injected_functions, wrapper_func_id
from .stack import TOP_BYTES, StackFrame, Unwinder

GSCAN = 0x1000
G_IDLE, G_RUNNABLE, G_RUNNING, G_SYSCALL, G_WAITING, G_DEAD = 0, 1, 2, 3, 4, 6
MAX_GOROUTINES = 10_000_000
MAX_MS = 100_000
NS_PER_MINUTE = 60_000_000_000

_WORD = struct.Struct("<Q")
# g fields the fast path of a walk cannot do without, in the order _walk takes them
_FAST_FIELDS = ("goid", "status", "waitreason", "waitsince", "sched_sp", "sched_pc", "stack_lo",
                "stack_hi", "gopc", "startpc")
_FALLBACK_STATUS = {0: "idle", 1: "runnable", 2: "running", 3: "syscall", 4: "waiting",
                    6: "dead", 8: "enqueue", 9: "copystack", 10: "preempted"}


@dataclass(slots=True, eq=False)
class Location:
    """Made once per pc by a walk and shared by the goroutines there: compared and
    hashed by identity, so views can key on the objects themselves."""
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
        # raw values (in offset order, maybe already padded) -> FIELDS order
        self.reorder = lambda raw: getter(raw + (0,))
        # the same fields over exactly one g, for iter_unpack over gs read back to back;
        # index: where each key sits in its tuples (absent keys: None)
        self.whole = struct.Struct(fmt + f"{self.size - pos}x") if pos <= self.size else None
        self.index = {k: self.keys.index(k) if k in self.keys else None for k, _ in self.FIELDS}


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
        main = rt.func_named("runtime.main")
        goroot_src = None
        if main is not None:
            file, _ = tab.file_line(main, main.entry)
            i = file.rfind("/src/runtime/")
            if i >= 0:
                goroot_src = file[: i + len("/src/")]
        self.unwinder = Unwinder(self.mem, tab, goroot_src, wrapper_func_id(rt.layout.go_version),
                                 injected_functions(rt.layout.go_version))
        # statuses the runtime's dump skips as it skips dead ones: _Gdead, and from
        # Go 1.26 _Gdeadextra ("waiting for cgo callback"), found by name in the binary
        names = self.status_names
        self.dead_codes = frozenset([G_DEAD] + [i for i, n in enumerate(names)
                                                if n == "waiting for cgo callback"])
        self.clock: Optional[str] = None
        self._locations: dict = {}   # (pc, call site?) -> Location
        self._frame_locs: dict = {}
        self._keep: list = []
        self._templates: dict = {}
        self._waiting: list = []   # (Goroutine, sudog) whose blocked_on a walk fills in bulk
        self._labelled: list = []  # (Goroutine, g.labels) whose labels a walk fills in bulk
        self._shapes: dict = {}    # see _shape
        self._tops_scratch = bytearray()  # reused by _check_group's reads

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
        """The runtime's clock now (nanotime): live, CLOCK_MONOTONIC; on a core, the
        latest stamp the runtime left (see clock.py), or 0 when it left none."""
        if self.rt.target.is_live:
            return time.monotonic_ns(), "live: CLOCK_MONOTONIC now"
        ns, where = core_now(self.rt)
        return ns, f"core: latest runtime stamp ({where})" if ns else ""

    # --- the walk
    def walk(self, with_stack: int = 0, include_dead: bool = False,
             want_labels: bool = True, want_blocked: bool = True) -> list[Goroutine]:
        with gc_paused():
            return self._walk(with_stack, include_dead, want_labels, want_blocked)

    CHUNK = 1024   # goroutines decoded together: one bulk read of gs, one of stack tops

    def _walk(self, with_stack, include_dead, want_labels, want_blocked):
        # the hot loop of a 100k-goroutine listing: kept flat on purpose
        addrs = self.g_addrs()
        threads, current_g = self.thread_map()
        glay = self.glay
        whole, reorder = glay.whole, glay.reorder
        # gs lie one size class apart: live, they are read in runs
        stride = self._g_stride(addrs)
        ix = glay.index
        fast = whole is not None and all(ix[k] is not None for k in _FAST_FIELDS)
        if fast:
            (i_id, i_st, i_wr, i_since, i_sp, i_pc, i_lo, i_hi, i_gopc, i_start) = [
                ix[k] for k in _FAST_FIELDS]
            pad = len(glay.keys)  # where the zero for an absent field goes
            (i_locked, i_parent, i_labels, i_waiting) = [
                pad if ix[k] is None else ix[k] for k in ("lockedm", "parent", "labels", "waiting")]
            padded = pad in (i_locked, i_parent, i_labels, i_waiting)
        unpack_fixed = self.mem.unpack_fixed
        shape_of = self._shape
        now, self.clock = self.now_ns()
        minute = NS_PER_MINUTE
        labelled, waiting = self._labelled, self._waiting
        progress = self.progress
        total = len(addrs)
        out: list[Goroutine] = []
        append = out.append
        others: list[Goroutine] = []   # decoded by decode_g: their wait minutes come after
        g_scratch = bytearray(self.CHUNK * stride)
        for first in range(0, total, self.CHUNK):
            if progress:
                progress(first, total)
            chunk = addrs[first:first + self.CHUNK]
            # 1. the gs, read back to back and unpacked in one go. A parked goroutine
            # (waiting or runnable, not being scanned) with a sane stack takes the fast
            # path: its stack top is read in bulk, only as many bytes as the recipe of
            # its shape checks once that shape is known.
            rows, errors = unpack_fixed(chunk, whole if fast else glay.struct, g_scratch, stride)
            if fast and padded:
                rows = map(operator.add, rows, itertools.repeat((0,)))
            if errors:
                rows = list(rows)
                for i, e in errors.items():
                    rows[i] = e
            # goroutines of one shape key form a group: its stack tops are checked
            # against the shape's recipe together (see _check_group)
            groups: dict = {}
            todo = []   # (addr, raw fields, group) or (addr, fields in FIELDS order, None)
            for a, f in zip(chunk, rows):
                if f.__class__ is not tuple:
                    todo.append((a, f, None))
                    continue
                if fast and (f[i_st] == G_WAITING or f[i_st] == G_RUNNABLE) and f[i_pc]:
                    sp, hi = f[i_sp], f[i_hi]
                    if f[i_lo] <= sp < hi <= sp + (1 << 30):
                        key = (f[i_st], f[i_wr], f[i_start], f[i_gopc], f[i_id] == 1, f[i_pc],
                               hi - sp, with_stack, False)
                        group = groups.get(key)
                        if group is None:
                            group = groups[key] = [None, key, [], f, ()]
                        group[2].append(sp)
                        todo.append((a, f, group))
                        continue
                todo.append((a, reorder(f), None))
            for group in groups.values():
                self._check_group(group, i_sp, i_lo, i_hi)
            # 2. each goroutine
            for a, f, group in todo:
                if group is None:
                    g = self._decode_other(a, f, threads, current_g, with_stack, include_dead,
                                           want_labels, want_blocked)
                    if g is not None:
                        append(g)
                        others.append(g)
                    continue
                shape, unchecked = group[0], group[4]
                if unchecked and f[i_sp] in unchecked:  # its own walk
                    sp = f[i_sp]
                    shape = shape_of(group[1], sp, f[i_lo] or sp, f[i_hi])
                (_, _, code, name, scan, reason, start, created, current, user, stack,
                 error) = shape
                if reason:
                    since = f[i_since]
                    minutes = (now - since) // minute if since and now > since else 0
                else:
                    since = 0
                    minutes = 0 if code == G_WAITING else None
                g = Goroutine(f[i_id], a, code, name, scan, reason, since, minutes,
                              bool(f[i_locked]), {}, None, None, f[i_parent] or None, created,
                              current, user, start, stack, None, a == current_g, error,
                              f[i_pc], f[i_sp], f[i_lo], f[i_hi])
                append(g)
                if want_labels and f[i_labels]:
                    labelled.append((g, f[i_labels]))
                if want_blocked and code == G_WAITING and f[i_waiting]:
                    waiting.append((g, f[i_waiting]))
        self._fill_in_bulk()
        if progress:
            progress(total, total)
        # the others against the same clock as the rest; a core whose latest stamp is
        # older than a goroutine's waitsince: all against the latest waitsince
        latest = 0 if self.rt.target.is_live else max(
            (g.wait_since_ns for g in out), default=0)
        if latest > now:
            self._fill_wait_minutes(out, latest)
            self.clock = "core: latest waitsince among goroutines"
        else:
            self._fill_wait_minutes(others, now)
        return out

    def _g_stride(self, addrs: list) -> int:
        """How far apart gs allocated one after another lie (the size class of a g):
        the commonest distance between neighbours among the first allgs, when it is
        the g's size or a little more; else the g's size."""
        size = self.glay.size
        near = collections.Counter(map(operator.sub, addrs[1:1025], addrs[:1024]))
        if near:
            step = near.most_common(1)[0][0]
            if size <= step <= size + size // 8 + 16:
                return step
        return size

    def _check_group(self, group: list, i_sp: int, i_lo: int, i_hi: int) -> None:
        """Settle a group [shape, key, stack pointers, first member's fields, unchecked]
        of _walk: its shape, known from before or learnt from its first member's walk,
        and the stack pointers whose tops do not hold the shape's recipe (those
        goroutines are walked on their own). The tops are read together, each
        only as long as the recipe, and compared in one pass."""
        _, key, sps, f, _ = group
        shape = self._shapes.get(key)
        if shape is None:
            sp = f[i_sp]
            shape = self._shape(key, sp, f[i_lo] or sp, f[i_hi])
        group[0] = shape
        reader, want = shape[0], shape[1]
        if reader is None or self._shapes.get(key) is not shape:
            group[4] = frozenset(sps)  # no recipe to check against: every one walks alone
            return
        if not reader.size:  # a walk that read no stack slot: nothing to check
            group[4] = ()
            return
        need = len(sps) * reader.size
        if len(self._tops_scratch) < need:
            self._tops_scratch = bytearray(max(need, 1 << 16))
        tops, errors = self.mem.unpack_fixed(sps, reader, self._tops_scratch)
        same = list(map(want.__eq__, tops))
        if errors or False in same:
            group[4] = frozenset(sp for sp, ok in zip(sps, same) if not ok) | \
                frozenset(sps[i] for i in errors)
        else:
            group[4] = ()

    def _decode_other(self, addr: int, fields, threads: dict, current_g, with_stack: int,
                      include_dead: bool, want_labels: bool, want_blocked: bool):
        """A goroutine off the fast path of _walk: unreadable (fields is the ReadError),
        running, in a syscall, being scanned, dead (None unless include_dead) or with an
        odd stack."""
        if fields.__class__ is not tuple:
            return Goroutine(id=-1, addr=addr, status_code=-1, status="unreadable",
                             error=str(fields))
        code = fields[1] & ~GSCAN
        if code in self.dead_codes and not include_dead:
            return None
        start = self._walk_start(addr, fields, threads)
        return self.decode_g(addr, fields, start, threads, current_g, with_stack,
                             want_labels, want_blocked)

    def _walk_start(self, addr: int, fields: tuple, threads: dict) -> tuple:
        """(pc, sp, lo, hi, trap) of a goroutine's stack walk: its thread's registers
        when running (trap: pc is the instruction the thread stopped at), the syscall
        pc/sp in a syscall, else g.sched (both return addresses)."""
        pc, sp, lo, hi = fields[5], fields[4], fields[9], fields[10]
        code = fields[1] & ~GSCAN
        trap = False
        if code == G_SYSCALL and fields[7]:
            pc, sp = fields[8], fields[7]
        elif code == G_RUNNING and threads:
            on_thread = threads.get(addr)
            regs = on_thread[2] if on_thread is not None else None
            if regs is not None and lo <= regs.sp < hi:
                pc, sp, trap = regs.pc, regs.sp, True
        return pc, sp, lo or sp, hi or sp + (1 << 20), trap

    def find(self, goid: int, with_stack: int = 256) -> Optional[Goroutine]:
        """One goroutine by id, with its stack: only its g is decoded in full."""
        addrs = self.g_addrs()
        gsize = self.glay.size
        buf, errors = self.mem.gather_fixed(addrs, gsize)
        unpack, reorder = self.glay.struct.unpack_from, self.glay.reorder
        decoded = [(a, reorder(unpack(buf, i * gsize))) for i, a in enumerate(addrs)
                   if i not in errors]
        for a, fields in decoded:
            if fields[0] != goid:
                continue
            threads, current_g = self.thread_map()
            g = self.decode_g(a, fields, self._walk_start(a, fields, threads), threads,
                              current_g, with_stack, True, True)
            self._fill_in_bulk()
            now, self.clock = self.now_ns()
            latest = 0 if self.rt.target.is_live else max((f[3] for _, f in decoded), default=0)
            if latest > now:
                now, self.clock = latest, "core: latest waitsince among goroutines"
            self._fill_wait_minutes([g], now)
            return g
        return None

    @staticmethod
    def _fill_wait_minutes(gs: list[Goroutine], now: int) -> None:
        """Wait minutes of the waiting and syscall goroutines among gs against now, as
        the runtime's goroutineheader counts them: 0 without a waitsince stamp."""
        minute = NS_PER_MINUTE
        for g in gs:
            if g.status_code == G_WAITING or g.status_code == G_SYSCALL:
                since = g.wait_since_ns
                g.wait_minutes = (now - since) // minute if since and now > since else 0

    def decode_g(self, addr: int, fields: tuple, start: tuple, threads: dict, current_g,
                 with_stack: int, want_labels: bool, want_blocked: bool = True) -> Goroutine:
        """A Goroutine from its decoded g fields (FIELDS order) and its walk start (see
        _walk_start), walked on its own: the goroutines _walk does not group by shape."""
        (goid, raw, wr, waitsince, _sp, _pc, _bp, _syscallsp, _syscallpc, stack_lo, stack_hi,
         _m, lockedm, gopc, startpc, parent, labels, waiting) = fields
        pc, sp, lo, hi, trap = start
        shape = self._shape((raw, wr, startpc, gopc, goid == 1, pc, hi - sp, with_stack, trap),
                            sp, lo, hi)
        (_, _, code, name, scan, reason, start, created, current, user, stack, error) = shape
        timed = code == G_WAITING or code == G_SYSCALL  # the runtime counts their minutes
        g = Goroutine(goid, addr, code, name, scan, reason, waitsince if timed else 0, None,
                      bool(lockedm), {}, None, None, parent or None, created, current, user,
                      start, stack, None, addr == current_g, error, pc, sp, stack_lo, stack_hi)
        if threads and (code == G_RUNNING or code == G_SYSCALL):
            on_thread = threads.get(addr)
            if on_thread is not None:
                g.thread, g.m_id = on_thread[0], on_thread[1]
        if want_labels and labels:
            self._labelled.append((g, labels))
        if want_blocked and code == G_WAITING and waiting:
            self._waiting.append((g, waiting))
        return g

    def _shape(self, key: tuple, sp: int, lo: int, hi: int) -> tuple:
        """(recipe reader, recipe words, code, status, scan, wait reason, start, created by,
        current, user, stack, error) for a goroutine; remembered under key when its stack
        walk is a recipe the next goroutine of that key can be checked against.

        Leaked goroutines share a shape: status, wait reason, start, creator and a stack
        of the same depth from the same pc. _walk reuses it for a goroutine whose stack
        holds the same return addresses in the same slots, checked word by word."""
        raw, wr, startpc, gopc, is_main, pc, _depth, with_stack, trap = key
        tmpl = self._templates.get(key[:5])
        if tmpl is None:
            tmpl = self._template(raw, wr, startpc, gopc, is_main)
        code, name, scan, reason, start, created, error = tmpl
        current = user = stack = None
        recipe = None
        if code not in self.dead_codes and pc:
            unwinder = self.unwinder
            frames, err = unwinder.walk(pc, sp, lo, hi, with_stack or 64, not with_stack, trap)
            recipe = unwinder.last_recipe
            cu = self._frame_locs.get(id(frames))
            if cu is None:
                cu = self._locations_of(frames)
            current, user = cu
            if with_stack:
                stack = frames
            if err and not error and (with_stack or user is None):
                error = f"stack: {err}"
        shape = (recipe[0] if recipe else None, recipe[1] if recipe else None, code, name, scan,
                 reason, start, created, current, user, stack, error)
        if recipe is not None and recipe[0].size <= min(hi - sp, TOP_BYTES):
            self._shapes[key] = shape  # checkable against the top of the next stack alone
        return shape

    def _template(self, raw: int, wr: int, startpc: int, gopc: int, is_main: bool) -> tuple:
        code = raw & ~GSCAN
        names = self.status_names
        name = names[code] if 0 <= code < len(names) and names[code] else \
            _FALLBACK_STATUS.get(code, f"status {code}")
        reason = ""
        if code == G_WAITING or name == "leaked":  # (Go 1.26's _Gleaked keeps its reason)
            reasons = self.wait_reasons
            reason = reasons[wr] if 0 <= wr < len(reasons) else f"waitReason({wr})"
        start = created = err = None
        try:
            if startpc:
                start = self._location(startpc, False)
            if gopc and not is_main:  # the runtime prints no creator for main
                created = self._location(gopc, True)
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

    def _location(self, pc: int, call_site: bool) -> Location:
        """The function, file and line of pc. call_site: pc is a go statement's return
        pc (g.gopc): the call itself, the function named as the runtime prints it."""
        hit = self._locations.get((pc, call_site))
        if hit is None:
            tab = self.rt.pclntab
            fn = tab.func_for_pc(pc)
            if fn is None:
                hit = Location(f"{pc:#x}", "?", 0)
            elif call_site:
                file, line = tab.file_line(fn, pc - 1 if pc > fn.entry else pc)
                hit = Location(func_name_for_print(fn.name), file, line)
            else:
                file, line = tab.file_line(fn, pc)
                hit = Location(fn.name, file, line)
            self._locations[(pc, call_site)] = hit
        return hit

    def _fill_in_bulk(self) -> None:
        """Labels and blocked-on of the goroutines decode_g queued, read in bulk."""
        labelled, self._labelled = self._labelled, []
        for (g, _), labels in zip(labelled, self.rt.labels_many([p for _, p in labelled])):
            if labels.__class__ is dict:
                g.labels = labels
            else:
                g.error = g.error or f"labels: {labels}"
        waiting, self._waiting = self._waiting, []
        self._fill_blocked_on(waiting)

    def _fill_blocked_on(self, waiting: list) -> None:
        """Set blocked_on for each (Goroutine, sudog address): the channels of its chan
        send, receive or select, or the semaphore of a sync primitive, as its sudogs
        record them. Sudogs are read in bulk, a select's chain one link per round."""
        if self._sudog is None or not waiting:
            return
        o_c, o_elem, o_link, size = self._sudog
        kinds: dict = {}   # wait reason -> "chan", "select", "sema" or None
        by_kind: dict = {"chan": [], "select": [], "sema": [], None: []}
        for item in waiting:
            reason = item[0].wait_reason
            kind = kinds.get(reason, 0)
            if kind == 0:
                kind = kinds[reason] = ("select" if "select" in reason else "chan" if "chan" in reason
                                        else "sema" if o_elem is not None and
                                        ("sync" in reason or "sema" in reason) else None)
            by_kind[kind].append(item)
        texts: dict = {}   # what one word names -> its text, shared by the goroutines it blocks
        gather_fixed = self.mem.gather_fixed

        def each_word(items, offset, prefix):  # one word of each sudog -> "prefix 0x..."
            if not items:
                return
            buf, errors = gather_fixed([s + offset for _, s in items], 8)
            words = list(_WORD.iter_unpack(buf))
            for i in errors:
                words[i] = (0,)
            named = texts.setdefault(prefix, {})
            for (g, _), (addr,) in zip(items, words):
                if addr:
                    text = named.get(addr)
                    if text is None:
                        text = named[addr] = f"{prefix} {addr:#x}"
                    g.blocked_on = text

        each_word(by_kind["sema"], o_elem, "semaphore")
        each_word(by_kind["chan"], o_c, "channel")
        # a select has one sudog per case, linked by waitlink: followed one link per
        # round, all selects together; bounded. Unreadable: nothing rather than a part.
        # c and waitlink of a sudog in one unpack: a struct over the sudog's first size
        # bytes, and where each of the two sits in its tuples
        words = sorted(o for o in (o_c, o_link) if o is not None)
        fmt, pos = "<", 0
        for o in words:
            fmt, pos = fmt + f"{o - pos}xQ", o + 8
        c_and_link = struct.Struct(fmt + f"{size - pos}x")
        i_c = words.index(o_c)
        i_link = words.index(o_link) if o_link is not None else None
        select_texts = texts.setdefault("select", {})
        chains = [(g, s, (), ()) for g, s in by_kind["select"]]
        for _ in range(64):
            if not chains:
                break
            more = []
            buf, errors = gather_fixed([c[1] for c in chains], size)
            for i, ((g, s, found, seen), pair) in enumerate(zip(chains, c_and_link.iter_unpack(buf))):
                if errors and i in errors:
                    continue
                c, nxt = pair[i_c], pair[i_link] if i_link is not None else 0
                if c:
                    found += (c,)
                if nxt and nxt != s and nxt not in seen:
                    more.append((g, nxt, found, seen + (s,)))
                elif found:
                    text = select_texts.get(found)
                    if text is None:
                        text = select_texts[found] = "channel " + ", ".join(
                            f"{c:#x}" for c in dict.fromkeys(found))
                    g.blocked_on = text
            chains = more

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
