"""`go stacks --diff OLD` and `go xref DUMP` against what the leakdiff fixture
(tests/fixtures/leakdiff/main.go) records of itself, in gdb and through the bridge,
whole matrix.

Diff: the fixture leaks in two steps (7 in main.leakA, 5 in main.leakB, 3 in
main.leakC; then 4 more in leakA, 3 of leakB and all of leakC ended, 2 in a new
main.leakD) and records each function's counts then and now (diff.json). The diff
must give exactly those buckets and changes, every other bucket unchanged: live (two
`go stacks --json` outputs of the same process, and a `go goroutines --json -t 64`
one), across two gcores of it, and with the fixture's own WriteTo(f, 2) dump of step 1
as OLD. One difference is allowed with the dump, and named: goroutine 1 wrote that
dump, so its bucket then (inside runtime/pprof) vanishes and its bucket now is new.

xref: the fixture writes a debug=2 dump, ends 3 goroutines, moves 2 to another wait,
starts 3, and records the ids (xref.json); the verdicts must equal them, live and on a
core, gdb and bridge.
"""
import json
import os
import signal
import sys
import time

import pytest

import harness
from test_bridge import open_bridge

sys.path.insert(0, harness.REPO)
from delve_bridge import Bridge  # noqa: E402

LEAKS = ("main.leakA", "main.leakB", "main.leakC", "main.leakD")


def _leak(bucket):
    names = [f["function"] for f in bucket["stack"]]
    hits = [n for n in LEAKS if n in names]
    assert len(hits) <= 1, names
    return hits[0] if hits else None


def _change(before, after):
    return ("new" if before == 0 else "vanished" if after == 0 else
            "grown" if after > before else "shrunk" if after < before else "same")


def check_diff(doc, truth, step2=True, from_dump=False):
    """The diff's buckets: each leak function in one bucket with the recorded counts,
    every other bucket unchanged (but goroutine 1's, with the dump as OLD)."""
    got = {}
    others = []
    for b in doc["buckets"]:
        assert b["change"] == _change(b["before"], b["after"]), b
        leak = _leak(b)
        if leak is None:
            others.append(b)
            continue
        assert leak not in got, (leak, doc["buckets"])
        got[leak] = [b["before"], b["after"]]
    want = {f: (n if step2 else [n[0], n[0]]) for f, n in truth.items()}
    want = {f: n for f, n in want.items() if n != [0, 0]}
    assert got == want, (got, want)
    changed = [b for b in others if b["change"] != "same"]
    if from_dump:
        # goroutine 1: inside WriteTo in the dump, waiting for the signal now
        assert sorted(b["change"] for b in changed) == ["new", "vanished"], changed
        for b in changed:
            assert b["before"] + b["after"] == 1 and b["ids"] == [1], b
            names = [f["function"] for f in b["stack"]]
            assert "main.main" in names, names
            assert ("runtime/pprof.writeGoroutineStacks" in names) == (b["change"] == "vanished")
    else:
        assert not changed, changed
    assert doc["total"] == {"before": sum(b["before"] for b in doc["buckets"]),
                            "after": sum(b["after"] for b in doc["buckets"])}
    for b in doc["buckets"]:
        assert b["stack"] and all(f["function"] and f["file"] for f in b["stack"]), b


def _one_line(r, name):
    err = r.error(name)
    assert err and "\n" not in err.strip() and "Traceback" not in r.block(name), (name, err, r.block(name))
    return err


def _wait_for(fp, word, timeout=30):
    end = time.time() + timeout
    while time.time() < end:
        if any(l.startswith(word) for l in fp.stdout_lines):
            return
        time.sleep(0.05)
    raise AssertionError("fixture never printed %s: %r %s" % (word, fp.stdout_lines,
                                                              fp.stderr_text()[-2000:]))


