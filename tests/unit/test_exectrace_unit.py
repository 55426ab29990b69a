"""The execution-trace reader (gdb_go_ext/exectrace) on small real traces committed under
tests/data/exectrace: written by tests/fixtures/exectrace (mode "small") with go1.22.10
(wire 1.22), go1.24.11 (wire 1.23), go1.25.5 (1.25) and go1.26.6 (1.26), each with the
`go tool trace -d=parsed` (-d=1 before 1.24) output of the same toolchain, which is the
truth: every event must match it. Then damage: truncations and bit flips (never an
exception, never a hang, the events before the damage, one line in .error), an empty file,
a pprof profile, a Go 1.21 trace. The whole matrix's full fixture runs are in
tests/integration/test_exectrace.py."""
import gzip
import io
import os
import random
import signal
import sys
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import exectrace_truth as T  # noqa: E402
from gdb_go_ext.exectrace import Event, TraceFormatError, read_trace  # noqa: E402
from gdb_go_ext.binary.leb128 import uleb128_bytes  # noqa: E402
from gdb_go_ext.errors import GoExtError  # noqa: E402

DATA = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data",
                    "exectrace")
TOOLCHAINS = ("go1.22.10", "go1.24.11", "go1.25.5", "go1.26.6")
WIRE = {"go1.22.10": "go1.22", "go1.24.11": "go1.23", "go1.25.5": "go1.25",
        "go1.26.6": "go1.26"}


def trace_bytes(tc):
    with gzip.open(os.path.join(DATA, tc + ".trace.gz")) as f:
        return f.read()


def truth(tc):
    with gzip.open(os.path.join(DATA, tc + ".parsed.gz")) as f:
        return T.parse(f.read().decode())


@pytest.mark.parametrize("tc", TOOLCHAINS)
def test_every_event_matches_go_tool_trace(tc, tmp_path):
    data = trace_bytes(tc)
    want = truth(tc)
    kinds = {r["kind"] for r in want}
    assert {"StateTransition", "Sync", "TaskBegin", "RegionBegin", "Log"} <= kinds
    # the same events from bytes, a path and a file object
    path = tmp_path / "t.trace"
    path.write_bytes(data)
    for src in (data, str(path), io.BytesIO(data)):
        tr = read_trace(src)
        assert tr.version == WIRE[tc]
        ours = list(tr)
        assert tr.error is None
        assert T.compare(ours, want) == []
        assert len(ours) == len(want)
    # a second iteration reads it again
    assert T.compare(list(tr), want) == []


def test_event_api():
    tr = read_trace(trace_bytes("go1.26.6"))
    evs = list(tr)
    assert all(isinstance(e, Event) for e in evs)
    assert evs[0].kind == "Sync" and evs[0].attrs["N"] == 1 and evs[-1].kind == "Sync"
    times = [e.time for e in evs]
    assert times == sorted(times) and len(set(times)) == len(times)  # strictly increasing
    blocks = [e for e in evs if e.kind == "StateTransition" and e.to_state == "Waiting"
              and e.from_state == "Running"]
    assert blocks and all(e.reason and e.transition_stack for e in blocks)
    assert any(f.function == "main.chanPingPong" for e in blocks for f in e.transition_stack)
    task = [e for e in evs if e.kind == "TaskBegin"]
    assert task and task[0].attrs["Type"] == "small-task"
    log = [e for e in evs if e.kind == "Log"]
    assert log and (log[0].attrs["Category"], log[0].attrs["Message"]) == ("k", "v")


class _Hang(Exception):
    pass


def _alarm(signum, frame):
    raise _Hang("the reader hangs")


def _run_bounded(data, budget=2):
    """Read damaged bytes: -> (events, error). Fails on any exception but TraceFormatError
    at open, and on taking longer than budget seconds (SIGALRM, which interrupts a loop
    that yields nothing too)."""
    try:
        tr = read_trace(data)
    except TraceFormatError as e:
        assert "\n" not in str(e)
        return None, str(e)
    evs = []
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(budget)
    try:
        for e in tr:
            evs.append(e)
            assert len(evs) < 100000
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    if tr.error is not None:
        assert "\n" not in tr.error and tr.error.startswith("trace cut at byte ")
    return evs, tr.error


def _key(e):
    return (e.kind, e.time, e.m, e.p, e.g, e.resource, e.id, e.from_state, e.to_state)


