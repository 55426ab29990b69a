#!/usr/bin/env python3
"""Goroutine listing speed at 100k goroutines: gdb_go_ext against runtime-gdb.py and Delve.

One run, on one process (bench/leaker, N goroutines parked in chan receive,
chan send, select and sync.Mutex.Lock):

1. Build bench/leaker with the chosen toolchain (default: the `go` on PATH;
   --toolchain NAME takes a matrix toolchain from $GDB_GO_EXT_CACHE/toolchains.json)
   and start it with N goroutines (-n, default 100000).
2. Live: ONE `gdb -nx -batch -p PID` session that loads gdb_go_ext as a user
   does (`directory $GDB_GO_EXT_HOME/gdb`, `source gdb_go_ext`) and the same
   toolchain's $GOROOT/src/runtime/runtime-gdb.py with an explicit `source`
   (auto-load safe-path is untouched; automatic python-script loading is off so
   nothing is loaded twice). Inside gdb each command is timed with
   time.perf_counter around gdb.execute(cmd, to_string=True):
   `go goroutines`, `go stacks`, `go goroutines --json -t 64` (cold), then
   runtime-gdb.py's `info goroutines`, then our three again (warm).
   The session runs --rounds times (default 5), each a fresh gdb after the
   system settles (sync): times are medians, and a ratio is the median of
   the ratios within each round, so both tools of a ratio share one session.
3. Delve (while gdb is NOT attached): `dlv attach PID --headless` on
   127.0.0.1:0, JSON-RPC RPCServer.ListGoroutines {Start 0, Count 0} timed
   from request to the last byte of the response, then RPCServer.Detach
   {Kill false}; the target must keep running.
4. Core: `gcore -o`, then the same gdb session against `gdb BINARY CORE`,
   and Delve's ListGoroutines on `dlv core BINARY CORE`. The core is deleted.
5. A table of seconds, the ratios the issue sets targets for (met / NOT MET,
   judged on the cold columns; warm ratios are printed for information),
   the goroutine counts each tool reported, the Go and dlv versions;
   --json FILE writes all numbers.

Benchmarks print; they never assert timings. The leaker, gdb, gcore, dlv and
the temporary directory (binary, core) are removed on every exit path,
including SIGINT, SIGTERM and SIGHUP.

    python bench/bench_goroutines.py [-n 100000] [--toolchain go1.23.9] [--rounds 5]
        [--dlv PATH | --no-dlv] [--no-dlv-core] [--no-core] [--json FILE]

Delve: --dlv PATH, else $GDB_GO_EXT_CACHE/dlv/*/dlv, ~/go/bin/dlv, PATH; if
none and the `go` on PATH is >= 1.25, it is installed with
`GOBIN=$GDB_GO_EXT_CACHE/dlv/v1.27.1 go install github.com/go-delve/delve/cmd/dlv@v1.27.1`.
"""
import argparse
import glob
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
LEAKER_DIR = os.path.join(HERE, "leaker")
sys.path.insert(0, os.path.join(REPO, "tests"))

import harness  # noqa: E402

DLV_VERSION = "v1.27.1"
LOOPBACK = "127.0.0.1"

# Every process this script starts, each in its own session (so a process
# group we own: gcore's inner gdb dies with gcore). Killed on every exit path.
CHILDREN = []


def log(msg):
    print("bench: " + msg, file=sys.stderr, flush=True)


def spawn(argv, **kw):
    kw.setdefault("stdin", subprocess.DEVNULL)
    p = subprocess.Popen(argv, start_new_session=True, **kw)
    CHILDREN.append(p)
    return p


