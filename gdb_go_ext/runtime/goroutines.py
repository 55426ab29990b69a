"""Every goroutine, walked from runtime.allgs, decoded from bulk reads of g structs.

Offsets, status codes and names come from the binary's layouts (rt.layout, layout.py):
DWARF and the runtime's own tables (runtime.gStatusStrings, runtime.waitReasonStrings).
"""
from __future__ import annotations

import collections
import itertools
import operator
import struct
import time
from typing import Callable, NamedTuple, Optional

from ..errors import DecodeError, ReadError
from ..gcpause import gc_paused
from .clock import core_now
from ..binary.pclntab import func_name_for_print, injected_functions, wrapper_func_id
from .layout import GSCAN, GFields
from .stack import TOP_BYTES, WHOLE_STACK, Recipe, StackFrame, Unwinder
from .gmodel import _FAST_FIELDS, _FAST_OPTIONAL, BlockedOn, Goroutine, Location, \
    goroutine_maker  # noqa: F401  (the model; imported from here by the views)

try:   # the columnar walk (numpy); without it, the walk goes goroutine by goroutine
    from . import gtable
except ImportError:  # pragma: no cover
    gtable = None

MAX_GOROUTINES = 10_000_000
MAX_MS = 100_000
NS_PER_MINUTE = 60_000_000_000

_WORD = struct.Struct("<Q")


