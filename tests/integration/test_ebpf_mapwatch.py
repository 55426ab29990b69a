"""`mapwatch --ebpf` against the ebpflookups fixture's own record of its lookups.

The fixture (tests/fixtures/ebpflookups/main.go) waits for a stdin line, so the
uprobes are in first, then makes a known sequence of lookups in main.intMap and
main.strMap (keys present and missing, m[k] and v, ok := m[k], five goroutines
plus 600 fresh ones calling 0..599 frames deep, decoy maps of the same types read
alongside) and writes every lookup it made to sequence.json. Every count the
probe reports must equal the sequence's: per key, op and found/missing; per
goroutine; per call site (function and line). Afterwards the program's text read
from /proc holds no int3 where a uprobe was. The RETs we probe are checked against
objdump's disassembly of the same functions.

With --hits (every gdb-go run on the matrix, and the gdb run) the hits list, read
from the BPF ring buffer, must be the fixture's own sequence for each goroutine, in
its order (key, op, found, call site); across goroutines the order may interleave.

Runs on every toolchain of the matrix, plain and PIE, through `gdb-go mapwatch PID`;
gdb and the bridge once, on go1.26.6. Skipped, with the reason, only on a machine
where eBPF cannot run (no CAP_BPF, no uprobe PMU, no libbpf.so.1, no BPF object).
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
from gdb_go_ext.runtime import ebpfmap, probes  # noqa: E402
from gdb_go_ext.target import ebpf  # noqa: E402

GDB_TC = "go1.26.6"
NO_EBPF = ebpf.problem()
pytestmark = pytest.mark.skipif(NO_EBPF is not None, reason=f"eBPF cannot run: {NO_EBPF}")
MAPS = {"main.intMap": "int", "main.strMap": "str"}


def Fixture(binary):
    """The ebpflookups fixture, started and waiting for its stdin line; go() returns the
    sequence of lookups it made."""
    out = tempfile.mkdtemp(prefix="ebpflookups-")

    def load():
        with open(os.path.join(out, "sequence.json")) as f:
            return json.load(f)
    return StdinFixture([binary, out], load)


def _entry_sites(pid):
    """(address, original byte) of each map function's jbe, loaded addresses."""
    exe = "/proc/%d/exe" % pid
    elf = ElfFile.open(exe)
    pcl = PCLineTable.from_elf(elf)
    found = probes.resolve_entries(list(probes.FUNCTIONS), probes.pclntab_lookup(pcl))
    sites, _, _ = ebpfmap.find_sites(elf, pcl, [p for p in found if p.op in ("access1", "access2")],
                                     True)
    bias = ebpfmap.pie_bias(pid, exe, elf)
    return elf, bias, sites


def _assert_no_uprobe_left(pid, reps):
    elf = ElfFile.open("/proc/%d/exe" % pid)
    bias = ebpfmap.pie_bias(pid, "/proc/%d/exe" % pid, elf)
    addrs = {int(u["address"], 16) for r in reps for u in r["uprobes"]}
    assert addrs
    now = text_bytes(pid, addrs)
    for a in addrs:
        assert now[a] == elf.read_vaddr(a - bias, 1)[0], "uprobe left at %#x" % a


def _expected(seq, name, found):
    keys, gor, callers = collections.Counter(), collections.Counter(), collections.Counter()
    for e in seq:
        if e["map"] != name:
            continue
        key = e["key"]
        if isinstance(key, str) and len(key.encode()) > ebpfmap.KEY_BYTES:
            key = (key[:ebpfmap.KEY_BYTES], len(key))
        keys[(json.dumps(key), e["op"], e["found"] if found else None)] += 1
        gor[e["g"]] += 1
        callers[(e["func"], e["line"], e["found"] if found else None)] += 1
    return keys, gor, callers


