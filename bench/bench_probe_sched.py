#!/usr/bin/env python3
"""`gdb-go probe-sched` cost: how much the scheduler probe slows a scheduler-bound target.

The schedprobe fixture in "pingpong" mode: two pairs of goroutines pass a value back and
forth on unbuffered channels, every hop a park and a wake-up (status changes through
runtime.casgstatus), printing its hop count every 50 ms. Per toolchain, in one run:
the hops per second with no probe, under `gdb-go probe-sched PID --seconds S` (with the
status changes per second the probe counted), and after it ended.

Benchmarks print; they never assert timings.

    python bench/bench_probe_sched.py [--toolchain go1.26.6 ...] [--seconds 3]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests"))

import harness  # noqa: E402


def progress(fp):
    for line in reversed(fp.stdout_lines):
        if line.startswith("PROGRESS "):
            return int(line.split()[1]), time.monotonic()
    return None


def rate(fp, seconds):
    a = progress(fp)
    time.sleep(seconds)
    b = progress(fp)
    return (b[0] - a[0]) / (b[1] - a[1])


def one(toolchain, seconds, out):
    binary = harness.build("schedprobe", toolchain)
    with harness.run_fixture(binary, args=("pingpong",)) as fp:
        time.sleep(0.3)
        free = rate(fp, seconds)
        path = os.path.join(out, "s.json")
        p = subprocess.Popen([sys.executable, "-m", "gdb_go", "probe-sched", str(fp.pid),
                              "--seconds", str(seconds + 1), "--json", "-o", path],
                             stderr=subprocess.PIPE, text=True, cwd=harness.REPO)
        line = p.stderr.readline()
        if not line.startswith("probing"):
            raise SystemExit("gdb-go probe-sched failed: %s%s" % (line, p.stderr.read()))
        time.sleep(0.3)
        probed = rate(fp, seconds - 0.5)
        p.wait()
        rep = json.load(open(path))
        after = rate(fp, seconds)
    return free, probed, after, rep["transitions"] / rep["seconds"], rep["probes"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--toolchain", nargs="+", default=["go1.26.6", "go1.19"])
    ap.add_argument("--seconds", type=float, default=3)
    args = ap.parse_args()
    print("probe-sched on the schedprobe fixture (pingpong), %.0f s windows" % args.seconds)
    print("%-12s %12s %12s %12s %10s %16s  %s" % ("toolchain", "free hops/s", "probed", "after",
                                                  "slowdown", "changes/s seen", "probes at"))
    with tempfile.TemporaryDirectory() as out:
        for tc in args.toolchain:
            free, probed, after, changes, probes = one(tc, args.seconds, out)
            print("%-12s %12.0f %12.0f %12.0f %9.1fx %16.0f  %s" % (
                tc, free, probed, after, free / probed if probed else float("inf"), changes,
                ", ".join("%s %s" % (p["function"].split(".")[-1], p["at"]) for p in probes)))


if __name__ == "__main__":
    main()
