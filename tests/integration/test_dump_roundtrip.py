"""Round trips: a goroutine dump of one stop, read back as OLD by `go stacks --diff` and
`go xref`, must say nothing changed, whatever level the dump was taken at. The runtime's
levels differ in what they print (level 2, GOTRACEBACK=system/crash: gp=/fp= headers,
runtime frames, gowrap and goexit frames, system goroutines; level 1, GOTRACEBACK=all
and pprof debug=2: none of these), and the comparison must not take that for a change.

- `go dump --level 1` and `--level 2` of the goroutines fixture, live: --diff and xref
  of that same stop, in gdb and through the bridge, then on a gcore of it (the fixture's
  goroutines are all parked: nothing moves between the dump and the core);
- the runtime's own text: SIGQUIT under GOTRACEBACK=crash, which prints at level 2
  (the signal handler makes it a runtime throw, so GOTRACEBACK=all prints the same
  level) and dumps a core at that instant, and the fixture's own runtime.Stack(all)
  text (level 1), against that core: the dumpdeep fixture, whose stacks the runtime
  cuts ("...N frames elided...", one at level 2 only) and whose goroutines start
  through wrappers (gowrap, a method value's -fm, generic functions); a panic of the
  goroutines fixture under GOTRACEBACK=crash, with busy goroutines, against its core.
  Goroutines the dump shows running may differ (the runtime prints no stack for them,
  or the signal handler's); every other one must be "same" in xref, and every --diff
  bucket that changed must hold only goroutines that were running.
"""
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import threading

import pytest

import harness
import runtime_dump

sys.path.insert(0, harness.REPO)
from delve_bridge import Bridge  # noqa: E402


def _views(path):
    return [("diff:" + path, "go stacks --diff %s --json" % path),
            ("xref:" + path, "go xref %s --json" % path)]


def _bridge_views(b, paths):
    out = {}
    for p in paths:
        out["diff:" + p] = json.loads(b.view(["stacks", "--diff", p, "--json"]))
        out["xref:" + p] = json.loads(b.view(["xref", p, "--json"]))
    return out


def _gdb_views(r, paths):
    out = {}
    for p in paths:
        for k, _ in _views(p):
            assert r.error(k) is None, (k, r.error(k), r.stderr[-2000:])
            out[k] = json.loads(r.block(k))
    return out


def check_round_trip(docs, path, text, where, least=25):
    """The --diff and xref of the dump at path (its text) against the stop it is of:
    nothing changed, but for the goroutines the dump shows running, runnable or in a
    syscall (every parked goroutine "same")."""
    dump = runtime_dump.parse(text)
    # running, runnable or in a syscall when the dump was printed: these may move before
    # the core (or the walk) is taken (a runnable goroutine 1 returning from its write)
    running = {i for i, g in dump.items()
               if g["status"] in ("running", "runnable") or g["status"].startswith("syscall")}
    parked = set(dump) - running
    assert len(parked) >= least, (where, path, text[-3000:])
    diff, xref = docs["diff:" + path], docs["xref:" + path]
    assert diff["errors"] == [] and xref["errors"] == [], (where, diff["errors"], xref["errors"])
    # --diff: a changed bucket holds only goroutines running then (its ids: the ones now,
    # or the dump's for a vanished bucket), so every parked goroutine's bucket is "same"
    changed = [b for b in diff["buckets"] if b["change"] != "same"]
    for b in changed:
        assert set(b["ids"]) <= running, (where, path, b)
    assert sum(b["before"] for b in changed) <= len(running), (where, path, changed)
    assert sum(b["after"] for b in changed) <= len(running), (where, path, changed)
    same = sum(b["after"] for b in diff["buckets"] if b["change"] == "same")
    assert same >= least - 1, (where, path, diff["buckets"])
    verdicts = {g["id"]: g["verdict"] for g in xref["goroutines"]}
    wrong = {i: verdicts.get(i) for i in parked if verdicts.get(i) != "same"}
    assert not wrong, (where, path, wrong)
    new = [g["id"] for g in xref["goroutines"] if g["verdict"] == "new"]
    assert not new, (where, path, new)
    return same


