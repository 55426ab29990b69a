"""A generation read in bulk: decoded (bulkdecode), ordered and checked (bulkorder), its
table IDs checked (validateTableIDs) and its times made strictly increasing over columns,
given out as one columns.Block whose records are built on demand. None whenever the
generation must be read step by step (the reader then does, from the same state)."""
from __future__ import annotations

from collections import deque
from concurrent.futures import wait
from functools import partial
from typing import Optional

import numpy as np

from . import wire as W
from .base import NO_ID, worker
from .batchcursor import BatchCursor
from .bulkmerge import merge
from .bulkorder import NONE, SUPPORTED, merged, order_generation, with_samples
from .columns import KIND_CODE, RES_CODE, STATE_CODE, Block

_NARGS = np.asarray(W.NARGS, dtype=np.int64)
_STATUS_G = W.EV_GO_STATUS, W.EV_GO_STATUS_STACK
CHUNK = 1 << 16     # records made at a time
SLICE = 1 << 19     # events of a generation ordered and checked at a time


class _SliceRows:
    """bulkdecode's columns for a slice of a generation's order (each M's rows in it,
    together and in order, as the decoder's are)."""
    __slots__ = ("ms", "start", "typ", "t", "args", "rows", "dec")

    @classmethod
    def of(cls, dec, perm, mk, done):
        """(the slice's columns, its order in them) for the rows perm (their Ms' indexes
        mk); done: each M's first row not in an earlier slice (moved past these)."""
        c = np.bincount(mk, minlength=len(done))
        keep = np.flatnonzero(c)
        ck = c[keep]
        self = cls()
        self.dec = dec
        self.ms = [dec.ms[k] for k in keep.tolist()]
        self.start = np.zeros(len(keep) + 1, dtype=np.int64)
        np.cumsum(ck, out=self.start[1:])
        shift = np.zeros(len(done), dtype=np.int64)
        shift[keep] = done[keep] - self.start[:-1]
        rows = np.repeat(shift[keep], ck) + np.arange(len(perm), dtype=np.int64)
        self.rows = rows
        spans = [slice(lo, lo + k) for lo, k in zip(done[keep].tolist(), ck.tolist())]
        self.typ = np.concatenate([dec.typ[sp] for sp in spans])
        self.t = np.concatenate([dec.t[sp] for sp in spans])
        cols = dec.args.T       # the columns ordering reads, contiguous
        self.args = np.concatenate([cols[:3, sp] for sp in spans], axis=1).T
        done += c
        return self, perm - shift[mk]

    @property
    def arg_rows(self) -> tuple:
        """(every event's argument row of the generation, these rows' places in it)."""
        return self.dec.args, self.rows

    def offset_of(self, row: int) -> int:
        return self.dec.offset_of(int(self.rows[row]))


def _tables(kind_of: dict, tspec: list):
    """Per wire type: kind code, resource code, id source, from and to state codes,
    whether it has a reason."""
    kind = np.full(256, KIND_CODE["Bad"], dtype=np.int8)
    res = np.zeros(256, dtype=np.int8)
    idsrc = np.full(256, -1, dtype=np.int8)
    frm = np.zeros(256, dtype=np.int8)
    to = np.zeros(256, dtype=np.int8)
    has_reason = np.zeros(256, dtype=bool)
    for t in range(256):
        k = kind_of.get(t)
        if k is not None:
            kind[t] = KIND_CODE[k]
        spec = tspec[t]
        if spec is not None:
            r, src, f, tt, hr, _ = spec
            res[t], idsrc[t] = RES_CODE[r], src
            frm[t] = STATE_CODE[f] if f is not None else 0
            to[t] = STATE_CODE[tt] if tt is not None else 0
            has_reason[t] = hr
    return kind, res, idsrc, frm, to, has_reason


def _ids_ok(typ, args, gen, checks) -> bool:
    """validateTableIDs over columns: every stack and string argument 0 or known."""
    stacks = strings = None
    for ty in np.flatnonzero(np.bincount(typ, minlength=256)).tolist():
        chk = checks[ty]
        if chk is None:
            continue
        rows = np.flatnonzero(typ == ty)
        for i, is_stack in chk:
            v = args[rows, i]
            v = v[v != 0]
            if not len(v):
                continue
            if is_stack:
                if stacks is None:
                    stacks = np.fromiter(gen.stacks.keys(), dtype=np.uint64,
                                         count=len(gen.stacks))
                keys = stacks
            else:
                if strings is None:
                    strings = np.fromiter(gen.strings.keys(), dtype=np.uint64,
                                          count=len(gen.strings))
                keys = strings
            if not np.isin(v, keys).all():
                return False
    return True


