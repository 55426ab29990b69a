"""Summaries of an execution trace's event stream (exectrace): per goroutine and per P.

One pass over the events, in the order the reader yields them (`go tool trace -d=parsed`'s,
time order). Memory grows with the goroutines and Ps, not with the events: each goroutine
keeps its running sums, its last transition and (only for the one asked for) its timeline.

The model, in the trace's own words:
- a goroutine is in the state of its last StateTransition from the event's time on; an
  `Undetermined->X` transition (the status the runtime writes at each generation start)
  that repeats the state we already have is not a transition and continues the span;
- `transitions` counts the StateTransition events of the goroutine whose from-state is not
  Undetermined (real changes; statuses are not counted);
- time in Waiting is "blocked", keyed by the reason of the transition into it ("" from a
  status, which has none, is kept under "unknown"); Runnable is scheduler latency;
- the Ps a goroutine ran on are the event's P of each transition to Running, with the
  running time spent on each;
- spans still open at the end are closed at the trace's last event (or the window's end).

A window [lo, hi] (trace times, ns) clips every span and counts only the transitions in it;
the state at its end is the state at hi. Reading stops at the first event past hi.
"""
from __future__ import annotations

import heapq
import itertools
import re
from dataclasses import dataclass, field, fields
from operator import attrgetter
from typing import Iterable, Optional

from ..errors import UsageError
from ..exectrace.model import Event

GC_WORKER_FUNCTION = "runtime.gcBgMarkWorker"
MAX_TIMELINE = 200_000      # transitions kept for one goroutine's timeline
TOP_GAPS = 5                # longest runnable-waiting gaps kept per P
FAR_NS = 1 << 62            # a time no trace reaches: the open window's ends


@dataclass(slots=True)
class Transition:
    time: int
    from_state: str
    to_state: str
    reason: str
    stack: tuple          # the transition's stack (Frames), () where the trace has none
    m: int                # the event's M, P and G (who made the transition)
    p: int
    g: int

    def to_json(self) -> dict:
        return {"time_ns": self.time, "from": self.from_state, "to": self.to_state,
                "reason": self.reason, "m": self.m, "p": self.p, "g": self.g,
                "stack": [{"function": f.function, "file": f.file, "line": f.line,
                           "pc": f.pc} for f in self.stack]}


@dataclass(slots=True)
class GoroutineSummary:
    id: int
    first_ns: int = 0                    # its first event in the window
    created_ns: Optional[int] = None     # NotExist->Runnable in the trace
    created_by: Optional[int] = None     # the goroutine that made it (-1: none)
    created_stack: tuple = ()            # the creator's stack at the go statement
    start_function: str = ""             # where it starts (the creation's transition stack)
    running_ns: int = 0
    runnable_ns: int = 0
    syscall_ns: int = 0
    blocked_ns: dict = field(default_factory=dict)
    ps: dict = field(default_factory=dict)    # P -> running ns, in the order first run
    transitions: int = 0
    last_ev: object = None                    # the record of its last transition (or status)
    last_p: int = -1                          # the P and M it last ran on
    last_m: int = -1
    last_ran_ns: Optional[int] = None         # when it last stopped running
    gc_worker: bool = False
    timeline: Optional[list] = None
    # the walk's state
    state: str = "Undetermined"
    since: int = 0
    reason: str = ""
    on_p: int = -1

    @property
    def end_state(self) -> str:
        return self.state

    @property
    def last(self) -> Optional[Transition]:
        """Its last transition (when it made none, the last status that changed its state)."""
        if self.last_ev is None:
            return None
        _, time, m, p, g, _, _, _, frm, to, reason, tstack, _ = self.last_ev
        return Transition(time, frm, to, reason or "", tstack, m, p, g)

    @property
    def blocked_total_ns(self) -> int:
        return sum(self.blocked_ns.values())

    def parked_for_good(self) -> Optional[int]:
        """The time it parked (Running->Waiting) in the trace and never ran again, else None."""
        t = self.last
        if self.state == "Waiting" and t is not None and t.to_state == "Waiting" \
                and t.from_state == "Running":
            return t.time
        return None


@dataclass(slots=True)
class PSummary:
    id: int
    first_ns: int = 0
    running_ns: int = 0
    idle_ns: int = 0
    idle_spans: int = 0
    longest_idle_ns: int = 0
    gaps: list = field(default_factory=list)   # heap of (ns, start): idle while runnable waited
    waiting_idle_ns: int = 0                   # all such time
    gc_worker_ns: int = 0                      # running GC mark workers
    gc_assist_ns: int = 0                      # GC mark assists begun on this P
    gc_sweep_ns: int = 0                       # incremental sweeps on this P
    goroutines_run: int = 0                    # transitions to Running on this P
    state: str = "Undetermined"
    since: int = 0
    gap_since: Optional[int] = None

    @property
    def gc_ns(self) -> int:
        return self.gc_worker_ns + self.gc_assist_ns + self.gc_sweep_ns

    def utilisation(self) -> float:
        total = self.running_ns + self.idle_ns
        return self.running_ns / total if total else 0.0

    def longest_gaps(self) -> list:
        return sorted(self.gaps, reverse=True)