def test_go_dump_levels_read_back(toolchain, tmp_path):
    """go dump at levels 1 and 2, live: --diff and xref of the same stop, live and on
    a core, in gdb and through the bridge; level 2 holds the system goroutines too."""
    binary = harness.build("goroutines", toolchain)
    d1, d2, dc = (str(tmp_path / n) for n in ("level1.txt", "level2.txt", "core2.txt"))
    out = tmp_path / "out"
    out.mkdir()
    try:
        with harness.run_fixture(binary, out_dir=str(out)) as fp:
            r = harness.run_gdb(binary, pid=fp.pid, commands=[
                ("d1", "go dump --level 1 -o %s" % d1), ("d2", "go dump --level 2 -o %s" % d2)]
                + _views(d1) + _views(d2) + [("text", "go xref %s" % d2)], timeout=300)
            for k in ("d1", "d2"):
                assert r.error(k) is None, (k, r.error(k), r.stderr[-2000:])
            texts = {}
            for p in (d1, d2):
                with open(p) as f:
                    texts[p] = f.read()
            assert "gp=" in texts[d2] or "fp=" in texts[d2], texts[d2][:2000]
            n1, n2 = len(runtime_dump.parse(texts[d1])), len(runtime_dump.parse(texts[d2]))
            assert n2 > n1, (n1, n2)    # the runtime's own goroutines, at level 2 only
            live = _gdb_views(r, (d1, d2))
            for p in (d1, d2):
                check_round_trip(live, p, texts[p], "gdb live")
            for k, doc in live.items():   # live, nothing runs: nothing but "same"
                if k.startswith("diff:"):
                    assert {b["change"] for b in doc["buckets"]} == {"same"}, (k, doc)
            assert "%d same, 0 changed, 0 gone; 0 new" % n2 in r.block("text"), r.block("text")
            with Bridge.attach(fp.pid, binary=binary, quiet=True) as b:
                bridge = _bridge_views(b, (d2,))
            check_round_trip(bridge, d2, texts[d2], "bridge live")
            core = harness.make_core(fp.pid, str(tmp_path / "cores"))
        r = harness.run_gdb(binary, core=core, commands=[("dc", "go dump --level 2 -o %s" % dc)]
                            + _views(d1) + _views(d2) + _views(dc), timeout=300)
        assert r.error("dc") is None, r.error("dc")
        with open(dc) as f:
            texts[dc] = f.read()
        got = _gdb_views(r, (d1, d2, dc))
        for p in (d1, d2, dc):
            check_round_trip(got, p, texts[p], "gdb core")
        with Bridge.core(binary, core, quiet=True) as b:
            bridge = _bridge_views(b, (d1, d2))
        for p in (d1, d2):
            check_round_trip(bridge, p, texts[p], "bridge core")
    finally:
        shutil.rmtree(str(tmp_path / "cores"), ignore_errors=True)


def _unlimited_core():
    resource.setrlimit(resource.RLIMIT_CORE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))


def sigquit_dump(binary, work_dir, traceback_level="crash"):
    """Run a fixture with GOTRACEBACK=traceback_level until READY, then
    SIGQUIT it: (the runtime's text, the core). With "crash" the runtime dumps its
    core at that instant; otherwise it writes none, and a gcore is taken first."""
    out_dir = os.path.join(work_dir, "out")
    os.makedirs(out_dir, exist_ok=True)
    env = dict(os.environ, GOTRACEBACK=traceback_level, FIXTURE_OUT=out_dir)
    p = subprocess.Popen([binary, out_dir], cwd=work_dir, env=env, stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         errors="replace", preexec_fn=_unlimited_core)
    err = []
    pump = threading.Thread(target=lambda: err.append(p.stderr.read()), daemon=True)
    pump.start()
    try:
        line = p.stdout.readline()
        assert line.startswith("READY"), (line, p.poll())
        core = None
        if traceback_level != "crash":
            core = harness.make_core(p.pid, os.path.join(work_dir, "cores"))
        p.send_signal(signal.SIGQUIT)
        p.wait(timeout=120)
        pump.join(60)
    finally:
        harness._kill(p)
    if core is None:
        cores = [n for n in os.listdir(work_dir) if n.startswith("core")]
        assert cores, ("no core in %s" % work_dir, p.returncode, "".join(err)[-2000:])
        core = os.path.join(work_dir, cores[0])
    return "".join(err), core


