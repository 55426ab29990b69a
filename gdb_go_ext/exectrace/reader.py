"""The reader: header, generations, batches, and the ordering of events across Ms.

It does what internal/trace's Reader does, per wire version (the toolchain that wrote a
trace reads it with the same rules): read one generation's batches (strings, stacks, CPU
samples, the sync batch with the frequency and, from 1.25, the clock snapshot; experimental
batches are kept aside, unparsed), then merge the per-M event streams by timestamp, letting
an event through only when the scheduler model of order.go (goroutine, P and M states,
sequence numbers, GC, ranges, tasks, regions) says it can happen next.

Sync events follow the reader of the writing toolchain: go1.22-1.24 (wire 1.22/1.23) emit
one at the end of each generation, without N; go1.25+ one at the start of each generation
(with N and the clock snapshot) and one at the end of the trace.
"""
from __future__ import annotations

import io
import os
import re
from collections import deque
from datetime import datetime, timezone
from typing import Iterator, Optional

from . import gosort
from . import wire as W
from .model import Event, Frame, TraceFormatError

NO_ID = -1
NO_TASK = (1 << 64) - 1
_MAX_TIME = (1 << 63) - 1
_S64 = 1 << 63
_U64 = 1 << 64

_KIND = {}
for _t in (W.EV_PROC_START, W.EV_PROC_STOP, W.EV_PROC_STEAL, W.EV_PROC_STATUS, W.EV_GO_CREATE,
           W.EV_GO_CREATE_SYSCALL, W.EV_GO_START, W.EV_GO_DESTROY, W.EV_GO_DESTROY_SYSCALL,
           W.EV_GO_STOP, W.EV_GO_BLOCK, W.EV_GO_UNBLOCK, W.EV_GO_SYSCALL_BEGIN,
           W.EV_GO_SYSCALL_END, W.EV_GO_SYSCALL_END_BLOCKED, W.EV_GO_STATUS, W.EV_GO_SWITCH,
           W.EV_GO_SWITCH_DESTROY, W.EV_GO_CREATE_BLOCKED, W.EV_GO_STATUS_STACK):
    _KIND[_t] = "StateTransition"
_KIND.update({W.EV_CPU_SAMPLE: "StackSample", W.EV_PROCS_CHANGE: "Metric",
              W.EV_HEAP_ALLOC: "Metric", W.EV_HEAP_GOAL: "Metric",
              W.EV_STW_BEGIN: "RangeBegin", W.EV_STW_END: "RangeEnd",
              W.EV_GC_ACTIVE: "RangeActive", W.EV_GC_BEGIN: "RangeBegin", W.EV_GC_END: "RangeEnd",
              W.EV_GC_SWEEP_ACTIVE: "RangeActive", W.EV_GC_SWEEP_BEGIN: "RangeBegin",
              W.EV_GC_SWEEP_END: "RangeEnd", W.EV_GC_MARK_ASSIST_ACTIVE: "RangeActive",
              W.EV_GC_MARK_ASSIST_BEGIN: "RangeBegin", W.EV_GC_MARK_ASSIST_END: "RangeEnd",
              W.EV_GO_LABEL: "Label", W.EV_USER_TASK_BEGIN: "TaskBegin",
              W.EV_USER_TASK_END: "TaskEnd", W.EV_USER_REGION_BEGIN: "RegionBegin",
              W.EV_USER_REGION_END: "RegionEnd", W.EV_USER_LOG: "Log",
              W.EV_SYNC_EVENT: "Sync"})
KINDS = _KIND
_TRANSITIONS = frozenset(t for t, k in _KIND.items() if k == "StateTransition")
_STACK_ARG = [W.STACK_ARG.get(t, -1) for t in range(256)]
# How each wire event reads as a StateTransition (Event.StateTransition in event.go):
# (resource, id from 0: args[0] 1: the P 2: the G, from, to (None: from ordering),
#  reason from args[0], transition stack 0: none 1: the event's 2: args[1]'s).
_TSPEC = [None] * 256
for _t, _spec in (
        (W.EV_PROC_START, ("Proc", 0, "Idle", "Running", False, 0)),
        (W.EV_PROC_STOP, ("Proc", 1, "Running", "Idle", False, 0)),
        (W.EV_PROC_STEAL, ("Proc", 0, None, "Idle", False, 0)),
        (W.EV_PROC_STATUS, ("Proc", 0, None, None, False, 0)),
        (W.EV_GO_CREATE, ("Goroutine", 0, "NotExist", "Runnable", False, 2)),
        (W.EV_GO_CREATE_BLOCKED, ("Goroutine", 0, "NotExist", "Waiting", False, 2)),
        (W.EV_GO_CREATE_SYSCALL, ("Goroutine", 0, "NotExist", "Syscall", False, 0)),
        (W.EV_GO_START, ("Goroutine", 0, "Runnable", "Running", False, 0)),
        (W.EV_GO_DESTROY, ("Goroutine", 2, "Running", "NotExist", False, 0)),
        (W.EV_GO_DESTROY_SYSCALL, ("Goroutine", 2, "Syscall", "NotExist", False, 0)),
        (W.EV_GO_STOP, ("Goroutine", 2, "Running", "Runnable", True, 1)),
        (W.EV_GO_BLOCK, ("Goroutine", 2, "Running", "Waiting", True, 1)),
        (W.EV_GO_UNBLOCK, ("Goroutine", 0, "Waiting", "Runnable", False, 0)),
        (W.EV_GO_SWITCH, ("Goroutine", 0, "Waiting", "Runnable", False, 0)),
        (W.EV_GO_SWITCH_DESTROY, ("Goroutine", 0, "Waiting", "Runnable", False, 0)),
        (W.EV_GO_SYSCALL_BEGIN, ("Goroutine", 2, "Running", "Syscall", False, 1)),
        (W.EV_GO_SYSCALL_END, ("Goroutine", 2, "Syscall", "Running", False, 0)),
        (W.EV_GO_SYSCALL_END_BLOCKED, ("Goroutine", 2, "Syscall", "Runnable", False, 0)),
        (W.EV_GO_STATUS, ("Goroutine", 0, None, None, False, 1)),
        (W.EV_GO_STATUS_STACK, ("Goroutine", 0, None, None, False, 1))):
    _TSPEC[_t] = _spec
_METRIC_NAME = {W.EV_PROCS_CHANGE: "/sched/gomaxprocs:threads",
                W.EV_HEAP_ALLOC: "/memory/classes/heap/objects:bytes",
                W.EV_HEAP_GOAL: "/gc/heap/goal:bytes"}
# The Begin event of each range End/Active event (its spec's StartEv).
_START_OF = {W.EV_GO_SYSCALL_END: W.EV_GO_SYSCALL_BEGIN,
             W.EV_GO_SYSCALL_END_BLOCKED: W.EV_GO_SYSCALL_BEGIN, W.EV_STW_END: W.EV_STW_BEGIN,
             W.EV_GC_ACTIVE: W.EV_GC_BEGIN, W.EV_GC_END: W.EV_GC_BEGIN,
             W.EV_GC_SWEEP_ACTIVE: W.EV_GC_SWEEP_BEGIN, W.EV_GC_SWEEP_END: W.EV_GC_SWEEP_BEGIN,
             W.EV_GC_MARK_ASSIST_ACTIVE: W.EV_GC_MARK_ASSIST_BEGIN,
             W.EV_GC_MARK_ASSIST_END: W.EV_GC_MARK_ASSIST_BEGIN,
             W.EV_USER_REGION_END: W.EV_USER_REGION_BEGIN}


def _s64(x: int) -> int:
    return x - _U64 if x >= _S64 else x


class _Broken(Exception):
    """The trace is broken here: message and byte offset."""

    def __init__(self, msg: str, offset: int):
        super().__init__(msg)
        self.offset = offset


# ---------------------------------------------------------------------------
# bytes in
# ---------------------------------------------------------------------------
class _Source:
    """The trace's bytes after the header, read in chunks (a file) or in place (bytes)."""
    CHUNK = 1 << 22

    def __init__(self, f, data=None, offset=16):
        self.f = f
        self.buf = data if data is not None else b""
        self.pos = offset if data is not None else 0
        self.base = 0 if data is not None else offset  # file offset of buf[0]
        self.eof = data is not None

    def offset(self) -> int:
        return self.base + self.pos

    def fill(self, n: int) -> bool:
        """At least n bytes after pos, if the file has them."""
        if len(self.buf) - self.pos >= n:
            return True
        if self.eof:
            return False
        rest = self.buf[self.pos:]
        self.base += self.pos
        self.pos = 0
        parts = [rest]
        have = len(rest)
        while have < n:
            chunk = self.f.read(max(self.CHUNK, n - have))
            if not chunk:
                self.eof = True
                break
            parts.append(chunk)
            have += len(chunk)
        self.buf = b"".join(parts)
        return have >= n


