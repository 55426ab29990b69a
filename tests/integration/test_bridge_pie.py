"""The Delve bridge on position-independent executables (go build -buildmode=pie).

A PIE is linked at small addresses and loaded at a random bias; ELF symbol values must
be moved by that bias before they are read (runtime.allgs, runtime.gStatusStrings, a map
global) or used as a breakpoint (mapwatch). The goroutines and maps fixtures, built as
PIEs, are held against the runtime's own truth (runtime.Stack, the maps' JSON), live
(dlv attach, dlv exec) and on a core (dlv core), with Debian's dlv 1.20.2 (go1.19) and the
newest dlv (go1.26.6), and against gdb's JSON for the same target; a probe's breakpoints
must sit at the loaded entry addresses. The bias itself is held
against the kernel's AT_ENTRY (/proc/PID/auxv, the core's NT_AUXV note, read here with
pyelftools), and is 0, found without one call to dlv, for an ordinary executable.
"""
import json
import struct
import sys

import pytest

import harness
from test_bridge import _cli, _dlv_processes, _strip_debugger_specific, _tracer, open_bridge
from test_goroutines import check_goroutines, parse_runtime_stacks
from test_maps import _canon, _check_layout_facts, _swiss_expected

sys.path.insert(0, harness.REPO)
from delve_bridge import Bridge  # noqa: E402
from delve_bridge.rpc import RPCError  # noqa: E402
from delve_bridge.target import DelveTarget  # noqa: E402
from gdb_go_ext.errors import DecodeError  # noqa: E402

# Debian's dlv 1.20.2 serves the first, the newest dlv the second
PIE_TOOLCHAINS = ("go1.19", "go1.26.6")
ET_DYN, AT_ENTRY = 3, 9


def _pie_only(toolchain):
    if toolchain not in PIE_TOOLCHAINS:
        pytest.skip(f"PIE tests run on {', '.join(PIE_TOOLCHAINS)} only (suite time)")


def _elf(path):
    with open(path, "rb") as f:
        head = f.read(64)
    e_type, = struct.unpack_from("<H", head, 16)
    e_entry, = struct.unpack_from("<Q", head, 24)
    return e_type, e_entry


def _kernel_bias(t):
    """AT_ENTRY minus the file's e_entry, as the kernel recorded it: /proc/PID/auxv
    live, the core's NT_AUXV note (pyelftools, not our reader) on a core."""
    _, e_entry = _elf(t.binary)
    if t.mode == "live":
        with open(f"/proc/{t.pid}/auxv", "rb") as f:
            raw = f.read()
        pairs = dict(struct.iter_unpack("<QQ", raw[:len(raw) - len(raw) % 16]))
        return pairs[AT_ENTRY] - e_entry
    from elftools.elf.elffile import ELFFile
    with open(t.core, "rb") as f:
        for seg in ELFFile(f).iter_segments():
            if seg["p_type"] != "PT_NOTE":
                continue
            for note in seg.iter_notes():
                if note["n_type"] == "NT_AUXV":
                    desc = note["n_desc"]   # raw bytes, or decoded by newer pyelftools
                    pairs = dict(struct.iter_unpack("<QQ", desc[:len(desc) - len(desc) % 16])) \
                        if isinstance(desc, bytes) else \
                        {AT_ENTRY if e["a_type"] == "AT_ENTRY" else -1: e["a_val"] for e in desc}
                    return pairs[AT_ENTRY] - e_entry
    raise AssertionError("the core has no AT_ENTRY")


class _Refusing:
    """A dlv client that answers nothing (records what was asked)."""

    def __init__(self, eval_answer=None):
        self.calls = []
        self.eval_answer = eval_answer

    def call(self, method, params=None, timeout=None):
        self.calls.append(method)
        if method == "Eval" and self.eval_answer is not None:
            return self.eval_answer
        raise RPCError(method, "refused by the test")


def _check_bias(t, b):
    """The bridge's bias: non-zero, the kernel's, and the same from its auxv fallback."""
    assert _elf(t.binary)[0] == ET_DYN, "not built as a PIE"
    bias = b.target.load_bias
    assert bias != 0 and bias == _kernel_bias(t), (hex(bias), hex(_kernel_bias(t)))
    elf_text = b.target.elf.symbol("runtime.text")[0]
    assert b.target.symbol_address("runtime.text") == elf_text + bias
    # the fallback when dlv says nothing: the process's or the core's auxv
    alone = DelveTarget(_Refusing(), t.binary, is_live=(t.mode == "live"),
                        pid=t.pid if t.mode == "live" else None, core=t.core)
    try:
        assert alone.load_bias == bias
    finally:
        alone.close()
    return bias


