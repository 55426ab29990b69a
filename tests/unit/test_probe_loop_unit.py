"""The one probe loop (runtime/probes.py: watch_calls, run by gdb and the bridge alike)
over a scripted execution control (target.base.Control), on the goroutines
fixture's memory images: real call sites, real g structs, real return addresses.

What the loop guarantees whatever the debugger: a return breakpoint goes in once,
the first time a call site is seen; the probe ends at max-hits, the timeout, an
interrupt, the program's exit or a stop not ours; and on every way out (an
exception, a refused breakpoint, Ctrl-C, the timeout) every breakpoint is removed
and the control's finish runs, its leftovers in the report. A control that
evaluates the map condition itself (Delve) and one that hands every hit over (gdb)
give the same hits.
"""
import json
import os
import sys

import pytest

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # tests/
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)

from gdb_go_ext.errors import GoExtError  # noqa: E402
from gdb_go_ext.binary import types as T  # noqa: E402
from gdb_go_ext.runtime import probes as P  # noqa: E402
from gdb_go_ext.target import base as B  # noqa: E402
from test_probes_unit import (MAP_ADDR, OTHER_MAP, call_sites, gotype, image, new_watch,  # noqa: E402,F401
                              probe, regs, zeroval)


class Now:
    """The loop's monotonic clock, moved by the script."""

    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


class FakeControl:
    """A scripted program. Each step is what happens next while it runs:
    ("at", Regs) a thread reaches Regs.pc (stops there if a breakpoint of ours is
    there, else runs past), ("tick", s) time passes, ("raise", exc) the debugger
    fails, or a reason (EXITED, STOPPED, SIGNAL, INTERRUPT) that resume returns.
    server_side: the condition is evaluated here (Delve) rather than by the on-hit (gdb)."""

    def __init__(self, steps, now, server_side=False):
        self.steps = list(steps)
        self.now = now
        self.server_side = server_side
        self.bps = {}          # address -> (on_hit, condition)
        self.added = []
        self.log = []
        self.refuse = {}       # address -> reason
        self.refused = []
        self.stuck = set()     # addresses whose breakpoint cannot be removed
        self.finish_says = []

    def begin(self):
        self.log.append("begin")

    def add_breakpoint(self, addr, on_hit, condition=None):
        assert self.log[-1:] != ["finish"] and "remove_all" not in self.log
        assert addr not in self.bps, "a second breakpoint at %#x" % addr
        if addr in self.refuse:
            self.refused.append(addr)
            raise GoExtError(self.refuse[addr])
        self.bps[addr] = (on_hit, condition)
        self.added.append(addr)

    def resume(self, deadline):
        self.log.append("resume")
        while True:
            if self.now() >= deadline:
                return B.TIMEOUT
            if not self.steps:
                return B.EXITED
            step = self.steps.pop(0)
            if step[0] == "at":
                r = step[1]
                bp = self.bps.get(r.pc)
                if bp is None:
                    continue
                on_hit, cond = bp
                if self.server_side and cond is not None and getattr(r, cond.register) != cond.value:
                    continue
                if on_hit(r):
                    return B.HIT
            elif step[0] == "tick":
                self.now.t += step[1]
            elif step[0] == "raise":
                raise step[1]
            else:
                return step[0]

    def remove_all(self):
        self.log.append("remove_all")
        left = ["breakpoint at %#x stuck" % a for a in sorted(self.bps) if a in self.stuck]
        self.bps = {a: v for a, v in self.bps.items() if a in self.stuck}
        return left

    def finish(self):
        self.log.append("finish")
        return list(self.finish_says)


def _setup(image, max_hits=None):
    i64 = gotype(image, "int64", T.INT)
    rt, probes, w = new_watch(image, i64, max_hits=max_hits)
    a2 = probe(probes, "runtime.mapaccess2_fast64")
    return w, a2, call_sites(image)


def _call(a, site, key, found, rbx=MAP_ADDR):
    """An entry on the map rbx by the goroutine of a call site, then its return."""
    g, _, slot, ret, _ = site
    return [("at", regs(a.address, slot, 0, rbx, key, 0, g)),
            ("at", regs(ret, slot + 8, 0, int(found), 0, 0, g))]


