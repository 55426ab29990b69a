"""The trace views' progress by bytes: the reader reports the offset of each generation
as it begins (Trace.progress), and views/trace.summary_of shows it through the front
door's bar (in_bytes), closed on every exit; nothing where there is no terminal."""
import gzip
import os
import types

import pytest

from gdb_go_ext.analysis.tracecolumns import summarize_trace
from gdb_go_ext.exectrace import read_trace
from gdb_go_ext.views import trace as traceview
from gdb_go_ext.views.trace import goroutine_json

DATA = os.path.join(os.path.dirname(__file__), "..", "data", "exectrace")
MULTI = os.path.join(DATA, "gotests", "go122-task-across-generations.trace")


def reports(path):
    t = read_trace(path)
    calls = []
    t.progress = lambda done, total: calls.append((done, total))
    events = [e.kind for e in t]
    return calls, events, t


def test_each_generation_reported_in_order():
    size = os.path.getsize(MULTI)
    calls, events, _ = reports(MULTI)
    assert len(calls) >= 2, calls            # Go's test trace spans generations
    assert calls[0] == (16, size)            # the first generation follows the header
    offs = [d for d, _ in calls]
    assert offs == sorted(set(offs)) and offs[-1] < size
    assert all(total == size for _, total in calls)


def test_progress_changes_nothing(tmp_path):
    path = tmp_path / "t.trace"
    path.write_bytes(gzip.open(os.path.join(DATA, "go1.26.6.trace.gz")).read())
    calls, events, _ = reports(str(path))
    assert calls == [(16, os.path.getsize(path))]
    plain = [e.kind for e in read_trace(str(path))]
    assert events == plain
    a = summarize_trace(read_trace(str(path)))
    t = read_trace(str(path))
    t.progress = lambda done, total: None
    b = summarize_trace(t)
    assert [goroutine_json(g) for g in a.by_blocked()] == \
        [goroutine_json(g) for g in b.by_blocked()]


def test_bytes_are_not_counted_without_a_size():
    with open(MULTI, "rb") as f:
        t = read_trace(f)             # a file object: no size known, no calls
        calls = []
        t.progress = lambda done, total: calls.append(done)
        assert sum(1 for _ in t) > 0
    assert calls == []


class Bar:
    log: list = []

    def __init__(self, what, in_bytes=False):
        Bar.log.append(("open", what, in_bytes))

    def __enter__(self):
        return self

    def __call__(self, done, total):
        Bar.log.append((done, total))

    def __exit__(self, *exc):
        Bar.log.append(("close",))
        return False


def test_view_shows_a_bar_in_bytes_and_closes_it():
    Bar.log = []
    s = traceview.summary_of(types.SimpleNamespace(progress=Bar), MULTI)
    assert s.goroutines
    assert Bar.log[0] == ("open", "reading the trace", True)
    assert Bar.log[1] == (16, os.path.getsize(MULTI))
    assert Bar.log[-1] == ("close",)


def test_an_interrupt_closes_the_bar(monkeypatch):
    Bar.log = []

    def interrupted(trace, **kw):
        trace.progress(16, 100)
        raise KeyboardInterrupt
    monkeypatch.setattr(traceview, "summarize_trace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        traceview.summary_of(types.SimpleNamespace(progress=Bar), MULTI)
    assert Bar.log[-1] == ("close",)


def test_no_bar_without_a_terminal():
    s = traceview.summary_of(types.SimpleNamespace(progress=None), MULTI)
    assert s.goroutines
