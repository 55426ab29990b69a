"""analysis/tracecolumns: the trace summary from the reader's columns (summarize_blocks)
equals summarize()'s over the Events of the same trace - whose events
tests/unit/test_exectrace_unit.py and test_exectrace_gotests.py hold against `go tool trace
-d=parsed` - on every committed trace and on damaged copies of them: with and without
windows (cutting the middle, empty, past the end), with a timeline, and with the events cut
into blocks anywhere (1, 7, 1000 events, one block). Every field the views print is compared
(summary_json, as `trace --json` prints it) and the rest of each goroutine and P besides
(stacks of creations and last transitions, timelines, gap heaps)."""
import dataclasses
import json

import numpy as np
import pytest

from gdb_go_ext.analysis.tracecolumns import summarize_blocks, summarize_trace
from gdb_go_ext.analysis.tracesummary import summarize
from gdb_go_ext.exectrace import Event, TraceFormatError, read_trace
from gdb_go_ext.exectrace.columns import RES_G, ST_TRANSITION, STATE_CODE, Block

from test_exectrace_records import TRACES, damaged, summary_json

SIZES = (1, 7, 1000, None)      # events a block (None: all in one)


def blocks_of(records, size):
    size = size or max(1, len(records))
    return [Block.from_records(records[i:i + size]) for i in range(0, len(records), size)]


def everything(s) -> tuple:
    """summary_json and every other field of the summary's goroutines and Ps."""
    def fields(o):
        d = {f.name: getattr(o, f.name) for f in dataclasses.fields(o)}
        for k in ("ps", "blocked_ns"):
            if k in d:
                d[k] = list(d[k].items())       # the order counts
        if "gaps" in d:
            d["gaps"] = sorted(d["gaps"])
        assert not numpy_scalars(d), (o.id, numpy_scalars(d))
        return d
    js = summary_json(s)
    json.dumps(js)      # plain numbers (no numpy scalars), as `trace --json` writes them
    return (js, s.window, s.version, [fields(g) for g in s.goroutines.values()],
            [fields(p) for p in s.ps.values()])


def numpy_scalars(x) -> list:
    if isinstance(x, np.generic):
        return [x]
    if isinstance(x, dict):
        x = list(x.items())
    if isinstance(x, (list, tuple)):
        return [y for v in x for y in numpy_scalars(v)]
    return []