def test_stacks_diff(toolchain, tmp_path):
    binary = harness.build("leakdiff", toolchain)
    out = tmp_path / "out"
    out.mkdir()
    s1, g1, c1 = (str(tmp_path / n) for n in ("s1.json", "g1.json", "c1.json"))
    garbage = tmp_path / "garbage.txt"
    garbage.write_bytes(b"\x00\x01 not a dump\ngoroutine x [what\n" * 20)
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"threads": [{"lwp": 1}]}))
    cut = tmp_path / "cut.pb.gz"
    import gzip
    cut.write_bytes(gzip.compress(b"\x0a\x10goroutine" * 100)[:30])
    try:
        with harness.run_fixture(binary, args=("diff",), out_dir=str(out)) as fp:
            step1 = os.path.join(str(out), "step1.txt")
            truth = fp.truth("diff")
            r1 = harness.run_gdb(binary, pid=fp.pid, commands=[
                ("s1", "go stacks --json -o %s" % s1),
                ("g1", "go goroutines --json -t 64 -o %s" % g1),
                ("d0", "go stacks --diff %s --json" % step1),
                ("same", "go stacks --diff %s --json" % s1)])
            for k in ("s1", "g1", "d0", "same"):
                assert r1.error(k) is None, (k, r1.error(k), r1.stderr[-2000:])
            check_diff(json.loads(r1.block("d0")), truth, step2=False, from_dump=True)
            check_diff(json.loads(r1.block("same")), truth, step2=False)
            core1 = harness.make_core(fp.pid, str(tmp_path / "cores1"))

            os.kill(fp.pid, signal.SIGUSR1)
            _wait_for(fp, "READY2")
            core2 = harness.make_core(fp.pid, str(tmp_path / "cores2"))
            r2 = harness.run_gdb(binary, pid=fp.pid, commands=[
                ("live", "go stacks --diff %s --json" % s1),
                ("text", "go stacks --diff %s" % s1),
                ("dump", "go stacks --diff %s --json" % step1),
                ("gor", "go stacks --diff %s --json" % g1),
                ("similar", "go stacks --diff %s --similar --json" % s1),
                ("garbage", "go stacks --diff %s" % garbage),
                ("other", "go stacks --diff %s" % other),
                ("cut", "go stacks --diff %s" % cut),
                ("missing", "go stacks --diff %s/nope.txt" % tmp_path),
                ("after", "go stacks --diff %s --json" % s1)], timeout=300)
            for k in ("live", "text", "dump", "gor", "similar", "after"):
                assert r2.error(k) is None, (k, r2.error(k), r2.stderr[-2000:])
            live = json.loads(r2.block("live"))
            check_diff(live, truth)
            check_diff(json.loads(r2.block("dump")), truth, from_dump=True)
            check_diff(json.loads(r2.block("gor")), truth)
            check_diff(json.loads(r2.block("similar")), truth)
            assert json.loads(r2.block("after")) == live
            text = r2.block("text")
            for line in ("new: 2 goroutines", "grown: 7 -> 11 (+4)", "shrunk: 5 -> 2 (-3)",
                         "vanished: 3 goroutines"):
                assert line in text, (line, text)
            t = live["total"]
            assert ("total: %d -> %d goroutines" % (t["before"], t["after"])) in text, text
            for k in ("garbage", "other", "cut", "missing"):
                _one_line(r2, k)
            assert "gzip" in r2.error("cut") and "another shape" in r2.error("other")
            assert "Traceback" not in r2.stderr, r2.stderr[-2000:]

            with Bridge.attach(fp.pid, binary=binary, quiet=True) as b:
                assert json.loads(b.view(["stacks", "--diff", s1, "--json"])) == live
                assert json.loads(b.view(["stacks", "--diff", step1, "--json"])) == \
                    json.loads(r2.block("dump"))
                with pytest.raises(Exception) as e:
                    b.view(["stacks", "--diff", str(garbage)])
                assert "\n" not in str(e.value).strip()

        # across two cores of the same process
        rc1 = harness.run_gdb(binary, core=core1, commands=[("c1", "go stacks --json -o %s" % c1)])
        assert rc1.error("c1") is None, rc1.error("c1")
        rc2 = harness.run_gdb(binary, core=core2, commands=[
            ("diff", "go stacks --diff %s --json" % c1),
            ("dump", "go stacks --diff %s --json" % step1)])
        assert rc2.error("diff") is None, (rc2.error("diff"), rc2.stderr[-2000:])
        check_diff(json.loads(rc2.block("diff")), truth)
        check_diff(json.loads(rc2.block("dump")), truth, from_dump=True)
        with Bridge.core(binary, core2, quiet=True) as b:
            assert json.loads(b.view(["stacks", "--diff", c1, "--json"])) == \
                json.loads(rc2.block("diff"))
    finally:
        import shutil
        shutil.rmtree(str(tmp_path / "cores1"), ignore_errors=True)
        shutil.rmtree(str(tmp_path / "cores2"), ignore_errors=True)


