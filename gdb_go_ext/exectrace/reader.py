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
from itertools import groupby, islice, starmap
from collections import deque
from datetime import datetime, timezone
from typing import Iterator, Optional

from . import wire as W
from .base import NO_ID, Broken, SIGN64, WRAP64, s64
from ..memtrim import trim
from .bulk import SLICE, BulkReader
from .bulkdecode import decode_generation
from .columns import Block
from .batchcursor import (BatchCursor, heap_insert, heap_remove, heap_sift_down, heap_update,
                          sort_frontier)
from .generation import read_generation, read_generation_with_spill, Source
from .model import Event, TraceFormatError
from .order import ADVANCE, Ordering

_MAX_TIME = (1 << 63) - 1
# A generation read in bulk takes about BULK_FIXED (two slices in flight) plus this many
# bytes per byte of its event batches (its columns and their merge) at its peak: measured
# 0.58 GB over the step path's for 35 MB of batches, 6.8 million events. One over
# Trace.bulk_memory (default BULK_MEMORY) is read step by step (about 100 MB whatever its
# size, at a fifth of the speed).
BULK_FIXED = 150 << 20
BULK_BYTES_PER_BYTE = 13
BULK_MEMORY = 300 << 20


def _is_block(x) -> bool:
    return type(x) is Block


