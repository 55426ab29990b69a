"""mapwatch --ebpf's pure pieces: the stack check's jbe, the report from raw BPF counts,
and the one line that names what eBPF lacks."""
import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, REPO)

from gdb_go_ext.binary import types as T  # noqa: E402
from gdb_go_ext.runtime import ebpfmap as E  # noqa: E402
from gdb_go_ext.runtime import probes as P  # noqa: E402
from gdb_go_ext.target import ebpf  # noqa: E402


def test_stack_check_jbe():
    # cmp 0x10(%r14),%rsp; jbe rel32
    assert E.stack_check_jbe(bytes.fromhex("493b66100f86a1000000")) == 4
    # cmp 0x10(%r14),%rsp; jbe rel8
    assert E.stack_check_jbe(bytes.fromhex("493b661076505548")) == 4
    # lea -0x30(%rsp),%r12; cmp 0x10(%r14),%r12; jbe
    assert E.stack_check_jbe(bytes.fromhex("4c8d6424d04d3b66100f8600010000")) == 9
    # lea -0x1000(%rsp),%r12 (disp32); cmp; jbe
    assert E.stack_check_jbe(bytes.fromhex("4c8da42400f0ffff4d3b6610760a")) == 12
    # no stack check (a NOSPLIT function), or a jump that is not jbe
    assert E.stack_check_jbe(bytes.fromhex("4883ec185548")) is None
    assert E.stack_check_jbe(bytes.fromhex("493b6610740a")) is None


def _probe(fn, op, variant, addr):
    return P.Probe(fn, fn, addr, op, variant)


def test_report_from_counts():
    probes = [_probe("runtime.mapaccess1_faststr", P.ACCESS1, P.FASTSTR, 0x1000),
              _probe("runtime.mapaccess2_faststr", P.ACCESS2, P.FASTSTR, 0x2000)]
    sites = [E.Site(0, probes[0], E.KIND_ENTRY, 0x1004), E.Site(1, probes[1], E.KIND_ENTRY, 0x2004)]
    long = b"x" * 64
    counts = [(E.MKEY.pack(0, E.FOUND, 1, b"a"), 3), (E.MKEY.pack(1, E.MISSING, 1, b"a"), 2),
              (E.MKEY.pack(1, E.FOUND, 1, b"b"), 1), (E.MKEY.pack(0, E.FOUND, 100, long), 4)]
    callers = [(E.CKEY.pack(0x5000, 0, E.FOUND), 7), (E.CKEY.pack(0x6000, 1, E.MISSING), 2),
               (E.CKEY.pack(0x6000, 1, E.FOUND), 1)]
    pend = [E.PENDING.pack(1, E.UNKNOWN, 1, b"b", 0x6000, 9)]
    where = {0x5000: {"function": "main.f", "file": "m.go", "line": 3},
             0x6000: {"function": "main.g", "file": "m.go", "line": 5}}
    key_t = T.GoType("string", T.STRING, 16)
    rep = E.build_report(map_addr=0xc000, map_type="map[string]int", key_t=key_t, probes=probes,
                         sites=sites, bias=0, counts=counts, goroutines=[(1, 6), (9, 5)],
                         callers=callers, pendings=pend, stats={"other_map_calls": 4},
                         seconds=2.0, stopped_by="timeout", errors=[], symbolize=where.get,
                         found=True)
    s = rep["summary"]
    assert s["hits"] == 11 and s["found"] == 8 and s["missing"] == 2 and s["unknown"] == 1
    keys = {(k["key"], k.get("length")): k for k in s["keys"]}
    assert keys[("a", None)]["by_op"] == {"access1": {"hits": 3, "found": 3, "missing": 0},
                                          "access2": {"hits": 2, "found": 0, "missing": 2}}
    assert keys[("b", None)]["unknown"] == 1 and keys[("b", None)]["hits"] == 2
    assert keys[("x" * 64, 100)]["truncated"] and rep["keys_truncated"]
    assert rep["string_key_bytes"] == 64
    assert s["by_goroutine"] == [{"goroutine": 1, "hits": 6}, {"goroutine": 9, "hits": 5}]
    assert [(c["function"], c["hits"], c["found"], c["missing"], c["unknown"])
            for c in s["callers"]] == [("main.f", 7, 7, 0, 0), ("main.g", 4, 1, 2, 1)]
    assert s["hits_per_second"] == 5.5 and rep["other_map_calls"] == 4
    assert rep["hits"] == [] and rep["engine"] == "ebpf"
    from gdb_go_ext.views.mapwatch import render_text
    text = render_text(rep)
    assert "string keys are cut at 64 bytes (some were)" in text
    assert "2 goroutines, 2 call sites" in text