class Slices:
    """A generation read in bulk, a slice of its order at a time: iterating gives each
    slice's Block, ordered, checked and applied to the Ordering from the state the last
    left, made only when the one before is gone. Where a slice must go step by step,
    iteration stops and resume() gives the reader its frontier and CPU samples from
    there; where every slice went, resume is None."""

    def __init__(self, reader, dec, perm, order, gen, ver, last_ts, size):
        self.reader, self.dec, self.perm, self.order, self.gen = reader, dec, perm, order, gen
        self.ver, self.last_ts, self.size = ver, last_ts, size
        n = len(perm)
        cpu = gen.cpu
        self.ins = None
        if n <= size:
            self.mk = self.done = None
            self.first = reader._ordered(dec, perm, order, gen, ver, cpu)
            return
        if cpu:         # the event each sample goes before
            ts = np.fromiter((c[0] for c in cpu), dtype=np.int64, count=len(cpu))
            self.ins = np.searchsorted(dec.t[perm], ts, side="right")
        counts = np.diff(dec.start)
        self.mk = np.repeat(np.arange(len(counts), dtype=np.int32), counts)[perm]
        self.done = dec.start[:-1].copy()   # each M's first row not yet in a slice
        self.first = self._slice(0)
        self.resume = None

    def _slice(self, a: int):
        """The ordered columns of the slice from position a, or None."""
        n = len(self.perm)
        b = min(n, a + self.size)
        done = self.done.copy()
        sub, local = _SliceRows.of(self.dec, self.perm[a:b], self.mk[a:b], done)
        cpu, ins = self.gen.cpu, self.ins
        part = [cpu[i] for i in np.flatnonzero(
            (ins >= a) & ((ins < b) | (b == n))).tolist()] if cpu else ()
        od = self.reader._ordered(sub, local, self.order, self.gen, self.ver, part)
        if od is not None:
            self.done = done
        return od

    def __iter__(self):
        od, self.first = self.first, None
        a, n = 0, len(self.perm)
        self.resume = None
        ahead = None
        try:
            while True:
                # the next slice ordered on the other core while this one's block is made
                # and used (numpy lets go of the GIL over its arrays)
                nxt = a + self.size
                ahead = worker().submit(self._slice, nxt) if nxt < n else None
                self.offset = od.last_offset
                blk = self.reader._block(od, self.gen, self.last_ts)
                od = None
                self.last_ts = int(blk.t[-1])
                yield blk
                blk = None
                if ahead is None:
                    return
                od, ahead, a = ahead.result(), None, nxt
                if od is None:
                    self.resume = partial(self._resume, a)
                    return
        finally:
            if ahead is not None:   # let go early: the slice ordered finishes first
                wait([ahead])

    def _resume(self, a: int, freq: float, maxev: int):
        """(frontier, CPU samples) of the step path after the first a events: each M's
        cursor on its next event, in the heap as the reader's hot loop leaves it."""
        dec, gen, done = self.dec, self.gen, self.done
        heap = merge(dec.t, dec.start, upto=a)
        # per M, where its batches that have events are in its list (the decoder's
        # batches are those, M by M)
        nonempty = [[i for i, b in enumerate(gen.batches[mid]) if len(b.data)]
                    for mid in dec.ms]
        first = np.cumsum([0] + [len(x) for x in nonempty])
        frontier = []
        for k in heap:
            mid = dec.ms[k]
            r = int(done[k])
            bi = int(np.searchsorted(dec.batch_start, r, side="right")) - 1
            idx = nonempty[k][bi - first[k]]    # the batch holding row r
            b = gen.batches[mid][idx]
            c = BatchCursor(mid, gen.batches[mid])
            c.idx, c.loaded, c.btime, c.offset = idx, True, b.time, b.offset
            c.vals, c.complete = W.uvarints_all(b.data)
            i, vals = 0, c.vals
            for _ in range(r - int(dec.batch_start[bi])):
                i += 1 + W.NARGS[vals[i]]
            n = W.NARGS[vals[i]]
            c.typ, c.time = vals[i], int(dec.t[r])
            c.last_ts = c.time
            c.args = vals[i + 2:i + 1 + n]
            c.vpos = i + 1 + n
            frontier.append(c)
        cpu = gen.cpu
        rest = deque(cpu[i] for i in np.flatnonzero(self.ins >= a).tolist()) if cpu \
            else deque()
        return frontier, rest


