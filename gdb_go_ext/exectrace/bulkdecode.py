"""A generation's event batches decoded at once, with numpy: every event's type, time,
arguments and batch offset, per M, exactly as BatchCursor.next_event gives them one by one.

How, per chunk of CHUNK bytes of whole batches (small enough to stay in the CPU's caches):
the varints are decoded together (the bytes < 0x80 end them; a varint's 7-bit groups are
packed from the 4 bytes ending it). An event is its type then NARGS[type] varints, so the
event starts are a chain i -> i + 1 + NARGS[v[i]] over the varints, restarted at each
batch. It is followed in segments of SEGMENT varints, all chains stepping together: each
segment's chain starts OVERLAP varints before it, and a chain started off an event start
falls in step with the true one within a few events. A segment's chain is the true one
when it enters the segment where the previous segment's chain left it; where not, the
segment is walked again from there in Python (rarely: 0.7 in a thousand on a busy
trace). Times are
cumulative sums per batch.

decode_generation gives None wherever the cursor's walk would raise (or could differ): a
varint cut or too long, an unknown or untimed event type, arguments past a batch's end, a
time beyond int64 or not exact; the caller then takes the step-by-step path.
"""
from __future__ import annotations

import heapq
from typing import Optional

import numpy as np

from . import wire as W
from .base import worker

SEGMENT = 64          # varints per chain segment (the last of a batch: what is left)
OVERLAP = 24          # varints a segment's chain walks before the segment
CHUNK = 1 << 18       # bytes of batches decoded together
_MAX_ARGS = max(W.NARGS) - 1
ARGS_WIDTH = _MAX_ARGS  # columns of Decoded.args (every one written, zero past an event's own)
_EXACT = 1 << 53      # a time delta below this is a float64 exactly, as Python's is
_TIME_LIMIT = float(1 << 62)
_PAD = b"\0\0\0"         # before a chunk's bytes: every varint's 4-byte word starts inside
_ARG_AT = np.arange(2, 2 + _MAX_ARGS, dtype=np.int64)


class Decoded:
    """A generation's events per M: ms (M ids, in gen.batch_ms order), start (int64,
    len(ms) + 1: M k's events are rows start[k]:start[k+1]), typ (uint8), t (int64, the
    cursor's .time), args (uint64 [n, ARGS_WIDTH], zero padded; the transpose of a
    [ARGS_WIDTH, n] array, so that a column is contiguous); batch_start (int64, each
    batch's first row, and n) and batch_offset (int64, each batch's file offset): .offset
    is every event's batch offset, offset_of(row) one's."""
    __slots__ = ("ms", "start", "typ", "t", "args", "batch_start", "batch_offset")

    def __init__(self, ms, start, typ, t, args, batch_start, batch_offset):
        self.ms = ms
        self.start = start
        self.typ = typ
        self.t = t
        self.args = args
        self.batch_start = batch_start
        self.batch_offset = batch_offset

    def __len__(self) -> int:
        return len(self.typ)

    @property
    def offset(self) -> np.ndarray:
        return np.repeat(self.batch_offset, np.diff(self.batch_start))

    @property
    def arg_rows(self) -> tuple:
        """(every event's argument row, None: these rows are all of them)."""
        return self.args, None

    def offset_of(self, row: int) -> int:
        return int(self.batch_offset[np.searchsorted(self.batch_start, row, side="right") - 1])


def _arg_mask() -> np.ndarray:
    """Per type byte, which of the _MAX_ARGS argument places are the event's own."""
    mask = np.zeros((256, _MAX_ARGS), dtype=np.uint64)
    for typ in range(128):
        mask[typ, :max(W.NARGS[typ] - 1, 0)] = 1
    return mask


_ARG_MASK = _arg_mask()


def step_table(maxev: int) -> np.ndarray:
    """Per value 0..255 (255: any larger), the varints an event of that type takes, type
    included; 1 for a type the cursor rejects (only a chain off the event starts meets one)."""
    steps = np.ones(256, dtype=np.int64)
    for typ in range(min(maxev, 255) + 1):
        if W.NARGS[typ]:
            steps[typ] = 1 + W.NARGS[typ]
    return steps