def _got(rep, found):
    s = rep["summary"]
    keys = collections.Counter()
    for k in s["keys"]:
        key = (k["key"], k["length"]) if k.get("truncated") else k["key"]
        for op, d in k["by_op"].items():
            if found:
                keys[(json.dumps(key), op, True)] += d["found"]
                keys[(json.dumps(key), op, False)] += d["missing"]
                assert d["hits"] == d["found"] + d["missing"], k
            else:
                keys[(json.dumps(key), op, None)] += d["hits"]
    gor = collections.Counter({d["goroutine"]: d["hits"] for d in s["by_goroutine"]})
    callers = collections.Counter()
    for c in s["callers"]:
        if found:
            callers[(c["function"], c["line"], True)] += c["found"]
            callers[(c["function"], c["line"], False)] += c["missing"]
        else:
            callers[(c["function"], c["line"], None)] += c["hits"]
    return +keys, +gor, +callers


def _check(rep, seq, name, found):
    exp, got = _expected(seq, name, found), _got(rep, found)
    for what, e, g in zip(("keys", "goroutines", "callers"), exp, got):
        diff = {k: (e[k], g[k]) for k in set(e) | set(g) if e[k] != g[k]}
        assert not diff, "%s %s (expected, got): %s" % (name, what, sorted(diff.items())[:20])
    s = rep["summary"]
    assert s["hits"] == sum(exp[0].values())
    assert rep["engine"] == "ebpf" and rep["errors"] == [], rep["errors"]
    assert s["unknown"] == (0 if found else s["hits"])
    if name == "str":
        assert rep["string_key_bytes"] == ebpfmap.KEY_BYTES and rep["keys_truncated"]


def _per_goroutine(seq, name, found):
    """{goid: [(key, op, found, function, line)]} in the fixture's order."""
    out = collections.defaultdict(list)
    for e in seq:
        if e["map"] == name:
            key = e["key"]
            if isinstance(key, str) and len(key.encode()) > ebpfmap.KEY_BYTES:
                key = (key[:ebpfmap.KEY_BYTES], len(key))
            out[e["g"]].append((json.dumps(key), e["op"], e["found"] if found else None,
                                e["func"], e["line"]))
    return out


def _check_hits(rep, seq, name, found, max_hits=None):
    """--hits: each goroutine's hits are its lookups in the fixture's order (all of them,
    or with max_hits the first max_hits hits of the window, each a prefix)."""
    exp = _per_goroutine(seq, name, found)
    got = collections.defaultdict(list)
    for h in rep["hits"]:
        key = (h["key"], h["length"]) if h.get("truncated") else h["key"]
        got[h["goroutine"]].append((json.dumps(key), h["op"], h["found"],
                                    h["caller"]["function"], h["caller"]["line"]))
    assert rep["hits_recorded"] and rep["hits_dropped"] == 0
    total = sum(len(v) for v in exp.values())
    if max_hits is None:
        assert rep["hits_beyond_max"] == 0
        assert dict(got) == dict(exp)
    else:
        assert len(rep["hits"]) == max_hits
        assert rep["hits_beyond_max"] == total - max_hits
        for g, hs in got.items():
            assert hs == exp[g][:len(hs)], g
    # each goroutine's hits in time order (records of calls on two CPUs may reach the
    # ring in either order: the list is the ring's order, not the clock's)
    by_g = collections.defaultdict(list)
    for h in rep["hits"]:
        if h["t"] is not None:
            by_g[h["goroutine"]].append(h["t"])
    assert by_g and all(ts == sorted(ts) and ts[0] >= 0 for ts in by_g.values())


def _cli(pid, expr, out, found=True, extra=()):
    p = subprocess.Popen(gdb_go() + ["mapwatch", str(pid), expr, "--json", "-o", out,
                                      "--seconds", "120"] + (["--found"] if found else [])
                         + list(extra),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         cwd=harness.REPO)
    line = p.stderr.readline()
    assert re.match(r"watching %s \(map 0x[0-9a-f]+, \d+ probes\)$" % re.escape(expr),
                    line.strip()), (line, p.stderr.read() if p.poll() is not None else "")
    return p


