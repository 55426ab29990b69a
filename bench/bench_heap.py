#!/usr/bin/env python3
"""Issue 29's speed and memory: the heap views on the 0.4 GB and 1.9 GB heaps of
bench/heapbig, ours against goref (cloudwego/goref, Delve-based) on the same core, in
the same run.

For each size (--sizes, default 200000x2000000 and 1000000x10000000: N goroutines each
keeping a 1 KiB buffer across a channel receive, plus M 16-byte objects reachable from
a global; it collects twice and prints runtime.ReadMemStats' HeapAlloc and HeapObjects):
1. Build bench/heapbig (--toolchain NAME from the matrix, default go1.26.6), start it,
   and (--live) time a fresh `gdb -p PID` with `go heap --json -o F` and
   `go stacks --retained --json -o F`, then `go stacks --retained` in a gdb of its own.
2. A gcore of the process. --rounds times (default 3), one after the other:
   - `gdb -batch BIN CORE -ex 'go heap --json -o F'` under /usr/bin/time -v: the
     whole gdb's wall time (its start included) and peak RSS, and the command's own time;
   - goref's `grf core BIN CORE` under /usr/bin/time -v: wall time and peak RSS
     (--goref PATH, or `grf` on PATH; build it from its source with
     `git clone https://github.com/cloudwego/goref && cd goref && go build ./cmd/grf`).
   Then, once, the same gdb with go heap and go stacks --retained (the retained
   bucket) on the core.
3. Live bytes and objects against HeapAlloc and HeapObjects.
4. With --base COMMIT (bench/basecode.py): --rounds gdbs with go heap and go stacks
   --retained on the same core by this tree's code and by COMMIT's, the order alternating,
   and the ratios this / COMMIT.

Prints medians, the ratios to goref and the issue's targets as met / NOT MET. Benchmarks
never assert. The cores are written under --work (default a temporary directory; keep
a few GB free). Run it under the bench lock:

    flock /tmp/gdb_go_ext-bench.lock python bench/bench_heap.py [--sizes NxM,...]
        [--toolchain go1.26.6] [--rounds 3] [--live] [--goref PATH] [--goref-rounds N]
        [--work DIR] [--base COMMIT]
"""
import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path[:0] = [HERE, os.path.join(REPO, "tests")]

import basecode  # noqa: E402
import bench_goroutines as bg  # noqa: E402
import harness  # noqa: E402

HEAPBIG = os.path.join(HERE, "heapbig")

HELPER = r'''
import gdb, json, time
def _h(name, cmd):
    err = None
    t = time.perf_counter()
    try:
        gdb.execute(cmd, to_string=True)
    except Exception as e:
        err = "%s: %s" % (type(e).__name__, e)
    print("BENCH " + json.dumps({"name": name, "seconds": time.perf_counter() - t,
                                 "error": err}), flush=True)
'''