def _varints(data: bytes):
    """(values uint64, last byte of each (uint8; 127, no event type, for a varint of more
    than one byte), end byte of each) of data (3 zero bytes, then bytes that end on a
    varint's last byte); None when one is longer than binary.Uvarint takes."""
    a = np.frombuffer(data, dtype=np.uint8, offset=3)
    term = a < 0x80
    ends = np.flatnonzero(term)
    low = a[ends]
    vals = low.astype(np.uint64)
    if len(ends) == len(a):
        return vals, low, ends
    after_cont = np.empty(len(a), dtype=bool)
    after_cont[0] = False
    np.logical_not(term[:-1], out=after_cont[1:])
    multi = np.flatnonzero(after_cont[ends])
    e = ends[multi]
    lens = e - ends[multi - 1]
    if multi[0] == 0:
        lens[0] = e[0] + 1
    longest = int(lens.max())
    if longest > 10 or (longest == 10 and (a[e[lens == 10]] > 1).any()):
        return None
    # up to 4 bytes: the 4 bytes ending at the varint, their 7-bit groups packed, shifted
    words = np.ndarray(shape=(len(data) - 3,), dtype="<u4", buffer=data, strides=(1,))
    x = words[e] & np.uint32(0x7F7F7F7F)
    x = (x & np.uint32(0x007F007F)) | ((x >> np.uint32(1)) & np.uint32(0x3F803F80))
    x = (x & np.uint32(0x00003FFF)) | ((x >> np.uint32(2)) & np.uint32(0x0FFFC000))
    x >>= (np.uint32(28) - lens.astype(np.uint32) * np.uint32(7))
    vals[multi] = x
    if longest > 4:                      # longer ones group by group, from the last byte
        big = np.flatnonzero(lens > 4)
        for i in big.tolist():
            v = 0
            for k in range(int(lens[i])):
                v = (v << 7) | (int(a[e[i] - k]) & 0x7F)
            vals[multi[i]] = v
    low[multi] = 127
    return vals, low, ends


def _segments(vstart: np.ndarray, vend: np.ndarray):
    """(start, end, first-in-batch flag) of the chain segments of batches whose varints
    are vstart[b]:vend[b] (each batch non-empty)."""
    count = (vend - vstart + (SEGMENT - 1)) // SEGMENT
    total = int(count.sum())
    first = np.zeros(total, dtype=bool)
    firsts = np.cumsum(count) - count
    first[firsts] = True
    within = np.arange(total, dtype=np.int64) - np.repeat(firsts, count)
    start = np.repeat(vstart, count) + within * SEGMENT
    end = np.minimum(start + SEGMENT, np.repeat(vend, count))
    # where each chain begins: OVERLAP varints early (not before its batch), to be in
    # step with the events by the segment's start
    lead = np.maximum(start - OVERLAP, np.repeat(vstart, count))
    return start, end, first, lead


def _advance(steps, low, cur: np.ndarray, lim: np.ndarray, mark=None) -> np.ndarray:
    """Step every chain (steps[low[i]]: the step at varint i) from cur until at or past
    lim, marking the points below lim in mark when given -> where each stopped."""
    out = np.empty(len(cur), dtype=np.int64)
    ids = None
    while len(cur):
        going = cur < lim
        if ids is None and going.all():
            pass
        else:
            done = ~going
            if ids is None:
                out[done] = cur[done]
                ids = np.flatnonzero(going)
            else:
                out[ids[done]] = cur[done]
                ids = ids[going]
            cur = cur[going]
            lim = lim[going]
            if not len(cur):
                break
        if mark is not None:
            mark[cur] = True
        cur = cur + steps[low[cur]]
    return out


