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

`go dump --args` writes the argument words as the runtime does: at level 2 every line of
each compared block must equal the crash text byte for byte, argument words (and the ?
of a spill slot not live) included; at level 1 likewise against the fixture's own dump.

panicparse's pp (a real client) must make the same buckets of the parked goroutines from
`go dump --level 2 --args` as from the crash text (the same buckets, argument words
included; pp orders buckets of equal size differently from run to run), and from
`go dump --level 2` as from the crash text with -aggressive (the same buckets, functions
and lines; the argument words are (...) in ours).

Differences allowed, and why:
  - without --args, the function lines' argument words: the runtime prints the words it
    finds, we print (...);
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
import panicparse
import runtime_dump
from test_crash_dump import crash

sys.path.insert(0, harness.REPO)
from delve_bridge import Bridge  # noqa: E402
from gdb_go_ext.binary.pclntab import go_minor  # noqa: E402

PARKED = ("running", "runnable")


def _ours(binary, core):
    r = harness.run_gdb(binary, core=core, commands=[
        ("d2", "go dump --level 2"), ("d1", "go dump"), ("bad", "go dump --level 3"),
        ("a2", "go dump --level 2 --args"), ("a1", "go dump --args"),
        ("unknown", "go dump --no-such-flag"), ("after", "go dump --level 1")])
    for k in ("d2", "d1", "a2", "a1", "after"):
        assert r.error(k) is None, (k, r.error(k), r.stderr[-2000:])
    for k in ("bad", "unknown"):
        err = r.error(k)
        assert err and "\n" not in err and "Traceback" not in r.block(k), (k, err, r.block(k))
    assert "Traceback" not in r.stderr, r.stderr[-2000:]
    assert r.block("after") == r.block("d1")
    with Bridge.core(binary, core, quiet=True) as b:
        assert not b.dlv.check_off, b.dlv.note
        bridge = {"d2": b.view(["dump", "--level", "2"]), "d1": b.view(["dump"]),
                  "a2": b.view(["dump", "--level", "2", "--args"])}
    gdb = {k: r.block(k) for k in ("d2", "d1", "a2", "a1")}
    assert [gdb[k].rstrip("\n") for k in bridge] == [s.rstrip("\n") for s in bridge.values()]
    return gdb


def _compare(theirs_text, ours_text, skip, whole=False):
    """whole: every line byte for byte, the argument words included (--args)."""
    theirs, ours = dump_compare.blocks(theirs_text), dump_compare.blocks(ours_text)
    parsed = runtime_dump.parse(theirs_text)
    same = (lambda x: x) if whole else dump_compare.essential
    compared = []
    for gid, lines in theirs.items():
        if gid == 0 or parsed.get(gid, {}).get("status") in skip:
            continue
        assert gid in ours, (gid, lines[0])
        assert same(ours[gid]) == same(lines), (gid, "\n".join(lines), "\n".join(ours[gid]))
        compared.append(gid)
    return theirs, ours, compared


def _only(text, ids):
    """The blocks of these goroutines, as a dump."""
    blocks = dump_compare.blocks(text)
    return "\n".join("\n".join(blocks[g]) + "\n" for g in ids)