def bulk_bytes(gen) -> int:
    """The bytes of a generation's event batches."""
    return sum(len(b.data) for bs in gen.batches.values() for b in bs)

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
    .size the file's size in bytes when known; .progress, where set with a size known,
    is called with (the offset of the generation read now, .size) as each begins."""

    def __init__(self, opener, version: int, size: Optional[int] = None):
        self._opener = opener
        self.wire = version
        self.version = f"go1.{version}"
        self.size = size
        self.error: Optional[str] = None
        self._frames = {}
        self._cur_offset = 16
        self.progress = None
        self.bulk = True            # read generations in bulk where they allow it
        self.bulk_memory = BULK_MEMORY  # bytes a generation read in bulk may take at most
        self.bulk_generations = 0   # how many the last read took in bulk
        self.bulk_slice = SLICE     # events of a generation ordered at a time in bulk

    # -- the raw stream: (typ, time, m, p, g, args, extra, gen) after time fixing --
    def _raw(self, expand: bool = False):
        ver = self.wire
        f, src = self._opener()
        try:
            yield from self._raw_events(src, ver, expand)
        except Broken as e:
            off = e.offset if e.offset >= 0 else self._cur_offset
            self.error = f"trace cut at byte {off}: {e}"
        except (IndexError, KeyError, ValueError, TypeError, OverflowError) as e:
            # damage the checks above did not foresee: still one line, never a traceback
            self.error = (f"trace cut at byte {self._cur_offset}: undecodable data "
                          f"({type(e).__name__}: {e})")
        finally:
            if f is not None:
                f.close()

    def _raw_events(self, src, ver, expand):
        order = Ordering(ver)
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
        sync_ev = W.EV_SYNC_EVENT

        checks = _id_checks()
        bulk = self._bulk_reader(checks) if self.bulk else None
        convert = self._convert
        record_of = self.record_of

        tspec = _TSPEC
        stack_arg = _STACK_ARG

        def fixed(ev):
            """ReadEvent's epilogue (validateTableIDs, then time made strictly increasing)
            and the event's record; state transitions, nearly all of a trace, the short way (their
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
                            raise Broken(f"found invalid {'stack' if is_stack else 'string'} "
                                          f"ID {v} for event {W.NAMES[typ]}", -1)
                if t <= last_ts:
                    t = last_ts + 1
                last_ts = t
                return convert(ev, t)
            res, idsrc, frm, to, has_reason, tsm = spec
            si = stack_arg[typ]
            if si >= 0:
                sid = a[si]
                if sid and sid not in tbl.stack_cache and sid not in tbl.stacks:
                    raise Broken(f"found invalid stack ID {sid} for event {W.NAMES[typ]}", -1)
            if tsm == 2 and a[1] and a[1] not in tbl.stacks:  # GoCreate's new stack
                raise Broken(f"found invalid stack ID {a[1]} for event {W.NAMES[typ]}", -1)
            if has_reason and a[0] and a[0] not in tbl.strings:
                raise Broken(f"found invalid string ID {a[0]} for event {W.NAMES[typ]}", -1)
            if t <= last_ts:
                t = last_ts + 1
            last_ts = t
            return record_of(ev, t)

        frontier = []
        cpu = []
        advance = order.advance
        advance_of = ADVANCE
        GO_START, GO_UNBLOCK, GO_BLOCK = W.EV_GO_START, W.EV_GO_UNBLOCK, W.EV_GO_BLOCK
        NARGS = W.NARGS
        freq = 1.0
        ifreq, dt_exact = 0, -1
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
                # the cursor's place in its batch, kept here while it is the head (written
                # back to it before anything else reads it)
                vals = c.vals
                nv = len(vals)
                i = c.vpos
                last = c.last_ts
                stop = False
                while True:
                    # the ordering's function for the event's kind, straight from the table
                    # once the M's state is on the cursor (Ordering.advance made it): it
                    # gives the event let through, and queues any more it makes
                    ms = c.ms
                    if ms is not None:
                        ev = advance_of[c.typ](order, c, gen, ms)
                    else:
                        ev = popleft() if advance(c, gen) else None
                    if ev is None:
                        c.vpos, c.last_ts = i, last
                        self._slow_advance(order, frontier, gen, freq, maxev)
                        break
                    # the cursor's next event first (a broken one stops the trace before
                    # the event just let through, as in Go's tryAdvance), inline while it
                    # stays in its batch
                    typ = vals[i] if i < nv else 0
                    n = NARGS[typ] if typ <= maxev else 0
                    if n and i + n < nv:
                        c.typ = typ
                        dt = vals[i + 1]
                        c.time = last = t = (
                            dt * ifreq if dt < dt_exact else int(dt * freq)) + (
                            last or int(c.btime * freq))
                        c.args = vals[i + 2:i + 1 + n]
                        i += 1 + n
                    else:
                        c.vpos, c.last_ts = i, last
                        if c.next_event(freq, maxev):
                            t = c.time
                            self._cur_offset = c.offset
                            vals = c.vals
                            nv = len(vals)
                            i = c.vpos
                            last = c.last_ts
                        else:       # the M's last: the event goes out, then the heap
                            heap_remove(frontier, 0)
                            stop = True
                    if not stop and t > bound:  # another M's turn after this event
                        c.vpos, c.last_ts = i, last
                        heap_sift_down(frontier, 0)  # heapUpdate(0): sifting up is a no-op
                        stop = True
                    # the event now; GoStart, GoUnblock and GoBlock, most of a trace,
                    # converted here in their common case (fixed() when a stack or a
                    # string is not at hand yet)
                    typ = ev[0]
                    a = ev[5]
                    if typ == GO_START and a[0] < SIGN64:
                        et = ev[1]
                        if et <= last_ts:
                            et = last_ts + 1
                        last_ts = et
                        yield ("StateTransition", et, ev[2], ev[3], NO_ID, (),
                               "Goroutine", a[0], "Runnable", "Running", "", (), {})
                    elif typ == GO_UNBLOCK and a[0] < SIGN64 and \
                            (stack := gen.stack_cache.get(a[2]) if a[2] else ()) is not None:
                        et = ev[1]
                        if et <= last_ts:
                            et = last_ts + 1
                        last_ts = et
                        yield ("StateTransition", et, ev[2], ev[3], ev[4], stack,
                               "Goroutine", a[0], "Waiting", "Runnable", "", (), {})
                    elif typ == GO_BLOCK and \
                            (stack := gen.stack_cache.get(a[1]) if a[1] else ()) is not None \
                            and (reason := gen.strings.get(a[0]) if a[0] else "") is not None:
                        et = ev[1]
                        if et <= last_ts:
                            et = last_ts + 1
                        last_ts = et
                        yield ("StateTransition", et, ev[2], ev[3], ev[4], stack,
                               "Goroutine", ev[4], "Running", "Waiting", reason, stack, {})
                    else:
                        yield fixed(ev)
                    while queue:
                        yield fixed(popleft())
                    if stop:
                        break
                continue
            if not frontier and not cpu:
                nxt = yield from self._next_generation(src, ver, gen, spill, spill_err, syncs,
                                                       last_ts, fixed)
                if nxt is None:
                    return
                gen, spill, spill_err, syncs = nxt
                frontier, cpu, freq, ifreq, dt_exact = self._start_generation(gen, maxev)
                if new_sync:
                    syncs += 1
                    yield fixed((sync_ev, int(gen.min_ts * freq), NO_ID, NO_ID, NO_ID, (syncs,),
                                 None, gen))
                elif not frontier and not cpu:
                    # go1.22-1.24 go on to the frontier without looping: a generation with
                    # no events is the end (Go's go123-sync test: "frontier is empty")
                    raise Broken("broken trace: frontier is empty", self._cur_offset)
                if bulk is not None and frontier and \
                        BULK_FIXED + bulk_bytes(gen) * BULK_BYTES_PER_BYTE <= \
                        self.bulk_memory:
                    trim()      # the last generation's free pages back first
                    slices = bulk.generation(gen, order, maxev, ver, last_ts,
                                             self.bulk_slice)
                    if slices is not None:
                        for blk in slices:      # each slice's block, let go once given
                            last_ts = int(blk.t[-1])
                            self._cur_offset = slices.offset
                            if expand:  # its records, for records() and iteration
                                yield from blk.records()
                            else:
                                yield blk
                            blk = None
                        if slices.resume is None:
                            self.bulk_generations += 1
                            frontier = []
                            cpu.clear()     # the blocks have the CPU samples too
                        else:           # the rest step by step
                            frontier, cpu = slices.resume(freq, maxev)
                            self._cur_offset = frontier[0].offset
                        slices = None
                continue
            if cpu and (not frontier or cpu[0][0] < frontier[0].time):
                ts, m, p, g, stk = cpu.popleft()
                yield fixed((W.EV_CPU_SAMPLE, ts, m, p, g, (stk,), None, gen))
                continue
            if not frontier:
                raise Broken("broken trace: frontier is empty", self._cur_offset)
            if not self._try_advance(order, frontier, 0, gen, freq, maxev):
                self._slow_advance(order, frontier, gen, freq, maxev)

    def _next_generation(self, src, ver, gen, spill, spill_err, syncs, last_ts, fixed):
        """The next generation (gen, spill, spill_err, syncs) after gen, None at the end
        of the trace; the Sync events the reader of ver gives between generations
        (through fixed, at last_ts) yielded on the way (generation.go's readGeneration,
        reader.go's ReadEvent at a generation's end)."""
        new_sync = ver >= 25
        sync_ev = W.EV_SYNC_EVENT
        if not new_sync:
            if gen is not None:
                yield fixed((sync_ev, last_ts, NO_ID, NO_ID, NO_ID, (), None, gen))
                if spill_err is not None:
                    raise spill_err
                if spill is None:
                    return None
            gen, spill, spill_err = read_generation_with_spill(src, ver, spill)
        elif ver < 26:
            if spill_err is not None:
                syncs += 1
                yield fixed((sync_ev, last_ts, NO_ID, NO_ID, NO_ID, (syncs,), None, None))
                raise spill_err
            if gen is not None and spill is None:
                syncs += 1
                yield fixed((sync_ev, last_ts, NO_ID, NO_ID, NO_ID, (syncs,), None, None))
                return None
            try:
                gen, spill, spill_err = read_generation_with_spill(src, ver, spill)
            except Broken:
                syncs += 1
                yield fixed((sync_ev, last_ts, NO_ID, NO_ID, NO_ID, (syncs,), None, None))
                raise
        else:
            try:
                gen = read_generation(src, ver)
            except Broken:
                syncs += 1
                yield fixed((sync_ev, last_ts, NO_ID, NO_ID, NO_ID, (syncs,), None, None))
                raise
            if gen is None:
                syncs += 1
                yield fixed((sync_ev, last_ts, NO_ID, NO_ID, NO_ID, (syncs,), None, None))
                return None
        return gen, spill, spill_err, syncs

    def _start_generation(self, gen, maxev):
        """(frontier, cpu, freq, ifreq, dt_exact) of a generation read: a cursor on each
        M's batches, heaped by their first event's time (reader.go's ReadEvent on a new
        generation), its CPU samples, and its tick frequency."""
        self._cur_offset = gen.offset
        if self.progress is not None and self.size:
            self.progress(gen.offset, self.size)
        cpu = deque(gen.cpu)
        freq = gen.freq
        # an integral frequency (64 ns per tick, Go 1.22+ on Linux) scales a time
        # delta by an int multiply, exactly float64(dt) * freq while below 2**53
        ifreq = int(freq) if freq.is_integer() and freq >= 1 else 0
        dt_exact = (1 << 53) // ifreq if ifreq else -1
        frontier: list = []
        for mid in gen.batch_ms:
            c = BatchCursor(mid, gen.batches[mid])
            if c.next_event(freq, maxev):
                heap_insert(frontier, c)
        return frontier, cpu, freq, ifreq, dt_exact

    def _slow_advance(self, order, frontier, gen, freq, maxev):
        """The head cannot go yet: try the others in time order (the rare path)."""
        self._cur_offset = frontier[0].offset
        sort_frontier(frontier)
        for i in range(1, len(frontier)):
            if self._try_advance(order, frontier, i, gen, freq, maxev):
                return
        raise Broken("broken trace: failed to advance", frontier[0].offset)

    def _try_advance(self, order, frontier, i, gen, freq, maxev):
        c = frontier[i]
        self._cur_offset = c.offset
        if not order.advance(c, gen):
            return False
        if c.next_event(freq, maxev):
            heap_update(frontier, i)
        else:
            heap_remove(frontier, i)
        return True

    def _bulk_reader(self, checks):
        return BulkReader(self.record_of, _KIND, _TSPEC, checks, decode_generation,
                          self._frames)

    def __iter__(self) -> Iterator[Event]:
        return starmap(Event, self.records())

    def records(self) -> Iterator[tuple]:
        """The events as plain tuples, Event's fields in its order (kind, time, m, p, g,
        stack, resource, id, from_state, to_state, reason, transition_stack, attrs):
        the same stream as iterating, without an object per event (what summaries read)."""
        self.error = None
        self.bulk_generations = 0
        return self._raw(expand=True)

    def blocks(self, size: int = 1 << 16) -> Iterator[Block]:
        """The events as columns (columns.Block), in the same order: a generation read in
        bulk as it is, the rest a run of records at a time."""
        self.error = None
        self.bulk_generations = 0
        for is_block, run in groupby(self._raw(), key=_is_block):
            if is_block:
                for b in run:
                    yield b
                    b = None    # a generation's block is not kept while the next is read
                continue
            while True:
                rows = list(islice(run, size))
                if not rows:
                    break
                yield Block.from_records(rows)

    def record_of(self, ev, t) -> tuple:
        """The record of a let-through event (typ, time, m, p, g, args, extra, generation)
        at its fixed time t, its table IDs known good."""
        typ, _, m, p, g, a, x, tbl = ev
        spec = _TSPEC[typ]
        if spec is None:
            return self._convert(ev, t)
        res, idsrc, frm, to, has_reason, tsm = spec
        frames = self._frames
        si = _STACK_ARG[typ]
        stack = ()
        if si >= 0 and a[si]:
            stack = tbl.stack_cache.get(a[si]) or tbl.stack(a[si], frames)
        reason = (tbl.strings[a[0]] if a[0] else "") if has_reason else ""
        if idsrc == 0:
            rid = a[0]
            if rid >= SIGN64:
                rid -= WRAP64
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
                if self.wire < 26:  # the go1.26 reader added the status's stack
                    tsm = 0
        if tsm == 0:
            tstack = ()
        elif tsm == 1:
            tstack = stack
        else:  # GoCreate: the new goroutine's stack
            tstack = tbl.stack(a[1], frames) if a[1] else ()
        return ("StateTransition", t, m, p, g, stack, res, rid, frm, to, reason, tstack, {})

    def _convert(self, ev, t) -> tuple:
        """A queued event (typ, time, m, p, g, args, extra, generation) as a record, at
        its fixed time t."""
        typ, _, m, p, g, a, x, gen = ev
        frames = self._frames
        kind = _KIND.get(typ, "Bad")
        stack = ()
        if typ == W.EV_SYNC_EVENT:
            attrs = {}
            if self.wire >= 25:
                attrs["N"] = a[0]
                if gen is not None and gen.has_snap:
                    attrs["Trace"] = int(gen.snap_time * gen.freq)
                    attrs["Mono"] = gen.snap_mono
                    attrs["Wall"] = _wall(gen.snap_sec, gen.snap_nsec)
            return (kind, t, m, p, g, (), None, None, None, None, None, (), attrs)
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
                attrs["Scope"] = "Proc(%d)" % (s64(a[0]) if typ == W.EV_GC_SWEEP_ACTIVE
                                               else p)
            else:
                attrs["Name"] = "GC mark assist"
                attrs["Scope"] = "Goroutine(%d)" % (s64(a[0])
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
        return (kind, t, m, p, g, stack, None, None, None, None, None, (), attrs)




# ---------------------------------------------------------------------------
# opening
# ---------------------------------------------------------------------------
_OLD = "old-format execution trace (Go <= 1.21, header %r): not read; " \
       "this reader takes traces from Go 1.22 and later"


_HEADER = re.compile(rb"go 1\.(\d+) trace\x00+")


def _id_checks() -> list:
    """validateTableIDs: per event type, its (argument, is a stack) to look up, or None."""
    stack_args, string_args = W.STACK_ARGS, W.STRING_ARGS
    return [tuple([(i, True) for i in stack_args.get(t, ())] +
                  [(i, False) for i in string_args.get(t, ())]) or None
            for t in range(256)]


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
        return Trace(lambda: (None, Source(None, data, 16)), v, len(data))
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
            return None, Source(src)
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
        return f, Source(f)
    return Trace(opener, v, size)