def _chains(steps, low, start, end, first, lead, n):
    """The true chain of event starts over varints 0..n-1 as a mark (bool, n + 1), and
    each segment's exit (its first point past the segment)."""
    entry = _advance(steps, low, lead, start)     # each chain's first point in its segment
    mark = np.zeros(n + 1, dtype=bool)
    exit_ = _advance(steps, low, entry, end, mark)
    # a segment's chain is the true one when it enters where the previous one left
    bad = np.flatnonzero(entry[1:] != exit_[:-1]) + 1
    bad = bad[~first[bad]]
    if len(bad):
        todo = bad.tolist()
        seen = set(todo)
        nseg = len(start)
        while todo:
            k = heapq.heappop(todo)
            e = int(exit_[k - 1])
            s, t = int(start[k]), int(end[k])
            walked = []
            p = e
            while p < t and not mark[p]:
                walked.append(p)
                p += int(steps[low[p]])
            if p < t:        # in step with the segment's chain from p on
                mark[s:p] = False
            else:            # never in step: the true chain leaves elsewhere
                mark[s:t] = False
                exit_[k] = p
                if k + 1 < nseg and not first[k + 1] and entry[k + 1] != p and \
                        k + 1 not in seen:
                    seen.add(k + 1)
                    heapq.heappush(todo, k + 1)
            mark[walked] = True
    return mark, exit_


