"""analysis/tracesummary on hand-made event streams (the arithmetic against -d=parsed of
real traces is tests/integration/test_trace_views.py), and the trace views' bad input."""
import gzip

import pytest

from gdb_go_ext.analysis.tracesummary import parse_window, summarize
from gdb_go_ext.errors import GoExtError, UsageError
from gdb_go_ext.exectrace import Event, Frame
from gdb_go_ext.views import catalog  # noqa: F401
from gdb_go_ext.views import registry, xref


def G(t, gid, frm, to, reason="", m=1, p=0, g=-1, stack=(), tstack=()):
    return Event("StateTransition", t, m, p, g, stack, "Goroutine", gid, frm, to, reason, tstack)


def P(t, pid, frm, to, m=1):
    return Event("StateTransition", t, m, -1, -1, (), "Proc", pid, frm, to, "")


def R(kind, t, name, scope, p=0, g=-1):
    return Event(kind, t, 1, p, g, (), attrs={"Name": name, "Scope": scope})


F = Frame("main.f", "/x/main.go", 7, 0x401000)


def stream():
    return [
        P(100, 0, "Undetermined", "Running"),
        P(100, 1, "Undetermined", "Idle"),
        G(100, 1, "Undetermined", "Running", p=0),
        G(110, 5, "NotExist", "Runnable", g=1, stack=(F,), tstack=(Frame("main.w", "/x/main.go", 3, 0x401100),)),
        G(120, 1, "Running", "Waiting", "chan receive", g=1, tstack=(F,)),
        G(130, 5, "Runnable", "Running", p=0),
        G(150, 5, "Running", "Syscall", g=5),
        G(170, 5, "Syscall", "Running", g=5, p=0),
        G(180, 5, "Running", "Waiting", "sleep", g=5),
        P(180, 0, "Running", "Idle"),
        G(200, 1, "Waiting", "Runnable", g=-1),       # 1 runnable while both Ps idle
        P(230, 1, "Idle", "Running"),
        G(230, 1, "Runnable", "Running", p=1),
        R("RangeBegin", 240, "GC mark assist", "Goroutine(1)", p=1, g=1),
        R("RangeEnd", 250, "GC mark assist", "Goroutine(1)", p=1, g=1),
        G(260, 7, "Undetermined", "Waiting", m=-1, p=-1),   # a status: no reason
        G(260, 5, "Undetermined", "Waiting", m=-1, p=-1),   # repeats: the span goes on
        G(300, 1, "Running", "NotExist", g=1, p=1),
    ]


def test_sums():
    s = summarize(stream(), version="go1.23")
    assert (s.start_ns, s.end_ns, s.events) == (100, 300, 18)
    g1, g5, g7 = s.goroutines[1], s.goroutines[5], s.goroutines[7]
    assert (g1.running_ns, g1.blocked_ns, g1.runnable_ns, g1.end_state, g1.transitions) == \
        (20 + 70, {"chan receive": 80}, 30, "NotExist", 4)
    assert g1.ps == {0: 20, 1: 70} and (g1.last_p, g1.last_m) == (1, 1)
    assert (g5.created_ns, g5.created_by, g5.start_function, g5.created_stack) == \
        (110, 1, "main.w", (F,))
    assert (g5.runnable_ns, g5.running_ns, g5.syscall_ns, g5.blocked_ns) == \
        (20, 20 + 10, 20, {"sleep": 120})
    assert g5.transitions == 5 and g5.parked_for_good() == 180
    assert g7.blocked_ns == {"unknown": 40} and g7.transitions == 0 and g7.last.time == 260
    assert g1.parked_for_good() is None
    p0, p1 = s.ps[0], s.ps[1]
    assert (p0.running_ns, p0.idle_ns, p0.idle_spans) == (80, 120, 1)
    # P0 idle from 180, goroutine 1 runnable 200..230: a 30 ns gap on each idle P; P1
    # idle from 100 while goroutine 5 was runnable 110..130
    assert p0.longest_gaps() == [(30, 200)] and p1.longest_gaps() == [(30, 200), (20, 110)]
    assert (p1.running_ns, p1.idle_ns, p1.gc_assist_ns) == (70, 130, 10)
    assert s.by_blocked()[0].id == 5


