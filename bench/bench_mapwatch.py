#!/usr/bin/env python3
"""`go mapwatch` speed: hits per second, and how much the probe slows the target.

The lookups fixture runs its loop without sleeping ("tight": 8 map lookups
per iteration, 2 of them on each map). For each watched map:

1. the target's own iterations per second with no debugger (2 s);
2. `go mapwatch MAP --max-hits 1000000 --timeout S` from gdb: the hits per
   second it reports, and the target's iterations per second while it runs
   (sampled from the fixture's PROGRESS lines);
3. the target's rate again after gdb detached (it must be back to normal);
4. the same through `delve-bridge attach PID mapwatch` (dlv API v2: entry
   breakpoints with the condition RBX == map, halt through a second connection).

Benchmarks print; they never assert timings.

    python bench/bench_mapwatch.py [--toolchain go1.26.6] [--seconds 5]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests"))

import harness  # noqa: E402


class Sampler:
    """(time, progress) pairs from the fixture's PROGRESS lines, every 50 ms."""

    def __init__(self, fp):
        self.fp = fp
        self.samples = []
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _last(self):
        for line in reversed(self.fp.stdout_lines):
            if line.startswith("PROGRESS "):
                return int(line.split()[1])
        return None

    def _run(self):
        seen = None
        while not self._stop.is_set():
            v = self._last()
            if v is not None and v != seen:
                self.samples.append((time.monotonic(), v))
                seen = v
            time.sleep(0.01)

    def rate(self, t0, t1):
        pts = [(t, v) for t, v in self.samples if t0 <= t <= t1]
        if len(pts) < 2 or pts[-1][0] == pts[0][0]:
            return float("nan")
        return (pts[-1][1] - pts[0][1]) / (pts[-1][0] - pts[0][0])

    def stop(self):
        self._stop.set()
        self._t.join()


def _run_delve(fp, expr, seconds, path):
    """delve-bridge attach PID mapwatch ... (dlv attach, probe, detach); an error or None."""
    p = subprocess.run([sys.executable, "-m", "delve_bridge", "attach", str(fp.pid), "mapwatch",
                        expr, "--max-hits", "1000000", "--timeout", str(seconds), "--json",
                        "-o", path], capture_output=True, text=True, timeout=seconds + 120,
                       cwd=harness.REPO)
    return p.stderr[-2000:] if p.returncode else None


def measure(binary, fp, sampler, expr, seconds, out, debugger="gdb"):
    t0 = time.monotonic()
    time.sleep(2)
    base = sampler.rate(t0, time.monotonic())
    path = os.path.join(out, "mw.json")
    t1 = time.monotonic()
    if debugger == "delve":
        err = _run_delve(fp, expr, seconds, path)
        t2 = time.monotonic()
        if err:
            raise SystemExit("delve-bridge probe failed: %s" % err)
    else:
        r = harness.run_gdb(binary, pid=fp.pid, commands=[
            ("probe", "go mapwatch %s --max-hits 1000000 --timeout %s --json -o %s"
             % (expr, seconds, path))], timeout=seconds + 120)
        t2 = time.monotonic()
        if r.error("probe"):
            raise SystemExit("probe failed: %s\n%s" % (r.error("probe"), r.stderr[-2000:]))
    rep = json.load(open(path))
    s = rep["summary"]
    # the probe's own window: the last `seconds` before gdb finished, minus detach
    during = sampler.rate(t2 - seconds, t2 - 0.2)
    time.sleep(2)
    after = sampler.rate(t2 + 0.5, time.monotonic())
    print("%-6s %-14s %7.0f hits/s (%d hits, %d on other maps let through, stopped by %s)"
          % (debugger, expr, s["hits_per_second"] or 0, s["hits"], rep["other_map_calls"],
             rep["stopped_by"]))
    print("%-21s target: %9.0f iterations/s before, %7.0f during (%.0fx slower), "
          "%9.0f after; %s run %.1f s" % ("", base, during, base / during if during else
                                          float("inf"), after, debugger, t2 - t1))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--toolchain", default="go1.26.6")
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--debugger", choices=("gdb", "delve", "both"), default="both",
                    help="gdb's go mapwatch, delve-bridge's mapwatch (dlv attach), or both")
    args = ap.parse_args()
    binary = harness.build("lookups", args.toolchain)
    print("go mapwatch on %s, lookups fixture in tight mode, probe %.0f s each"
          % (args.toolchain, args.seconds))
    with tempfile.TemporaryDirectory() as out:
        with harness.run_fixture(binary, args=("tight",)) as fp:
            sampler = Sampler(fp)
            try:
                for expr in ("main.intMap", "main.strMap", "main.pointMap"):
                    for dbg in (("gdb", "delve") if args.debugger == "both" else (args.debugger,)):
                        measure(binary, fp, sampler, expr, args.seconds, out, dbg)
            finally:
                sampler.stop()
            alive = fp.proc.poll() is None
    print("target alive at the end: %s" % alive)


if __name__ == "__main__":
    main()
