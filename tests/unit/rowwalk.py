"""The row-by-row goroutine walk, kept as the oracle the columnar walk
(runtime/gtable.py) is held against in test_gtable_unit.py: each chunk of gs unpacked
tuple by tuple, goroutines grouped by shape key and their stack tops checked with
struct reads, labels through GoRuntime.labels_many and blocked-on through the sudogs
read one word per goroutine. It shares the walker's shape, template and unwinder
(GoroutineWalker.shape_of, decode_other); tests/unit/test_goroutines_unit.py holds the
walk itself against runtime.Stack. Also the row-by-row forms of triage's summary,
filters, groups and buckets and of the goroutine table's text."""
from __future__ import annotations

import itertools
import operator
import struct
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable, Optional

from gdb_go_ext.analysis.triage import KINDS, kind_value, label_matches, status_matches
from gdb_go_ext.gcpause import gc_paused
from gdb_go_ext.runtime.goroutines import NS_PER_MINUTE, BlockedOn, Goroutine, GoroutineWalker
from gdb_go_ext.runtime.layout import GSCAN
from gdb_go_ext.errors import UsageError

# g fields the fast path of a walk cannot do without; and those it reads as 0 when absent
_FAST_FIELDS = ("goid", "status", "waitreason", "waitsince", "sched_sp", "sched_pc", "stack_lo",
                "stack_hi", "gopc", "startpc")
_FAST_OPTIONAL = ("sched_bp", "lockedm", "parent", "labels", "waiting")

_WORD = struct.Struct("<Q")


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



class RowWalker(GoroutineWalker):
    """GoroutineWalker with the row-by-row walk: rows(...) is a list of Goroutines."""

    def __init__(self, rt, progress=None):
        super().__init__(rt, progress)
        self._waiting: list = []   # (Goroutine, sudog) whose blocked_on a walk fills in bulk
        self._labelled: list = []  # (Goroutine, g.labels) whose labels a walk fills in bulk
        self._tops_scratch = bytearray()  # reused by _check_group's reads

    def rows(self, with_stack: int = 0, include_dead: bool = False,
             want_labels: bool = True, want_blocked: bool = True) -> list:
        with gc_paused():
            return self._walk(1 if with_stack else 0, include_dead, want_labels, want_blocked)

    def _decode_other(self, addr: int, fields, threads: dict, current_g, with_stack: int,
                      include_dead: bool, want_labels: bool, want_blocked: bool):
        """decode_other, None for a dead one unless include_dead; its labels and
        blocked-on queued for _fill_in_bulk."""
        if isinstance(fields, tuple) and (fields.status & ~GSCAN) in self.dead_codes \
                and not include_dead:
            return None
        g = self.decode_other(addr, fields, threads, current_g, with_stack)
        if isinstance(fields, tuple):
            if want_labels and fields.labels:
                self._labelled.append((g, fields.labels))
            if want_blocked and g.status_code == self.st.waiting and fields.waiting:
                self._waiting.append((g, fields.waiting))
        return g

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
        shape_of = self.shape_of
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
            self.fill_wait_minutes(out, latest)
            self.clock = "core: latest waitsince among goroutines"
        else:
            self.fill_wait_minutes(others, now)
        return out

    def _check_group(self, group: _Group, i_sp: int, i_lo: int, i_hi: int) -> None:
        """Settle a group of _walk: its shape, known from before or learnt from its
        first member's walk, and the stack pointers whose tops do not hold the shape's
        recipe (those goroutines are walked on their own). The tops are read together,
        each only as long as the recipe, and compared in one pass."""
        key, sps, f = group.key, group.sps, group.first
        shape = self.remembered_shape(key)
        if shape is None:
            sp = f[i_sp]
            shape = self.shape_of(key, sp, f[i_lo] or sp, f[i_hi])
        group.new, group.wait_reason = shape.new, shape.wait_reason
        group.waiting = shape.code == self.st.waiting
        recipe = shape.recipe
        reader, want = (recipe.struct, recipe.want) if recipe is not None else (None, None)
        if reader is None or self.remembered_shape(key) is not shape:
            group.unchecked = frozenset(sps)  # no recipe to check against: every one walks alone
            return
        if not reader.size:  # a walk that read no stack slot: nothing to check
            group.unchecked = ()
            return
        need = len(sps) * reader.size
        if len(self._tops_scratch) < need:
            self._tops_scratch = bytearray(max(need, 1 << 16))
        tops, errors = self.mem.unpack_fixed(sps, reader, self._tops_scratch)
        same = list(map(want.__eq__, tops))
        if errors or False in same:
            group.unchecked = frozenset(sp for sp, ok in zip(sps, same) if not ok) | \
                frozenset(sps[i] for i in errors)
        else:
            group.unchecked = ()

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


