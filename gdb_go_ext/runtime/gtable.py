"""Every goroutine as columns: a walk of a million goroutines in bounded memory.

A walk (GoroutineWalker.walk) reads each g's fields into numpy arrays, one per field,
and settles the goroutines by shape (status, wait reason, start, creator, stack top)
over those arrays: the stack walk is made once per shape, and every goroutine of the
shape is checked against its recipe (the return addresses in the slots its walk read)
in one vectorised comparison. Goroutines off that path (running, in a syscall, being
scanned, with odd stacks) are decoded one by one as before, and kept as objects.

A GoroutineTable is a sequence of Goroutine rows made on demand, so every consumer that
iterates a walk keeps working; the views of this project filter, group, bucket and
write JSON over the columns themselves. Labels and blocked-on are read once per walk,
in bulk, when a view first asks for them; a walk with stacks after one without (or
the other way round) reuses the g fields already read (table_at)."""
from __future__ import annotations

import re
import struct
from collections.abc import Sequence

import numpy as np

from ..errors import DecodeError, ReadError
from ..target.bulk import CORE_CHUNK, core_words, zeroed
from .gmodel import Goroutine
from .layout import GSCAN, GFields
from .stack import TOP_BYTES, check_groups

NS_PER_MINUTE = 60_000_000_000
CHUNK = 1 << 15   # gs read together on a live target (a bounded buffer)
_MIX = np.uint64(0x9E3779B97F4A7C15)

# the shared parts of a Goroutine, in goroutine_maker's order
SHARED = ("status_code", "status", "scan", "wait_reason", "start", "created_by", "current",
          "user", "stack", "error")


def _field_dtypes(glay) -> dict:
    """{GFields name: numpy dtype} of the fields present, from the layout's struct format."""
    out = {}
    keys = iter(glay.keys)
    for count, ch in re.findall(r"(\d*)([a-zA-Z?])", glay.struct.format.lstrip("<=>!@")):
        if ch == "x":
            continue
        for _ in range(int(count or 1)):
            out[next(keys)] = np.dtype("<" + ch)
    return out


class Base:
    """What a walk read of every g it lists, with stacks or without: the g fields as
    columns (GFields names; absent ones zero), the goroutines off the fast path, the
    threads and the clock; labels and blocked-on once read."""

    def __init__(self):
        self.n = 0
        self.cols: dict = {}
        self.addr = None
        self.fast = None
        self.special_rows: list = []   # row indices off the fast path
        self.all_fast = False
        self.glay = None
        self.threads: dict = {}
        self.current_g = None
        self.current_row = -1
        self.now = 0
        self.clock = None
        self.tables: dict = {}  # 1 (whole stacks) or 0 (locations only) -> GoroutineTable
        # shape key at PRECHECK_DEPTH -> whether each member's stack top holds its recipe
        self.prechecked: dict = {}
        # labels: per row an index into label_sets (-1: none), errors by row
        self.label_idx = None
        self.label_sets: list = []
        self.label_errs: dict = {}
        # blocked on: per row an index into blocked (-1: none)
        self.blocked_idx = None
        self.blocked: list = []

    def fields(self, i: int, mem=None) -> GFields:
        """Row i's GFields: the g read again where mem is given and readable (the
        fields not kept as columns), else from the columns."""
        if mem is not None:
            glay = self.glay
            try:
                return glay.reorder(glay.struct.unpack(mem.read(int(self.addr[i]),
                                                                glay.struct.size)))
            except (ReadError, struct.error):
                pass
        cols = self.cols
        return GFields._make(int(cols[k][i]) for k in GFields._fields)

    def subset(self, rows: np.ndarray) -> "Base":
        """A Base of the given rows alone (in that order): the same threads and clock,
        nothing settled or read in bulk yet."""
        b = Base()
        b.n = len(rows)
        b.cols = {k: v[rows] for k, v in self.cols.items()}
        b.addr = self.addr[rows]
        b.fast = self.fast[rows]
        b.all_fast = bool(b.fast.all())
        b.special_rows = np.flatnonzero(~b.fast).tolist()
        b.glay = self.glay
        b.threads, b.current_g = self.threads, self.current_g
        hit = np.flatnonzero(rows == self.current_row) if self.current_row >= 0 else ()
        b.current_row = int(hit[0]) if len(hit) else -1
        b.now, b.clock = self.now, self.clock
        return b