@dataclass
class TraceSummary:
    version: str = ""
    start_ns: Optional[int] = None      # the trace's first event
    end_ns: Optional[int] = None        # the last event read (or the window's end)
    window: Optional[tuple] = None      # (lo, hi) trace times, or None
    events: int = 0
    goroutines: dict = field(default_factory=dict)   # id -> GoroutineSummary
    ps: dict = field(default_factory=dict)           # id -> PSummary
    gc_mark_ns: int = 0                 # "GC concurrent mark phase" ranges
    stw_ns: int = 0                     # "stop-the-world (...)" ranges
    gc_cycles: int = 0
    error: Optional[str] = None         # where the reader stopped on damage

    @property
    def duration_ns(self) -> int:
        if self.start_ns is None or self.end_ns is None:
            return 0
        lo = self.start_ns if self.window is None else max(self.start_ns, self.window[0])
        return max(0, self.end_ns - lo)

    def by_blocked(self) -> list:
        """The goroutines, longest blocked first (then longest runnable, then id)."""
        return sorted(self.goroutines.values(),
                      key=lambda g: (-g.blocked_total_ns, -g.runnable_ns, g.id))


_UNITS = {"ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": 1_000_000_000}
_DUR = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(ns|us|µs|ms|s)?\s*$")


def parse_duration(text: str) -> int:
    m = _DUR.match(text)
    if not m:
        raise UsageError(f"not a time: {text!r} (a number with ns, us, ms or s; ns without)")
    return int(round(float(m[1]) * _UNITS[m[2] or "ns"]))


def parse_window(text: str) -> tuple:
    """'T0..T1' -> (t0, t1) in ns from the trace's start; either side may be empty."""
    if ".." not in text:
        raise UsageError(f"--window takes T0..T1 (e.g. 10ms..250ms), not {text!r}")
    a, b = text.split("..", 1)
    lo = parse_duration(a) if a.strip() else 0
    hi = parse_duration(b) if b.strip() else None
    if hi is not None and hi < lo:
        raise UsageError(f"--window {text}: its end is before its start")
    return lo, hi


def _scope(resource, rid, attrs) -> tuple:
    """(kind, id) of a range event's scope: ('Goroutine', 7), ('Proc', 1), (None, -1)."""
    if resource is not None and rid is not None:
        return resource, rid
    s = attrs.get("Scope") if attrs else None
    if isinstance(s, str):
        m = re.match(r"(\w+)\((-?\d+)\)", s)
        if m:
            return m[1], int(m[2])
    elif isinstance(s, tuple) and len(s) == 2:
        return s
    return None, -1


def _name(attrs) -> str:
    a = attrs or {}
    n = a.get("Name", a.get("name", a.get("Label", "")))
    return n if isinstance(n, str) else ""


def _records(events) -> Iterable:
    """An exectrace.Trace's records (no object per event), or any iterable of Events as
    records (Event's fields in its order)."""
    records = getattr(events, "records", None)
    if records is not None:
        return records()
    return map(_AS_RECORD, events)


_AS_RECORD = attrgetter(*(f.name for f in fields(Event)))


