"""Every goroutine, walked from runtime.allgs, decoded from bulk reads of g structs.

Offsets, status codes and names come from the binary's layouts (rt.layout, layout.py):
DWARF and the runtime's own tables (runtime.gStatusStrings, runtime.waitReasonStrings).
The walk's goroutines are one GoroutineTable (gtable.py): the g fields as columns,
settled per shape; this module gives it what a shape is (shape_of: the stack walk of
one goroutine, the recipe the others of its key are checked against) and decodes the
goroutines off the table's fast path one by one (decode_other).
"""
from __future__ import annotations

import collections
import operator
import struct
import time
from typing import Callable, NamedTuple, Optional

import numpy as np

from ..errors import DecodeError, ReadError
from ..gcpause import gc_paused
from .clock import core_now
from ..binary.pclntab import func_name_for_print, injected_functions, wrapper_func_id
from . import gbulk, gtable
from .layout import GSCAN, GFields
from .stack import TOP_BYTES, WHOLE_STACK, Recipe, Unwinder
from .gmodel import BlockedOn, Goroutine, Location, \
    goroutine_maker  # noqa: F401  (the model; imported from here by the views)

MAX_GOROUTINES = 10_000_000
MAX_MS = 100_000
NS_PER_MINUTE = gtable.NS_PER_MINUTE


class Shape(NamedTuple):
    """What the goroutines of one shape share (see GoroutineWalker.shape_of): the recipe
    their stack tops are checked against, and their constructor."""
    recipe: Optional[Recipe]          # the words of the stack top it checks
    new: Callable                     # goroutine_maker(...) of what they share
    code: int
    wait_reason: str


class _Template(NamedTuple):
    """The parts of a Shape that follow from a goroutine's g alone, not its stack."""
    code: int
    status: str
    scan: bool
    wait_reason: str
    start: Optional[Location]
    created_by: Optional[Location]
    error: Optional[str]


