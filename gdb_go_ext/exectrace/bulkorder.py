"""A generation ordered in bulk: the per-M event columns (bulkdecode) merged by time the way
the reader's frontier heap merges them (bulkmerge), then the scheduler model of order.go
checked over whole columns. When every event of the merge can happen where it stands (the head of the
heap always goes, Go's common case), the merge is the reader's order and the generation
comes out as columns (columns.Block) with its records built on demand; anything else (an
event that must wait, one that breaks the trace, a rare kind) gives None and the caller
reads the generation step by step from the same state, so the result is the same.

Nothing here changes the Ordering until the whole generation is known good (commit)."""
from __future__ import annotations

from typing import Optional

import numpy as np

from . import wire as W
from .base import NO_ID, Broken
from .bulkmerge import merge, merge_by_sort, stable_order
from .order import GState, MState, PState

NONE = -1   # no state: the goroutine or P does not exist


# ---------------------------------------------------------------------------
# the scheduler model over columns
# ---------------------------------------------------------------------------
E = W
# kinds whose state changes are checked over columns (the rest go through _readers' pass)
_HOT = (E.EV_GO_START, E.EV_GO_UNBLOCK, E.EV_GO_BLOCK, E.EV_GO_STOP, E.EV_GO_DESTROY,
        E.EV_GO_CREATE, E.EV_GO_CREATE_BLOCKED, E.EV_GO_SYSCALL_BEGIN, E.EV_GO_SYSCALL_END,
        E.EV_GO_SYSCALL_END_BLOCKED, E.EV_GO_STATUS, E.EV_GO_STATUS_STACK,
        E.EV_GO_CREATE_SYSCALL, E.EV_PROC_START, E.EV_PROC_STOP, E.EV_PROC_STEAL,
        E.EV_PROC_STATUS)
_READERS = (E.EV_HEAP_ALLOC, E.EV_HEAP_GOAL, E.EV_PROCS_CHANGE, E.EV_GO_LABEL, E.EV_USER_LOG,
            E.EV_STW_BEGIN, E.EV_STW_END, E.EV_GC_MARK_ASSIST_BEGIN, E.EV_GC_MARK_ASSIST_END,
            E.EV_GC_MARK_ASSIST_ACTIVE, E.EV_GC_SWEEP_BEGIN, E.EV_GC_SWEEP_END,
            E.EV_GC_SWEEP_ACTIVE, E.EV_GC_BEGIN, E.EV_GC_END, E.EV_GC_ACTIVE,
            E.EV_USER_TASK_BEGIN, E.EV_USER_TASK_END, E.EV_USER_REGION_BEGIN,
            E.EV_USER_REGION_END)
SUPPORTED = np.zeros(256, dtype=bool)
SUPPORTED[list(_HOT + _READERS)] = True
IS_READER = np.zeros(256, dtype=bool)
IS_READER[list(_READERS)] = True


def _table(pairs, default=0, dtype=np.int64):
    a = np.full(256, default, dtype=dtype)
    for ks, v in pairs:
        for k in (ks if isinstance(ks, tuple) else (ks,)):
            a[k] = v
    return a


def _isin(typ, *kinds):
    """Whether each type is one of kinds (byte compares: several times faster than a
    table indexed by the types)."""
    out = typ == kinds[0]
    for k in kinds[1:]:
        out |= typ == k
    return out


class Ordered:
    """A generation ordered and checked: per event in order its type, M, the context's P
    and G before it, its args (uint64 rows), raw time, extra (the state it came from,
    for steals and statuses) and file offset; apply() moves the Ordering past it."""
    __slots__ = ("typ", "m", "p", "g", "args", "a0", "t", "x", "last_offset", "xs", "new_args",
                 "apply", "initial")


class RowArgs:
    """The events' args in order (uint64, [i] a row, [rows, k] a column), gathered from
    the decoder's rows when asked: no copy of every argument of the generation. An
    index from len(rows) on is a row of extra (the CPU samples')."""
    __slots__ = ("rows", "perm", "extra")

    def __init__(self, rows, perm, extra=None):
        self.rows, self.perm, self.extra = rows, perm, extra

    def __getitem__(self, key):
        r, k = key if isinstance(key, tuple) else (key, slice(None))
        idx = self.perm[r]
        rows, extra = self.rows, self.extra
        if extra is None:
            return rows[idx, k]
        n = len(rows)
        if np.ndim(idx) == 0:
            return rows[idx, k] if idx < n else extra[idx - n, k]
        out = rows[np.minimum(idx, n - 1), k]
        far = np.flatnonzero(idx >= n)
        out[far] = extra[idx[far] - n, k]
        return out


