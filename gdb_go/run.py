"""One gdb in batch per core: the installed extension loaded, the views run with -o into
files, and what became of each (written, or the one-line error) read back from a small
JSON result the in-gdb runner writes. Cores run one after another or N at a time (a
pool of gdb subprocesses); an error in one core never stops the others."""
from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from gdb_go_ext.target.corecheck import check_core

# format -> (the view's command, without -o, or with {out} where the file goes; the
# output file's suffix)
FORMATS = {
    "text": ("go dump", ".dump.txt"),
    "json": ("go goroutines --json -t 64", ".goroutines.json"),
    "pprof": ("go pprof", ".pb.gz"),
    "stacks": ("go stacks --json", ".stacks.json"),
    "heap": ("go heap --pprof {out}", ".heap.pb.gz"),
    "retained": ("go stacks --retained --pprof {out}", ".retained.pb.gz"),
}
SUMMARY_CMD = "go stacks --json"

# Runs inside gdb (passed with -ex "python exec(...)"); PLAN is filled in per core.
_RUNNER_SRC = r'''
import json as _j
import gdb as _g
_plan = _j.loads(%s)
_res = {"steps": {}}
try:
    _inf = _g.selected_inferior()
    _res["loaded"] = bool(_inf.pid) or bool(_inf.threads())
except Exception as _e:
    _res["loaded"] = False
for _name, _cmd in _plan["commands"]:
    try:
        _g.execute(_cmd, to_string=True)
        _res["steps"][_name] = None
    except Exception as _e:
        _res["steps"][_name] = (str(_e).strip().splitlines() or [type(_e).__name__])[0]
with open(_plan["result"], "w") as _f:
    _j.dump(_res, _f)
'''

# what gdb says on stderr that names the core's problem better than the view would
_GDB_PROBLEMS = ("is not a core dump", "is truncated", "No such file or directory",
                 "Permission denied", "not in executable format")


class BatchError(Exception):
    """A problem with the whole run (no gdb, the extension not installed): one line."""


@dataclass
class CoreResult:
    core: str
    output: str | None = None          # the file written, when it was
    error: str | None = None           # one line, when this core failed
    total: int | None = None           # goroutines
    buckets: list = field(default_factory=list)   # the stacks view's buckets, biggest first
    go_version: str | None = None
    warnings: list = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None


def gdb_script_dir(home: str | None = None) -> str:
    home = home or os.environ.get("GDB_GO_EXT_HOME") or os.path.join(
        os.path.expanduser("~"), ".local", "share", "gdb_go_ext")
    return os.path.join(home, "gdb")


def check_setup(gdb: str, script_dir: str) -> str:
    """The gdb to run (its full path); BatchError when it or the extension is missing."""
    path = shutil.which(gdb)
    if not path:
        raise BatchError(f"gdb not found: {gdb} (set --gdb or GDB)")
    if not os.path.isfile(os.path.join(script_dir, "gdb_go_ext")):
        raise BatchError(f"the extension is not installed for gdb ({script_dir}/gdb_go_ext "
                         "missing): run ./install.sh, or set GDB_GO_EXT_HOME")
    return path


def core_problem(path: str) -> str | None:
    """Why `path` cannot be a whole ELF core, read from its headers (None when it can)."""
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            head = f.read(64)
            if len(head) < 64 or head[:4] != b"\x7fELF":
                return "not a core file (no ELF header)"
            if head[4] != 2 or head[5] != 1:
                return "not a 64-bit little-endian ELF core"
            e_type, = struct.unpack_from("<H", head, 16)
            if e_type != 4:
                return "not a core file (an ELF file of type %d, not ET_CORE)" % e_type
            phoff, = struct.unpack_from("<Q", head, 32)
            phentsize, phnum = struct.unpack_from("<HH", head, 54)
            f.seek(phoff)
            table = f.read(phentsize * phnum)
        if len(table) < phentsize * phnum:
            return "truncated: its program headers end past the file (%d bytes)" % size
        end = 0
        for i in range(phnum):
            _, _, off, _, _, filesz = struct.unpack_from("<IIQQQQ", table, i * phentsize)
            end = max(end, off + filesz)
        if end > size:
            return "truncated: %d bytes, its segments need %d" % (size, end)
    except OSError as e:
        return e.strerror or str(e)
    return None


def output_names(cores: list[str], suffix: str) -> list[str]:
    """One file name per core: its base name plus the suffix, made unique."""
    names, seen = [], {}
    for c in cores:
        base = os.path.basename(c.rstrip("/")) or "core"
        n = seen.get(base, 0)
        seen[base] = n + 1
        names.append((base if n == 0 else f"{base}-{n}") + suffix)
    return names