class _Batch:
    __slots__ = ("m", "time", "data", "exp", "offset")

    def __init__(self, m, time, data, exp, offset):
        self.m = m
        self.time = time
        self.data = data
        self.exp = exp
        self.offset = offset


def _read_batch(src: _Source):
    """-> (batch, gen), or None at a clean end; raises _Broken like readBatch's errors."""
    start = src.offset()
    if not src.fill(1):
        return None
    buf, pos = src.buf, src.pos
    typ = buf[pos]
    if typ == W.EV_END_OF_GENERATION:
        src.pos = pos + 1
        return _Batch(NO_ID, 0, bytes((typ,)), 0, start), 0
    if typ != W.EV_EVENT_BATCH and typ != W.EV_EXPERIMENTAL_BATCH:
        raise _Broken(f"expected batch event, got event {typ}", start)
    src.fill(2 + 40)
    buf, pos = src.buf, src.pos + 1
    end = len(buf)
    exp = 0
    if typ == W.EV_EXPERIMENTAL_BATCH:
        if pos >= end:
            raise _Broken("reading experiment: EOF", start)
        exp = buf[pos]
        pos += 1
    fields = []
    for what in ("gen", "M ID", "timestamp", "size"):
        v, pos = W.uvarint(buf, pos, end)
        if v is None:
            raise _Broken(f"error reading batch {what}: unexpected EOF or bad varint", start)
        fields.append(v)
    gen, m, ts, size = fields
    if size > W.MAX_BATCH_SIZE:
        raise _Broken(f"invalid batch size {size}, maximum is {W.MAX_BATCH_SIZE}", start)
    src.pos = pos
    if not src.fill(size):
        have = len(src.buf) - src.pos
        src.pos = len(src.buf)
        raise _Broken(f"failed to read full batch: read {have} but wanted {size}", start)
    data = src.buf[src.pos:src.pos + size]
    src.pos += size
    return _Batch(_s64(m), ts, data, exp, start), gen


# ---------------------------------------------------------------------------
# a generation
# ---------------------------------------------------------------------------
class _Gen:
    __slots__ = ("gen", "batches", "batch_ms", "cpu", "min_ts", "strings", "stacks", "pcs",
                 "freq", "has_snap", "snap_time", "snap_mono", "snap_sec", "snap_nsec",
                 "exp_batches", "extra", "stack_cache", "offset")

    def __init__(self):
        self.gen = 0
        self.batches = {}
        self.batch_ms = []
        self.cpu = []
        self.min_ts = 0
        self.strings = {}
        self.stacks = {}      # id -> tuple of pcs
        self.pcs = {}         # pc -> (func id, file id, line)
        self.freq = 0.0
        self.has_snap = False
        self.snap_time = self.snap_mono = self.snap_sec = self.snap_nsec = 0
        self.exp_batches = []
        self.extra = {}       # smuggled task names (evTable.extraStrings), by value
        self.stack_cache = {}
        self.offset = 0

    def stack(self, sid: int, frames_cache: dict) -> tuple:
        if not sid:
            return ()
        st = self.stack_cache.get(sid)
        if st is None:
            out = []
            strings = self.strings
            for pc in self.stacks.get(sid, ()):
                fid, fileid, line = self.pcs[pc]
                key = (pc, strings.get(fid, ""), strings.get(fileid, ""), line)
                fr = frames_cache.get(key)
                if fr is None:
                    fr = frames_cache[key] = Frame(key[1], key[2], line, pc)
                out.append(fr)
            st = self.stack_cache[sid] = tuple(out)
        return st


def _process_batch(g: _Gen, b: _Batch, ver: int):
    data = b.data
    first = data[0] if data else -1
    if b.exp == 0 and first == W.EV_STRINGS:
        _add_strings(g, b)
    elif b.exp == 0 and first == W.EV_STACKS:
        _add_stacks(g, b)
    elif b.exp == 0 and first == W.EV_CPU_SAMPLES:
        _add_cpu_samples(g, b)
    elif b.exp == 0 and ((first == W.EV_FREQUENCY and ver < 25) or
                         (first == W.EV_SYNC and ver >= 25)):
        _set_sync(g, b, ver)
    elif b.exp != 0:
        if ver == 22:
            raise _Broken("expected batch event, got an experimental batch", b.offset)
        g.exp_batches.append(b)
    elif first == W.EV_END_OF_GENERATION:
        raise _Broken("unexpectedly processing EndOfGeneration; broken trace?", b.offset)
    else:
        lst = g.batches.get(b.m)
        if lst is None:
            g.batches[b.m] = lst = []
            g.batch_ms.append(b.m)
        lst.append(b)


def _add_strings(g: _Gen, b: _Batch):
    data, pos, end = b.data, 1, len(b.data)
    strings = g.strings
    while pos < end:
        if data[pos] != W.EV_STRING:
            raise _Broken(f"expected string event, got {data[pos]}", b.offset)
        sid, pos = W.uvarint(data, pos + 1, end)
        if sid is None:
            raise _Broken("bad string ID", b.offset)
        n, pos = W.uvarint(data, pos, end)
        if n is None:
            raise _Broken("bad string length", b.offset)
        if n > W.MAX_STRING_SIZE:
            raise _Broken(f"invalid string size {n}, maximum is {W.MAX_STRING_SIZE}", b.offset)
        if pos + n > end:
            raise _Broken(f"failed to read full string: read {end - pos} but wanted {n}",
                          b.offset)
        if sid == 0 or sid in strings:
            raise _Broken(f"multiple strings with the same ID: id={sid}", b.offset)
        strings[sid] = data[pos:pos + n].decode("utf-8", "replace")
        pos += n


def _add_stacks(g: _Gen, b: _Batch):
    vals = W.uvarints(b.data)
    i, n = 1, len(vals)
    stacks, pcs = g.stacks, g.pcs
    while i < n:
        if vals[i] != W.EV_STACK:
            raise _Broken(f"expected stack event, got {vals[i]}", b.offset)
        if i + 2 >= n:
            raise _Broken("stack cut", b.offset)
        sid, nf = vals[i + 1], vals[i + 2]
        if nf > W.MAX_FRAMES_PER_STACK:
            raise _Broken(f"invalid stack size {nf}, maximum is {W.MAX_FRAMES_PER_STACK}",
                          b.offset)
        i += 3
        if i + 4 * nf > n:
            raise _Broken(f"reading stack {sid}'s frames: cut", b.offset)
        frames = vals[i:i + 4 * nf:4]
        for k in range(nf):
            pc = vals[i]
            if pc not in pcs:
                pcs[pc] = (vals[i + 1], vals[i + 2], vals[i + 3])
            i += 4
        if sid == 0 or sid in stacks:
            raise _Broken(f"multiple stacks with the same ID: id={sid}", b.offset)
        stacks[sid] = tuple(frames)
    # a varint cut at the end is an error too (uvarints stopped before it)
    if _varints_cut(b.data):
        raise _Broken("stack table cut", b.offset)


def _varints_cut(data) -> bool:
    return not W.uvarints_all(data)[1]


def _add_cpu_samples(g: _Gen, b: _Batch):
    vals = W.uvarints(b.data)
    if _varints_cut(b.data):
        raise _Broken("CPU samples cut", b.offset)
    i, n = 1, len(vals)
    while i < n:
        if vals[i] != W.EV_CPU_SAMPLE:
            raise _Broken(f"expected CPU sample event, got {vals[i]}", b.offset)
        if i + 5 >= n:
            raise _Broken("CPU sample cut", b.offset)
        ts, m, p, gid, stk = vals[i + 1:i + 6]
        g.cpu.append((ts, _s64(m), _s64(p), _s64(gid) if gid else NO_ID, stk))
        i += 6


def _set_sync(g: _Gen, b: _Batch, ver: int):
    vals = W.uvarints(b.data)
    if _varints_cut(b.data):
        raise _Broken("sync batch cut", b.offset)
    i, n = 0, len(vals)
    if ver >= 25:
        i = 1
    last = b.time
    while i < n:
        ev = vals[i]
        if ev == W.EV_FREQUENCY:
            if g.freq:
                raise _Broken("found multiple frequency events", b.offset)
            if i + 1 >= n:
                raise _Broken("frequency cut", b.offset)
            f = vals[i + 1]
            if not f:
                raise _Broken("invalid frequency 0", b.offset)
            g.freq = 1.0 / (float(f) / 1e9)
            i += 2
        elif ev == W.EV_CLOCK_SNAPSHOT and ver >= 25:
            if g.has_snap:
                raise _Broken("found multiple clock snapshot events", b.offset)
            if i + 4 >= n:
                raise _Broken("clock snapshot cut", b.offset)
            g.has_snap = True
            last += vals[i + 1]
            g.snap_time = last
            g.snap_mono, g.snap_sec, g.snap_nsec = vals[i + 2:i + 5]
            i += 5
        else:
            raise _Broken(f"expected frequency or clock snapshot event, got {ev}", b.offset)