def test_fuzz_truncations_and_bit_flips():
    """Deterministic seeds, ~5 s: every truncation point class and bit flips."""
    rng = random.Random(17)
    deadline = time.monotonic() + 5.0
    runs = 0
    for tc in TOOLCHAINS:
        data = trace_bytes(tc)
        full = [_key(e) for e in read_trace(data)]
        cuts = sorted(set([16, 17, 18, len(data) - 1] +
                          [rng.randrange(16, len(data)) for _ in range(100)]))
        for cut in cuts:
            evs, err = _run_bounded(data[:cut])
            runs += 1
            if err is None:
                # a cut trace never reads as whole, but for 1.26+ (whose generations end in
                # EndOfGeneration) a cut just after one, or after the header, is a valid
                # shorter trace to Go's reader too
                assert tc == "go1.26.6" and (cut == 16 or data[cut - 1] == 52), (tc, cut)
            # what comes out before the damage is what the whole trace has there (but the
            # closing Sync, which Go emits before it reports the error)
            got = [_key(e) for e in evs if e.kind != "Sync"]
            assert got == [k for k in full if k[0] != "Sync"][:len(got)], (tc, cut)
        for _ in range(200):
            b = bytearray(data)
            for _ in range(rng.choice((1, 1, 2, 8))):
                i = rng.randrange(16, len(b))
                b[i] ^= 1 << rng.randrange(8)
            _run_bounded(bytes(b))
            runs += 1
        if time.monotonic() > deadline:
            break
    assert runs >= 100


def test_not_a_trace_is_one_line(tmp_path):
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    for src, needle in ((str(empty), "empty"),
                        (gzip.compress(b"\x0a\x0b\x0a\x07samples\x12\x05count"), "gzip"),
                        (b"hello world, not a trace at all", "not a Go execution trace"),
                        (str(tmp_path / "missing"), "cannot read")):
        with pytest.raises(TraceFormatError) as ei:
            read_trace(src)
        msg = str(ei.value)
        assert needle in msg and "\n" not in msg
        assert isinstance(ei.value, GoExtError)


def test_go121_trace_is_old_format():
    head = open(os.path.join(DATA, "go1.21.13.head.bin"), "rb").read()
    assert head.startswith(b"go 1.21 trace\x00\x00\x00")  # written by go1.21.13
    with pytest.raises(TraceFormatError) as ei:
        read_trace(head)
    assert "old-format" in str(ei.value) and "1.21" in str(ei.value)
    assert "\n" not in str(ei.value)
    with pytest.raises(TraceFormatError, match="old-format"):
        read_trace(b"go 1.19 trace\x00\x00\x00" + b"\x00" * 32)


def _uvarints_one_by_one(data):
    """The varints of data by binary.Uvarint's rules, one at a time (wire.uvarint)."""
    from gdb_go_ext.exectrace import wire
    out, pos = [], 0
    while pos < len(data):
        v, nxt = wire.uvarint(data, pos, len(data))
        if v is None:
            break
        out.append(v)
        pos = nxt
    return out, pos == len(data)


def test_bulk_varints_match_one_by_one():
    from gdb_go_ext.exectrace import wire
    rng = random.Random(3)
    for _ in range(300):
        vals = [rng.choice((rng.randrange(128), rng.randrange(1 << 21), rng.randrange(1 << 64)))
                for _ in range(rng.randrange(1, 40))]
        data = b"".join(uleb128_bytes(v) for v in vals)
        cut = data[:rng.randrange(len(data) + 1)]
        assert wire.uvarints(data) == vals
        assert wire.uvarints_all(data) == (vals, True)
        assert wire.uvarints_all(cut) == _uvarints_one_by_one(cut)
    # overlong and overflowing varints stop the bulk decode where binary.Uvarint stops
    for bad in (b"\x80" * 10 + b"\x01", b"\xff" * 9 + b"\x02", b"\x05" + b"\x80" * 11):
        assert wire.uvarints_all(bad) == _uvarints_one_by_one(bad)



def test_frontier_sort_is_slices_sortfunc():
    """Go's reader sorts its frontier with slices.SortFunc (pdqsort, not stable): equal
    times must come out in its order. The truth: slices.SortFunc's permutations of 150
    arrays with many equal keys (13 to 119 elements: past its insertion sort), recorded
    from Go."""
    import json
    from gdb_go_ext.exectrace.gosort import sort_by
    with gzip.open(os.path.join(DATA, "slices_sortfunc.json.gz"), "rt") as f:
        cases = json.load(f)["cases"]
    assert len(cases) == 150
    for c in cases:
        items = list(enumerate(c["keys"]))
        sort_by(items, key=lambda it: it[1])
        assert [i for i, _ in items] == c["go_order"]


def test_every_timed_event_has_its_ordering_function():
    """order.ADVANCE (Go's orderingDispatch) has a function for every timed event type a
    wire version knows, and only those: the one table the reader's hot loop uses too."""
    from gdb_go_ext.exectrace import order, wire
    timed = {t for t in range(wire.VERSION_MAX_EVENT[26] + 1) if wire.NARGS[t]}
    timed.discard(wire.EV_CLOCK_SNAPSHOT)  # sync batch only, never ordered
    have = {t for t, f in enumerate(order.ADVANCE) if f is not order.advance_bad}
    assert have == timed
    assert order.ADVANCE[wire.EV_GO_BLOCK] is order.ADVANCE[wire.EV_GO_STOP] \
        is order.advance_go_stop_exec
