#!/usr/bin/env python3
"""Issue 16's speed targets at 100k goroutines: `go dump` and `go pprof` against a first
`go goroutines`, and `go stacks --diff OLD` against a first `go stacks`.

bench/leaker runs with N goroutines (-n, default 100000) under GOMAXPROCS=4. Every
command is the first one of its own `gdb -nx -batch` session (live: -p PID; core: a
gcore of the same process): the extension loaded, nothing decoded or kept. OLD is a
`go stacks --json` written once beforehand by another session. Each command is timed
inside gdb (see bench_runtime_views.gdb_session) over --rounds sessions; the medians and
their ratios are printed with the issue's targets. Benchmarks print; they never assert.

    python bench/bench_evidence.py [-n 100000] [--toolchain go1.26.6] [--rounds 3]
        [--no-core] [--json FILE]
"""
import argparse
import json
import os
import shutil
import signal
import statistics
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import bench_goroutines as bg  # noqa: E402
from bench_runtime_views import gdb_session, leaker_modes  # noqa: E402

# (label, command, anchor label, target ratio)
COMMANDS = [
    ("go goroutines", "go goroutines", None, None),
    ("go dump", "go dump -o {work}/dump.txt", "go goroutines", 2.0),
    ("go dump --level 2", "go dump --level 2 -o {work}/dump2.txt", "go goroutines", None),
    ("go pprof", "go pprof -o {work}/goroutine.pb.gz", "go goroutines", 2.0),
    ("go stacks", "go stacks", None, None),
    ("go stacks --diff OLD", "go stacks --diff {work}/old.json", "go stacks", 2.0),
]


def run_mode(mode, target_args, work, rounds, timeout):
    gdb_session(target_args, [("old", f"go stacks --json -o {work}/old.json")], work, timeout)
    times = {label: [] for label, *_ in COMMANDS}
    errors = {}
    for _ in range(rounds):
        for label, cmd, _, _ in COMMANDS:
            bg.settle()
            rec = gdb_session(target_args, [(label, cmd.format(work=work))], work,
                              timeout).get(label)
            if rec is None or rec["error"]:
                errors[label] = (rec or {}).get("error") or "no result"
                continue
            times[label].append(rec["seconds"])
            bg.log("%-5s %-24s %.3f s" % (mode, label, rec["seconds"]))
    rows = []
    med = {k: statistics.median(v) for k, v in times.items() if v}
    for label, _, anchor, target in COMMANDS:
        s = med.get(label)
        ratio = s / med[anchor] if s is not None and anchor in med else None
        rows.append({"mode": mode, "command": label, "seconds": s, "all": times[label],
                     "anchor": anchor, "ratio": ratio, "target": target,
                     "error": errors.get(label)})
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-n", type=int, default=100000, help="goroutines (default 100000)")
    ap.add_argument("--toolchain", metavar="NAME", help="matrix toolchain (default: go on PATH)")
    ap.add_argument("--rounds", type=int, default=3, help="gdb sessions per command and mode")
    ap.add_argument("--no-core", action="store_true", help="skip the core measurements")
    ap.add_argument("--json", metavar="FILE", help="write all numbers to FILE")
    ap.add_argument("--gdb-timeout", type=float, default=600)
    a = ap.parse_args()
    for s in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, bg._on_signal)
    work = tempfile.mkdtemp(prefix="bench-evidence-")
    rows = []
    meta = {"n": a.n, "rounds": a.rounds, "gomaxprocs": 4}
    try:
        version, rows = leaker_modes(
            a, work, meta, lambda mode, t, args: run_mode(mode, args, work, a.rounds,
                                                          a.gdb_timeout))
        print("%d goroutines, GOMAXPROCS=4, %s, median of %d gdb sessions, each command first"
              % (a.n, version, a.rounds))
        print("%-5s %-24s %9s  %s" % ("mode", "command", "seconds", "ratio to its anchor"))
        for r in rows:
            s = "%.3f" % r["seconds"] if r["seconds"] is not None else "-"
            note = ""
            if r["ratio"] is not None:
                note = "%.2fx %s" % (r["ratio"], r["anchor"])
                if r["target"]:
                    note += "  (target <= %.1fx: %s)" % (
                        r["target"], "met" if r["ratio"] <= r["target"] else "NOT MET")
            print("%-5s %-24s %9s  %s%s" % (r["mode"], r["command"], s, note,
                                           "  ERROR " + r["error"] if r["error"] else ""))
        if a.json:
            with open(a.json, "w") as f:
                json.dump({"meta": meta, "results": rows}, f, indent=1)
    finally:
        bg.kill_all()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