def with_samples(od: "Ordered", cpu: list) -> None:
    """The generation's CPU samples (time, M, P, G, stack) put among its events the way
    the reader gives them: each before the first event whose time is above its own.
    A sample's row has type EV_CPU_SAMPLE and its stack ID as its first argument."""
    ns = len(cpu)
    n = len(od.typ)
    ts = np.fromiter((c[0] for c in cpu), dtype=np.int64, count=ns)
    ins = np.searchsorted(od.t, ts, side="right")       # the event each goes before
    at = ins + np.arange(ns)                            # its place among all
    is_s = np.zeros(n + ns, dtype=bool)
    is_s[at] = True
    ev = np.flatnonzero(~is_s)

    def spread(col, sample_vals, dtype):
        out = np.empty(n + ns, dtype=dtype)
        out[ev] = col
        out[at] = sample_vals
        return out
    od.typ = spread(od.typ, W.EV_CPU_SAMPLE, np.uint8)
    od.t = spread(od.t, ts, np.int64)
    for name, k in (("m", 1), ("p", 2), ("g", 3)):
        setattr(od, name, spread(getattr(od, name), [c[k] for c in cpu], np.int64))
    stacks = np.fromiter((c[4] for c in cpu), dtype=np.uint64, count=ns)
    od.a0 = spread(od.a0, stacks.view(np.int64), np.int64)
    od.x = spread(od.x, 0, np.int8)
    rows = od.args.rows
    extra = np.zeros((ns, rows.shape[1]), dtype=np.uint64)
    extra[:, 0] = stacks
    perm = spread(od.args.perm, np.arange(len(rows), len(rows) + ns), np.int64)
    od.args = RowArgs(rows, perm, extra)
    shift = {}
    for d in (od.xs, od.new_args):
        if d:
            keys = np.fromiter(d, dtype=np.int64, count=len(d))
            new = keys + np.searchsorted(ins, keys, side="right")
            shift = dict(zip(keys.tolist(), new.tolist()))
            moved = {shift[k]: v for k, v in d.items()}
            d.clear()
            d.update(moved)