def summarize(events: Iterable, version: str = "", window: Optional[tuple] = None,
              timeline_for: Optional[int] = None, top_gaps: int = TOP_GAPS) -> TraceSummary:
    """One pass over the events (an exectrace.Trace, read as records, or any iterable of
    its Events).
    window: (t0, t1) in ns relative to the trace's first event (t1 None: to the end).
    timeline_for: the goroutine whose every transition is kept (GoroutineSummary.timeline)."""
    s = TraceSummary(version=version)
    gs = s.goroutines
    ps = s.ps
    lo = hi = None
    far = FAR_NS
    runnable = 0                # goroutines Runnable now
    idle_ps: set = set()        # Ps Idle now
    open_ranges: dict = {}      # (name, scope kind, scope id) -> (begin, P)
    t = None
    n = 0

    it = iter(_records(events))
    for ev in it:                       # the first event sets the window
        s.start_ns = t = ev[1]
        if window is not None:
            lo = t + window[0]
            hi = far if window[1] is None else t + window[1]
            s.window = (lo, None if window[1] is None else hi)
        else:
            lo, hi = -far, far
        it = itertools.chain((ev,), it)
        break
    for ev in it:
        kind, t, em, ep, eg, stack, res, rid, frm, to, ereason, tstack, attrs = ev
        if t > hi:
            t = hi
            break
        if t >= lo:
            n += 1
        if kind == "StateTransition":
            if res == "Goroutine":
                gid = rid
                g = gs.get(gid)
                if g is None:
                    g = gs[gid] = GoroutineSummary(gid, first_ns=t, since=t)
                    if gid == timeline_for:
                        g.timeline = []
                old = g.state
                if frm == "Undetermined" and old == to:
                    continue            # a generation's status: the span goes on
                # close the span in the old state (clipped to the window; t <= hi)
                d = g.since
                d = t - (d if d > lo else lo)
                if d < 0:
                    d = 0
                if old == "Running":
                    if d:
                        g.running_ns += d
                        if g.on_p >= 0:
                            g.ps[g.on_p] = g.ps.get(g.on_p, 0) + d
                            if g.gc_worker:
                                pp = ps.get(g.on_p)
                                if pp is not None:
                                    pp.gc_worker_ns += d
                    g.last_ran_ns = t
                    p = ep
                    if p >= 0:
                        g.last_p = p
                        g.last_m = em
                elif old == "Runnable":
                    g.runnable_ns += d
                    runnable -= 1
                    if runnable == 0:
                        for pid in idle_ps:
                            close_gap(ps[pid], t, lo, top_gaps)
                elif old == "Waiting":
                    if d:
                        r = g.reason or "unknown"
                        g.blocked_ns[r] = g.blocked_ns.get(r, 0) + d
                elif old == "Syscall":
                    g.syscall_ns += d
                g.state = to
                g.since = t
                if to == "Running":
                    p = ep
                    g.on_p = p
                    g.last_p = p
                    g.last_m = em
                    if t >= lo:
                        if p >= 0 and p not in g.ps:
                            g.ps[p] = 0
                        pp = ps.get(p)
                        if pp is not None:
                            pp.goroutines_run += 1
                elif to == "Waiting":
                    g.reason = ereason
                elif to == "Runnable":
                    runnable += 1
                    if runnable == 1:
                        for pid in idle_ps:
                            pp = ps[pid]
                            if pp.gap_since is None:
                                pp.gap_since = t
                    if frm == "NotExist":
                        note_creation(g, t, eg, stack, tstack)
                if frm != "Undetermined":
                    g.last_ev = ev
                    if t >= lo:
                        g.transitions += 1
                else:
                    note_status(g, ev)
                if g.timeline is not None and t >= lo and len(g.timeline) < MAX_TIMELINE:
                    g.timeline.append(Transition(t, frm, to, ereason or "",
                                                 tstack, em, ep, eg))
            elif res == "Proc":
                pid = rid
                pp = ps.get(pid)
                if pp is None:
                    pp = ps[pid] = PSummary(pid, first_ns=t, since=t)
                old = pp.state
                if frm == "Undetermined" and old == to:
                    continue
                d = span_ns(pp.since, t, lo)
                if old == "Running":
                    pp.running_ns += d
                elif old == "Idle":
                    pp.idle_ns += d
                    if d:
                        pp.idle_spans += 1
                        if d > pp.longest_idle_ns:
                            pp.longest_idle_ns = d
                    close_gap(pp, t, lo, top_gaps)
                    idle_ps.discard(pid)
                pp.state = to
                pp.since = t
                if to == "Idle":
                    idle_ps.add(pid)
                    if runnable > 0:
                        pp.gap_since = t
        elif kind == "RangeBegin" or kind == "RangeEnd" or kind == "RangeActive":
            range_event(s, open_ranges, kind, t, ep, res, rid, attrs, lo)
        elif kind == "Label":
            label_event(gs, eg, res, rid, attrs)
    s.events = n
    if t is None:
        return s
    finish(s, open_ranges, t, lo, window, top_gaps)    # t: the last event read, or hi
    return s


def span_ns(a: int, b: int, lo: int) -> int:
    """The time from a to b inside the window from lo (b is never past its end)."""
    a = a if a > lo else lo
    return b - a if b > a else 0


def close_gap(pp: PSummary, now: int, lo: int, top_gaps: int) -> None:
    """P pp's runnable-waiting gap (if one is open) ends at now: its time and the heap of
    its longest gaps."""
    if pp.gap_since is not None:
        d = span_ns(pp.gap_since, now, lo)
        if d > 0:
            pp.waiting_idle_ns += d
            item = (d, pp.gap_since)
            if len(pp.gaps) < top_gaps:
                heapq.heappush(pp.gaps, item)
            elif item > pp.gaps[0]:
                heapq.heapreplace(pp.gaps, item)
        pp.gap_since = None


