#!/usr/bin/env python3
"""Issue 18's ratios in one run: a million goroutines, live and on a core.

1. Build bench/leaker (--toolchain NAME from the matrix, default go1.26.6) and start it
   with N goroutines (-n, default 1000000): a quarter each in chan receive, chan send,
   select and sync.Mutex.Lock, a quarter labelled.
2. Live, --rounds times (default 3), each a fresh `gdb -p PID` under /usr/bin/time -v
   that loads gdb_go_ext as a user does and times, inside gdb, one after the other:
   `go goroutines --limit 5` (the first, cold), `go stacks --min 1000`,
   `go goroutines --json -t 64 -o FILE`. Peak RSS: /usr/bin/time's maximum resident
   size of that gdb. Times and RSS are medians over the rounds; a ratio is the median
   of the ratios within each round.
3. runtime-gdb.py's `info goroutines` of the same toolchain, in a gdb of its own,
   --rgdb-rounds times (default 1: it takes about a minute at 1M).
4. The bridge: `delve-bridge attach PID goroutines --json -o FILE` under
   /usr/bin/time -v, dlv's start included (--rounds times), and Delve's own
   RPCServer.ListGoroutines {Count 0} on a headless dlv, timed to the last byte
   (--dlv-rounds, default 1).
5. A gcore of the process, and 2-4 again on `BINARY CORE` (--no-core skips it).
6. With --compare REV: every view of the first round is also run by the code of git
   revision REV (git archive) on the core, and the files compared byte for byte.
7. With --base COMMIT (bench/basecode.py): each round of 2 and 4 also runs COMMIT's code
   on the same process or core (the order alternating), and the table adds its medians
   and the ratios this / COMMIT.

Prints a table and each of the issue's targets as met / NOT MET. Benchmarks never
assert. Run it under the bench lock:

    flock /tmp/gdb_go_ext-bench.lock python bench/bench_million.py [-n 1000000]
        [--toolchain go1.26.6] [--rounds 3] [--dlv PATH] [--no-core] [--compare REV]
        [--base COMMIT]
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
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path[:0] = [HERE, os.path.join(REPO, "tests")]

import basecode  # noqa: E402
import bench_goroutines as bg  # noqa: E402
import harness  # noqa: E402

VENV_PY = os.path.join(harness.home_dir(), "venv", "bin", "python")

HELPER = r'''
import gdb, json, time
def _m(name, cmd):
    err = None
    t = time.perf_counter()
    try:
        out = gdb.execute(cmd, to_string=True)
    except Exception as e:
        out, err = "", "%s: %s" % (type(e).__name__, e)
    dt = time.perf_counter() - t
    print("MBENCH " + json.dumps({"name": name, "seconds": dt, "bytes": len(out),
                                  "error": err, "tail": out[-300:]}), flush=True)
'''

OURS = [("goroutines", "go goroutines --limit 5"),
        ("stacks", "go stacks --min 1000"),
        ("json", "go goroutines --json -t 64 -o {out}/goroutines.json")]
COMPARE = OURS + [("stacks_json", "go stacks --json -o {out}/stacks.json"),
                  ("similar", "go stacks --similar -o {out}/similar.txt"),
                  ("group", "go goroutines -group userloc --json -o {out}/group.json"),
                  ("filter", "go goroutines -s select -l --limit 50 -o {out}/filter.txt"),
                  ("labels", "go goroutines -label worker=3 --limit 40 -l -o {out}/labels.txt"),
                  ("json0", "go goroutines --json -o {out}/goroutines0.json")]


def log(msg):
    print("bench: " + msg, file=sys.stderr, flush=True)


def max_rss_mb(stderr: str):
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", stderr)
    return int(m.group(1)) / 1024 if m else None


def gdb_run(work, target_args, cmds, loader, timeout, tag):
    """One gdb under /usr/bin/time -v running cmds [(name, cmd)]; ({name: record}, MB)."""
    helper = os.path.join(work, "mbench_helper.py")
    with open(helper, "w") as f:
        f.write(HELPER)
    argv = ["/usr/bin/time", "-v", "gdb", "-nx", "-batch", "-iex", "set pagination off",
            "-iex", "set width 0", "-iex", "set height 0", "-iex", "set confirm off",
            "-iex", "set auto-load python-scripts off"] + loader + ["-ex", "source " + helper]
    for name, cmd in cmds:
        argv += ["-ex", "python _m(%r, %r)" % (name, cmd)]
    argv += target_args
    p = bg.spawn(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                 env=dict(os.environ, NO_COLOR="1"))
    try:
        out, err = p.communicate(timeout=timeout)
    finally:
        bg.kill(p)
        bg.CHILDREN.remove(p)
    recs = {}
    for line in out.splitlines():
        if line.startswith("MBENCH "):
            r = json.loads(line[7:])
            recs[r["name"]] = r
            log("%s %-12s %8.3f s%s" % (tag, r["name"], r["seconds"],
                                        "  ERROR " + r["error"] if r["error"] else ""))
    return recs, max_rss_mb(err)


loader_of = basecode.gdb_loader


def rgdb_run(work, target_args, goroot, timeout):
    rgdb = os.path.join(goroot, "src", "runtime", "runtime-gdb.py")
    recs, rss = gdb_run(work, target_args, [("load", "source " + rgdb),
                                            ("rgdb", "info goroutines")], [], timeout, "rgdb")
    return recs.get("rgdb", {}).get("seconds")


def bridge_run(target_words, out, timeout, code=REPO):
    """`delve-bridge TARGET goroutines --json -o out` under /usr/bin/time -v, with the code
    in the folder code: (s, MB, err)."""
    argv = ["/usr/bin/time", "-v", VENV_PY, "-m", "delve_bridge"] + target_words + \
        ["goroutines", "--json", "-o", out]
    t = time.perf_counter()
    p = bg.spawn(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=code,
                 env=dict(os.environ, PYTHONPATH=code))
    try:
        so, se = p.communicate(timeout=timeout)
    finally:
        bg.kill(p)
        bg.CHILDREN.remove(p)
    dt = time.perf_counter() - t
    err = None if p.returncode == 0 and "wrote" in so else (se.strip().splitlines() or ["?"])[0]
    log("bridge %s: %.3f s, %s MB%s" % (target_words[0], dt, max_rss_mb(se),
                                       "  ERROR " + err if err else ""))
    return dt, max_rss_mb(se), err


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def mode_run(a, mode, target_args, bridge_words, goroot, dlv, dlv_args, work, leaker=None):
    res = {"rounds": []}
    out = os.path.join(work, "out-" + mode)
    os.makedirs(out, exist_ok=True)
    cmds = [(n, c.format(out=out)) for n, c in OURS]

    def one_round(code, key, tag):
        def run(i):
            bg.settle()
            recs, rss = gdb_run(work, target_args, cmds, loader_of(code), a.timeout,
                                "%s%s r%d" % (mode, tag, i + 1))
            res[key].append({"seconds": {k: (r["seconds"] if not r["error"] else None)
                                         for k, r in recs.items()}, "rss_mb": rss,
                             "errors": {k: r["error"] for k, r in recs.items() if r["error"]}})
        return run
    res["base_rounds"], res["base_bridge"] = [], []
    base = basecode.tree(a.base) if a.base else None
    for i in range(a.rounds):
        basecode.pair(i, one_round(REPO, "rounds", ""),
                      one_round(base, "base_rounds", " " + a.base) if base else None)
    res["rgdb"] = [rgdb_run(work, target_args, goroot, a.timeout) for _ in range(a.rgdb_rounds)]
    res["bridge"] = []
    def bridge_round(code, key):
        def run(i):
            bg.settle()
            res[key].append(bridge_run(bridge_words, os.path.join(out, "bridge.json"),
                                       a.timeout, code))
        return run
    for i in range(a.rounds):
        basecode.pair(i, bridge_round(REPO, "bridge"),
                      bridge_round(base, "base_bridge") if base else None)
    res["delve"] = []
    if dlv:
        for _ in range(a.dlv_rounds):
            rec = bg.delve_list(dlv, mode, dlv_args, work, a.timeout, leaker=leaker)
            res["delve"].append(rec.get("seconds"))
    if a.compare and mode == "core":
        res["compare"] = compare(a.compare, work, target_args, out)
    for f in os.listdir(out):
        os.unlink(os.path.join(out, f))
    return res


def compare(rev, work, target_args, out):
    """Every view of COMPARE by this tree and by rev on the same target: {name: same?}."""
    tree = basecode.tree(rev)
    got = {}
    dirs = {}
    for who, root in (("new", REPO), ("old", tree)):
        d = dirs[who] = os.path.join(work, "cmp-" + who)
        os.makedirs(d, exist_ok=True)
        cmds = [(n, c.format(out=d)) for n, c in COMPARE if "-o" in c]
        cmds += [(n, c + " -o %s/%s.txt" % (d, n)) for n, c in COMPARE if "-o" not in c]
        gdb_run(work, target_args, cmds, loader_of(root), 3600, "compare " + who)
    for name in sorted(os.listdir(dirs["new"])):
        a_ = os.path.join(dirs["new"], name)
        b_ = os.path.join(dirs["old"], name)
        same = os.path.exists(b_) and _same(a_, b_)
        got[name] = same
        log("compare %s: %s" % (name, "identical" if same else "DIFFERENT"))
    for d in dirs.values():
        shutil.rmtree(d, ignore_errors=True)
    return got


def _same(a, b):
    with open(a, "rb") as fa, open(b, "rb") as fb:
        while True:
            x, y = fa.read(1 << 20), fb.read(1 << 20)
            if x != y:
                return False
            if not x:
                return True


def report(res, meta):
    n = meta["n"]
    lines = ["gdb_go_ext at %d goroutines: %s, %s, dlv %s, %d CPUs, load %s" % (
        n, meta["go_version"], meta["gdb"], meta["dlv_version"], os.cpu_count(),
        meta["load"])]
    lines.append("")
    lines.append("%-44s %12s %12s" % ("", "live", "core"))

    def row(label, f):
        cells = []
        for mode in ("live", "core"):
            r = res.get(mode)
            v = f(r) if r else None
            cells.append("-" if v is None else v)
        lines.append("%-44s %12s %12s" % ((label,) + tuple(cells)))

    def sec(name):
        return lambda r: fmt(median([x["seconds"].get(name) for x in r["rounds"]]))
    row("first go goroutines --limit 5 (s)", sec("goroutines"))
    row("go stacks --min 1000 after it (s)", sec("stacks"))
    row("go goroutines --json -t 64 -o F after (s)", sec("json"))
    row("gdb peak RSS over the three (MB)", lambda r: fmt(median([x["rss_mb"] for x in r["rounds"]]), 0))
    row("runtime-gdb.py info goroutines (s)", lambda r: fmt(median(r["rgdb"])))
    row("delve-bridge goroutines --json -o F (s)", lambda r: fmt(median([b[0] for b in r["bridge"]])))
    row("delve-bridge peak RSS (MB)", lambda r: fmt(median([b[1] for b in r["bridge"]]), 0))
    row("Delve ListGoroutines (s)", lambda r: fmt(median(r["delve"])))
    lines.append("(gdb commands: median of %d rounds, each a fresh gdb; runtime-gdb.py %d, "
                 "Delve %d per mode)" % (meta["rounds"], meta["rgdb_rounds"], meta["dlv_rounds"]))
    if meta.get("base"):
        lines += base_lines(res, meta["base"])
    lines.append("")
    big = n >= 1_000_000
    targets = []
    if big:
        targets += [("first go goroutines <= 1.2 s", lambda r: _first(r), "<=", 1.2),
                    ("runtime-gdb.py / go goroutines >= 40x", lambda r: _ratio_rgdb(r), ">=", 40),
                    ("go stacks / go goroutines <= 1.5x", lambda r: _ratio(r, "stacks"), "<=", 1.5),
                    ("--json -t 64 / go goroutines <= 2x", lambda r: _ratio(r, "json"), "<=", 2),
                    ("gdb peak RSS <= 700 MB", lambda r: median([x["rss_mb"] for x in r["rounds"]]),
                     "<=", 700),
                    ("Delve ListGoroutines / bridge >= 10x", lambda r: _ratio_dlv(r), ">=", 10),
                    ("bridge peak RSS <= 1024 MB", lambda r: median([b[1] for b in r["bridge"]]),
                     "<=", 1024)]
    else:
        targets += [("runtime-gdb.py / go goroutines >= 15x", lambda r: _ratio_rgdb(r), ">=", 15),
                    ("Delve ListGoroutines / bridge >= 10x", lambda r: _ratio_dlv(r), ">=", 10)]
    lines.append("%-40s %12s %12s  %s" % ("target", "live", "core", "verdict"))
    for label, f, op, want in targets:
        cells, oks = [], []
        for mode in ("live", "core"):
            r = res.get(mode)
            v = f(r) if r else None
            if v is None:
                cells.append("-")
                continue
            ok = v <= want if op == "<=" else v >= want
            oks.append(ok)
            cells.append("%.2f %s" % (v, "ok" if ok else "MISS"))
        lines.append("%-40s %12s %12s  %s" % (label, cells[0], cells[1],
                                              "met" if oks and all(oks) else
                                              "NOT MET" if oks else "not measured"))
    for mode in ("live", "core"):
        r = res.get(mode) or {}
        errs = {k: v for x in r.get("rounds", []) for k, v in x["errors"].items()}
        errs.update({"bridge": b[2] for b in r.get("bridge", []) if b[2]})
        if errs:
            lines.append("%s errors: %s" % (mode, errs))
        if r.get("compare") is not None:
            c = r["compare"]
            lines.append("byte-for-byte against %s on the core: %s" % (
                meta["compare"], "all %d identical" % len(c) if all(c.values()) else
                "DIFFERENT: " + ", ".join(k for k, v in c.items() if not v)))
    print("\n".join(lines), flush=True)


def base_lines(res, commit):
    """The same measurements by COMMIT's code: this, COMMIT, this / COMMIT per mode."""
    out = ["", "against %s, measured in the same rounds (this / base: the median of the "
               "per-round ratios)" % commit]
    for mode in ("live", "core"):
        r = res.get(mode)
        if not r or not r.get("base_rounds"):
            continue
        for name, label in (("goroutines", "first go goroutines --limit 5"),
                            ("stacks", "go stacks --min 1000 after it"),
                            ("json", "go goroutines --json -t 64 -o F after")):
            this = [x["seconds"].get(name) for x in r["rounds"]]
            base = [x["seconds"].get(name) for x in r["base_rounds"]]
            out.append(basecode.line("%s %s" % (mode, label), commit, this, base))
        out.append(basecode.line("%s gdb peak RSS" % mode, commit,
                                 [x["rss_mb"] for x in r["rounds"]],
                                 [x["rss_mb"] for x in r["base_rounds"]], "MB"))
        out.append(basecode.line("%s delve-bridge goroutines --json -o F" % mode, commit,
                                 [b[0] for b in r["bridge"]], [b[0] for b in r["base_bridge"]]))
    return out