def test_bridge_pie_goroutines_match_runtime_stack(toolchain, mode, go_target, tmp_path):
    _pie_only(toolchain)
    t = go_target("goroutines", pie=True)
    truth = parse_runtime_stacks(t.truth("stacks.txt"))
    meta = t.truth("meta")
    with open_bridge(t) as b:
        assert not b.dlv.check_off, b.dlv.note
        _check_bias(t, b)
        data = json.loads(b.view(["goroutines", "--json", "-t", "200"]))
        check_goroutines(data, truth, meta, toolchain)
        pcs = [int(f["pc"], 16) for g in data["goroutines"] for f in g["stack"]]
        assert pcs and min(pcs) >= b.target.load_bias
        stacks = json.loads(b.view(["stacks", "--json"]))
        # the same through ExamineMemory alone, where the report's reads failed
        b.target.direct, b._rt = None, None
        b.target.invalidate()
        assert json.loads(b.view(["goroutines", "--json", "-t", "200"])) == data
        assert "go_version" in json.loads(b.view(["version", "--json"]))
        gid = next(g for g, v in truth.items() if any(f[0] == "main.deep" for f in v["frames"]))
        assert "main.deep" in b.view(["goroutine", str(gid)])
    if mode == "live":
        assert t.fixture.proc.poll() is None and _tracer(t.pid) == 0
        # the command line, as reported
        r = _cli("attach", str(t.pid), "stacks", "--json")
        assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
        assert json.loads(r.stdout)["total"] == stacks["total"]
    # gdb relocates symbols itself: the bridge's JSON must be gdb's
    r = t.gdb([("g", "go goroutines --json -t 200"), ("s", "go stacks --json")])
    assert r.error("g") is None, r.stdout[-2000:]
    theirs = json.loads(r.block("g"))
    check_goroutines(theirs, truth, meta, toolchain)
    if mode == "core":
        assert _strip_debugger_specific(data) == _strip_debugger_specific(theirs)
        assert stacks == json.loads(r.block("s"))
    else:   # a running process: the goroutines the fixture parked are where they were
        parked = {gid for gid, v in truth.items()
                  if v["state"] not in ("running", "runnable") and gid != int(meta["main_goid"])}
        mine = {g["id"]: g for g in data["goroutines"] if g["id"] in parked}
        gdbs = {g["id"]: g for g in theirs["goroutines"] if g["id"] in parked}
        assert mine.keys() == gdbs.keys() == parked
        for gid in parked:
            a, c = dict(mine[gid]), dict(gdbs[gid])
            for k in ("is_current", "wait_minutes", "waitsince"):
                a.pop(k, None), c.pop(k, None)
            assert a == c, gid


def test_bridge_pie_exec(toolchain, tmp_path):
    """dlv exec launches the PIE itself (wherever it loads it): the same truth."""
    _pie_only(toolchain)
    binary = harness.build("goroutines", toolchain, pie=True)
    out = tmp_path / "out"
    out.mkdir()
    with Bridge.exec(binary, [str(out)], quiet=True) as b:
        assert b.wait_output("READY", 60), list(b.dlv.stdout_lines)[-5:]
        truth = parse_runtime_stacks((out / "stacks.txt").read_text())
        meta = json.loads((out / "meta.json").read_text())
        # (the view halts the running program first: dlv answers nothing while it runs)
        check_goroutines(json.loads(b.view(["goroutines", "--json", "-t", "200"])),
                         truth, meta, toolchain)
        _check_bias(harness.Target(binary, "live", toolchain, None, pid=b.pid), b)


MAP_SAMPLE = ["main.mSmall", "main.mStructKey", "main.mLarge", "main.mDeleted"]


