#!/usr/bin/env python3
"""`gdb-go trace FILE --json` against Go's own parser (golang.org/x/exp/trace), same file,
same run.

The trace: bench/tracegen (64 goroutine pairs ping-ponging over channels, one mutex,
allocation, a few sleepers) built with --toolchain (default go1.26.6), run until the file
holds -m MB. Kept under --dir (default ~/.cache/gdb_go_ext/bigtraces) as tNNN.trace and
reused, since a GB takes a while to write. Go's parser: bench/xtrace (x/exp/trace, the
version pinned in bench/xtrace/go.mod) reads every event and sums per goroutine its
transitions (from-state not Undetermined) and its state at the end. Ours:
`python -m gdb_go trace FILE --json` (no gdb). Alternated over --rounds rounds under the
bench lock (/tmp/gdb_go_ext-bench.lock), each one's wall time, CPU time and peak RSS, the
medians, the ratio ours / Go's, and whether every goroutine's transitions and end state
agree. With --base COMMIT (bench/basecode.py), COMMIT's gdb_go_ext reads the same file
in the same rounds too (the order of the two alternating per round): both medians, the
ratio this / base, and whether the two wrote the same JSON. Benchmarks print; they never
assert.

    python bench/bench_trace_go.py [-m 100] [--toolchain go1.26.6] [--rounds 3]
        [--dir DIR] [--trace FILE] [--memory SIZE] [--base COMMIT]
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

LOCK = "/tmp/gdb_go_ext-bench.lock"


def build(tc, name, out_dir):
    """bench/NAME built with toolchain tc into out_dir (rebuilt when its source changed)."""
    src = os.path.join(HERE, name)
    exe = os.path.join(out_dir, name)
    newest = max(os.path.getmtime(os.path.join(src, f)) for f in os.listdir(src))
    if os.path.exists(exe) and os.path.getmtime(exe) >= newest:
        return exe
    subprocess.run([harness.toolchain(tc)["go"], "build", "-o", exe, "."], cwd=src,
                   env=harness.go_env(tc), check=True, timeout=1800)
    return exe


def run(argv, out, cwd=None):
    """(wall s, CPU s, peak RSS MB) of argv (run in cwd), its stdout to the file out."""
    with open(out, "wb") as f:
        t0 = time.perf_counter()
        p = subprocess.Popen(argv, stdout=f, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                             cwd=cwd)
        _, status, ru = os.wait4(p.pid, 0)
        dt = time.perf_counter() - t0
        err = p.stderr.read().decode(errors="replace")
        p.stderr.close()
    if status != 0:
        raise SystemExit("%s failed (status %d): %s" % (argv[:4], status, err[-2000:]))
    return dt, ru.ru_utime + ru.ru_stime, ru.ru_maxrss / 1024


def agreement(go_out, our_out):
    """(goroutines compared, list of differences) between x/exp's sums and our --json."""
    with open(go_out) as f:
        go = json.load(f)
    with open(our_out) as f:
        ours = json.load(f)
    theirs = {int(k): (v["transitions"], v["end_state"]) for k, v in go["goroutines"].items()}
    mine = {g["id"]: (g["transitions"], g["end_state"]) for g in ours["goroutines"]}
    diffs = ["g%d: Go %s, ours %s" % (k, theirs.get(k), mine.get(k))
             for k in sorted(set(theirs) | set(mine)) if theirs.get(k) != mine.get(k)]
    if go.get("error") or ours.get("errors"):
        diffs.append("errors: Go %r, ours %r" % (go.get("error"), ours.get("errors")))
    return len(theirs), diffs


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-m", type=float, default=100, help="trace size in MB (default 100)")
    ap.add_argument("--toolchain", default="go1.26.6")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--dir", default=os.path.join(harness.cache_dir(), "bigtraces"),
                    help="where traces and the two programs are kept")
    ap.add_argument("--trace", help="an existing trace instead of tNNN.trace under --dir")
    ap.add_argument("--memory", metavar="SIZE",
                    help="ours with --memory SIZE (a generation may take that much to be "
                         "read in bulk; the base without it)")
    basecode.add_option(ap)
    args = ap.parse_args()
    base = basecode.tree(args.base) if args.base else None
    os.makedirs(args.dir, exist_ok=True)
    gen = build(args.toolchain, "tracegen", args.dir)
    xtrace = build(args.toolchain, "xtrace", args.dir)
    path = args.trace or os.path.join(args.dir, "t%d.trace" % args.m)
    with open(LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not os.path.exists(path):
            subprocess.run([gen, path + ".tmp", str(args.m)], check=True, timeout=3600)
            os.rename(path + ".tmp", path)
        size = os.path.getsize(path)
        plain = [sys.executable, "-m", "gdb_go", "trace", path, "--json"]
        ours = plain + (["--memory", args.memory] if args.memory else [])
        # (argv, cwd): `python -m` imports gdb_go_ext from its cwd first (the base's tree)
        progs = {"go": ([xtrace, path], None), "ours": (ours, REPO), "base": (plain, base)}
        labels = {"go": "x/exp/trace", "ours": "gdb-go trace --json" + (
            " --memory " + args.memory if args.memory else ""),
                  "base": "gdb-go trace --json (base)"}
        res = {"go": [], "ours": [], "base": []}
        with tempfile.TemporaryDirectory(prefix="bench_trace_go.") as tmp:
            outs = {k: os.path.join(tmp, k + ".json") for k in progs}
            for r in range(args.rounds):
                order = ["go", "ours", "base"] if r % 2 == 0 else ["go", "base", "ours"]
                for name in (order if base else [k for k in order if k != "base"]):
                    argv, cwd = progs[name]
                    res[name].append(run(argv, outs[name], cwd))
                    print("round %d: %-28s %8.2f s  CPU %8.2f s  peak RSS %6.0f MB"
                          % ((r + 1, labels[name]) + res[name][-1]), flush=True)
            n, diffs = agreement(outs["go"], outs["ours"])
            if base:
                with open(outs["ours"], "rb") as a, open(outs["base"], "rb") as b:
                    same_json = a.read() == b.read()
    med = {k: [statistics.median(x[i] for x in v) for i in range(3)] for k, v in res.items()
           if v}
    print("trace %s: %.1f MB (%s); medians of %d rounds" % (path, size / 1e6, args.toolchain,
                                                            args.rounds))
    for k, label in (("go", "x/exp/trace, every event"), ("ours", "gdb-go trace --json")):
        print("  %-26s %8.2f s  CPU %8.2f s  peak RSS %6.0f MB (max %6.0f)"
              % (label, med[k][0], med[k][1], med[k][2], max(x[2] for x in res[k])))
    print("ratio ours / Go's: wall %.2f, CPU %.2f (target <= 1)"
          % (med["ours"][0] / med["go"][0], med["ours"][1] / med["go"][1]))
    print("agreement on %d goroutines (transitions, end state): %s"
          % (n, "all equal" if not diffs else "%d differ: %s" % (len(diffs),
                                                                  "; ".join(diffs[:10]))))
    if base:
        for i, what in ((0, "wall"), (1, "CPU"), (2, "peak RSS")):
            print("  " + basecode.line("gdb-go trace --json " + what, args.base,
                                       [x[i] for x in res["ours"]],
                                       [x[i] for x in res["base"]], "MB" if i == 2 else "s"))
        print("  the same JSON as %s: %s" % (args.base, "yes" if same_json else "NO"))


if __name__ == "__main__":
    main()