class GoroutineTable(Sequence):
    """The goroutines of one walk, with whole stacks or without (or a selection of them: rows, an
    index array into the base, in walk order). Row r is a Goroutine made on demand."""

    def __init__(self, base: Base, depth: int, shape_idx, shapes: list, specials: dict,
                 minutes, since, rows=None):
        self.base = base
        self.depth = depth
        self.shape_idx = shape_idx   # per base row: index into shapes
        self.shapes = shapes         # tuples of SHARED
        self.specials = specials     # base row -> Goroutine (off the fast path)
        self.minutes = minutes       # per base row; -1: None
        self.since = since           # per base row
        self.rows = rows             # None: every row of base

    # --- the sequence
    def __len__(self) -> int:
        return self.base.n if self.rows is None else len(self.rows)

    def base_rows(self) -> np.ndarray:
        return np.arange(self.base.n, dtype=np.int64) if self.rows is None else self.rows

    def __getitem__(self, i):
        if isinstance(i, slice):
            return self.select(self.base_rows()[i])
        n = len(self)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(i)
        return self.row(int(i) if self.rows is None else int(self.rows[i]))

    def __iter__(self):
        rows = self.base_rows()
        for lo in range(0, len(rows), 4096):
            yield from map(self.row, rows[lo:lo + 4096].tolist())

    def select(self, rows) -> "GoroutineTable":
        return GoroutineTable(self.base, self.depth, self.shape_idx, self.shapes, self.specials,
                              self.minutes, self.since, np.asarray(rows, dtype=np.int64))

    def head(self, n: int) -> "GoroutineTable":
        return self.select(self.base_rows()[:n])

    # --- one row
    def row(self, r: int):
        b = self.base
        g = self.specials.get(r)
        if g is not None:
            return self._filled(g, r)
        cols = b.cols
        m = int(self.minutes[r])
        parent = int(cols["parent"][r])
        g = Goroutine(*self.shapes[int(self.shape_idx[r])], int(cols["goid"][r]), int(b.addr[r]),
                      int(self.since[r]), None if m < 0 else m, bool(cols["lockedm"][r]),
                      parent or None, r == b.current_row, int(cols["sched_pc"][r]),
                      int(cols["sched_sp"][r]), int(cols["sched_bp"][r]),
                      int(cols["stack_lo"][r]), int(cols["stack_hi"][r]))
        return self._filled(g, r)

    def _filled(self, g, r: int):
        """g with row r's labels (and their error) and blocked-on, where the walk read them."""
        b = self.base
        if b.label_idx is not None:
            li = int(b.label_idx[r])
            if li >= 0:
                g.labels = dict(b.label_sets[li])
            err = b.label_errs.get(r)
            if err is not None:
                g.error = g.error or err
        if b.blocked_idx is not None:
            bi = int(b.blocked_idx[r])
            g.blocked_on = b.blocked[bi] if bi >= 0 else None
        return g

    # --- columns of the selection
    def col(self, name: str) -> np.ndarray:
        c = self.base.cols[name] if name in self.base.cols else getattr(self.base, name)
        return c if self.rows is None else c[self.rows]

    def shapes_of(self) -> np.ndarray:
        return self.shape_idx if self.rows is None else self.shape_idx[self.rows]

    def minutes_of(self) -> np.ndarray:
        return self.minutes if self.rows is None else self.minutes[self.rows]

    def ids(self) -> np.ndarray:
        return self.col("goid")

    def label_idx_of(self) -> np.ndarray:
        li = self.base.label_idx
        if li is None:
            return np.full(len(self), -1, dtype=np.int64)
        return li if self.rows is None else li[self.rows]

    def blocked_idx_of(self) -> np.ndarray:
        bi = self.base.blocked_idx
        if bi is None:
            return np.full(len(self), -1, dtype=np.int64)
        return bi if self.rows is None else bi[self.rows]

    def shape_counts(self) -> tuple:
        """(shape indices, their counts, their first position), in order of first position."""
        s = self.shapes_of()
        if not len(s):
            return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64)
        u, first, counts = np.unique(s, return_index=True, return_counts=True)
        order = np.argsort(first, kind="stable")
        return u[order], counts[order], first[order]