def _last_before(op_key, op_val, q_key, span):
    """For each query key (entity * span + position), the value of the last op of the
    same entity strictly before it, and whether there is one. op_key sorted."""
    j = np.searchsorted(op_key, q_key, side="left") - 1
    jj = np.maximum(j, 0)
    ok = (j >= 0) & (op_key[jj] // span == q_key // span) if len(op_key) else \
        np.zeros(len(q_key), dtype=bool)
    val = op_val[jj] if len(op_val) else np.zeros(len(q_key), dtype=np.int64)
    return val, ok


def _initial(states: dict, ids, gnum):
    """(status, seq, whether its generation is gnum) of each id's state in states,
    status NONE where it has none."""
    st = np.empty(len(ids), dtype=np.int64)
    sq = np.zeros(len(ids), dtype=np.int64)
    sg = np.zeros(len(ids), dtype=bool)
    for k, i in enumerate(ids.tolist()):
        s = states.get(i)
        if s is None:
            st[k] = NONE
        else:
            st[k], sq[k], sg[k] = s.status, s.seq, s.sgen == gnum
    return st, sq, sg


def _chain(ent, pos, kind_after, sets_seq, seq_val, init, span):
    """One entity kind's state chain over the ops (entity, position) given in order of
    position: sorted by (entity, position), each op's state before it (the previous op's
    after, or init(entity) = (status, seq, sgen is this generation)). -> (order of the
    ops, sorted entity, previous status, previous seq, previous sgen-ok, the last op
    that set a seq, at or before each)."""
    o = stable_order(ent)      # the ops come in order of position
    e = ent[o]
    n = len(e)
    if not n:
        z = np.zeros(0, dtype=np.int64)
        return o, e, z.astype(np.int8), z, z.astype(bool), z
    same = np.zeros(n, dtype=bool)
    same[1:] = e[1:] == e[:-1]
    heads = np.flatnonzero(~same)
    uniq = e[heads]
    st0, seq0, sg0 = init(uniq)
    after = kind_after[o].astype(np.int8)
    prev_status = np.empty(n, dtype=np.int8)
    prev_status[1:] = after[:-1]
    prev_status[heads] = st0
    idx = np.arange(n, dtype=np.int32)
    last = np.maximum.accumulate(np.where(sets_seq[o], idx, np.int32(-1)))
    first = np.repeat(heads.astype(np.int32), np.diff(np.append(heads, n)))
    prev_last = np.empty(n, dtype=np.int32)
    prev_last[0] = -1
    prev_last[1:] = last[:-1]
    has = prev_last >= first
    del first, idx
    prev_seq = seq_val[o][np.maximum(prev_last, 0)]
    prev_sgen = has.copy()
    fresh = np.flatnonzero(~has)            # no seq set before it in this generation
    grp = np.searchsorted(heads, fresh, side="right") - 1
    prev_seq[fresh] = seq0[grp]
    prev_sgen[fresh] = sg0[grp]
    return o, e, prev_status, prev_seq, prev_sgen, last


# G op kinds -> the status after (NONE: gone; -2: the status the event names)
_G_AFTER = _table(((E.EV_GO_START, W.GO_RUNNING), (E.EV_GO_UNBLOCK, W.GO_RUNNABLE),
                   (E.EV_GO_BLOCK, W.GO_WAITING), (E.EV_GO_STOP, W.GO_RUNNABLE),
                   (E.EV_GO_DESTROY, NONE), (E.EV_GO_CREATE, W.GO_RUNNABLE),
                   (E.EV_GO_CREATE_BLOCKED, W.GO_WAITING),
                   (E.EV_GO_SYSCALL_BEGIN, W.GO_SYSCALL), (E.EV_GO_SYSCALL_END, W.GO_RUNNING),
                   (E.EV_GO_SYSCALL_END_BLOCKED, W.GO_RUNNABLE),
                   ((E.EV_GO_STATUS, E.EV_GO_STATUS_STACK), -2),
                   (E.EV_GO_CREATE_SYSCALL, W.GO_SYSCALL)), default=-3)
# the status each needs before it (a bit per status + 1; 0: any, checked apart)
_G_NEED = _table(dtype=np.int32, pairs=((E.EV_GO_START, 1 << (W.GO_RUNNABLE + 1)),
                  (E.EV_GO_UNBLOCK, 1 << (W.GO_WAITING + 1)),
                  ((E.EV_GO_BLOCK, E.EV_GO_STOP, E.EV_GO_DESTROY, E.EV_GO_SYSCALL_BEGIN),
                   1 << (W.GO_RUNNING + 1)),
                  ((E.EV_GO_SYSCALL_END, E.EV_GO_SYSCALL_END_BLOCKED), 1 << (W.GO_SYSCALL + 1)),
                  ((E.EV_GO_CREATE, E.EV_GO_CREATE_BLOCKED, E.EV_GO_CREATE_SYSCALL),
                   1 << (NONE + 1))))
_P_AFTER = _table(((E.EV_PROC_START, W.PROC_RUNNING), (E.EV_PROC_STOP, W.PROC_IDLE),
                   (E.EV_PROC_STEAL, W.PROC_IDLE), (E.EV_PROC_STATUS, -2),
                   (E.EV_GO_SYSCALL_BEGIN, W.PROC_SYSCALL),
                   (E.EV_GO_SYSCALL_END, W.PROC_RUNNING)), default=-3)
_P_NEED = _table(((E.EV_PROC_START, 1 << (W.PROC_IDLE + 1)),
                  (E.EV_PROC_STOP, (1 << (W.PROC_RUNNING + 1)) | (1 << (W.PROC_SYSCALL + 1))),
                  (E.EV_PROC_STEAL, (1 << (W.PROC_SYSCALL + 1)) |
                   (1 << (W.PROC_SYSCALL_ABANDONED + 1))),
                  (E.EV_GO_SYSCALL_BEGIN, 0b111111 & ~1),
                  (E.EV_GO_SYSCALL_END, 1 << (W.PROC_SYSCALL + 1))))


class _ByM:
    """The generation's rows as the decoder gives them: grouped by M, each M's in order
    (M k of the decoder is ids index tix[k]; an M only stolen from has no rows)."""

    def __init__(self, start, tix, nids):
        counts = np.diff(start)
        self.first = np.zeros(nids, dtype=np.int64)
        self.count = np.zeros(nids, dtype=np.int64)
        self.first[tix] = start[:-1]
        self.count[tix] = counts
        self.row_first = np.repeat(start[:-1], counts)
        self.mrow = np.repeat(tix, counts)
        self.n = int(start[-1])

    def before(self, is_op, val, init):
        """Per row, the value of its M's last op before it (init of the M if none),
        and per M the value after its last row."""
        n = self.n
        last = np.maximum.accumulate(np.where(is_op, np.arange(n), -1))
        prev = np.empty(n, dtype=np.int64)
        prev[0] = -1
        prev[1:] = last[:-1]
        got = prev >= self.row_first
        out = np.where(got, val[np.maximum(prev, 0)], init[self.mrow])
        ends = self.first + self.count - 1
        has = self.count > 0
        lastm = np.where(has, last[np.maximum(ends, 0)], -1)
        final = np.where(has & (lastm >= self.first), val[np.maximum(lastm, 0)], init)
        return out, final


def places(perm):
    """Each decoder row's place in the order (the inverse of perm)."""
    place = np.empty(len(perm), dtype=np.int64)
    place[perm] = np.arange(len(perm))
    return place


def _syscall_statuses(rows, a0, a1, ids, tix, start, order, o, init_p, init_g):
    """GoStatus of a goroutine in a syscall on another M, in order: an M with no state
    yet (none from before, no event of its own so far) gets one running that goroutine
    without a P (its initial context here); the rest are checked once the contexts are
    known. -> (the rows that made an M, the rows to check)."""
    made, checked = [], []
    if not len(rows):
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    first = {}
    for k, t in enumerate(tix.tolist()):
        if start[k + 1] > start[k]:
            first[t] = int(order[start[k]])
    known = set(o.ms)
    for i in rows.tolist():
        mid = int(a1[i])
        t = int(np.searchsorted(ids, mid))
        if mid in known or first.get(t, 1 << 62) < i:
            checked.append(i)
            continue
        known.add(mid)
        init_g[t], init_p[t] = a0[i], NO_ID
        made.append(i)
    return np.asarray(made, dtype=np.int64), np.asarray(checked, dtype=np.int64)


def _values_at(at, tgt, ctx, final, order, by_m):
    """The context value of M tgt[k] (ids index) just after position at[k]: its value
    before its next event, or after its last (order: places())."""
    out = np.empty(len(at), dtype=np.int64)
    for k, (i, t) in enumerate(zip(at.tolist(), tgt.tolist())):
        lo, hi = int(by_m.first[t]), int(by_m.first[t] + by_m.count[t])
        pos = order[lo:hi]
        j = int(np.searchsorted(pos, i))
        out[k] = ctx[pos[j]] if j < len(pos) else final[t]
    return out


def _steals_from_others(oth, a0, a2, ids, order, by_m, is_p_op, ctx_p, final_p, o):
    """ProcSteal of another M's P, in order: that M must be known and hold the P; it
    then has no P until its own next set or clear (ctx_p and final_p patched). False
    when one cannot go (the step path decides)."""
    first, count = by_m.first, by_m.count
    seen = set(o.ms)
    firsts = {}
    for i in oth.tolist():
        tgt_id = int(a2[i])
        t = int(np.searchsorted(ids, tgt_id))
        lo, hi = int(first[t]), int(first[t] + count[t])
        rows = order[lo:hi]                     # the M's events, in order
        j = int(np.searchsorted(rows, i))       # its events after the steal from j on
        if tgt_id not in seen:
            f = firsts.get(t)
            if f is None:
                f = firsts[t] = int(rows[0]) if hi > lo else 1 << 62
            if f >= i:
                return False
        # the P it holds at the steal: its context before its next event (or at its end)
        held = int(ctx_p[rows[j]]) if j < len(rows) else int(final_p[t])
        if held != int(a0[i]):
            return False
        k = j
        while k < len(rows):
            r = rows[k]
            ctx_p[r] = NO_ID
            if is_p_op[r]:
                break
            k += 1
        else:
            final_p[t] = NO_ID
    return True


def merged(dec) -> Optional[np.ndarray]:
    """The reader's frontier order of bulkdecode's rows (each M's times never going
    back), or None."""
    n = len(dec.typ)
    if n == 0:
        return None
    t, start = dec.t, dec.start
    if n > 1:
        back = np.flatnonzero(t[1:] < t[:-1]) + 1
        if len(back) and not np.isin(back, start).all():
            return None
    perm = merge_by_sort(t, start)
    if perm is None:
        perm = merge(t, start)
    return perm


def order_generation(dec, o, gen, ver, perm) -> Optional[Ordered]:
    """The events in the reader's order, checked, or None (read the generation step by
    step). dec: bulkdecode's columns, of a generation or of a slice of its order; perm:
    their order (merged()), every kind SUPPORTED; o: the Ordering before them."""
    n = len(perm)
    start = dec.start
    t = dec.t
    typ = dec.typ[perm]
    ti = typ.astype(np.intp)        # (indexing a table by bytes converts them each time)
    mids = np.asarray(dec.ms, dtype=np.int64)
    counts = np.diff(start)
    m = np.repeat(mids, counts)[perm]
    # no thread: an empty context each time, kept nowhere (only these kinds allow it)
    no_m = m == NO_ID
    if no_m.any() and not _isin(typ[no_m], E.EV_GO_STATUS, E.EV_GO_STATUS_STACK,
                                E.EV_PROC_STATUS, E.EV_GO_UNBLOCK).all():
        return None
    every, rows_of = dec.arg_rows       # every argument row; the rows here in it
    args = RowArgs(every, perm if rows_of is None else rows_of[perm])
    cols = dec.args
    a0, a1, a2 = (np.take(cols[:, k], perm).view(np.int64) for k in range(3))
    gnum = gen.gen
    initial = (o.initial_gen or gnum) == gnum

    is_status = _isin(typ, E.EV_GO_STATUS, E.EV_GO_STATUS_STACK)
    is_pstatus = typ == E.EV_PROC_STATUS
    if (is_status & ((a2 < 0) | (a2 >= 5) | ((a2 == W.GO_SYSCALL) & (a1 == NO_ID)))).any():
        return None
    # a goroutine in a syscall on another M (a status the generation's writer gives)
    sys_other = np.flatnonzero(is_status & (a2 == W.GO_SYSCALL) & (a1 != m))
    if (is_pstatus & ((a1 < 0) | (a1 >= W.PROC_SYSCALL_ABANDONED))).any():
        return None
    steal = typ == E.EV_PROC_STEAL
    steal_other = steal & (a2 != m)

    # -- the Ms' contexts: the last set/clear of each before every event --
    ids = np.unique(np.concatenate([mids, a2[steal_other], a1[sys_other]]))
    span = n + 1
    init_p = np.empty(len(ids), dtype=np.int64)
    init_g = np.empty(len(ids), dtype=np.int64)
    for k, mid in enumerate(ids.tolist()):
        ms = o.ms.get(mid)
        init_p[k], init_g[k] = (ms.p, ms.g) if ms is not None else (NO_ID, NO_ID)
    # in the decoder's rows (each M's events together, in order), then in the order
    tix = np.searchsorted(ids, mids)
    # each row's place in the order, for the few events that act on another M
    place = places(perm) if len(sys_other) or steal_other.any() else None
    made, checked = _syscall_statuses(sys_other, a0, a1, ids, tix, start, place, o, init_p,
                                      init_g)
    ty_r = dec.typ
    c0, c1, c2 = (cols[:, k].view(np.int64) for k in range(3))
    no_m_r = np.repeat(mids == NO_ID, counts)
    st_r = _isin(ty_r, E.EV_GO_STATUS, E.EV_GO_STATUS_STACK)
    g_set = (_isin(ty_r, E.EV_GO_START, E.EV_GO_CREATE_SYSCALL) |
             (st_r & ((c2 == W.GO_RUNNING) | (c2 == W.GO_SYSCALL)))) & ~no_m_r
    g_op = g_set | _isin(ty_r, E.EV_GO_BLOCK, E.EV_GO_STOP, E.EV_GO_DESTROY,
                         E.EV_GO_SYSCALL_END_BLOCKED)
    p_set = ((ty_r == E.EV_PROC_START) | ((ty_r == E.EV_PROC_STATUS) & (
        (c1 == W.PROC_RUNNING) | (c1 == W.PROC_SYSCALL)))) & ~no_m_r
    p_op = p_set | (ty_r == E.EV_PROC_STOP) | ((ty_r == E.EV_PROC_STEAL) & (
        c2 == np.repeat(mids, counts)))
    by_m = _ByM(start, tix, len(ids))
    ctx_g, final_g = by_m.before(g_op, np.where(g_set, c0, NO_ID), init_g)
    ctx_g = ctx_g[perm]
    ctx_p, final_p = by_m.before(p_op, np.where(p_set, c0, NO_ID), init_p)
    ctx_p = ctx_p[perm]
    del g_set, p_set, st_r, no_m_r, c0, c1, c2
    oth = np.flatnonzero(steal_other)
    if len(oth):
        # another M's P taken: that M has none from then until it sets one itself
        if not _steals_from_others(oth, a0, a2, ids, place, by_m, p_op[perm], ctx_p,
                                   final_p, o):
            return None
    del g_op, p_op
    ctx_g[no_m] = NO_ID
    ctx_p[no_m] = NO_ID
    has_p = ctx_p != NO_ID
    has_g = ctx_g != NO_ID
    # validateCtx of the kinds checked here
    need_p = _isin(typ, E.EV_GO_START, E.EV_GO_BLOCK, E.EV_GO_STOP, E.EV_GO_DESTROY,
                   E.EV_GO_CREATE, E.EV_GO_CREATE_BLOCKED, E.EV_GO_SYSCALL_BEGIN,
                   E.EV_GO_SYSCALL_END, E.EV_PROC_STOP)
    need_g = _isin(typ, E.EV_GO_BLOCK, E.EV_GO_STOP, E.EV_GO_DESTROY, E.EV_GO_SYSCALL_BEGIN,
                   E.EV_GO_SYSCALL_END, E.EV_GO_SYSCALL_END_BLOCKED)
    no_g = _isin(typ, E.EV_GO_START, E.EV_GO_CREATE_SYSCALL)
    no_p = typ == E.EV_PROC_START
    if (need_p & ~has_p).any() or (need_g & ~has_g).any() or (no_g & has_g).any() or \
            (no_p & has_p).any():
        return None
    own_steal = steal & ~steal_other
    if (own_steal & (ctx_p != a0)).any():
        return None
    if not initial and (is_status & (a2 == W.GO_SYSCALL) & (a1 == m) & (ctx_g != a0)).any():
        return None
    # the other M's goroutine, where the M was known, must be this one; the event is
    # given on that M, with that goroutine (else with the writer's)
    if len(checked):
        tgt = np.searchsorted(ids, a1[checked])
        if (_values_at(checked, tgt, ctx_g, final_g, place, by_m) != a0[checked]).any():
            return None
    m = m.copy()
    m[sys_other] = a1[sys_other]
    ctx_g[checked] = a0[checked]

    # -- goroutines --
    g_ops = np.flatnonzero(_G_AFTER[ti] != -3)
    gt = typ[g_ops]
    own_g = _isin(gt, E.EV_GO_BLOCK, E.EV_GO_STOP, E.EV_GO_DESTROY, E.EV_GO_SYSCALL_BEGIN,
                  E.EV_GO_SYSCALL_END, E.EV_GO_SYSCALL_END_BLOCKED)
    g_ent = np.where(own_g, ctx_g[g_ops], a0[g_ops])
    g_after = _G_AFTER[gt].astype(np.int8)
    named = np.flatnonzero(g_after == -2)
    g_after[named] = a2[g_ops[named]]
    g_seq_set = _isin(gt, E.EV_GO_START, E.EV_GO_UNBLOCK, E.EV_GO_STATUS, E.EV_GO_STATUS_STACK,
                      E.EV_GO_CREATE, E.EV_GO_CREATE_BLOCKED, E.EV_GO_CREATE_SYSCALL)
    g_seq_val = np.where(_isin(gt, E.EV_GO_START, E.EV_GO_UNBLOCK), a1[g_ops], 0)

    def g_init(u):
        return _initial(o.gs, u, gnum)
    go, ge, gprev, gpseq, gpsg, glast = _chain(
        g_ent, g_ops, g_after, g_seq_set, g_seq_val, g_init, span)
    sgt = gt[go]
    need = _G_NEED[sgt]
    if not np.where(need != 0, (need >> (gprev + 1)) & 1, 1).all():
        return None
    del need
    gi = g_ops[go]                      # each sorted op's place in the order
    sstat = _isin(sgt, E.EV_GO_STATUS, E.EV_GO_STATUS_STACK)
    si = np.flatnonzero(sstat)
    if not ((gprev[si] == a2[gi[si]]) | ((gprev[si] == NONE) & initial)).all():
        return None
    seqd = _isin(sgt, E.EV_GO_START, E.EV_GO_UNBLOCK)
    if not (~seqd | (gpsg & (a1[gi] == gpseq + 1))).all():
        return None
    del seqd, gpseq, gpsg
    # a GoCreate's creator, when it has a state, is Running
    cre = np.flatnonzero(_isin(typ, E.EV_GO_CREATE, E.EV_GO_CREATE_BLOCKED) & has_g)
    if len(cre):
        gkey_sorted = ge * span + gi
        gafter_sorted = g_after[go]
        st, had = _last_before(gkey_sorted, gafter_sorted, ctx_g[cre] * span + cre, span)
        st0 = np.array([(o.gs[x].status if x in o.gs else NONE) for x in ctx_g[cre].tolist()],
                       dtype=np.int64)
        st = np.where(had, st, st0)
        if ((st != NONE) & (st != W.GO_RUNNING)).any():
            return None
    x = np.zeros(n, dtype=np.int8)     # a status's or steal's state before (NONE: new)
    x[gi[si]] = gprev[si]
    g_final = _finals(ge, g_after[go], glast, g_seq_val[go], g_seq_set[go],
                      _isin(gt[go], E.EV_GO_CREATE, E.EV_GO_CREATE_BLOCKED,
                            E.EV_GO_CREATE_SYSCALL))
    del go, ge, gprev, glast, g_ent, g_after, g_seq_val, g_seq_set, gt, sgt, sstat, \
        g_ops, own_g, gi

    # -- Ps --
    p_ops = np.flatnonzero(_P_AFTER[ti] != -3)
    pt = typ[p_ops]
    ctxp_ent = _isin(pt, E.EV_PROC_STOP, E.EV_GO_SYSCALL_BEGIN, E.EV_GO_SYSCALL_END)
    p_ent = np.where(ctxp_ent, ctx_p[p_ops], a0[p_ops])
    p_after = _P_AFTER[pt]
    p_after = np.where(p_after == -2, a1[p_ops], p_after)
    p_seq_set = _isin(pt, E.EV_PROC_START, E.EV_PROC_STEAL, E.EV_PROC_STATUS,
                      E.EV_GO_SYSCALL_BEGIN)
    p_seq_val = np.where(_isin(pt, E.EV_PROC_START, E.EV_PROC_STEAL), a1[p_ops],
                         np.where(pt == E.EV_GO_SYSCALL_BEGIN, a0[p_ops], 0))

    def p_init(u):
        return _initial(o.ps, u, gnum)
    po, pe, pprev, ppseq, ppsg, plast = _chain(
        p_ent, p_ops, p_after, p_seq_set, p_seq_val, p_init, span)
    spt = pt[po]
    need = _P_NEED[spt]
    ok = np.where(need != 0, (need >> (pprev + 1)) & 1, 1).astype(bool)
    sps = spt == E.EV_PROC_STATUS
    ok &= ~sps | (pprev == a1[p_ops][po]) | (pprev == NONE)
    seqd = _isin(spt, E.EV_PROC_START, E.EV_PROC_STEAL)
    ok &= ~seqd | (ppsg & (a1[p_ops][po] == ppseq + 1))
    sb = spt == E.EV_GO_SYSCALL_BEGIN
    ok &= ~sb | (ppsg & (a0[p_ops][po] == ppseq + 1))
    if not ok.all():
        return None
    px = np.flatnonzero(_isin(spt, E.EV_PROC_STATUS, E.EV_PROC_STEAL))
    x[p_ops[po[px]]] = pprev[px]
    p_final = _finals(pe, p_after[po], plast, p_seq_val[po], p_seq_set[po],
                      np.zeros(len(po), dtype=bool))
    pkey_sorted = pe * span + p_ops[po]
    pafter_sorted = p_after[po]

    def p_state_at(pids, at):
        st, had = _last_before(pkey_sorted, pafter_sorted, pids * span + at, span)
        st0 = np.array([(o.ps[x].status if x in o.ps else NONE) for x in pids.tolist()],
                       dtype=np.int64)
        return np.where(had, st, st0)
    # GoSyscallEndBlocked waits while its P is still in a syscall
    seb = np.flatnonzero((typ == E.EV_GO_SYSCALL_END_BLOCKED) & has_p)
    if len(seb):
        st = p_state_at(ctx_p[seb], seb)
        if ((st == NONE) | (st == W.PROC_SYSCALL)).any():
            return None
    ro = _readers(np.flatnonzero(IS_READER[ti]), typ, args, m, ctx_p, ctx_g, has_p,
                  has_g, o, gen, initial, p_state_at)
    if ro is None:
        return None
    res = Ordered()
    res.typ, res.m, res.p, res.g, res.args, res.t = typ, m, ctx_p, ctx_g, args, t[perm]
    res.a0, res.x, res.last_offset = a0, x, dec.offset_of(int(perm[-1]))
    res.xs, res.new_args = ro[0], ro[1]

    def apply():
        _commit(o, gen, ids, final_p, final_g, g_final, p_final, ro)
    res.apply = apply
    return res


def _readers(rows, typ, args, m, ctx_p, ctx_g, has_p, has_g, o, gen, initial, p_state_at):
    """The kinds that read the contexts and keep their own state (the GC, ranges,
    regions, tasks, metrics, labels), one by one in order on copies of that state:
    (extras by row, args by row where the ordering changed them, the state after) or
    None where one must wait or breaks the trace."""
    from .order import (GC_NOT_RUNNING, GC_RUNNING, GC_UNDETERMINED, START_OF,
                        active_range, end_range)
    tasks = dict(o.tasks)
    gc_seq, gc_state = o.gc_seq, o.gc_state
    granges: dict = {}
    gregions: dict = {}
    pranges: dict = {}
    xs: dict = {}
    new_args: dict = {}
    strings = gen.strings
    if not len(rows):
        return xs, new_args, tasks, gc_seq, gc_state, granges, gregions, pranges
    sweep_ps = rows[_isin(typ[rows], E.EV_GC_SWEEP_BEGIN, E.EV_GC_SWEEP_END)]
    if len(sweep_ps) and (~has_p[sweep_ps]).any():
        return None
    known_p = {}
    if len(sweep_ps):
        st = p_state_at(ctx_p[sweep_ps], sweep_ps)
        known_p = dict(zip(sweep_ps.tolist(), (st != NONE).tolist()))

    def g_list(store, gid, attr):
        lst = store.get(gid)
        if lst is None:
            s = o.gs.get(gid)
            lst = store[gid] = list(getattr(s, attr)) if s is not None else []
        return lst

    def p_list(pid):
        lst = pranges.get(pid)
        if lst is None:
            s = o.ps.get(pid)
            lst = pranges[pid] = list(s.ranges) if s is not None else []
        return lst
    tl, al = typ[rows].tolist(), args[rows].tolist()
    hp, hg = has_p[rows].tolist(), has_g[rows].tolist()
    gl, pl = ctx_g[rows].tolist(), ctx_p[rows].tolist()
    nargs = W.NARGS
    for r, ty, a, p_ok, g_ok, g, p in zip(rows.tolist(), tl, al, hp, hg, gl, pl):
        a = a[:nargs[ty] - 1]
        if ty == E.EV_HEAP_ALLOC or ty == E.EV_HEAP_GOAL:
            if not p_ok:
                return None
        elif ty in (E.EV_PROCS_CHANGE, E.EV_GO_LABEL, E.EV_USER_LOG):
            if not (p_ok and g_ok):
                return None
        elif ty in (E.EV_STW_BEGIN, E.EV_GC_MARK_ASSIST_BEGIN):
            if not (p_ok and g_ok):
                return None
            key = (ty, a[0] if ty == E.EV_STW_BEGIN else 0)
            lst = g_list(granges, g, "ranges")
            if key in lst:
                return None
            lst.append(key)
        elif ty in (E.EV_STW_END, E.EV_GC_MARK_ASSIST_END):
            if not (p_ok and g_ok):
                return None
            try:
                xs[r] = end_range(g_list(granges, g, "ranges"), START_OF[ty])
            except Broken:
                return None
        elif ty == E.EV_GC_MARK_ASSIST_ACTIVE:
            gid = a[0] - (1 << 64) if a[0] >= 1 << 63 else a[0]
            if gid not in o.gs:
                return None     # (a goroutine made in this generation: step by step)
            try:
                active_range(g_list(granges, gid, "ranges"), (E.EV_GC_MARK_ASSIST_BEGIN, 0),
                             initial)
            except Broken:
                return None
        elif ty == E.EV_GC_SWEEP_BEGIN:
            if not known_p.get(r):
                return None
            lst = p_list(p)
            key = (E.EV_GC_SWEEP_BEGIN, 0)
            if key in lst:
                return None
            lst.append(key)
        elif ty == E.EV_GC_SWEEP_END:
            if not known_p.get(r):
                return None
            try:
                end_range(p_list(p), E.EV_GC_SWEEP_BEGIN)
            except Broken:
                return None
        elif ty == E.EV_GC_SWEEP_ACTIVE:
            pid = a[0] - (1 << 64) if a[0] >= 1 << 63 else a[0]
            if pid not in o.ps:
                return None
            try:
                active_range(p_list(pid), (E.EV_GC_SWEEP_BEGIN, 0), initial)
            except Broken:
                return None
        elif ty == E.EV_GC_ACTIVE:
            seq = a[0]
            if initial:
                if gc_state != GC_UNDETERMINED:
                    return None
                gc_seq, gc_state = seq, GC_RUNNING
            else:
                if seq != gc_seq + 1 or gc_state != GC_RUNNING or not (p_ok and g_ok):
                    return None
                gc_seq = seq
        elif ty == E.EV_GC_BEGIN:
            seq = a[0]
            if gc_state == GC_UNDETERMINED:
                gc_seq, gc_state = seq, GC_RUNNING
            else:
                if seq != gc_seq + 1 or gc_state == GC_RUNNING or not (p_ok and g_ok):
                    return None
                gc_seq, gc_state = seq, GC_RUNNING
        elif ty == E.EV_GC_END:
            seq = a[0]
            if seq != gc_seq + 1 or gc_state != GC_RUNNING or not (p_ok and g_ok):
                return None
            gc_seq, gc_state = seq, GC_NOT_RUNNING
        elif ty == E.EV_USER_TASK_BEGIN:
            tid = a[0]
            if tid in tasks or not (p_ok and g_ok):
                return None
            parent = a[1]
            if parent == 0:
                parent = (1 << 64) - 1
                new_args[r] = [tid, parent] + a[2:]
            name = strings.get(a[2]) if a[2] else ""
            if name is None:
                return None
            tasks[tid] = (name, parent)
        elif ty == E.EV_USER_TASK_END:
            info = tasks.pop(a[0], None)
            xs[r] = (info[1], info[0]) if info is not None else ((1 << 64) - 1, "")
            if not (p_ok and g_ok):
                return None
        else:       # UserRegionBegin/End
            if not (p_ok and g_ok):
                return None
            name = strings.get(a[1]) if a[1] else ""
            if name is None:
                return None
            lst = g_list(gregions, g, "regions")
            rg = (a[0], name)
            if ty == E.EV_USER_REGION_BEGIN:
                lst.append(rg)
            elif lst:
                if lst[-1] != rg:
                    return None
                lst.pop()
    return xs, new_args, tasks, gc_seq, gc_state, granges, gregions, pranges


def _finals(ent_sorted, after_sorted, last_setter, seq_val_sorted, sets_sorted,
            made_sorted):
    """Per entity of a chain (sorted by entity, position): (entity, status after its
    last op, its last sequence number set or -1, whether an op set its generation,
    whether one made it anew), as lists."""
    n = len(ent_sorted)
    if not n:
        return [], [], [], [], []
    end = np.ones(n, dtype=bool)
    end[:-1] = ent_sorted[1:] != ent_sorted[:-1]
    ends = np.flatnonzero(end)
    starts = np.concatenate([[0], ends[:-1] + 1])
    ls = last_setter[ends]
    seq = np.where(ls >= starts, seq_val_sorted[np.maximum(ls, 0)], -1)
    sets = np.add.reduceat(sets_sorted.astype(np.int64), starts) > 0
    made = np.add.reduceat(made_sorted.astype(np.int64), starts) > 0
    return (ent_sorted[ends].tolist(), after_sorted[ends].tolist(), seq.tolist(),
            sets.tolist(), made.tolist())


def _set_finals(states: dict, finals, make, gnum, lists: dict) -> None:
    """Each entity's state at the generation's end (gone where it ends as NONE; made
    anew where the generation made it), and its range or region lists."""
    for i, st, seq, sets_gen, made in zip(*finals):
        cur = states.get(i)
        if st == NONE:
            if cur is not None:
                del states[i]
            continue
        if cur is None or made:
            cur = states[i] = make(st, gnum)
        cur.status = st
        if sets_gen:
            cur.sgen = gnum
        if seq >= 0:
            cur.seq = seq
    for attr, by_id in lists.items():
        for i, lst in by_id.items():
            s = states.get(i)
            if s is not None:
                setattr(s, attr, lst)


def _commit(o, gen, ids, final_p, final_g, g_final, p_final, ro):
    """Move the Ordering past the generation: every M's, G's and P's state at its end."""
    gnum = gen.gen
    if not o.initial_gen:
        o.initial_gen = gnum
    xs, new_args, tasks, gc_seq, gc_state, granges, gregions, pranges = ro
    for mid, p, g in zip(ids.tolist(), final_p.tolist(), final_g.tolist()):
        if mid == NO_ID:
            continue
        ms = o.ms.get(mid)
        if ms is None:
            ms = o.ms[mid] = MState()
        ms.p, ms.g = p, g
    _set_finals(o.gs, g_final, GState, gnum, {"ranges": granges, "regions": gregions})
    _set_finals(o.ps, p_final, PState, gnum, {"ranges": pranges})
    o.tasks = tasks
    o.gc_seq, o.gc_state = gc_seq, gc_state