class GoroutineWalker:
    """Decodes all goroutines of a GoRuntime."""

    def __init__(self, rt, progress: Optional[Callable[[int, int], None]] = None):
        self.rt = rt
        self.mem = rt.mem
        self.progress = progress
        self.errors: list[str] = list(rt.target.warnings)
        self.layout = rt.layout
        self.glay = rt.layout.g
        self.st = rt.layout.status     # status codes by name
        self.status_names = self.st.names
        self.wait_reasons = rt.layout.wait_reasons
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
        # statuses the runtime's dump skips as it skips dead ones (Statuses.dead_like)
        self.dead_codes = self.st.dead_like
        self.clock: Optional[str] = None
        self._locations: dict = {}   # (pc, call site?) -> Location
        self._frame_locs: dict = {}
        self._keep: list = []
        self._templates: dict = {}
        self._shapes: dict = {}    # see shape_of
        self.allgs_cut = None   # (entries read, entries, error) of an allgs cut short

    # --- the list of g pointers
    def g_addrs(self, as_array: bool = False):
        """The g pointers of runtime.allgs (a list; a numpy array with as_array)."""
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
            return np.zeros(0, np.uint64) if as_array else []
        self.allgs_cut = None
        try:
            raw = self.mem.read(arr, 8 * n)
        except ReadError as e:
            raw = self._allgs_prefix(arr, n, e, say=not as_array)
        if as_array:
            return np.frombuffer(raw, dtype="<u8", count=len(raw) // 8).copy()
        return list(struct.unpack(f"<{len(raw) // 8}Q", raw))

    def _allgs_prefix(self, arr: int, n: int, err, say: bool = True) -> bytes:
        """The readable start of an allgs array that cannot be read whole (a core cut
        short in it): found by halving, with one line saying how much was lost (say;
        else allgs_cut = (entries read, entries, error) for the walk's own line)."""
        lo, hi = 0, n + 1   # the first lo entries are readable; the first hi are not
        for _ in range(70):
            if hi - lo <= 1:
                break
            mid = (lo + hi) // 2
            try:
                self.mem.read(arr + 8 * (mid - 1), 8)
                lo = mid
            except ReadError:
                hi = mid
        try:
            raw = self.mem.read(arr, 8 * lo) if lo else b""
        except ReadError:
            raw = b""
        k = len(raw) // 8
        if say:
            self.errors.append(f"cannot read runtime.allgs past entry {k} of {n} ({err}):"
                               f" {n - k} goroutines could not be read")
        else:
            self.allgs_cut = (k, n, err)
        return raw

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
        mlay = self.layout.m
        allm_addr = self.rt.target.symbol_address("runtime.allm")
        if mlay is None or allm_addr is None:
            return out, None
        try:
            m = self.mem.ptr(allm_addr)
        except ReadError as e:
            self.errors.append(f"cannot read runtime.allm: {e}")
            return out, None
        seen = set()
        while m and m not in seen and len(seen) < MAX_MS:
            seen.add(m)
            try:
                buf = self.mem.read(m, mlay.size)
            except ReadError as e:
                self.errors.append(f"cannot read an m: {e}")
                break
            procid = struct.unpack_from("<Q", buf, mlay.procid)[0]
            curg = struct.unpack_from("<Q", buf, mlay.curg)[0]
            mid = struct.unpack_from("<q", buf, mlay.id)[0]
            if curg:
                out[curg] = (procid, mid, by_lwp.get(procid))
                if procid == selected_lwp:
                    current_g = curg
            m = struct.unpack_from("<Q", buf, mlay.alllink)[0]
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
             want_labels: bool = True, want_blocked: bool = True):
        """Every goroutine: a GoroutineTable (columns, rows made on demand; see gtable.py).
        with_stack (true): each keeps its whole stack; a view cuts what it prints."""
        with gc_paused():
            base = gtable.read_base(self, include_dead)
            return self.table_at(base, with_stack, want_labels, want_blocked)

    def table_at(self, base, with_stack: int, want_labels: bool, want_blocked: bool):
        """The GoroutineTable of base (an earlier walk's g fields), with whole stacks
        or locations only (with_stack), made once for each; labels and blocked-on
        read when wanted."""
        with_stack = 1 if with_stack else 0
        table = base.tables.get(with_stack)
        if table is None:
            table = gtable.settle(self, base, with_stack)
        if want_labels:
            gbulk.fill_labels(self, base)
        if want_blocked:
            gbulk.fill_blocked(self, base)
        base.tables[with_stack] = table   # (only once complete: an interrupt leaves none)
        return table

    def g_stride(self, addrs: list) -> int:
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

    def decode_other(self, addr: int, fields, threads: dict, current_g,
                     with_stack: int) -> Goroutine:
        """A goroutine off the table's fast path (gtable.settle), or one decoded on its
        own (decode_at): unreadable (fields is the ReadError or DecodeError), running,
        in a syscall, being scanned, dead or with an odd stack."""
        if not isinstance(fields, tuple):
            return Goroutine(status_code=-1, status="unreadable", scan=False, wait_reason="",
                             start=None, created_by=None, current=None, user=None, stack=None,
                             error=str(fields), id=-1, addr=addr)
        start = self._walk_start(addr, fields, threads)
        return self.decode_g(addr, fields, start, threads, current_g, with_stack)

    def _walk_start(self, addr: int, f: GFields, threads: dict) -> tuple:
        """(pc, sp, lo, hi, trap, bp) of a goroutine's stack walk: its thread's registers
        when running (trap: pc is the instruction the thread stopped at), the syscall
        pc/sp in a syscall, else g.sched (both return addresses); bp: the saved frame
        pointer, syscallbp in a syscall where the g has one (Go 1.23+), else sched.bp."""
        pc, sp, bp, lo, hi = f.sched_pc, f.sched_sp, f.sched_bp, f.stack_lo, f.stack_hi
        code = f.status & ~GSCAN
        trap = False
        if code == self.st.syscall:
            if self.glay.syscallbp is not None:
                try:
                    bp = self.mem.u64(addr + self.glay.syscallbp)
                except ReadError:
                    pass
            if f.syscallsp:
                pc, sp = f.syscallpc, f.syscallsp
        elif code == self.st.running and threads:
            on_thread = threads.get(addr)
            regs = on_thread[2] if on_thread is not None else None
            if regs is not None and lo <= regs.sp < hi:
                pc, sp, trap = regs.pc, regs.sp, True
        return pc, sp, lo or sp, hi or sp + (1 << 20), trap, bp

    def find(self, goid: int, with_stack: int = 1) -> Optional[Goroutine]:
        """One goroutine by id, with its whole stack: every g's fields are read as
        columns (dead ones kept), and only its row is settled, labels and blocked-on
        read. On a core whose latest stamp is older than some g's waitsince, its minutes
        count against the latest waitsince among all gs."""
        with gc_paused():
            base = gtable.read_base(self, include_dead=True)
        hit = np.flatnonzero(base.cols["goid"] == goid)
        if not len(hit):
            return None
        one = base.subset(hit[:1])
        since = base.cols["waitsince"]
        latest = 0 if self.rt.target.is_live or not len(since) else int(since.max())
        if latest > one.now:
            one.now, one.clock = latest, "core: latest waitsince among goroutines"
        return self.table_at(one, with_stack, True, True)[0]

    def decode_at(self, addrs: list, with_stack: int = 0) -> list:
        """The goroutines whose gs are at addrs (an M's curg, say), each decoded on its own
        without reading every g: a Goroutine each (status "unreadable" with its error for
        a g that cannot be read). No labels, no blocked-on."""
        with_stack = 1 if with_stack else 0
        glay = self.glay
        buf, errors = self.mem.gather_fixed(addrs, glay.size)
        threads, current_g = self.thread_map()
        out = []
        for i, a in enumerate(addrs):
            fields = errors[i] if i in errors else \
                glay.reorder(glay.struct.unpack_from(buf, i * glay.size))
            try:
                out.append(self.decode_other(a, fields, threads, current_g, with_stack))
            except DecodeError as e:
                out.append(self.decode_other(a, e, threads, current_g, 0))
        return out

    def fill_wait_minutes(self, gs: list[Goroutine], now: int) -> None:
        """Wait minutes of the waiting and syscall goroutines among gs against now, as
        the runtime's goroutineheader counts them: 0 without a waitsince stamp."""
        minute = NS_PER_MINUTE
        waiting, syscall = self.st.waiting, self.st.syscall
        for g in gs:
            if g.status_code == waiting or g.status_code == syscall:
                since = g.wait_since_ns
                g.wait_minutes = (now - since) // minute if since and now > since else 0

    def decode_g(self, addr: int, f: GFields, start: tuple, threads: dict, current_g,
                 with_stack: int) -> Goroutine:
        """A Goroutine from its decoded g fields and its walk start (see _walk_start),
        walked on its own (no labels, no blocked-on: the table reads those in bulk)."""
        pc, sp, lo, hi, trap, bp = start
        shape = self.shape_of((f.status, f.waitreason, f.startpc, f.gopc, f.goid == 1, pc, hi - sp,
                             with_stack, trap), sp, lo, hi)
        st = self.st
        code = shape.code
        timed = code == st.waiting or code == st.syscall  # the runtime counts their minutes
        g = shape.new(f.goid, addr, f.waitsince if timed else 0, None, f.lockedm != 0,
                      f.parent or None, addr == current_g, pc, sp, bp, f.stack_lo, f.stack_hi)
        if threads and (code == st.running or code == st.syscall):
            on_thread = threads.get(addr)
            if on_thread is not None:
                g.thread, g.m_id = on_thread[0], on_thread[1]
        return g

    def remembered_shape(self, key: tuple) -> Optional[Shape]:
        """The Shape shape_of remembered under key (one whose recipe the next goroutine
        of that key can be checked against), or None."""
        return self._shapes.get(key)

    def shape_of(self, key: tuple, sp: int, lo: int, hi: int) -> Shape:
        """The Shape of a goroutine; remembered under key when its stack walk is a
        recipe the next goroutine of that key can be checked against.

        Leaked goroutines share a shape: status, wait reason, start, creator and a stack
        of the same depth from the same pc. gtable.settle reuses it for a goroutine whose
        stack holds the same return addresses in the same slots, checked word by word."""
        raw, wr, startpc, gopc, is_main, pc, _depth, with_stack, trap = key
        tmpl = self._templates.get(key[:5])
        if tmpl is None:
            tmpl = self._template(raw, wr, startpc, gopc, is_main)
        code, error = tmpl.code, tmpl.error
        current = user = stack = None
        recipe = None
        if code not in self.dead_codes and pc:
            unwinder = self.unwinder
            # the whole stack (up to the first user frame when no stack is kept): -t
            # only cuts what a view prints
            frames, err = unwinder.walk(pc, sp, lo, hi, WHOLE_STACK, not with_stack, trap)
            recipe = unwinder.last_recipe
            cu = self._frame_locs.get(id(frames))
            if cu is None:
                cu = self._locations_of(frames)
            current, user = cu
            if with_stack:
                stack = frames
            if err and not error and (with_stack or user is None):
                error = f"stack: {err}"
        shape = Shape(recipe,
                      goroutine_maker(code, tmpl.status, tmpl.scan, tmpl.wait_reason, tmpl.start,
                                      tmpl.created_by, current, user, stack, error),
                      code, tmpl.wait_reason)
        if recipe is not None and recipe.size <= min(hi - sp, TOP_BYTES):
            self._shapes[key] = shape  # checkable against the top of the next stack alone
        return shape

    def _template(self, raw: int, wr: int, startpc: int, gopc: int, is_main: bool) -> _Template:
        code = raw & ~GSCAN
        st = self.st
        name = st.name(code)
        reason = ""
        if code == st.waiting or code == st.leaked:  # (Go 1.26's _Gleaked keeps its reason)
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
        tmpl = _Template(code, name, bool(raw & GSCAN), reason, start, created, err)
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
