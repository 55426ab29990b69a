"""Seeded random debugging sessions on a live program that checks itself: nothing a
session does may harm it.

The selfcheck fixture (tests/fixtures/selfcheck) keeps checksums that a heartbeat
verifies every 100 ms ("ok N"; "BAD ..." and exit 3 on any inconsistency; a panic or a
SIGSEGV kills it). A session of 30+ commands runs through real gdb attached with -p:
`go goroutine N frame K|up|down|bt|info locals|p $pc|info registers`, plain `frame`,
`up`, `bt`, `thread`, views with display flags, commands that must be refused (finish,
continue, detach, an assignment), and real SIGINTs into gdb during commands. Around every
command gdb itself reads every thread's registers and the parked goroutines' stacks: they
must be unchanged, and a `go ...` command must leave the user's thread and frame
selected. After detaching, the program must keep beating "ok" and stay alive. The same
through delve-bridge (views, goroutine backtraces, continue/halt rounds, detach).

Toolchains: go1.19, go1.22.10 and go1.26.6 (or those named with --toolchain). Seeds:
three fixed ones, plus one new seed per run, in the test id (newseedN) and in every
failure; replay one with GDB_GO_EXT_SESSION_SEED=N (it replaces the new one).
"""
import hashlib
import json
import os
import random
import sys
import time

import pytest

import harness

sys.path.insert(0, harness.REPO)
from delve_bridge import Bridge  # noqa: E402
from gdb_go_ext.errors import GoExtError  # noqa: E402

TOOLCHAINS = ("go1.19", "go1.22.10", "go1.26.6")
FIXED_SEEDS = (1901, 2210, 2606)


def _new_seed():
    """GDB_GO_EXT_SESSION_SEED, else new per run; one value for every xdist worker of a run
    (they collect the same test ids), from the run's id that xdist gives them."""
    if os.environ.get("GDB_GO_EXT_SESSION_SEED"):
        return int(os.environ["GDB_GO_EXT_SESSION_SEED"])
    run = os.environ.get("PYTEST_XDIST_TESTRUNUID")
    if run:
        return int(hashlib.sha1(run.encode()).hexdigest(), 16) % 1000003
    return time.time_ns() % 1000003


NEW_SEED = _new_seed()
print("test_sessions: new seed this run: %d (replay: GDB_GO_EXT_SESSION_SEED=%d)"
      % (NEW_SEED, NEW_SEED), file=sys.stderr)

REFUSED_RESUME = "cannot be resumed"
REFUSED_ASSIGN = "nothing is written"


def pytest_generate_tests(metafunc):
    if "session_tc" in metafunc.fixturenames:
        # these three, or the toolchains named with --toolchain
        tcs = list(metafunc.config.getoption("toolchain") or TOOLCHAINS)
        seeds = [("seed%d" % s, s) for s in FIXED_SEEDS] + [("newseed%d" % NEW_SEED, NEW_SEED)]
        metafunc.parametrize("session_tc,seed", [(t, s) for t in tcs for _, s in seeds],
                             ids=["%s-%s" % (t, n) for t in tcs for n, _ in seeds])


