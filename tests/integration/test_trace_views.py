"""`go trace FILE` and `go xref TRACE` (issue 17) against the truth of real clients.

The tracexref fixture (tests/fixtures/tracexref/main.go) traces itself while it parks a
known set of goroutines (chan receive and send, mutex, select, select{}, sleep, WaitGroup),
ends a few (one in syscalls), runs a GC, stops the trace, then starts three more after it
and records every id (xref.json) and runtime.Stack(all) (stacks.txt). One build and one
run per toolchain (1.22 on), and one gcore of that run.

- `go trace FILE --json`: every goroutine's transitions, end state, running, runnable,
  syscall and blocked-by-reason ns, creation time and creator and Ps equal the sums this
  test computes from `go tool trace -d=parsed` (-d=1 before Go 1.24) of the same
  toolchain, with the model docs/json.md states (spans from each transition to the next;
  a generation's status that repeats the state continues the span; spans open at the end
  close at the last event); the trace's GC mark and stop-the-world time and each P's
  sweeps and mark assists from the -d=parsed ranges. The same JSON in gdb with no program, through
  `delve-bridge trace` with no dlv, and through `gdb-go trace` (on the newest toolchain of
  the run: these front doors do not depend on the trace's version).
- `go xref TRACE`, live and on the core, in gdb and through the bridge: each parked
  goroutine alive, its last transition as -d=parsed gives it (time, Running->Waiting, the
  reason, M and P) and the reason the fixture's kind of wait gives in the trace, its wait
  reason now as runtime.Stack says it; the goroutines that ended during the trace not
  alive; the three started after the trace, and only goroutines the trace never saw,
  under unseen.
- Bad input, one line each and no traceback: an empty file, a pprof profile as a trace,
  a missing file, a trace cut in its middle (its events up to the cut and one line in
  errors), and for xref the trace of another program (the fixture built by another
  toolchain: same functions, other PCs).
"""
import gzip
import json
import os
import re
import shutil
import subprocess
import sys

import pytest

import harness

sys.path.insert(0, harness.REPO)
from delve_bridge import Bridge  # noqa: E402

PY = sys.executable
# the reason the trace gives each kind of wait (runtime/traceruntime.go's traceBlockReason)
TRACE_REASON = {"chan receive": "chan receive", "chan send": "chan send", "mutex": "sync",
                "select": "select", "select no cases": "forever", "sleep": "sleep",
                "waitgroup": "sync"}


def _minor(tc):
    m = re.match(r"go1\.(\d+)", tc)
    return int(m[1]) if m else 0


# --- the truth: go tool trace's own text --------------------------------------------------

_HEAD = re.compile(r"^M=(-?\d+) P=(-?\d+) G=(-?\d+) (\w+) Time=(\d+)(.*)$")