def factorize(cols: list, members: bool = False) -> tuple:
    """(codes, first row of each code[, rows of each code]): rows equal in every column
    of cols (integer arrays of one length) share a code; codes are numbered by first
    row, and each code's rows are in row order. Hashed and sorted once, with every row
    checked against its code's first row; exact (lexsorted) on a collision."""
    n = len(cols[0])
    if n == 0:
        return (np.zeros(0, np.int64), np.zeros(0, np.int64)) + (([],) if members else ())
    h = np.zeros(n, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for c in cols:
            h ^= c.astype(np.uint64, copy=False)
            h *= _MIX
            h ^= h >> np.uint64(29)
    order = np.argsort(h)   # (not stable: each code's first row is its least)
    hs = h[order]
    starts = np.flatnonzero(np.concatenate(([True], hs[1:] != hs[:-1])))
    first = np.minimum.reduceat(order, starts)
    counts = np.diff(np.append(starts, n))
    inv = zeroed(n, np.int64)
    inv[order] = np.repeat(np.arange(len(starts)), counts)
    if all(np.array_equal(c, c[first][inv]) for c in cols):
        if members:
            # each code's rows in row order: a stable sort of the codes (radix when small)
            small = np.uint16 if len(starts) <= 1 << 16 else np.int64
            order = np.argsort(inv.astype(small), kind="stable")
    else:   # a collision: exact
        order = np.lexsort(cols[::-1])
        srt = [c[order] for c in cols]
        new = np.ones(n, dtype=bool)
        new[1:] = np.any(np.stack([s[1:] != s[:-1] for s in srt]), axis=0)
        starts = np.flatnonzero(new)
        counts = np.diff(np.append(starts, n))
        inv[order] = np.repeat(np.arange(len(starts)), counts)
        first = np.full(len(starts), n, dtype=np.int64)
        np.minimum.at(first, inv, np.arange(n))
        order = np.argsort(inv, kind="stable")   # each code's rows together, in row order
        starts = np.searchsorted(inv[order], np.arange(len(first)))
    perm = np.argsort(first, kind="stable")
    rank = np.empty(len(first), dtype=np.int64)
    rank[perm] = np.arange(len(first))
    out = (rank[inv], first[perm])
    if members:
        ends = np.append(starts[1:], n)
        out += ([order[starts[j]:ends[j]] for j in perm.tolist()],)
    return out


def groups_of(codes: np.ndarray, k: int) -> list:
    """The rows of each code 0..k-1, each in row order."""
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(k + 1))
    return [order[bounds[i]:bounds[i + 1]] for i in range(k)]


# ---------------------------------------------------------------------------
# the walk
# ---------------------------------------------------------------------------
# the g fields kept as columns: what the fast path and the views read (the others of
# GFields are read again, g by g, for the few goroutines off the fast path)
_COLUMNS = ("goid", "status", "waitreason", "waitsince", "sched_sp", "sched_pc", "sched_bp",
            "stack_lo", "stack_hi", "gopc", "startpc", "lockedm", "parent", "labels", "waiting")


