"""The trace summary (tracesummary.TraceSummary) from the reader's columns
(exectrace.columns.Block): the same summary as tracesummary.summarize() over the same
events, computed with numpy over each block instead of a Python step per event.

Per block:
- each goroutine's (and each P's) StateTransition rows are grouped in order (a stable sort
  by goroutine). A row's old state is the to-state of the goroutine's row before it (a
  status that repeats it is dropped, as summarize() drops it), its span runs from the time
  of the kept row before it, and the sums by state are sums over each goroutine's segment;
- the count of Runnable goroutines is a running sum over the rows in order; a P's gaps
  (idle while some goroutine is runnable) are where its Idle spans meet the spans in which
  the count is above zero;
- only the rows that need a stack or attributes are read as records (Block.record), in
  order, by summarize()'s own steps: creations, statuses that change a state, ranges,
  labels, the timeline goroutine's transitions, and each goroutine's last transition.
Each goroutine's and P's state, open spans and gaps and the open ranges carry from one
block to the next, so blocks may split the events anywhere.
"""
from __future__ import annotations

import heapq
from typing import Iterable, Optional

import numpy as np

from ..exectrace.columns import (KIND_CODE, RES_G, RES_P, ST_TRANSITION, STATE_CODE, STATES,
                                 Block)
from .tracesummary import (FAR_NS, MAX_TIMELINE, TOP_GAPS, GoroutineSummary, PSummary,
                           TraceSummary, Transition, finish, label_event, note_creation,
                           note_status, range_event, summarize)

UNDET, NOTEXIST = STATE_CODE["Undetermined"], STATE_CODE["NotExist"]
RUNNABLE, RUNNING = STATE_CODE["Runnable"], STATE_CODE["Running"]
WAITING, SYSCALL, IDLE = STATE_CODE["Waiting"], STATE_CODE["Syscall"], STATE_CODE["Idle"]
FIRST_RARE_KIND, LABEL = KIND_CODE["RangeBegin"], KIND_CODE["Label"]
assert [KIND_CODE[k] for k in ("RangeEnd", "RangeActive")] == [LABEL - 2, LABEL - 1]
PART = 1 << 17              # rows walked at a time
TABLE_MAX = 1 << 24         # ids below this are looked up in a table, others in a dict
NEVER = 1 << 62             # a row no block reaches
NO_TIME = np.iinfo(np.int64).min


def summarize_blocks(blocks: Iterable, version: str = "", window: Optional[tuple] = None,
                     timeline_for: Optional[int] = None,
                     top_gaps: int = TOP_GAPS) -> TraceSummary:
    """summarize() of the events that the blocks (columns.Block, in the reader's order)
    hold. window, timeline_for and top_gaps as summarize() takes them."""
    walk = ColumnWalk(version, window, timeline_for, top_gaps)
    for b in blocks:
        if any(walk.feed(part) for part in parts(b)):
            break               # an event past the window's end: reading stops
        del b                   # not kept while the reader makes the next block
    return walk.result()


def parts(b) -> Iterable:
    """Block b in runs of at most PART rows (each run's arrays stay in the caches: on a
    generation of millions of events, the walk takes 4 times as long in one piece)."""
    if len(b) <= PART:
        yield b
        return
    for x in range(0, len(b), PART):
        y = x + PART
        yield Block(b.t[x:y], b.kind[x:y], b.m[x:y], b.p[x:y], b.g[x:y], b.res[x:y],
                    b.rid[x:y], b.frm[x:y], b.to[x:y], b.reason[x:y], b.reasons,
                    record=lambda i, x=x: b.record(x + i))


def summarize_trace(trace, window: Optional[tuple] = None,
                    timeline_for: Optional[int] = None) -> TraceSummary:
    """The summary of an exectrace.Trace, from its columns (Trace.blocks()); of any other
    iterable of Events, by summarize(). The trace's damage note (trace.error) is kept."""
    version = getattr(trace, "version", "")
    if hasattr(trace, "blocks"):
        from ..memtrim import KeepPages
        with KeepPages():       # a generation's columns reuse the last one's pages
            s = summarize_blocks(trace.blocks(), version, window, timeline_for)
    else:
        s = summarize(trace, version=version, window=window, timeline_for=timeline_for)
    s.error = getattr(trace, "error", None)
    return s


