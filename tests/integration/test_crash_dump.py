"""Same-instant truth: the goroutines fixture panics under GOTRACEBACK=crash, the runtime
prints every goroutine (runtime frames and system goroutines included) and dumps a core
at that instant. gdb and the bridge, on that core, must say what the runtime printed:
the same goroutine ids, status or wait reason, locked to thread, every frame's function
and file:line innermost first, created by, and wait minutes; on every toolchain of the
matrix, plain and PIE."""
import concurrent.futures
import json
import os
import sys

import pytest

import harness
import runtime_dump

sys.path.insert(0, harness.REPO)
from delve_bridge import Bridge  # noqa: E402

LIST = ["goroutines", "--json", "-t", "200"]
# the slower test: each fixture waits 61 s after two GCs, so the dump prints minutes
MINUTES_CASES = (("go1.19", False), ("go1.22.10", True), ("go1.26.6", False))


def crash(toolchain, work_dir, pie, mode="crash", fixture="goroutines"):
    """(binary, the runtime's dump parsed, its text, the core) of the fixture's crash."""
    problem = harness.core_pattern_problem()
    if problem:
        pytest.skip(problem)
    os.makedirs(work_dir, exist_ok=True)
    binary = harness.build(fixture, toolchain, pie=pie)
    text, core, _ = harness.crash_dump(binary, str(work_dir), args=(mode,))
    return binary, runtime_dump.parse(text), text, core


def check_against_dump(data, dump, text):
    """Our goroutines JSON against the runtime's dump of the same instant, printed at
    GOTRACEBACK=crash, where the runtime hides no frame (showfuncinfo shows every one above
    level 1): every frame it printed, innermost first, by function, file:line and pc
    (none for an inlined frame), wrappers and runtime frames alike; only runtime.goexit,
    the bottom, is left to the created-by line (runtime_dump.printed_stack). Then the
    header (status or wait reason, minutes, locked to thread; gp= and m= from Go 1.22)
    and created by F (in goroutine P from Go 1.21). Goroutines the dump shows running (the
    crashing one, busy ones not yet stopped) are compared by id only: the runtime prints
    no stack for them, or one from a signal handler. Returns the goroutines compared in
    full."""
    assert runtime_dump.level(text) == 2, text[:2000]
    ours = {g["id"]: g for g in data["goroutines"]}
    assert set(ours) == set(dump), ("ours only", sorted(set(ours) - set(dump)),
                                    "runtime only", sorted(set(dump) - set(ours)))
    compared = []
    for gid, want in sorted(dump.items()):
        if want["status"] == "running":
            continue
        g = ours[gid]
        assert g["error"] is None, g
        state = g["wait_reason"] if g["status"] == "waiting" else g["status"]
        assert state == want["status"], (gid, state, want["header"])
        assert g["locked_to_thread"] == want["locked"], (gid, want["header"])
        if want["gp"] is not None:
            assert int(g["addr"], 16) == int(want["gp"], 16), (gid, g["addr"], want["header"])
            assert g["m"] == (None if want["m"] == "nil" else int(want["m"])), \
                (gid, g["m"], want["header"])
        mine = [(f["function"], f["file"], f["line"], None if f["inlined"] else int(f["pc"], 16))
                for f in g["stack"]]
        assert mine == runtime_dump.printed_stack(want), (gid, want["header"])
        created = g["created_by"]
        if want["created_by"] is None:
            assert created is None, (gid, created)
        else:
            assert (created["function"], created["file"], created["line"]) == want["created_by"], gid
        if want["parent"] is not None:  # (printed from Go 1.21)
            assert g["parent_id"] == want["parent"], gid
        if g["status"] in ("waiting", "syscall"):
            assert g["wait_minutes"] == want["minutes"], (gid, g["wait_minutes"], want["header"])
        else:
            assert want["minutes"] == 0, want["header"]
        compared.append(gid)
    return compared


def gdb_goroutines(binary, core, *more):
    r = harness.run_gdb(binary, core=core, commands=[("list", "go " + " ".join(LIST + list(more)))])
    assert r.error("list") is None, r.stdout[-3000:] + r.stderr[-3000:]
    return json.loads(r.block("list"))


def bridge_goroutines(binary, core):
    with Bridge.core(binary, core, quiet=True) as b:
        assert not b.dlv.check_off, b.dlv.note
        return json.loads(b.view(LIST))


@pytest.mark.parametrize("pie", [False, True], ids=["plain", "pie"])
def test_core_matches_runtime_dump(toolchain, pie, tmp_path):
    binary, dump, text, core = crash(toolchain, tmp_path, pie)
    assert len(dump) >= 40, text[-3000:]
    # what this comparison must cover: a syscall, a locked thread, inlined frames,
    # async preemption (the frame after asyncPreempt is symbolized at its own pc)
    assert any(g["status"] == "syscall" for g in dump.values())
    assert any(g["locked"] for g in dump.values())
    assert any(f[0] == "main.recvInline" for g in dump.values() for f in g["frames"])
    preempted = [i for i, g in dump.items() if g["status"] != "running" and
                 any(f[0] == "runtime.asyncPreempt" for f in g["frames"])]
    assert preempted, "no async-preempted goroutine in the dump:\n" + text[-4000:]
    # go statements' closures the runtime prints (abi.FuncIDWrapper): runtime.gcenable's
    # (.func1 and .func2 before Go 1.22, .gowrap1 and .gowrap2 since) and main.main's
    # around main.labelled, which calls pprof.Do (main.main.funcN / gowrapN)
    outer = [runtime_dump.printed_stack(g)[-1][0] for g in dump.values() if g["frames"]]
    assert sum(f.startswith("runtime.gcenable.") for f in outer) == 2, outer
    assert any(runtime_dump.printed_stack(g)[-2][0] == "main.labelled" for g in dump.values()
               if len(g["frames"]) > 2), text[-4000:]
    for name, data in (("gdb", gdb_goroutines(binary, core)),
                       ("bridge", bridge_goroutines(binary, core))):
        compared = check_against_dump(data, dump, text)
        assert len(compared) >= len(dump) - 8, (name, compared)
        assert set(preempted) <= set(compared), name


