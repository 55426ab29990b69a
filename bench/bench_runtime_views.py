#!/usr/bin/env python3
"""Runtime state views (`go sched`, `go gc`, `go chan`) at 100k goroutines and 4 Ps.

bench/leaker (built as bench_goroutines.py builds it) runs with N goroutines (-n,
default 100000) under GOMAXPROCS=4. Each view has one function below, `bench_NAME(t)`,
that returns the gdb commands to time; each list runs in a fresh `gdb -nx -batch`
session (live: -p PID; core: a gcore of the same process), so its first command is a
first command: the extension loaded, nothing decoded yet. Each command is timed inside
gdb with time.perf_counter around gdb.execute(cmd, to_string=True), over --rounds
sessions (median). Benchmarks print; they never assert timings.

    python bench/bench_runtime_views.py [-n 100000] [--toolchain go1.26.6] [--rounds 3]
        [--view sched ...] [--no-core] [--json FILE]

To add a view: write bench_NAME(t) returning [(label, gdb command), ...] and add it
to VIEWS. t has .binary, .pid, .n.
"""
import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import bench_goroutines as bg  # noqa: E402  (leaker build/start, process hygiene)
import harness  # noqa: E402  (bench_goroutines puts tests/ on the path)

TARGET_S = 0.5   # the target for a first `go sched` / `go gc`


# --- one function per view ------------------------------------------------------------
def bench_sched(t):
    """go sched: the first command, then the JSON and the SCHED detail (every g)."""
    return [("go sched (first)", "go sched"),
            ("go sched --json", "go sched --json"),
            ("go sched --format scheddetail", "go sched --format scheddetail")]


def bench_chan(t):
    """go chan on bench/leaker's main.full: n/4 goroutines blocked sending (25,000 at
    100k), the goroutine walk and the holder scan of every other stack included; then the
    JSON of all of them, and main.never (n/4 receivers and n/4 selects)."""
    return [("go chan main.full (first)", "go chan main.full"),
            ("go chan main.full --json", "go chan main.full --json"),
            ("go chan main.never", "go chan main.never")]


VIEWS = {"sched": bench_sched}


def bench_gc(t):
    """go gc: memstats, gcController, gcphase and mheap_'s spanalloc; nothing in it grows
    with the goroutines. Then the JSON (every pause of the history) and all 256 as text."""
    return [("go gc (first)", "go gc"),
            ("go gc --json", "go gc --json"),
            ("go gc --pauses 256", "go gc --pauses 256")]


VIEWS["gc"] = bench_gc


def bench_dump(t):
    """go dump: every goroutine's traceback text, level 1 then level 2 (a second physical
    unwind per goroutine, the walk's own kept), then go goroutines on the kept walk."""
    return [("go dump, first", "go dump"),
            ("go dump --level 2", "go dump --level 2"),
            ("go goroutines (after)", "go goroutines")]


VIEWS["dump"] = bench_dump
VIEWS["chan"] = bench_chan
TARGETS = {"chan": 1.0}   # the target for `go chan` on 25,000 waiters


# --- the machinery ---------------------------------------------------------------------
HELPER = r'''
import gdb, json, time
def _bench(name, cmd):
    err, out = None, ""
    t = time.perf_counter()
    try:
        out = gdb.execute(cmd, to_string=True)
    except Exception as e:
        err = "%s: %s" % (type(e).__name__, e)
    dt = time.perf_counter() - t
    print("BENCH " + json.dumps({"name": name, "seconds": dt, "bytes": len(out),
                                 "error": err, "tail": out[-300:] if err else ""}), flush=True)
'''


class Target:
    def __init__(self, binary, pid, n):
        self.binary, self.pid, self.n = binary, pid, n


def gdb_session(target_args, commands, work, timeout):
    helper = os.path.join(work, "bench_helper.py")
    with open(helper, "w") as f:
        f.write(HELPER)
    argv = ["gdb", "-nx", "-batch", "-iex", "set pagination off", "-iex", "set width 0",
            "-iex", "set height 0", "-iex", "set confirm off",
            "-iex", "set auto-load python-scripts off",
            "-ex", "directory " + harness.gdb_script_dir(), "-ex", "source " + helper,
            "-ex", "python _bench('load gdb_go_ext', 'source gdb_go_ext')"]
    for name, cmd in commands:
        argv += ["-ex", "python _bench(%r, %r)" % (name, cmd)]
    argv += target_args
    p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                       stdin=subprocess.DEVNULL, env=dict(os.environ, NO_COLOR="1"),
                       start_new_session=True)
    out = {}
    for line in p.stdout.splitlines():
        if line.startswith("BENCH "):
            rec = json.loads(line[6:])
            out[rec["name"]] = rec
    if "load gdb_go_ext" not in out:
        raise SystemExit("gdb printed no results (rc %s): %s" % (p.returncode, p.stderr[-2000:]))
    return out


