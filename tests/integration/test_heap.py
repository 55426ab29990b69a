"""`go heap`, `go stacks --retained`, `go goroutines --retained` and `go paths` on real gdb,
real dlv and real Go binaries: every toolchain of the matrix from Go 1.22, live and on a
core; older ones get one line.

The heap fixture (tests/fixtures/heap/main.go) builds a known heap, collects it twice,
calls runtime.ReadMemStats and writes heap.json, then parks without allocating anything
reachable. The truth:
- HeapAlloc and HeapObjects, which after two collections and ReadMemStats (it flushes
  the mcaches) count exactly the slots the last mark kept plus what was allocated after
  it and is still allocated; the mark done again from memory must agree within 0.5%;
- the fixture's two groups of goroutines, each keeping a buffer of known size live
  across its wait: each bucket must retain its goroutines x buffer size (+ 5% at most);
- the address of an object reachable only through the global map main.registry.
"""
import json
import os
import sys

import pytest

import harness

sys.path.insert(0, harness.REPO)
from delve_bridge import Bridge  # noqa: E402


def _version(toolchain):
    return tuple(int(x) for x in harness.toolchain_go_version(toolchain)[2:].split(".")[:2])


def open_bridge(t):
    if t.mode == "live":
        return Bridge.attach(t.pid, binary=t.binary, quiet=True)
    return Bridge.core(t.binary, t.core, quiet=True)


def check_heap(got, truth):
    assert got["go_version"] == truth["version"]
    assert got["errors"] == [], got["errors"]
    alloc, objects = truth["heap_alloc"], truth["heap_objects"]
    assert abs(got["live_bytes"] - alloc) <= 0.005 * alloc, (got["live_bytes"], alloc)
    assert abs(got["live_objects"] - objects) <= 0.005 * objects, (got["live_objects"], objects)
    assert sum(c["bytes"] for c in got["by_class"]) == got["live_bytes"]
    assert sum(c["objects"] for c in got["by_class"]) == got["live_objects"]
    classes = {c["elem_size"]: c for c in got["by_class"]}
    holders = {b["buffer"]: b["goroutines"] for b in truth["buckets"]}
    # every goroutine's buffer, in its size class (a large one: a span each)
    for size, n in holders.items():
        assert classes[size]["objects"] >= n, (size, classes.get(size))
    # the tree's nodes (64 B, reached from main.tree through typed pointers)
    types = {t["type"]: t for t in got["by_type"]}
    assert types["main.node"]["objects"] >= truth["tree_nodes"], types.get("main.node")
    # the buffers, typed by the frames' []byte variables that hold them
    assert types["[]uint8"]["objects"] >= sum(holders.values()), types.get("[]uint8")
    # roots: main's globals reach the tree, the map and the tables; the stacks reach the
    # buffers
    roots = {(r["kind"], r["name"]): r for r in got["by_root"]}
    stacks = roots[("stacks", "goroutine stacks")]
    assert stacks["bytes"] >= sum(s * n for s, n in holders.items())
    assert roots[("globals", "main")]["objects"] >= truth["tree_nodes"] + truth["map_entries"]


def check_retained(got, truth):
    assert got["errors"] == [], got["errors"]
    by_fn = {}
    for b in got["buckets"]:
        for want in truth["buckets"]:
            if any(f["function"] == want["function"] for f in b["stack"]):
                by_fn.setdefault(want["function"], []).append(b)
    for want in truth["buckets"]:
        bs = by_fn[want["function"]]
        assert sum(b["count"] for b in bs) == want["goroutines"]
        kept = sum(b["retained_bytes"] for b in bs)
        floor = want["goroutines"] * want["buffer"]
        assert floor <= kept <= 1.05 * floor, (want, kept)
        assert sum(b["retained_objects"] for b in bs) >= want["goroutines"]


