"""The frontier heap's merge of a generation's per-M events (reader.py's hot loop and
batchcursor's heap), over columns: merge() plays the heap run by run, merge_by_sort()
gets the same order from a sort wherever the heap's layout has no say."""
from __future__ import annotations

from array import array
from bisect import bisect_right
from typing import Optional

import numpy as np

_MAX_TIME = (1 << 63) - 1


def merge(t_list, start: np.ndarray, upto: Optional[int] = None):
    """The rows in the order the frontier heap gives them when every head goes: per M
    (rows start[k]:start[k+1], times non-decreasing), the head runs while its next time is
    not above its children's, then sifts down (heapSiftDown; heapRemove at its end).
    With upto: instead the heap (its Ms, root first) once upto rows have gone, the
    root's M mid-run where upto cuts a run. t_list: the times, a list or an int64 array
    (read through a memoryview: no Python int per event kept)."""
    if isinstance(t_list, np.ndarray):
        t_list = memoryview(np.ascontiguousarray(t_list, dtype=np.int64))
    nm = len(start) - 1
    hk: list = []   # the heap's keys (head times) and Ms
    hm: list = []
    pos = start[:-1].tolist()
    stop = start[1:].tolist()
    for k in range(nm):
        if pos[k] >= stop[k]:
            continue
        hk.append(t_list[pos[k]])
        hm.append(k)
        i = len(hk) - 1     # heapSiftUp
        while i > 0 and hk[(i - 1) // 2] > hk[i]:
            j = (i - 1) // 2
            hk[i], hk[j] = hk[j], hk[i]
            hm[i], hm[j] = hm[j], hm[i]
            i = j
    rs = array("q")  # each run's first row and end
    re_ = array("q")
    n = len(hk)
    while n:
        k = hm[0]
        if n > 2:
            bound = hk[1] if hk[1] <= hk[2] else hk[2]
        elif n == 2:
            bound = hk[1]
        else:
            bound = _MAX_TIME
        i = pos[k]
        e = stop[k]
        j = bisect_right(t_list, bound, i + 1, e)
        if upto is not None:
            if j - i > upto:
                return hm
            upto -= j - i
        rs.append(i)
        re_.append(j)
        if j < e:
            pos[k] = j
            t = hk[0] = t_list[j]
        else:               # heapRemove(0): the last one to the root
            n -= 1
            hk[0] = hk[n]
            hm[0] = hm[n]
            hk.pop()
            hm.pop()
            if not n:
                break
            t = hk[0]
        i = 0               # heapSiftDown(0)
        while True:
            left = 2 * i + 1
            if left >= n:
                break
            m, mt = i, t
            lt = hk[left]
            if lt < mt:
                m, mt = left, lt
            if left + 1 < n and hk[left + 1] < mt:
                m = left + 1
            if m == i:
                break
            hk[i], hk[m] = hk[m], hk[i]
            hm[i], hm[m] = hm[m], hm[i]
            i = m
    if upto is not None:
        return hm
    rs_a = np.frombuffer(rs, dtype=np.int64)
    lens = np.frombuffer(re_, dtype=np.int64) - rs_a
    total = int(lens.sum())
    # the rows of every run, in run order
    base = np.repeat(rs_a - np.cumsum(lens) + lens, lens)
    return base + np.arange(total, dtype=np.int64)


def merge_by_sort(t: np.ndarray, start: np.ndarray) -> Optional[np.ndarray]:
    """merge()'s order without the heap, where the heap has no say: the rows sorted by
    time (each M's rows keep their order). A time two Ms share goes the way the heap
    takes it when the M of the event just before is one of the two: that M is the root
    and keeps going (its next time is not above its children's), then the other, the
    only other head at that time, is the smallest child. So each tie's last M is the
    other of the one before it: last[j] = A[j] + B[j] - last[j-1], solved over all ties
    at once with alternating sums. None when three Ms share a time, the M before a tie
    is not in it, or a tie opens the generation: the heap's layout decides (merge())."""
    n = len(t)
    s = np.argsort(t, kind="stable")
    ts = t[s]
    same_t = ts[1:] == ts[:-1]
    del ts
    mk = np.repeat(np.arange(len(start) - 1, dtype=np.int32), np.diff(start))[s]
    other_m = same_t & (mk[1:] != mk[:-1])     # row k+1 starts another M's rows in a tie
    if not other_m.any():
        return s
    cut = np.flatnonzero(other_m) + 1          # where a tie's second M begins
    del other_m
    newt = np.ones(n, dtype=bool)
    newt[1:] = ~same_t
    del same_t
    heads = np.flatnonzero(newt)               # each time's first row
    del newt
    tie = np.searchsorted(heads, cut, side="right") - 1
    if (np.diff(tie) == 0).any() or tie[0] == 0:
        return None                            # three Ms, or the generation's first time
    swap = _second_first(heads, tie, mk, cut)
    del mk
    if swap is None:
        return None
    if not swap.any():
        return s
    ngr = len(heads)
    g0, cut = heads[tie[swap]], cut[swap]
    k = tie[swap] + 1
    g1 = np.where(k < ngr, heads[np.minimum(k, ngr - 1)], n)
    del heads, tie, k
    la, lens = cut - g0, g1 - g0
    rows = np.repeat(g0 - np.cumsum(lens) + lens, lens) + np.arange(int(lens.sum()))
    off = rows - np.repeat(g0, lens)
    la_r = np.repeat(la, lens)
    dest = np.where(off < la_r, rows + np.repeat(g1 - cut, lens), rows - la_r)
    s[dest] = s[rows]
    return s


def _second_first(heads, tie, mk, cut):
    """Per tie (its time's index in heads, each time's first row; where its second M
    begins, cut; mk the M of each row), whether its second M goes first: the M before
    it is that one. None where the M before is neither."""
    # only the ties and the time before each matter: J, in order; a time in J that is
    # not a tie (the one before a run of ties) restarts the recurrence
    keep = np.zeros(len(heads), dtype=bool)
    keep[tie] = True
    keep[tie - 1] = True
    sub = np.flatnonzero(keep)
    del keep
    is_tie = np.zeros(len(sub), dtype=bool)
    where_tie = np.searchsorted(sub, tie)
    is_tie[where_tie] = True
    ma_s = mk[heads[sub]].astype(np.int64)
    mb_s = np.zeros(len(sub), dtype=np.int64)
    mb_s[where_tie] = mk[cut]
    sign = 1 - 2 * (np.arange(len(sub)) & 1)
    pre = np.cumsum(sign * np.where(is_tie, ma_s + mb_s, ma_s))
    reset = np.maximum.accumulate(np.where(is_tie, 0, np.arange(len(sub))))
    before = np.where(reset > 0, pre[np.maximum(reset - 1, 0)], 0)
    last_s = sign * (pre - before)             # each time's last M
    prev = last_s[where_tie - 1]
    ma, mb = ma_s[where_tie], mb_s[where_tie]
    if ((prev != ma) & (prev != mb)).any():
        return None
    return prev == mb


def stable_order(keys: np.ndarray) -> np.ndarray:
    """np.argsort(keys, kind="stable") by 16-bit radix passes (numpy's radix sort) while
    the keys span under 2**32, a few times faster than its merge sort."""
    if not len(keys):
        return np.zeros(0, dtype=np.int64)
    k = keys - keys.min()
    top = int(k.max())
    if top < 1 << 16:
        return np.argsort(k.astype(np.uint16), kind="stable")
    if top < 1 << 32:
        o = np.argsort((k & 0xFFFF).astype(np.uint16), kind="stable")
        return o[np.argsort((k[o] >> 16).astype(np.uint16), kind="stable")]
    return np.argsort(keys, kind="stable")
