"""`go dump` against the runtime's own text of the same instant, whole matrix, gdb and
bridge (which must say the same).

Level 2: the goroutines fixture panics under GOTRACEBACK=crash and dumps a core at the
instant the runtime prints every goroutine. `go dump --level 2` on that core must equal
that text for every goroutine the dump does not show running: the same goroutine ids
in the same order, and in each block every header byte for byte, every frame's
position line byte for byte (file:line, +0xoff, fp= sp= pc=), every created by line
and its position, the elision lines, and every function line up to its "(".

Level 1: the fixture, in crash mode, writes pprof.Lookup("goroutine").WriteTo(f, 2)
(runtime.Stack(all), level 1) once every goroutine is parked, before it starts the busy
goroutines and panics (written any later, its stop-the-world disturbs the Ms the SCHED
detail tests hold against). `go dump` on the core must equal it for every goroutine
parked in it: the same ids (system goroutines hidden alike; ours has the busy ones
besides), the same blocks as above.

Differences allowed, and why:
  - the function lines' argument words: the runtime prints the words it finds, we
    print (...) (--args is not implemented);
  - goroutines the runtime shows running (the panicking one, busy ones on other
    threads) or runnable: the runtime prints no stack for some, one from a signal
    handler for others, and the pprof dump was taken a moment before the core, when
    the spinning goroutines were elsewhere; they are compared by id only (level 2);
  - at level 1, the wait minutes: none at either instant (the fixture waits < 1 min);
    goroutine 1 is running in the pprof dump (it writes it) and parked on the core.
"""
import os
import sys

import pytest

import dump_compare
import harness
import runtime_dump
from test_crash_dump import crash

sys.path.insert(0, harness.REPO)
from delve_bridge import Bridge  # noqa: E402

PARKED = ("running", "runnable")


def _ours(binary, core):
    r = harness.run_gdb(binary, core=core, commands=[
        ("d2", "go dump --level 2"), ("d1", "go dump"), ("bad", "go dump --level 3"),
        ("args", "go dump --args"), ("after", "go dump --level 1")])
    for k in ("d2", "d1", "after"):
        assert r.error(k) is None, (k, r.error(k), r.stderr[-2000:])
    for k in ("bad", "args"):
        err = r.error(k)
        assert err and "\n" not in err and "Traceback" not in r.block(k), (k, err, r.block(k))
    assert "Traceback" not in r.stderr, r.stderr[-2000:]
    assert r.block("after") == r.block("d1")
    with Bridge.core(binary, core, quiet=True) as b:
        assert not b.dlv.check_off, b.dlv.note
        bridge = {"d2": b.view(["dump", "--level", "2"]), "d1": b.view(["dump"])}
    gdb = {"d2": r.block("d2"), "d1": r.block("d1")}
    assert [s.rstrip("\n") for s in gdb.values()] == [s.rstrip("\n") for s in bridge.values()]
    return gdb


def _compare(theirs_text, ours_text, skip):
    theirs, ours = dump_compare.blocks(theirs_text), dump_compare.blocks(ours_text)
    parsed = runtime_dump.parse(theirs_text)
    compared = []
    for gid, lines in theirs.items():
        if gid == 0 or parsed.get(gid, {}).get("status") in skip:
            continue
        assert gid in ours, (gid, lines[0])
        assert dump_compare.essential(ours[gid]) == dump_compare.essential(lines), \
            (gid, "\n".join(lines), "\n".join(ours[gid]))
        compared.append(gid)
    return theirs, ours, compared


@pytest.mark.parametrize("pie", [False, True], ids=["plain", "pie"])
def test_dump_matches_runtime_text(toolchain, pie, tmp_path):
    binary, dump, text, core = crash(toolchain, tmp_path, pie)
    ours = _ours(binary, core)
    # level 2: the crash's own text
    theirs, mine, compared = _compare(text, ours["d2"], PARKED)
    assert [g for g in theirs if g] == list(mine), "order or set of goroutines differs"
    assert len(compared) >= len(theirs) - 10, compared
    # level 1: the fixture's own pprof debug=2 dump of a moment before
    with open(os.path.join(str(tmp_path), "out", "goroutines_debug2.txt")) as f:
        pprof_text = f.read()
    theirs, mine, compared = _compare(pprof_text, ours["d1"], PARKED)
    # the same goroutines, system ones hidden alike, and the spinners started since
    assert set(theirs) <= set(mine), sorted(set(theirs) - set(mine))
    for gid in set(mine) - set(theirs):
        assert any(l.startswith("main.spin(") for l in mine[gid]), mine[gid]
    assert len(compared) >= 25, compared
    assert not any(" gp=" in l for l in ours["d1"].splitlines()), "gp= at level 1"


def test_dump_matches_runtime_stack(toolchain, mode, go_target):
    """Live and on a gcore: `go dump` (level 1) against the fixture's runtime.Stack(all)
    text (stacks.txt, which is level 1), for every goroutine parked then and now (goroutine
    1 called runtime.Stack and has moved on since: compared by id only)."""
    t = go_target("goroutines")
    truth = t.truth("stacks.txt")
    r = t.gdb([("d1", "go dump"), ("d2", "go dump --level 2")])
    assert r.error("d1") is None and r.error("d2") is None, r.stderr[-2000:]
    theirs, mine, compared = _compare(truth, r.block("d1"), PARKED)
    assert set(mine) == set(theirs), (sorted(set(mine) - set(theirs)), sorted(set(theirs) - set(mine)))
    assert len(compared) >= 25, compared
    assert len(dump_compare.blocks(r.block("d2"))) > len(mine)   # system goroutines shown
    if mode == "core":
        with Bridge.core(t.binary, t.core, quiet=True) as b:
            assert b.view(["dump"]).rstrip("\n") == r.block("d1").rstrip("\n")
