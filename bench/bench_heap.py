#!/usr/bin/env python3
"""Issue 19's speed: the heap views on a ~1 GB live heap, live and on a core.

1. Build bench/heapbig (--toolchain NAME from the matrix, default go1.26.6) and start it:
   N goroutines (-n, default 1,000,000) each keeping a 1 KiB buffer across a channel
   receive, plus M small objects (-m, default 10,000,000) reachable from a global. It
   collects twice and prints runtime.ReadMemStats' HeapAlloc and HeapObjects.
2. --rounds times (default 2), a fresh `gdb -p PID` under /usr/bin/time -v that loads
   gdb_go_ext and times, one after the other, `go heap --json -o F` and
   `go stacks --retained --json -o F`; then another fresh gdb with `go stacks --retained`
   alone (cold). Peak RSS: /usr/bin/time's maximum resident size of the first gdb. Live bytes and objects are printed against HeapAlloc and HeapObjects.
3. A gcore of the process and 2 again on the core (--no-core skips it).
4. viewcore (golang.org/x/debug/cmd/viewcore, if it is installed or --viewcore PATH)
   `histogram` on the same core, timed, or the line it failed with.

With --base COMMIT (bench/basecode.py), every gdb of 2 and 3 is run again with COMMIT's
code on the same process or core, in the same rounds (the order alternating), and the
medians and ratios this / COMMIT are printed.

Prints medians and the issue's targets as met / NOT MET. Benchmarks never assert. Run it
under the bench lock:

    flock /tmp/gdb_go_ext-bench.lock python bench/bench_heap.py [-n 1000000] [-m 10000000]
        [--toolchain go1.26.6] [--rounds 2] [--no-core] [--viewcore PATH] [--base COMMIT]
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
            bg.log("%s %-24s %8.2f s%s" % (mode + (" base" if code else ""), r["name"], r["seconds"],
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


def viewcore_time(viewcore, binary, core, timeout):
    if not viewcore:
        return ("not installed: `go install golang.org/x/debug/cmd/viewcore@latest` (the Go "
                "module proxy here refuses golang.org/x/debug), or --viewcore PATH")
    t = time.perf_counter()
    try:
        p = subprocess.run([viewcore, core, "--exe", binary, "histogram"], capture_output=True,
                           text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return "gave no answer in %d s" % timeout
    dt = time.perf_counter() - t
    if p.returncode != 0:
        last = (p.stderr.strip() or p.stdout.strip()).splitlines()[-1:] or ["?"]
        return "failed after %.1f s: %s" % (dt, last[0][:200])
    return "%.1f s" % dt


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-n", type=int, default=1000000)
    ap.add_argument("-m", type=int, default=10000000)
    ap.add_argument("--toolchain", default="go1.26.6")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--no-core", action="store_true")
    ap.add_argument("--viewcore", default=shutil.which("viewcore") or os.path.expanduser(
        "~/go/bin/viewcore"))
    ap.add_argument("--timeout", type=int, default=1800)
    basecode.add_option(ap)
    a = ap.parse_args()
    _label, go, _goroot, env, version = bg.resolve_toolchain(a.toolchain)
    work = tempfile.mkdtemp(prefix="bench-heap-")
    binary = os.path.join(work, "heapbig")
    b = subprocess.run([go, "build", "-o", binary, "."], cwd=HEAPBIG, env=env,
                       capture_output=True, text=True, timeout=600)
    if b.returncode:
        raise SystemExit("building bench/heapbig failed:\n" + b.stdout + b.stderr)
    p, alloc, objects = start(binary, a.n, a.m, a.timeout)
    rows, base_rows = {}, {}
    base = basecode.tree(a.base) if a.base else None
    this = REPO if base else None   # (both loaded the same way: basecode.gdb_preimport)

    def measure(mode, target_args, code, into):
        def run(_i):
            s = session(mode, target_args, work, a.timeout, code=code)
            cold = session(mode, target_args, work, a.timeout, ("retained",), code=code)
            s["cold --retained"] = cold["cold --retained"]
            into.setdefault(mode, []).append(s)
        return run
    try:
        live_args = [binary, "-p", str(p.pid)]
        for i in range(a.rounds):
            basecode.pair(i, measure("live", live_args, this, rows),
                          measure("live", live_args, base, base_rows) if base else None)
        if not a.no_core:
            core = bg.make_core(p.pid, work, a.timeout)
            bg.kill(p)
            for i in range(a.rounds):
                basecode.pair(i, measure("core", [binary, core], this, rows),
                              measure("core", [binary, core], base, base_rows) if base else None)
            vc = viewcore_time(a.viewcore if a.viewcore and os.path.exists(a.viewcore)
                               else None, binary, core, min(a.timeout, 600))
        else:
            vc = "not run (--no-core)"
    finally:
        bg.kill(p)
    print("\n%s, %d goroutines x 1 KiB + %d small objects: HeapAlloc %d (%.2f GB), "
          "HeapObjects %d" % (version, a.n, a.m, alloc, alloc / 1e9, objects))
    met = []
    for mode, rs in rows.items():
        med = lambda k: statistics.median(r[k]["seconds"] for r in rs if r.get(k))  # noqa: E731
        heap_s, kept_s = med("go heap"), med("go stacks --retained")
        cold_s = med("cold --retained")
        rss = statistics.median(r["rss_mb"] for r in rs if r["rss_mb"])
        live = rs[0]["live"]
        print("%-5s go heap %.1f s; go stacks --retained after it %.1f s, in a gdb of its own "
              "%.1f s (%.2fx go heap); gdb peak RSS %d MB (medians of %d)"
              % (mode, heap_s, kept_s, cold_s, cold_s / heap_s, rss, len(rs)))
        if live:
            print("      live_bytes %d (%.3f%% of HeapAlloc), live_objects %d (%.3f%%), "
                  "errors %s" % (live[0], 100 * (live[0] - alloc) / alloc, live[1],
                                 100 * (live[1] - objects) / objects, live[2][:3]))
        print("      the largest bucket retains %s bytes" % rs[0]["kept"])
        met.append(("%s go heap < 60 s" % mode, heap_s < 60))
        met.append(("%s --retained < 2x go heap" % mode, max(kept_s, cold_s) < 2 * heap_s))
    print("viewcore histogram on the same core: %s" % vc)
    if base:
        print("\nagainst %s, measured in the same rounds (this / base: the median of the "
              "per-round ratios)" % a.base)
        for mode, rs in rows.items():
            bs = base_rows.get(mode, [])
            for k in ("go heap", "go stacks --retained", "cold --retained"):
                secs = lambda xs: [r[k]["seconds"] if r.get(k) else None for r in xs]  # noqa: E731
                print(basecode.line("%s %s" % (mode, k), a.base, secs(rs), secs(bs)))
            print(basecode.line("%s gdb peak RSS" % mode, a.base, [r["rss_mb"] for r in rs],
                                [r["rss_mb"] for r in bs], "MB"))
    for what, ok in met:
        print("  %-32s %s" % (what, "met" if ok else "NOT MET"))
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
