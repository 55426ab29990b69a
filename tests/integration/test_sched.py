"""`go sched` on the crash fixture's core against the runtime's own SCHED detail of the
same instant (test_crash_dump.crash(): GOMAXPROCS=4, schedtrace=999999,scheddetail=1,
GOTRACEBACK=crash), in gdb and through the bridge, on every toolchain of the matrix.

`go sched --format scheddetail` must print the runtime's last SCHED block line for line:
the same P<i>, M<id> and G<goid> lines in the same order, every field equal, except
what the crash itself changes after the block is printed, each handled explicitly:

- the time after "SCHED": the runtime's nanotime() at the print is in no memory of
  the core; ours is the core's latest runtime stamp less runtime.starttime;
- the crashing M (dying != 0 at the print): mallocing, dying, locks, throwing, the
  fields fatalpanic changes as it goes on (locks drops from 2 to 0);
- freezetheworld, which runs after the print: it sets sched.gcwaiting (true, or 1 in
  Go 1.19) and sched.stopwait (freezeStopWait, 0x7fffffff, less one for each M that
  stopped after its last reset), preempts the running goroutines and so stops every
  other M that held a P at the print, racing with the core being written. Each such
  M is compared in whichever state the core caught it: not reached yet (as printed),
  stopped (asleep: p and curg nil, blocked=true, counted in idlethreads; its P
  status=3, _Pgcstop, with no M) or in between; its locks are not compared (taken
  and dropped on the way), spinning may have dropped (and spinningthreads with it).
  Its goroutine (curg), once preempted, shows status=1 with no M; the dump shows it
  runnable, or still running when it printed it before the preemption landed. It
  goes to the global run queue (Go <= 1.25) or its P's runnext (Go 1.26+), and a
  stopping M may first move a batch of the global queue to its P's: so the global
  runqueue and those Ps' runqsize are compared in sum (with runnext and the
  preempted goroutines), not one by one; an M that was in the scheduler at the print
  (a P, no curg) may hold one more goroutine it had taken off a queue but not run, and
  its P's schedtick may have counted one more schedule() (seen on go1.24.11: 8 -> 9);
- sysmon's M (m.mstartfn is runtime.sysmon) keeps running through the crash and takes
  sched.lock and allpLock as it goes: its locks are what it held at either instant.
Everything else of those lines must be equal, and every other line exactly equal.

`go sched --json`'s run queues (global, each P's runq and runnext) must hold exactly
the goroutines the dump shows runnable, and those it shows running but the core holds
preempted (see above: those no M of the core runs). gdb and the bridge must give
the same text, SCHED detail and JSON.
"""
import json
import re
import sys

import harness
from test_crash_dump import crash

sys.path.insert(0, harness.REPO)
from delve_bridge import Bridge  # noqa: E402

VIEWS = {"text": ["sched"], "json": ["sched", "--json"],
         "detail": ["sched", "--format", "scheddetail"]}
FREEZE_STOPWAIT = 0x7fffffff


def sched_block(text):
    """The runtime's last SCHED block: its lines, SCHED first."""
    lines = text.splitlines()
    start = max(i for i, l in enumerate(lines) if l.startswith("SCHED "))
    block = [lines[start]]
    for l in lines[start + 1:]:
        if not re.match(r"^  [PMG]-?\d+: ", l):
            break
        block.append(l)
    return block


def parse(block):
    """[(key, fields)]: key "SCHED", "P0", "M3", "G17"; fields {name: text}."""
    out = []
    for line in block:
        if line.startswith("SCHED "):
            m = re.match(r"^SCHED (\S+)ms: (.*)$", line)
            fields = dict(re.findall(r"(\w+)=(\S*)", m.group(2)))
            fields["ms"] = m.group(1)
            out.append(("SCHED", fields))
            continue
        g = re.match(r"^  G(\d+): status=(\d+)\((.*)\) m=(\S+) lockedm=(\S+)$", line)
        if g:
            out.append(("G" + g.group(1), {"status": g.group(2), "waitreason": g.group(3),
                                           "m": g.group(4), "lockedm": g.group(5)}))
            continue
        pm = re.match(r"^  ([PM]\d+): (.*)$", line)
        assert pm, line
        out.append((pm.group(1), dict(re.findall(r"(\w+)=(\S*)", pm.group(2)))))
    return out


def views_of(binary, core):
    r = harness.run_gdb(binary, core=core,
                        commands=[(k, "go " + " ".join(v)) for k, v in VIEWS.items()])
    gdb = {}
    for k in VIEWS:
        assert r.error(k) is None, (k, r.error(k), r.stderr[-2000:])
        gdb[k] = r.block(k) + "\n"
    with Bridge.core(binary, core, quiet=True) as b:
        assert not b.dlv.check_off, b.dlv.note
        bridge = {k: b.view(v) for k, v in VIEWS.items()}
    return gdb, bridge