def check_each(got, truth):
    """go goroutines --retained: every holder goroutine alone keeps its own buffer."""
    assert got["errors"] == [], got["errors"]
    for want in truth["buckets"]:
        mine = [g for g in got["goroutines"]
                if (g["user"] or {}).get("function") == want["function"]]
        assert len(mine) == want["goroutines"], (want, len(mine))
        for g in mine:
            assert want["buffer"] <= g["retained_bytes"] <= 1.05 * want["buffer"], g
    kept = [g["retained_bytes"] for g in got["goroutines"]]
    assert kept == sorted(kept, reverse=True)


def check_paths(got, truth):
    needle = int(truth["needle"], 16)
    assert got["errors"] == [], got["errors"]
    assert int(got["object"]["address"], 16) == needle
    assert got["object"]["size"] >= truth["needle_size"]
    assert got["paths"], got
    through_map = [p for p in got["paths"] if p["root"]["kind"] == "global"
                   and p["root"]["name"] == "main.registry"]
    assert through_map, [p["root"] for p in got["paths"]]
    p = through_map[0]
    assert int(p["steps"][-1]["address"], 16) == needle
    assert p["steps"][-1]["type"] == "main.entry", p["steps"]
    assert len(p["steps"]) >= 2   # the map's own objects, then the entry


def test_heap_matches_the_runtime(toolchain, mode, go_target):
    if _version(toolchain) < (1, 22):
        pytest.skip("the heap views need Go 1.22+ (test_heap_needs_go_1_22 checks the line)")
    t = go_target("heap")
    truth = t.truth("heap")
    needle = truth["needle"]
    r = t.gdb([("heap", "go heap --json"), ("retained", "go stacks --retained --json"),
               ("paths", f"go paths {needle} --json --max 3"),
               ("text", "go heap --top 5"), ("rtext", "go stacks --retained --min 10"),
               ("ptext", f"go paths {needle}"),
               ("buf", f"go paths {truth['buffer_a']} --json"),
               ("each", "go goroutines --retained --limit 1000 --json"),
               ("each_text", "go goroutines --retained --limit 3 -with userloc main.holdB"),
               ("bad", "go paths nowhere"), ("none", "go paths 0x10"),
               ("after", "python print('still usable')")], timeout=300)
    assert r.error("heap") is None, r.stderr[-3000:]
    got = json.loads(r.block("heap"))
    check_heap(got, truth)
    retained = json.loads(r.block("retained"))
    check_retained(retained, truth)
    paths = json.loads(r.block("paths"))
    check_paths(paths, truth)

    # a buffer only a goroutine's frame holds: the path is that frame's variable
    buf = json.loads(r.block("buf"))
    assert buf["errors"] == [] and len(buf["paths"]) == 1, buf
    root = buf["paths"][0]["root"]
    assert root["kind"] == "stack" and root["name"] == "main.holdA", root
    assert root["variable"] in ("buf", "buf.ptr"), root     # (1.27's DWARF: buf.ptr)
    assert [int(s["address"], 16) for s in buf["paths"][0]["steps"]] == \
        [int(truth["buffer_a"], 16)]
    assert buf["paths"][0]["steps"][0]["type"] == "[]uint8"

    each = json.loads(r.block("each"))
    check_each(each, truth)
    lines = r.block("each_text").splitlines()
    assert len(lines) >= 5 and all("main.holdB" in l and "8192 B" in l for l in lines[1:4])
    assert lines[4].startswith(f"{truth['buckets'][1]['goroutines']} goroutines; the 3 ")

    text = r.block("text")
    assert f"live heap: {got['live_bytes']} bytes" in text
    assert "main.node" in text and "by size class" in text
    rtext = r.block("rtext")
    assert "retains" in rtext and "main.holdA" in rtext
    ptext = r.block("ptext")
    assert "main.registry" in ptext and "main.entry" in ptext
    assert "not an address" in r.error("bad")
    assert "is not inside a live heap object" in r.block("none")
    assert r.block("after").strip() == "still usable"
    assert "Traceback" not in r.stdout + r.stderr

    with open_bridge(t) as b:
        bridged = json.loads(b.view(["heap", "--json"]))
        assert bridged == got
        check_retained(json.loads(b.view(["stacks", "--retained", "--json"])), truth)
        check_each(json.loads(b.view(["goroutines", "--retained", "--limit", "1000",
                                      "--json"])), truth)
        check_paths(json.loads(b.view(["paths", needle, "--json"])), truth)