class Shape(NamedTuple):
    """What the goroutines of one shape share (see GoroutineWalker._shape): the recipe
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


class _Group:
    """Goroutines of one chunk with one shape key (see GoroutineWalker._check_group):
    one template, so one status and wait reason; one shape but for those unchecked."""
    __slots__ = ("key", "sps", "first", "unchecked", "new", "wait_reason", "waiting")

    def __init__(self, key: tuple, first: tuple):
        self.key = key
        self.sps: list = []          # their stack pointers
        self.first = first           # the first one's raw g fields
        self.unchecked = ()          # stack pointers whose tops do not hold the recipe
        # set by _check_group: the shape's constructor, wait reason, and whether waiting
        self.new: Optional[Callable] = None
        self.wait_reason = ""
        self.waiting = False


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
        self._waiting: list = []   # (Goroutine, sudog) whose blocked_on a walk fills in bulk
        self._labelled: list = []  # (Goroutine, g.labels) whose labels a walk fills in bulk
        self._shapes: dict = {}    # see _shape
        self._tops_scratch = bytearray()  # reused by _check_group's reads
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
            return gtable.np.zeros(0, gtable.np.uint64) if as_array else []
        self.allgs_cut = None
        try:
            raw = self.mem.read(arr, 8 * n)
        except ReadError as e:
            raw = self._allgs_prefix(arr, n, e, say=not as_array)
        if as_array:
            return gtable.np.frombuffer(raw, dtype="<u8", count=len(raw) // 8).copy()
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
        """Every goroutine: a GoroutineTable (columns, rows made on demand; see gtable.py)
        where numpy and the layout allow, else a list of Goroutines walked row by row.
        with_stack (true): each keeps its whole stack; a view cuts what it prints."""
        with_stack = 1 if with_stack else 0
        with gc_paused():
            table = self.walk_table(with_stack, include_dead, want_labels, want_blocked)
            if table is not None:
                return table
            return self._walk(with_stack, include_dead, want_labels, want_blocked)

    def walk_table(self, with_stack: int = 0, include_dead: bool = False,
                   want_labels: bool = True, want_blocked: bool = True):
        """The walk as a GoroutineTable, or None where it cannot be columnar."""
        if gtable is None:
            return None
        base = gtable.read_base(self, include_dead)
        if base is None:
            return None
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
            gtable.fill_labels(self, base)
        if want_blocked:
            gtable.fill_blocked(self, base)
        base.tables[with_stack] = table   # (only once complete: an interrupt leaves none)
        return table

    CHUNK = 1024   # goroutines decoded together: one bulk read of gs, one of stack tops

    def _walk(self, with_stack, include_dead, want_labels, want_blocked):
        # the hot loop of a 100k-goroutine listing: kept flat on purpose
        addrs = self.g_addrs()
        threads, current_g = self.thread_map()
        glay = self.glay
        whole, reorder = glay.whole, glay.reorder
        # gs lie one size class apart: live, they are read in runs
        stride = self.g_stride(addrs)
        fast = whole is not None and glay.absent.isdisjoint(_FAST_FIELDS)
        if fast:  # where each field sits in the rows (an absent one: in the 0 added)
            at = glay.at
            i_id, i_st, i_wr, i_since = at.goid, at.status, at.waitreason, at.waitsince
            i_sp, i_pc, i_bp, i_lo, i_hi = at.sched_sp, at.sched_pc, at.sched_bp, at.stack_lo, \
                at.stack_hi
            i_gopc, i_start, i_locked, i_parent = at.gopc, at.startpc, at.lockedm, at.parent
            i_labels, i_waiting = at.labels, at.waiting
            padded = not glay.absent.isdisjoint(_FAST_OPTIONAL)
        waiting_code, runnable_code = self.st.waiting, self.st.runnable
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
            todo = []   # (addr, raw fields, _Group) or (addr, GFields or ReadError, None)
            for a, f in zip(chunk, rows):
                if f.__class__ is not tuple:
                    todo.append((a, f, None))
                    continue
                if fast and (f[i_st] == waiting_code or f[i_st] == runnable_code) and f[i_pc]:
                    sp, hi = f[i_sp], f[i_hi]
                    if f[i_lo] <= sp < hi <= sp + (1 << 30):
                        key = (f[i_st], f[i_wr], f[i_start], f[i_gopc], f[i_id] == 1, f[i_pc],
                               hi - sp, with_stack, False)
                        group = groups.get(key)
                        if group is None:
                            group = groups[key] = _Group(key, f)
                        group.sps.append(sp)
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
                new, unchecked = group.new, group.unchecked
                if unchecked and f[i_sp] in unchecked:  # its own walk (the same template)
                    sp = f[i_sp]
                    new = shape_of(group.key, sp, f[i_lo] or sp, f[i_hi]).new
                if group.wait_reason:
                    since = f[i_since]
                    minutes = (now - since) // minute if since and now > since else 0
                else:
                    since = 0
                    minutes = 0 if group.waiting else None
                g = new(f[i_id], a, since, minutes, f[i_locked] != 0, f[i_parent] or None,
                        a == current_g, f[i_pc], f[i_sp], f[i_bp], f[i_lo], f[i_hi])
                append(g)
                if want_labels and f[i_labels]:
                    labelled.append((g, f[i_labels]))
                if want_blocked and group.waiting and f[i_waiting]:
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

    def _check_group(self, group: _Group, i_sp: int, i_lo: int, i_hi: int) -> None:
        """Settle a group of _walk: its shape, known from before or learnt from its
        first member's walk, and the stack pointers whose tops do not hold the shape's
        recipe (those goroutines are walked on their own). The tops are read together,
        each only as long as the recipe, and compared in one pass."""
        key, sps, f = group.key, group.sps, group.first
        shape = self._shapes.get(key)
        if shape is None:
            sp = f[i_sp]
            shape = self._shape(key, sp, f[i_lo] or sp, f[i_hi])
        group.new, group.wait_reason = shape.new, shape.wait_reason
        group.waiting = shape.code == self.st.waiting
        recipe = shape.recipe
        if recipe is None or self._shapes.get(key) is not shape:
            group.unchecked = frozenset(sps)  # no recipe to check against: every one walks alone
            return
        if not recipe.size:  # a walk that read no stack slot: nothing to check
            group.unchecked = ()
            return
        need = len(sps) * recipe.size
        if len(self._tops_scratch) < need:
            self._tops_scratch = bytearray(max(need, 1 << 16))
        tops, errors = self.mem.unpack_fixed(sps, recipe.struct, self._tops_scratch)
        same = list(map(recipe.want.__eq__, tops))
        if errors or False in same:
            group.unchecked = frozenset(sp for sp, ok in zip(sps, same) if not ok) | \
                frozenset(sps[i] for i in errors)
        else:
            group.unchecked = ()

    def _decode_other(self, addr: int, fields, threads: dict, current_g, with_stack: int,
                      include_dead: bool, want_labels: bool, want_blocked: bool):
        """A goroutine off the fast path of _walk: unreadable (fields is the ReadError),
        running, in a syscall, being scanned, dead (None unless include_dead) or with an
        odd stack."""
        if not isinstance(fields, tuple):
            return Goroutine(status_code=-1, status="unreadable", scan=False, wait_reason="",
                             start=None, created_by=None, current=None, user=None, stack=None,
                             error=str(fields), id=-1, addr=addr)
        code = fields.status & ~GSCAN
        if code in self.dead_codes and not include_dead:
            return None
        start = self._walk_start(addr, fields, threads)
        return self.decode_g(addr, fields, start, threads, current_g, with_stack,
                             want_labels, want_blocked)

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
        """One goroutine by id, with its whole stack: only its g is decoded in full."""
        with_stack = 1 if with_stack else 0
        if gtable is not None:
            with gc_paused():
                base = gtable.read_base(self, include_dead=True)
            if base is not None:
                return self._find_in(base, goid, with_stack)
        addrs = self.g_addrs()
        glay = self.glay
        gsize = glay.size
        buf, errors = self.mem.gather_fixed(addrs, gsize)
        unpack, pad = glay.struct.unpack_from, (0,)
        decoded = [(a, unpack(buf, i * gsize) + pad) for i, a in enumerate(addrs)
                   if i not in errors]
        i_goid, i_since = glay.at.goid, glay.at.waitsince
        for a, raw in decoded:
            if raw[i_goid] != goid:
                continue
            fields = glay.reorder(raw[:-1])
            threads, current_g = self.thread_map()
            g = self.decode_g(a, fields, self._walk_start(a, fields, threads), threads,
                              current_g, with_stack, True, True)
            self._fill_in_bulk()
            now, self.clock = self.now_ns()
            latest = 0 if self.rt.target.is_live else max((r[i_since] for _, r in decoded),
                                                          default=0)
            if latest > now:
                now, self.clock = latest, "core: latest waitsince among goroutines"
            self._fill_wait_minutes([g], now)
            return g
        return None

    def _find_in(self, base, goid: int, with_stack: int) -> Optional[Goroutine]:
        """find over a columnar read of every g (gtable.read_base, dead ones kept)."""
        hit = gtable.np.flatnonzero(base.cols["goid"] == goid)
        if not len(hit):
            return None
        r = int(hit[0])
        addr = int(base.addr[r])
        fields = base.fields(r, self.mem)
        threads, current_g = base.threads, base.current_g
        g = self.decode_g(addr, fields, self._walk_start(addr, fields, threads), threads,
                          current_g, with_stack, True, True)
        self._fill_in_bulk()
        now, self.clock = base.now, base.clock
        since = base.cols["waitsince"]
        latest = 0 if self.rt.target.is_live or not len(since) else int(since.max())
        if latest > now:
            now, self.clock = latest, "core: latest waitsince among goroutines"
        self._fill_wait_minutes([g], now)
        return g

    def decode_at(self, addrs: list, with_stack: int = 0) -> list:
        """The goroutines whose gs are at addrs (an M's curg, say), each decoded on its own
        without reading every g: a Goroutine each (status "unreadable" with its error for
        a g that cannot be read), None for a dead one. No labels, no blocked-on."""
        with_stack = 1 if with_stack else 0
        glay = self.glay
        buf, errors = self.mem.gather_fixed(addrs, glay.size)
        threads, current_g = self.thread_map()
        out = []
        for i, a in enumerate(addrs):
            fields = errors[i] if i in errors else \
                glay.reorder(glay.struct.unpack_from(buf, i * glay.size))
            try:
                out.append(self._decode_other(a, fields, threads, current_g, with_stack,
                                              True, False, False))
            except DecodeError as e:
                out.append(self._decode_other(a, e, threads, current_g, 0, True, False, False))
        return out

    def _fill_wait_minutes(self, gs: list[Goroutine], now: int) -> None:
        """Wait minutes of the waiting and syscall goroutines among gs against now, as
        the runtime's goroutineheader counts them: 0 without a waitsince stamp."""
        minute = NS_PER_MINUTE
        waiting, syscall = self.st.waiting, self.st.syscall
        for g in gs:
            if g.status_code == waiting or g.status_code == syscall:
                since = g.wait_since_ns
                g.wait_minutes = (now - since) // minute if since and now > since else 0

    def decode_g(self, addr: int, f: GFields, start: tuple, threads: dict, current_g,
                 with_stack: int, want_labels: bool, want_blocked: bool = True) -> Goroutine:
        """A Goroutine from its decoded g fields and its walk start (see _walk_start),
        walked on its own: the goroutines _walk does not group by shape."""
        pc, sp, lo, hi, trap, bp = start
        shape = self._shape((f.status, f.waitreason, f.startpc, f.gopc, f.goid == 1, pc, hi - sp,
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
        if want_labels and f.labels:
            self._labelled.append((g, f.labels))
        if want_blocked and code == st.waiting and f.waiting:
            self._waiting.append((g, f.waiting))
        return g

    def _shape(self, key: tuple, sp: int, lo: int, hi: int) -> Shape:
        """The Shape of a goroutine; remembered under key when its stack walk is a
        recipe the next goroutine of that key can be checked against.

        Leaked goroutines share a shape: status, wait reason, start, creator and a stack
        of the same depth from the same pc. _walk reuses it for a goroutine whose stack
        holds the same return addresses in the same slots, checked word by word."""
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
        sudog = self.layout.sudog
        if sudog is None or not waiting:
            return
        o_c, o_elem, o_link, size = sudog
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
        # kind -> {what it names: its BlockedOn}, one shared by the goroutines it blocks
        made: dict = {"sema": {}, "chan": {}, "select": {}}
        gather_fixed = self.mem.gather_fixed

        def each_word(items, offset, kind):  # one word of each sudog
            if not items:
                return
            buf, errors = gather_fixed([s + offset for _, s in items], 8)
            words = list(_WORD.iter_unpack(buf))
            for i in errors:
                words[i] = (0,)
            named = made[kind]
            for (g, _), (addr,) in zip(items, words):
                if addr:
                    on = named.get(addr)
                    if on is None:
                        on = named[addr] = BlockedOn(kind, (addr,))
                    g.blocked_on = on

        each_word(by_kind["sema"], o_elem, "sema")
        each_word(by_kind["chan"], o_c, "chan")
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
        selects = made["select"]
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
                    on = selects.get(found)
                    if on is None:
                        on = selects[found] = BlockedOn("select", tuple(dict.fromkeys(found)))
                    g.blocked_on = on
            chains = more