class Batch:
    """Runs the cores; cancel() kills the gdbs still running."""

    def __init__(self, binary, fmt, out_dir, gdb, script_dir, timeout=None, debug=False):
        self.binary, self.fmt, self.out_dir = binary, fmt, out_dir
        self.gdb, self.script_dir, self.timeout, self.debug = gdb, script_dir, timeout, debug
        self._procs: set[subprocess.Popen] = set()
        self._lock = threading.Lock()
        self._cancelled = False

    def argv(self, core: str, commands, result: str) -> list[str]:
        plan = json.dumps({"commands": commands, "result": result})
        runner = "python exec(%s)" % json.dumps(_RUNNER_SRC % json.dumps(plan))
        return [self.gdb, "-nx", "-batch", "-iex", "set pagination off", "-iex", "set width 0",
                "-iex", "set height 0", "-iex", "set confirm off",
                "-ex", "directory " + self.script_dir, "-ex", "source gdb_go_ext",
                "-ex", runner, self.binary, core]

    def one(self, core: str, name: str) -> CoreResult:
        import time
        t0 = time.monotonic()
        res = CoreResult(core)
        try:
            self._one(core, name, res)
        finally:
            res.seconds = time.monotonic() - t0
        return res

    def _one(self, core, name, res):
        view, _ = FORMATS[self.fmt]
        out = os.path.join(self.out_dir, name)
        # the view writes beside OUT and the file is renamed over it only once written:
        # a failed run never deletes nor cuts an earlier good output
        part = partial_name(out)
        with tempfile.TemporaryDirectory(prefix="gdb-go-") as tmp:
            summary = part if self.fmt == "stacks" else os.path.join(tmp, "stacks.json")
            commands = [["view", view.format(out=argv_quote(part)) if "{out}" in view
                         else f"{view} -o {argv_quote(part)}"]]
            if self.fmt != "stacks":
                commands.append(["summary", f"{SUMMARY_CMD} -o {argv_quote(summary)}"])
            try:
                res.error, steps = self.gdb_run(core, commands, tmp)
                if not res.error:
                    try:
                        if self.fmt == "stacks":   # (read before the rename: same bytes)
                            self._summary(part, res)
                        os.replace(part, out)
                    except OSError as e:
                        res.error = f"cannot write {out}: {e.strerror or e}"
            finally:
                remove_quietly(part)
            if res.error:
                return
            res.output = out
            if steps.get("summary"):
                res.warnings.append("summary: " + steps["summary"])
            elif self.fmt != "stacks":
                self._summary(summary, res)

    @staticmethod
    def _summary(path, res):
        try:
            with open(path) as f:
                s = json.load(f)
            res.total, res.go_version = s.get("total"), s.get("go_version")
            res.buckets = sorted(s.get("buckets", ()), key=lambda b: -b.get("count", 0))
            res.warnings += s.get("errors") or []
        except (OSError, ValueError) as e:
            res.warnings.append(f"summary unreadable: {e}")

    def gdb_run(self, core, commands, tmp):
        """One gdb on core running commands ([name, command] pairs; the first is the one
        that must succeed). Returns (the core's one-line error or None, each step's error)."""
        problem = core_problem(core)
        if problem:
            return problem, {}
        # gdb's own "core file may not match" compares the 15-byte psinfo name with the
        # file's: it proves nothing. The build IDs do (target/corecheck.py).
        verdict = check_core(core, self.binary)
        if verdict.error:
            return verdict.error, {}
        result = os.path.join(tmp, "result.json")
        env = dict(os.environ, NO_COLOR="1")
        try:
            p = subprocess.Popen(self.argv(core, commands, result), stdin=subprocess.DEVNULL,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                 errors="replace", env=env, start_new_session=True)
        except OSError as e:
            return f"cannot run gdb: {e.strerror or e}", {}
        with self._lock:
            if self._cancelled:
                p.kill()
            self._procs.add(p)
        try:
            stdout, stderr = p.communicate(timeout=self.timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.communicate()
            return f"gdb took longer than {self.timeout:g}s", {}
        finally:
            with self._lock:
                self._procs.discard(p)
        if self._cancelled:
            return "interrupted", {}
        said = [ln.strip() for ln in stderr.splitlines() if any(k in ln for k in _GDB_PROBLEMS)]
        try:
            with open(result) as f:
                got = json.load(f)
        except (OSError, ValueError):
            tail = said or [ln for ln in (stderr + stdout).splitlines() if ln.strip()][-1:]
            return "gdb ended (status %d) before the views ran%s" % (
                p.returncode, ": " + tail[-1] if tail else ""), {}
        if not got.get("loaded") and said:
            return "gdb: " + said[0], got["steps"]
        return got["steps"].get(commands[0][0]), got["steps"]

    def run(self, cores, jobs=1, on_done=None) -> list[CoreResult]:
        _, suffix = FORMATS[self.fmt]
        names = output_names(cores, suffix)
        results: list[CoreResult | None] = [None] * len(cores)
        with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
            futs = {pool.submit(self.one, c, n): i for i, (c, n) in enumerate(zip(cores, names))}
            try:
                for fut in _as_completed(futs):
                    i = futs[fut]
                    results[i] = fut.result()
                    if on_done:
                        on_done(results[i])
            except BaseException:
                self.cancel()
                for f in futs:
                    f.cancel()
                raise
        return results

    def cancel(self):
        with self._lock:
            self._cancelled = True
            for p in list(self._procs):
                try:
                    os.killpg(p.pid, 9)
                except OSError:
                    pass


def _as_completed(futs):
    from concurrent.futures import as_completed
    return as_completed(futs)


def remove_quietly(path):
    try:
        os.unlink(path)
    except OSError:
        pass


def partial_name(path: str) -> str:
    """A name beside path (the same file system, for the rename) no other run uses."""
    d, base = os.path.split(path)
    return os.path.join(d, f".{base}.{os.getpid()}-{threading.get_ident()}.partial")


def write_replacing(path: str, text: str) -> None:
    """Write text to path through a partial file renamed over it: path is never cut."""
    part = partial_name(path)
    try:
        with open(part, "w") as f:
            f.write(text)
        os.replace(part, path)
    finally:
        remove_quietly(part)


def argv_quote(path: str) -> str:
    """A file name as the views' argument words read it (gdb's string_to_argv rules)."""
    if not any(c in path for c in " \t\"'\\"):
        return path
    return '"' + path.replace("\\", "\\\\").replace('"', '\\"') + '"'
