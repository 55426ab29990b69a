#!/usr/bin/env python3
"""Map decoding speed: `go map --json` against the Go distribution's runtime-gdb.py.

1. Go 1.23 (hmap era): a 200,000-entry map[int64]int64 decoded in full to JSON
   by gdb_go_ext, and printed by runtime-gdb.py's map printer with
   `set print elements unlimited` (sourced explicitly from
   $GOROOT/src/runtime/runtime-gdb.py; auto-load safe-path is left alone).
   Both in this run, on the same process; prints the times and the ratio.
2. A 1,000,000-entry Swiss map (newest Swiss toolchain of the matrix, default
   go1.26.6) decoded completely; checked against the fixture's own length
   and checksum.

Benchmarks print; they never assert timings.

    python bench/bench_maps.py [--hmap-toolchain go1.23.9] [--swiss-toolchain go1.26.6]
"""
import argparse
import json
import os
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests"))

import harness  # noqa: E402

TIMED = r'''
import time, gdb
_t = time.perf_counter()
gdb.execute(%r, to_string=True)
print("SECONDS %%.3f" %% (time.perf_counter() - _t))
'''


def timed(cmd):
    return "python exec(%s)" % json.dumps(TIMED % cmd)


def seconds(r, name):
    if r.error(name):
        raise SystemExit("%s failed: %s\n%s" % (name, r.error(name), r.stderr[-2000:]))
    for line in r.block(name).splitlines():
        if line.startswith("SECONDS "):
            return float(line.split()[1])
    raise SystemExit("%s: no timing in %r" % (name, r.block(name)[-500:]))


def xorsum(entries):
    s = 0
    for k, v in entries:
        s = (s + (k ^ v)) & ((1 << 64) - 1)
    return s - (1 << 64) if s >= 1 << 63 else s


def check(path, truth, name):
    got = json.load(open(path))
    ok = got["len"] == truth[name]["len"] == len(got["entries"]) and \
        xorsum(got["entries"]) == truth[name]["xorsum"] and not got["errors"]
    return got, ok


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--hmap-toolchain", default="go1.23.9")
    ap.add_argument("--swiss-toolchain", default="go1.26.6")
    ap.add_argument("--skip-runtime-gdb", action="store_true",
                    help="do not run runtime-gdb.py (it takes about a minute)")
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="bench-maps-")

    # 1. hmap era, 200k entries: ours vs runtime-gdb.py
    binary = harness.build("maps_bench", a.hmap_toolchain)
    goroot = harness.toolchain(a.hmap_toolchain)["goroot"]
    rgdb = os.path.join(goroot, "src", "runtime", "runtime-gdb.py")
    with harness.run_fixture(binary, timeout=120) as fp:
        truth = fp.truth("maps_bench")
        out = os.path.join(work, "200k.json")
        r = harness.run_gdb(binary, pid=fp.pid, timeout=1800, commands=[
            ("ours", timed("go map main.mBench200k --json -o %s" % out))])
        ours = seconds(r, "ours")
        _, ok = check(out, truth, "main.mBench200k")
        print("%s hmap 200,000 x map[int64]int64 -> JSON, gdb_go_ext: %.2f s (contents %s)"
              % (a.hmap_toolchain, ours, "match" if ok else "DIFFER"))
        if not a.skip_runtime_gdb:
            r = harness.run_gdb(binary, pid=fp.pid, timeout=3600, load_extension=False,
                                extra_args=["-iex", "set auto-load python-scripts off"],
                                commands=[
                                    ("src", "source " + rgdb),
                                    ("elems", "set print elements unlimited"),
                                    ("theirs", timed("print 'main.mBench200k'"))])
            theirs = seconds(r, "theirs")
            print("%s hmap 200,000 x map[int64]int64, runtime-gdb.py print: %.2f s"
                  % (a.hmap_toolchain, theirs))
            print("ratio runtime-gdb.py / gdb_go_ext: %.1fx" % (theirs / ours if ours else 0))

    # 2. Swiss, 1M entries, decoded completely
    binary = harness.build("maps_bench", a.swiss_toolchain)
    with harness.run_fixture(binary, timeout=300) as fp:
        truth = fp.truth("maps_bench")
        out = os.path.join(work, "1m.json")
        r = harness.run_gdb(binary, pid=fp.pid, timeout=1800, commands=[
            ("ours", timed("go map main.mBench1M --json -o %s" % out)),
            ("layout", timed("go map main.mBench1M --layout --limit 4"))])
        t1 = seconds(r, "ours")
        got, ok = check(out, truth, "main.mBench1M")
        s = got["layout"]["summary"]
        print("%s swiss 1,000,000 x map[int64]int64 -> JSON, gdb_go_ext: %.2f s; %d entries "
              "decoded (%s), %d tables, %d groups" % (
                  a.swiss_toolchain, t1, len(got["entries"]), "match" if ok else "DIFFER",
                  s.get("tables", 0), s.get("groups", 0)))
        print("%s swiss 1,000,000 --layout: %.2f s" % (a.swiss_toolchain, seconds(r, "layout")))


if __name__ == "__main__":
    main()
