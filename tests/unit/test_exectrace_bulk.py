"""The bulk reader (exectrace/bulk.py, bulkorder.py, bulkmerge.py) gives the same trace as
the step-by-step reader: on every committed trace (the fixture's, written by real Go
programs on four wire versions, whose events tests/unit/test_exectrace_unit.py and
tests/integration/test_exectrace.py hold against `go tool trace -d=parsed`, and Go's own
hand-written test traces: steals, syscalls, sequence numbers across generations) and on
damaged copies, event for event, with the same damage line. The generations that must
go step by step (an event that has to wait for another M, a steal the columns do not
decide, a time that goes back) do, from the same ordering state; the heap's merge by a
sort equals the heap played run by run wherever the sort answers."""
import random

import numpy as np
import pytest

from gdb_go_ext.exectrace import TraceFormatError, read_trace
from gdb_go_ext.exectrace import wire as W
from gdb_go_ext.exectrace.bulkdecode import decode_generation
from gdb_go_ext.exectrace.bulkmerge import merge, merge_by_sort, stable_order
from gdb_go_ext.exectrace.bulk import Slices
from gdb_go_ext.exectrace.generation import Source, read_generation, \
    read_generation_with_spill

from test_exectrace_records import TRACES


def both(data, slice_events=None):
    """(step records, error, bulk records, error, generations read in bulk), the bulk
    reader ordering slice_events events at a time if given."""
    step = read_trace(data)
    step.bulk = False
    a = list(step.records())
    bulk = read_trace(data)
    if slice_events:
        bulk.bulk_slice = slice_events
    b = list(bulk.records())
    assert step.bulk_generations == 0
    return a, step.error, b, bulk.error, bulk.bulk_generations


def generations(data):
    ver = int(data[5:7])
    src = Source(None, data, 16)
    spill = None
    while True:
        if ver >= 26:
            g = read_generation(src, ver)
            if g is None:
                return
        else:
            g, spill, _ = read_generation_with_spill(src, ver, spill)
        yield g, ver
        if ver < 26 and spill is None:
            return


@pytest.mark.parametrize("name", [n for n, _ in TRACES])
def test_bulk_and_step_agree(name):
    data = dict(TRACES)[name]
    a, ea, b, eb, nbulk = both(data)
    assert ea == eb
    assert a == b
    if name.endswith(".trace.gz"):      # a real program's trace goes in bulk
        assert nbulk >= 1 and len(a) > 40


@pytest.mark.parametrize("slice_events", [1, 7, 1000])
def test_sliced_bulk_and_step_agree(slice_events, monkeypatch):
    """A generation ordered a slice at a time, each from the state the last left, reads
    the same as step by step on every committed trace; where a later slice must go step
    by step, the reader goes on from there (at least once here)."""
    resumed = []
    real = Slices._resume
    monkeypatch.setattr(Slices, "_resume",
                        lambda self, a, *args: (resumed.append(a), real(self, a, *args))[1])
    for name, data in TRACES:
        a, ea, b, eb, nbulk = both(data, slice_events)
        assert (a, ea) == (b, eb), name
        if name.endswith(".trace.gz"):
            assert nbulk >= 1
    if slice_events == 1:
        assert resumed


@pytest.mark.parametrize("cut", [1, 2, 5, 13])
def test_step_path_goes_on_from_any_slice(cut, monkeypatch):
    """Where a slice must go step by step (here: the cut-th of each generation made to),
    the step path goes on from its first event with every M's cursor and the heap as
    the reader's own loop leaves them, and the trace reads the same."""
    resumed = []
    real = Slices._slice

    def failing(self, a):
        if a == cut * self.size:
            resumed.append(a)
            return None
        return real(self, a)
    monkeypatch.setattr(Slices, "_slice", failing)
    for name, data in TRACES:
        a, ea, b, eb, _ = both(data, 3)
        assert (a, ea) == (b, eb), name
    assert len(resumed) >= 3


def test_sliced_bulk_and_step_agree_on_damaged_traces():
    rng = random.Random(2829)
    runs = 0
    for name, data in TRACES:
        if not name.endswith(".trace.gz"):
            continue
        for _ in range(10):
            b = bytearray(data)
            for _ in range(rng.choice((1, 2, 8))):
                i = rng.randrange(16, len(b))
                b[i] ^= 1 << rng.randrange(8)
            try:
                x, ex, y, ey, _ = both(bytes(b), rng.choice((3, 50, 400)))
            except TraceFormatError:
                continue
            assert (x, ex) == (y, ey)
            runs += 1
    assert runs >= 30