class BulkReader:
    """Per trace: the tables and the record builder of the reader (Trace.record_of)."""

    def __init__(self, record_of, kind_of: dict, tspec: list, checks: list, decode,
                 frames: dict):
        self.record_of = record_of
        self.frames = frames
        self.kind, self.res, self.idsrc, self.frm, self.to, self.has_reason = \
            _tables(kind_of, tspec)
        self.checks = checks
        self.decode = decode

    def generation(self, gen, order, maxev: int, ver: int, last_ts: int,
                   slice_events: int = SLICE) -> Optional["Slices"]:
        """The generation in bulk, slice_events events of its order at a time, or None
        where its first slice must go step by step (the Ordering untouched)."""
        dec = self.decode(gen, maxev)
        if dec is None:
            return None
        if not SUPPORTED[np.flatnonzero(np.bincount(dec.typ, minlength=256))].all():
            return None
        perm = merged(dec)
        if perm is None:
            return None
        sl = Slices(self, dec, perm, order, gen, ver, last_ts, slice_events)
        return sl if sl.first is not None else None

    def _ordered(self, dec, perm, order, gen, ver, cpu):
        """dec's rows in the order perm, ordered, checked and applied to the Ordering,
        with the CPU samples among them; None (the Ordering untouched) where they must
        go step by step."""
        od = order_generation(dec, order, gen, ver, perm)
        if od is None or not _ids_ok(od.typ, od.args, gen, self.checks):
            return None
        od.apply()
        od.initial = order.initial_gen == gen.gen     # (apply() set it)
        if cpu:
            with_samples(od, cpu)
        return od

    def _block(self, od, gen, last_ts: int) -> Block:
        """The Block of ordered columns od, its times made strictly increasing after
        last_ts."""
        typ, args = od.typ, od.args
        n = len(typ)
        ar = np.arange(n, dtype=np.int64)
        u = np.maximum.accumulate(np.maximum(od.t - ar, last_ts + 1))
        t_out = u + ar
        od.t = u = ar = None    # the raw times are no longer needed
        ti = typ.astype(np.intp)
        idsrc = self.idsrc[ti]
        rid = np.where(idsrc == 2, od.g, od.a0)     # the G's own, or its first argument
        rows = np.flatnonzero(idsrc == 1)           # the P's
        rid[rows] = od.p[rows]
        rid[idsrc < 0] = 0                          # not a transition
        res = self.res[ti]
        frm = self.frm[ti]
        to = self.to[ti]
        initial = od.initial
        steal = np.flatnonzero(typ == W.EV_PROC_STEAL)
        frm[steal] = np.where(od.x[steal] == W.PROC_SYSCALL_ABANDONED, STATE_CODE["Idle"],
                              STATE_CODE["Running"])
        pst = typ == W.EV_PROC_STATUS
        gst = (typ == _STATUS_G[0]) | (typ == _STATUS_G[1])
        if pst.any() or gst.any():
            pcode = np.array([STATE_CODE[s] for s in W.PROC_STATE_OF] + [0] * 3, dtype=np.int8)
            gcode = np.array([STATE_CODE[s] for s in W.GO_STATE_OF] + [0] * 3, dtype=np.int8)
            pnew = STATE_CODE["Undetermined" if initial else "NotExist"]
            st1 = np.zeros(n, dtype=np.int64)
            st2 = np.zeros(n, dtype=np.int64)
            st1[pst] = args[np.flatnonzero(pst), 1]
            st2[gst] = args[np.flatnonzero(gst), 2]
            frm = np.where(pst, np.where(od.x == NONE, pnew, pcode[st1]), frm)
            to = np.where(pst, pcode[st1], to)
            frm = np.where(gst, np.where(od.x == NONE, STATE_CODE["Undetermined"],
                                         gcode[st2]), frm)
            to = np.where(gst, gcode[st2], to)
        kind = self.kind[ti]
        reason = np.where(kind == KIND_CODE["StateTransition"], 0, -1).astype(np.int32)
        reasons = [""]
        hr = np.flatnonzero(self.has_reason[ti])
        hr = hr[od.a0[hr] != 0]
        if len(hr):
            sids = args[hr, 0]
            top = int(sids.max())
            if top < 1 << 22:       # string IDs are small: a table, not a sort
                ids = np.flatnonzero(np.bincount(sids.astype(np.int64), minlength=top + 1))
                code = np.zeros(top + 1, dtype=np.int32)
                code[ids] = np.arange(1, len(ids) + 1, dtype=np.int32)
                reason[hr] = code[sids.astype(np.int64)]
            else:
                ids, inv = np.unique(sids, return_inverse=True)
                reason[hr] = inv.astype(np.int32) + 1
            strings = gen.strings
            reasons += [strings[i] for i in ids.tolist()]
        record = self._records(od, t_out, gen, initial)
        many = self._many(od, t_out, gen, record)
        return Block(t_out, kind, od.m, od.p, od.g, res, rid, frm, to, reason,
                     reasons, record=record, many=many)

    def _many(self, od, t_out, gen, record):
        """Every record in order, a chunk at a time: GoStart, GoUnblock and GoBlock (most
        of a trace) made per kind from the columns, the rest by record()."""
        frames = self.frames
        strings = gen.strings

        def stacks_of(sids):
            return {s: gen.stack(s, frames) for s in set(sids)}

        def many():
            typ, a0 = od.typ, od.a0
            n = len(typ)
            for lo in range(0, n, CHUNK):
                hi = min(n, lo + CHUNK)
                ty = typ[lo:hi]
                out = [None] * (hi - lo)
                def cols(kind, *arrays):
                    """The rows of this kind in the chunk, and their values in arrays
                    (each a column over the whole generation)."""
                    rows = np.flatnonzero(ty == kind)
                    at = lo + rows
                    return [rows.tolist()] + [c[at].tolist() for c in arrays]
                for i, t, m, p, gid in zip(*cols(W.EV_GO_START, t_out, od.m, od.p, a0)):
                    out[i] = ("StateTransition", t, m, p, NO_ID, (), "Goroutine", gid,
                              "Runnable", "Running", "", (), {})
                rows, t, m, p, g, gid = cols(W.EV_GO_UNBLOCK, t_out, od.m, od.p, od.g, a0)
                sids = od.args[lo + np.asarray(rows, dtype=np.int64), 2].tolist()
                st = stacks_of(sids)
                for i, t, m, p, g, gid, sid in zip(rows, t, m, p, g, gid, sids):
                    out[i] = ("StateTransition", t, m, p, g, st[sid], "Goroutine", gid,
                              "Waiting", "Runnable", "", (), {})
                rows, t, m, p, g, rs = cols(W.EV_GO_BLOCK, t_out, od.m, od.p, od.g, a0)
                sids = od.args[lo + np.asarray(rows, dtype=np.int64), 1].tolist()
                st = stacks_of(sids)
                for i, t, m, p, g, rs, sid in zip(rows, t, m, p, g, rs, sids):
                    stack = st[sid]
                    out[i] = ("StateTransition", t, m, p, g, stack, "Goroutine", g, "Running",
                              "Waiting", strings[rs] if rs else "", stack, {})
                for i in np.flatnonzero((ty != W.EV_GO_START) & (ty != W.EV_GO_UNBLOCK) &
                                        (ty != W.EV_GO_BLOCK)).tolist():
                    out[i] = record(lo + i)
                yield from out
        return many

    def _records(self, od, t_out, gen, initial):
        record_of = self.record_of
        typ, m, p, g, args, t, x = od.typ, od.m, od.p, od.g, od.args, t_out, od.x
        xs, new_args = od.xs, od.new_args
        pnew = "Undetermined" if initial else "NotExist"

        def record(i: int) -> tuple:
            ty = int(typ[i])
            a = new_args.get(i)
            if a is None:
                a = args[i][:max(W.NARGS[ty] - 1, 1)].tolist()
            if i in xs:
                xi = xs[i]
            elif ty == W.EV_PROC_STEAL:
                xi = int(x[i])
            elif ty == W.EV_PROC_STATUS:
                xi = pnew if x[i] == NONE else W.PROC_STATE_OF[a[1]]
            elif ty in _STATUS_G:
                xi = "Undetermined" if x[i] == NONE else W.GO_STATE_OF[a[2]]
            else:
                xi = None
            ev = (ty, int(t[i]), int(m[i]), int(p[i]), int(g[i]), a, xi, gen)
            return record_of(ev, int(t_out[i]))
        return record