def parsed_text(tc, path):
    """`go tool trace -d=parsed FILE` (-d=1 before Go 1.24) of toolchain tc."""
    flag = "-d=parsed" if _minor(tc) >= 24 else "-d=1"
    p = subprocess.run([harness.toolchain(tc)["go"], "tool", "trace", flag, path],
                       capture_output=True, text=True, env=harness.go_env(tc), timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    return p.stdout


def transitions(text):
    """The state transitions of the text, in its order: dicts of m, p, g, time, res, id,
    from, to, reason; and the first and last events' times."""
    out, first, last = [], None, None
    for line in text.splitlines():
        m = _HEAD.match(line)
        if not m:
            continue
        last = int(m[5])
        if first is None:
            first = last
        if m[4] != "StateTransition":
            continue
        rest = m[6]
        r = re.search(r"\b(GoID|ProcID)=(-?\d+)", rest)
        st = re.search(r"\b(\w+)->(\w+)", rest)
        why = re.search(r'Reason="((?:[^"\\]|\\.)*)"', rest)
        out.append({"m": int(m[1]), "p": int(m[2]), "g": int(m[3]), "time": int(m[5]),
                    "res": "G" if r[1] == "GoID" else "P", "id": int(r[2]),
                    "from": st[1], "to": st[2], "reason": why[1] if why else ""})
    return out, first, last


def expected_goroutines(text, window=None):
    """Per goroutine, from the -d=parsed transitions: what `go trace --json` must say,
    over the whole trace or a window (a, b) in ns from the trace's first event. Built as
    each goroutine's list of state spans, then clipped to the window."""
    trs, first, last_t = transitions(text)
    lo, hi = (first + window[0], first + window[1]) if window else (first, last_t)
    end = min(hi, last_t)
    # the spans: a status (from Undetermined) that repeats the state is not a change
    per = {}
    for e in trs:
        if e["res"] != "G" or e["time"] > hi:
            continue
        evs = per.setdefault(e["id"], [])
        if e["from"] == "Undetermined" and evs and evs[-1]["to"] == e["to"]:
            continue
        evs.append(e)
    gs = {}
    for gid, evs in per.items():
        g = {"state": evs[-1]["to"], "transitions": 0, "running_ns": 0, "runnable_ns": 0,
             "syscall_ns": 0, "blocked_ns": {}, "ps": [], "created_ns": None,
             "created_by": None, "last": None}
        real = [e for e in evs if e["from"] != "Undetermined"]
        g["last"] = real[-1] if real else evs[-1]
        g["transitions"] = sum(1 for e in real if e["time"] >= lo)
        if g["state"] == "NotExist" and not g["transitions"] and g["last"]["time"] < lo:
            continue                     # gone before the window
        for e, nxt in zip(evs, evs[1:] + [None]):
            a, b = e["time"], (nxt["time"] if nxt else end)
            d = max(0, min(b, hi) - max(a, lo))
            st = e["to"]
            if st == "Running":
                g["running_ns"] += d
                if e["p"] >= 0 and (d > 0 or lo <= a) and e["p"] not in g["ps"]:
                    g["ps"].append(e["p"])
            elif st == "Runnable":
                g["runnable_ns"] += d
            elif st == "Syscall":
                g["syscall_ns"] += d
            elif st == "Waiting" and d:
                r = e["reason"] or "unknown"
                g["blocked_ns"][r] = g["blocked_ns"].get(r, 0) + d
            if e["from"] == "NotExist" and st == "Runnable":
                g["created_ns"], g["created_by"] = e["time"], e["g"]
        gs[gid] = g
    # the Ps: their Running and Idle spans the same way
    ps = {}
    for e in trs:
        if e["res"] != "P" or e["time"] > hi:
            continue
        evs = ps.setdefault(e["id"], [])
        if not (e["from"] == "Undetermined" and evs and evs[-1]["to"] == e["to"]):
            evs.append(e)
    pw = {}
    for pid, evs in ps.items():
        w = pw[pid] = {"running_ns": 0, "idle_ns": 0, "idle_spans": 0}
        for e, nxt in zip(evs, evs[1:] + [None]):
            d = max(0, min(nxt["time"] if nxt else end, hi) - max(e["time"], lo))
            if e["to"] == "Running":
                w["running_ns"] += d
            elif e["to"] == "Idle" and d:
                w["idle_ns"] += d
                w["idle_spans"] += 1
    return gs, trs, pw


def expected_gc(text, window=None):
    """GC time from the -d=parsed ranges: the trace's mark phases and stop-the-worlds, and
    per P its sweeps (Scope=Proc(N)) and the mark assists begun on it, clipped."""
    heads = [(int(m[1]), m[2], int(m[3]), m[4], m[5], m[6]) for m in re.finditer(
        r'^M=-?\d+ P=(-?\d+) G=-?\d+ (Range\w+) Time=(\d+) Name="([^"]*)" '
        r'Scope=(\w+)(?:\((-?\d+)\))?', text, re.M)]
    _, first, last = transitions(text)
    lo, hi = (first + window[0], first + window[1]) if window else (first, last)
    end = min(hi, last)
    out = {"gc_mark_ns": 0, "stw_ns": 0, "sweep": {}, "assist": {}}
    open_ = {}

    def account(name, scope, sid, begin, p, t):
        d = max(0, min(t, hi) - max(begin, lo))
        if not d:
            return
        if name == "GC concurrent mark phase":
            out["gc_mark_ns"] += d
        elif name.startswith("stop-the-world"):
            out["stw_ns"] += d
        elif scope == "Proc":
            out["sweep"][sid] = out["sweep"].get(sid, 0) + d
        elif name == "GC mark assist":
            out["assist"][p] = out["assist"].get(p, 0) + d
    for p, kind, t, name, scope, sid in heads:
        if t > hi or not (name.startswith("GC") or name.startswith("stop-the-world")):
            continue
        key = (name, scope, int(sid) if sid else -1)
        if kind == "RangeEnd":
            if key in open_:
                account(*key, *open_.pop(key), t)
        elif kind == "RangeBegin" or key not in open_:
            open_[key] = (t, p)
    for key, (t, p) in open_.items():
        account(*key, t, p, end)
    return out


def check_gc(doc, want):
    assert (doc["trace"]["gc_mark_ns"], doc["trace"]["stw_ns"]) == \
        (want["gc_mark_ns"], want["stw_ns"]), (doc["trace"], want)
    for p in doc["ps"]:
        assert p["gc_sweep_ns"] == want["sweep"].get(p["id"], 0), (p, want)
        assert p["gc_assist_ns"] == want["assist"].get(p["id"], 0), (p, want)


def check_summary(doc, want, want_ps):
    assert {p["id"]: {k: p[k] for k in ("running_ns", "idle_ns", "idle_spans")}
            for p in doc["ps"]} == want_ps
    got = {g["id"]: g for g in doc["goroutines"]}
    assert sorted(got) == sorted(want)
    for gid, w in want.items():
        g = got[gid]
        assert g["end_state"] == w["state"], (gid, g, w)
        assert g["transitions"] == w["transitions"], (gid, g, w)
        for k in ("running_ns", "runnable_ns", "syscall_ns", "blocked_ns", "ps",
                  "created_ns", "created_by"):
            assert g[k] == w[k], (gid, k, g[k], w[k])
        lt, wl = g["last_transition"], w["last"]
        assert (lt["time_ns"], lt["from"], lt["to"], lt["reason"], lt["m"], lt["p"]) == \
            (wl["time"], wl["from"], wl["to"], wl["reason"], wl["m"], wl["p"]), (gid, lt, wl)


# --- the truth: the fixture ---------------------------------------------------------------

def stack_reasons(text):
    """{id: the wait reason runtime.Stack printed (minutes cut)}."""
    out = {}
    for m in re.finditer(r"^goroutine (\d+) \[([^\]]*)\]:", text, re.M):
        out[int(m[1])] = re.sub(r", \d+ minutes$", "", m[2]).split(", locked")[0]
    return out


def check_xref(doc, truth, stacks, trs):
    rows = {g["id"]: g for g in doc["goroutines"]}
    last = {}
    for e in trs:
        if e["res"] == "G" and e["from"] != "Undetermined":
            last[e["id"]] = e
    for p in truth["parked"]:
        g = rows[p["id"]]
        e = last[p["id"]]
        lt = g["last_transition"]
        assert g["alive"] and g["end_state"] == "Waiting", g
        assert (lt["from"], lt["to"]) == ("Running", "Waiting"), g
        assert lt["reason"] == e["reason"] == TRACE_REASON[p["kind"]], (p, lt, e)
        assert (lt["time_ns"], lt["m"], lt["p"]) == (e["time"], e["m"], e["p"]), (lt, e)
        assert g["parked_ns"] == e["time"], g
        assert (g["last_p"], g["last_m"]) == (e["p"], e["m"]), (g, e)
        assert g["now"]["status"] == "waiting", g
        assert g["now"]["wait_reason"] == stacks[p["id"]], (g["now"], stacks[p["id"]])
        assert int(g["now"]["addr"], 16)
    for gid in truth["ended"]:
        assert not rows[gid]["alive"] and rows[gid]["end_state"] == "NotExist", rows[gid]
    assert set(truth["after"]) <= set(doc["unseen"]), (truth["after"], doc["unseen"])
    assert not set(doc["unseen"]) & set(rows)
    # the ones started after are the only goroutines of the fixture's own code unseen
    assert all(stacks.get(i) == "chan receive" for i in truth["after"])


def _ids(text):
    """'3-5, 8, …' -> ({3, 4, 5, 8}, cut)."""
    out, cut = set(), text.endswith("…")
    for part in text.rstrip(", …").split(", "):
        a, _, b = part.partition("-")
        out.update(range(int(a), int(b or a) + 1))
    return out, cut


def check_parked_summary(text, doc, truth):
    """`go xref TRACE`'s summary of the goroutines parked for good in the trace and
    waiting now: one line per (reason then, state now) with their count and ids, against
    the JSON (held against the trace above); no line per goroutine."""
    want = {}
    for g in doc["goroutines"]:
        if g["parked_ns"] is not None and g["now"] and g["now"]["status"] == "waiting":
            key = (g["last_transition"]["reason"] or "no reason", g["now"]["wait_reason"])
            want.setdefault(key, set()).add(g["id"])
    n = sum(len(v) for v in want.values())
    assert f"{n} goroutines parked in the trace and never ran again (still waiting now):" \
        in text, text
    assert not re.search(r"^goroutine \d+: parked", text, re.M), text
    got = {}
    for m in re.finditer(r"^  (\d+)\s+\((.*?)\)\s+now (.*?)\s+at \+\S+\s+ids? (.*)$", text, re.M):
        ids, cut = _ids(m[4])
        got[(m[2], m[3])] = (int(m[1]), ids, cut)
    assert set(got) == set(want), (got, want, text)
    for key, (count, ids, cut) in got.items():
        assert count == len(want[key]) and ids <= want[key] and (cut or ids == want[key]), \
            (key, got[key], want[key])
    p0 = truth["parked"][0]      # the chan receive one
    assert any(p0["id"] in ids for (r, now), (_, ids, _) in got.items()
               if (r, now) == ("chan receive", "chan receive")), (p0, got)


def _one_line(text):
    text = text.strip()
    assert text and "\n" not in text and "Traceback" not in text, text
    return text


@pytest.fixture
def traced(toolchain, tmp_path):
    if _minor(toolchain) < 22:
        pytest.skip("execution traces of the generation format: Go 1.22 on")
    binary = harness.build("tracexref", toolchain)
    (tmp_path / "out").mkdir()
    with harness.run_fixture(binary, out_dir=str(tmp_path / "out")) as fp:
        yield binary, fp


def test_trace_and_xref(toolchain, traced, tmp_path, request):
    binary, fp = traced
    truth = fp.truth("xref")
    stacks = stack_reasons(fp.truth("stacks.txt"))
    path = truth["trace"]
    text = parsed_text(toolchain, path)
    want, trs, want_ps = expected_goroutines(text)
    _, first, last = transitions(text)
    window = ((last - first) // 3, 2 * (last - first) // 3)    # its middle third
    for p in truth["parked"]:
        assert want[p["id"]]["state"] == "Waiting", (p, want[p["id"]])

    # bad input
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    pprof = tmp_path / "profile.pb.gz"
    pprof.write_bytes(gzip.compress(b"\x0a\x04\x08\x01\x10\x02" * 10))
    missing = tmp_path / "nope.trace"
    cut = tmp_path / "cut.trace"            # a trace cut in its middle: read up to the cut
    with open(path, "rb") as f:
        data = f.read()
    cut.write_bytes(data[:len(data) // 2])
    # a trace of another program: the fixture built by another toolchain
    other_tc = [t for t in harness.matrix_names() if _minor(t) >= 22 and t != toolchain
                and harness.toolchain(t)["go"] != harness.toolchain(toolchain)["go"]][-1]
    other_bin = harness.build("tracexref", other_tc)
    (tmp_path / "other").mkdir()
    with harness.run_fixture(other_bin, out_dir=str(tmp_path / "other")) as ofp:
        other = ofp.truth("xref")["trace"]
        core = harness.make_core(fp.pid, str(tmp_path / "cores"))
        try:        # (cores are big: never left behind)
            live = harness.run_gdb(binary, pid=fp.pid, commands=[
                ("trace", f"go trace {path} --json"),
                ("window", f"go trace {path} --json --window {window[0]}..{window[1]}"),
                ("trace text", f"go trace {path}"),
                ("trace p", f"go trace {path} --p"),
                ("trace g", f"go trace {path} --goroutine {truth['parked'][0]['id']}"),
                ("xref", f"go xref {path} --json"),
                ("xref text", f"go xref {path}"),
                ("other", f"go xref {other}"),
                ("empty", f"go trace {empty}"),
                ("pprof", f"go trace {pprof}"),
                ("missing", f"go trace {missing}"),
                ("xref empty", f"go xref {empty}"),
                ("cut", f"go trace {cut} --json"),
                ("xref missing", f"go xref {missing}")], timeout=300)
            for k in ("trace", "trace text", "trace p", "trace g", "xref", "xref text"):
                assert live.error(k) is None, (k, live.error(k), live.stderr[-2000:])
            doc = json.loads(live.block("trace"))
            check_summary(doc, want, want_ps)
            gc = expected_gc(text)
            assert gc["gc_mark_ns"] and gc["stw_ns"], gc      # the fixture's runtime.GC()
            check_gc(doc, gc)
            check_gc(json.loads(live.block("window")), expected_gc(text, window))
            check_summary(json.loads(live.block("window")),
                          *[x for i, x in enumerate(expected_goroutines(text, window))
                            if i != 1])
            check_xref(json.loads(live.block("xref")), truth, stacks, trs)
            xt = live.block("xref text")
            check_parked_summary(xt, json.loads(live.block("xref")), truth)
            assert "goroutines alive now that the trace never saw" in xt
            assert "main.parkRecv" in live.block("trace g")
            for k, word in (("other", "not a trace of this program"), ("empty", "empty"),
                            ("pprof", "not an execution trace"), ("missing", "cannot read"),
                            ("xref missing", "cannot read")):
                assert word in _one_line(live.error(k)), (k, live.error(k))
            _one_line(live.error("xref empty"))
            assert live.error("cut") is None, live.error("cut")
            cutdoc = json.loads(live.block("cut"))
            assert len(cutdoc["errors"]) == 1 and _one_line(cutdoc["errors"][0])
            # (whole generations only: a cut inside the first leaves no event)
            assert cutdoc["trace"]["events"] < doc["trace"]["events"], cutdoc["trace"]
            assert "Traceback" not in live.stderr, live.stderr[-3000:]

            with Bridge.attach(fp.pid, binary=binary, quiet=True) as b:
                check_xref(json.loads(b.view(["xref", path, "--json"])), truth, stacks, trs)
                with pytest.raises(Exception) as e:
                    b.view(["xref", other])
                assert "not a trace of this program" in _one_line(str(e.value))
        except BaseException:
            shutil.rmtree(str(tmp_path / "cores"), ignore_errors=True)
            raise
    harness._kill(fp.proc)
    try:
        oncore = harness.run_gdb(binary, core=core, commands=[("xref", f"go xref {path} --json")])
        assert oncore.error("xref") is None, (oncore.error("xref"), oncore.stderr[-2000:])
        check_xref(json.loads(oncore.block("xref")), truth, stacks, trs)
        with Bridge.core(binary, core, quiet=True) as b:
            check_xref(json.loads(b.view(["xref", path, "--json"])), truth, stacks, trs)
    finally:
        shutil.rmtree(str(tmp_path / "cores"), ignore_errors=True)

    # no target: gdb with no program, the bridge without dlv, gdb-go; these front doors
    # do not depend on the trace's version: on the newest toolchain of the run only
    import conftest
    if toolchain != [t for t in conftest._selected_toolchains(request.config)
                     if _minor(t) >= 22][-1]:
        return
    alone = harness.run_gdb(None, commands=[("trace", f"go trace {path} --json"),
                                            ("pprof", f"go trace {pprof}")])
    assert alone.error("trace") is None, (alone.error("trace"), alone.stderr[-2000:])
    assert json.loads(alone.block("trace")) == doc
    assert "not an execution trace" in _one_line(alone.error("pprof"))
    env = dict(os.environ, PATH="/nonexistent")   # no dlv, no go
    br = subprocess.run([PY, "-m", "delve_bridge", "trace", path, "--json"], env=env,
                        capture_output=True, text=True, cwd=harness.REPO, timeout=120)
    assert br.returncode == 0, br.stderr
    assert json.loads(br.stdout) == doc
    bad = subprocess.run([PY, "-m", "delve_bridge", "trace", str(empty)], env=env,
                         capture_output=True, text=True, cwd=harness.REPO, timeout=120)
    assert bad.returncode == 1 and "empty" in _one_line(bad.stderr), bad.stderr
    gg = subprocess.run([PY, "-m", "gdb_go", "trace", path, "--json"], env=env,
                        capture_output=True, text=True, cwd=harness.REPO, timeout=120)
    assert gg.returncode == 0, gg.stderr
    assert json.loads(gg.stdout) == doc
