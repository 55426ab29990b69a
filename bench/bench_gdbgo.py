#!/usr/bin/env python3
"""`gdb-go dump` over four cores: -j 1 (one after another) against -j 2.

bench/leaker (built as bench_goroutines.py builds it) runs with N goroutines (-n,
default 100000); one gcore of it is linked under four names (four cores, one file in
the page cache), and the installed gdb-go writes each format (--format, default text)
for all four, -j 1 then -j 2, alternated over --rounds rounds (median). The issue's
target: -j 2 in at most 60% of -j 1. Benchmarks print; they never assert timings
(the ratio depends on the CPUs free: it cannot beat 1/min(2, CPUs)).

    python bench/bench_gdbgo.py [-n 100000] [--toolchain go1.26.6] [--rounds 3]
        [--format text ...] [--cores 4]
"""
import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import bench_goroutines as bg  # noqa: E402  (leaker build/start, process hygiene)
import harness  # noqa: E402  (bench_goroutines puts tests/ on the path)

TARGET = 0.60


def gdb_go():
    path = shutil.which("gdb-go") or os.path.join(harness.home_dir(), "venv", "bin", "gdb-go")
    if not os.access(path, os.X_OK):
        raise SystemExit("gdb-go is not installed (run ./install.sh)")
    return path


def timed(argv, timeout):
    t0 = time.perf_counter()
    p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                       stdin=subprocess.DEVNULL)
    dt = time.perf_counter() - t0
    if p.returncode != 0:
        raise SystemExit("%s failed (rc %d):\n%s%s" % (argv[:3], p.returncode, p.stdout[-2000:],
                                                      p.stderr[-2000:]))
    return dt


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-n", type=int, default=100000, help="goroutines (default 100000)")
    ap.add_argument("--toolchain", metavar="NAME", help="matrix toolchain (default: go on PATH)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--cores", type=int, default=4)
    ap.add_argument("--format", action="append", choices=("text", "json", "pprof", "stacks"))
    ap.add_argument("--timeout", type=float, default=1800)
    a = ap.parse_args()
    for s in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, bg._on_signal)
    exe = gdb_go()
    work = tempfile.mkdtemp(prefix="bench-gdbgo-")
    try:
        label, go, goroot, env, version = bg.resolve_toolchain(a.toolchain)
        binary = bg.build_leaker(go, env, work)
        os.environ["GOMAXPROCS"] = "4"
        leaker = bg.start_leaker(binary, a.n, work, timeout=300)
        core = bg.make_core(leaker.pid, work, timeout=1200)
        bg.kill(leaker)
        bg.CHILDREN.remove(leaker)
        cores = []
        for i in range(a.cores):
            c = os.path.join(work, "core%d" % i)
            os.link(core, c)
            cores.append(c)
        bg.settle()
        print("%d goroutines, %s, %d cores of %.2f GB, %d CPUs, median of %d rounds"
              % (a.n, version, a.cores, os.path.getsize(core) / 1e9, os.cpu_count(), a.rounds))
        print("%-7s %9s %9s %7s" % ("format", "-j 1 s", "-j 2 s", "ratio"))
        for fmt in a.format or ["text"]:
            t = {1: [], 2: []}
            for _ in range(a.rounds):
                for j in (1, 2):
                    out = os.path.join(work, "out-%s-%d" % (fmt, j))
                    t[j].append(timed([exe, "dump", binary, *cores, "-f", fmt, "-j", str(j),
                                       "-o", out], a.timeout))
                    shutil.rmtree(out, ignore_errors=True)
            s1, s2 = statistics.median(t[1]), statistics.median(t[2])
            print("%-7s %9.2f %9.2f %7.2f  target %.2f: %s" % (
                fmt, s1, s2, s2 / s1, TARGET, "met" if s2 / s1 <= TARGET else "NOT MET"))
    finally:
        bg.kill_all()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