def windows(events) -> list:
    if not events:
        return [None, (0, 0)]
    span = events[-1].time - events[0].time
    return [None, (20_000, 120_000), (span // 3, 2 * span // 3), (span // 2, None), (0, 0),
            (span // 4, span // 4), (span + 1, None), (span + 1, span + 50)]


def timelines(events) -> list:
    """No timeline, the goroutine with most transitions, the first goroutine, one unknown."""
    gs = [e.id for e in events
          if e.kind == "StateTransition" and e.resource == "Goroutine"]
    if not gs:
        return [None]
    busiest = max(set(gs), key=lambda g: (gs.count(g), -g))
    return [None, busiest, gs[0], 1 << 40]


def read(data):
    tr = read_trace(data)
    events = list(tr)
    return tr.version, events, list(read_trace(data).records())


@pytest.mark.parametrize("name", [n for n, _ in TRACES])
def test_columns_equal_summarize_on_the_committed_traces(name):
    version, events, records = read(dict(TRACES)[name])
    tls = timelines(events)
    for k, window in enumerate(windows(events)):
        tl = tls[k % len(tls)]
        want = everything(summarize(events, version=version, window=window, timeline_for=tl))
        for size in SIZES:
            if size == 1 and len(records) > 1000 and window not in (None, (0, 0)):
                continue        # one event a block: a few windows are enough on large traces
            got = summarize_blocks(blocks_of(records, size), version, window, tl)
            assert everything(got) == want, (window, tl, size)


def test_columns_equal_summarize_on_damaged_traces():
    """The 100 damaged copies of test_exectrace_records."""
    runs = 0
    for data in damaged():
        try:
            version, events, records = read(data)
        except TraceFormatError:
            continue
        runs += 1
        want = everything(summarize(events, version=version))
        for size in (7, None):
            assert everything(summarize_blocks(blocks_of(records, size), version)) == want
        tr = read_trace(data)
        s = summarize_trace(tr)
        assert s.error == tr.error and summary_json(s)["goroutines"] == want[0]["goroutines"]
    assert runs > 50


def lazy(records, allowed):
    """A block of the records whose record(i) raises unless allowed(i)."""
    b = Block.from_records(records)

    def record(i):
        if not allowed(i):
            raise AssertionError(f"record({i}) of a plain transition: {records[i][:11]}")
        return records[i]
    return Block(b.t, b.kind, b.m, b.p, b.g, b.res, b.rid, b.frm, b.to, b.reason, b.reasons,
                 record=record)


@pytest.mark.parametrize("name", ["go1.26.6.trace.gz", "gotests/go122-gc-stress.trace"])
def test_no_record_is_built_for_a_plain_transition(name):
    """The summary reads a goroutine's plain transitions (Runnable/Running/Waiting/Syscall
    to another of them: GoStart, GoBlock, GoUnblock, ...) from the columns only, but for
    its last one in the block."""
    version, events, records = read(dict(TRACES)[name])
    plain_states = [STATE_CODE[s] for s in ("Runnable", "Running", "Waiting", "Syscall")]
    calls = []
    blocks = []
    for part in [records[i:i + 500] for i in range(0, len(records), 500)]:
        b = Block.from_records(part)
        plain = (b.kind == ST_TRANSITION) & (b.res == RES_G) & np.isin(b.frm, plain_states) \
            & np.isin(b.to, plain_states)
        last = {}
        for i in np.flatnonzero(plain).tolist():
            last[int(b.rid[i])] = i
        allowed = set(np.flatnonzero(~plain).tolist()) | set(last.values())
        blocks.append(lazy(part, lambda i, ok=allowed: calls.append(i) or i in ok))
    got = summarize_blocks(blocks, version)
    assert everything(got) == everything(summarize(events, version=version))
    n_plain = sum(1 for r in records if r[0] == "StateTransition" and r[6] == "Goroutine"
                  and r[8] in ("Runnable", "Running", "Waiting", "Syscall")
                  and r[9] in ("Runnable", "Running", "Waiting", "Syscall"))
    assert n_plain > len(records) // 4 and len(calls) < len(records) - n_plain // 2


def G(t, gid, frm, to, reason="", p=0):
    return Event("StateTransition", t, 1, p, -1, (), "Goroutine", gid, frm, to, reason)


def test_a_status_replaces_only_a_status_as_the_last_transition():
    """A goroutine's last transition: its last real one; while it has made none, its last
    status that changed its state (two such statuses in a row: summarize() read a field
    that does not exist, g.last_frm, and raised AttributeError)."""
    events = [G(100, 7, "Undetermined", "Waiting"),
              G(200, 7, "Undetermined", "Runnable"),       # changes the state: no transition
              G(200, 8, "Undetermined", "Runnable"),
              G(300, 8, "Runnable", "Running"),
              G(400, 8, "Undetermined", "Waiting")]        # after a transition: not the last
    records = [tuple(getattr(e, f.name) for f in dataclasses.fields(Event)) for e in events]
    for s in [summarize(events)] + [summarize_blocks(blocks_of(records, n)) for n in (1, 2, 5)]:
        g7, g8 = s.goroutines[7], s.goroutines[8]
        assert (g7.last.time, g7.last.to_state, g7.end_state, g7.transitions) == \
            (200, "Runnable", "Runnable", 0)
        assert (g8.last.time, g8.last.from_state, g8.end_state, g8.transitions) == \
            (300, "Runnable", "Waiting", 1)
        assert g7.blocked_ns == {"unknown": 100} and g8.runnable_ns == 100
        assert everything(s) == everything(summarize(events))


def test_summarize_trace_takes_events_too():
    version, events, records = read(dict(TRACES)["go1.26.6.trace.gz"])
    assert everything(summarize_trace(events)) == everything(summarize(events))


def P(t, pid, frm, to):
    return Event("StateTransition", t, 1, -1, -1, (), "Proc", pid, frm, to, "")


def test_a_status_that_repeats_the_state_continues_the_span():
    """At a generation's start every goroutine and P gets a status; where it repeats the
    state it is no transition: the blocked time stays under the reason of the transition
    into Waiting, the P's idle span stays one span, and the gap goes on."""
    events = [P(100, 0, "Undetermined", "Idle"),
              G(100, 1, "Undetermined", "Running"),
              G(110, 2, "Undetermined", "Runnable"),
              G(120, 1, "Running", "Waiting", "chan receive"),
              P(150, 0, "Undetermined", "Idle"),                # the next generation
              G(150, 1, "Undetermined", "Waiting"),
              G(150, 2, "Undetermined", "Runnable"),
              G(170, 2, "Runnable", "Running", p=0),
              P(170, 0, "Idle", "Running"),
              G(190, 1, "Waiting", "Runnable", "")]
    records = [tuple(getattr(e, f.name) for f in dataclasses.fields(Event)) for e in events]
    for s in [summarize(events)] + [summarize_blocks(blocks_of(records, n)) for n in (1, 3, 5)]:
        g1, g2, p0 = s.goroutines[1], s.goroutines[2], s.ps[0]
        assert g1.blocked_ns == {"chan receive": 70} and g1.transitions == 2
        assert g2.runnable_ns == 60 and g2.transitions == 1
        assert (p0.idle_ns, p0.idle_spans, p0.longest_gaps(), p0.waiting_idle_ns) == \
            (70, 1, [(60, 110)], 60)
        assert everything(s) == everything(summarize(events))


def test_in_order_by_table_and_by_sort():
    """The pairs' sums and first-seen order are the same whether the pairs fit a table or
    are sorted (too many for a table), and as a plain walk finds them."""
    from gdb_go_ext.analysis.tracecolumns import TABLE_MAX, in_order
    rng = np.random.default_rng(28)
    a = np.sort(rng.integers(0, 50, 4000))
    b = rng.integers(0, 9, 4000)
    w = rng.integers(0, 1000, 4000)
    want = {}
    for x, y, v in zip(a.tolist(), b.tolist(), w.tolist()):
        want[(x, y)] = want.get((x, y), 0) + v
    half = len(a) // 2
    parts = [(a[:half], b[:half], w[:half], np.arange(half)),
             (a[half:], b[half:], w[half:], np.arange(half, len(a)))]
    small = in_order(50, 9, parts, lambda x, y: False)
    big = in_order(TABLE_MAX, 9, parts, lambda x, y: False)
    assert small == big == [(x, y, v) for (x, y), v in want.items()]
    known = in_order(50, 9, parts, lambda x, y: x % 2 == 0)   # the known first, any order
    assert sorted(known) == sorted(small)
    assert [p for p in known if p[0] % 2] == [p for p in small if p[0] % 2]


def test_a_full_timeline_stops_at_the_same_transition(monkeypatch):
    from gdb_go_ext.analysis import tracecolumns, tracesummary
    monkeypatch.setattr(tracesummary, "MAX_TIMELINE", 3)
    monkeypatch.setattr(tracecolumns, "MAX_TIMELINE", 3)
    version, events, records = read(dict(TRACES)["gotests/go122-gc-stress.trace"])
    tl = timelines(events)[1]
    want = summarize(events, version=version, timeline_for=tl)
    assert len(want.goroutines[tl].timeline) == 3
    for size in (7, None):
        got = summarize_blocks(blocks_of(records, size), version, timeline_for=tl)
        assert everything(got) == everything(want)


def test_a_large_block_is_walked_in_parts(monkeypatch):
    from gdb_go_ext.analysis import tracecolumns
    monkeypatch.setattr(tracecolumns, "PART", 5)
    version, events, records = read(dict(TRACES)["gotests/go122-gc-stress.trace"])
    tls = timelines(events)
    for window in windows(events)[:4]:
        want = everything(summarize(events, version=version, window=window, timeline_for=tls[1]))
        for size in (3, 1000, None):
            got = summarize_blocks(blocks_of(records, size), version, window, tls[1])
            assert everything(got) == want