def test_core_wait_minutes_match_runtime_dump(tmp_path):
    """The fixtures of a few toolchains wait together; each dump then prints minutes for
    its parked goroutines and its syscall, and a core's clock must give the same."""
    with concurrent.futures.ThreadPoolExecutor(len(MINUTES_CASES)) as pool:
        runs = list(pool.map(lambda case: crash(case[0], tmp_path / case[0], case[1],
                                                "crash-minutes"), MINUTES_CASES))
    for (toolchain, _), (binary, dump, text, core) in zip(MINUTES_CASES, runs):
        waited = [g for g in dump.values() if g["minutes"] >= 1]
        assert len(waited) >= 30, (toolchain, text[-3000:])
        assert any(g["status"] == "syscall" for g in waited), toolchain
        for name, data in (("gdb", gdb_goroutines(binary, core)),
                           ("bridge", bridge_goroutines(binary, core))):
            assert data["wait_clock"].startswith("core: latest runtime stamp"), (name, data["wait_clock"])
            check_against_dump(data, dump, text)
        # the table and go stacks say the same minutes, the syscall's too
        sysid, sysg = next((i, g) for i, g in dump.items() if g["status"] == "syscall")
        r = harness.run_gdb(binary, core=core, commands=[
            ("table", "go goroutines"), ("stacks", "go stacks --json")])
        row = next(l for l in r.block("table").splitlines() if l.split()[:1] == [str(sysid)])
        assert "%d minutes" % sysg["minutes"] in row, row
        bucket = next(b for b in json.loads(r.block("stacks"))["buckets"] if sysid in b["ids"])
        assert bucket["wait_minutes"] == {"min": sysg["minutes"], "max": sysg["minutes"]}, bucket


def test_cgo_extra_m_hidden_as_the_runtime_hides_it(toolchain, tmp_path):
    """A cgo program's extra M has a g that Go 1.26 keeps _Gdeadextra: the runtime's
    dump skips it, so do we, unless -a asks for dead goroutines too."""
    binary, dump, text, core = crash(toolchain, tmp_path, False, fixture="cgo")
    assert any(f[0] == "main.sleeper" for g in dump.values() for f in g["frames"]), text[-3000:]
    for name, data in (("gdb", gdb_goroutines(binary, core)),
                       ("bridge", bridge_goroutines(binary, core))):
        check_against_dump(data, dump, text)
    goroot = harness.toolchain(toolchain)["goroot"]
    with open(os.path.join(goroot, "src", "runtime", "runtime2.go")) as f:
        has_deadextra = "_Gdeadextra" in f.read()
    every = gdb_goroutines(binary, core, "-a")["goroutines"]
    extra = [g for g in every if g["status"] == "waiting for cgo callback"]
    assert len(extra) == (1 if has_deadextra else 0), [g["status"] for g in every]


def sched_ms(text):
    """The runtime's SCHED detail's M lines: {m id: {field: value text}}."""
    import re
    out = {}
    for line in text.splitlines():
        m = re.match(r"^  M(\d+): (.*)$", line)
        if m:
            out[int(m.group(1))] = dict(re.findall(r"(\w+)=(\S*)", m.group(2)))
    return out


def test_threads_match_sched_detail(toolchain, tmp_path):
    """`threads` on the core against the M lines of the runtime's SCHED detail of the same
    instant. The crash stops every other M that held a P after the SCHED block was printed
    (freezetheworld, racing the core dump): such an M, and one whose goroutine the dump
    then shows runnable, is compared by id only; the crashing M (running goroutine 1) and
    the Ms without a P are compared in full."""
    binary, dump, text, core = crash(toolchain, tmp_path, False)
    ms = sched_ms(text)
    assert len(ms) >= 3, text[:3000]
    r = harness.run_gdb(binary, core=core, commands=[("threads", "go threads --json")])
    assert r.error("threads") is None, r.stderr[-2000:]
    views = {"gdb": json.loads(r.block("threads"))}
    with Bridge.core(binary, core, quiet=True) as b:
        views["bridge"] = json.loads(b.view(["threads", "--json"]))
    assert views["gdb"] == views["bridge"]
    none = lambda v: None if v in ("nil", "-1") else int(v)  # noqa: E731  (nil; -1 in Go 1.19)
    for name, data in views.items():
        ours = {t["m"]: t for t in data["threads"]}
        assert set(ours) == set(ms), (name, sorted(ours), sorted(ms))
        compared = 0
        for mid, want in ms.items():
            curg = none(want["curg"])
            if curg != 1 and (none(want["p"]) is not None or curg is not None and
                              dump.get(curg, {}).get("status") in ("runnable", "running")):
                continue
            t = ours[mid]
            assert (t["p"], t["curg"], t["lockedg"], t["spinning"], t["blocked"]) == \
                (none(want["p"]), curg, none(want["lockedg"]), want["spinning"] == "true",
                 want["blocked"] == "true"), (name, mid, want, t)
            assert t["lwp"] > 0 and t["function"], t
            compared += 1
        assert compared >= 3, name