def test_hits_list_from_ring_records():
    """--hits: the ring buffer's records in their order, the pending call last (found
    null), cut at max_hits with the rest counted, ring-full drops reported."""
    probes = [_probe("runtime.mapaccess1_faststr", P.ACCESS1, P.FASTSTR, 0x1000),
              _probe("runtime.mapaccess2_faststr", P.ACCESS2, P.FASTSTR, 0x2000)]
    sites = [E.Site(0, probes[0], E.KIND_ENTRY, 0x1004)]
    where = {0x5000: {"function": "main.f", "file": "m.go", "line": 3}}
    recs = [E.HIT.pack(0, E.FOUND, 1, b"a", 7, 0x5000, 1_500_000_000),
            E.HIT.pack(1, E.MISSING, 100, b"x" * 64, 8, 0x5000, 1_750_000_000)]
    pend = [E.PENDING.pack(1, E.UNKNOWN, 1, b"b", 0x5000, 9)]
    key_t = T.GoType("string", T.STRING, 16)

    def rep(max_hits, dropped=0):
        return E.build_report(map_addr=0xc000, map_type="map[string]int", key_t=key_t,
                              probes=probes, sites=sites, bias=0, counts=[], goroutines=[],
                              callers=[], pendings=pend, stats={"hits_dropped": dropped},
                              seconds=1.0, stopped_by="timeout", errors=[],
                              symbolize=where.get, found=True, hit_records=recs,
                              max_hits=max_hits, hits_beyond_max=0, t0_ns=1_000_000_000)
    r = rep(0)
    assert r["hits"] == [
        {"key": "a", "found": True, "function": "runtime.mapaccess1_faststr", "op": "access1",
         "goroutine": 7, "caller": where[0x5000], "t": 0.5},
        {"key": "x" * 64, "found": False, "function": "runtime.mapaccess2_faststr",
         "op": "access2", "goroutine": 8, "caller": where[0x5000], "t": 0.75, "length": 100,
         "truncated": True},
        {"key": "b", "found": None, "function": "runtime.mapaccess2_faststr", "op": "access2",
         "goroutine": 9, "caller": where[0x5000], "t": None}]
    assert r["hits_recorded"] and r["hits_beyond_max"] == 0 and r["errors"] == []
    r = rep(2, dropped=5)
    assert [h["key"] for h in r["hits"]] == ["a", "x" * 64] and r["hits_beyond_max"] == 1
    assert r["hits_dropped"] == 5 and "5 hits dropped" in r["errors"][0]
    from gdb_go_ext.views.mapwatch import render_text
    assert ("hits: 2 listed in order (at most 2; 1 more not listed); 5 dropped, the ring "
            "buffer was full") in render_text(r)


@pytest.mark.parametrize("what, patch, says", [
    ("pmu", ("UPROBE_PMU", "/nonexistent/uprobe"), "no uprobe PMU"),
    ("lib", ("LIBBPF", "libbpf-not-here.so.9"), "no libbpf-not-here.so.9"),
])
def test_problem_names_what_is_missing(monkeypatch, what, patch, says):
    monkeypatch.setattr(ebpf, patch[0], patch[1])
    monkeypatch.setattr(ebpf, "_lib", None)
    why = ebpf.problem()
    assert why is not None and says in why and "\n" not in why


def test_problem_without_object(monkeypatch):
    if not os.path.isdir(ebpf.UPROBE_PMU):
        pytest.skip("no uprobe PMU here")
    try:
        ebpf._libbpf()
    except OSError:
        pytest.skip("no libbpf.so.1 here")
    monkeypatch.setattr(ebpf, "find_object", lambda name=ebpf.OBJECT_NAME: None)
    assert "no compiled BPF object (mapwatch.bpf.o)" in ebpf.problem()
    assert "no compiled BPF object (sched.bpf.o)" in ebpf.problem("sched.bpf.o")


def test_gdbgo_mapwatch_bad_pid_is_one_line():
    p = subprocess.run([sys.executable, "-m", "gdb_go", "mapwatch", "999999999", "main.m"],
                       capture_output=True, text=True, cwd=REPO)
    assert p.returncode == 1
    assert p.stderr.startswith("gdb-go: ") and p.stderr.count("\n") == 1, p.stderr
