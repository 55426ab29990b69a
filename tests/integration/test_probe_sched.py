"""The scheduler probe (`gdb-go probe-sched PID`, `go sched --probe S`) against the
execution trace of the same window.

The fixture (tests/fixtures/schedprobe/main.go) waits for a stdin line, so the
uprobe is in first, then on GOMAXPROCS=2 runs a known workload (two spinners,
sleepers, a channel pair, goroutines contending on a mutex) while writing a
runtime/trace execution trace of exactly that window, and its own counts.

Truth on Go >= 1.22: the project's trace reader (exectrace + analysis/tracesummary).
Per P, the nanoseconds goroutines ran on it, as a fraction of the trace's window,
within 0.05 of the trace's; goroutines that parked (Running -> Waiting) per wait
reason within 5% (at least 1) of the trace's count of the same transitions, the
trace's reason names mapped to the runtime's (trace "sync" is every sync.* and
semacquire park). On 1.19 and 1.21 (traces our reader does not read) the probe is
checked against the fixture's own counts: every time.Sleep parks once, every
channel receive at most once, both Ps busy.

Every toolchain of the matrix, plain and PIE, through gdb-go; gdb and the bridge
once, on go1.26.6. Skipped, with the reason, where eBPF cannot run.
"""
import collections
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

import pytest

import harness
from uprobe_harness import StdinFixture, gdb_go, probed_in_window, progress_rate, text_bytes

sys.path.insert(0, harness.REPO)
from gdb_go_ext.binary.elf import ElfFile  # noqa: E402
from gdb_go_ext.binary.pclntab import PCLineTable  # noqa: E402
from gdb_go_ext.runtime import ebpfmap, ebpfsched  # noqa: E402
from gdb_go_ext.target import ebpf  # noqa: E402

GDB_TC = "go1.26.6"
NO_EBPF = ebpf.problem(ebpfsched.OBJECT)
pytestmark = pytest.mark.skipif(NO_EBPF is not None, reason=f"eBPF cannot run: {NO_EBPF}")
NO_TRACE_READER = ("go1.19", "go1.21.13")     # traces before Go 1.22's format


class Fixture(StdinFixture):
    """The schedprobe fixture, waiting for its stdin line; go() runs the (traced) workload
    and returns its own counts."""

    def __init__(self, binary):
        self.dir = tempfile.mkdtemp(prefix="schedprobe-")
        self.trace = os.path.join(self.dir, "trace.out")
        self.counts = os.path.join(self.dir, "counts.json")

        def load():
            with open(self.counts) as f:
                return json.load(f)
        super().__init__([binary, self.trace, self.counts], load)


def _site(pid):
    """casgstatus's probe: (elf, link-time address, PIE bias)."""
    exe = "/proc/%d/exe" % pid
    elf = ElfFile.open(exe)
    st = ebpfsched.probe_sites(elf, PCLineTable.from_elf(elf))[0]
    return elf, st.address, ebpfmap.pie_bias(pid, exe, elf)


def _byte_at(pid, addr):
    return text_bytes(pid, [addr])[addr]


def _assert_no_uprobe_left(pid):
    elf, addr, bias = _site(pid)
    assert _byte_at(pid, addr + bias) == elf.read_vaddr(addr, 1)[0], "uprobe left"


def _trace_truth(path):
    """(trace window ns, {P: goroutine running ns}, Counter of Running->Waiting by reason)."""
    from gdb_go_ext.analysis.tracecolumns import summarize_trace
    from gdb_go_ext.exectrace import read_trace
    s = summarize_trace(read_trace(path))
    assert s.error is None, s.error
    per_p = collections.Counter()
    for g in s.goroutines.values():
        for p, ns in g.ps.items():
            per_p[p] += ns
    parks = collections.Counter()
    for ev in read_trace(path):
        if (ev.kind == "StateTransition" and ev.resource == "Goroutine"
                and ev.from_state == "Running" and ev.to_state == "Waiting"):
            parks[ev.reason] += 1
    return s.end_ns - s.start_ns, per_p, parks


def _trace_reason(reason):
    """The trace's name for a runtime wait reason (its traceBlockReason)."""
    if reason.startswith("sync.") and reason != "sync.Cond.Wait" or reason == "semacquire":
        return "sync"
    return reason


