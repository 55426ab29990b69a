"""`delve-bridge ... mapwatch` against real dlv and the lookups fixture.

The same ground truth as tests/test_mapwatch.py (the gdb half): the lookups
fixture looks up k = i % 20 in four maps, keys 0..9 present and 10..19 absent;
every captured hit must carry the pattern's key and found flag, from the right
function and caller. After each probe (ended by --max-hits, by --timeout, by
Ctrl-C or SIGTERM to the bridge) dlv's list holds none of our breakpoints, the
program's text read from /proc after dlv detached holds no int3 where we put
one, nobody traces it any more, and its own progress counter keeps rising.
"""
import json
import os
import signal
import subprocess
import sys
import time

import harness
from test_bridge import _dlv_processes, _tracer
from test_mapwatch import MAPS, PRESENT, _assert_keeps_running, _assert_no_int3, _check_reads

sys.path.insert(0, harness.REPO)
from delve_bridge import Bridge  # noqa: E402

NEWEST = harness.matrix_names()[-1]


def _our_addresses(reps):
    addrs = set()
    for rep in reps:
        addrs |= {int(p["address"], 16) for p in rep["probes"]}
        addrs |= {int(a, 16) for a in rep["return_breakpoints"]}
    return addrs


def _assert_dlv_has_none_of(b, reps):
    """Before detaching: dlv's own list has no breakpoint at any of our addresses."""
    addrs = _our_addresses(reps)
    bps = b.client.call("ListBreakpoints", {"All": True}).get("Breakpoints") or []
    left = [bp for bp in bps if bp.get("addr") in addrs or set(bp.get("addrs") or ()) & addrs]
    assert not left, left
    assert b._breakpoints == [], b._breakpoints


def test_bridge_mapwatch_keys_and_found(toolchain):
    binary = harness.build("lookups", toolchain)
    with harness.run_fixture(binary) as fp:
        with Bridge.attach(fp.pid, binary=binary, quiet=True) as b:
            assert not b.dlv.check_off, b.dlv.note
            reps = {}
            for name in MAPS:
                rep = json.loads(b.view(["mapwatch", name, "--max-hits", "24", "--timeout", "60",
                                         "--json"]))
                assert rep["stopped_by"] == "max-hits", (name, rep["stopped_by"], rep["errors"])
                assert rep["summary"]["hits"] == 24 and rep["summary"]["unknown"] == 0, name
                assert rep["type"].startswith("map[")
                _check_reads(rep, name, 24)
                reps[name] = rep
            # writes: key 1000 is assigned while absent and deleted while present
            w = json.loads(b.view(["mapwatch", "main.intMap", "--writes", "--max-hits", "60",
                                   "--timeout", "60", "--json"]))
            assert w["stopped_by"] == "max-hits" and w["errors"] == [], (w["stopped_by"], w["errors"])
            ops = {}
            for h in w["hits"]:
                ops.setdefault(h["op"], []).append(h)
                if h["op"] in ("assign", "delete"):
                    assert h["key"] == 1000 and h["found"] == (h["op"] == "delete"), h
                    assert h["caller"]["function"] == ("main.setInt" if h["op"] == "assign"
                                                       else "main.delInt"), h
                else:
                    assert h["found"] == (h["key"] in PRESENT), h
            assert ops.get("assign") and ops.get("delete"), sorted(ops)
            text = b.view(["mapwatch", "main.strMap", "--max-hits", "6"], color=False)
            assert "6 hits" in text and "stopped after --max-hits" in text, text
            assert "main.lookupStr" in text, text
            _assert_dlv_has_none_of(b, list(reps.values()) + [w])
        assert _tracer(fp.pid) == 0
        _assert_keeps_running(fp, "after the probes")
        _assert_no_int3(fp.pid, list(reps.values()) + [w])


def _cli_probe(pid, out, sig, entry):
    """The CLI probing main.strMap until `sig` arrives once our entry int3 is in."""
    p = subprocess.Popen([sys.executable, "-m", "delve_bridge", "attach", str(pid), "mapwatch",
                          "main.strMap", "--max-hits", "100000000", "--timeout", "120", "--json",
                          "-o", out], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, cwd=harness.REPO,
                         env=dict(os.environ, NO_COLOR="1"))
    try:
        deadline = time.time() + 60
        armed = False
        while time.time() < deadline and p.poll() is None and not armed:
            with open("/proc/%d/mem" % pid, "rb") as mem:
                mem.seek(entry)
                armed = mem.read(1) == b"\xcc"
            time.sleep(0.05)
        assert armed, "the probe never put its breakpoint in"
        time.sleep(0.5)
        p.send_signal(sig)
        stdout, stderr = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert "Traceback" not in stderr, stderr
    return p.returncode, stdout, stderr


def test_bridge_mapwatch_interrupted(tmp_path):
    """--timeout, Ctrl-C and SIGTERM to the bridge: the probe ends, every breakpoint
    goes, dlv detaches, the program runs on; on a core, one sentence."""
    binary = harness.build("lookups", NEWEST)
    with harness.run_fixture(binary) as fp:
        with Bridge.attach(fp.pid, binary=binary, quiet=True) as b:
            t0 = time.monotonic()
            t = json.loads(b.view(["mapwatch", "main.strMap", "--max-hits", "100000000",
                                   "--timeout", "1", "--json"]))
            assert time.monotonic() - t0 < 20
            assert t["stopped_by"] == "timeout", t["stopped_by"]
            assert 0.8 <= t["summary"]["seconds"] < 10, t["summary"]["seconds"]
            known = [h for h in t["hits"] if h["found"] is not None]
            assert known and len(t["hits"]) - len(known) <= 1
            _check_reads(dict(t, hits=known), "main.strMap", 1, summary=False)
            _assert_dlv_has_none_of(b, [t])
        assert _tracer(fp.pid) == 0
        _assert_keeps_running(fp, "after the timeout")
        _assert_no_int3(fp.pid, [t])

        entry = min(int(p["address"], 16) for p in t["probes"]
                    if p["function"] == "runtime.mapaccess1_faststr")
        # Ctrl-C: the probe ends as `interrupt` and the report is still written
        out = str(tmp_path / "int.json")
        rc, stdout, stderr = _cli_probe(fp.pid, out, signal.SIGINT, entry)
        assert rc == 0, (rc, stderr)
        rep = json.load(open(out))
        assert rep["stopped_by"] == "interrupt" and rep["summary"]["hits"] > 0, rep["stopped_by"]
        assert fp.proc.poll() is None and _tracer(fp.pid) == 0, stderr
        _assert_keeps_running(fp, "after Ctrl-C")
        _assert_no_int3(fp.pid, [t, rep])
        # SIGTERM: cleaned up, no report
        rc, stdout, stderr = _cli_probe(fp.pid, str(tmp_path / "term.json"), signal.SIGTERM, entry)
        assert rc != 0 and "interrupted" in stderr, (rc, stderr)
        assert fp.proc.poll() is None and _tracer(fp.pid) == 0, stderr
        assert not [l for l in _dlv_processes() if str(fp.pid) in l]
        _assert_keeps_running(fp, "after SIGTERM")
        _assert_no_int3(fp.pid, [t, rep])

    with harness.target_for("lookups", NEWEST, "core", str(tmp_path / "core")) as c:
        with Bridge.core(c.binary, c.core, quiet=True) as b:
            try:
                b.view(["mapwatch", "main.intMap"])
            except Exception as e:
                assert str(e) == "probes need a live process, and this target is a core file.", e
            else:
                raise AssertionError("mapwatch ran on a core")