def kill(p):
    """SIGKILL process p's own group (it leads a session we created), then reap it."""
    if p.poll() is None:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            try:
                p.kill()
            except ProcessLookupError:
                pass
    try:
        p.wait(timeout=30)
    except subprocess.TimeoutExpired:
        pass
    # the group may outlive its leader (gcore's gdb)
    try:
        os.killpg(p.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def kill_all():
    while CHILDREN:
        kill(CHILDREN.pop())


def _on_signal(signum, frame):
    raise SystemExit(128 + signum)


def pump(stream, sink, cond=None):
    """Read stream line by line into sink (a list) in a thread; notify cond per line."""
    def run():
        for line in stream:
            if isinstance(line, bytes):
                line = line.decode("utf-8", "replace")
            sink.append(line.rstrip("\n"))
            if cond is not None:
                with cond:
                    cond.notify_all()
        if cond is not None:
            with cond:
                sink.append(None)  # EOF
                cond.notify_all()
    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def wait_line(lines, cond, pattern, timeout, proc):
    """Wait until a line of `lines` matches `pattern`; returns the match (None on EOF/timeout)."""
    rx = re.compile(pattern)
    end = time.monotonic() + timeout
    seen = 0
    with cond:
        while True:
            while seen < len(lines):
                line = lines[seen]
                seen += 1
                if line is None:
                    return None
                m = rx.search(line)
                if m:
                    return m
            left = end - time.monotonic()
            if left <= 0:
                return None
            cond.wait(min(left, 1.0))
            if proc.poll() is not None and seen >= len(lines):
                cond.wait(0.2)
                if seen >= len(lines):
                    return None


# ---------------------------------------------------------------------------
# toolchain and leaker
# ---------------------------------------------------------------------------
def resolve_toolchain(name):
    """(label, go binary, GOROOT, env, go version) of --toolchain NAME or the go on PATH."""
    if name:
        info = harness.toolchain(name)
        env = harness.go_env(name)
        go = info["go"]
    else:
        go = shutil.which("go")
        if not go:
            raise SystemExit("no `go` on PATH (or pass --toolchain NAME)")
        env = dict(os.environ, GOTOOLCHAIN="local")
        for k in ("GOROOT", "GOFLAGS", "GOEXPERIMENT", "GOWORK"):
            env.pop(k, None)
    out = subprocess.run([go, "env", "GOROOT", "GOVERSION"], env=env, capture_output=True,
                         text=True, timeout=120, check=True).stdout.split()
    goroot, version = out[0], out[1]
    return name or "PATH", go, goroot, env, version


def build_leaker(go, env, work):
    binary = os.path.join(work, "leaker")
    p = subprocess.run([go, "build", "-o", binary, "."], cwd=LEAKER_DIR, env=env,
                       capture_output=True, text=True, timeout=600)
    if p.returncode != 0:
        raise SystemExit("building bench/leaker failed:\n%s%s" % (p.stdout, p.stderr))
    return binary


def start_leaker(binary, n, work, timeout):
    err = open(os.path.join(work, "leaker.stderr"), "w")
    p = spawn([binary, str(n)], stdout=subprocess.PIPE, stderr=err)
    lines, cond = [], threading.Condition()
    pump(p.stdout, lines, cond)  # keep draining so it never blocks on a pipe
    t0 = time.perf_counter()
    m = wait_line(lines, cond, r"^READY (\d+)", timeout, p)
    if not m:
        kill(p)
        raise SystemExit("leaker not ready after %ss (rc %s): %s" % (
            timeout, p.returncode, open(os.path.join(work, "leaker.stderr")).read()[-2000:]))
    log("leaker pid %d ready with %d goroutines in %.1f s" % (p.pid, n, time.perf_counter() - t0))
    return p


def alive_and_running(p):
    """The leaker still exists and is not stopped/traced (state from /proc)."""
    if p.poll() is not None:
        return False, "exited with %s" % p.returncode
    try:
        with open("/proc/%d/stat" % p.pid) as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except OSError as e:
        return False, str(e)
    return state not in ("T", "t", "Z", "X"), "state " + state


# ---------------------------------------------------------------------------
# gdb: one session, each command timed inside gdb
# ---------------------------------------------------------------------------
HELPER = r'''
import gdb, json, re, time

def _bench_count(kind, out):
    if kind == "table":
        m = re.search(r"^(\d+) goroutines: ", out, re.M)
        return int(m.group(1)) if m else None
    if kind == "stacks":
        m = re.search(r"^\d+ buckets of (\d+) goroutines$", out, re.M)
        return int(m.group(1)) if m else None
    if kind == "json":
        try:
            return len(json.loads(out[out.index("{"):])["goroutines"])
        except Exception:
            return None
    if kind == "rgdb":  # runtime-gdb.py: print(s, goid, status, function), s in " *"
        return len(re.findall(r"^[ *] \d+ ", out, re.M))
    return None

def _bench(name, cmd, kind):
    err, out = None, ""
    t = time.perf_counter()
    try:
        out = gdb.execute(cmd, to_string=True)
    except Exception as e:  # keep going; report which command failed
        err = "%s: %s" % (type(e).__name__, e)
    dt = time.perf_counter() - t
    count = _bench_count(kind, out) if err is None else None
    rec = {"name": name, "cmd": cmd, "seconds": dt, "count": count, "bytes": len(out),
           "error": err}
    if err is not None or (kind and count is None):
        rec["tail"] = out[-600:]
    print("BENCH " + json.dumps(rec), flush=True)
'''

OURS = [("go goroutines", "go goroutines", "table"),
        ("go stacks", "go stacks", "stacks"),
        ("go goroutines --json -t 64", "go goroutines --json -t 64", "json")]
RGDB = ("runtime-gdb.py info goroutines", "info goroutines", "rgdb")


def gdb_session(mode, target_args, goroot, work, timeout):
    """Run the gdb session; returns {(name, 'cold'|'warm'): record}, plus load times."""
    helper = os.path.join(work, "bench_helper.py")
    with open(helper, "w") as f:
        f.write(HELPER)
    rgdb = os.path.join(goroot, "src", "runtime", "runtime-gdb.py")
    if not os.path.isfile(rgdb):
        raise SystemExit("no %s" % rgdb)

    def b(name, cmd, kind):
        return ["-ex", "python _bench(%r, %r, %r)" % (name, cmd, kind)]
    argv = ["gdb", "-nx", "-batch", "-iex", "set pagination off", "-iex", "set width 0",
            "-iex", "set height 0", "-iex", "set confirm off",
            # the binary's .debug_gdb_scripts entry is not needed: runtime-gdb.py
            # is sourced explicitly below (safe-path itself is left alone)
            "-iex", "set auto-load python-scripts off",
            "-ex", "directory " + harness.gdb_script_dir(),
            "-ex", "source " + helper]
    argv += b("load gdb_go_ext", "source gdb_go_ext", None)
    argv += b("load runtime-gdb.py", "source " + rgdb, None)
    names = []
    for name, cmd, kind in OURS:
        argv += b(name + "|cold", cmd, kind)
        names.append(name + "|cold")
    argv += b(RGDB[0] + "|cold", RGDB[1], RGDB[2])
    for name, cmd, kind in OURS:
        argv += b(name + "|warm", cmd, kind)
    argv += target_args
    env = dict(os.environ, NO_COLOR="1")
    log("%s: %s" % (mode, " ".join(target_args)))
    errf = open(os.path.join(work, "gdb-%s.stderr" % mode), "w+")
    p = spawn(argv, stdout=subprocess.PIPE, stderr=errf, env=env)
    lines, cond = [], threading.Condition()
    pump(p.stdout, lines, cond)
    results = {}
    end = time.monotonic() + timeout
    seen = 0
    try:
        while True:
            with cond:
                while seen >= len(lines) and time.monotonic() < end:
                    cond.wait(1.0)
            if seen >= len(lines):
                raise SystemExit("%s gdb session timed out after %ss" % (mode, timeout))
            line = lines[seen]
            seen += 1
            if line is None:
                break
            if line.startswith("BENCH "):
                rec = json.loads(line[6:])
                results[rec["name"]] = rec
                msg = ("%s %-40s %8.3f s" % (mode, rec["name"], rec["seconds"])
                       + ("  count %s" % rec["count"] if rec["count"] is not None else "")
                       + ("  ERROR %s" % rec["error"] if rec["error"] else ""))
                log(msg)
        p.wait(timeout=max(1, end - time.monotonic()))
    finally:
        kill(p)
        if p in CHILDREN:
            CHILDREN.remove(p)
    errf.seek(0)
    stderr = errf.read()
    errf.close()
    if "load gdb_go_ext" not in results:
        raise SystemExit("%s gdb session printed no results (rc %s):\n%s" % (
            mode, p.returncode, stderr[-3000:]))
    return results


# ---------------------------------------------------------------------------
# Delve over JSON-RPC on loopback
# ---------------------------------------------------------------------------
def _version_tuple(v):
    m = re.match(r"go(\d+)\.(\d+)", v or "")
    return (int(m.group(1)), int(m.group(2))) if m else (0, 0)


def find_dlv(opt):
    if opt:
        if not os.access(opt, os.X_OK):
            raise SystemExit("--dlv %s is not executable" % opt)
        return opt
    cands = sorted(glob.glob(os.path.join(harness.cache_dir(), "dlv", "*", "dlv")), reverse=True)
    cands.append(os.path.join(os.path.expanduser("~"), "go", "bin", "dlv"))
    on_path = shutil.which("dlv")
    if on_path:
        cands.append(on_path)
    for c in cands:
        if os.access(c, os.X_OK):
            return c
    go = shutil.which("go")
    if not go:
        log("no dlv and no go on PATH to install it: Delve is skipped")
        return None
    env = dict(os.environ, GOTOOLCHAIN="local")
    env.pop("GOROOT", None)
    v = subprocess.run([go, "env", "GOVERSION"], env=env, capture_output=True, text=True,
                       timeout=120).stdout.strip()
    if _version_tuple(v) < (1, 25):
        log("no dlv, and the go on PATH (%s) is older than 1.25: Delve is skipped" % v)
        return None
    gobin = os.path.join(harness.cache_dir(), "dlv", DLV_VERSION)
    log("installing dlv %s into %s" % (DLV_VERSION, gobin))
    env.update(GOBIN=gobin)
    env.pop("GOFLAGS", None)
    p = spawn([go, "install", "github.com/go-delve/delve/cmd/dlv@" + DLV_VERSION], env=env,
              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        out, _ = p.communicate(timeout=1200)
    finally:
        kill(p)
        CHILDREN.remove(p)
    dlv = os.path.join(gobin, "dlv")
    if p.returncode != 0 or not os.access(dlv, os.X_OK):
        log("installing dlv failed (Delve is skipped):\n" + (out or "")[-2000:])
        return None
    return dlv


def dlv_version(dlv):
    try:
        out = subprocess.run([dlv, "version"], capture_output=True, text=True,
                             timeout=60).stdout
    except (OSError, subprocess.SubprocessError) as e:
        return "unknown (%s)" % e
    m = re.search(r"Version:\s*(\S+)", out)
    return m.group(1) if m else out.strip()[:80]


class Rpc:
    """Newline-delimited JSON-RPC 1.0 over a socket, as Delve's API v2 speaks it: TCP on
    loopback, or a Unix socket (address "unix:PATH", as delve-bridge's dlv listens)."""

    def __init__(self, host, port, timeout):
        if host == "unix":
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.settimeout(30)
            self.sock.connect(port)
        elif host != LOOPBACK:
            raise SystemExit("refusing to connect to %s: loopback only" % host)
        else:
            self.sock = socket.create_connection((host, port), timeout=30)
        self.sock.settimeout(timeout)
        self.buf = bytearray()
        self.next_id = 1

    @classmethod
    def at(cls, address, timeout):
        """An Rpc to "HOST:PORT" or "unix:PATH"."""
        host, _, rest = address.partition(":") if address.startswith("unix:") else \
            address.rpartition(":")
        return cls(host, rest if host == "unix" else int(rest), timeout)

    def call(self, method, params):
        """Returns (result, error, seconds from send to the response's last byte, bytes)."""
        rid = self.next_id
        self.next_id += 1
        msg = json.dumps({"method": method, "params": [params], "id": rid}) + "\n"
        t0 = time.perf_counter()
        self.sock.sendall(msg.encode())
        while True:
            nl = self.buf.find(b"\n")
            while nl < 0:
                start = len(self.buf)
                chunk = self.sock.recv(1 << 22)
                if not chunk:
                    raise ConnectionError("dlv closed the connection during %s" % method)
                self.buf += chunk
                i = chunk.find(b"\n")
                nl = start + i if i >= 0 else -1
            dt = time.perf_counter() - t0
            line = bytes(self.buf[:nl])
            del self.buf[:nl + 1]
            if not line.strip():
                continue
            obj = json.loads(line)
            if obj.get("id") == rid:
                return obj.get("result"), obj.get("error"), dt, len(line)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def delve_list(dlv, mode, dlv_args, work, timeout, leaker=None):
    """Start a headless dlv (attach or core) on 127.0.0.1:0, time ListGoroutines,
    detach without killing. Returns a record; dlv is killed on every path."""
    settle()
    argv = [dlv] + dlv_args + ["--headless", "--api-version=2", "--accept-multiclient=false",
                               "--listen=%s:0" % LOOPBACK]
    log("delve %s: %s" % (mode, " ".join(argv)))
    rec = {"name": "Delve ListGoroutines", "seconds": None, "count": None, "error": None}
    p = spawn(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
              cwd=work, env=dict(os.environ, NO_COLOR="1"))
    lines, cond = [], threading.Condition()
    pump(p.stdout, lines, cond)
    rpc = None
    try:
        m = wait_line(lines, cond, r"API server listening at: (127\.0\.0\.1):(\d+)", 300, p)
        if not m:
            rec["error"] = "dlv did not start listening: %s" % " | ".join(
                l for l in lines[-20:] if l)
            return rec
        rpc = Rpc(m.group(1), int(m.group(2)), timeout)
        res, err, dt, nbytes = rpc.call("RPCServer.ListGoroutines", {"Start": 0, "Count": 0})
        if err:
            rec["error"] = str(err)
        else:
            rec["seconds"] = dt
            rec["count"] = len(res.get("Goroutines") or [])
            rec["bytes"] = nbytes
            if res.get("Nextg", -1) not in (-1, 0, None):
                rec["note"] = "Nextg=%s (not all goroutines returned)" % res["Nextg"]
        log("delve %s ListGoroutines: %s s, %s goroutines, %.1f MB" % (
            mode, "%.3f" % dt if not err else "ERROR " + str(err), rec["count"], nbytes / 1e6))
        try:
            _, derr, _, _ = rpc.call("RPCServer.Detach", {"Kill": False})
            if derr:
                rec["detach_error"] = str(derr)
        except (OSError, ConnectionError, ValueError) as e:
            rec["detach_error"] = str(e)
        try:
            p.wait(timeout=60)
            rec["dlv_exit"] = p.returncode
        except subprocess.TimeoutExpired:
            rec["dlv_exit"] = "did not exit after Detach; killed"
        if leaker is not None:
            time.sleep(0.5)
            ok, why = alive_and_running(leaker)
            rec["target_running_after_detach"] = ok
            log("delve %s: target after detach: %s" % (mode, why))
        return rec
    except (OSError, ConnectionError, ValueError, socket.timeout) as e:
        rec["error"] = "%s: %s" % (type(e).__name__, e)
        return rec
    finally:
        if rpc:
            rpc.close()
        kill(p)
        if p in CHILDREN:
            CHILDREN.remove(p)


# ---------------------------------------------------------------------------
# core
# ---------------------------------------------------------------------------
def make_core(pid, work, timeout):
    prefix = os.path.join(work, "core")
    p = spawn(["gcore", "-o", prefix, str(pid)], stdout=subprocess.PIPE,
              stderr=subprocess.STDOUT, text=True)
    t0 = time.perf_counter()
    try:
        out, _ = p.communicate(timeout=timeout)
    finally:
        kill(p)
        CHILDREN.remove(p)
    path = "%s.%d" % (prefix, pid)
    if p.returncode != 0 or not os.path.isfile(path) or os.path.getsize(path) == 0:
        raise SystemExit("gcore failed (rc %s): %s" % (p.returncode, (out or "")[-2000:]))
    log("core %s: %.2f GB in %.1f s" % (path, os.path.getsize(path) / 1e9,
                                       time.perf_counter() - t0))
    return path


# ---------------------------------------------------------------------------
# rounds: the gdb session repeated, each a fresh gdb (so a cold first command)
# ---------------------------------------------------------------------------
def settle():
    """Flush dirty pages (a 1.6 GB core just written, a fresh build) before timing, so
    the kernel's writeback does not compete with whichever tool runs first. (No idle
    pause: a CPU left idle for a second made the next short timing slower here.)"""
    os.sync()


def gdb_rounds(mode, target_args, goroot, work, timeout, rounds):
    """The gdb session `rounds` times. Each record's seconds is the median over the
    rounds; its "rounds" lists every round's seconds (None where a round failed), so
    ratios can be taken round by round (see paired_ratio)."""
    runs = []
    for i in range(rounds):
        settle()
        if rounds > 1:
            log("%s: round %d of %d" % (mode, i + 1, rounds))
        runs.append(gdb_session(mode, target_args, goroot, work, timeout))
    merged = {}
    for name in dict.fromkeys(k for r in runs for k in r):
        recs = [r.get(name) for r in runs]
        secs = [rec["seconds"] if rec and not rec.get("error") else None for rec in recs]
        good = [x for x in secs if x is not None]
        rec = dict(next(rec for rec in recs if rec))
        if good:
            rec["seconds"] = statistics.median(good)
            rec.pop("error", None)
        rec["rounds"] = secs
        merged[name] = rec
    return merged


# ---------------------------------------------------------------------------
# report
# ---------------------------------------------------------------------------
TARGETS = [  # (label, numerator, denominator, op, target)
    ("runtime-gdb.py info goroutines / go goroutines", RGDB[0], "go goroutines", ">=", 15.0),
    ("go stacks / go goroutines", "go stacks", "go goroutines", "<=", 2.0),
    ("go goroutines --json -t 64 / go goroutines", "go goroutines --json -t 64",
     "go goroutines", "<=", 3.0),
    ("Delve ListGoroutines / go goroutines", "Delve ListGoroutines", "go goroutines", None, None),
]
COLUMNS = [("live", "cold"), ("live", "warm"), ("core", "cold"), ("core", "warm")]


def seconds_of(res, mode, name, phase):
    """Seconds of a command in a mode; runtime-gdb.py and Delve ran once (used for both phases)."""
    m = res.get(mode) or {}
    rec = m.get("%s|%s" % (name, phase)) or m.get("%s|cold" % name) or m.get(name)
    if not rec or rec.get("error") or rec.get("seconds") is None:
        return None
    return rec["seconds"]


def paired_ratio(res, mode, num, den, phase):
    """num / den: the median of the ratios taken within each round (both measured in
    the same gdb session), or of the medians where num ran outside the rounds (Delve)."""
    m = res.get(mode) or {}
    a = m.get("%s|%s" % (num, phase)) or m.get("%s|cold" % num) or m.get(num)
    b = m.get("%s|%s" % (den, phase)) or m.get("%s|cold" % den) or m.get(den)
    if a and b and a.get("rounds") and b.get("rounds") and len(a["rounds"]) == len(b["rounds"]):
        pairs = [x / y for x, y in zip(a["rounds"], b["rounds"]) if x is not None and y]
        return (statistics.median(pairs), pairs) if pairs else (None, [])
    x, y = seconds_of(res, mode, num, phase), seconds_of(res, mode, den, phase)
    return (x / y, [x / y]) if x is not None and y else (None, [])


def fmt_s(v):
    return "-" if v is None else "%.3f" % v


def report(res, meta):
    out = []
    w = 34
    out.append("gdb_go_ext goroutine bench: %d goroutines, %s (%s), %s, dlv %s, %d CPUs" % (
        meta["n"], meta["go_version"], meta["toolchain"], meta["gdb_version"],
        meta["dlv_version"] or "not run", os.cpu_count() or 0))
    out.append("")
    out.append("%-*s %10s %10s %10s %10s" % (w, "seconds", "live cold", "live warm",
                                             "core cold", "core warm"))
    for name in [o[0] for o in OURS] + [RGDB[0], "Delve ListGoroutines"]:
        cells = []
        for mode, phase in COLUMNS:
            single = name in (RGDB[0], "Delve ListGoroutines")
            if single and phase == "warm":
                cells.append("")
                continue
            cells.append(fmt_s(seconds_of(res, mode, name, phase)))
        out.append("%-*s %10s %10s %10s %10s" % ((w, name) + tuple(cells)))
    rounds = meta.get("rounds", 1)
    out.append("(gdb commands: median of %d round%s, each a fresh gdb session; runtime-gdb.py "
               "runs once per round, Delve once per mode; a ratio is the median of the "
               "ratios within each round)" % (rounds, "" if rounds == 1 else "s"))
    out.append("")
    out.append("%-48s %11s %11s %11s %11s  %-7s %s" % ("ratio", "live cold", "live warm",
                                                         "core cold", "core warm", "target",
                                                         "verdict"))
    verdicts = {}
    per_round = []
    for label, num, den, op, target in TARGETS:
        cells, oks = [], []
        for mode, phase in COLUMNS:
            r, pairs = paired_ratio(res, mode, num, den, phase)
            if r is None:
                cells.append("-")
                continue
            if len(pairs) > 1:
                per_round.append("  %s, %s %s: %s" % (label, mode, phase, ", ".join(
                    "%.2fx" % x for x in pairs)))
            if op is None:
                cells.append("%.1fx" % r)
                continue
            if phase == "warm":  # the targets are on commands as a user runs them
                cells.append("%.2fx info" % r)
                continue
            ok = r >= target if op == ">=" else r <= target
            oks.append(ok)
            cells.append("%.2fx %s" % (r, "ok" if ok else "MISS"))
        if op is None:
            tgt, verdict = "-", "(no target)"
        else:
            tgt = "%s%gx" % (op, target)
            verdict = ("met" if oks and all(oks) else
                       "NOT MET (%d of %d)" % (oks.count(False), len(oks)) if oks else "not measured")
        verdicts[label] = verdict
        out.append("%-48s %11s %11s %11s %11s  %-7s %s" % ((label,) + tuple(cells) + (tgt, verdict)))
    out.append("(verdicts are on the cold columns: each command the first on its stop, as a "
               "user runs it. Warm: both commands reuse the walk of an earlier command on the "
               "same stop; shown for information)")
    if per_round:
        out.append("")
        out.append("ratios round by round:")
        out.extend(per_round)
    out.append("")
    out.append("goroutine counts reported (sanity: they should agree within a few "
               "runtime goroutines):")
    for mode in ("live", "core"):
        m = res.get(mode) or {}
        counts = []
        for name in [o[0] for o in OURS] + [RGDB[0], "Delve ListGoroutines"]:
            rec = m.get(name + "|cold") or m.get(name)
            if rec:
                c = rec.get("count")
                counts.append((name, c, rec.get("error")))
        if not counts:
            continue
        nums = [c for _, c, _ in counts if isinstance(c, int)]
        spread = max(nums) - min(nums) if nums else None
        out.append("  %s: %s  -> %s" % (mode, ", ".join(
            "%s %s" % (n, c if c is not None else ("ERROR" if e else "?")) for n, c, e in counts),
            "spread %d" % spread + (" (agree)" if spread is not None and spread <= 10 else
                                    " (DISAGREE)") if spread is not None else "no counts"))
    errors = []
    for mode in ("live", "core"):
        for name, rec in sorted((res.get(mode) or {}).items()):
            if rec.get("error"):
                errors.append("  %s %s: %s" % (mode, name, rec["error"]))
            for k in ("detach_error", "note"):
                if rec.get(k):
                    errors.append("  %s %s: %s %s" % (mode, name, k, rec[k]))
            if rec.get("target_running_after_detach") is False:
                errors.append("  %s %s: target NOT running after Detach" % (mode, name))
    if errors:
        out.append("")
        out.append("errors and notes:")
        out.extend(errors)
    loads = []
    for mode in ("live", "core"):
        m = res.get(mode) or {}
        for k in ("load gdb_go_ext", "load runtime-gdb.py"):
            if k in m:
                loads.append("%s %s %.3f s" % (mode, k, m[k]["seconds"]))
    if loads:
        out.append("")
        out.append("load times: " + "; ".join(loads))
    print("\n".join(out), flush=True)
    return verdicts


def gdb_version():
    try:
        out = subprocess.run(["gdb", "--version"], capture_output=True, text=True,
                             timeout=60).stdout.splitlines()
        return out[0] if out else "gdb ?"
    except (OSError, subprocess.SubprocessError):
        return "gdb ?"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-n", type=int, default=100000, help="goroutines to park (default 100000)")
    ap.add_argument("--toolchain", metavar="NAME",
                    help="matrix toolchain from $GDB_GO_EXT_CACHE/toolchains.json "
                         "(default: the go on PATH)")
    ap.add_argument("--dlv", metavar="PATH", help="dlv binary to use")
    ap.add_argument("--no-dlv", action="store_true", help="skip Delve")
    ap.add_argument("--no-dlv-core", action="store_true", help="skip Delve on the core")
    ap.add_argument("--no-core", action="store_true", help="skip the core measurements")
    # a 0.4 s command swings by half with a shared VM's moment; runtime-gdb.py's 7 s
    # averages over it: five rounds make the median steadier than three
    ap.add_argument("--rounds", type=int, default=5,
                    help="gdb sessions per mode, each with a cold first command (default 5)")
    ap.add_argument("--json", metavar="FILE", help="write all numbers to FILE")
    ap.add_argument("--work-dir", metavar="DIR",
                    help="where the temporary directory (binary, core of ~1 GB) goes")
    ap.add_argument("--gdb-timeout", type=float, default=1800, help="seconds per gdb session")
    ap.add_argument("--dlv-timeout", type=float, default=1200,
                    help="seconds for Delve's ListGoroutines")
    a = ap.parse_args()

    for s in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, _on_signal)
    work = tempfile.mkdtemp(prefix="bench-goroutines-", dir=a.work_dir)
    res = {"live": {}, "core": {}}
    meta = {"n": a.n, "rounds": max(1, a.rounds)}
    try:
        label, go, goroot, env, version = resolve_toolchain(a.toolchain)
        meta.update(toolchain=label, go=go, goroot=goroot, go_version=version,
                    gdb_version=gdb_version(), dlv_version=None, cpus=os.cpu_count())
        dlv = None if a.no_dlv else find_dlv(a.dlv)
        if dlv:
            meta["dlv"] = dlv
            meta["dlv_version"] = dlv_version(dlv)
        log("building bench/leaker with %s (%s)" % (go, version))
        binary = build_leaker(go, env, work)
        leaker = start_leaker(binary, a.n, work, timeout=300)

        # live, gdb (one session; it detaches when -batch ends)
        res["live"].update(gdb_rounds("live", ["-p", str(leaker.pid)], goroot, work,
                                      a.gdb_timeout, meta["rounds"]))
        ok, why = alive_and_running(leaker)
        meta["live_after_gdb"] = why
        if not ok:
            raise SystemExit("leaker is not running after the gdb session: %s" % why)
        # live, Delve (gdb is gone: one tracer at a time)
        if dlv:
            rec = delve_list(dlv, "live", ["attach", str(leaker.pid)], work, a.dlv_timeout,
                             leaker=leaker)
            res["live"]["Delve ListGoroutines"] = rec
            ok, why = alive_and_running(leaker)
            if not ok and not a.no_core:
                raise SystemExit("leaker is not running after Delve: %s" % why)

        if not a.no_core:
            core = make_core(leaker.pid, work, timeout=1200)
            meta["core_bytes"] = os.path.getsize(core)
            kill(leaker)  # nothing live is read by accident; frees a CPU
            CHILDREN.remove(leaker)
            res["core"].update(gdb_rounds("core", [binary, core], goroot, work, a.gdb_timeout,
                                          meta["rounds"]))
            if dlv and not a.no_dlv_core:
                res["core"]["Delve ListGoroutines"] = delve_list(
                    dlv, "core", ["core", binary, core], work, a.dlv_timeout)
            os.unlink(core)

        verdicts = report(res, meta)
        if a.json:
            with open(a.json, "w") as f:
                json.dump({"meta": meta, "results": res, "verdicts": verdicts}, f, indent=1)
            log("wrote %s" % a.json)
    finally:
        kill_all()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
