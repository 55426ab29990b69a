#!/usr/bin/env python3
"""`go trace FILE --json` (the reader and the summary) against `go tool trace -d=parsed`.

bench/tracegen (goroutines ping-ponging over channels, sleeping, taking a mutex,
allocating, so the trace has every kind of transition and GCs) writes an execution trace of about -m MB (default 50). Then, alternated over --rounds
rounds, under the bench lock (/tmp/gdb_go_ext-bench.lock, so benches never overlap):
`go tool trace -d=parsed FILE > /dev/null` (-d=1 before Go 1.24) of the same toolchain,
and `python -m gdb_go trace FILE --json > /dev/null` (no gdb: the view in-process), and
the reader alone (every event read, nothing done: the summary's share), with each one's
wall time and peak RSS. Prints the medians and the ratio; the issue's targets:
ratio <= 1 and the view's peak RSS under 500 MB. Benchmarks print; they never assert.

    python bench/bench_trace_views.py [-m 50] [--toolchain go1.26.6] [--rounds 3]
        [--trace FILE]   (an existing trace instead of generating one)
"""
import argparse
import fcntl
import os
import re
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "tests"))

import harness  # noqa: E402
from bench_trace_go import run  # noqa: E402  (wall, CPU and peak RSS of one run)

LOCK = "/tmp/gdb_go_ext-bench.lock"


def go_for(tc):
    if tc:
        return harness.toolchain(tc)["go"], harness.go_env(tc), harness.toolchain_go_version(tc)
    out = subprocess.run(["go", "version"], capture_output=True, text=True).stdout
    return "go", dict(os.environ), out.split()[2]


def make_trace(go, env, mb, dest):
    """A trace of about mb MB from bench/tracegen (the generator bench_trace_go uses)."""
    with tempfile.TemporaryDirectory(prefix="bench-trace-") as d:
        gen = os.path.join(d, "tracegen")
        subprocess.run([go, "build", "-o", gen, "."], cwd=os.path.join(HERE, "tracegen"),
                       env=env, check=True)
        subprocess.run([gen, dest, str(mb)], check=True, timeout=600)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-m", type=int, default=50, help="trace size in MB (default 50)")
    ap.add_argument("--toolchain", metavar="NAME", help="matrix toolchain (default: go on PATH)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--trace", metavar="FILE", help="an existing trace (its toolchain's -d)")
    a = ap.parse_args()
    go, env, version = go_for(a.toolchain)
    minor = int(re.match(r"go1\.(\d+)", version)[1])
    with tempfile.TemporaryDirectory(prefix="bench-trace-views-") as d:
        path = a.trace
        if not path:
            path = os.path.join(d, "big.trace")
            make_trace(go, env, a.m, path)
        size = os.path.getsize(path) / (1 << 20)
        flag = "-d=parsed" if minor >= 24 else "-d=1"
        ours = [sys.executable, "-m", "gdb_go", "trace", path, "--json"]
        theirs = [go, "tool", "trace", flag, path]
        # the reader alone (bench/bench_trace.py measures it in depth): the summary's share
        reader = [sys.executable, "-c", "import sys\nfrom gdb_go_ext.exectrace import "
                  "read_trace\nfor ev in read_trace(sys.argv[1]): pass", path]
        with open(LOCK, "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            t_ours, t_theirs, rss_ours, rss_theirs, t_reader, rss_reader = [], [], [], [], [], []
            cpu = {"theirs": [], "ours": [], "reader": []}
            for r in range(a.rounds):
                for name, argv, ts, rs, c in (
                        ("go tool trace " + flag, theirs, t_theirs, rss_theirs, cpu["theirs"]),
                        ("go trace --json", ours, t_ours, rss_ours, cpu["ours"]),
                        ("the reader alone", reader, t_reader, rss_reader, cpu["reader"])):
                    dt, c_s, rss = run(argv, os.devnull)
                    ts.append(dt)
                    rs.append(rss)
                    c.append(c_s)
                    print("round %d: %-22s %7.2f s  CPU %7.2f s  peak RSS %6.0f MB"
                          % (r + 1, name, dt, c_s, rss), flush=True)
    mo, mt = statistics.median(t_ours), statistics.median(t_theirs)
    print("trace %.1f MB (%s); medians of %d rounds:" % (size, version, a.rounds))
    print("  go tool trace %-9s %7.2f s, peak RSS %6.0f MB" % (flag, mt, max(rss_theirs)))
    print("  go trace --json         %7.2f s, peak RSS %6.0f MB" % (mo, max(rss_ours)))
    mr = statistics.median(t_reader)
    print("  the reader alone        %7.2f s, peak RSS %6.0f MB (the summary and JSON: %.0f%% "
          "of go trace --json)" % (mr, max(rss_reader), 100 * max(0.0, mo - mr) / mo))
    print("ratio go trace --json / go tool trace %s: %.2f (target <= 1); RSS target < 500 MB"
          % (flag, mo / mt))
    med = {k: statistics.median(v) for k, v in cpu.items()}
    print("CPU (user + system, medians; less sensitive to a busy machine): go tool trace %.2f s, "
          "go trace --json %.2f s (ratio %.2f), the reader alone %.2f s"
          % (med["theirs"], med["ours"], med["ours"] / med["theirs"], med["reader"]))


if __name__ == "__main__":
    main()
