"""The per-M cursors over a generation's batches, and the heap of them by timestamp
(internal/trace's batchcursor.go)."""
from . import gosort
from . import wire as W
from .base import Broken


class BatchCursor:
    """batchCursor: one M's batches of a generation and its next event (typ, time, args,
    the batch's offset); .ms is the M's state in the ordering once Ordering.advance made it."""
    __slots__ = ("m", "last_ts", "idx", "vals", "vpos", "loaded", "batches", "typ", "time",
                 "args", "offset", "complete", "btime", "ms")

    def __init__(self, m, batches):
        self.m = m
        self.last_ts = 0
        self.idx = 0
        self.vals = []
        self.vpos = 0
        self.loaded = False
        self.batches = batches
        self.typ = 0
        self.time = 0
        self.args = ()
        self.offset = batches[0].offset if batches else 0
        self.btime = 0
        self.complete = True
        self.ms = None

    def next_event(self, freq: float, maxev: int) -> bool:
        """batchCursor.nextEvent: False at the end of the M's batches."""
        batches = self.batches
        while True:
            if not self.loaded:
                if self.idx >= len(batches):
                    return False
                b = batches[self.idx]
                self.vals, self.complete = W.uvarints_all(b.data)
                self.btime = b.time
                self.vpos = 0
                self.offset = b.offset
                self.loaded = True
            if self.vpos >= len(self.vals):
                if not self.complete:
                    raise Broken("found invalid uvarint", self.offset)
                self.idx += 1
                self.vals = []
                self.loaded = False
                self.last_ts = 0
                continue
            break
        if self.last_ts == 0:
            self.last_ts = int(self.btime * freq)
        vals, i = self.vals, self.vpos
        typ = vals[i]
        if typ > maxev:
            raise Broken(f"found invalid event type: {typ}", self.offset)
        n = W.NARGS[typ]
        if not n:
            raise Broken(f"found event without a timestamp: type={typ}", self.offset)
        if i + n >= len(vals):
            raise Broken("found invalid uvarint", self.offset)
        self.typ = typ
        self.time = self.last_ts = int(vals[i + 1] * freq) + self.last_ts
        self.args = vals[i + 2:i + 1 + n]
        self.vpos = i + 1 + n
        return True


def heap_sift_up(h, i):
    """heapSiftUp: -> where the cursor ended."""
    while i > 0 and h[(i - 1) // 2].time > h[i].time:
        j = (i - 1) // 2
        h[j], h[i] = h[i], h[j]
        i = j
    return i


def heap_sift_down(h, i):
    """heapSiftDown: swap the cursor at i with the earliest of its children while one is
    earlier (min3: the parent, then the left child, wins ties) -> where it ended."""
    n = len(h)
    if i >= n:
        return i
    t = h[i].time
    while True:
        left = 2 * i + 1
        if left >= n:
            return i
        m, mt = i, t
        lt = h[left].time
        if lt < mt:
            m, mt = left, lt
        if left + 1 < n and h[left + 1].time < mt:
            m = left + 1
        if m == i:
            return i
        h[i], h[m] = h[m], h[i]
        i = m


def heap_insert(h, c):
    """heapInsert."""
    h.append(c)
    heap_sift_up(h, len(h) - 1)


def heap_update(h, i):
    """heapUpdate: the cursor at i has a new time."""
    if heap_sift_up(h, i) != i:
        return
    heap_sift_down(h, i)


def heap_remove(h, i):
    """heapRemove."""
    while i > 0:
        j = (i - 1) // 2
        h[j], h[i] = h[i], h[j]
        i = j
    h[0], h[-1] = h[-1], h[0]
    h.pop()
    heap_sift_down(h, 0)


def sort_frontier(h):
    """slices.SortFunc by time, in its exact order for equal times: insertion sort up to
    12 elements (pdqsort's own small case), Go's pdqsort above (gosort.py)."""
    if len(h) <= 12:
        for i in range(1, len(h)):
            j = i
            while j > 0 and h[j].time < h[j - 1].time:
                h[j], h[j - 1] = h[j - 1], h[j]
                j -= 1
    else:
        gosort.sort_by(h, key=lambda c: c.time)
