"""What a walk reads of its goroutines in bulk after their g fields, once per walk and
only when a view asks: their pprof labels (fill_labels) and what the waiting ones are
blocked on, from their sudogs (fill_blocked). Both keep, per row of the walk's Base, an
index into the distinct things found, so that thousands of leaked goroutines with one
label set or one channel share it."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..errors import DecodeError
from .gmodel import BlockedOn
from ..target.bulk import core_words, read_words
from .gtable import Base, factorize
from .layout import GSCAN


def fill_labels(walker, base: Base) -> None:
    """Each goroutine's pprof labels, read in bulk once per walk: per row an index into
    base.label_sets (distinct sets, each once), errors by row."""
    if base.label_idx is not None:
        return
    rt = walker.rt
    ptrs = base.cols["labels"]
    rows = np.flatnonzero(ptrs != 0)
    idx = np.full(base.n, -1, dtype=np.int64)
    sets: list = []
    errs: dict = {}
    lay = rt.layout.labels
    if len(rows):
        p = ptrs[rows].astype(np.uint64)
        if lay.form == "slice" and lay.esize % 8 == 0:
            codes, decoded = _slice_label_codes(rt, walker.mem, p, lay)
        else:
            decoded = rt.labels_many(p.tolist())
            codes = np.arange(len(decoded), dtype=np.int64)
        interned: dict = {}
        where = []   # per decoded entry: its set, -1 (no labels) or -2 (an error)
        for d in decoded:
            if d.__class__ is dict:
                if not d:
                    where.append(-1)
                    continue
                k = tuple(d.items())
                i = interned.get(k)
                if i is None:
                    i = interned[k] = len(sets)
                    sets.append(d)
                where.append(i)
            else:
                where.append(-2)
        w = np.array(where + [-1], dtype=np.int64)[codes]
        idx[rows] = np.where(w >= 0, w, -1)
        for j in np.flatnonzero(w == -2).tolist():
            errs[int(rows[j])] = f"labels: {decoded[int(codes[j])]}"
    base.label_sets, base.label_errs = sets, errs
    base.label_idx = idx


def _slice_label_codes(rt, mem, ptrs: np.ndarray, lay) -> tuple:
    """Slice-form labels (Go 1.21+) of many g.labels pointers: (per pointer an index
    into decoded, decoded: a dict or a DecodeError each). The slice headers are read
    together, the label arrays of each length together, and each distinct array is
    decoded once (leaked goroutines share label strings); a pointer whose header or
    array cannot be read, or holds an implausible count, goes through labels_many."""
    cw = core_words(mem)
    head, ok = read_words(mem, ptrs + np.uint64(lay.offset), 16, cw)
    n = len(ptrs)
    codes = np.full(n, -1, dtype=np.int64)
    decoded: list = [{}]
    codes[:] = 0
    arr, cnt = head[:, 0], head[:, 1]
    odd = ~ok | (cnt > np.uint64(4096))
    live = ~odd & (cnt != 0)
    for k in np.unique(cnt[live]).tolist():
        rows = np.flatnonzero(live & (cnt == np.uint64(k)))
        size = k * lay.esize
        words, got = read_words(mem, arr[rows], size, cw)
        odd[rows[~got]] = True
        good = rows[got]
        if not len(good):
            continue
        w = np.ascontiguousarray(words[got])
        uniq, inv = np.unique(w.view(np.dtype((np.void, w.shape[1] * 8))).reshape(-1),
                              return_inverse=True)
        start = len(decoded)
        for u in uniq:
            try:
                decoded.append(dict(rt.label_entries(bytes(u), 0, k)))
            except DecodeError as e:
                decoded.append(e)
        codes[good] = inv.reshape(-1) + start
    bad = np.flatnonzero(odd)
    if len(bad):
        start = len(decoded)
        decoded += rt.labels_many(ptrs[bad].tolist())
        codes[bad] = np.arange(start, start + len(bad))
    return codes, decoded


class BlockedTable(Sequence):
    """The distinct things goroutines are blocked on, as BlockedOn made on demand:
    segments of (kind, matrix), a row of the matrix per distinct one (its addresses,
    zero-padded on the right)."""

    def __init__(self, segments: list):
        self.segments = segments
        self.bounds = np.cumsum([0] + [len(m) for _, m in segments])
        self._made: dict = {}

    def __len__(self) -> int:
        return int(self.bounds[-1])

    def __iter__(self):
        made = self._made
        i = 0
        for kind, m in self.segments:
            for row in m.tolist():
                on = made.get(i)
                if on is None:
                    on = made[i] = BlockedOn(kind, tuple(a for a in row if a))
                yield on
                i += 1

    def __getitem__(self, i: int):
        on = self._made.get(i)
        if on is None:
            if not 0 <= i < len(self):
                raise IndexError(i)
            s = int(np.searchsorted(self.bounds, i, side="right")) - 1
            kind, m = self.segments[s]
            on = self._made[i] = BlockedOn(kind, tuple(a for a in m[i - int(self.bounds[s])].tolist()
                                                       if a))
        return on


def _distinct_rows(m: np.ndarray) -> tuple:
    """(distinct rows of a uint64 matrix, per row its index there): numbered by first
    row (factorize), where sorting the rows as bytes took half a second at 1M."""
    m = np.ascontiguousarray(m)
    if not len(m):
        return m, np.zeros(0, np.int64)
    codes, firsts = factorize([m[:, j] for j in range(m.shape[1])])
    return m[firsts], codes


def fill_blocked(walker, base: Base) -> None:
    """What each waiting goroutine is blocked on, from its sudogs, over the columns: the
    channel of a chan send or receive (sudog.c), the semaphore of a sync primitive
    (sudog.elem), a select's channels along its waitlink chain (in case order, each once,
    at most 64 links; none when the chain cannot be read whole). Per row an index into
    base.blocked (a BlockedTable), -1 for nothing."""
    if base.blocked_idx is not None:
        return
    idx = np.full(base.n, -1, dtype=np.int64)
    segments: list = []
    sudog = walker.layout.sudog
    cols = base.cols
    code = cols["status"].astype(np.int64) & ~GSCAN
    waiting = np.flatnonzero((code == walker.st.waiting) & (cols["waiting"] != 0))
    if sudog is None or not len(waiting):
        base.blocked, base.blocked_idx = BlockedTable(segments), idx
        return
    o_c, o_elem, o_link, size = sudog
    mem = walker.mem
    cw = core_words(mem)
    reasons = walker.wait_reasons
    wr = cols["waitreason"][waiting].astype(np.int64)
    kinds = np.zeros(len(wr), dtype=np.int8)   # 0: none, 1: sema, 2: chan, 3: select
    for w in np.unique(wr).tolist():
        reason = reasons[w] if 0 <= w < len(reasons) else f"waitReason({w})"
        kinds[wr == w] = (3 if "select" in reason else 2 if "chan" in reason
                          else 1 if o_elem is not None and ("sync" in reason or "sema" in reason)
                          else 0)
    sudogs = cols["waiting"][waiting].astype(np.uint64)
    count = 0

    def add(kind: str, rows: np.ndarray, m: np.ndarray) -> None:
        nonlocal count
        have = np.any(m != 0, axis=1)
        rows, m = rows[have], m[have]
        distinct, inv = _distinct_rows(m)
        segments.append((kind, distinct))
        idx[rows] = inv + count
        count += len(distinct)

    for kind, k, off in (("sema", 1, o_elem), ("chan", 2, o_c)):
        sel = kinds == k
        if not sel.any() or off is None:
            continue
        words, ok = read_words(mem, sudogs[sel] + np.uint64(off), 8, cw)
        words[~ok] = 0
        add(kind, waiting[sel], words)
    sel = kinds == 3
    if sel.any():
        rows = waiting[sel]
        m = len(rows)
        cur = sudogs[sel].copy()
        active = np.ones(m, dtype=bool)
        seen: list = []      # the sudog of each round, per row
        found: list = []     # the channel of each round (0: none)
        done = np.zeros(m, dtype=bool)
        nwords = (size + 7) // 8
        for _ in range(64):
            act = np.flatnonzero(active)
            if not len(act):
                break
            words, ok = read_words(mem, cur[act], nwords * 8, cw,
                                   keep=[o_c // 8, (o_link if o_link is not None else o_c) // 8])
            c = np.zeros(m, dtype=np.uint64)
            nxt = np.zeros(m, dtype=np.uint64)
            c[act] = np.where(ok, words[:, 0], 0)
            if o_link is not None:
                nxt[act] = np.where(ok, words[:, 1], 0)
            active[act[~ok]] = False
            found.append(c)
            go_on = active & (nxt != 0) & (nxt != cur)
            for s in seen:
                go_on &= nxt != s
            seen.append(cur.copy())
            done |= active & ~go_on
            active = go_on
            cur = np.where(go_on, nxt, cur)
        fm = np.stack(found, axis=1) if found else np.zeros((m, 1), np.uint64)
        fm[~done] = 0
        # each channel once, in case order, packed to the left
        for j in range(1, fm.shape[1]):
            for i in range(j):
                fm[:, j] = np.where(fm[:, j] == fm[:, i], 0, fm[:, j])
        order = np.argsort(fm == 0, axis=1, kind="stable")
        add("select", rows, np.take_along_axis(fm, order, axis=1))
    base.blocked, base.blocked_idx = BlockedTable(segments), idx