def test_bridge_pie_maps_match_runtime(toolchain, mode, go_target):
    _pie_only(toolchain)
    t = go_target("maps", pie=True)
    truth = t.truth("maps")["maps"]
    swiss = _swiss_expected(toolchain)
    failures = []
    with open_bridge(t) as b:
        assert not b.dlv.check_off, b.dlv.note
        _check_bias(t, b)
        mine = {}
        for name, want in sorted(truth.items()):
            got = mine[name] = json.loads(b.view(["map", name, "--json", "--layout"]))
            assert got["impl"] == ("swiss" if swiss else "hmap"), name
            for k in ("type", "nil", "len", "addr"):
                assert got[k] == want[k], (name, k, got[k], want[k])
            assert got["errors"] == [], (name, got["errors"])
            if _canon(got["entries"]) != _canon(want["entries"]):
                failures.append(name)
            _check_layout_facts(name, got, swiss)
        assert "-> \"v3\"" in b.view(["map", "main.mStructKey", "--key",
                                      '{"X": 3, "Y": -3, "Name": "p3"}'])
        assert "absent" in b.view(["map", "'main.mSmall'", "--key", "nope"])
        # an expression only Delve evaluates: its address comes back already loaded
        via_dlv = json.loads(b.view(["map", "*(&main.mSmall)", "--json"]))
        assert _canon(via_dlv["entries"]) == _canon(truth["main.mSmall"]["entries"])
        assert via_dlv["addr"] == truth["main.mSmall"]["addr"]
        # ExamineMemory alone
        b.target.direct, b._rt = None, None
        b.target.invalidate()
        for name in MAP_SAMPLE:
            assert json.loads(b.view(["map", name, "--json", "--layout"])) == mine[name], name
        with pytest.raises(Exception) as e:
            b.view(["map", "main.pt0"])
        assert "not a map" in str(e.value)
    assert not failures, failures
    if mode == "core":  # gdb on the same core (live, the maps could change in between)
        r = t.gdb([(n, f"go map {n} --json --layout") for n in MAP_SAMPLE], timeout=300)
        for n in MAP_SAMPLE:
            assert r.error(n) is None, r.error(n)
            assert mine[n] == json.loads(r.block(n)), n


def test_bridge_pie_mapwatch_breakpoints_are_relocated(toolchain, tmp_path):
    """Probes put their breakpoints at loaded entry addresses: the ELF symbol plus the
    kernel's bias, and every hit is decoded as on an ordinary executable."""
    _pie_only(toolchain)
    from test_mapwatch import _assert_keeps_running, _assert_no_int3, _check_reads
    binary = harness.build("lookups", toolchain, pie=True)
    assert _elf(binary)[0] == ET_DYN
    with harness.run_fixture(binary) as fp:
        t = harness.Target(binary, "live", toolchain, fp, pid=fp.pid)
        with Bridge.attach(fp.pid, binary=binary, quiet=True) as b:
            bias = _check_bias(t, b)
            rep = json.loads(b.view(["mapwatch", "main.strMap", "--max-hits", "12",
                                     "--timeout", "60", "--json"]))
            assert rep["stopped_by"] == "max-hits", (rep["stopped_by"], rep["errors"])
            _check_reads(rep, "main.strMap", 12)
            for p in rep["probes"]:
                assert int(p["address"], 16) == b.target.elf.symbol(p["symbol"])[0] + bias, p
            bps = b.client.call("ListBreakpoints", {"All": True}).get("Breakpoints") or []
            assert not [x for x in bps if x.get("id", 0) > 0], bps
        assert _tracer(fp.pid) == 0
        _assert_keeps_running(fp, "after the probe")
        _assert_no_int3(fp.pid, [rep])
        assert not [l for l in _dlv_processes() if str(fp.pid) in l]


NEWEST = harness.matrix_names()[-1]


def test_load_bias_is_zero_for_an_ordinary_executable_without_asking_dlv():
    binary = harness.build("goroutines", NEWEST)
    assert _elf(binary)[0] != ET_DYN
    client = _Refusing()
    t = DelveTarget(client, binary, is_live=True)
    try:
        assert t.load_bias == 0
        for name in ("runtime.allgs", "runtime.text", "runtime.gStatusStrings", "main.main"):
            assert t.symbol_address(name) == t.elf.symbol(name)[0], name
        assert t.symbol_address("main.noSuchSymbol") is None
        assert client.calls == []
    finally:
        t.close()


def test_pie_bias_is_found_once_and_refusal_is_one_sentence():
    binary = harness.build("goroutines", PIE_TOOLCHAINS[-1], pie=True)
    from gdb_go_ext.binary.elf import ElfFile
    md = ElfFile.open(binary).symbol("runtime.firstmoduledata")[0]
    loaded = 0x7f0000000000
    client = _Refusing({"Variable": {"name": "runtime.firstmoduledata", "addr": md + loaded}})
    t = DelveTarget(client, binary, is_live=True)
    try:
        for _ in range(3):
            assert t.symbol_address("runtime.allgs") == t.elf.symbol("runtime.allgs")[0] + loaded
        assert client.calls == ["Eval"]
    finally:
        t.close()
    # dlv answers nothing usable (an error, or an address off a page boundary) and there
    # is no process or core to read the auxv of: one sentence, no traceback
    for answer in (None, {"Variable": {"addr": md + loaded + 8}}, {"Variable": {}}):
        t = DelveTarget(_Refusing(answer), binary, is_live=True)
        try:
            with pytest.raises(DecodeError) as e:
                t.symbol_address("runtime.allgs")
            msg = str(e.value)
            assert "position-independent" in msg and "\n" not in msg, msg
        finally:
            t.close()