@pytest.mark.parametrize("pie", [False, True], ids=["plain", "pie"])
def test_gdbgo_counts_are_exact(toolchain, pie, tmp_path):
    binary = harness.build("ebpflookups", toolchain, pie=pie)
    fx = Fixture(binary)
    try:
        outs = {m: str(tmp_path / (m + ".json")) for m in MAPS}
        ps = {m: _cli(fx.pid, m, outs[m], extra=["--hits"]) for m in MAPS}
        seq = fx.go()
        for m, p in ps.items():
            p.send_signal(signal.SIGINT)
            _, err = p.communicate(timeout=60)
            assert p.returncode == 0, err
        reps = {}
        for m, name in MAPS.items():
            with open(outs[m]) as f:
                reps[m] = json.load(f)
            assert reps[m]["stopped_by"] == "interrupt"
            _check(reps[m], seq, name, True)
            _check_hits(reps[m], seq, name, True)
        # some of the deep goroutines' lookups grew the stack in the map function and
        # started it again: counted once above, and seen (on every toolchain, 2-4 of them)
        assert reps["main.intMap"]["restarts_skipped"] > 0
        _assert_no_uprobe_left(fx.pid, reps.values())
        # the probed RETs are objdump's
        elf, bias, sites = _entry_sites(fx.pid)
        ours = collections.defaultdict(set)
        for s in sites:
            if s.kind == ebpfmap.KIND_RET:
                ours[s.probe.symbol].add(s.address)
        dis = subprocess.run(["objdump", "-d", "--no-show-raw-insn", binary],
                             capture_output=True, text=True).stdout
        theirs, fn = collections.defaultdict(set), None
        for line in dis.splitlines():
            m = re.match(r"^([0-9a-f]+) <(.+)>:$", line)
            if m:
                fn = m.group(2)
            elif fn in ours and re.match(r"^\s*[0-9a-f]+:\s+ret", line):
                theirs[fn].add(int(line.split(":")[0], 16))
        assert ours == theirs
    finally:
        fx.close()


def test_gdbgo_counts_without_found(tmp_path):
    binary = harness.build("ebpflookups", GDB_TC)
    fx = Fixture(binary)
    try:
        out = str(tmp_path / "int.json")
        p = _cli(fx.pid, "main.intMap", out, found=False, extra=["--hits", "--max-hits", "50"])
        seq = fx.go()
        p.send_signal(signal.SIGTERM)
        _, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
        with open(out) as f:
            rep = json.load(f)
        _check(rep, seq, "int", False)
        _check_hits(rep, seq, "int", False, max_hits=50)
        _assert_no_uprobe_left(fx.pid, [rep])
    finally:
        fx.close()


def _probed_in_window(fx, function, run):
    """run() probes with the program running; the lookups are made once a uprobe is in
    (at function's jbe)."""
    _, bias, sites = _entry_sites(fx.pid)
    entry = next(s for s in sites if s.kind == ebpfmap.KIND_ENTRY
                 and s.probe.function == function)
    return probed_in_window(fx, entry.address + bias, function, run)


def test_gdb_ebpf_counts_are_exact(toolchain, tmp_path):
    binary = harness.build("ebpflookups", toolchain)
    fx = Fixture(binary)
    try:
        out = str(tmp_path / "gdb.json")
        seq, res = _probed_in_window(fx, "runtime.mapaccess1_fast64", lambda: harness.run_gdb(pid=fx.pid, commands=[
            ("probe", "go mapwatch main.intMap --ebpf --found --hits --seconds 12 --json -o %s"
             % out),
            ("bps", "info breakpoints")], timeout=120))
        assert "No breakpoints" in res.block("bps"), res.block("bps")
        with open(out) as f:
            rep = json.load(f)
        assert rep["stopped_by"] == "timeout"
        _check(rep, seq, "int", True)
        _check_hits(rep, seq, "int", True)
        _assert_no_uprobe_left(fx.pid, [rep])
        assert fx.proc.poll() is None
    finally:
        fx.close()