def _run(control, w, timeout=10.0):
    stopped_by, returns = P.watch_calls(control, w, timeout, monotonic=control.now)
    return stopped_by, returns, P.report(w, stopped_by, "map[int64]int", returns)


def _assert_clean(c):
    assert c.bps == {} and c.log[0] == "begin" and c.log[-2:] == ["remove_all", "finish"]


@pytest.mark.parametrize("server_side", [False, True], ids=["gdb-like", "delve-like"])
def test_to_max_hits_with_return_breakpoints_once(image, server_side):
    w, a2, sites = _setup(image, max_hits=4)
    s0, s1 = sites[0], sites[1]
    steps = (_call(a2, s0, 1, True) + _call(a2, s1, 12, False, rbx=OTHER_MAP)
             + _call(a2, s1, 2, False) + _call(a2, s0, 3, True) + _call(a2, s1, 4, False)
             + _call(a2, s0, 5, True))
    c = FakeControl(steps, Now(), server_side)
    stopped_by, returns, rep = _run(c, w)
    assert stopped_by == "max-hits"
    _assert_clean(c)
    # every entry with the map's condition, then each return address once, when first seen
    entries = [p.address for p in w.probes]
    assert c.added == entries + [s0[3], s1[3]]
    assert sorted(returns) == sorted([s0[3], s1[3]])
    assert rep["return_breakpoints"] == ["0x%x" % a for a in sorted(returns)]
    assert [(h["key"], h["found"]) for h in rep["hits"]] == [(1, True), (2, False), (3, True),
                                                           (4, False)]
    assert rep["errors"] == [] and rep["stopped_by"] == "max-hits"
    # the call on another map: counted where the on-hit sees it (gdb), never seen with Delve's
    assert rep["other_map_calls"] == (0 if server_side else 1)
    # stops: one per new return address, and the last return; other hits went on at once
    assert c.log.count("resume") == 3
    json.dumps(rep)


def test_entry_condition_and_what_the_control_leaves(image):
    """Entries carry RBX == the map; breakpoints the control cannot remove and what its
    finish says are in the report's errors."""
    w, _, _ = _setup(image)
    c = FakeControl([], Now())
    c.stuck = {p.address for p in w.probes}
    c.finish_says = ["a SIGTRAP of dlv's halt may still be pending"]
    stopped_by, _, rep = _run(c, w)
    assert stopped_by == "exited"
    assert {cond for _, cond in c.bps.values()} == {B.RegisterEquals("rbx", MAP_ADDR)}
    assert rep["errors"] == ["breakpoint at %#x stuck" % a for a in sorted(c.stuck)] \
        + c.finish_says


def test_timeout_removes_everything(image):
    w, a2, sites = _setup(image)
    steps = _call(a2, sites[0], 1, True) + [("at", _call(a2, sites[1], 2, False)[0][1]),
                                            ("tick", 11.0)] + _call(a2, sites[0], 3, True)
    c = FakeControl(steps, Now())
    stopped_by, returns, rep = _run(c, w, timeout=10.0)
    assert stopped_by == "timeout"
    _assert_clean(c)
    # the call in flight at the stop stays unknown
    assert [(h["key"], h["found"]) for h in rep["hits"]] == [(1, True), (2, None)]


@pytest.mark.parametrize("reason", [B.INTERRUPT, B.EXITED, B.STOPPED, B.SIGNAL])
def test_other_ends_remove_everything(image, reason):
    w, a2, sites = _setup(image)
    c = FakeControl(_call(a2, sites[0], 1, True) + [(reason,)] + _call(a2, sites[0], 2, True),
                    Now())
    stopped_by, _, rep = _run(c, w)
    assert stopped_by == reason and rep["stopped_by"] == reason
    _assert_clean(c)
    assert [(h["key"], h["found"]) for h in rep["hits"]] == [(1, True)]


