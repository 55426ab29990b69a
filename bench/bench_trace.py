#!/usr/bin/env python3
"""The execution-trace reader (gdb_go_ext/exectrace) against `go tool trace -d=parsed`.

Makes (or takes, --trace) a trace of about -m MB (default 50): the exectrace fixture
(tests/fixtures/exectrace) in its busy mode (64 pairs of goroutines ping-ponging over
channels and allocating) built with --toolchain (default go1.26.6), traced until the file
is big enough. Then, alternated over --rounds rounds (default 3), under the bench lock
(/tmp/gdb_go_ext-bench.lock, so benches never overlap):
  - `go tool trace -d=parsed FILE > /dev/null` of the same toolchain (-d=1 before 1.24);
  - a Python child that iterates read_trace(FILE) over every Event (--raw: only counts
    them, the same events), timed inside the child from read_trace to the last event.
Prints each one's wall time (median), our peak RSS (the child's ru_maxrss) and the ratio
ours / -d=parsed. With --base COMMIT (bench/basecode.py), COMMIT's reader is timed on the
same file in the same rounds (the order alternating), and the ratio this / COMMIT printed.
Benchmarks print; they never assert.

    python bench/bench_trace.py [-m 50] [--toolchain go1.26.6] [--rounds 3] [--trace FILE]
        [--base COMMIT]
"""
import argparse
import fcntl
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "tests"))

import basecode  # noqa: E402
import harness  # noqa: E402
import exectrace_truth as T  # noqa: E402

LOCK = "/tmp/gdb_go_ext-bench.lock"
CHILD = r'''
import json, resource, sys, time
sys.path.insert(0, sys.argv[2])
from gdb_go_ext.exectrace import read_trace
t0 = time.perf_counter()
tr = read_trace(sys.argv[1])
n = 0
kinds = {}
for ev in tr:
    n += 1
    k = ev.kind
    kinds[k] = kinds.get(k, 0) + 1
dt = time.perf_counter() - t0
print(json.dumps({"events": n, "seconds": dt, "error": tr.error, "kinds": kinds,
                  "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
'''


def make_trace(toolchain, mb, path):
    binary = harness.build("exectrace", toolchain)
    seconds = 1.0
    for _ in range(6):  # the rate varies with the machine: scale to the size asked for
        subprocess.run([binary, path, "busy=%.2f" % seconds], check=True, timeout=600,
                       capture_output=True)
        size = os.path.getsize(path)
        if size >= mb * 0.9e6:
            return size
        seconds = min(60.0, seconds * mb * 1e6 / max(size, 1) * 1.05)
    return os.path.getsize(path)


def run_go(go, env, path, version):
    t0 = time.perf_counter()
    with open(os.devnull, "wb") as null:
        subprocess.run([go, "tool", "trace", T.parsed_flag(version), path], stdout=null,
                       env=dict(env, GOTOOLCHAIN="local"), check=True, timeout=3600)
    return time.perf_counter() - t0


def run_ours(path, code=REPO):
    p = subprocess.run([sys.executable, "-c", CHILD, path, code], capture_output=True,
                       text=True, check=True, timeout=3600)
    return json.loads(p.stdout)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-m", type=float, default=50, help="trace size in MB (default 50)")
    ap.add_argument("--toolchain", default="go1.26.6")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--trace", help="an existing trace instead of generating one")
    basecode.add_option(ap)
    args = ap.parse_args()
    base_tree = basecode.tree(args.base) if args.base else None
    info = harness.toolchain(args.toolchain)
    version = harness.toolchain_go_version(args.toolchain)
    env = harness.go_env(args.toolchain)
    with tempfile.TemporaryDirectory(prefix="bench_trace.") as tmp:
        path = args.trace or os.path.join(tmp, "busy.trace")
        with open(LOCK, "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not args.trace:
                make_trace(args.toolchain, args.m, path)
            size = os.path.getsize(path)
            go_times, our_times, rss, base_times = [], [], [], []
            info_out = None
            for r in range(args.rounds):
                go_times.append(run_go(info["go"], env, path, version))
                out, b = basecode.pair(
                    r, lambda i: run_ours(path),
                    (lambda i: run_ours(path, base_tree)) if base_tree else None)
                our_times.append(out["seconds"])
                rss.append(out["maxrss_kb"])
                info_out = out
                print("round %d: -d=parsed %.2f s, ours %.2f s (%d events), peak RSS %.0f MB"
                      % (r + 1, go_times[-1], our_times[-1], out["events"],
                         out["maxrss_kb"] / 1024), flush=True)
                if b is not None:
                    base_times.append(b["seconds"])
                    print("         %s: %.2f s (%d events, %s)" % (
                        args.base, b["seconds"], b["events"],
                        "the same kinds" if b["kinds"] == out["kinds"] else
                        "OTHER KINDS: %s" % b["kinds"]), flush=True)
    go_med, our_med = statistics.median(go_times), statistics.median(our_times)
    print("trace: %.1f MB from %s, %d events, error: %s" % (size / 1e6, version,
                                                             info_out["events"], info_out["error"]))
    print("kinds: %s" % ", ".join("%s %d" % kv for kv in sorted(info_out["kinds"].items())))
    print("go tool trace -d=parsed > /dev/null: median %.2f s" % go_med)
    print("exectrace, every Event:              median %.2f s (%.2f us/event)"
          % (our_med, our_med / max(info_out["events"], 1) * 1e6))
    print("ratio ours / -d=parsed: %.2f   peak RSS: %.0f MB (max of rounds)"
          % (our_med / go_med, max(rss) / 1024))
    if args.base:
        print(basecode.line("exectrace, every Event", args.base, our_times, base_times))


if __name__ == "__main__":
    main()