def read_base(walker, include_dead: bool) -> Base:
    """The g fields of every goroutine of runtime.allgs as columns (see Base; a field
    the g lacks reads as 0). Unreadable gs (and dead ones unless include_dead) are
    dropped chunk by chunk, with one line saying how many could not be read."""
    glay = walker.glay
    if glay.whole is None:
        raise DecodeError(f"the g fields the walk reads lie past the g's size ({glay.size} "
                          "bytes): the binary's DWARF for runtime.g is inconsistent")
    mem = walker.mem
    b = Base()
    addrs = walker.g_addrs(as_array=True)
    n = len(addrs)
    b.threads, b.current_g = walker.thread_map()
    dtypes = {k: v for k, v in _field_dtypes(glay).items() if k in _COLUMNS}
    offs = glay.offsets
    cols = {k: zeroed(n, dt) for k, dt in dtypes.items()}
    kept_addrs = zeroed(n, np.uint64)
    progress = walker.progress
    cw = core_words(mem)
    first_err = None
    unread = 0
    w = 0   # rows kept so far
    dead = np.array(sorted(walker.dead_codes) or [-1], dtype=np.int64)
    st_dt = dtypes["status"]

    def keep_rows(lo, m, get, ok):
        """Keep the readable (and live) rows lo..lo+m of a chunk; get(k): field k's values."""
        nonlocal w
        status = get("status").astype(np.int64)
        keep = ok if include_dead else ok & ~np.isin(status & ~GSCAN, dead)
        j = int(np.count_nonzero(keep))
        if j == m:
            for k in dtypes:
                cols[k][w:w + m] = get(k)
            kept_addrs[w:w + m] = addrs[lo:lo + m]
        else:
            for k in dtypes:
                cols[k][w:w + j] = get(k)[keep]
            kept_addrs[w:w + j] = addrs[lo:lo + m][keep]
        w += j

    if cw is not None and cw.has_file():
        stride = walker.g_stride(addrs[:1025].tolist())
        dt = np.dtype({"names": list(dtypes), "formats": list(dtypes.values()),
                       "offsets": [offs[k] for k in dtypes], "itemsize": stride})
        scratch = bytearray(min(n, CORE_CHUNK) * stride + stride)
        for lo in range(0, n, CORE_CHUNK):
            if progress and not lo % (CORE_CHUNK * 8):
                progress(lo // 2, n)
            chunk = addrs[lo:lo + CORE_CHUNK]
            m = len(chunk)
            held = cw.read_strided(chunk, glay.size, stride, scratch)
            if held is None:
                cw = None
                w, unread = 0, 0
                break
            unread += int(m - np.count_nonzero(held))
            keep_rows(lo, m, np.frombuffer(scratch, dtype=dt, count=m).__getitem__, held)
        else:
            cw = False
    if cw:
        for lo in range(0, n, CORE_CHUNK):
            if progress and not lo % (CORE_CHUNK * 8):
                progress(lo // 2, n)
            goffs, held = cw.locate(addrs[lo:lo + CORE_CHUNK], glay.size)
            if np.any(goffs % np.uint64(8)):
                cw = None
                break
            vals = {k: cw.values(goffs + np.uint64(offs[k]), dt) for k, dt in dtypes.items()}
            unread += int(len(held) - np.count_nonzero(held))
            keep_rows(lo, len(goffs), vals.__getitem__, held)
            cw.release(goffs[held], glay.size)
        if cw is None:
            w, unread = 0, 0
    if cw is None:   # (False: read above)
        stride = walker.g_stride(addrs[:1025].tolist())
        dt = np.dtype({"names": list(dtypes), "formats": list(dtypes.values()),
                       "offsets": [offs[k] for k in dtypes], "itemsize": stride})
        scratch = bytearray(min(n, CHUNK) * stride)
        for lo in range(0, n, CHUNK):
            if progress:
                progress(lo // 2, n)
            chunk = addrs[lo:lo + CHUNK]
            m = len(chunk)
            ok, errors = mem.read_strided(chunk, glay.size, stride, scratch)
            buf = scratch
            if len(buf) < m * stride:   # (a last g short of the stride's padding)
                buf = bytes(buf) + bytes(m * stride - len(buf))
            rec = np.frombuffer(buf, dtype=dt, count=m)
            if errors:
                ok[np.fromiter(errors, dtype=np.int64)] = False
                unread += len(errors)
                if first_err is None:
                    first_err = errors[min(errors)]
            keep_rows(lo, m, rec.__getitem__, ok)
    del st_dt
    cut = walker.allgs_cut
    if unread or cut:
        total = cut[1] if cut else n
        lost = unread + (total - n)
        why = []
        if cut:
            why.append(f"runtime.allgs is readable up to entry {n}: {cut[2]}")
        if unread:
            why.append(f"first unreadable g: {first_err or 'not in the core file'}")
        walker.errors.append(f"{lost} of {total} goroutines in runtime.allgs could not be read "
                             f"({'; '.join(why)}); the {total - lost} others are listed")
    cols = {k: v[:w] for k, v in cols.items()}
    for k in GFields._fields:
        if k not in cols:   # absent from the g, or not kept (0; see Base.fields)
            cols[k] = np.zeros(w, dtype=np.uint8)
    addrs = kept_addrs[:w]
    b.n = w
    b.addr = addrs
    b.cols = cols
    b.glay = glay
    st = walker.st
    status = cols["status"]
    sp, hi, lo = cols["sched_sp"], cols["stack_hi"], cols["stack_lo"]
    fast = ((status == st.waiting) | (status == st.runnable)) & (cols["sched_pc"] != 0) & \
        (lo <= sp) & (sp < hi)
    fast[fast] = (hi[fast] - sp[fast]) <= (1 << 30)
    b.fast = fast
    b.all_fast = bool(fast.all())
    b.special_rows = np.flatnonzero(~fast).tolist()
    if b.current_g is not None:
        hit = np.flatnonzero(addrs == np.uint64(b.current_g))
        b.current_row = int(hit[0]) if len(hit) else -1
    b.now, b.clock = walker.now_ns()
    walker.clock = b.clock
    if progress:
        progress(n // 2, n)
    return b


def settle(walker, base: Base, depth: int) -> GoroutineTable:
    """The goroutines of base with whole stacks (depth 1) or locations only (0)."""

    cols = base.cols
    n = base.n
    shapes: list = []
    interned: dict = {}

    def intern(args: tuple) -> int:
        key = tuple(a if isinstance(a, (int, str, bool)) or a is None else id(a) for a in args)
        i = interned.get(key)
        if i is None:
            i = interned[key] = len(shapes)
            shapes.append(args)
        return i

    shape_idx = np.full(n, -1, dtype=np.int64)
    minutes = np.full(n, -1, dtype=np.int64)
    since = zeroed(n, np.int64)
    st = walker.st
    mem = walker.mem
    fast = np.flatnonzero(base.fast)
    progress = walker.progress
    if len(fast):
        def at(k):   # a column over the fast rows (itself when every row is)
            return cols[k] if base.all_fast else cols[k][fast]
        sp, hi, lo = at("sched_sp"), at("stack_hi"), at("stack_lo")
        key_cols = [at("status"), at("waitreason"), at("startpc"), at("gopc"),
                    at("goid") == 1, at("sched_pc"), hi - sp]
        codes, firsts, members = factorize(key_cols, members=True)
        done = 0
        plans = []   # per group: (key, shape, rows, bad, readers, key2)
        for f0, rows in zip(firsts.tolist(), members):
            key = tuple(int(c[f0]) for c in key_cols)
            key = key[:4] + (bool(key[4]),) + key[5:] + (depth, False)
            s0, lo0, hi0 = int(sp[f0]), int(lo[f0]), int(hi[f0])
            shape = walker.remembered_shape(key)
            if shape is None:
                shape = walker.shape_of(key, s0, lo0 or s0, hi0)
            known = walker.remembered_shape(key) is shape
            pre = base.prechecked.get(key)
            bad = readers = key2 = None
            if shape.recipe is None or not known:
                bad = rows
            elif not shape.recipe.size:
                bad = rows[:0]
            elif pre is not None and len(pre) == len(rows):
                bad = rows[~pre]
            else:
                readers = [shape.recipe]
                if depth != PRECHECK_DEPTH:
                    # the stacks' depth is checked in the same reads, for the view that follows
                    key2 = key[:-2] + (PRECHECK_DEPTH, False)
                    shape2 = walker.remembered_shape(key2)
                    if shape2 is None:
                        shape2 = walker.shape_of(key2, s0, lo0 or s0, hi0)
                    if walker.remembered_shape(key2) is shape2 and shape2.recipe is not None and \
                            shape2.recipe.size:
                        readers.append(shape2.recipe)
            plans.append((key, shape, rows, bad, readers, key2))
        checks = _check_tops(mem, sp, plans)
        for gi, (key, shape, rows, bad, readers, key2) in enumerate(plans):
            si = intern(shape.new.args)
            grows = fast[rows]
            if bad is None:
                same = checks[gi]
                if key2 is not None and len(same) > 1:
                    base.prechecked[key2] = same[1]
                bad = rows if same[0] is None else rows[~same[0]]
            shape_idx[grows] = si
            if len(bad):
                for j in bad.tolist():
                    s = int(sp[j])
                    other = walker.shape_of(key, s, int(lo[j]) or s, int(hi[j]))
                    shape_idx[fast[j]] = intern(other.new.args)
            # wait times, as the runtime's goroutineheader counts them
            if shape.wait_reason:
                ws = cols["waitsince"][grows].astype(np.int64, copy=False)
                since[grows] = ws
                now = base.now
                m = np.where((ws != 0) & (now > ws), (now - ws) // NS_PER_MINUTE, 0)
                minutes[grows] = m
            elif shape.code == st.waiting:
                minutes[grows] = 0
            done += len(rows)
            if progress and (gi % 64 == 63 or len(rows) > 4096):
                progress(n // 2 + done // 2, n)
    specials = {}
    others = []
    for r in base.special_rows:
        f = base.fields(r, mem)
        try:
            g = walker.decode_other(int(base.addr[r]), f, base.threads, base.current_g, depth)
        except DecodeError as e:   # (as decode_at: one error row)
            g = walker.decode_other(int(base.addr[r]), e, base.threads, base.current_g, 0)
        g.is_current = r == base.current_row
        specials[r] = g
        others.append((r, g))
        shape_idx[r] = intern(tuple(getattr(g, k) for k in SHARED))
    walker.fill_wait_minutes([g for _, g in others], base.now)
    for r, g in others:
        since[r] = g.wait_since_ns
        minutes[r] = -1 if g.wait_minutes is None else g.wait_minutes
    # a core whose latest stamp is older than a goroutine's waitsince: all against the
    # latest waitsince
    latest = 0 if walker.rt.target.is_live or not n else int(since.max())
    walker.clock = base.clock
    if latest > base.now:
        codes_all = np.array([s[0] for s in shapes], dtype=np.int64)[shape_idx]
        timed = (codes_all == st.waiting) | (codes_all == st.syscall)
        m = np.where((since != 0) & (latest > since), (latest - since) // NS_PER_MINUTE, 0)
        minutes[timed] = m[timed]
        for r, g in others:
            if timed[r]:
                g.wait_minutes = int(minutes[r])
        walker.clock = "core: latest waitsince among goroutines"
    if progress:
        progress(n, n)
    return GoroutineTable(base, depth, shape_idx, shapes, specials, minutes, since)


PRECHECK_DEPTH = 1   # whole stacks (go stacks, -t): checked along with a first walk's


def _check_tops(mem, sp: np.ndarray, plans: list) -> list:
    """Whether the stacks of each plan (settle's groups) hold its recipes (see
    stack.check_groups), the tops of a core's groups read together."""
    return check_groups([(p[4], p[2]) if p[4] is not None else None for p in plans], mem, sp,
                        TOP_BYTES)