def _check_against_trace(rep, counts, trace_path):
    dur, truth_p, truth_parks = _trace_truth(trace_path)
    got_p = {p["p"]: p["run_ns"] for p in rep["ps"]}
    assert set(truth_p) <= set(got_p) | {-1}, (truth_p, got_p)
    for p, ns in truth_p.items():
        if p < 0:
            continue
        ours, theirs = got_p.get(p, 0) / dur, ns / dur
        assert abs(ours - theirs) <= 0.05, ("P%d busy" % p, ours, theirs)
    ours = collections.Counter()
    for reason, n in rep["blocked"].items():
        ours[_trace_reason(reason)] += n
    for reason in ("sleep", "chan receive", "chan send", "sync"):
        o, t = ours[reason], truth_parks[reason]
        assert abs(o - t) <= max(1, 0.05 * t), (reason, o, t, dict(ours), dict(truth_parks))
    assert truth_parks["sleep"] >= counts["sleeps"]
    return dur, truth_p


def _check_plausible(rep, counts):
    """Without a trace: the fixture's own counts."""
    window = counts["window_ns"]
    assert len(rep["ps"]) == counts["gomaxprocs"] == 2, rep["ps"]
    for p in rep["ps"]:
        assert 0.5 <= p["run_ns"] / window <= 1.05, (p["p"], p["run_ns"], window)
    b = rep["blocked"]
    # every time.Sleep parked once; main's last sleep too; the probe's window is longer
    assert counts["sleeps"] <= b.get("sleep", 0) <= counts["sleeps"] * 1.05 + 2, b
    assert 0 < b.get("chan receive", 0) <= counts["chan_receives"] + 2, b


def _check_shape(rep):
    assert rep["engine"] == "ebpf" and rep["errors"] == [], rep["errors"]
    assert rep["probes"][0]["function"] == "runtime.casgstatus"
    for p in rep["ps"]:
        d = p["delay"]
        assert p["runs"] > 0 and d["count"] > 0
        assert d["p50_ns"] <= d["p99_ns"]
        assert d["max_ns"] <= d["p99_ns"] or d["max_ns"] >= d["p50_ns"]
        assert sum(b["count"] for b in d["buckets"]) == d["count"]
        assert abs(p["busy"] - p["run_ns"] / (rep["seconds"] * 1e9)) < 0.01


def _check(rep, counts, fx, toolchain):
    _check_shape(rep)
    if toolchain in NO_TRACE_READER:
        _check_plausible(rep, counts)
    else:
        _check_against_trace(rep, counts, fx.trace)