# ---------------------------------------------------------------------------
# the plan: a seeded random list of commands
# ---------------------------------------------------------------------------
def gdb_plan(rng, meta, n=34):
    parked = [g for kind, ids in sorted(meta["parked"].items()) if kind != "worker" for g in ids]
    workers = meta["parked"]["worker"]
    anyg = parked + workers + [meta["main_goid"]]

    def g():
        return rng.choice(parked if rng.random() < 0.8 else anyg)

    makers = [
        lambda: ("go goroutine %d frame %d" % (g(), rng.randint(0, 9)), "ctx"),
        lambda: ("go goroutine %d up %d" % (g(), rng.randint(1, 5)), "ctx"),
        lambda: ("go goroutine %d down" % g(), "ctx"),
        lambda: ("go goroutine %d bt" % g(), "ctx"),
        lambda: ("go goroutine %d bt 4" % g(), "ctx"),
        lambda: ("go goroutine %d info locals" % g(), "ctx"),
        lambda: ("go goroutine %d info frame" % g(), "ctx"),
        lambda: ("go goroutine %d p $pc" % g(), "ctx"),
        lambda: ("go goroutine %d p $sp" % g(), "ctx"),
        lambda: ("go goroutine %d info registers" % g(), "ctx"),
        lambda: ("go goroutine %d info registers rip" % g(), "ctx"),
        lambda: ("go goroutine %d thread %d" % (g(), rng.randint(1, 3)), "ctx"),
        lambda: ("frame %d" % rng.randint(0, 4), "plain"),
        lambda: ("up", "plain"),
        lambda: ("down", "plain"),
        lambda: ("bt", "plain"),
        lambda: ("bt 3", "plain"),
        lambda: ("p $pc", "plain"),
        lambda: ("thread %d" % rng.randint(1, 3), "plain"),
        lambda: (rng.choice(["go goroutines -t 2 -l", "go stacks --min 2",
                             "go goroutines -s waiting --limit 3", "go goroutines --limit 5",
                             "go goroutines -t 1 --json", "go stacks -t 3", "go threads",
                             "go sched", "go goroutine %d" % g(), "go goroutine %d -t 3" % g()]),
                 "view"),
        lambda: ("go goroutine %d %s" % (g(), rng.choice(
            ["finish", "continue", "c", "step", "next", "detach", "fin", "until"])), "resume"),
        lambda: ("go goroutine %d %s" % (g(), rng.choice(
            ["p $rip = 0", "set var $rsp = 8", "p $pc++"])), "assign"),
        lambda: ("go goroutine %d call main.goid()" % g(), "resume"),
    ]
    plan = [rng.choice(makers)() for _ in range(n)]
    # Ctrl-C: a real SIGINT into gdb while a command of ours runs (a shell sleep is long
    # enough to be sure to be inside it; a bt -full lands anywhere)
    for _ in range(2):
        plan.insert(rng.randrange(len(plan) + 1),
                    ("go goroutine %d shell sleep 1" % g(), "interrupt", 0.3))
    plan.insert(rng.randrange(len(plan) + 1),
                ("go goroutine %d bt -full" % g(), "interrupt", rng.choice([0.0, 0.01, 0.05])))
    for kind in ("resume", "assign"):     # each kind at least once per session
        if not any(p[1] == kind for p in plan):
            plan.insert(rng.randrange(len(plan) + 1),
                        ("go goroutine %d finish" % g(), "resume") if kind == "resume" else
                        ("go goroutine %d p $rip = 0" % g(), "assign"))
    return [list(p) + [None] * (3 - len(p)) for p in plan]


