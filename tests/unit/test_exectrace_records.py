"""The reader's two ways out give the same trace: Trace.records() (plain tuples, what
`trace --json` and xref summarise from, no object per event) and iterating the Trace (the
Events that tests/unit/test_exectrace_unit.py and test_exectrace_gotests.py hold against
`go tool trace -d=parsed`). On every committed trace - the fixture's on four wire versions
and Go's own hand-written test traces (steals, syscalls, generation boundaries, failures) -
and on damaged copies of them (truncations, bit flips): the same events field by field,
the same damage line, and the same summary (every goroutine and P as `trace --json`
prints it) from records as from the Event list."""
import dataclasses
import gzip
import os
import random

import pytest

from gdb_go_ext.analysis.tracecolumns import summarize_trace
from gdb_go_ext.analysis.tracesummary import summarize
from gdb_go_ext.exectrace import Event, TraceFormatError, read_trace
from gdb_go_ext.views.trace import goroutine_json, p_json

DATA = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data",
                    "exectrace")
FIELDS = [f.name for f in dataclasses.fields(Event)]


def committed():
    """(name, bytes) of every committed trace."""
    out = []
    for name in sorted(os.listdir(DATA)):
        if name.endswith(".trace.gz"):
            with gzip.open(os.path.join(DATA, name)) as f:
                out.append((name, f.read()))
    gotests = os.path.join(DATA, "gotests")
    for name in sorted(os.listdir(gotests)):
        if name.endswith(".trace"):
            with open(os.path.join(gotests, name), "rb") as f:
                out.append(("gotests/" + name, f.read()))
    return out


TRACES = committed()


def summary_json(s) -> dict:
    return {"start": s.start_ns, "end": s.end_ns, "events": s.events, "error": s.error,
            "gc": (s.gc_mark_ns, s.stw_ns, s.gc_cycles),
            "goroutines": [goroutine_json(g) for g in s.goroutines.values()],
            "ps": [p_json(p) for p in s.ps.values()]}


def both_ways(data, window=None):
    """(records, events, error of each, summary from records, summary from the Events)."""
    tr = read_trace(data)
    recs = list(tr.records())
    rec_err = tr.error
    evs = list(tr)
    ev_err = tr.error
    by_records = summarize_trace(read_trace(data), window=window)
    by_events = summarize(evs, version=tr.version, window=window)
    by_events.error = ev_err
    return recs, evs, rec_err, ev_err, by_records, by_events


def check_same(data, window=None):
    recs, evs, rec_err, ev_err, by_records, by_events = both_ways(data, window)
    assert rec_err == ev_err
    assert len(recs) == len(evs)
    for r, e in zip(recs, evs):
        assert type(r) is tuple and len(r) == len(FIELDS)
        assert r == tuple(getattr(e, f) for f in FIELDS)
    assert summary_json(by_records) == summary_json(by_events)
    return len(evs)


def test_the_committed_traces_are_here():
    names = [n for n, _ in TRACES]
    assert len([n for n in names if n.endswith(".trace.gz")]) == 4
    assert len([n for n in names if n.startswith("gotests/")]) == 22


@pytest.mark.parametrize("name", [n for n, _ in TRACES])
def test_records_and_events_agree(name):
    data = dict(TRACES)[name]
    n = check_same(data)
    if name.endswith(".trace.gz"):
        assert n > 40
        check_same(data, window=(20_000, 120_000))     # clipped spans, counts in it


def damaged(seed=28, each=25):
    """Damaged copies (cut short, bits flipped) of each committed fixture trace."""
    rng = random.Random(seed)
    for name, data in TRACES:
        if not name.endswith(".trace.gz"):
            continue
        for _ in range(each):
            b = bytearray(data[:rng.randrange(17, len(data))] if rng.random() < 0.5 else data)
            for _ in range(rng.choice((1, 2, 8))):
                i = rng.randrange(16, len(b))
                b[i] ^= 1 << rng.randrange(8)
            yield bytes(b)


def test_records_and_events_agree_on_damaged_traces():
    runs = 0
    for data in damaged():
        try:
            check_same(data)
        except TraceFormatError:
            pass
        runs += 1
    assert runs == 100