@pytest.mark.parametrize("pie", [False, True], ids=["plain", "pie"])
def test_dump_matches_runtime_text(toolchain, pie, tmp_path):
    binary, dump, text, core = crash(toolchain, tmp_path, pie)
    ours = _ours(binary, core)
    # level 2: the crash's own text
    theirs, mine, compared = _compare(text, ours["d2"], PARKED)
    assert [g for g in theirs if g] == list(mine), "order or set of goroutines differs"
    assert len(compared) >= len(theirs) - 10, compared
    # --args: the argument words too, every line byte for byte
    _, _, whole = _compare(text, ours["a2"], PARKED, whole=True)
    assert whole == compared
    assert any("(0x" in l for g in whole for l in theirs[g]), "no argument words compared"
    # panicparse's pp buckets the same goroutines alike: with --args every bucket, its
    # frames and their argument words (pp's own #N aliases of shared pointers included),
    # without them (-aggressive: values ignored) every bucket, its functions and lines
    pp_theirs = panicparse.run(_only(text, compared), str(tmp_path), "theirs.txt")
    pp_ours = panicparse.run(_only(ours["a2"], compared), str(tmp_path), "ours.txt")
    assert sorted(panicparse.buckets(pp_ours)) == sorted(panicparse.buckets(pp_theirs)), \
        (pp_theirs, pp_ours)
    assert len(panicparse.buckets(pp_theirs)) >= 8, pp_theirs
    pp_theirs = panicparse.run(_only(text, compared), str(tmp_path), "theirs.txt", True)
    pp_ours = panicparse.run(_only(ours["d2"], compared), str(tmp_path), "ours.txt", True)
    assert sorted(panicparse.buckets(pp_ours, False)) == \
        sorted(panicparse.buckets(pp_theirs, False)), (pp_theirs, pp_ours)
    if go_minor(toolchain) >= 26:   # GODEBUG=tracebacklabels=1: labelled headers
        labelled = [g for g in compared if " labels:{" in theirs[g][0] or "] {" in theirs[g][0]]
        assert len(labelled) >= 3, [theirs[g][0] for g in compared]
    # level 1: the fixture's own pprof debug=2 dump of a moment before
    with open(os.path.join(str(tmp_path), "out", "goroutines_debug2.txt")) as f:
        pprof_text = f.read()
    theirs, mine, compared = _compare(pprof_text, ours["d1"], PARKED)
    # the same goroutines, system ones hidden alike, and the spinners started since
    assert set(theirs) <= set(mine), sorted(set(theirs) - set(mine))
    for gid in set(mine) - set(theirs):   # (a spinner not started yet has no main.spin)
        assert any(l.startswith(("main.spin(", "created by main.crash")) for l in mine[gid]), \
            mine[gid]
    assert len(compared) >= 25, compared
    assert not any(" gp=" in l for l in ours["d1"].splitlines()), "gp= at level 1"
    # --args at level 1, against the same dump: the goroutines parked since it was written
    # hold the same words in their argument areas
    _, _, whole = _compare(pprof_text, ours["a1"], PARKED, whole=True)
    assert len(whole) >= 25, whole


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
    bridge = Bridge.core(t.binary, t.core, quiet=True) if mode == "core" else \
        Bridge.attach(t.pid, binary=t.binary, quiet=True)
    with bridge as b:    # the bridge, live too: the same text, argument words included
        assert b.view(["dump"]).rstrip("\n") == r.block("d1").rstrip("\n")
        _, _, whole = _compare(truth, b.view(["dump", "--args"]), PARKED, whole=True)
        assert len(whole) >= 25, whole


def test_dump_synctest_bubble(toolchain, tmp_path):
    """A synctest bubble (Go 1.25+) crashing: its goroutines' headers carry (durable) where
    runtime.isIdleInSynctest says so and ", synctest bubble N"; `go dump --level 2` on the
    core must equal the crash text for every goroutine it does not show running, gdb and
    bridge alike, argument words included with --args."""
    if go_minor(toolchain) < 25:
        pytest.skip("testing/synctest.Test is Go 1.25+ (1.24 has it only as GOEXPERIMENT)")
    problem = harness.core_pattern_problem()
    if problem:
        pytest.skip(problem)
    binary = harness.build("synctest", toolchain, test=True)
    text, core, _ = harness.crash_dump(binary, str(tmp_path), args=("-test.run", "TestBubble"))
    ours = _ours(binary, core)
    theirs, mine, compared = _compare(text, ours["d2"], PARKED)
    assert [g for g in theirs if g] == list(mine), "order or set of goroutines differs"
    _, _, whole = _compare(text, ours["a2"], PARKED, whole=True)
    assert whole == compared
    heads = [theirs[g][0] for g in compared]
    assert sum(", synctest bubble " in h for h in heads) >= 6, heads
    assert sum(" (durable)" in h for h in heads) >= 4, heads
    assert any(", synctest bubble " in h and "(durable)" not in h for h in heads), heads