# run inside gdb: each command between two snapshots that gdb itself takes
SESSION = r'''
import gdb, hashlib, json, os, signal, threading, time
from gdb_go_ext.gdb import session
from gdb_go_ext.runtime.goroutines import GoroutineWalker
PLAN = json.load(open(os.environ["SESSION_PLAN"]))
PARKED = json.load(open(os.environ["SESSION_PARKED"]))
REGS = ("rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp", "r8", "r9", "r10", "r11",
        "r12", "r13", "r14", "r15", "rip", "eflags", "orig_rax", "fs_base", "gs_base")

# the parked goroutines' stacks: where they are (our walker), what they hold (gdb reads)
walker = GoroutineWalker(session.runtime())
stacks = {}
for gid in PARKED:
    g = walker.find(gid, 1)
    if g is not None and g.sp and g.stack_hi > g.sp:
        stacks[gid] = (g.sp - 256, g.stack_hi)

def baseline():
    """Plain `bt` of every thread, before any command of ours."""
    sel = gdb.selected_thread().num
    out = {}
    for th in gdb.selected_inferior().threads():
        th.switch()
        out[th.num] = gdb.execute("bt", to_string=True)
    gdb.execute("thread %d" % sel, to_string=True)
    return out

def selection():
    th = gdb.selected_thread()
    f = gdb.selected_frame()
    return [th.num, f.level(), int(f.pc())]

def snapshot():
    sel = selection()
    regs = {}
    for th in gdb.selected_inferior().threads():
        th.switch()
        f = gdb.newest_frame()
        regs[th.num] = {r: int(f.read_register(r)) & (2**64 - 1) for r in REGS}
    gdb.execute("thread %d" % sel[0], to_string=True)
    gdb.execute("select-frame %d" % sel[1], to_string=True)
    assert selection() == sel, (selection(), sel)
    inf = gdb.selected_inferior()
    mem = {g: hashlib.sha1(inf.read_memory(lo, hi - lo).tobytes()).hexdigest()
           for g, (lo, hi) in stacks.items()}
    return {"sel": sel, "regs": regs, "mem": mem}

def run(cmd, delay):
    timer = None
    # not to_string: gdb 13 prints a changed frame selection to the terminal only
    out, err = "", None
    print("CMD BEGIN", flush=True)
    try:
        if delay is not None:
            timer = threading.Timer(delay, os.kill, (os.getpid(), signal.SIGINT))
            timer.start()
        gdb.execute(cmd)
    except gdb.error as e:
        err = str(e)
    except KeyboardInterrupt:
        err = "KeyboardInterrupt"
    if timer is not None:
        for _ in range(3):
            try:   # a SIGINT that came after the command lands here
                timer.join()
                time.sleep(0.2)
                break
            except KeyboardInterrupt:
                pass
    gdb.flush()
    print("\nCMD END", flush=True)   # (an interrupted command may end mid-line)
    return out, err

print("BASELINE " + json.dumps(baseline()), flush=True)
for i, (cmd, kind, delay) in enumerate(PLAN):
    before = snapshot()
    out, err = run(cmd, delay)
    if kind == "detach":
        print("RESULT " + json.dumps({"i": i, "cmd": cmd, "kind": kind, "err": err}))
        break
    try:
        after = snapshot()
    except KeyboardInterrupt:
        after = snapshot()
    print("RESULT " + json.dumps({"i": i, "cmd": cmd, "kind": kind,
                                   "err": err, "before": before, "after": after}), flush=True)
print("SESSION DONE", flush=True)
'''


def _heartbeats(fp):
    n = 0
    for line in fp.stdout_lines:
        if line.startswith("ok "):
            n = int(line.split()[1])
    return n


def assert_beats_on(fp, what, seconds=2.0):
    """The program keeps beating "ok" (no BAD, no crash) for `seconds` after `what`."""
    start = _heartbeats(fp)
    time.sleep(seconds)
    deadline = time.time() + 10
    while _heartbeats(fp) < start + 10 and time.time() < deadline and fp.proc.poll() is None:
        time.sleep(0.2)
    bad = [l for l in fp.stdout_lines if l.startswith("BAD")]
    assert not bad and fp.proc.poll() is None, "%s: the program %s; stdout %s; stderr %s" % (
        what, "died (rc %s)" % fp.proc.poll() if fp.proc.poll() is not None else "is alive",
        fp.stdout_lines[-5:], fp.stderr_text()[-3000:])
    assert _heartbeats(fp) >= start + 10, "%s: heartbeat stuck at %d (from %d)" % (
        what, _heartbeats(fp), start)


def _results(r):
    """The RESULT records, each with what its command printed between CMD BEGIN/END."""
    out, text, inside = [], [], False
    for line in r.stdout.splitlines():
        if line == "CMD BEGIN":
            text, inside = [], True
        elif line == "CMD END":
            inside = False
        elif inside:
            text.append(line)
        elif line.startswith("RESULT "):
            res = json.loads(line[7:])
            res["out"] = "\n".join(text)
            out.append(res)
    return out


