"""`go gc` on real gdb, real dlv and real Go binaries: every toolchain of the matrix,
live and on a core.

The gc fixture (tests/fixtures/gc/main.go) sets GOGC and GOMEMLIMIT, forces 300
collections (more than the 256 of the pause ring, so it has wrapped), and writes what
runtime/debug.ReadGCStats and runtime.ReadMemStats said right after, then parks without
allocating. `go gc --json` must say the same, in gdb and through the bridge, and the
two must agree with each other.
"""
import json
import sys

import harness

sys.path.insert(0, harness.REPO)
from delve_bridge import Bridge  # noqa: E402

# what depends on when the view ran, not on the target's state
_MOMENT = ("last_gc_ago_ns",)


def open_bridge(t):
    if t.mode == "live":
        return Bridge.attach(t.pid, binary=t.binary, quiet=True)
    return Bridge.core(t.binary, t.core, quiet=True)


def check_gc(got, truth, mode):
    gs, ms = truth["gcstats"], truth["memstats"]
    assert got["errors"] == [] and got["unread"] == [], (got["errors"], got["unread"])
    assert got["go_version"] == truth["version"]
    # debug.ReadGCStats, exactly
    assert got["num_gc"] == gs["NumGC"] == ms["NumGC"]
    assert got["pause_total_ns"] == gs["PauseTotal"] == ms["PauseTotalNs"]
    assert got["last_gc_unix_ns"] == gs["LastGC"] == ms["LastGC"]
    assert len(got["pauses"]) == len(gs["Pause"]) == 256   # the ring wrapped
    assert got["pauses"] == gs["Pause"]
    # runtime.ReadMemStats, exactly
    assert got["num_forced_gc"] == ms["NumForcedGC"] == truth["forced"]
    assert got["next_gc"] == got["heap_goal"] == ms["NextGC"]
    assert got["heap_goal_by"] in ("gc_percent", "sweep_distance", "min_runway")
    # as the fixture set them
    assert got["gc_percent"] == truth["gc_percent"] == 137
    assert got["memory_limit"] == truth["memory_limit"]
    assert got["phase"] == "off" and got["gc_running"] is False
    # the heap: readable on every version; the same counters ReadMemStats sums
    h = got["heap"]
    assert all(h[k] is not None for k in ("heap_alloc", "heap_sys", "heap_inuse",
                                          "heap_released", "spans_inuse")), h
    assert h["heap_sys"] >= h["heap_inuse"] + h["heap_released"] and h["heap_inuse"] > 0
    assert h["spans_inuse"] > 0 and h["heap_alloc"] > 0
    assert 0 < got["heap_marked"] <= got["heap_goal"]
    # the last GC against the walk's clock
    assert got["last_gc_ago_ns"] is not None and got["last_gc_ago_ns"] >= 0
    if mode == "live":
        assert got["clock"] == "live: CLOCK_MONOTONIC now"
        assert got["last_gc_ago_ns"] < 600e9
    else:
        assert got["clock"].startswith("core: latest runtime stamp (")


def test_gc_matches_the_runtime(toolchain, mode, go_target):
    t = go_target("gc")
    truth = t.truth("gc")
    r = t.gdb([("json", "go gc --json"), ("text", "go gc --pauses 3"),
               ("all", "go gc --pauses 0"), ("bad", "go gc --pauses x"),
               ("negative", "go gc --pauses -1"), ("json2", "go gc --json --pauses 2"),
               ("after", "python print('still usable')")])
    assert r.error("json") is None, r.stderr[-2000:]
    got = json.loads(r.block("json"))
    check_gc(got, truth, mode)

    text = r.block("text")
    assert "300 forced; phase off (no cycle running)" in text
    assert "GOGC        137    GOMEMLIMIT 3.0 GiB (3221237817 bytes)" in text
    assert f"next_gc {truth['memstats']['NextGC']} bytes" in text
    assert "256 in the history, the last 3 (most recent first)" in text
    rows = [l.split() for l in text.splitlines() if l.startswith("  ") and l.split()[0].isdigit()]
    assert [int(x[0]) for x in rows] == [got["num_gc"], got["num_gc"] - 1, got["num_gc"] - 2]
    assert "s before the walk's clock" in text
    assert "not read" not in text and "warning" not in text
    # --pauses 0 is all of them (as every count flag's 0), in text and JSON alike
    every = [l.split() for l in r.block("all").splitlines()
             if l.startswith("  ") and l.split()[0].isdigit()]
    assert len(every) == len(got["pauses"]) == 256
    assert "256 in the history, the last 256" in r.block("all")
    assert json.loads(r.block("json2"))["pauses"] == got["pauses"][:2]
    assert "usage: go gc" in r.error("bad")
    neg = r.error("negative")
    assert "--pauses" in neg and "0 or more" in neg and "\n" not in neg.strip()
    assert r.block("after").strip() == "still usable"
    assert "Traceback" not in r.stdout + r.stderr

    with open_bridge(t) as b:
        assert not b.dlv.check_off, b.dlv.note
        bridged = json.loads(b.view(["gc", "--json"]))
        check_gc(bridged, truth, mode)
        for k in _MOMENT:
            bridged.pop(k), got.pop(k)
        assert bridged == got
        if mode == "core":   # the same text too: on a core nothing in it depends on the moment
            assert b.view(["gc", "--pauses", "3"]).rstrip("\n") == text.rstrip("\n")


def test_gc_needs_a_process(toolchain):
    binary = harness.build("gc", toolchain)
    r = harness.run_gdb(binary, commands=[("gc", "go gc"), ("after", "python print('alive')")])
    assert "no process or core file is loaded" in r.error("gc")
    assert r.block("after") == "alive"
    assert "Traceback" not in r.stdout + r.stderr