class Ids:
    """Dense indexes 0, 1, ... for ids (goroutine or P ids), in the order first seen."""

    def __init__(self):
        self.table = np.full(1024, -1, dtype=np.int64)
        self.far: dict = {}         # ids outside [0, TABLE_MAX)
        self.ids: list = []         # dense index -> id

    def _grow(self, top: int) -> None:
        if top >= len(self.table):
            t = np.full(max(2 * len(self.table), top + 1), -1, dtype=np.int64)
            t[:len(self.table)] = self.table
            self.table = t

    def one(self, i: int) -> int:
        if 0 <= i < len(self.table):
            return int(self.table[i])
        return self.far.get(i, -1)

    def lookup(self, ids: np.ndarray) -> np.ndarray:
        """The dense index of each id (-1: not seen)."""
        inside = (ids >= 0) & (ids < len(self.table))
        if inside.all():
            return self.table[ids]
        out = np.full(len(ids), -1, dtype=np.int64)
        out[inside] = self.table[ids[inside]]
        if self.far:
            for j in np.flatnonzero(~inside).tolist():
                out[j] = self.far.get(int(ids[j]), -1)
        return out

    def index(self, ids: np.ndarray) -> tuple:
        """(dense index of each id, the positions in ids where new ids are first seen)."""
        if len(ids) == 0:
            return ids.astype(np.int64), np.empty(0, dtype=np.int64)
        small = ids.min() >= 0 and ids.max() < TABLE_MAX
        if small:
            self._grow(int(ids.max()))
            dense = self.table[ids]
        else:
            dense = self.lookup(ids)
        new = np.flatnonzero(dense < 0)
        if not len(new):
            return dense, new
        u, first = np.unique(ids[new], return_index=True)
        order = np.argsort(first, kind="stable")
        for i in u[order].tolist():
            if 0 <= i < TABLE_MAX:
                self._grow(i)
                self.table[i] = len(self.ids)
            else:
                self.far[i] = len(self.ids)
            self.ids.append(i)
        dense = self.table[ids] if small else self.lookup(ids)
        return dense, new[first[order]]


class Groups:
    """The kept StateTransition rows of each id (goroutine or P) of a block, grouped by id
    in order: ds (dense id), rows (in the block), fr/to/old (state codes), ts (time), d (the
    span closed by the row, clipped to the window), first (row opens its id's segment),
    starts (segment starts), sid (the dense id of each segment), seg (segment of each row)."""

    def __init__(self, dense, rows, b, t, state, since, lo):
        top = dense.max() if len(dense) else 0            # a radix sort for up to 16 bits
        key = dense.astype(np.uint8 if top < 1 << 8 else np.uint16) if top < 1 << 16 else dense
        order = np.argsort(key, kind="stable")
        ds = dense[order]
        rows = rows[order]
        fr, to = b.frm[rows], b.to[rows]
        first = starts_of(ds)
        old = np.empty_like(to)
        old[1:] = to[:-1]
        old[first] = state[ds[first]]
        self.statuses = statuses = np.flatnonzero(fr == UNDET)
        repeats = statuses[old[statuses] == to[statuses]]
        if len(repeats):        # a status that repeats the state: dropped
            keep = np.ones(len(ds), dtype=bool)
            keep[repeats] = False
            ds, rows, fr, to, old = ds[keep], rows[keep], fr[keep], to[keep], old[keep]
            first = starts_of(ds)
            self.statuses = np.flatnonzero(fr == UNDET)
        self.ds, self.rows, self.fr, self.to, self.old, self.first = ds, rows, fr, to, old, first
        self.ts = ts = t[rows]
        self.starts = np.flatnonzero(first)
        self.sid = ds[self.starts]
        self.seg = np.repeat(np.arange(len(self.starts)), np.diff(np.r_[self.starts, len(ds)]))
        self.index = np.arange(len(ds), dtype=np.int32 if len(ds) < 1 << 31 else np.int64)
        since = self.before(ts, since)
        if lo > -FAR_NS:
            np.maximum(since, lo, out=since)
        self.d = d = ts - since
        np.maximum(d, 0, out=d)

    def __len__(self) -> int:
        return len(self.ds)

    def before(self, x, carried):
        """x of each kept row's predecessor in its segment (the carried value for the first)."""
        out = np.empty_like(x)
        out[1:] = x[:-1]
        out[self.first] = carried[self.sid]
        return out

    def segsum(self, x):
        return np.add.reduceat(x, self.starts) if len(x) else x

    def last(self, mask=None) -> tuple:
        """(row index, segment) of the last row of each segment (where mask holds)."""
        if mask is None:
            idx = np.r_[self.starts[1:] - 1, len(self.ds) - 1] if len(self.ds) else self.starts
            return idx, np.arange(len(self.starts))
        best = np.maximum.reduceat(np.where(mask, self.index, -1), self.starts)
        has = best >= 0
        return best[has], np.flatnonzero(has)