def run_view(name, fn, t, mode, target_args, work, rounds, timeout):
    commands = fn(t)
    times = {label: [] for label, _ in commands}
    sizes = {}
    errors = {}
    for _ in range(rounds):
        bg.settle()
        res = gdb_session(target_args, commands, work, timeout)
        for label, _ in commands:
            rec = res.get(label)
            if rec is None or rec["error"]:
                errors[label] = (rec or {}).get("error") or "no result"
                continue
            times[label].append(rec["seconds"])
            sizes[label] = rec["bytes"]
    rows = []
    for label, _ in commands:
        s = statistics.median(times[label]) if times[label] else None
        rows.append({"view": name, "mode": mode, "command": label, "seconds": s,
                     "all": times[label], "bytes": sizes.get(label),
                     "error": errors.get(label)})
        bg.log("%-5s %-36s %s%s" % (mode, label, "%.3f s" % s if s is not None else "-",
                                    "  ERROR " + errors[label] if label in errors else ""))
    return rows


def leaker_modes(a, work, meta, measure) -> tuple:
    """(Go version, rows): bench/leaker built with a.toolchain and run with a.n goroutines
    under GOMAXPROCS=4; measure(mode, Target, gdb target args) on the live process, then
    (unless a.no_core) on a gcore of it, the rows of both."""
    label, go, goroot, env, version = bg.resolve_toolchain(a.toolchain)
    meta.update(toolchain=label, go_version=version, cpus=os.cpu_count())
    binary = bg.build_leaker(go, env, work)
    os.environ["GOMAXPROCS"] = "4"   # the leaker inherits it
    leaker = bg.start_leaker(binary, a.n, work, timeout=300)
    t = Target(binary, leaker.pid, a.n)
    rows = measure("live", t, ["-p", str(leaker.pid)])
    if not a.no_core:
        core = bg.make_core(leaker.pid, work, timeout=1200)
        bg.kill(leaker)
        bg.CHILDREN.remove(leaker)
        rows += measure("core", t, [binary, core])
        os.unlink(core)
    return version, rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-n", type=int, default=100000, help="goroutines (default 100000)")
    ap.add_argument("--toolchain", metavar="NAME", help="matrix toolchain (default: go on PATH)")
    ap.add_argument("--rounds", type=int, default=3, help="gdb sessions per view and mode")
    ap.add_argument("--view", action="append", choices=sorted(VIEWS),
                    help="only these views (repeatable)")
    ap.add_argument("--no-core", action="store_true", help="skip the core measurements")
    ap.add_argument("--json", metavar="FILE", help="write all numbers to FILE")
    ap.add_argument("--gdb-timeout", type=float, default=600)
    a = ap.parse_args()
    for s in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, bg._on_signal)
    views = {k: VIEWS[k] for k in (a.view or VIEWS)}
    work = tempfile.mkdtemp(prefix="bench-runtime-views-")
    rows = []
    meta = {"n": a.n, "rounds": a.rounds, "gomaxprocs": 4}
    try:
        def measure(mode, t, target_args):
            return [row for name, fn in views.items()
                    for row in run_view(name, fn, t, mode, target_args, work, a.rounds,
                                        a.gdb_timeout)]
        version, rows = leaker_modes(a, work, meta, measure)
        print("%d goroutines, GOMAXPROCS=4, %s, median of %d gdb sessions"
              % (a.n, version, a.rounds))
        print("%-5s %-36s %9s %9s" % ("mode", "command", "seconds", "bytes"))
        for r in rows:
            s = "%.3f" % r["seconds"] if r["seconds"] is not None else "-"
            note = ""
            if "(first)" in r["command"] and r["seconds"] is not None:
                target = TARGETS.get(r["view"], TARGET_S)
                note = "  target %.1f s: %s" % (target, "met" if r["seconds"] < target
                                                 else "NOT MET")
            print("%-5s %-36s %9s %9s%s%s" % (r["mode"], r["command"], s, r["bytes"], note,
                                         "  ERROR " + r["error"] if r["error"] else ""))
        if a.json:
            with open(a.json, "w") as f:
                json.dump({"meta": meta, "results": rows}, f, indent=1)
    finally:
        bg.kill_all()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