def fmt(v, digits=3):
    return None if v is None else ("%.*f" % (digits, v))


def _first(r):
    return median([x["seconds"].get("goroutines") for x in r["rounds"]])


def _ratio(r, name):
    return median([x["seconds"][name] / x["seconds"]["goroutines"] for x in r["rounds"]
                   if x["seconds"].get(name) and x["seconds"].get("goroutines")])


def _ratio_rgdb(r):
    g, rg = _first(r), median(r["rgdb"])
    return rg / g if g and rg else None


def _ratio_dlv(r):
    b, d = median([x[0] for x in r["bridge"] if not x[2]]), median(r["delve"])
    return d / b if b and d else None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-n", type=int, default=1_000_000)
    ap.add_argument("--toolchain", default="go1.26.6")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--rgdb-rounds", type=int, default=1)
    ap.add_argument("--dlv-rounds", type=int, default=1)
    ap.add_argument("--dlv", help="dlv binary (default: the newest cached)")
    ap.add_argument("--no-dlv", action="store_true")
    ap.add_argument("--no-core", action="store_true")
    ap.add_argument("--no-live", action="store_true")
    ap.add_argument("--compare", metavar="REV", help="byte-compare the views with git REV")
    basecode.add_option(ap)
    ap.add_argument("--timeout", type=float, default=1800)
    ap.add_argument("--work-dir")
    ap.add_argument("--json", metavar="FILE")
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="bench-million-", dir=a.work_dir)
    res = {}
    try:
        label, go, goroot, env, version = bg.resolve_toolchain(a.toolchain)
        dlv = None if a.no_dlv else bg.find_dlv(a.dlv)
        meta = {"n": a.n, "go_version": version, "gdb": bg.gdb_version(), "rounds": a.rounds,
                "rgdb_rounds": a.rgdb_rounds, "dlv_rounds": a.dlv_rounds if dlv else 0,
                "dlv_version": bg.dlv_version(dlv) if dlv else None, "compare": a.compare,
                "base": a.base,
                "load": "%.1f" % os.getloadavg()[0]}
        binary = bg.build_leaker(go, env, work)
        leaker = bg.start_leaker(binary, a.n, work, timeout=900)
        if not a.no_live:
            res["live"] = mode_run(a, "live", ["-p", str(leaker.pid)],
                                   ["attach", str(leaker.pid)], goroot, dlv,
                                   ["attach", str(leaker.pid)], work, leaker)
        if not a.no_core:
            core = bg.make_core(leaker.pid, work, timeout=1800)
            bg.kill(leaker)
            bg.CHILDREN.remove(leaker)
            res["core"] = mode_run(a, "core", [binary, core], ["core", binary, core], goroot,
                                   dlv, ["core", binary, core], work)
            os.unlink(core)
        report(res, meta)
        if a.json:
            with open(a.json, "w") as f:
                json.dump({"meta": meta, "results": res}, f, indent=1)
    finally:
        bg.kill_all()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