def starts_of(ds):
    first = np.ones(len(ds), dtype=bool)
    first[1:] = ds[1:] != ds[:-1]
    return first


def in_order(na: int, nb: int, parts: list, known) -> list:
    """The distinct pairs (a, b) (0 <= a < na, 0 <= b < nb) of the parts [(a, b, w or
    None, position)] with the sum of w over each: [(a, b, sum)]; those that known(a, b)
    does not know come last, in the order of their first position."""
    if na * nb <= TABLE_MAX:
        total = np.zeros(na * nb, dtype=np.int64)
        seen = np.zeros(na * nb, dtype=bool)
        codes = []
        for a, b, w, pos in parts:
            c = a * nb + b
            codes.append(c)
            if w is not None:
                np.add.at(total, c, w)
            seen[c] = True
        seen = np.flatnonzero(seen)
        isnew = np.array([not known(x, y) for x, y in zip((seen // nb).tolist(),
                                                          (seen % nb).tolist())], dtype=bool)
        if isnew.any():         # the new pairs by the first position they are seen at
            first = np.full(na * nb, NEVER, dtype=np.int64)
            for c, (_, _, _, pos) in zip(codes, parts):
                np.minimum.at(first, c, pos)
            new = seen[isnew]
            seen = np.r_[seen[~isnew], new[np.argsort(first[new], kind="stable")]]
        return list(zip((seen // nb).tolist(), (seen % nb).tolist(), total[seen].tolist()))
    c = np.concatenate([a * nb + b for a, b, _, _ in parts])
    w = np.concatenate([np.zeros(len(a), dtype=np.int64) if w is None else w
                        for a, _, w, _ in parts])
    pos = np.concatenate([pos for _, _, _, pos in parts])
    u, inv = np.unique(c, return_inverse=True)
    total = np.zeros(len(u), dtype=np.int64)
    np.add.at(total, inv, w)
    first = np.full(len(u), NEVER, dtype=np.int64)
    np.minimum.at(first, inv, pos)
    order = np.argsort(first, kind="stable")
    return list(zip((u[order] // nb).tolist(), (u[order] % nb).tolist(),
                    total[order].tolist()))


class ColumnWalk:
    """summarize()'s walk, a block at a time. Per goroutine (by dense index) its state is
    in arrays; per P in the PSummary (its state also in arrays)."""

    def __init__(self, version, window, timeline_for, top_gaps):
        self.s = TraceSummary(version=version)
        self.window, self.timeline_for, self.top_gaps = window, timeline_for, top_gaps
        self.lo = self.hi = None
        self.n = 0
        self.end = None
        self.runnable = 0
        self.open_ranges: dict = {}
        self.gids, self.pids = Ids(), Ids()
        self.gobjs: list = []
        self.pobjs: list = []
        self.timeline_dense = -1
        self.reasons = {"": 0}          # reason -> code (None: -1)
        self.reason_names = [""]
        self.unknown = self.reason_code("unknown")
        self.cap = 0
        self.g = {}
        self.grow_g(64)
        self.p_state = np.zeros(0, dtype=np.int8)
        self.p_since = np.zeros(0, dtype=np.int64)

    def reason_code(self, r) -> int:
        if r is None:
            return -1
        c = self.reasons.get(r)
        if c is None:
            c = self.reasons[r] = len(self.reason_names)
            self.reason_names.append(r)
        return c

    G_FIELDS = (("state", np.int8, UNDET), ("since", np.int64, 0), ("on_p", np.int64, -1),
                ("reason", np.int64, 0), ("running", np.int64, 0), ("runnable", np.int64, 0),
                ("syscall", np.int64, 0), ("transitions", np.int64, 0),
                ("last_ran", np.int64, NO_TIME), ("last_p", np.int64, -1),
                ("last_m", np.int64, -1), ("gcw_at", np.int64, NEVER))

    def grow_g(self, n: int) -> None:
        if n <= self.cap:
            return
        cap = max(n, 2 * self.cap)
        for name, dt, v in self.G_FIELDS:
            a = np.full(cap, v, dtype=dt)
            if name in self.g:
                a[:self.cap] = self.g[name]
            self.g[name] = a
        self.cap = cap

    def feed(self, b) -> bool:
        """Walk block b; True when an event past the window's end stopped the read."""
        n = len(b)
        if n == 0:
            return False
        t = b.t
        s = self.s
        if s.start_ns is None:
            s.start_ns = t0 = int(t[0])
            if self.window is not None:
                w0, w1 = self.window
                self.lo = t0 + w0
                self.hi = FAR_NS if w1 is None else t0 + w1
                s.window = (self.lo, None if w1 is None else self.hi)
            else:
                self.lo, self.hi = -FAR_NS, FAR_NS
        lo, hi = self.lo, self.hi
        k = n
        if hi < FAR_NS:
            past = np.flatnonzero(t > hi)
            if len(past):
                k = int(past[0])
                t = t[:k]
        self.n += k if lo == -FAR_NS else int(np.count_nonzero(t >= lo))
        if k:
            self.end = int(t[-1])
            self.walk(b, k, t)
        if k < n:
            self.end = hi
            return True
        return False

    def walk(self, b, k: int, t) -> None:
        kind, res = b.kind[:k], b.res[:k]
        st = kind == ST_TRANSITION
        gi = np.flatnonzero(st & (res == RES_G))
        pi = np.flatnonzero(st & (res == RES_P))
        g_dense, g_new = self.gids.index(b.rid[gi])
        p_dense, p_new = self.pids.index(b.rid[pi])
        g_new_rows, p_new_rows = gi[g_new], pi[p_new]
        g0, p0 = len(self.gobjs), len(self.pobjs)
        self.grow_g(len(self.gids.ids))
        self.g["since"][g0:len(self.gids.ids)] = t[g_new_rows]
        if len(p_new):
            self.p_state = np.r_[self.p_state, np.full(len(p_new), UNDET, dtype=np.int8)]
            self.p_since = np.r_[self.p_since, t[p_new_rows]]
        # when each P comes to be (-1: before this block), for P ids of the rows
        p_born = np.r_[np.full(p0, -1, dtype=np.int64), p_new_rows, NEVER]
        gr = Groups(g_dense, gi, b, t, self.g["state"], self.g["since"], self.lo)
        pr = Groups(p_dense, pi, b, t, self.p_state, self.p_since, self.lo)
        flipped = self.rare_rows(b, k, t, gr, g_new_rows, p_new_rows, g0, p0)
        self.goroutine_sums(b, gr, p_born)
        idle_before = [i for i in range(p0) if self.p_state[i] == IDLE]
        self.proc_sums(b, gr, pr, p_born)
        self.gaps(b, k, t, gr, pr, idle_before)
        self.g["gcw_at"][flipped] = -1
        # each goroutine's last transition (or its last status, summarize()'s rule)
        idx, sg = gr.last(gr.fr != UNDET if len(gr.statuses) else None)
        gobjs = self.gobjs
        for i, d in zip(gr.rows[idx].tolist(), gr.sid[sg].tolist()):
            gobjs[d].last_ev = b.record(i)

    def rare_rows(self, b, k, t, gr, g_new_rows, p_new_rows, g0, p0) -> list:
        """The rows read as records, in order: the goroutines and Ps first seen, creations,
        statuses, ranges, labels, the timeline's transitions. The goroutines they made GC
        workers (dense), with the row of that (g.gcw_at)."""
        s = self.s
        items = [(r, 0, "G", g0 + j) for j, r in enumerate(g_new_rows.tolist())]
        items += [(r, 0, "P", p0 + j) for j, r in enumerate(p_new_rows.tolist())]
        kind = b.kind[:k]
        other = np.flatnonzero((kind >= FIRST_RARE_KIND) & (kind <= LABEL))
        items += [(r, 1, "X", 0) for r in other.tolist()]
        rare = gr.fr <= NOTEXIST           # statuses, creations
        sel = np.flatnonzero(rare)
        items += [(r, 1, "T", d) for r, d in zip(gr.rows[sel].tolist(), gr.ds[sel].tolist())]
        if self.timeline_for is not None:
            if self.timeline_dense < 0:
                self.timeline_dense = self.gids.one(self.timeline_for)
            if self.timeline_dense >= 0:        # the timeline's other transitions
                sel = (gr.ds == self.timeline_dense) & (gr.ts >= self.lo) & ~rare
                items += [(r, 1, "V", self.timeline_dense)
                          for r in gr.rows[np.flatnonzero(sel)].tolist()]
        if not items:
            return []
        items.sort()
        gs, gobjs, ids = s.goroutines, self.gobjs, self.gids.ids
        flipped = []
        gcw_at = self.g["gcw_at"]
        ev = None
        at = -1
        for row, _, what, d in items:
            if what == "G":
                gid = ids[d]
                g = gs[gid] = GoroutineSummary(gid, first_ns=int(t[row]), since=int(t[row]))
                if gid == self.timeline_for:
                    g.timeline = []
                    self.timeline_dense = d
                gobjs.append(g)
                continue
            if what == "P":
                pid = self.pids.ids[d]
                pp = s.ps[pid] = PSummary(pid, first_ns=int(t[row]), since=int(t[row]))
                self.pobjs.append(pp)
                continue
            if what == "V" and len(gobjs[d].timeline) >= MAX_TIMELINE:
                continue
            if at != row:
                ev, at = b.record(row), row
            if what == "X":
                if ev[0] == "Label":
                    gid = label_event(gs, ev[4], ev[6], ev[7], ev[12])
                    if gid is not None:
                        flipped.append(self.gids.one(gid))
                        gcw_at[flipped[-1]] = row
                else:
                    range_event(s, self.open_ranges, ev[0], ev[1], ev[3], ev[6], ev[7],
                                ev[12], self.lo)
                continue
            g = gobjs[d]
            frm = ev[8]
            if frm == "NotExist" and ev[9] == "Runnable":
                worker = note_creation(g, ev[1], ev[4], ev[5], ev[11])
            elif frm == "Undetermined":
                worker = note_status(g, ev)
            else:
                worker = False
            if worker:
                flipped.append(d)
                gcw_at[d] = row
            tl = g.timeline
            if tl is not None and ev[1] >= self.lo and len(tl) < MAX_TIMELINE:
                tl.append(Transition(ev[1], frm, ev[9], ev[10] or "", ev[11], ev[2], ev[3],
                                     ev[4]))
        return flipped

    def goroutine_sums(self, b, gr, p_born) -> None:
        """The goroutines' spans closed in the block, their Ps and last P/M, their state."""
        if not len(gr):
            return
        G = self.g
        rows, old, to, ts, d, sid, seg = gr.rows, gr.old, gr.to, gr.ts, gr.d, gr.sid, gr.seg
        lo, nseg = self.lo, len(gr.sid)
        ep = b.p[rows]
        by_state = np.zeros(nseg * len(STATES), dtype=np.int64)
        np.add.at(by_state, seg * len(STATES) + old, d)
        by_state = by_state.reshape(nseg, len(STATES))
        G["running"][sid] += by_state[:, RUNNING]
        G["runnable"][sid] += by_state[:, RUNNABLE]
        G["syscall"][sid] += by_state[:, SYSCALL]
        real = np.diff(np.r_[gr.starts, len(gr)])       # rows less statuses (and before lo)
        real -= np.bincount(seg[np.flatnonzero(gr.fr == UNDET)], minlength=nseg)
        if lo > -FAR_NS:
            real -= np.bincount(seg[np.flatnonzero((ts < lo) & (gr.fr != UNDET))],
                                minlength=nseg)
        G["transitions"][sid] += real
        gobjs = self.gobjs
        # blocked time by the reason of the transition into Waiting
        rmap = np.array([self.reason_code(r) for r in b.reasons] + [-1], dtype=np.int64)
        blocked = np.flatnonzero((old == WAITING) & (d > 0))
        if len(blocked):
            r = self.before_at(gr, blocked, rmap[b.reason[rows[np.maximum(blocked - 1, 0)]]],
                               G["reason"])
            key = np.where(r <= 0, self.unknown, r)         # None or "": "unknown"
            names = self.reason_names
            for sg, kc, ns in in_order(nseg, len(names), [(seg[blocked], key, d[blocked],
                                                            blocked)],
                                       lambda sg, kc: names[kc] in gobjs[sid[sg]].blocked_ns):
                bn = gobjs[sid[sg]].blocked_ns
                bn[names[kc]] = bn.get(names[kc], 0) + ns
        # each goroutine's Ps in the order first run: a span closed on a P, a start on it
        from_running, to_running = old == RUNNING, to == RUNNING
        was_running = np.flatnonzero(from_running)
        on_p = self.before_at(gr, was_running, ep[np.maximum(was_running - 1, 0)], G["on_p"])
        keep = (d[was_running] > 0) & (on_p >= 0)
        closed, on_p = was_running[keep], on_p[keep]
        started = to_running
        if lo > -FAR_NS:
            started = started & (ts >= lo)
        started = np.flatnonzero(started)
        ran = started[ep[started] >= 0]
        if len(closed) or len(ran):
            top = int(max(on_p.max(initial=0), ep[ran].max(initial=0))) + 1
            for sg, p, ns in in_order(nseg, top, [(seg[closed], on_p, d[closed], 2 * closed),
                                                  (seg[ran], ep[ran], None, 2 * ran + 1)],
                                       lambda sg, p: p in gobjs[sid[sg]].ps):
                gps = gobjs[sid[sg]].ps
                gps[p] = gps.get(p, 0) + ns
        # per P: goroutines started on it, GC workers' running on it (where it exists)
        pobjs = self.pobjs
        on = ep[ran]
        counts = np.bincount(on) if len(on) and on.max() < TABLE_MAX else np.zeros(0, int)
        for pid in np.flatnonzero(counts).tolist():
            pd = self.pids.one(pid)
            if pd < 0:
                continue
            c = int(counts[pid])
            if p_born[pd] >= 0:     # a P first seen in the block: the starts after that only
                c = int(np.count_nonzero((on == pid) & (rows[ran] > p_born[pd])))
            pobjs[pd].goroutines_run += c
        gcw_at = G["gcw_at"]
        ends = np.r_[gr.starts[1:], len(gr)]
        for sg in np.flatnonzero(gcw_at[sid] < NEVER).tolist():
            x, y = np.searchsorted(closed, (gr.starts[sg], ends[sg]))
            at, on = closed[x:y], on_p[x:y]
            there = (gcw_at[sid[sg]] < rows[at]) & (p_born[self.pids.lookup(on)] < rows[at])
            for pd, ns in self.per_p(on[there], d[at[there]]):
                pobjs[pd].gc_worker_ns += ns
        # last ran, last P and M, the state at the block's end
        idx, sg = gr.last(from_running)
        G["last_ran"][sid[sg]] = ts[idx]
        idx, sg = gr.last(to_running | (from_running & (ep >= 0)))
        G["last_p"][sid[sg]], G["last_m"][sid[sg]] = ep[idx], b.m[rows[idx]]
        idx, sg = gr.last(to_running)
        G["on_p"][sid[sg]] = ep[idx]
        idx, sg = gr.last(to == WAITING)
        G["reason"][sid[sg]] = rmap[b.reason[rows[idx]]]
        idx, sg = gr.last()
        G["state"][sid[sg]], G["since"][sid[sg]] = to[idx], ts[idx]

    @staticmethod
    def before_at(gr, idx, x_before, carried):
        """x of the rows before the kept rows idx (x_before: x at idx - 1), the carried
        value where idx opens its segment."""
        first = gr.first[idx]
        if first.any():
            x_before[first] = carried[gr.ds[idx[first]]]
        return x_before

    def per_p(self, p_ids, w) -> list:
        """[(P dense index, count or sum of w)] over the P ids given."""
        if not len(p_ids):
            return []
        dense = self.pids.lookup(p_ids)
        sums = np.zeros(len(self.pobjs) + 1, dtype=np.int64)      # the last: not a P
        np.add.at(sums, dense, 1 if w is None else w)
        sums[-1] = 0
        nz = np.flatnonzero(sums)
        return list(zip(nz.tolist(), sums[nz].tolist()))

    def proc_sums(self, b, gr, pr, p_born) -> None:
        """The Ps' running and idle spans closed in the block, and their state."""
        if not len(pr):
            return
        old, d = pr.old, pr.d
        zero = np.zeros_like(d)
        idle = np.where(old == IDLE, d, zero)
        running = pr.segsum(np.where(old == RUNNING, d, zero)).tolist()
        idle_ns = pr.segsum(idle).tolist()
        spans = pr.segsum((idle > 0).astype(np.int64)).tolist()
        longest = np.maximum.reduceat(idle, pr.starts).tolist()
        for j, pd in enumerate(pr.sid.tolist()):
            pp = self.pobjs[pd]
            pp.running_ns += running[j]
            pp.idle_ns += idle_ns[j]
            pp.idle_spans += spans[j]
            if longest[j] > pp.longest_idle_ns:
                pp.longest_idle_ns = longest[j]
        idx, sg = pr.last()
        self.p_state[pr.sid[sg]], self.p_since[pr.sid[sg]] = pr.to[idx], pr.ts[idx]

    def gaps(self, b, k, t, gr, pr, idle_before) -> None:
        """Where each P was idle while some goroutine was runnable. Positions: row r is at
        r, or where a row both leaves and enters Runnable (x = 2), its leaving at 2r, its
        entering at 2r + 1 and a P's row at 2r."""
        runnable0 = self.runnable
        leaves, enters = gr.old == RUNNABLE, gr.to == RUNNABLE
        x = 2 if (leaves & enters).any() else 1
        change = enters.view(np.int8) - leaves.view(np.int8)
        self.runnable = runnable0 + int(change.sum(dtype=np.int64))
        end = x * k + 1
        # the Ps' idle spans [a, b]: from a row to Idle (or the block's start: -1) to the
        # P's next row (or the block's end)
        nxt = np.empty(len(pr), dtype=np.int64)
        if len(pr):
            nxt[:-1] = x * pr.rows[1:]
            nxt[np.r_[pr.starts[1:] - 1, len(pr) - 1]] = end
        to_idle = np.flatnonzero(pr.to == IDLE)
        first_row = dict(zip(pr.sid.tolist(), (x * pr.rows[pr.starts]).tolist()))
        a = np.r_[np.full(len(idle_before), -1, dtype=np.int64), x * pr.rows[to_idle]]
        bb = np.r_[np.array([first_row.get(p, end) for p in idle_before], dtype=np.int64),
                   nxt[to_idle]]
        who = np.r_[np.array(idle_before, dtype=np.int64), pr.ds[to_idle]]
        carried = {p: self.pobjs[p].gap_since for p in idle_before}
        for p in idle_before + pr.sid.tolist():
            self.pobjs[p].gap_since = None      # until a gap open at the block's end
        if not len(a):
            return
        # the spans with some goroutine runnable: [opens[e], closes[e]]
        step = np.zeros(x * k, dtype=np.int8)
        if x == 1:
            step[gr.rows] = change
        else:
            step[2 * gr.rows[leaves]] = -1
            step[2 * gr.rows[enters] + 1] = 1
        some = np.cumsum(step, dtype=np.int32) > -runnable0     # some goroutine runnable
        edges = np.flatnonzero(some[1:] != some[:-1]) + 1
        if some[0] != (runnable0 > 0):
            edges = np.r_[0, edges]
        up = some[edges]
        opens, closes = edges[up], edges[~up]
        if runnable0 > 0:
            opens = np.r_[-1, opens]
        if self.runnable > 0:
            closes = np.r_[closes, end]
        e0 = np.searchsorted(closes, a, side="right")
        e1 = np.searchsorted(opens, bb, side="left")
        cnt = np.maximum(e1 - e0, 0)
        total = int(cnt.sum())
        if not total:
            return
        iv = np.repeat(np.arange(len(a)), cnt)
        e = np.repeat(e0, cnt) + np.arange(total) - np.repeat(np.cumsum(cnt) - cnt, cnt)
        lo_pos = np.maximum(opens[e], a[iv])
        hi_pos = np.minimum(closes[e], bb[iv])
        start = t[np.maximum(lo_pos, 0) // x]
        stop = t[np.minimum(hi_pos, x * k - 1) // x]
        gp = who[iv]
        for j in np.flatnonzero(lo_pos < 0).tolist():
            start[j] = carried[int(gp[j])]
        still = hi_pos == end
        for j in np.flatnonzero(still).tolist():
            self.pobjs[int(gp[j])].gap_since = int(start[j])
        done = ~still
        d = stop - np.maximum(start, self.lo)
        done &= d > 0
        gp, d, start = gp[done], d[done], start[done]
        if not len(gp):
            return
        order = np.lexsort((start, d, gp))
        gp, d, start = gp[order], d[order], start[order]
        cuts = np.flatnonzero(starts_of(gp)).tolist() + [len(gp)]
        top = self.top_gaps
        for x, y in zip(cuts[:-1], cuts[1:]):
            pp = self.pobjs[int(gp[x])]
            pp.waiting_idle_ns += int(d[x:y].sum())
            heap = pp.gaps
            for item in zip(d[max(x, y - top):y].tolist(), start[max(x, y - top):y].tolist()):
                if len(heap) < top:
                    heapq.heappush(heap, item)
                elif item > heap[0]:
                    heapq.heapreplace(heap, item)

    def result(self) -> TraceSummary:
        s = self.s
        s.events = self.n
        if s.start_ns is None:
            return s
        G = self.g
        names = self.reason_names
        cols = {f: G[f][:len(self.gobjs)].tolist() for f, _, _ in self.G_FIELDS}
        for i, g in enumerate(self.gobjs):
            g.state = STATES[cols["state"][i]]
            g.since, g.on_p = cols["since"][i], cols["on_p"][i]
            r = cols["reason"][i]
            g.reason = None if r < 0 else names[r]
            g.running_ns, g.runnable_ns = cols["running"][i], cols["runnable"][i]
            g.syscall_ns, g.transitions = cols["syscall"][i], cols["transitions"][i]
            lr = cols["last_ran"][i]
            g.last_ran_ns = None if lr == NO_TIME else lr
            g.last_p, g.last_m = cols["last_p"][i], cols["last_m"][i]
        for i, pp in enumerate(self.pobjs):
            pp.state = STATES[int(self.p_state[i])]
            pp.since = int(self.p_since[i])
        finish(s, self.open_ranges, self.end, self.lo, self.window, self.top_gaps)
        return s