def test_gdb_session_never_harms_the_target(session_tc, seed, tmp_path):
    binary = harness.build("selfcheck", session_tc)
    with harness.run_fixture(binary) as fp:
        meta = fp.truth("meta")
        plan = gdb_plan(random.Random(seed), meta)
        plan.append(["detach", "detach", None])
        parked = [g for kind, ids in meta["parked"].items() if kind != "worker" for g in ids]
        paths = {}
        for name, data in (("plan", plan), ("parked", parked)):
            paths[name] = str(tmp_path / (name + ".json"))
            with open(paths[name], "w") as f:
                json.dump(data, f)
        script = tmp_path / "session.py"
        script.write_text(SESSION)
        env = dict(os.environ, SESSION_PLAN=paths["plan"], SESSION_PARKED=paths["parked"])
        r = harness.run_gdb(binary, pid=fp.pid, commands=[("session", "source %s" % script)],
                            env=env, timeout=300)
        where = "seed %d on %s (replay: GDB_GO_EXT_SESSION_SEED=%d)" % (seed, session_tc, seed)
        assert "SESSION DONE" in r.stdout, (where, r.stdout[-4000:], r.stderr[-3000:])
        assert "Traceback" not in r.stdout + r.stderr, (where, r.stderr[-3000:])
        results = _results(r)
        (tmp_path / "gdb.out").write_text(r.stdout)
        assert len(results) == len(plan) >= 30, (len(results), len(plan), r.stdout[-3000:])
        for res in results[:-1]:
            cmd, kind, err, out = res["cmd"], res["kind"], res["err"], res["out"]
            ctx = (where, cmd, err, out[-500:])
            b, a = res["before"], res["after"]
            assert a["regs"] == b["regs"], ctx + ({t: {k: (v, a["regs"].get(t, {}).get(k))
                                                      for k, v in rs.items()
                                                      if a["regs"].get(t, {}).get(k) != v}
                                                  for t, rs in b["regs"].items()},)
            assert a["mem"] == b["mem"], ctx
            assert "internal error" not in (err or "") + out, ctx
            if cmd.startswith("go "):
                assert a["sel"] == b["sel"], ctx + (b["sel"], a["sel"])
            if kind == "resume":
                assert err and REFUSED_RESUME in err and err.count("\n") == 0, ctx
            elif kind == "assign":
                assert err and REFUSED_ASSIGN in err, ctx
            elif kind == "ctx" and " frame " in cmd and err is None:
                k = int(cmd.split()[-1])
                assert out.startswith("#%d " % k), ctx
            elif kind == "ctx" and cmd.endswith("p $pc") and err is None:
                assert "0x" in out, ctx
        # plain gdb after our commands: bt as it was before any of them, frame K is #K
        base = json.loads(next(l[9:] for l in r.stdout.splitlines() if l.startswith("BASELINE ")))
        plain = [x for x in results if x["kind"] == "plain" and x["err"] is None]
        for x in plain:
            if x["cmd"] == "bt":
                assert x["out"].strip() == base[str(x["before"]["sel"][0])].strip(), (where, x)
            elif x["cmd"].startswith("frame "):
                assert x["out"].startswith("#%s " % x["cmd"].split()[1]), (where, x)
        interrupted = [x for x in results if x["kind"] == "interrupt"]
        assert any(x["err"] for x in interrupted), interrupted   # a SIGINT landed in one
        for x in interrupted:
            assert x["err"] in (None, "KeyboardInterrupt") or x["err"].startswith(
                "go goroutine: ") or x["err"] == "Quit", x
        assert results[-1]["err"] is None, results[-1]
        assert_beats_on(fp, "after the gdb session with %s" % where)


def bridge_plan(rng, meta, n=30):
    parked = [g for kind, ids in sorted(meta["parked"].items()) if kind != "worker" for g in ids]
    anyg = parked + meta["parked"]["worker"] + [meta["main_goid"]]
    views = [["goroutines", "-t", "2", "-l"], ["stacks", "--min", "2"],
             ["goroutines", "-s", "waiting", "--limit", "3"], ["goroutines", "--limit", "5"],
             ["goroutines", "-t", "1", "--json"], ["stacks", "-t", "3"], ["threads"],
             ["sched"], ["version"]]
    plan = []
    for _ in range(n):
        x = rng.random()
        if x < 0.35:
            plan.append(("view", rng.choice(views)))
        elif x < 0.65:
            plan.append(("view", ["goroutine", str(rng.choice(anyg))] +
                         rng.choice([[], ["-t", "3"], ["--json"]])))
        elif x < 0.85:   # the bridge runs no debugger command in a goroutine: refused
            plan.append(("refused", ["goroutine", str(rng.choice(parked))] +
                         rng.choice([["frame", "2"], ["up", "1"], ["finish"], ["info", "locals"]])))
        else:
            plan.append(("cont-halt", rng.choice([0.0, 0.05, 0.2])))
    return plan


