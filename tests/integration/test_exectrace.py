"""The execution-trace reader (gdb_go_ext/exectrace) against `go tool trace -d=parsed`.

For every toolchain of the matrix, the exectrace fixture (tests/fixtures/exectrace) writes
a runtime/trace trace of goroutines blocking on channels, a mutex, a select, a sleep, a
pipe read (syscalls) and a loopback TCP connection, with a runtime.GC(), pprof labels,
trace tasks, regions and logs, the CPU profiler on (CPU samples), staying parked across a
generation boundary. From go1.22 on,
the SAME toolchain's `go tool trace -d=parsed` (GOTOOLCHAIN=local; -d=1 on go1.22/1.23) is
the truth: every event must match ours - kind, time, M/P/G, the transition's resource, id,
from/to and reason, the stack and the transition stack frame by frame (function, file,
line, pc), and the fields it prints (normalised where the printing differs by design, see
tests/exectrace_truth.py). Then the same trace damaged (cut short, and a bit flipped, at
seeded random places): the events up to the damage must still be -d=parsed's, one for
one, and we report damage exactly when it fails. Before go1.22 the trace is the old
format: one line, not read.
"""
import random
import subprocess
import sys

import pytest

import exectrace_truth as T
import harness

sys.path.insert(0, harness.REPO)

from gdb_go_ext.exectrace import TraceFormatError, read_trace  # noqa: E402


def _minor(version):
    return int(version.split(".")[1])


def test_trace_matches_go_tool_trace(toolchain, tmp_path):
    binary = harness.build("exectrace", toolchain)
    path = str(tmp_path / "fixture.trace")
    p = subprocess.run([binary, path], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0 and "DONE" in p.stdout, p.stderr
    version = harness.toolchain_go_version(toolchain)
    if _minor(version) < 22:
        with pytest.raises(TraceFormatError) as ei:
            read_trace(path)
        assert "old-format" in str(ei.value) and "\n" not in str(ei.value)
        return
    info = harness.toolchain(toolchain)
    truth = T.parse(T.run_parsed(info["go"], harness.go_env(toolchain), path, version))
    tr = read_trace(path)
    ours = list(tr)
    assert tr.error is None
    assert T.compare(ours, truth) == []
    assert len(ours) == len(truth)
    # that was the bulk reader (every generation, CPU samples and syscalls included);
    # the step-by-step one gives the same records
    nbulk = tr.bulk_generations
    step = read_trace(path)
    step.bulk = False
    assert list(step.records()) == list(read_trace(path).records())
    # the fixture's scenario is all there
    kinds = {r["kind"] for r in truth}
    assert {"Sync", "StateTransition", "Metric", "RangeBegin", "RangeEnd", "TaskBegin",
            "TaskEnd", "RegionBegin", "RegionEnd", "Log"} <= kinds, kinds
    reasons = {e.reason for e in ours if e.kind == "StateTransition" and e.reason}
    for want in ("chan receive", "chan send", "select", "sleep", "network"):
        assert any(want in r for r in reasons), (want, reasons)
    assert any(r.startswith("sync") or "mutex" in r.lower() or "semacquire" in r.lower()
               for r in reasons), reasons
    assert any(e.to_state == "Syscall" for e in ours)
    # CPU samples (the fixture spins 100 ms with the CPU profiler on), with their stacks
    samples = [e for e in ours if e.kind == "StackSample"]
    assert samples and any(f.function == "main.main" for e in samples for f in e.stack)
    assert any(e.kind == "RangeBegin" and e.attrs.get("Name") == "GC concurrent mark phase"
               for e in ours)
    # several generations: statuses (X->X) after the first one's Undetermined->X
    assert any(e.kind == "StateTransition" and e.from_state == e.to_state for e in ours)
    # (a generation where an event must wait for another M's, e.g. a syscall's return
    # before the steal of its P, goes step by step)
    ngen = sum(1 for e in ours if e.kind == "Sync") - (1 if _minor(version) >= 25 else 0)
    assert ngen >= 2 and 1 <= nbulk <= ngen, (nbulk, ngen)
    assert tr.version == "go1.%d" % {22: 22, 23: 23, 24: 23, 25: 25}.get(_minor(version), 26)

    # damaged copies: Go's reader is the truth for what comes out before the damage too
    data = open(path, "rb").read()
    rng = random.Random(sum(map(ord, toolchain)))
    flipped = bytearray(data)
    i = rng.randrange(16, len(data))
    flipped[i] ^= 1 << rng.randrange(8)
    for name, bad in (("cut", data[:rng.randrange(len(data) // 4, len(data))]),
                      ("flip@%d" % i, bytes(flipped))):
        dpath = str(tmp_path / "damaged.trace")
        with open(dpath, "wb") as f:
            f.write(bad)
        env = dict(harness.go_env(toolchain), GOTOOLCHAIN="local", TZ="UTC")
        p = subprocess.run([info["go"], "tool", "trace", T.parsed_flag(version), dpath],
                           env=env, capture_output=True, timeout=600)
        want = T.parse(p.stdout.decode("utf-8", "replace"))
        tr = read_trace(bad)
        got = list(tr)
        assert T.compare(got, want) == [], name
        assert len(got) == len(want), name
        assert (tr.error is not None) == (p.returncode != 0), (name, tr.error, p.stderr[-300:])
        if tr.error is not None:
            assert tr.error.startswith("trace cut at byte ") and "\n" not in tr.error