def test_sched_detail_matches_runtime(toolchain, tmp_path):
    binary, dump, text, core = crash(toolchain, tmp_path, False)
    gdb, bridge = views_of(binary, core)
    for k in VIEWS:
        assert gdb[k].rstrip("\n") == bridge[k].rstrip("\n"), k
    data = json.loads(gdb["json"])
    assert data["errors"] == [], data["errors"]
    block = sched_block(text)
    theirs = parse(block)
    ours_lines = [l for l in gdb["detail"].splitlines() if l.strip()]
    assert not [l for l in ours_lines if l.startswith("warning")], ours_lines
    ours = parse(ours_lines)
    assert [k for k, _ in ours] == [k for k, _ in theirs], (
        [k for k, _ in ours], [k for k, _ in theirs])
    their = dict(theirs)
    nil = "nil" if "needspinning" in their["SCHED"] else "-1"

    # what the crash changed after the block was printed (see the module docstring)
    crashing = [k for k, f in theirs if k[0] == "M" and f["dying"] != "0"]
    assert len(crashing) == 1, crashing
    our = dict(ours)
    # the Ms the freeze stops: every other M that held a P at the print
    frozen_ms = {k[1:]: f for k, f in theirs if k[0] == "M" and f["p"] != nil
                 and k != crashing[0]}
    frozen_ps = {k for k, f in theirs if k[0] == "P" and f["m"] in frozen_ms}
    assert len(frozen_ps) == len(frozen_ms) >= 1, (frozen_ps, frozen_ms)
    running = {f["curg"] for f in frozen_ms.values() if f["curg"] != nil}
    preempted = {g for g in running if our["G" + g]["status"] == "1"}
    for g in preempted:   # (running: preempted after the dump printed it, too)
        assert dump[int(g)]["status"] in ("runnable", "running"), (g, dump[int(g)]["header"])
    n = len(frozen_ms)
    # the queues the freeze touches: the global one and the stopping Ps' (a stopping M
    # may move a batch of the global queue to its P on its way): what they hold is
    # what they held at the print and the goroutines preempted since
    ps = {"P%d" % p["index"]: p for p in data["ps"]}
    held = len(data["global_runq"]) + sum(len(ps[k]["runq"]) + (ps[k]["runnext"] is not None)
                                          for k in frozen_ps)
    # (an M in the scheduler at the print, with a P and no curg, may hold a goroutine it
    # took off a queue and had not run yet: it comes back to a queue)
    in_hand = sum(1 for f in frozen_ms.values() if f["curg"] == nil)
    printed = int(their["SCHED"]["runqueue"]) + len(preempted) + sum(
        int(their[k]["runqsize"]) for k in frozen_ps)
    assert printed <= held <= printed + in_hand, (held, printed, in_hand, data["global_runq"],
                                                  data["ps"])
    spinning = sum(1 for f in frozen_ms.values() if f["spinning"] == "true")

    def between(v, lo, hi):
        return tuple(str(i) for i in range(int(v) + lo, int(v) + hi + 1))
    s = their["SCHED"]
    expect = {"SCHED": {"ms": None, "gcwaiting": ("true", "1"),
                        "stopwait": between(FREEZE_STOPWAIT, -n, 0),
                        "idlethreads": between(s["idlethreads"], 0, n),
                        "spinningthreads": between(s["spinningthreads"], -spinning, 0),
                        "runqueue": None}}
    for g in running:
        expect["G" + g] = {"status": ("2", "1"), "m": (their["G" + g]["m"], nil)}
    for k, f in frozen_ms.items():
        expect["M" + k] = {"p": (f["p"], nil), "curg": (f["curg"], nil),
                           "blocked": (f["blocked"], "true"), "spinning": (f["spinning"], "false"),
                           "locks": None}   # (taken and dropped on its way to stop)
    for k in frozen_ps:   # (one more schedule() before its M stops: schedtick + 1)
        expect[k] = {"status": (their[k]["status"], "3"), "m": (their[k]["m"], nil),
                     "runqsize": None, "schedtick": between(their[k]["schedtick"], 0, 1)}
    expect[crashing[0]] = {f: None for f in ("mallocing", "dying", "locks", "throwing")}
    sysmon = [m["id"] for m in data["ms"] if m["startfn"] == "runtime.sysmon"]
    assert len(sysmon) == 1, data["ms"]
    expect.setdefault("M%d" % sysmon[0], {})["locks"] = None

    compared = 0
    for (key, mine), (_, want) in zip(ours, theirs):
        allowed = expect.get(key, {})
        assert set(mine) == set(want), (key, mine, want)
        for f, v in want.items():
            if f in allowed:
                if allowed[f] is not None:
                    assert mine[f] in allowed[f], (key, f, mine[f], allowed[f], block, ours_lines)
                continue
            assert mine[f] == v, (key, f, mine[f], v, ours_lines)
        compared += 1
    assert compared >= 45