def test_bridge_session_never_harms_the_target(session_tc, seed, tmp_path):
    binary = harness.build("selfcheck", session_tc)
    with harness.run_fixture(binary) as fp:
        meta = fp.truth("meta")
        plan = bridge_plan(random.Random(seed), meta)
        where = "seed %d on %s (replay: GDB_GO_EXT_SESSION_SEED=%d)" % (seed, session_tc, seed)
        with Bridge.attach(fp.pid, binary=binary, quiet=True) as b:
            for kind, arg in plan:
                if kind == "cont-halt":
                    b.cont()
                    time.sleep(arg)
                    b.halt()
                    continue
                try:
                    out = b.view(arg)
                    err = None
                except GoExtError as e:
                    out, err = "", str(e)
                ctx = (where, arg, err)
                if kind == "refused":
                    assert err and "runs no debugger command" in err, ctx
                else:
                    assert err is None and out, ctx
                    if arg[0] == "goroutine" and "--json" not in arg:
                        assert out.startswith("#0 ") or "goroutine" in out, ctx
        assert_beats_on(fp, "after the bridge session with %s" % where)


# (command, refused with) -- as gdb reads it: abbreviations, aliases, wrappers
TABLE = [
    ("finish", REFUSED_RESUME), ("fin", REFUSED_RESUME), ("c", REFUSED_RESUME),
    ("fg", REFUSED_RESUME), ("continue 3", REFUSED_RESUME), ("step", REFUSED_RESUME),
    ("si", REFUSED_RESUME), ("until", REFUSED_RESUME), ("advance 1", REFUSED_RESUME),
    ("jump 1", REFUSED_RESUME), ("return", REFUSED_RESUME), ("call main.goid()", REFUSED_RESUME),
    ("detach", REFUSED_RESUME), ("deta", REFUSED_RESUME), ("kill", REFUSED_RESUME),
    ("quit", REFUSED_RESUME), ("signal SIGINT", REFUSED_RESUME), ("run", REFUSED_RESUME),
    ("with print pretty -- continue", REFUSED_RESUME),
    ("thread apply all continue", "runs commands of its own"),
    ("t a 1 bt", "runs commands of its own"), ("frame apply 1 p 1", "runs commands of its own"),
    ("python print(1)", "runs commands of its own"), ("source /dev/null", "runs commands of its own"),
    ("| bt | cat", "runs commands of its own"), ("pipe bt | cat", "runs commands of its own"),
    ("myresume", "runs commands of its own"),
    ("p $rip = 0", REFUSED_ASSIGN), ("set var $rsp = 8", REFUSED_ASSIGN),
    ("p $pc++", REFUSED_ASSIGN), ("output $rbp -= 8", REFUSED_ASSIGN),
    ("p main.goid()", "may-call-functions is off"),
    # not refused
    ("p $pc == 0", None), ("p -pretty -- $sp", None), ('printf "pc=%#x\\n", $pc', None),
    ("info frame", None), ("frame 3", None), ("up 2", None), ("bt 2", None),
    ("with print pretty -- info locals", None), ("x/2gx $sp", None), ("info registers rip", None),
]


def test_refused_commands_table(tmp_path):
    """Each command gdb would resume with, write with or wrap is refused in one line,
    named as gdb reads it; the rest run; the program beats on after the detach."""
    tc = TOOLCHAINS[-1]
    binary = harness.build("selfcheck", tc)
    with harness.run_fixture(binary) as fp:
        gid = fp.truth("meta")["parked"]["select"][0]
        cmds = [("define", "define myresume\ncontinue\nend")]
        cmds += [("%d" % i, "go goroutine %d %s" % (gid, cmd)) for i, (cmd, _) in enumerate(TABLE)]
        cmds += [("after", "p $pc"), ("may", "show may-call-functions")]
        r = harness.run_gdb(binary, pid=fp.pid, commands=cmds)
        assert r.error("define") is None, r.error("define")
        for i, (cmd, want) in enumerate(TABLE):
            err = r.error("%d" % i)
            if want is None:
                assert err is None, (cmd, err)
            else:
                assert err and want in err and err.startswith("go goroutine: "), (cmd, err)
        assert r.error("after") is None and "is on" in r.block("may")
        assert "Traceback" not in r.stdout + r.stderr
        assert_beats_on(fp, "after the refused commands")