def check_xref(doc, truth):
    verdicts = {v: sorted(g["id"] for g in doc["goroutines"] if g["verdict"] == v)
                for v in ("same", "changed", "gone", "new")}
    assert verdicts == {k: sorted(v) for k, v in truth.items()}, (verdicts, truth)
    for g in doc["goroutines"]:
        assert (g["then"] is None) == (g["verdict"] == "new"), g
        assert (g["now"] is None) == (g["verdict"] == "gone"), g
        if g["now"]:
            assert int(g["now"]["addr"], 16), g
        if g["verdict"] == "same":
            assert g["then"]["state"] == g["now"]["wait_reason"] == "chan receive", g
            assert g["now"]["blocked_on"].startswith("channel 0x"), g
    moved = [g for g in doc["goroutines"] if g["id"] in truth["changed"] and g["id"] != 1]
    assert moved and all(g["then"]["state"] == "chan receive" and
                         g["now"]["wait_reason"] == "chan send" for g in moved), moved


def test_xref(toolchain, mode, go_target, tmp_path):
    t = go_target("leakdiff", args=("xref",))
    truth = t.truth("xref")
    dump = os.path.join(t.fixture.out_dir, "xref.txt")
    garbage = tmp_path / "garbage.txt"
    garbage.write_text("hello\nthere\n")
    with open(dump) as f:
        text = f.read()
    cut = tmp_path / "cut.txt"
    # cut inside a frame's file:line line two thirds in (a cut that happens to fall
    # between two goroutines leaves a whole dump, with nothing to warn about)
    cut.write_text(text[: text.index("\n\t", len(text) * 2 // 3) + 5])
    r = t.gdb([("x", "go xref %s --json" % dump), ("t", "go xref %s" % dump),
               ("cut", "go xref %s --json" % cut),
               ("garbage", "go xref %s" % garbage), ("none", "go xref"),
               ("missing", "go xref %s/nope" % tmp_path)], timeout=300)
    for k in ("x", "t", "cut"):
        assert r.error(k) is None, (k, r.error(k), r.stderr[-2000:])
    doc = json.loads(r.block("x"))
    check_xref(doc, truth)
    assert doc["errors"] == []
    text_out = r.block("t")
    assert "4 same, 3 changed, 3 gone; 3 new" in text_out, text_out
    cutdoc = json.loads(r.block("cut"))
    assert any("ends inside goroutine" in e for e in cutdoc["errors"]), cutdoc["errors"]
    assert {g["id"] for g in cutdoc["goroutines"] if g["verdict"] != "new"} <= \
        {g["id"] for g in doc["goroutines"] if g["verdict"] != "new"}
    for k in ("garbage", "none", "missing"):
        _one_line(r, k)
    assert "Traceback" not in r.stderr
    with open_bridge(t) as b:
        assert json.loads(b.view(["xref", dump, "--json"])) == doc
        with pytest.raises(Exception) as e:
            b.view(["xref", str(garbage)])
        assert "\n" not in str(e.value).strip()