def decode_generation(gen, maxev: int) -> Optional[Decoded]:
    """The events of gen's event batches (per M in gen.batch_ms order, each M's batches in
    order), or None where BatchCursor.next_event would raise or might differ."""
    ms = list(gen.batch_ms)
    batches = []
    per_m = []
    for m in ms:
        lst = gen.batches.get(m)
        if not lst:
            return None
        kept = [b for b in lst if len(b.data)]   # an empty batch gives no event
        batches.extend(kept)
        per_m.append(len(kept))
    freq = gen.freq
    if not isinstance(freq, float) or not freq > 0.0 or freq == float("inf"):
        return None
    if not batches:
        return _empty(ms)
    steps = step_table(maxev)
    ifreq = int(freq) if freq.is_integer() and 1.0 <= freq < _EXACT else 0
    # the columns at their largest (an event takes 2 bytes or more): only the part
    # written is ever touched, and the result is views of it
    sizes = [len(b.data) for b in batches]
    total = sum(sizes)
    out = _room(ms, total, batches)
    # the later half of the bytes decoded on the reader's helper thread meanwhile, into
    # columns of its own, then copied after the first half's rows
    half = int(np.searchsorted(np.cumsum(sizes), total // 2)) if total >= 4 * CHUNK else \
        len(batches)
    later = None
    if half < len(batches):
        out2 = _room(ms, total - sum(sizes[:half]), batches[half:])
        later = worker().submit(_decode_run, batches[half:], steps, freq, ifreq, out2)
    try:
        first = _decode_run(batches[:half], steps, freq, ifreq, out)
    finally:
        second = later.result() if later is not None else np.zeros(0, dtype=np.int64)
    if first is None or second is None:
        return None
    n1 = int(first.sum())
    n = n1 + int(second.sum())
    if later is not None:
        out.typ[n1:n] = out2.typ[:n - n1]
        out.t[n1:n] = out2.t[:n - n1]
        out.args[:, n1:n] = out2.args[:, :n - n1]
        out2 = None
    bstart = np.zeros(len(batches) + 1, dtype=np.int64)
    np.cumsum(np.concatenate([first, second]), out=bstart[1:])
    out.start = bstart[np.cumsum([0] + per_m)]
    out.typ, out.t, out.batch_start = out.typ[:n], out.t[:n], bstart
    out.args = out.args[:, :n].T
    return out


def _room(ms, size: int, batches) -> Decoded:
    """Columns for the events of size bytes of batches at their most (an event takes 2
    bytes or more): only the part written is ever touched."""
    room = size // 2 + 1
    return Decoded(ms, None, np.empty(room, dtype=np.uint8), np.empty(room, dtype=np.int64),
                   np.empty((ARGS_WIDTH, room), dtype=np.uint64), None,
                   np.fromiter((b.offset for b in batches), dtype=np.int64,
                               count=len(batches)))


def _decode_run(batches, steps, freq, ifreq, out: Decoded):
    """Decode batches into out's columns from row 0, CHUNK bytes at a time -> the events
    of each batch, or None."""
    counts = [np.zeros(0, dtype=np.int64)]
    n = i = 0
    while i < len(batches):
        j, size = i, 0
        while j < len(batches) and (size < CHUNK or j == i):
            size += len(batches[j].data)
            j += 1
        got = _decode_batches(batches[i:j], steps, freq, ifreq, out, n)
        if got is None:
            return None
        counts.append(got)
        n += int(got.sum())
        i = j
    return np.concatenate(counts)


def _decode_batches(batches, steps, freq, ifreq, out: Decoded, lo: int):
    """Decode non-empty batches into out's columns from row lo -> the events of each
    batch, or None."""
    nb = len(batches)
    bend = np.cumsum(np.fromiter((len(b.data) for b in batches), dtype=np.int64, count=nb))
    data = b"".join([_PAD] + [b.data for b in batches])
    if (np.frombuffer(data, dtype=np.uint8)[bend + 2] >= 0x80).any():
        return None                      # a varint cut at a batch's end
    dec = _varints(data)
    if dec is None:
        return None
    vals, low, ends = dec
    n = len(vals)
    vend = np.searchsorted(ends, bend - 1) + 1
    vstart = np.empty(nb, dtype=np.int64)
    vstart[0] = 0
    vstart[1:] = vend[:-1]
    start, end, first, lead = _segments(vstart, vend)
    mark, exit_ = _chains(steps, low, start, end, first, lead, n)
    # each batch's last event ends on the batch's end (else its arguments run past it)
    lastseg = np.flatnonzero(np.append(first[1:], True))
    if (exit_[lastseg] != vend).any():
        return None
    ev = np.flatnonzero(mark[:n])
    typ = low[ev]
    size = steps[typ]
    if (size == 1).any():                # an unknown or untimed event type
        return None
    hi = lo + len(ev)                    # within out: every event takes 2 bytes or more
    out.typ[lo:hi] = typ
    # times: the deltas scaled as int(dt * freq), summed per batch from the batch's time
    t = out.t[lo:hi]
    if not _times(vals[1:][ev], freq, ifreq, t):
        return None
    base = [int(b.time * freq) for b in batches]
    if max(base) >= 1 << 62:
        return None
    counts = np.diff(np.searchsorted(ev, vstart), append=len(ev))
    first_ev = np.cumsum(counts) - counts
    first_ticks = t[first_ev]
    np.cumsum(t, out=t)
    t += np.repeat(np.array(base, dtype=np.int64) - (t[first_ev] - first_ticks), counts)
    # arguments after the delta, zero past each event's own
    vals = np.append(vals, np.zeros(_MAX_ARGS, dtype=np.uint64))
    for j in range(_MAX_ARGS):
        col = out.args[j, lo:hi]
        np.take(vals[2 + j:], ev, out=col)
        np.multiply(col, size > 2 + j, out=col)
    return counts


def _times(dt: np.ndarray, freq: float, ifreq: int, out: np.ndarray) -> bool:
    """out = int(dt * freq) of each delta (Python's float product, truncated); False when
    a delta or the deltas' sum is too large to be sure of."""
    if not len(dt):
        return True
    top = int(dt.max())
    if ifreq and top * ifreq < _EXACT and top * ifreq * len(dt) < _TIME_LIMIT:
        np.multiply(dt, ifreq, out=out, casting="unsafe")   # exact: an integer < 2**53
        return True
    if top >= _EXACT:
        return False
    scaled = dt.astype(np.float64) * freq
    if float(scaled.sum()) >= _TIME_LIMIT:
        return False
    out[:] = scaled
    return True


def _empty(ms) -> Decoded:
    return Decoded(ms, np.zeros(len(ms) + 1, dtype=np.int64), np.zeros(0, dtype=np.uint8),
                   np.zeros(0, dtype=np.int64), np.zeros((0, ARGS_WIDTH), dtype=np.uint64),
                   np.zeros(1, dtype=np.int64), np.zeros(0, dtype=np.int64))