def _finish_gen(g: _Gen, ver: int):
    if not g.freq:
        raise _Broken("no frequency event found", g.offset)
    if ver >= 25 and not g.has_snap:
        raise _Broken("no clock snapshot event found", g.offset)
    strings, pcs = g.strings, g.pcs
    for sid, stk in g.stacks.items():
        for pc in stk:
            fr = pcs.get(pc)
            if fr is None:
                raise _Broken(f"found unknown pc {pc:x} for stack {sid}", g.offset)
            if fr[0] and fr[0] not in strings:
                raise _Broken(f"found invalid func string ID {fr[0]} for stack {sid}", g.offset)
            if fr[1] and fr[1] not in strings:
                raise _Broken(f"found invalid file string ID {fr[1]} for stack {sid}", g.offset)
    freq = g.freq
    g.cpu = [(int(ts * freq), *rest) for ts, *rest in g.cpu]
    gosort.sort_by(g.cpu, key=lambda s: s[0])  # slices.SortFunc's order for equal times


# ---------------------------------------------------------------------------
# per-M cursors and their heap (batchcursor.go)
# ---------------------------------------------------------------------------
class _Cursor:
    """One M's batches of a generation, and its next event (typ, time, args)."""
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
                    raise _Broken("found invalid uvarint", self.offset)
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
            raise _Broken(f"found invalid event type: {typ}", self.offset)
        n = W.NARGS[typ]
        if not n:
            raise _Broken(f"found event without a timestamp: type={typ}", self.offset)
        if i + n >= len(vals):
            raise _Broken("found invalid uvarint", self.offset)
        self.typ = typ
        self.time = self.last_ts = int(vals[i + 1] * freq) + self.last_ts
        self.args = vals[i + 2:i + 1 + n]
        self.vpos = i + 1 + n
        return True