def test_ctrl_c_as_keyboardinterrupt(image):
    """Python's own Ctrl-C (the bridge off the main thread): an interrupt with its report."""
    w, a2, sites = _setup(image)
    c = FakeControl(_call(a2, sites[0], 1, True) + [("raise", KeyboardInterrupt())], Now())
    stopped_by, _, rep = _run(c, w)
    assert stopped_by == "interrupt"
    _assert_clean(c)
    assert rep["summary"]["hits"] == 1


def test_exception_removes_everything_and_propagates(image):
    w, a2, sites = _setup(image)
    c = FakeControl(_call(a2, sites[0], 1, True)
                    + [("raise", GoExtError("cannot continue the program: gone"))], Now())
    c.finish_says = ["a SIGTRAP of dlv's halt may still be pending"]
    with pytest.raises(GoExtError, match="cannot continue"):
        _run(c, w)
    _assert_clean(c)
    assert w.errors == ["a SIGTRAP of dlv's halt may still be pending"]


def test_exception_in_the_decision_removes_everything(image):
    """A bug of ours in an on-hit comes out of resume (gdb re-raises it after the stop)."""
    w, a2, sites = _setup(image)

    def broken(*a):
        raise RuntimeError("bug")
    w.on_entry = broken
    c = FakeControl(_call(a2, sites[0], 1, True), Now())
    with pytest.raises(RuntimeError, match="bug"):
        _run(c, w)
    _assert_clean(c)


def test_refused_entry_breakpoint(image):
    w, a2, sites = _setup(image)
    last = w.probes[-1]
    c = FakeControl(_call(a2, sites[0], 1, True), Now())
    c.refuse[last.address] = "no room"
    with pytest.raises(GoExtError) as e:
        _run(c, w)
    assert str(e.value) == "cannot put a breakpoint at %s (%#x): no room" % (last.function,
                                                                              last.address)
    _assert_clean(c)
    assert "resume" not in c.log


def test_refused_return_breakpoint_is_not_retried(image):
    """A return breakpoint dlv refuses: one error, never asked for again, those hits
    stay unknown, and the probe goes on."""
    w, a2, sites = _setup(image)
    s0, s1, s2 = sites[0], sites[1], sites[2]
    # another goroutine (s2's g) at s0's call site: the same return address
    other_g_at_s0 = ("at", regs(a2.address, s0[2], 0, MAP_ADDR, 5, 0, s2[0]))
    c = FakeControl(_call(a2, s0, 1, True) + _call(a2, s1, 3, False) + [other_g_at_s0]
                    + _call(a2, s1, 4, True), Now())
    c.refuse[s0[3]] = "busy"
    stopped_by, returns, rep = _run(c, w)
    assert stopped_by == "exited"
    _assert_clean(c)
    assert returns == [s1[3]] and c.refused == [s0[3]]
    assert rep["return_breakpoints"] == ["0x%x" % s1[3]]
    assert rep["errors"] == ["cannot put a breakpoint at the return address %#x: busy" % s0[3]]
    assert [(h["key"], h["found"]) for h in rep["hits"]] == [(1, None), (3, False), (5, None),
                                                           (4, True)]


def test_run_mapwatch_checks_before_any_breakpoint(image):
    """run_mapwatch's checks (not a map, nil map) come before the control is touched."""
    w, _, _ = _setup(image)
    c = FakeControl([], Now())
    i64 = gotype(image, "int64", T.INT)
    with pytest.raises(GoExtError, match="is a int64, not a map"):
        P.run_mapwatch(c, w.rt, "main.x", i64, MAP_ADDR, 10, 1.0)
    with pytest.raises(GoExtError, match="nil map"):
        P.run_mapwatch(c, w.rt, "main.m", T.GoType("map[int64]int", T.MAP, 8, key=i64), 0, 10, 1.0)
    assert c.log == []


def test_not_live_sentences():
    assert str(B.not_live(True)) == "probes need a live process, and this target is a core file."
    assert str(B.not_live(False)) == "probes need a live process, and this target is not running."
    assert zeroval  # the helpers come from test_probes_unit