def start(binary, n, m, timeout):
    p = bg.spawn([binary, str(n), str(m)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    lines, cond = [], threading.Condition()
    bg.pump(p.stdout, lines, cond)
    t0 = time.perf_counter()
    hit = bg.wait_line(lines, cond, r"^READY heap_alloc=(\d+) heap_objects=(\d+)", timeout, p)
    if not hit:
        bg.kill(p)
        raise SystemExit("heapbig not ready after %ss (rc %s)" % (timeout, p.returncode))
    bg.log("heapbig pid %d ready in %.1f s: HeapAlloc %s, HeapObjects %s"
           % (p.pid, time.perf_counter() - t0, hit.group(1), hit.group(2)))
    return p, int(hit.group(1)), int(hit.group(2))


def session(mode, target_args, work, timeout, views=("heap", "retained"), code=None):
    helper = os.path.join(work, "helper.py")
    with open(helper, "w") as f:
        f.write(HELPER)
    heap_out, kept_out = os.path.join(work, "heap.json"), os.path.join(work, "kept.json")
    argv = ["/usr/bin/time", "-v", "gdb", "-nx", "-batch", "-iex", "set pagination off",
            "-iex", "set auto-load python-scripts off"] + basecode.gdb_preimport(code) + [
            "-ex", "directory " + harness.gdb_script_dir(), "-ex", "source " + helper,
            "-ex", "python _h('load', 'source gdb_go_ext')"]
    if "heap" in views:
        argv += ["-ex", "python _h('go heap', 'go heap --json -o %s')" % heap_out]
    if "retained" in views:
        argv += ["-ex", "python _h('go stacks --retained', 'go stacks --retained --json -o %s')"
                 % kept_out]
    argv += target_args
    p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                       env=dict(os.environ, NO_COLOR="1"))
    res = {}
    for line in p.stdout.splitlines():
        if line.startswith("BENCH "):
            r = json.loads(line[6:])
            res[r["name"]] = r
            side = "" if not code else " this" if code == REPO else " base"
            bg.log("%s %-24s %8.2f s%s" % (mode + side, r["name"], r["seconds"],
                                          "  ERROR " + r["error"] if r["error"] else ""))
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", p.stderr)
    res["rss_mb"] = int(rss.group(1)) / 1024 if rss else None
    if "heap" not in views:
        res["cold --retained"] = res.pop("go stacks --retained", None)
    try:
        with open(heap_out) as f:
            h = json.load(f)
        res["live"] = (h["live_bytes"], h["live_objects"], h["errors"])
    except (OSError, ValueError, KeyError):
        res["live"] = None
    try:
        with open(kept_out) as f:
            k = json.load(f)
        res["kept"] = max((b.get("retained_bytes", 0) for b in k["buckets"]), default=0)
    except (OSError, ValueError, KeyError):
        res["kept"] = None
    return res


def timed(argv, timeout):
    """(wall seconds, peak RSS MB, stdout) of argv under /usr/bin/time -v."""
    t = time.perf_counter()
    p = subprocess.run(["/usr/bin/time", "-v"] + argv, capture_output=True, text=True,
                       timeout=timeout, env=dict(os.environ, NO_COLOR="1"))
    wall = time.perf_counter() - t
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", p.stderr)
    return wall, (int(rss.group(1)) / 1024 if rss else None), p.stdout, p.returncode, p.stderr


def ours_heap(binary, core, work, timeout):
    """go heap alone on the core in a fresh gdb: (gdb wall s, peak MB, command s, live)."""
    out = os.path.join(work, "heap-core.json")
    argv = ["gdb", "-nx", "-batch", "-iex", "set pagination off",
            "-iex", "set auto-load python-scripts off",
            "-ex", "directory " + harness.gdb_script_dir(), "-ex", "source gdb_go_ext",
            "-ex", "python import time; _t = time.perf_counter()",
            "-ex", "go heap --json -o %s" % out,
            "-ex", "python print('BENCH heap %f' % (time.perf_counter() - _t))",
            binary, core]
    wall, rss, stdout, _rc, _err = timed(argv, timeout)
    m = re.search(r"BENCH heap ([\d.]+)", stdout)
    try:
        with open(out) as f:
            h = json.load(f)
        live = (h["live_bytes"], h["live_objects"], h["errors"])
    except (OSError, ValueError, KeyError):
        live = None
    return wall, rss, float(m.group(1)) if m else None, live


def goref(grf, binary, core, work, timeout):
    """goref on the core: (wall s, peak MB) or (None, error)."""
    cwd = os.path.join(work, "goref")
    os.makedirs(cwd, exist_ok=True)
    try:
        t = time.perf_counter()
        p = subprocess.run(["/usr/bin/time", "-v", grf, "core", binary, core], cwd=cwd,
                           capture_output=True, text=True, timeout=timeout)
        wall = time.perf_counter() - t
    except subprocess.TimeoutExpired:
        return None, "gave no answer in %d s" % timeout
    if p.returncode:
        return None, "failed: " + (p.stderr.strip().splitlines() or ["?"])[-1][:200]
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", p.stderr)
    return wall, int(rss.group(1)) / 1024 if rss else None


def one_size(a, binary, n, m, grf):
    work = tempfile.mkdtemp(prefix="bench-heap-", dir=a.work)
    p, alloc, objects = start(binary, n, m, a.timeout)
    res = {"alloc": alloc, "objects": objects, "ours": [], "goref": []}
    try:
        if a.live:
            res["live"] = session("live", [binary, "-p", str(p.pid)], work, a.timeout)
            cold = session("live", [binary, "-p", str(p.pid)], work, a.timeout, ("retained",))
            res["live"]["cold --retained"] = cold["cold --retained"]
        core = bg.make_core(p.pid, work, a.timeout)
    finally:
        bg.kill(p)
    bg.settle()
    for i in range(a.rounds):
        wall, rss, cmd, live = ours_heap(binary, core, work, a.timeout)
        res["ours"].append((wall, rss, cmd))
        res["live_heap"] = live
        bg.log("core  go heap: gdb %.1f s (the command %.1f s), peak RSS %.0f MB"
               % (wall, cmd or -1, rss or -1))
        if grf and i < a.goref_rounds:
            g = goref(grf, binary, core, work, a.timeout)
            res["goref"].append(g)
            bg.log("core  goref:   " + ("%.1f s, peak RSS %.0f MB" % g if g[0] is not None
                                       else g[1]))
    res["core"] = session("core", [binary, core], work, a.timeout)
    if a.base:   # the same core by this tree's code and COMMIT's, the order alternating
        base = basecode.tree(a.base)
        res["against_base"] = basecode.rounds(
            a.rounds, lambda _i: session("core", [binary, core], work, a.timeout, code=REPO),
            lambda _i: session("core", [binary, core], work, a.timeout, code=base))
    shutil.rmtree(work, ignore_errors=True)
    return res


def report(version, n, m, res, met, base_commit=None):
    alloc, objects = res["alloc"], res["objects"]
    gb = alloc / 1e9
    print("\n%s, %d goroutines x 1 KiB + %d small objects: HeapAlloc %d (%.2f GB), "
          "HeapObjects %d" % (version, n, m, alloc, gb, objects))
    ours = res["ours"]
    wall = statistics.median(o[0] for o in ours)
    rss = statistics.median(o[1] for o in ours if o[1])
    cmd = statistics.median(o[2] for o in ours if o[2])
    print("  go heap on the core: %.1f s in a fresh gdb (the command %.1f s), gdb peak RSS "
          "%.0f MB (medians of %d)" % (wall, cmd, rss, len(ours)))
    live = res.get("live_heap")
    if live:
        print("      live_bytes %d (%+.3f%% of HeapAlloc), live_objects %d (%+.3f%%), "
              "errors %s" % (live[0], 100 * (live[0] - alloc) / alloc, live[1],
                             100 * (live[1] - objects) / objects, live[2][:3]))
    core = res.get("core") or {}
    if core.get("go stacks --retained"):
        print("  then go stacks --retained %.1f s after go heap (largest bucket retains %s "
              "bytes); that gdb's peak RSS %.0f MB" % (core["go stacks --retained"]["seconds"],
                                                     core.get("kept"), core["rss_mb"] or -1))
    for mode in ("live",):
        r = res.get(mode)
        if r and r.get("go heap"):
            print("  live: go heap %.1f s, go stacks --retained after it %.1f s, in a gdb of "
                  "its own %.1f s; gdb peak RSS %.0f MB"
                  % (r["go heap"]["seconds"], r["go stacks --retained"]["seconds"],
                     (r.get("cold --retained") or {}).get("seconds", -1), r["rss_mb"] or -1))
    g = [x for x in res["goref"] if x[0] is not None]
    if g:
        gw = statistics.median(x[0] for x in g)
        gr = statistics.median(x[1] for x in g if x[1])
        print("  goref on the core:   %.1f s, peak RSS %.0f MB (medians of %d)"
              % (gw, gr, len(g)))
        print("  ours: %.1fx faster than goref, at %.2fx its peak RSS" % (gw / wall, rss / gr))
        met.append(("%.1f GB: >= 10x faster than goref" % gb, gw / wall >= 10))
        met.append(("%.1f GB: <= half goref's peak RSS" % gb, rss <= gr / 2))
    elif res["goref"]:
        print("  goref: %s" % res["goref"][0][1])
    if res.get("against_base"):
        mine, theirs = res["against_base"]
        print("  against %s on the same core, in the same rounds (this / base: the median of "
              "the per-round ratios)" % base_commit)
        for k in ("go heap", "go stacks --retained"):
            secs = lambda xs: [r[k]["seconds"] if r.get(k) else None for r in xs]  # noqa: E731
            print("  " + basecode.line("core " + k, base_commit, secs(mine), secs(theirs)))
        print("  " + basecode.line("core gdb peak RSS", base_commit, [r["rss_mb"] for r in mine],
                                   [r["rss_mb"] for r in theirs], "MB"))
    if gb > 1.5:
        met.append(("%.1f GB: go heap <= 15 s (fresh gdb)" % gb, wall <= 15))
        met.append(("%.1f GB: gdb peak RSS <= 1 GB" % gb, rss <= 1024))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="200000x2000000,1000000x10000000")
    ap.add_argument("--toolchain", default="go1.26.6")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--goref-rounds", type=int, default=None,
                    help="run goref in the first N rounds only (default: every round)")
    ap.add_argument("--live", action="store_true")
    ap.add_argument("--goref", default=shutil.which("grf") or os.path.expanduser("~/go/bin/grf"))
    ap.add_argument("--work", default=None)
    ap.add_argument("--timeout", type=int, default=1800)
    basecode.add_option(ap)
    a = ap.parse_args()
    if a.goref_rounds is None:
        a.goref_rounds = a.rounds
    grf = a.goref if a.goref and os.path.exists(a.goref) else None
    if not grf:
        bg.log("goref not found (--goref PATH): ours alone")
    _label, go, _goroot, env, version = bg.resolve_toolchain(a.toolchain)
    build = tempfile.mkdtemp(prefix="bench-heap-bin-", dir=a.work)
    binary = os.path.join(build, "heapbig")
    b = subprocess.run([go, "build", "-o", binary, "."], cwd=HEAPBIG, env=env,
                       capture_output=True, text=True, timeout=600)
    if b.returncode:
        raise SystemExit("building bench/heapbig failed:\n" + b.stdout + b.stderr)
    results = []
    for size in a.sizes.split(","):
        n, m = (int(x) for x in size.lower().split("x"))
        results.append((n, m, one_size(a, binary, n, m, grf)))
    met = []
    for n, m, res in results:
        report(version, n, m, res, met, a.base)
    for what, ok in met:
        print("  %-40s %s" % (what, "met" if ok else "NOT MET"))
    shutil.rmtree(build, ignore_errors=True)


if __name__ == "__main__":
    main()