def test_window():
    s = summarize(stream(), window=parse_window("50..150"), timeline_for=5)
    assert s.window == (150, 250) and s.end_ns == 250
    g5 = s.goroutines[5]
    assert (g5.running_ns, g5.syscall_ns, g5.blocked_ns) == (10, 20, {"sleep": 70})
    assert g5.transitions == 3 and [t.time for t in g5.timeline] == [150, 170, 180]
    g1 = s.goroutines[1]
    assert g1.blocked_ns == {"chan receive": 50} and g1.running_ns == 20
    assert g1.end_state == "Running"


def test_window_words():
    assert parse_window("10ms..2.5s") == (10_000_000, 2_500_000_000)
    assert parse_window("..1us") == (0, 1000) and parse_window("5..") == (5, None)
    for bad in ("10ms", "a..b", "5..1"):
        with pytest.raises(UsageError):
            parse_window(bad)


def _ctx():
    def no_target():
        raise GoExtError("no target")
    return registry.Context(no_target)


def test_bad_files_are_one_line(tmp_path):
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    prof = tmp_path / "p.pb.gz"
    prof.write_bytes(gzip.compress(b"\x0a\x02\x08\x01"))
    text = tmp_path / "t.txt"
    text.write_text("hello\n")
    cases = [(["trace", str(empty)], "empty"), (["trace", str(prof)], "not an execution trace"),
             (["trace", str(tmp_path / "none")], "cannot read"),
             (["trace", str(text)], ""), (["trace", str(text), "--window", "x"], "T0..T1"),
             (["trace", str(text), "--window", "1x..2"], "not a time")]
    for argv, word in cases:
        with pytest.raises(GoExtError) as e:
            registry.run(_ctx(), argv)
        msg = str(e.value)
        assert "\n" not in msg.strip() and word in msg, (argv, msg)


def test_trace_header():
    assert xref.is_trace(b"go 1.22 trace\x00\x00\x00")
    assert xref.is_trace(b"go 1.27 trace\x00\x00\x00")
    assert not xref.is_trace(b"goroutine 1 [ru")
    assert not registry.VIEWS["trace"].needs_target and registry.VIEWS["xref"].needs_target


def test_bridge_cli_targetless():
    from delve_bridge import cli
    assert cli.targetless(["trace", "f"]) == ([], ["trace", "f"])
    assert cli.targetless(["--dlv", "x", "--debug", "trace", "f"]) == (["--dlv", "x", "--debug"],
                                                                       ["trace", "f"])
    assert cli.targetless(["core", "b", "c", "trace", "f"]) is None
    assert cli.targetless(["xref", "f"]) is None


def test_xref_trace_parked_summary():
    """go xref TRACE: the goroutines parked for good, counted per reason and state now,
    their ids as ranges (at most 8 runs, then …), instead of a line each."""
    assert xref.id_ranges([7, 3, 4, 5, 9, 10, 12]) == "3-5, 7, 9, 10, 12"
    assert xref.id_ranges(range(0, 40, 2)) == "0, 2, 4, 6, 8, 10, 12, 14, …"

    class S:
        start_ns = 1_000_000
    parked = [("chan receive", "chan receive", 3_000_000 + 10_000 * i, 20 + i) for i in range(50)]
    parked += [("sync", "sync.Mutex.Lock", 2_000_000, 90)]
    text = xref.parked_summary(S(), parked)
    lines = text.splitlines()
    assert lines[0] == "51 goroutines parked in the trace and never ran again (still waiting now):"
    assert lines[1].split() == ["50", "(chan", "receive)", "now", "chan", "receive", "at",
                                "+2ms..+2.49ms", "ids", "20-69"], lines[1]
    assert lines[2].split()[:2] == ["1", "(sync)"] and lines[2].endswith("id 90"), lines[2]
    assert len(lines) == 3 and xref.parked_summary(S(), []) == ""