def note_creation(g: GoroutineSummary, t: int, creator: int, stack, tstack) -> bool:
    """A NotExist->Runnable transition of g at t; True when it made g a GC worker."""
    g.created_ns = t
    g.created_by = creator
    g.created_stack = stack
    if tstack:
        g.start_function = tstack[0].function
        if g.start_function == GC_WORKER_FUNCTION and not g.gc_worker:
            g.gc_worker = True
            return True
    return False


def note_status(g: GoroutineSummary, ev: tuple) -> bool:
    """A status (Undetermined->X) of g that changed its state; True when it made g a GC
    worker. It is g's last transition while g made none (its last is a status or none)."""
    if g.last_ev is None or g.last_ev[8] == "Undetermined":
        g.last_ev = ev
    tstack = ev[11]
    if not g.gc_worker and tstack and any(f.function == GC_WORKER_FUNCTION for f in tstack):
        g.gc_worker = True      # a worker made before the trace, by its status
        return True
    return False


def range_event(s: TraceSummary, open_ranges: dict, kind: str, t: int, ep: int, res, rid,
                attrs, lo: int) -> None:
    """A RangeBegin/RangeEnd/RangeActive at t: the GC and stop-the-world ranges."""
    name = _name(attrs)
    if not (name.startswith("GC") or name.startswith("stop-the-world")):
        return
    sk, sid = _scope(res, rid, attrs)
    key = (name, sk, sid)
    if kind == "RangeEnd":
        begun = open_ranges.pop(key, None)
        if begun is not None:
            _account_range(s, name, sk, sid, begun, span_ns(begun[0], t, lo))
    elif kind == "RangeBegin":
        if name == "GC concurrent mark phase" and t >= lo:
            s.gc_cycles += 1
        open_ranges[key] = (t, ep)
    elif key not in open_ranges:    # active since before this generation
        open_ranges[key] = (t, ep)


def label_event(gs: dict, eg: int, res, rid, attrs) -> Optional[int]:
    """A Label event: the goroutine it made a GC worker ("GC (...)"), else None."""
    if eg >= 0 or rid is not None:
        gid = rid if res == "Goroutine" and rid is not None else eg
        if _name(attrs).startswith("GC ("):
            g = gs.get(gid)
            if g is not None and not g.gc_worker:
                g.gc_worker = True
                return gid
    return None


def finish(s: TraceSummary, open_ranges: dict, end: int, lo: Optional[int],
           window: Optional[tuple], top_gaps: int) -> None:
    """Close what is still open at end (the last event read, or the window's end) and drop
    the goroutines a window does not hold."""
    gs, ps = s.goroutines, s.ps
    s.end_ns = end
    if lo == -FAR_NS:
        lo = s.start_ns
    for g in gs.values():
        d = span_ns(g.since, end, lo)
        if g.state == "Running":
            g.running_ns += d
            if g.on_p >= 0 and d:
                g.ps[g.on_p] = g.ps.get(g.on_p, 0) + d
                if g.gc_worker and g.on_p in ps:
                    ps[g.on_p].gc_worker_ns += d
        elif g.state == "Runnable":
            g.runnable_ns += d
        elif g.state == "Waiting":
            if d:
                r = g.reason or "unknown"
                g.blocked_ns[r] = g.blocked_ns.get(r, 0) + d
        elif g.state == "Syscall":
            g.syscall_ns += d
    for pp in ps.values():
        d = span_ns(pp.since, end, lo)
        if pp.state == "Running":
            pp.running_ns += d
        elif pp.state == "Idle":
            pp.idle_ns += d
            if d:
                pp.idle_spans += 1
                pp.longest_idle_ns = max(pp.longest_idle_ns, d)
            close_gap(pp, end, lo, top_gaps)
    for (name, sk, sid), begun in open_ranges.items():
        _account_range(s, name, sk, sid, begun, span_ns(begun[0], end, lo))
    if window is not None:
        # goroutines that ended before the window or began after it are not in it
        for gid in [gid for gid, g in gs.items()
                    if (g.first_ns > end) or (g.state == "NotExist" and g.transitions == 0
                                              and (g.last_ev is None or g.last_ev[1] < lo))]:
            del gs[gid]


def _account_range(s: TraceSummary, name: str, sk, sid, begun: tuple, d: int) -> None:
    if not d:
        return
    if name == "GC concurrent mark phase":
        s.gc_mark_ns += d
    elif name.startswith("stop-the-world"):
        s.stw_ns += d
    elif sk == "Proc":
        pp = s.ps.get(sid)
        if pp is not None:
            pp.gc_sweep_ns += d
    elif name == "GC mark assist":
        pp = s.ps.get(begun[1])
        if pp is not None:
            pp.gc_assist_ns += d