def test_fallback_generations_go_step_by_step():
    """Go's steal and sequence-number traces need the step path somewhere (an event
    waits for another M, or a steal of a P in a syscall the columns leave alone), and
    still read the same; others are taken whole in bulk."""
    stepped = bulked = 0
    for name, data in TRACES:
        if not name.startswith("gotests/go122-syscall-steal") and \
                name != "gotests/go122-confuse-seq-across-generations.trace":
            continue
        a, ea, b, eb, nbulk = both(data)
        assert (a, ea) == (b, eb)
        ngen = sum(1 for _ in generations(data))
        stepped += ngen - nbulk
        bulked += nbulk
    assert stepped >= 10 and bulked >= 1


def test_bulk_and_step_agree_on_damaged_traces():
    rng = random.Random(2828)
    runs = bulk_runs = 0
    for name, data in TRACES:
        if not name.endswith(".trace.gz"):
            continue
        for _ in range(40):
            b = bytearray(data[:rng.randrange(17, len(data))] if rng.random() < 0.5 else data)
            for _ in range(rng.choice((1, 2, 8))):
                i = rng.randrange(16, len(b))
                b[i] ^= 1 << rng.randrange(8)
            try:
                x, ex, y, ey, nbulk = both(bytes(b))
            except TraceFormatError:
                continue
            assert (x, ex) == (y, ey)
            runs += 1
            bulk_runs += nbulk > 0
    assert runs >= 120 and bulk_runs >= 40


def test_merge_by_sort_is_the_heaps_order_on_every_generation():
    answered = 0
    for name, data in TRACES:
        try:
            gens = list(generations(data))
        except Exception:       # damage the reader reports; not this test's business
            continue
        for g, ver in gens:
            d = decode_generation(g, W.VERSION_MAX_EVENT[ver])
            if d is None or not len(d.t):
                continue
            t = d.t
            back = np.flatnonzero(t[1:] < t[:-1]) + 1
            if len(back) and not np.isin(back, d.start).all():
                continue        # times that go back: the reader goes step by step
            by_sort = merge_by_sort(t, d.start)
            if by_sort is not None:
                answered += 1
                assert (by_sort == merge(t, d.start)).all(), name
    assert answered >= 15


@pytest.mark.parametrize("seed", range(40))
def test_merge_by_sort_on_many_ties(seed):
    """Ms whose times tie often (a 64 ns tick, two or three Ms at once): where the sort
    answers it is the heap's order; three Ms on one time leave it to the heap."""
    rng = np.random.default_rng(seed)
    nm = int(rng.integers(2, 5))
    lens = rng.integers(0, 60, nm)
    span = int(rng.integers(5, 200))
    t = np.concatenate([np.sort(rng.integers(0, span, k)) for k in lens]).astype(np.int64)
    start = np.concatenate([[0], np.cumsum(lens)]).astype(np.int64)
    heap = merge(t, start)
    assert sorted(heap.tolist()) == list(range(len(t)))
    by_sort = merge_by_sort(t, start)
    if by_sort is not None:
        assert by_sort.tolist() == heap.tolist()


def test_merge_by_sort_leaves_three_way_ties_to_the_heap():
    t = np.array([1, 5, 2, 5, 3, 5], dtype=np.int64)
    start = np.array([0, 2, 4, 6], dtype=np.int64)
    assert merge_by_sort(t, start) is None
    # the heap: M2 is the root when 5 comes, then M1 (moved to the root by heapRemove)
    assert merge(t.tolist(), start).tolist() == [0, 2, 4, 5, 3, 1]


def test_stable_order_is_a_stable_argsort():
    rng = np.random.default_rng(7)
    for top in (3, 1 << 10, 1 << 20, 1 << 40):
        k = rng.integers(-5, top, 5000)
        assert (stable_order(k) == np.argsort(k, kind="stable")).all()


def test_memory_budget_sends_big_generations_step_by_step():
    """A generation whose bulk read would take more than Trace.bulk_memory is read step
    by step: the same events, none of them in bulk."""
    data = dict(TRACES)["go1.26.6.trace.gz"]
    whole = read_trace(data)
    want = list(whole.records())
    assert whole.bulk_generations >= 1
    small = read_trace(data)
    small.bulk_memory = 0
    assert list(small.records()) == want and small.bulk_generations == 0
    blocks = read_trace(data)
    blocks.bulk_memory = 0
    rows = [r for b in blocks.blocks() for r in b.records()]
    assert rows == want and blocks.bulk_generations == 0


def test_memory_flag(tmp_path):
    from gdb_go_ext.errors import GoExtError
    from gdb_go_ext.views.trace import parse_size
    assert parse_size("2G") == 2 << 30 and parse_size("500m") == 500 << 20
    assert parse_size("1.5G") == int(1.5 * (1 << 30)) and parse_size("4096") == 4096
    with pytest.raises(GoExtError) as ei:
        parse_size("lots")
    assert "\n" not in str(ei.value)