def test_heap_needs_go_1_22(toolchain):
    if _version(toolchain) >= (1, 22):
        pytest.skip("a Go 1.22+ toolchain")
    with harness.target_for("heap", toolchain, "core") as t:
        r = t.gdb([("heap", "go heap"), ("paths", "go paths 0x1000"),
                   ("after", "python print('alive')")])
    for name in ("heap", "paths"):
        err = r.error(name) or ""
        assert "the heap views need Go 1.22 or later" in err, (name, err, r.stdout[-500:])
        assert len(err.strip().splitlines()) == 1
    assert r.block("after") == "alive"
    assert "Traceback" not in r.stdout + r.stderr


def test_heap_on_a_core_cut_in_the_heap(tmp_path):
    """A core cut short in the middle of a heap arena (at the needle, laid out as the
    kernel writes one): `go heap` and `go paths` give what they can read, with one
    warning line, in gdb and through the bridge; gdb stays usable."""
    import subprocess
    from test_goroutines_scale import file_offset, kernel_layout
    tc = harness.matrix_names()[-2]
    with harness.target_for("heap", tc, "core") as t:
        truth = t.truth("heap")
        whole = str(tmp_path / "whole.core")
        kernel_layout(t.core, whole)
        at = file_offset(whole, int(truth["needle"], 16))
        assert at is not None
        cut = str(tmp_path / "cut.core")
        with open(whole, "rb") as src, open(cut, "wb") as dst:
            dst.write(src.read(at))
        os.remove(whole)
        r = harness.run_gdb(t.binary, core=cut, commands=[
            ("heap", "go heap --json"), ("text", "go heap --top 3"),
            ("paths", "go paths %s" % truth["needle"]),
            ("after", "python print('still usable')")], timeout=300)
        bridge = subprocess.run([sys.executable, "-m", "delve_bridge", "core", t.binary, cut,
                                 "heap", "--json"], capture_output=True, text=True,
                                timeout=300, cwd=harness.REPO)
    assert "Traceback" not in r.stdout + r.stderr + bridge.stderr
    assert r.block("after").strip() == "still usable"
    for out in (r.block("heap"), bridge.stdout):
        got = json.loads(out)
        # a partial result (the spans' own memory is mapped above the arenas, so past
        # the cut: nothing can be located) and one line that says why
        assert got["live_bytes"] < truth["heap_alloc"], got["live_bytes"]
        assert len(got["errors"]) == 1, got["errors"]
        assert got["errors"][0].startswith("the core file is truncated (")
    text = r.block("text")
    assert text.startswith("live heap: ") and "warning: " in text
    assert r.error("paths") is None


@pytest.mark.parametrize("tc", ["go1.22.10", "go1.26.6"])
def test_heap_on_a_pie_core(tc):
    """A position-independent build (globals, types and pclntab at a load bias): the same
    truth on a core, in gdb and through the bridge."""
    if tc not in harness.matrix_names():
        pytest.skip(f"{tc} is not in the matrix")
    with harness.target_for("heap", tc, "core", pie=True) as t:
        truth = t.truth("heap")
        r = t.gdb([("heap", "go heap --json"), ("paths", f"go paths {truth['needle']} --json"),
                   ("retained", "go stacks --retained --json")], timeout=300)
        assert r.error("heap") is None, r.stderr[-3000:]
        got = json.loads(r.block("heap"))
        check_heap(got, truth)
        check_paths(json.loads(r.block("paths")), truth)
        check_retained(json.loads(r.block("retained")), truth)
        with open_bridge(t) as b:
            assert json.loads(b.view(["heap", "--json"])) == got
            check_paths(json.loads(b.view(["paths", truth["needle"], "--json"])), truth)
    assert "Traceback" not in r.stdout + r.stderr