def test_runtime_sigquit_dump_read_back(toolchain, tmp_path):
    """The runtime's SIGQUIT text (level 2) and the fixture's runtime.Stack(all) text
    (level 1) read back against the core the runtime dumped at the signal
    (GOTRACEBACK=crash), in gdb and through the bridge."""
    if harness.core_pattern_problem():
        pytest.skip(harness.core_pattern_problem())
    binary = harness.build("dumpdeep", toolchain)
    try:
        text, core = sigquit_dump(binary, str(tmp_path))
        path = str(tmp_path / "sigquit.txt")
        with open(path, "w") as f:
            f.write(text)
        assert "goroutine 1 " in text and " fp=0x" in text and "runtime.goexit" in text, \
            text[-3000:]
        stack = str(tmp_path / "out" / "stacks.txt")      # runtime.Stack(buf, true)
        with open(stack) as f:
            stack_text = f.read()
        assert " fp=0x" not in stack_text and "runtime.goexit" not in stack_text, stack_text
        # cut at both levels, and one more at level 2 (deep(97): 100 frames shown at 1);
        # Go 1.19 cuts after 100 frames, hidden ones counted, and says so only when it
        # printed 100 (at level 2)
        elided = [len(re.findall(r"^\.\.\..*frames elided\.\.\.$", t, re.M))
                  for t in (stack_text, text)]
        minor = int(harness.toolchain(toolchain)["version"].split(".")[1])
        if minor >= 21:
            assert elided[0] >= 2 and elided[1] == elided[0] + 1, elided
        else:
            assert elided[0] == 0 and elided[1] >= 3, elided
        r = harness.run_gdb(binary, core=core, commands=_views(path) + _views(stack),
                            timeout=300)
        got = _gdb_views(r, (path, stack))
        check_round_trip(got, path, text, "gdb", 8)
        check_round_trip(got, stack, stack_text, "gdb", 6)
        with Bridge.core(binary, core, quiet=True) as b:
            got = _bridge_views(b, (path, stack))
        check_round_trip(got, path, text, "bridge", 8)
        check_round_trip(got, stack, stack_text, "bridge", 6)
    finally:
        shutil.rmtree(str(tmp_path / "cores"), ignore_errors=True)
        for n in os.listdir(str(tmp_path)):
            if n.startswith("core"):
                os.unlink(os.path.join(str(tmp_path), n))


# (test_crash_dump holds every toolchain's crash dump against its core frame by frame)
PANIC_CASES = ("go1.19", "go1.22.10", "go1.26.6")


def test_runtime_panic_dump_read_back(toolchain, tmp_path):
    """GOTRACEBACK=crash and a panic, with busy goroutines (running or preempted at that
    instant) and system goroutines: the runtime's text against its core."""
    if toolchain not in PANIC_CASES:
        pytest.skip("a panic's dump is read back on %s only" % ", ".join(PANIC_CASES))
    if harness.core_pattern_problem():
        pytest.skip(harness.core_pattern_problem())
    binary = harness.build("goroutines", toolchain)
    try:
        text, core, _ = harness.crash_dump(binary, str(tmp_path), args=("crash",))
        path = str(tmp_path / "crash.txt")
        with open(path, "w") as f:
            f.write(text)
        r = harness.run_gdb(binary, core=core, commands=_views(path), timeout=300)
        check_round_trip(_gdb_views(r, (path,)), path, text, "gdb")
    finally:
        for n in os.listdir(str(tmp_path)):
            if n.startswith("core"):
                os.unlink(os.path.join(str(tmp_path), n))
