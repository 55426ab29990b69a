#!/usr/bin/env python3
"""`mapwatch --ebpf` speed, side by side with gdb's breakpoint mapwatch in one run.

The ebpflookups fixture in loop mode (2 lookups of main.intMap per iteration:
`v := m[k]` and `v, ok := m[k]`, keys 0..9, 0..6 present) runs on Go 1.26.
Each round measures:

1. the target's iterations per second with no probe;
2. `gdb-go mapwatch PID main.intMap --seconds S`: hits/s counted in the kernel,
   and the target's rate meanwhile;
3. the same with --found (every RET probed too), and with --found --hits (one ring
   buffer record per hit, read by the prober; the hits dropped because the ring was
   full are printed);
4. gdb's breakpoint `go mapwatch main.intMap --max-hits 1000000 --timeout S`;
5. `gdb-go mapwatch PID main.decoyInt`, a map nobody reads: what a probe costs the
   other maps' lookups (every mapaccess*_fast64 call still runs the BPF program,
   which lets it through).

Medians over --rounds rounds are printed. Benchmarks print; they never assert. On a
machine whose CPU is shared, the numbers are noisy.

    python bench/bench_ebpf_mapwatch.py [--toolchain go1.26.6] [--seconds 3] [--rounds 3]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests"))
sys.path.insert(0, HERE)

import harness  # noqa: E402
from bench_mapwatch import Sampler  # noqa: E402


def ebpf(fp, sampler, expr, seconds, found, out, extra=(), dropped=None):
    path = os.path.join(out, "e.json")
    p = subprocess.Popen([sys.executable, "-m", "gdb_go", "mapwatch", str(fp.pid), expr,
                          "--seconds", str(seconds), "--json", "-o", path]
                         + (["--found"] if found else []) + list(extra),
                         stderr=subprocess.PIPE, text=True, cwd=harness.REPO)
    line = p.stderr.readline()
    if not line.startswith("watching"):
        raise SystemExit("gdb-go mapwatch failed: %s%s" % (line, p.stderr.read()))
    t0 = time.monotonic()
    p.wait()
    rep = json.load(open(path))
    if dropped is not None:
        dropped.append((rep.get("hits_dropped", 0), len(rep["hits"]) + rep["hits_beyond_max"]))
    # the window: from the uprobes in to the deadline (not the detach and report after it)
    return rep["summary"]["hits_per_second"] or 0.0, sampler.rate(t0 + 0.2, t0 + seconds - 0.1)


def breakpoints(binary, fp, sampler, expr, seconds, out):
    path = os.path.join(out, "b.json")
    clock = "python import time; print('CLOCK', time.monotonic())"
    r = harness.run_gdb(binary, pid=fp.pid, commands=[
        ("t0", clock),
        ("probe", "go mapwatch %s --max-hits 1000000 --timeout %s --json -o %s"
         % (expr, seconds, path)),
        ("t1", clock)], timeout=seconds + 120)
    if r.error("probe"):
        raise SystemExit("probe failed: %s" % r.error("probe"))
    t0, t1 = (float(r.block(b).split()[-1]) for b in ("t0", "t1"))
    rep = json.load(open(path))
    # CLOCK_MONOTONIC is the machine's: gdb's window on the sampler's clock
    return rep["summary"]["hits_per_second"] or 0.0, sampler.rate(t0 + 0.2, t1 - 0.1)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--toolchain", default="go1.26.6")
    ap.add_argument("--seconds", type=float, default=3)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    binary = harness.build("ebpflookups", args.toolchain)
    rows = {k: [] for k in ("free", "ebpf", "ebpf --found", "ebpf --found --hits",
                            "ebpf other map", "gdb breakpoints")}
    dropped = []
    with tempfile.TemporaryDirectory() as out:
        with harness.run_fixture(binary, args=("loop",)) as fp:
            sampler = Sampler(fp)
            try:
                for _ in range(args.rounds):
                    t0 = time.monotonic()
                    time.sleep(args.seconds)
                    rows["free"].append((None, sampler.rate(t0, time.monotonic())))
                    rows["ebpf"].append(ebpf(fp, sampler, "main.intMap", args.seconds, False, out))
                    rows["ebpf --found"].append(ebpf(fp, sampler, "main.intMap", args.seconds,
                                                     True, out))
                    rows["ebpf --found --hits"].append(ebpf(
                        fp, sampler, "main.intMap", args.seconds, True, out, ["--hits"], dropped))
                    rows["ebpf other map"].append(ebpf(fp, sampler, "main.decoyInt",
                                                       args.seconds, False, out))
                    rows["gdb breakpoints"].append(breakpoints(binary, fp, sampler,
                                                               "main.intMap", args.seconds, out))
            finally:
                sampler.stop()
    free = statistics.median(r for _, r in rows["free"])
    print("mapwatch on %s, ebpflookups fixture (loop: 2 lookups/iteration), %d rounds of "
          "%.0f s, medians"
          % (args.toolchain, args.rounds, args.seconds))
    print("%-18s %14s %16s %10s" % ("", "hits/s", "iterations/s", "slowdown"))
    for name, vals in rows.items():
        hits = [h for h, _ in vals if h is not None]
        rate = statistics.median(r for _, r in vals)
        print("%-18s %14s %16.0f %9.1fx" % (
            name, "%.0f" % statistics.median(hits) if hits else "-", rate,
            free / rate if rate else float("inf")))
    print("--hits: records read / dropped (ring buffer full) per round: "
          + ", ".join("%d / %d" % (n, d) for d, n in dropped))
    print("('ebpf other map': main.decoyInt probed, which nobody reads: the cost of a probe "
          "to the other maps' lookups)")


if __name__ == "__main__":
    main()