def test_sched_json_run_queues_hold_the_runnable(toolchain, tmp_path):
    binary, dump, text, core = crash(toolchain, tmp_path, False)
    gdb, bridge = views_of(binary, core)
    assert gdb["json"].rstrip() == bridge["json"].rstrip()
    assert gdb["text"].rstrip() == bridge["text"].rstrip()
    data = json.loads(gdb["json"])
    queued = list(data["global_runq"])
    for p in data["ps"]:
        queued += p["runq"] + ([p["runnext"]] if p["runnext"] is not None else [])
    on_m = {m["curg"] for m in data["ms"]}   # still running in the core: not queued
    runnable = sorted(i for i, g in dump.items() if g["status"] == "runnable" or
                      (g["status"] == "running" and i not in on_m))
    assert sorted(queued) == runnable, (queued, runnable)
    assert len(data["global_runq"]) == data["runqueue"] == data["global_runq_size"]
    assert data["gomaxprocs"] == 4 and len(data["ps"]) == 4
    assert data["threads"] == len(data["ms"])
    # the fixture's sleepers: time.Sleep(time.Hour) timers, an hour away at the crash
    timers = [p["next_timer"] for p in data["ps"] if p["next_timer"]]
    assert any(t["function"] == "runtime.goroutineReady" and
               3500e9 < t["in_ns"] <= 3600e9 for t in timers), timers
    assert sum(p["timers"] for p in data["ps"]) >= 2
    # the Ms: the syscall goroutine's, with where it is; the crashing one holds P and G1
    ms = {m["id"]: m for m in data["ms"]}
    syscall = next(i for i, g in dump.items() if g["status"] == "syscall")
    m = next(m for m in ms.values() if m["curg"] == syscall)
    assert m["where"]["function"] == "main.inSyscall", m
    assert m["lwp"] > 0
    dying = [m for m in ms.values() if m["dying"]]
    assert len(dying) == 1 and dying[0]["curg"] == 1 and dying[0]["p"] is not None, dying
    locked = next(i for i, g in dump.items() if g["locked"])
    assert any(m["lockedg"] == locked for m in ms.values())
    # the text: the summary with the runtime's names, a row per P and per M
    txt = gdb["text"]
    assert txt.startswith("gomaxprocs=4 idleprocs=")
    assert "netpollwaiters=" in txt and "global run queue: %d goroutine" % len(
        data["global_runq"]) in txt
    assert re.search(r"in 59m5\d\.\ds runtime\.goroutineReady", txt), txt


def test_sched_live(toolchain, mode, go_target):
    """On a running process (and its gcore), in gdb and through the bridge: as many Ps as
    the fixture's runtime.GOMAXPROCS(0) said, each named, every M on allm, every parked
    goroutine of the fixture off the run queues, and nothing unreadable."""
    t = go_target("goroutines")
    meta = t.truth("meta")
    r = t.gdb([("sched", "go sched --json"), ("threads", "go threads --json")])
    assert r.error("sched") is None, r.stderr[-2000:]
    docs = {"gdb": (json.loads(r.block("sched")), json.loads(r.block("threads")))}
    b = Bridge.attach(t.pid, binary=t.binary, quiet=True) if t.mode == "live" else \
        Bridge.core(t.binary, t.core, quiet=True)
    with b:
        docs["bridge"] = (json.loads(b.view(["sched", "--json"])),
                          json.loads(b.view(["threads", "--json"])))
    parked = {int(g) for g in meta["labels"]} | {int(g) for g in meta["locked"]}
    for name, (doc, threads) in docs.items():
        assert doc["errors"] == [], (name, doc["errors"])
        assert doc["gomaxprocs"] == meta["gomaxprocs"] == len(doc["ps"]), name
        assert all(p["status"] and p["error"] is None for p in doc["ps"]), (name, doc["ps"])
        assert sorted(m["id"] for m in doc["ms"]) == sorted(x["m"] for x in threads["threads"])
        assert doc["threads"] == len(doc["ms"]), name
        queued = set(doc["global_runq"]) | {g for p in doc["ps"] for g in p["runq"]} | \
            {p["runnext"] for p in doc["ps"] if p["runnext"]}
        assert not parked & queued, (name, parked & queued)