@pytest.mark.parametrize("pie", [False, True], ids=["plain", "pie"])
def test_gdbgo_probe_sched_matches_the_trace(toolchain, pie, tmp_path):
    binary = harness.build("schedprobe", toolchain, pie=pie)
    fx = Fixture(binary)
    try:
        out = str(tmp_path / "sched.json")
        p = subprocess.Popen(gdb_go() + ["probe-sched", str(fx.pid), "--json", "-o", out,
                                          "--seconds", "120"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             cwd=harness.REPO)
        line = p.stderr.readline()
        assert re.match(r"probing the scheduler of %d \((1 probe|3 probes)\)$" % fx.pid, line.strip()), \
            (line, p.stderr.read() if p.poll() is not None else "")
        counts = fx.go()
        p.send_signal(signal.SIGINT)
        _, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
        with open(out) as f:
            rep = json.load(f)
        assert rep["stopped_by"] == "interrupt"
        _check(rep, counts, fx, toolchain)
        # the syscall probes are there exactly where objdump shows reentersyscall and
        # exitsyscall switching the status with their own lock cmpxchg
        dis = subprocess.run(["objdump", "-d", "--no-show-raw-insn", binary],
                             capture_output=True, text=True).stdout
        own_cas, fn, insn = set(), None, {}
        for line in dis.splitlines():
            m = re.match(r"^[0-9a-f]+ <(.+)>:$", line)
            if m:
                fn = m.group(1)
            elif fn in ("runtime.reentersyscall", "runtime.exitsyscall") and "lock cmpxchg" in line:
                own_cas.add(fn)
            elif fn == "runtime.casgstatus" and re.match(r"^\s*[0-9a-f]+:\s", line):
                insn[int(line.split(":")[0], 16)] = line.split("\t")[-1].split()[0]
        assert {p["function"] for p in rep["probes"][1:]} == own_cas, (rep["probes"], own_cas)
        # casgstatus's probe is on objdump's jb (the _Gscan check), its registers untouched
        _, addr, _ = _site(fx.pid)
        assert insn[addr] == "jb" and rep["probes"][0]["at"] == "status check jb", insn.get(addr)
        _assert_no_uprobe_left(fx.pid)
        assert fx.proc.poll() is None
    finally:
        fx.close()


def _probed_in_window(fx, run):
    """run() probes with the program running; the workload starts once the uprobe is in."""
    _, addr, bias = _site(fx.pid)
    return probed_in_window(fx, addr + bias, "runtime.casgstatus", run)


def test_gdb_sched_probe_matches_the_trace(toolchain, tmp_path):
    binary = harness.build("schedprobe", toolchain)
    fx = Fixture(binary)
    try:
        out = str(tmp_path / "gdb.json")
        counts, res = _probed_in_window(fx, lambda: harness.run_gdb(pid=fx.pid, commands=[
            ("bad", "go sched --probe -1"),
            ("mixed", "go sched --probe 1 --runq 3"),
            ("probe", "go sched --probe 8 --json -o %s" % out),
            ("text", "go sched --probe 0.2"),
            ("bps", "info breakpoints")], timeout=120))
        assert "No breakpoints" in res.block("bps"), res.block("bps")
        for name, said in (("bad", "more than 0"), ("mixed", "--probe goes alone")):
            err = res.error(name) or ""
            assert said in err and "Traceback" not in res.block(name), (name, res.block(name))
        assert re.search(r"^P\s+busy\s+runs\s+delay p50", res.block("text"), re.M), \
            res.block("text")
        with open(out) as f:
            rep = json.load(f)
        assert rep["stopped_by"] == "timeout"
        _check(rep, counts, fx, toolchain)
        _assert_no_uprobe_left(fx.pid)
        assert fx.proc.poll() is None
    finally:
        fx.close()


def test_bridge_sched_probe_matches_the_trace(toolchain):
    from delve_bridge import Bridge
    binary = harness.build("schedprobe", toolchain)
    fx = Fixture(binary)
    try:
        with Bridge.attach(fx.pid, binary=binary, quiet=True) as b:
            counts, text = _probed_in_window(fx, lambda: b.view(
                ["sched", "--probe", "8", "--json"]))
        rep = json.loads(text)
        _check(rep, counts, fx, toolchain)
        _assert_no_uprobe_left(fx.pid)
        assert fx.proc.poll() is None
    finally:
        fx.close()


def test_gdbgo_probe_sched_errors_are_one_line():
    r = subprocess.run(gdb_go() + ["probe-sched", "999999999", "--seconds", "1"],
                       capture_output=True, text=True, cwd=harness.REPO, timeout=60)
    assert r.returncode == 1
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("gdb-go: "), r.stderr
    assert "Traceback" not in r.stderr


def test_sigkill_of_probe_sched_removes_its_uprobes():
    """SIGKILL mid-run: the kernel removes the uprobe within a second, the program runs on
    (a channel ping-pong: every hop a park and a wake-up, so every hop is probed)."""
    binary = harness.build("schedprobe", GDB_TC)
    with harness.run_fixture(binary, args=("pingpong",)) as fp:
        time.sleep(0.3)
        free = progress_rate(fp, 1.0)
        p = subprocess.Popen(gdb_go() + ["probe-sched", str(fp.pid), "--seconds", "60"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             cwd=harness.REPO)
        assert p.stderr.readline().startswith("probing the scheduler of %d" % fp.pid)
        elf, addr, bias = _site(fp.pid)
        assert _byte_at(fp.pid, addr + bias) == 0xCC
        probed = progress_rate(fp, 1.0)
        p.kill()
        p.wait()
        t0 = time.monotonic()
        while _byte_at(fp.pid, addr + bias) == 0xCC:
            assert time.monotonic() - t0 < 1.0, "a uprobe outlived its prober by 1 s"
            time.sleep(0.01)
        _assert_no_uprobe_left(fp.pid)
        after = progress_rate(fp, 1.0)
        print("ping-pong hops/s: free %.0f, probed %.0f, after SIGKILL %.0f"
              % (free, probed, after))
        assert fp.proc.poll() is None and after > 0