# --- triage, goroutine by goroutine (analysis/triage.py does it per shape and label set)
@dataclass
class Group:
    key: str
    goroutines: list = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.goroutines)

    def ids(self) -> list:
        return [g.id for g in self.goroutines]


def apply_filters(gs, status=None, with_=(), without=(), labels=()) -> list:
    with_, without, labels = list(with_), list(without), list(labels)
    for kind, _ in with_ + without:
        if kind not in KINDS:
            raise UsageError(f"unknown kind {kind!r}")
    out = []
    for g in gs:
        if status and not status_matches(g, status):
            continue
        if any(sub not in kind_value(g, k) for k, sub in with_):
            continue
        if any(sub in kind_value(g, k) for k, sub in without):
            continue
        if any(not label_matches(g, spec) for spec in labels):
            continue
        out.append(g)
    return out


def group_by(gs, kind: str) -> list:
    groups: dict = {}
    for g in gs:
        key = kind_value(g, kind)
        grp = groups.get(key)
        if grp is None:
            grp = groups[key] = Group(key)
        grp.goroutines.append(g)
    return sorted(groups.values(), key=lambda x: (-x.count, x.key))


def summary(gs) -> dict:
    by_status = Counter(g.status for g in gs)
    by_reason = Counter(g.wait_reason for g in gs)
    by_reason.pop("", None)
    return {"total": len(gs), "by_status": dict(by_status.most_common()),
            "by_wait_reason": dict(by_reason.most_common())}


@dataclass
class Bucket:
    status: str
    wait_reason: str
    frames: tuple
    goroutines: list = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.goroutines)

    def ids(self, n: Optional[int] = None) -> list:
        return [g.id for g in (self.goroutines if n is None else self.goroutines[:n])]

    @property
    def has_user_code(self) -> bool:
        return any(f.user for f in self.frames)

    def wait_range(self):
        mins = [g.wait_minutes for g in self.goroutines if g.wait_minutes is not None]
        return (min(mins), max(mins)) if mins else None

    def created_by(self) -> list:
        c = Counter(g.created_by.text() for g in self.goroutines if g.created_by)
        return c.most_common(3)

    def label_summary(self) -> list:
        c = Counter(f"{k}={v}" for g in self.goroutines for k, v in sorted(g.labels.items()))
        return c.most_common(5)

    def blocked_on(self) -> list:
        return Counter(filter(None, (g.blocked_on for g in self.goroutines))).most_common(3)


def bucket(gs, similar: bool = False) -> list:
    buckets: dict = {}
    for g in gs:
        frames = tuple(g.stack or ())
        if similar:
            shape = tuple((f.function, f.file) for f in frames)
        else:
            shape = tuple((f.function, f.file, f.line) for f in frames)
        key = (g.status, g.wait_reason, shape)
        b = buckets.get(key)
        if b is None:
            b = buckets[key] = Bucket(g.status, g.wait_reason, frames)
        b.goroutines.append(g)
    return sorted(buckets.values(), key=lambda b: (not b.has_user_code, -b.count, b.wait_reason))


def table_text(gs: list, show_labels: bool, depth: int, color: bool, width: int) -> str:
    """The goroutine table's text, row by row (views/goroutines.py writes it per
    distinct row over the columns)."""
    from gdb_go_ext.views.goroutines import _C, _c, _stack_text, _table_layout
    head, row_tails, tails, wid = _table_layout(gs, show_labels, color, width,
                                                max((g.id for g in gs), default=0))
    fmt = f"   {_C['id']}%-{wid}d{_C['reset']}  " if color else f"   %-{wid}d  "
    out = [_c(head, "head", color) + "\n"]
    for g, t in zip(gs, row_tails):
        line = fmt % g.id
        if g.is_current:
            line = "*" + line[1:]
        stack = _stack_text(g, depth, color) if depth and any(x.stack is not None for x in gs) \
            else ""
        out.append(line + tails[t] + "\n" + stack)
    return "".join(out)