def _sift_up(h, i):
    while i > 0 and h[(i - 1) // 2].time > h[i].time:
        j = (i - 1) // 2
        h[j], h[i] = h[i], h[j]
        i = j
    return i


def _min3(h, i0, i1, i2):
    n = len(h)
    mi = i0
    mt = h[i0].time if i0 < n else (1 << 63) - 1
    if i1 < n and h[i1].time < mt:
        mt = h[i1].time
        mi = i1
    if i2 < n and h[i2].time < mt:
        mi = i2
    return mi


def _sift_down(h, i):
    while True:
        m = _min3(h, i, 2 * i + 1, 2 * i + 2)
        if m == i:
            return i
        h[i], h[m] = h[m], h[i]
        i = m


def _heap_insert(h, c):
    h.append(c)
    _sift_up(h, len(h) - 1)


def _heap_update(h, i):
    if _sift_up(h, i) != i:
        return
    _sift_down(h, i)


def _heap_remove(h, i):
    while i > 0:
        j = (i - 1) // 2
        h[j], h[i] = h[i], h[j]
        i = j
    h[0], h[-1] = h[-1], h[0]
    h.pop()
    _sift_down(h, 0)


def _sort_frontier(h):
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


# ---------------------------------------------------------------------------
# the ordering (order.go)
# ---------------------------------------------------------------------------
class _G:
    __slots__ = ("status", "sgen", "seq", "regions", "ranges")

    def __init__(self, status, sgen, seq=0):
        self.status = status
        self.sgen = sgen
        self.seq = seq
        self.regions = []
        self.ranges = []


class _P:
    __slots__ = ("status", "sgen", "seq", "ranges")

    def __init__(self, status, sgen, seq=0):
        self.status = status
        self.sgen = sgen
        self.seq = seq
        self.ranges = []


class _M:
    __slots__ = ("g", "p")

    def __init__(self, g=NO_ID, p=NO_ID):
        self.g = g
        self.p = p


_USER_GO = (True, True, True)  # M, P, G must all be present


def _need(m, p, g, mp, pp, gp):
    """validateCtx with M/P/G requirements: True = must have, False = must not have,
    None = may have."""
    if mp is True and m == NO_ID:
        raise _Broken("expected a thread but didn't have one", -1)
    if pp is True and p == NO_ID:
        raise _Broken("expected a proc but didn't have one", -1)
    if pp is False and p != NO_ID:
        raise _Broken("expected no proc but had one", -1)
    if gp is True and g == NO_ID:
        raise _Broken("expected a goroutine but didn't have one", -1)
    if gp is False and g != NO_ID:
        raise _Broken("expected no goroutine but had one", -1)


class _Order:
    def __init__(self, ver):
        self.ver = ver
        self.gs = {}
        self.ps = {}
        self.ms = {}
        self.tasks = {}
        self.gc_seq = 0
        self.gc_state = 0  # 0 undetermined, 1 not running, 2 running
        self.initial_gen = 0
        self.queue = deque()

    def advance(self, c: _Cursor, gen: _Gen) -> bool:
        """Try to let the event under cursor c through; queue what it makes."""
        gnum = gen.gen
        if not self.initial_gen:
            self.initial_gen = gnum
        m = c.m
        ms = c.ms  # the M's state, kept on its cursor once it exists (it never goes away)
        if ms is not None:
            p, g = ms.p, ms.g
        elif m == NO_ID:
            p = g = NO_ID
        else:
            ms = self.ms.get(m)
            if ms is None:
                ms = self.ms[m] = _M()
            c.ms = ms
            p, g = ms.p, ms.g
        typ, args = c.typ, c.args
        t = c.time
        q = self.queue
        gs, ps = self.gs, self.ps
        np_, ng = p, g  # the new context

        if typ == 16:  # GoStart (literal event numbers on the hot paths)
            gid = args[0]
            if gid >= _S64:
                gid -= _U64
            st = gs.get(gid)
            if st is None or st.status != 1 or st.sgen != gnum or args[1] != st.seq + 1:
                return False
            if m == NO_ID or p == NO_ID or g != NO_ID:
                _need(m, p, g, True, True, False)
            st.status = W.GO_RUNNING
            st.seq = args[1]
            ng = gid
            q.append((typ, t, m, p, g, args, None, gen))
        elif typ == 20 or typ == 19 or typ == 17:  # GoBlock, GoStop, GoDestroy
            if m == NO_ID or p == NO_ID or g == NO_ID:
                _need(m, p, g, True, True, True)
            st = gs.get(g)
            if st is None:
                raise _Broken(f"event {W.NAMES[typ]} for goroutine ({g}) that doesn't exist", -1)
            if st.status != W.GO_RUNNING:
                raise _Broken(f"{W.NAMES[typ]} event for goroutine that's not Running", -1)
            if typ == W.EV_GO_DESTROY:
                del gs[g]
            elif typ == W.EV_GO_STOP:
                st.status = W.GO_RUNNABLE
            else:
                st.status = W.GO_WAITING
            ng = NO_ID
            q.append((typ, t, m, p, g, args, None, gen))
        elif typ == 21:  # GoUnblock
            gid = args[0]
            if gid >= _S64:
                gid -= _U64
            st = gs.get(gid)
            if st is None or st.status != 4 or st.sgen != gnum or args[1] != st.seq + 1:
                return False
            st.status = W.GO_RUNNABLE
            st.seq = args[1]
            q.append((typ, t, m, p, g, args, None, gen))
        elif typ == W.EV_GO_CREATE or typ == W.EV_GO_CREATE_BLOCKED:
            _need(m, p, g, True, True, None)
            st = gs.get(g)
            if st is not None and st.status != W.GO_RUNNING:
                raise _Broken(f"{W.NAMES[typ]} event for goroutine that's not Running", -1)
            newg = _s64(args[0])
            if newg in gs:
                raise _Broken(f"tried to create goroutine ({newg}) that already exists", -1)
            gs[newg] = _G(W.GO_WAITING if typ == W.EV_GO_CREATE_BLOCKED else W.GO_RUNNABLE,
                          gnum)
            q.append((typ, t, m, p, g, args, None, gen))
        elif typ == 10:  # ProcStart
            pid = args[0]
            if pid >= _S64:
                pid -= _U64
            st = ps.get(pid)
            if st is None or st.status != 2 or st.sgen != gnum or args[1] != st.seq + 1 or \
                    p != NO_ID:
                return False
            if m == NO_ID:
                _need(m, p, g, True, False, None)
            st.status = W.PROC_RUNNING
            st.seq = args[1]
            np_ = pid
            q.append((typ, t, m, p, g, args, None, gen))
        elif typ == 11:  # ProcStop
            st = ps.get(p)
            if st is None:
                raise _Broken(f"event ProcStop for proc ({p}) that doesn't exist", -1)
            if st.status != W.PROC_RUNNING and st.status != W.PROC_SYSCALL:
                raise _Broken("ProcStop event for proc that's not Running or Syscall", -1)
            _need(m, p, g, True, True, None)
            st.status = W.PROC_IDLE
            np_ = NO_ID
            q.append((typ, t, m, p, g, args, None, gen))
        elif typ == W.EV_GO_SYSCALL_BEGIN:
            _need(m, p, g, True, True, True)
            st = gs.get(g)
            if st is None:
                raise _Broken(f"event GoSyscallBegin for goroutine ({g}) that doesn't exist", -1)
            if st.status != W.GO_RUNNING:
                raise _Broken("GoSyscallBegin event for goroutine that's not Running", -1)
            st.status = W.GO_SYSCALL
            pst = ps.get(p)
            if pst is None:
                raise _Broken(f"uninitialized proc {p} found during GoSyscallBegin", -1)
            pst.status = W.PROC_SYSCALL
            if pst.sgen != gnum or args[0] != pst.seq + 1:
                raise _Broken("failed to advance GoSyscallBegin: can't make sequence", -1)
            pst.seq = args[0]
            q.append((typ, t, m, p, g, args, None, gen))
        elif typ == W.EV_GO_SYSCALL_END:
            _need(m, p, g, True, True, True)
            st = gs.get(g)
            if st is None:
                raise _Broken(f"event GoSyscallEnd for goroutine ({g}) that doesn't exist", -1)
            if st.status != W.GO_SYSCALL:
                raise _Broken("GoSyscallEnd event for goroutine that's not Syscall", -1)
            st.status = W.GO_RUNNING
            pst = ps.get(p)
            if pst is None:
                raise _Broken(f"uninitialized proc {p} found during GoSyscallEnd", -1)
            if pst.status != W.PROC_SYSCALL:
                raise _Broken(f"expected proc {p} in state Syscall", -1)
            pst.status = W.PROC_RUNNING
            q.append((typ, t, m, p, g, args, None, gen))
        elif typ == W.EV_GO_SYSCALL_END_BLOCKED:
            if p != NO_ID:
                pst = ps.get(p)
                if pst is None:
                    raise _Broken(f"uninitialized proc {p} found during GoSyscallEndBlocked", -1)
                if pst.status == W.PROC_SYSCALL:
                    return False
            _need(m, p, g, True, None, True)
            st = gs.get(g)
            if st is None:
                raise _Broken(f"event GoSyscallEndBlocked for goroutine ({g}) that doesn't "
                              "exist", -1)
            if st.status != W.GO_SYSCALL:
                raise _Broken("GoSyscallEndBlocked event for goroutine that's not Syscall", -1)
            ng = NO_ID
            st.status = W.GO_RUNNABLE
            q.append((typ, t, m, p, g, args, None, gen))
        elif typ == W.EV_PROC_STEAL:
            pid = _s64(args[0])
            st = ps.get(pid)
            if st is None or (st.status != W.PROC_SYSCALL and
                              st.status != W.PROC_SYSCALL_ABANDONED) or \
                    st.sgen != gnum or args[1] != st.seq + 1:
                return False
            _need(m, p, g, True, None, None)
            old = st.status
            st.status = W.PROC_IDLE
            st.seq = args[1]
            if old == W.PROC_SYSCALL_ABANDONED:
                q.append((typ, t, m, p, g, args, old, gen))
            else:
                mid = _s64(args[2])
                if mid == m:
                    if p != pid:
                        raise _Broken(f"tried to self-steal proc {pid} (thread {mid}), but got "
                                      f"proc {p} instead", -1)
                    np_ = NO_ID
                else:
                    other = self.ms.get(mid)
                    if other is None:
                        raise _Broken(f"stole proc from non-existent thread {mid}", -1)
                    if other.p != pid:
                        raise _Broken(f"tried to steal proc {pid} from thread {mid}, but got "
                                      f"proc {other.p} instead", -1)
                    other.p = NO_ID
                q.append((typ, t, m, p, g, args, old, gen))
        elif typ == W.EV_GO_STATUS or typ == W.EV_GO_STATUS_STACK:
            gid, mid, status = _s64(args[0]), _s64(args[1]), args[2]
            if status >= 5:
                raise _Broken(f"invalid status for goroutine {gid}: {status}", -1)
            old = W.GO_STATE_OF[status]
            st = gs.get(gid)
            if st is not None:
                if st.status != status:
                    raise _Broken(f"inconsistent status for goroutine {gid}: old "
                                  f"{W.GO_STATUS_NAMES[st.status]} vs. new "
                                  f"{W.GO_STATUS_NAMES[status]}", -1)
                st.sgen, st.seq = gnum, 0
            elif gnum == self.initial_gen:
                gs[gid] = _G(status, gnum)
                old = "Undetermined"
            else:
                raise _Broken(f"found goroutine status for new goroutine after the first "
                              f"generation: id={gid} status={W.GO_STATUS_NAMES[status]}", -1)
            em, eg = m, g
            if status == W.GO_RUNNING:
                ng = gid
            elif status == W.GO_SYSCALL:
                if mid == NO_ID:
                    raise _Broken(f"found goroutine {gid} in syscall without a thread", -1)
                if mid == m:
                    if gnum != self.initial_gen and g != gid:
                        raise _Broken(f"inconsistent thread for syscalling goroutine {gid}: "
                                      f"thread has goroutine {g}", -1)
                    ng = gid
                else:
                    other = self.ms.get(mid)
                    if other is not None:
                        if other.g != gid:
                            raise _Broken(f"inconsistent thread for syscalling goroutine {gid}: "
                                          f"thread has goroutine {other.g}", -1)
                        eg = other.g
                    else:
                        self.ms[mid] = _M(gid, NO_ID)
                    em = mid
            q.append((typ, t, em, p, eg, args, old, gen))
        elif typ == W.EV_PROC_STATUS:
            pid, status = _s64(args[0]), args[1]
            if status >= 5:
                raise _Broken(f"invalid status for proc {pid}: {status}", -1)
            old = W.PROC_STATE_OF[status]
            st = ps.get(pid)
            if st is not None:
                if status == W.PROC_SYSCALL_ABANDONED and st.status == W.PROC_SYSCALL:
                    old = "Running"
                    args = [args[0], W.PROC_SYSCALL] + list(args[2:])
                elif status == W.PROC_SYSCALL_ABANDONED and \
                        st.status == W.PROC_SYSCALL_ABANDONED:
                    old = "Idle"
                elif st.status != status:
                    raise _Broken(f"inconsistent status for proc {pid}: old "
                                  f"{W.PROC_STATUS_NAMES[st.status]} vs. new "
                                  f"{W.PROC_STATUS_NAMES[status]}", -1)
                st.sgen, st.seq = gnum, 0
            else:
                ps[pid] = _P(status, gnum)
                old = "Undetermined" if gnum == self.initial_gen else "NotExist"
            if status == W.PROC_RUNNING or status == W.PROC_SYSCALL:
                np_ = pid
            em, ep, eg = m, p, g
            if status == W.PROC_SYSCALL_ABANDONED and old == "Running":
                found = False
                for mid, other in self.ms.items():
                    if other.p == pid:
                        em, ep, eg = mid, pid, other.g
                        found = True
                if not found:
                    raise _Broken(f"failed to find sched context for proc {pid} that's about "
                                  "to be stolen", -1)
            q.append((typ, t, em, ep, eg, args, old, gen))
        elif typ == W.EV_GO_CREATE_SYSCALL:
            _need(m, p, g, True, None, False)
            newg = _s64(args[0])
            if newg in gs:
                raise _Broken(f"tried to create goroutine ({newg}) in syscall that already "
                              "exists", -1)
            gs[newg] = _G(W.GO_SYSCALL, gnum)
            ng = newg
            q.append((typ, t, m, p, g, args, None, gen))
        elif typ == W.EV_GO_DESTROY_SYSCALL:
            _need(m, p, g, True, None, True)
            st = gs.get(g)
            if st is None:
                raise _Broken(f"event GoDestroySyscall for goroutine ({g}) that doesn't "
                              "exist", -1)
            if st.status != W.GO_SYSCALL:
                raise _Broken("GoDestroySyscall event for goroutine that's not Syscall", -1)
            del gs[g]
            ng = NO_ID
            if p != NO_ID:
                pst = ps.get(p)
                if pst is None:
                    raise _Broken(f"found invalid proc {p} during GoDestroySyscall", -1)
                if pst.status != W.PROC_SYSCALL:
                    raise _Broken(f"proc {p} in unexpected state during GoDestroySyscall", -1)
                pst.status = W.PROC_SYSCALL_ABANDONED
                np_ = NO_ID
                q.append((W.EV_PROC_STEAL, t, m, p, g, (p & (_U64 - 1), 0, 0), W.PROC_SYSCALL,
                          gen))
            q.append((typ, t, m, p, g, args, None, gen))
        elif typ == W.EV_GO_SWITCH or typ == W.EV_GO_SWITCH_DESTROY:
            _need(m, p, g, True, True, True)
            cur = gs.get(g)
            if cur is None:
                raise _Broken(f"event {W.NAMES[typ]} for goroutine ({g}) that doesn't exist", -1)
            if cur.status != W.GO_RUNNING:
                raise _Broken(f"{W.NAMES[typ]} event for goroutine that's not Running", -1)
            nextg = _s64(args[0])
            nst = gs.get(nextg)
            if nst is None or nst.status != W.GO_WAITING or nst.sgen != gnum or \
                    args[1] != nst.seq + 1:
                return False
            q.append((typ, t, m, p, g, args, None, gen))
            if typ == W.EV_GO_SWITCH:
                cur.status = W.GO_WAITING
                q.append((W.EV_GO_BLOCK, t, m, p, g, (0, 0), None, gen))
            else:
                del gs[g]
                q.append((W.EV_GO_DESTROY, t, m, p, g, (), None, gen))
            nst.status = W.GO_RUNNING
            nst.seq = args[1]
            ng = nextg
            q.append((W.EV_GO_START, t, m, p, NO_ID, (args[0], args[1]), None, gen))
        elif typ == W.EV_PROCS_CHANGE or typ == W.EV_GO_LABEL or typ == W.EV_USER_LOG:
            _need(m, p, g, True, True, True)
            q.append((typ, t, m, p, g, args, None, gen))
        elif typ == W.EV_HEAP_ALLOC or typ == W.EV_HEAP_GOAL:
            _need(m, p, g, True, True, None)
            q.append((typ, t, m, p, g, args, None, gen))
        elif typ == W.EV_STW_BEGIN or typ == W.EV_GC_MARK_ASSIST_BEGIN:
            _need(m, p, g, True, True, True)
            desc = args[0] if typ == W.EV_STW_BEGIN else 0
            st = gs.get(g)
            if st is None:
                raise _Broken(f"encountered event of type {typ} without known state for "
                              f"current goroutine {g}", -1)
            key = (typ, desc)
            if key in st.ranges:
                raise _Broken(f"discovered event already in-flight for when starting event "
                              f"{W.NAMES[typ]}", -1)
            st.ranges.append(key)
            q.append((typ, t, m, p, g, args, None, gen))
        elif typ == W.EV_STW_END or typ == W.EV_GC_MARK_ASSIST_END:
            _need(m, p, g, True, True, True)
            st = gs.get(g)
            if st is None:
                raise _Broken(f"encountered event of type {typ} without known state for "
                              f"current goroutine {g}", -1)
            desc = _end_range(st.ranges, _START_OF[typ])
            q.append((typ, t, m, p, g, args, desc, gen))
        elif typ == W.EV_GC_MARK_ASSIST_ACTIVE:
            gid = _s64(args[0])
            st = gs.get(gid)
            if st is None:
                raise _Broken(f"uninitialized goroutine {gid} found during "
                              "GCMarkAssistActive", -1)
            _active_range(st.ranges, (W.EV_GC_MARK_ASSIST_BEGIN, 0), gnum == self.initial_gen)
            q.append((typ, t, m, p, g, args, None, gen))
        elif typ == W.EV_GC_SWEEP_BEGIN:
            _need(m, p, g, True, True, None)
            pst = ps.get(p)
            if pst is None:
                raise _Broken(f"GCSweepBegin on unknown proc {p}", -1)
            key = (W.EV_GC_SWEEP_BEGIN, 0)
            if key in pst.ranges:
                raise _Broken("discovered event already in-flight for when starting event "
                              "GCSweepBegin", -1)
            pst.ranges.append(key)
            q.append((typ, t, m, p, g, args, None, gen))
        elif typ == W.EV_GC_SWEEP_ACTIVE:
            pid = _s64(args[0])
            pst = ps.get(pid)
            if pst is None:
                raise _Broken(f"encountered GCSweepActive for unknown proc {pid}", -1)
            _active_range(pst.ranges, (W.EV_GC_SWEEP_BEGIN, 0), gnum == self.initial_gen)
            q.append((typ, t, m, p, g, args, None, gen))
        elif typ == W.EV_GC_SWEEP_END:
            _need(m, p, g, True, True, None)
            pst = ps.get(p)
            if pst is None:
                raise _Broken(f"GCSweepEnd on unknown proc {p}", -1)
            _end_range(pst.ranges, W.EV_GC_SWEEP_BEGIN)
            q.append((typ, t, m, p, g, args, None, gen))
        elif typ == W.EV_GC_ACTIVE:
            seq = args[0]
            if gnum == self.initial_gen:
                if self.gc_state != 0:
                    raise _Broken("GCActive in the first generation isn't first GC event", -1)
                self.gc_seq, self.gc_state = seq, 2
                q.append((typ, t, m, p, g, args, None, gen))
            else:
                if seq != self.gc_seq + 1:
                    return False
                if self.gc_state != 2:
                    raise _Broken("encountered GCActive while GC was not in progress", -1)
                self.gc_seq = seq
                _need(m, p, g, True, True, True)
                q.append((typ, t, m, p, g, args, None, gen))
        elif typ == W.EV_GC_BEGIN:
            seq = args[0]
            if self.gc_state == 0:
                self.gc_seq, self.gc_state = seq, 2
                q.append((typ, t, m, p, g, args, None, gen))
            else:
                if seq != self.gc_seq + 1:
                    return False
                if self.gc_state == 2:
                    raise _Broken("encountered GCBegin while GC was already in progress", -1)
                self.gc_seq, self.gc_state = seq, 2
                _need(m, p, g, True, True, True)
                q.append((typ, t, m, p, g, args, None, gen))
        elif typ == W.EV_GC_END:
            seq = args[0]
            if seq != self.gc_seq + 1:
                return False
            if self.gc_state == 1:
                raise _Broken("encountered GCEnd when GC was not in progress", -1)
            if self.gc_state == 0:
                raise _Broken("encountered GCEnd when GC was in an undetermined state", -1)
            self.gc_seq, self.gc_state = seq, 1
            _need(m, p, g, True, True, True)
            q.append((typ, t, m, p, g, args, None, gen))
        elif typ == W.EV_USER_TASK_BEGIN:
            tid = args[0]
            if tid in self.tasks:
                raise _Broken(f"task ID conflict: {tid}", -1)
            parent = args[1]
            if parent == 0:
                parent = NO_TASK
                args = [tid, NO_TASK] + list(args[2:])
            name = gen.strings.get(args[2]) if args[2] else ""
            if name is None:
                raise _Broken(f"invalid string ID {args[2]} for UserTaskBegin event", -1)
            self.tasks[tid] = (name, parent)
            _need(m, p, g, True, True, True)
            q.append((typ, t, m, p, g, args, None, gen))
        elif typ == W.EV_USER_TASK_END:
            tid = args[0]
            info = self.tasks.pop(tid, None)
            x = (info[1], info[0]) if info is not None else (NO_TASK, "")
            _need(m, p, g, True, True, True)
            q.append((typ, t, m, p, g, args, x, gen))
        elif typ == W.EV_USER_REGION_BEGIN or typ == W.EV_USER_REGION_END:
            _need(m, p, g, True, True, True)
            name = gen.strings.get(args[1]) if args[1] else ""
            if name is None:
                raise _Broken(f"invalid string ID {args[1]} for {W.NAMES[typ]} event", -1)
            st = gs.get(g)
            if st is None:
                raise _Broken(f"encountered Ev{W.NAMES[typ]} without known state for current "
                              f"goroutine {g}", -1)
            r = (args[0], name)
            if typ == W.EV_USER_REGION_BEGIN:
                st.regions.append(r)
            elif st.regions:
                if st.regions[-1] != r:
                    raise _Broken(f"misuse of region in goroutine {g}: region end {r} when the "
                                  f"inner-most active region start event is "
                                  f"{st.regions[-1]}", -1)
                st.regions.pop()
            q.append((typ, t, m, p, g, args, None, gen))
        else:
            raise _Broken(f"bad event type found while ordering: {typ}", -1)

        if ms is not None:
            ms.p = np_
            ms.g = ng
        return True


def _active_range(ranges, key, initial):
    if initial:
        if key in ranges:
            raise _Broken(f"found named active range already in first gen: {key}", -1)
        ranges.append(key)
    elif key not in ranges:
        raise _Broken(f"resource is missing active range: {W.NAMES[key[0]]}", -1)


def _end_range(ranges, start):
    for i, r in enumerate(ranges):
        if r[0] == start:
            desc = r[1]
            ranges[i] = ranges[-1]
            ranges.pop()
            return desc
    raise _Broken(f"tried to end event {W.NAMES[start]}, but not in-flight", -1)


# ---------------------------------------------------------------------------
# the trace
# ---------------------------------------------------------------------------
def _wall(sec: int, nsec: int) -> str:
    """time.Unix(sec, nsec).Format(time.RFC3339Nano), in UTC."""
    t = datetime.fromtimestamp(sec, tz=timezone.utc) if sec < 253402300800 else None
    if t is None:
        return f"@{sec}.{nsec:09d}"
    sec += nsec // 1_000_000_000
    nsec %= 1_000_000_000
    t = datetime.fromtimestamp(sec, tz=timezone.utc)
    frac = f".{nsec:09d}".rstrip("0") if nsec else ""
    return t.strftime("%Y-%m-%dT%H:%M:%S") + frac + "Z"


class Trace:
    """One execution trace. Iterate it for its events (each iteration reads the trace
    again, one generation at a time); .error is then None or one line, "trace cut at byte
    N: why", when damage stopped it: the events before are those Go's reader gives.
    .version is the header's wire version ("go1.22", "go1.23" (written by go1.23 and
    go1.24), "go1.25", "go1.26" (go1.26 and go1.27)); .wire the same as an int (22...);
    .size the file's size in bytes when known."""

    def __init__(self, opener, version: int, size: Optional[int] = None):
        self._opener = opener
        self.wire = version
        self.version = f"go1.{version}"
        self.size = size
        self.error: Optional[str] = None
        self._frames = {}
        self._cur_offset = 16

    # -- the raw stream: (typ, time, m, p, g, args, extra, gen) after time fixing --
    def _raw(self):
        ver = self.wire
        f, src = self._opener()
        try:
            yield from self._raw_events(src, ver)
        except _Broken as e:
            off = e.offset if e.offset >= 0 else self._cur_offset
            self.error = f"trace cut at byte {off}: {e}"
        except (IndexError, KeyError, ValueError, TypeError, OverflowError) as e:
            # damage the checks above did not foresee: still one line, never a traceback
            self.error = (f"trace cut at byte {self._cur_offset}: undecodable data "
                          f"({type(e).__name__}: {e})")
        finally:
            if f is not None:
                f.close()

    def _read_gen_new(self, src, ver):
        """readGeneration (1.26+: ended by EndOfGeneration) -> _Gen or None at the end."""
        g = _Gen()
        g.offset = src.offset()
        n = 0
        while True:
            r = _read_batch(src)
            if r is None:
                if g.batches or n:
                    raise _Broken("incomplete generation found; trace likely truncated",
                                  src.offset())
                return None
            b, gen = r
            n += 1
            if g.gen == 0:
                g.gen = gen
            if b.data and b.data[0] == W.EV_END_OF_GENERATION and b.exp == 0:
                break
            if gen == 0:
                raise _Broken(f"invalid generation number {gen}", b.offset)
            if gen != g.gen:
                raise _Broken("broken trace: missing end-of-generation event, or generations "
                              "are interleaved", b.offset)
            if g.min_ts == 0 or b.time < g.min_ts:
                g.min_ts = b.time
            _process_batch(g, b, ver)
        _finish_gen(g, ver)
        return g

    def _read_gen_spill(self, src, ver, spill):
        """readGenerationWithSpill (< 1.26) -> (gen, spill, error)."""
        g = _Gen()
        g.offset = src.offset()
        if spill is not None:
            sgen, b = spill
            g.gen = sgen
            g.min_ts = b.time
            g.offset = b.offset
            _process_batch(g, b, ver)
            spill = None
        err = None
        while True:
            try:
                r = _read_batch(src)
            except _Broken as e:
                if g.gen != 0 and ver != 22:
                    err = e
                    break
                raise
            if r is None:
                break
            b, gen = r
            if gen == 0:
                raise _Broken(f"invalid generation number {gen}", b.offset)
            if g.gen == 0:
                g.gen = gen
            if gen == g.gen + 1:
                spill = (gen, b)
                break
            if gen != g.gen:
                raise _Broken("generations out of order", b.offset)
            if g.min_ts == 0 or b.time < g.min_ts:
                g.min_ts = b.time
            _process_batch(g, b, ver)
        _finish_gen(g, ver)
        return g, spill, err

    def _raw_events(self, src, ver):
        order = _Order(ver)
        queue = order.queue
        popleft = queue.popleft
        maxev = W.VERSION_MAX_EVENT[ver]
        last_ts = 0
        syncs = 0
        new_sync = ver >= 25
        spill = None
        spill_err = None
        gen = None
        self._cur_offset = 16
        stack_args, string_args = W.STACK_ARGS, W.STRING_ARGS
        sync_ev = W.EV_SYNC_EVENT

        # validateTableIDs: per event type, its (argument, is a stack) to look up, or None
        checks = [tuple([(i, True) for i in stack_args.get(t, ())] +
                        [(i, False) for i in string_args.get(t, ())]) or None
                  for t in range(256)]
        convert = self._convert

        frames = self._frames
        tspec = _TSPEC
        stack_arg = _STACK_ARG
        wire26 = ver >= 26
        mk = Event

        def fixed(ev):
            """ReadEvent's epilogue (validateTableIDs, then time made strictly increasing)
            and the Event; state transitions, nearly all of a trace, the short way (their
            table IDs are checked as they are looked up, in validateTableIDs' order)."""
            nonlocal last_ts
            typ, t, m, p, g, a, x, tbl = ev
            spec = tspec[typ]
            if spec is None:
                chk = checks[typ]
                if chk is not None and tbl is not None:
                    for i, is_stack in chk:
                        v = a[i]
                        if v and v not in (tbl.stacks if is_stack else tbl.strings):
                            raise _Broken(f"found invalid {'stack' if is_stack else 'string'} "
                                          f"ID {v} for event {W.NAMES[typ]}", -1)
                if t <= last_ts:
                    t = last_ts + 1
                last_ts = t
                return convert(ev, t)
            res, idsrc, frm, to, has_reason, tsm = spec
            si = stack_arg[typ]
            stack = ()
            if si >= 0:
                sid = a[si]
                if sid:
                    stack = tbl.stack_cache.get(sid)
                    if stack is None:
                        if sid not in tbl.stacks:
                            raise _Broken(f"found invalid stack ID {sid} for event "
                                          f"{W.NAMES[typ]}", -1)
                        stack = tbl.stack(sid, frames)
            if tsm == 2 and a[1] and a[1] not in tbl.stacks:  # GoCreate's new stack
                raise _Broken(f"found invalid stack ID {a[1]} for event {W.NAMES[typ]}", -1)
            if has_reason:
                reason = tbl.strings.get(a[0]) if a[0] else ""
                if reason is None:
                    raise _Broken(f"found invalid string ID {a[0]} for event {W.NAMES[typ]}",
                                  -1)
            else:
                reason = ""
            if t <= last_ts:
                t = last_ts + 1
            last_ts = t
            if idsrc == 0:
                rid = a[0]
                if rid >= _S64:
                    rid -= _U64
            elif idsrc == 2:
                rid = g
            else:
                rid = p
            if frm is None:  # ProcSteal, ProcStatus, GoStatus(Stack): what ordering saw
                if typ == W.EV_PROC_STEAL:
                    frm = "Idle" if x == W.PROC_SYSCALL_ABANDONED else "Running"
                elif typ == W.EV_PROC_STATUS:
                    frm, to = x, W.PROC_STATE_OF[a[1]]
                else:
                    frm, to = x, W.GO_STATE_OF[a[2]]
                    if not wire26:  # the go1.26 reader added the status's stack
                        tsm = 0
            if tsm == 0:
                tstack = ()
            elif tsm == 1:
                tstack = stack
            else:  # GoCreate: the new goroutine's stack
                tstack = tbl.stack(a[1], frames) if a[1] else ()
            return mk("StateTransition", t, m, p, g, stack, res, rid, frm, to, reason, tstack)

        frontier = []
        cpu = []
        advance = order.advance
        NARGS = W.NARGS
        freq = 1.0
        while True:
            while queue:
                yield fixed(popleft())
            if frontier and not cpu:
                c = frontier[0]
                nf = len(frontier)
                # the head stays the head while its next time is not above its children's
                # (heapUpdate's sift-down moves nothing then: min3 keeps the parent on ties)
                if nf > 2:
                    bound = frontier[1].time
                    if frontier[2].time < bound:
                        bound = frontier[2].time
                elif nf == 2:
                    bound = frontier[1].time
                else:
                    bound = _MAX_TIME
                self._cur_offset = c.offset
                gs = order.gs
                gnum = gen.gen
                while True:
                    # GoUnblock, GoStart and GoBlock, most of a trace, in their common case
                    # here (ordering's advance for them, without the call and the queue);
                    # all else, and anything unusual about these, through advance
                    ev = None
                    ms = c.ms
                    typ = c.typ
                    if ms is not None and (typ == 21 or typ == 16 or typ == 20):
                        a = c.args
                        if typ == 21:  # GoUnblock: no context to check
                            st = gs.get(a[0]) if a[0] < _S64 else None
                            if st is not None and st.status == 4 and st.sgen == gnum and \
                                    a[1] == st.seq + 1:
                                st.status = 1
                                st.seq = a[1]
                                ev = (21, c.time, c.m, ms.p, ms.g, a, None, gen)
                        elif typ == 16:  # GoStart: on an M with a P and no G
                            st = gs.get(a[0]) if a[0] < _S64 else None
                            if st is not None and st.status == 1 and st.sgen == gnum and \
                                    a[1] == st.seq + 1 and ms.p != NO_ID and ms.g == NO_ID:
                                st.status = 2
                                st.seq = a[1]
                                ev = (16, c.time, c.m, ms.p, NO_ID, a, None, gen)
                                ms.g = a[0]
                        else:  # GoBlock: the M's running G, with a P
                            g = ms.g
                            st = gs.get(g)
                            if st is not None and st.status == 2 and ms.p != NO_ID and \
                                    g != NO_ID:
                                st.status = 4
                                ev = (20, c.time, c.m, ms.p, g, a, None, gen)
                                ms.g = NO_ID
                    if ev is None and not advance(c, gen):
                        while queue:
                            yield fixed(popleft())
                        self._slow_advance(order, frontier, gen, freq, maxev)
                        break
                    # the cursor's next event first (a broken one stops the trace before
                    # the event just let through, as in Go's tryAdvance), inline while it
                    # stays in its batch
                    vals = c.vals
                    i = c.vpos
                    nv = len(vals)
                    typ = vals[i] if i < nv else 0
                    n = NARGS[typ] if typ <= maxev else 0
                    if n and i + n < nv:
                        c.typ = typ
                        c.time = c.last_ts = t = int(vals[i + 1] * freq) + (
                            c.last_ts or int(c.btime * freq))
                        c.args = vals[i + 2:i + 1 + n]
                        c.vpos = i + 1 + n
                    elif c.next_event(freq, maxev):
                        t = c.time
                        self._cur_offset = c.offset
                    else:
                        if ev is not None:
                            queue.append(ev)
                        _heap_remove(frontier, 0)
                        break
                    if t <= bound:
                        if ev is None:
                            while queue:
                                yield fixed(popleft())
                            continue
                        # fixed(ev) for the three, inline
                        et = ev[1]
                        if et <= last_ts:
                            et = last_ts + 1
                        if ev[0] == 16:
                            last_ts = et
                            yield mk("StateTransition", et, ev[2], ev[3], NO_ID, (),
                                     "Goroutine", a[0], "Runnable", "Running", "", ())
                            continue
                        if ev[0] == 21:
                            sid = a[2]
                            stack = ()
                            if sid:
                                stack = gen.stack_cache.get(sid)
                                if stack is None:  # not made yet (or invalid)
                                    yield fixed(ev)
                                    continue
                            last_ts = et
                            yield mk("StateTransition", et, ev[2], ev[3], ev[4], stack,
                                     "Goroutine", a[0], "Waiting", "Runnable", "", ())
                            continue
                        sid = a[1]
                        stack = gen.stack_cache.get(sid) if sid else ()
                        reason = gen.strings.get(a[0]) if a[0] else ""
                        if stack is None or reason is None:
                            yield fixed(ev)
                            continue
                        last_ts = et
                        yield mk("StateTransition", et, ev[2], ev[3], ev[4], stack,
                                 "Goroutine", ev[4], "Running", "Waiting", reason, stack)
                        continue
                    if ev is not None:
                        queue.append(ev)
                    # sift the head down (heapUpdate(0): sifting up from the root is a no-op)
                    k = 0
                    while True:
                        l = 2 * k + 1
                        if l >= nf:
                            break
                        mi, mt = k, t
                        lt = frontier[l].time
                        if lt < mt:
                            mi, mt = l, lt
                        if l + 1 < nf and frontier[l + 1].time < mt:
                            mi = l + 1
                        if mi == k:
                            break
                        frontier[k], frontier[mi] = frontier[mi], frontier[k]
                        k = mi
                    break
                continue
            if not frontier and not cpu:
                # the next generation
                if not new_sync:
                    if gen is not None:
                        yield fixed((sync_ev, last_ts, NO_ID, NO_ID, NO_ID, (), None, gen))
                        if spill_err is not None:
                            raise spill_err
                        if spill is None:
                            return
                    gen, spill, spill_err = self._read_gen_spill(src, ver, spill)
                elif ver < 26:
                    if spill_err is not None:
                        syncs += 1
                        yield fixed((sync_ev, last_ts, NO_ID, NO_ID, NO_ID, (syncs,), None, None))
                        raise spill_err
                    if gen is not None and spill is None:
                        syncs += 1
                        yield fixed((sync_ev, last_ts, NO_ID, NO_ID, NO_ID, (syncs,), None, None))
                        return
                    try:
                        gen, spill, spill_err = self._read_gen_spill(src, ver, spill)
                    except _Broken:
                        syncs += 1
                        yield fixed((sync_ev, last_ts, NO_ID, NO_ID, NO_ID, (syncs,), None, None))
                        raise
                else:
                    try:
                        gen = self._read_gen_new(src, ver)
                    except _Broken:
                        syncs += 1
                        yield fixed((sync_ev, last_ts, NO_ID, NO_ID, NO_ID, (syncs,), None, None))
                        raise
                    if gen is None:
                        syncs += 1
                        yield fixed((sync_ev, last_ts, NO_ID, NO_ID, NO_ID, (syncs,), None, None))
                        return
                self._cur_offset = gen.offset
                cpu = deque(gen.cpu)
                freq = gen.freq
                for mid in gen.batch_ms:
                    c = _Cursor(mid, gen.batches[mid])
                    if c.next_event(freq, maxev):
                        _heap_insert(frontier, c)
                if new_sync:
                    syncs += 1
                    yield fixed((sync_ev, int(gen.min_ts * freq), NO_ID, NO_ID, NO_ID, (syncs,),
                                 None, gen))
                continue
            if cpu and (not frontier or cpu[0][0] < frontier[0].time):
                ts, m, p, g, stk = cpu.popleft()
                yield fixed((W.EV_CPU_SAMPLE, ts, m, p, g, (stk,), None, gen))
                continue
            if not frontier:
                raise _Broken("broken trace: frontier is empty", self._cur_offset)
            if not self._try_advance(order, frontier, 0, gen, freq, maxev):
                self._slow_advance(order, frontier, gen, freq, maxev)

    def _slow_advance(self, order, frontier, gen, freq, maxev):
        """The head cannot go yet: try the others in time order (the rare path)."""
        self._cur_offset = frontier[0].offset
        _sort_frontier(frontier)
        for i in range(1, len(frontier)):
            if self._try_advance(order, frontier, i, gen, freq, maxev):
                return
        raise _Broken("broken trace: failed to advance", frontier[0].offset)

    def _try_advance(self, order, frontier, i, gen, freq, maxev):
        c = frontier[i]
        self._cur_offset = c.offset
        if not order.advance(c, gen):
            return False
        if c.next_event(freq, maxev):
            _heap_update(frontier, i)
        else:
            _heap_remove(frontier, i)
        return True

    def __iter__(self) -> Iterator[Event]:
        self.error = None
        return self._raw()

    def _convert(self, ev, t) -> Event:
        """A queued event (typ, time, m, p, g, args, extra, generation) as an Event, at
        its fixed time t."""
        typ, _, m, p, g, a, x, gen = ev
        if typ in _TRANSITIONS:
            si = _STACK_ARG[typ]
            if si >= 0 and a[si]:
                sid = a[si]
                stack = gen.stack_cache.get(sid) or gen.stack(sid, self._frames)
            else:
                stack = ()
            return self._transition(typ, t, m, p, g, a, x, gen, stack)
        frames = self._frames
        mk = Event
        kind = _KIND.get(typ, "Bad")
        stack = ()
        if typ == sync_ev:
            attrs = {}
            if self.wire >= 25:
                attrs["N"] = a[0]
                if gen is not None and gen.has_snap:
                    attrs["Trace"] = int(gen.snap_time * gen.freq)
                    attrs["Mono"] = gen.snap_mono
                    attrs["Wall"] = _wall(gen.snap_sec, gen.snap_nsec)
            return mk(kind, t, m, p, g, (), attrs=attrs)
        si = W.STACK_ARG.get(typ)
        if si is not None:
            stack = gen.stack(a[si], frames)
        elif typ == W.EV_CPU_SAMPLE:
            stack = gen.stack(a[0], frames)
        attrs = {}
        strings = gen.strings
        if kind == "Metric":
            attrs["Name"] = _METRIC_NAME[typ]
            attrs["Value"] = a[0]
        elif kind == "Label":
            attrs["Label"] = strings.get(a[0], "")
            attrs["Resource"] = f"Goroutine({g})"
        elif kind.startswith("Range"):
            if typ == W.EV_STW_BEGIN:
                attrs["Name"] = "stop-the-world (" + strings.get(a[0], "") + ")"
                attrs["Scope"] = f"Goroutine({g})"
            elif typ == W.EV_STW_END:
                attrs["Name"] = "stop-the-world (" + strings.get(x, "") + ")"
                attrs["Scope"] = f"Goroutine({g})"
            elif typ in (W.EV_GC_BEGIN, W.EV_GC_ACTIVE, W.EV_GC_END):
                attrs["Name"] = "GC concurrent mark phase"
                attrs["Scope"] = "None"
            elif typ in (W.EV_GC_SWEEP_BEGIN, W.EV_GC_SWEEP_ACTIVE, W.EV_GC_SWEEP_END):
                attrs["Name"] = "GC incremental sweep"
                attrs["Scope"] = "Proc(%d)" % (_s64(a[0]) if typ == W.EV_GC_SWEEP_ACTIVE
                                               else p)
            else:
                attrs["Name"] = "GC mark assist"
                attrs["Scope"] = "Goroutine(%d)" % (_s64(a[0])
                                                    if typ == W.EV_GC_MARK_ASSIST_ACTIVE
                                                    else g)
            if kind == "RangeEnd":
                attrs["Attributes"] = ({"bytes swept": a[0], "bytes reclaimed": a[1]}
                                       if typ == W.EV_GC_SWEEP_END else {})
        elif kind == "TaskBegin":
            attrs.update(ID=a[0], Parent=a[1], Type=strings.get(a[2], ""))
        elif kind == "TaskEnd":
            attrs.update(ID=a[0], Parent=x[0], Type=x[1])
        elif kind == "RegionBegin" or kind == "RegionEnd":
            attrs.update(Task=a[0], Type=strings.get(a[1], ""))
        elif kind == "Log":
            attrs.update(Task=a[0], Category=strings.get(a[1], ""),
                         Message=strings.get(a[2], ""))
        return mk(kind, t, m, p, g, stack, attrs=attrs)


    def _transition(self, typ, t, m, p, g, a, x, gen, stack):
        frames = self._frames
        res, rid, frm, to, reason, tstack = "Goroutine", g, None, None, "", ()
        if typ == W.EV_PROC_START:
            res, rid, frm, to = "Proc", _s64(a[0]), "Idle", "Running"
        elif typ == W.EV_PROC_STOP:
            res, rid, frm, to = "Proc", p, "Running", "Idle"
        elif typ == W.EV_PROC_STEAL:
            res, rid, to = "Proc", _s64(a[0]), "Idle"
            frm = "Idle" if x == W.PROC_SYSCALL_ABANDONED else "Running"
        elif typ == W.EV_PROC_STATUS:
            res, rid, frm, to = "Proc", _s64(a[0]), x, W.PROC_STATE_OF[a[1]]
        elif typ == W.EV_GO_CREATE or typ == W.EV_GO_CREATE_BLOCKED:
            rid, frm = _s64(a[0]), "NotExist"
            to = "Waiting" if typ == W.EV_GO_CREATE_BLOCKED else "Runnable"
            tstack = gen.stack(a[1], frames)
        elif typ == W.EV_GO_CREATE_SYSCALL:
            rid, frm, to = _s64(a[0]), "NotExist", "Syscall"
        elif typ == W.EV_GO_START:
            rid, frm, to = _s64(a[0]), "Runnable", "Running"
        elif typ == W.EV_GO_DESTROY:
            frm, to = "Running", "NotExist"
        elif typ == W.EV_GO_DESTROY_SYSCALL:
            frm, to = "Syscall", "NotExist"
        elif typ == W.EV_GO_STOP or typ == W.EV_GO_BLOCK:
            frm, to = "Running", ("Runnable" if typ == W.EV_GO_STOP else "Waiting")
            reason = gen.strings.get(a[0], "")
            tstack = stack
        elif typ == W.EV_GO_UNBLOCK or typ == W.EV_GO_SWITCH or typ == W.EV_GO_SWITCH_DESTROY:
            rid, frm, to = _s64(a[0]), "Waiting", "Runnable"
        elif typ == W.EV_GO_SYSCALL_BEGIN:
            frm, to = "Running", "Syscall"
            tstack = stack
        elif typ == W.EV_GO_SYSCALL_END:
            frm, to = "Syscall", "Running"
        elif typ == W.EV_GO_SYSCALL_END_BLOCKED:
            frm, to = "Syscall", "Runnable"
        else:  # GoStatus, GoStatusStack
            rid, frm, to = _s64(a[0]), x, W.GO_STATE_OF[a[2]]
            if self.wire >= 26:  # the go1.26 reader added the status's stack to the transition
                tstack = stack
        return Event("StateTransition", t, m, p, g, stack, res, rid, frm, to, reason, tstack)


sync_ev = W.EV_SYNC_EVENT


# ---------------------------------------------------------------------------
# opening
# ---------------------------------------------------------------------------
_OLD = "old-format execution trace (Go <= 1.21, header %r): not read; " \
       "this reader takes traces from Go 1.22 and later"


_HEADER = re.compile(rb"go 1\.(\d+) trace\x00+")


def _version(head: bytes) -> int:
    """The wire version of a trace's 16-byte header ("go 1.N trace" padded with NULs)."""
    if not head:
        raise TraceFormatError("not a Go execution trace: the file is empty")
    if head.startswith(b"\x1f\x8b"):
        raise TraceFormatError("not a Go execution trace: gzip data (a pprof profile?)")
    m = _HEADER.match(head)
    if m is None or len(head) < 16:
        raise TraceFormatError("not a Go execution trace: no 'go 1.N trace' header")
    v = int(m.group(1))
    if v <= 21:
        raise TraceFormatError(_OLD % head.rstrip(b"\x00").decode("ascii", "replace"))
    if v not in W.VERSION_MAX_EVENT or m.end() != 16:
        raise TraceFormatError("unknown or unsupported trace version go 1.%d" % v)
    return v


def read_trace(src) -> Trace:
    """A trace from a path, bytes, or a binary file object. Raises TraceFormatError (one
    line) when it is not a trace, an old-format one, or its header is unreadable. Reading
    the events happens when the Trace is iterated."""
    if isinstance(src, (bytes, bytearray, memoryview)):
        data = bytes(src)
        head = data[:16]
        v = _version(head)
        return Trace(lambda: (None, _Source(None, data, 16)), v, len(data))
    if hasattr(src, "read"):
        head = src.read(16)
        v = _version(head)
        used = []

        def opener():
            if used:  # a second pass over a file object: rewind if we can
                try:
                    src.seek(16)
                except (AttributeError, OSError, io.UnsupportedOperation):
                    raise TraceFormatError("the trace's file object cannot be read twice")
            used.append(1)
            return None, _Source(src)
        return Trace(opener, v)
    path = os.fspath(src)
    try:
        with open(path, "rb") as f:
            head = f.read(16)
        size = os.path.getsize(path)
    except OSError as e:
        raise TraceFormatError(f"cannot read {path}: {e.strerror or e}") from None
    v = _version(head)

    def opener():
        f = open(path, "rb")
        f.seek(16)
        return f, _Source(f)
    return Trace(opener, v, size)
