#!/usr/bin/env python3
"""The Delve bridge at 100k goroutines, against Delve's own ListGoroutines, in one run.

1. Build bench/leaker (the `go` on PATH, or --toolchain NAME from the matrix) and start
   it with N goroutines (-n, default 100000) and a map main.cache of M entries
   (-m, default 200000).
2. `Bridge.attach(PID)`: one headless dlv (the one the bridge picks for the binary's Go).
   Timed, in this order, on that one session:
     - attach (dlv start + connect), and the DWARF type index (cold: its cache removed first);
     - --rounds times (default 5), while dlv is fresh, each on a new stop (continue,
       halt) and a settled system (sync): the bridge's `goroutines --json`, and
       Delve's own RPCServer.ListGoroutines {Start 0, Count 0} on the same dlv, on a
       connection of its own, timed to the last byte of the answer (parsed after);
     - the bridge's `goroutines --json [-t 64]` reading memory only through
       ExamineMemory, and through /proc/PID/mem, then `stacks` (warm);
     - `map main.cache --json` (M entries, in full).
3. Prints times, the ratio against ListGoroutines (the median of the rounds' ratios,
   and each round's), the counts each reported, the dlv version, and how many
   ExamineMemory calls the bridge made. Never asserts.

    python bench/bench_bridge.py [-n 100000] [-m 200000] [--toolchain NAME] [--dlv PATH]
        [--rounds 5]
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path[:0] = [REPO, os.path.join(REPO, "tests")]

from delve_bridge import Bridge  # noqa: E402
from bench_goroutines import Rpc, settle  # noqa: E402


def build(toolchain, work):
    from bench_goroutines import resolve_toolchain  # the same toolchain choice
    _label, go, _goroot, env, _version = resolve_toolchain(toolchain)
    binary = os.path.join(work, "leaker")
    p = subprocess.run([go, "build", "-o", binary, "."], cwd=os.path.join(HERE, "leaker"), env=env,
                       capture_output=True, text=True, timeout=600)
    if p.returncode != 0:
        raise SystemExit("building bench/leaker failed:\n" + p.stdout + p.stderr)
    return binary


def start(binary, n, m, timeout=300):
    p = subprocess.Popen([binary, str(n), str(m)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                         stdin=subprocess.DEVNULL, text=True)
    ready = threading.Event()

    def pump():
        for line in p.stdout:
            if line.startswith("READY"):
                ready.set()
    threading.Thread(target=pump, daemon=True).start()
    if not ready.wait(timeout):
        p.kill()
        raise SystemExit("leaker not ready")
    return p


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-n", type=int, default=100000)
    ap.add_argument("-m", type=int, default=200000)
    ap.add_argument("--toolchain")
    ap.add_argument("--dlv")
    ap.add_argument("--rounds", type=int, default=5,
                    help="paired bridge/ListGoroutines measurements for the ratio (default 5)")
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="bench-bridge-")
    leaker = None
    rows = []
    try:
        binary = build(a.toolchain, work)
        t0 = time.perf_counter()
        leaker = start(binary, a.n, a.m)
        print(f"leaker pid {leaker.pid}: {a.n} goroutines, map of {a.m}, ready in "
              f"{time.perf_counter() - t0:.1f}s", flush=True)
        dt, b = timed(lambda: Bridge.attach(leaker.pid, dlv=a.dlv))
        with b:
            dv = b.dlv.version
            rows.append(("attach (dlv start, connect)", dt, ""))
            d = b.target.types
            try:
                os.remove(d._index_path)
            except OSError:
                pass
            d._index = d._load_index()
            dt, _ = timed(lambda: b.runtime())
            rows.append(("DWARF index + runtime layout (cold)", dt, ""))
            # the headline ratio first, while dlv is fresh (before the passes below make
            # it serve thousands of ExamineMemory calls): round by round, each on a new
            # stop (the target runs
            # for a moment and is halted again, so neither Delve's caches nor ours hold
            # anything of the last stop) and a settled system (sync): the bridge's
            # goroutines --json, then Delve's ListGoroutines on the same dlv
            pairs = []
            for i in range(max(1, a.rounds)):
                b.cont()
                time.sleep(0.3)
                b.runtime()  # halts: a new stop
                settle()
                t_bridge, text = timed(lambda: b.view(["goroutines", "--json"]))
                n_bridge = len(json.loads(text)["goroutines"])
                del text
                settle()
                # on a connection of its own, timed to the last byte of Delve's answer
                # and parsed after the clock stops: Delve's time, not a Python client's
                rpc = Rpc.at(b.client.address, 1800)
                try:
                    res, err, t_dlv, _ = rpc.call("RPCServer.ListGoroutines",
                                                  {"Start": 0, "Count": 0})
                finally:
                    rpc.close()
                if err:
                    raise SystemExit(f"ListGoroutines failed: {err}")
                n_dlv = len(res.get("Goroutines") or [])
                del res
                pairs.append((t_dlv, t_bridge))
                rows.append((f"round {i + 1}: bridge goroutines --json", t_bridge,
                             f"{n_bridge} goroutines"))
                rows.append((f"round {i + 1}: Delve ListGoroutines Count:0", t_dlv,
                             f"{n_dlv} goroutines; ratio {t_dlv / t_bridge:.1f}x"))
            t_dlv = statistics.median(d for d, _ in pairs)
            ratio = statistics.median(d / x for d, x in pairs)
            direct = b.target.direct
            t_cold = None
            for label, src in (("ExamineMemory only", None), ("/proc/PID/mem + ExamineMemory", direct)):
                b.target.direct = src
                for view in (["goroutines", "--json"], ["goroutines", "--json", "-t", "64"]):
                    b.target.invalidate()
                    b._rt = None
                    b.runtime()
                    r0 = b.target.rpc_reads
                    dt, text = timed(lambda: b.view(view))
                    n_bridge = len(json.loads(text)["goroutines"])
                    rows.append((f"bridge {' '.join(view)} [{label}]", dt,
                                 f"{n_bridge} goroutines, {b.target.rpc_reads - r0} ExamineMemory calls"))
                    if view == ["goroutines", "--json"]:
                        t_cold = dt if label.startswith("Examine") else t_cold
            dt, text = timed(lambda: b.view(["stacks"]))
            rows.append(("bridge stacks (warm)", dt, text.strip().splitlines()[-1]))
            b.target.invalidate()
            dt, text = timed(lambda: b.view(["map", "main.cache", "--json"]))
            mj = json.loads(text)
            rows.append(("bridge map main.cache --json", dt, f"{len(mj['entries'])} entries, "
                         f"{mj['impl']}, errors {len(mj['errors'])}"))
        print(f"\ndlv {'.'.join(map(str, dv))}, target {b.target.elf.go_version()}, "
              f"{a.n} goroutines\n")
        for name, s, note in rows:
            print(f"  {name:42} {s:8.2f} s  {note}")
        print(f"\n  ratio ListGoroutines / bridge goroutines --json, ExamineMemory only: "
              f"{t_dlv / t_cold:.1f}x (median ListGoroutines against the one pass above)")
        print(f"  ratio ListGoroutines / bridge goroutines --json, /proc/PID/mem: "
              f"{ratio:.1f}x, the median of {len(pairs)} rounds "
              f"({', '.join(f'{d / x:.1f}x' for d, x in pairs)}); issue target: >= 10x "
              f"-> {'met' if ratio >= 10 else 'NOT MET'}")
        alive = leaker.poll() is None
        print(f"  leaker still running after detach: {alive}")
    finally:
        if leaker is not None:
            leaker.kill()
            leaker.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