def test_bridge_ebpf_counts_are_exact(toolchain, tmp_path):
    from delve_bridge import Bridge
    binary = harness.build("ebpflookups", toolchain)
    fx = Fixture(binary)
    try:
        with Bridge.attach(fx.pid, binary=binary, quiet=True) as b:
            seq, text = _probed_in_window(fx, "runtime.mapaccess1_faststr", lambda: b.view(
                ["mapwatch", "main.strMap", "--ebpf", "--found", "--seconds", "12", "--json"]))
        rep = json.loads(text)
        _check(rep, seq, "str", True)
        assert rep["hits"] == [] and "hits_recorded" not in rep
        _assert_no_uprobe_left(fx.pid, [rep])
        assert fx.proc.poll() is None
    finally:
        fx.close()


def test_sigkill_of_the_prober_removes_every_uprobe():
    """SIGKILL mid-run: the kernel removes the uprobes, the program runs on at full speed
    within a second, never stopped."""
    binary = harness.build("lookups", GDB_TC)
    with harness.run_fixture(binary, args=("tight",)) as fp:
        time.sleep(0.5)
        free = progress_rate(fp, 1.0)
        p = subprocess.Popen(gdb_go() + ["mapwatch", str(fp.pid), "main.intMap", "--found",
                                          "--json"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             cwd=harness.REPO)
        assert p.stderr.readline().startswith("watching main.intMap")
        probed = progress_rate(fp, 1.0)
        p.kill()
        p.wait()
        t0 = time.monotonic()
        elf = ElfFile.open("/proc/%d/exe" % fp.pid)
        pcl = PCLineTable.from_elf(elf)
        f = pcl.lookup_func("runtime.mapaccess1_fast64")
        jbe = f.entry + ebpfmap.stack_check_jbe(elf.read_vaddr(f.entry, 32))
        while text_bytes(fp.pid, [jbe])[jbe] == 0xCC:
            assert time.monotonic() - t0 < 1.0, "a uprobe outlived its prober by 1 s"
            time.sleep(0.01)
        time.sleep(max(0.0, 1.0 - (time.monotonic() - t0)))
        after = progress_rate(fp, 1.0)
        print("lookups loop: free %.0f/s, probed %.0f/s, after SIGKILL %.0f/s"
              % (free, probed, after))
        assert fp.proc.poll() is None
        assert probed < free and after > 2 * probed, (free, probed, after)


@pytest.mark.skipif(os.geteuid() != 0 or not os.path.exists("/usr/bin/setpriv"),
                    reason="needs root and setpriv to drop the capabilities")
def test_without_capabilities_one_line_and_the_target_runs_on():
    """Root without CAP_BPF/CAP_PERFMON (a pod without the privilege): gdb-go mapwatch and
    probe-sched each say which capability is missing, in one line, and never touch the
    program, which still answers afterwards."""
    binary = harness.build("ebpflookups", GDB_TC)
    fx = Fixture(binary)
    try:
        drop = ["setpriv", "--inh-caps=-all", "--bounding-set=-bpf,-perfmon,-sys_admin", "--"]
        for argv in (["mapwatch", str(fx.pid), "main.intMap", "--seconds", "1"],
                     ["probe-sched", str(fx.pid), "--seconds", "1"]):
            r = subprocess.run(drop + gdb_go() + argv, capture_output=True, text=True,
                               cwd=harness.REPO, timeout=60)
            assert r.returncode != 0, (argv, r.stdout, r.stderr)
            lines = r.stderr.splitlines()
            assert len(lines) == 1 and lines[0].startswith("gdb-go: "), (argv, r.stderr)
            assert "CAP_BPF" in lines[0] and "Traceback" not in r.stderr, (argv, r.stderr)
        assert fx.proc.poll() is None
        seq = fx.go()               # the program still runs and makes its lookups
        assert seq
    finally:
        fx.close()
