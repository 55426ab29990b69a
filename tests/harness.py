"""The real-gdb test harness: Go toolchains, fixture builds, live processes,
cores, and `gdb -batch` runs cut into named blocks.

Typical use (see tests/test_harness.py):

    def test_something(toolchain, mode, tmp_path):
        with target_for("version", toolchain, mode, tmp_path) as t:
            r = t.gdb(["go version"])
            assert t.truth("version")["version"] in r.block("go version")

Paths:
  $GDB_GO_EXT_CACHE (default ~/.cache/gdb_go_ext): toolchains.json written by
      tests/toolchains.py (`./install.sh --test`), and builds/<toolchain>/...
  $GDB_GO_EXT_HOME (default ~/.local/share/gdb_go_ext): gdb/gdb_go_ext, the
      gdb script that install.sh writes.

gdb runs with -nx (the user's gdbinit is never read) and then
`-ex 'directory $GDB_GO_EXT_HOME/gdb' -ex 'source gdb_go_ext'`: the same
file, found the same way, as `source gdb_go_ext` in a user's session, but
hermetic.
"""
import contextlib
import hashlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(TESTS_DIR)
FIXTURES_DIR = os.path.join(TESTS_DIR, "fixtures")
MATRIX_PATH = os.path.join(TESTS_DIR, "matrix.json")

MODES = ("live", "core")


class HarnessError(Exception):
    """The harness itself could not do what a test asked (build, run, core)."""


def cache_dir():
    return os.environ.get("GDB_GO_EXT_CACHE") or os.path.join(
        os.path.expanduser("~"), ".cache", "gdb_go_ext")


def home_dir():
    return os.environ.get("GDB_GO_EXT_HOME") or os.path.join(
        os.path.expanduser("~"), ".local", "share", "gdb_go_ext")


def gdb_script_dir():
    return os.path.join(home_dir(), "gdb")


# ---------------------------------------------------------------------------
# the matrix
# ---------------------------------------------------------------------------
def matrix():
    """The entries of tests/matrix.json, in order."""
    with open(MATRIX_PATH) as f:
        return json.load(f)["toolchains"]


def matrix_names():
    return [tc["name"] for tc in matrix()]


def toolchains():
    """$CACHE/toolchains.json: matrix name -> {goroot, go, version, env, source}."""
    path = os.path.join(cache_dir(), "toolchains.json")
    if not os.path.exists(path):
        raise HarnessError("%s is missing: run ./install.sh --test (or "
                           "python tests/toolchains.py install)" % path)
    with open(path) as f:
        return json.load(f)


def toolchain(name):
    """Resolved toolchain info for a matrix name. Missing = error, never a skip."""
    tcs = toolchains()
    if name not in tcs:
        raise HarnessError("toolchain %s is not installed (not in %s/toolchains.json); "
                           "run ./install.sh --test" % (name, cache_dir()))
    info = dict(tcs[name])
    if not os.access(info["go"], os.X_OK):
        raise HarnessError("toolchain %s: %s is gone; rerun ./install.sh --test"
                           % (name, info["go"]))
    return info


def go_env(name):
    """The environment to run toolchain `name`'s go with."""
    info = toolchain(name)
    env = dict(os.environ)
    for k in ("GOROOT", "GOFLAGS", "GOEXPERIMENT", "GOWORK", "GOARCH", "GOOS"):
        env.pop(k, None)
    env.update(GOTOOLCHAIN="local", GOFLAGS="-mod=mod")
    env.update(info.get("env", {}))
    return env


def toolchain_go_version(name):
    """What `<toolchain go> version` prints, e.g. 'go1.23.9'."""
    out = subprocess.run([toolchain(name)["go"], "version"], env=go_env(name),
                         capture_output=True, text=True, check=True, timeout=120).stdout
    return out.split()[2]


# ---------------------------------------------------------------------------
# building fixtures
# ---------------------------------------------------------------------------
def _fixture_sources(fixture_dir):
    files = []
    for root, dirs, names in os.walk(fixture_dir):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for n in sorted(names):
            if n.endswith((".go", ".mod", ".sum", ".s", ".c", ".h")):
                files.append(os.path.join(root, n))
    return files


def fixture_hash(fixture_name, tc_name=None):
    fixture_dir = os.path.join(FIXTURES_DIR, fixture_name)
    h = hashlib.sha256()
    for path in _fixture_sources(fixture_dir):
        h.update(os.path.relpath(path, fixture_dir).encode() + b"\0")
        with open(path, "rb") as f:
            h.update(f.read())
        h.update(b"\0")
    if tc_name is not None:  # a re-resolved toolchain (e.g. a Debian update) rebuilds
        info = toolchain(tc_name)
        h.update(json.dumps([info["version"], info["go"], info.get("env", {})],
                            sort_keys=True).encode())
    return h.hexdigest()[:16]


def build(fixture_name, toolchain_name, pie=False, test=False):
    """Build tests/fixtures/<fixture_name>/ with a matrix toolchain; return the
    binary's path. Cached by source hash under $CACHE/builds/<toolchain>/;
    safe to call concurrently (pytest-xdist): builds go to a temp dir that is
    renamed into place atomically. Default build flags: we debug what users ship;
    pie: a position-independent executable (-buildmode=pie), loaded at a bias;
    test: the package's test binary (go test -c)."""
    fixture_dir = os.path.join(FIXTURES_DIR, fixture_name)
    if not os.path.isdir(fixture_dir):
        raise HarnessError("no fixture %s" % fixture_dir)
    key = "%s-%s%s" % (fixture_name, fixture_hash(fixture_name, toolchain_name),
                       "-pie" if pie else "")
    parent = os.path.join(cache_dir(), "builds", toolchain_name)
    final = os.path.join(parent, key)
    binary = os.path.join(final, fixture_name)
    if os.access(binary, os.X_OK):
        return binary
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".%s." % key, dir=parent)
    try:
        p = subprocess.run([toolchain(toolchain_name)["go"]]
                           + (["test", "-c"] if test else ["build"])
                           + (["-buildmode=pie"] if pie else [])
                           + ["-o", os.path.join(tmp, fixture_name), "."],
                           cwd=fixture_dir, env=go_env(toolchain_name),
                           capture_output=True, text=True, timeout=600)
        if p.returncode != 0:
            raise HarnessError("building fixture %s with %s failed:\n%s%s"
                               % (fixture_name, toolchain_name, p.stdout, p.stderr))
        try:
            os.rename(tmp, final)
        except OSError:
            if not os.access(binary, os.X_OK):  # lost a race to a good build?
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return binary


# ---------------------------------------------------------------------------
# running fixtures
# ---------------------------------------------------------------------------
class FixtureProcess:
    """A running fixture: .pid, .out_dir, .proc, .stdout_lines, .truth(name)."""

    def __init__(self, proc, out_dir):
        self.proc = proc
        self.pid = proc.pid
        self.out_dir = out_dir
        self.stdout_lines = []

    def truth(self, name):
        """<out_dir>/<name>.json parsed, or <out_dir>/<name> as text."""
        for cand in (name + ".json", name):
            path = os.path.join(self.out_dir, cand)
            if os.path.isfile(path):
                with open(path) as f:
                    return json.load(f) if cand.endswith(".json") else f.read()
        raise HarnessError("fixture wrote no %s(.json) in %s (has: %s)"
                           % (name, self.out_dir, sorted(os.listdir(self.out_dir))))

    def stderr_text(self):
        try:
            with open(os.path.join(self.out_dir, ".stderr")) as f:
                return f.read()
        except OSError:
            return ""


def _kill(proc):
    if proc.poll() is None:
        try:
            proc.send_signal(signal.SIGKILL)
        except ProcessLookupError:
            pass
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        pass


@contextlib.contextmanager
def run_fixture(binary, args=(), ready="READY", timeout=30, out_dir=None, env=None):
    """Start a fixture with a fresh output dir (first argument and $FIXTURE_OUT),
    wait (at most `timeout` s) for a stdout line starting with `ready`, yield a
    FixtureProcess. The process is always killed on exit."""
    own_dir = out_dir is None
    out_dir = out_dir or tempfile.mkdtemp(prefix="fixture-out-")
    penv = dict(os.environ if env is None else env, FIXTURE_OUT=out_dir)
    stderr = open(os.path.join(out_dir, ".stderr"), "w")
    proc = subprocess.Popen([binary, out_dir] + list(args), env=penv,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=stderr, text=True)
    fp = FixtureProcess(proc, out_dir)
    is_ready = threading.Event()

    def pump():  # keep reading so the fixture never blocks on a full pipe
        for line in proc.stdout:
            fp.stdout_lines.append(line.rstrip("\n"))
            if line.startswith(ready):
                is_ready.set()
        is_ready.set()  # EOF: wake the waiter, it checks poll()

    t = threading.Thread(target=pump, daemon=True)
    t.start()
    try:
        if not is_ready.wait(timeout) or not any(
                l.startswith(ready) for l in fp.stdout_lines):
            try:  # at EOF the process is exiting: reap it to report its status
                status = proc.wait(timeout=5) if proc.stdout.closed or not t.is_alive() else proc.poll()
            except subprocess.TimeoutExpired:
                status = None
            raise HarnessError("fixture %s %s before printing %r; stdout=%r stderr=%r"
                               % (binary, "exited with %s" % status if status is not None
                                  else "not ready after %ss" % timeout,
                                  ready, fp.stdout_lines[-20:], fp.stderr_text()[-2000:]))
        yield fp
    finally:
        _kill(proc)
        stderr.close()
        if own_dir:
            shutil.rmtree(out_dir, ignore_errors=True)


def make_core(pid, dest_dir, timeout=120):
    """gcore -o dest_dir/core PID; returns the core's path."""
    os.makedirs(dest_dir, exist_ok=True)
    prefix = os.path.join(dest_dir, "core")
    p = subprocess.run(["gcore", "-o", prefix, str(pid)], capture_output=True,
                       text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    path = "%s.%d" % (prefix, pid)
    if p.returncode != 0 or not os.path.isfile(path) or os.path.getsize(path) == 0:
        raise HarnessError("gcore of pid %d failed (rc %d): %s%s"
                           % (pid, p.returncode, p.stdout[-2000:], p.stderr[-2000:]))
    return path


def core_pattern_problem():
    """None when a crashing process writes its core as `core` into its working
    directory (the same-instant truth needs that), else why not, for a skip."""
    try:
        with open("/proc/sys/kernel/core_pattern") as f:
            pattern = f.read().strip()
    except OSError as e:
        return "cannot read /proc/sys/kernel/core_pattern: %s" % e
    if pattern.startswith("|"):
        return "core_pattern pipes cores to %s, not into the working directory" % pattern[1:].split()[0]
    if "/" in pattern:
        return "core_pattern writes cores to %s, not into the working directory" % pattern
    return None


def crash_dump(binary, work_dir, args=(), env=None, timeout=180):
    """Run a fixture that panics, with GOTRACEBACK=crash, GOMAXPROCS=4, the SCHED detail
    (GODEBUG=schedtrace=999999,scheddetail=1), pprof labels in the goroutine headers
    (tracebacklabels=1, Go 1.26+) and cores unlimited, in work_dir. At the
    panic the runtime prints every goroutine, then dumps a core at that same instant.
    Returns (what it printed on stderr, the core's path, its output dir)."""
    import resource
    problem = core_pattern_problem()
    if problem:
        raise HarnessError(problem)
    out_dir = os.path.join(work_dir, "out")
    os.makedirs(out_dir, exist_ok=True)
    penv = dict(os.environ if env is None else env, FIXTURE_OUT=out_dir, GOTRACEBACK="crash",
                GOMAXPROCS="4", GODEBUG="schedtrace=999999,scheddetail=1,tracebacklabels=1")

    def unlimited_core():
        resource.setrlimit(resource.RLIMIT_CORE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))

    try:
        p = subprocess.run([binary, out_dir] + list(args), cwd=work_dir, env=penv,
                           stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           errors="replace", timeout=timeout, preexec_fn=unlimited_core)
    except subprocess.TimeoutExpired:
        raise HarnessError("fixture %s did not crash within %ss" % (binary, timeout))
    cores = [n for n in os.listdir(work_dir) if n.startswith("core")]
    if p.returncode >= 0 or not cores:
        raise HarnessError("fixture %s exited %s without a core in %s; stderr: %s"
                           % (binary, p.returncode, work_dir, p.stderr[-2000:]))
    return p.stderr, os.path.join(work_dir, cores[0]), out_dir


# ---------------------------------------------------------------------------
# gdb
# ---------------------------------------------------------------------------
_RUNNER_SRC = r"""
import gdb as _gge_gdb, sys as _gge_sys
def _gge_run(name, cmd):
    print("BEGIN %s" % name, flush=True)
    try:
        _gge_gdb.execute(cmd)
    except _gge_gdb.error as e:  # keep going, and say which command failed
        _gge_gdb.flush()
        print("ERROR %s: %s" % (name, e), flush=True)
        _gge_sys.stderr.write("%s\n" % e)
    _gge_gdb.flush()
    print("END %s" % name, flush=True)
"""
_RUNNER = "python exec(%s)" % json.dumps(_RUNNER_SRC)


class GdbResult:
    """Output of one gdb run: .stdout, .stderr, .returncode, .argv,
    .block(name) (what that command printed), .error(name) (its gdb error
    message or None), .names (the blocks found, in order)."""

    def __init__(self, argv, stdout, stderr, returncode):
        self.argv, self.stdout, self.stderr, self.returncode = argv, stdout, stderr, returncode
        self._blocks, self._errors, self.names = {}, {}, []
        cur, buf = None, []
        for line in stdout.splitlines():
            if cur is None and line.startswith("BEGIN "):
                cur, buf = line[len("BEGIN "):], []
            elif cur is not None and line == "END " + cur:
                self._blocks[cur] = "\n".join(buf)
                self.names.append(cur)
                cur = None
            elif cur is not None and line.startswith("ERROR %s: " % cur):
                self._errors[cur] = line[len("ERROR %s: " % cur):]
            elif cur is not None:
                buf.append(line)

    def block(self, name):
        if name not in self._blocks:
            raise KeyError("no block %r in gdb output (blocks: %s)\n--- stdout ---\n%s"
                           "\n--- stderr ---\n%s" % (name, self.names, self.stdout[-4000:],
                                                       self.stderr[-4000:]))
        return self._blocks[name]

    def error(self, name):
        self.block(name)
        return self._errors.get(name)

    def __repr__(self):
        return "GdbResult(rc=%r, blocks=%r)" % (self.returncode, self.names)


def run_gdb(binary=None, *, pid=None, core=None, commands=(), timeout=120,
            load_extension=True, env=None, extra_args=()):
    """Run real `gdb -batch -nx` on binary (+ pid to attach, or + core), load
    the extension as a user would, then run `commands`: each a string (its own
    block name) or a (name, command) pair. Returns a GdbResult."""
    argv = ["gdb", "-nx", "-batch", "-iex", "set pagination off",
            "-iex", "set width 0", "-iex", "set height 0", "-iex", "set confirm off"]
    argv += list(extra_args)
    if load_extension:
        argv += ["-ex", "directory " + gdb_script_dir(), "-ex", "source gdb_go_ext"]
    argv += ["-ex", _RUNNER]
    for c in commands:
        name, cmd = (c, c) if isinstance(c, str) else c
        if "\n" in name:
            raise ValueError("block name with a newline: %r" % name)
        argv += ["-ex", "python _gge_run(%s, %s)" % (json.dumps(name), json.dumps(cmd))]
    if pid is not None:
        argv += ["-p", str(pid)]
        if binary:
            argv.append(binary)  # gdb BINARY -p PID
    elif core is not None:
        argv += [binary, core] if binary else ["-c", core]
    elif binary:
        argv.append(binary)
    genv = dict(os.environ if env is None else env)
    genv.setdefault("NO_COLOR", "1")
    try:
        p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                           env=genv, stdin=subprocess.DEVNULL, errors="replace")
    except subprocess.TimeoutExpired as e:
        raise HarnessError("gdb timed out after %ss: %s\n--- stdout ---\n%s" % (
            timeout, argv, (e.stdout or b"")[-4000:] if isinstance(e.stdout, bytes)
            else (e.stdout or "")[-4000:]))
    return GdbResult(argv, p.stdout, p.stderr, p.returncode)


# ---------------------------------------------------------------------------
# one target, either mode
# ---------------------------------------------------------------------------
class Target:
    """A fixture under test: .binary, .pid (live) or .core (core), .fixture
    (the FixtureProcess, for .truth), .mode, .toolchain; .gdb(commands)."""

    def __init__(self, binary, mode, toolchain, fixture, pid=None, core=None):
        self.binary, self.mode, self.toolchain, self.fixture = binary, mode, toolchain, fixture
        self.pid, self.core = pid, core

    def truth(self, name):
        return self.fixture.truth(name)

    def gdb(self, commands, **kw):
        return run_gdb(self.binary, pid=self.pid, core=self.core, commands=commands, **kw)


@contextlib.contextmanager
def target_for(fixture, toolchain_name, mode, work_dir=None, args=(), ready="READY", pie=False):
    """Build `fixture` with `toolchain_name`, run it, and yield a Target:
    mode 'live' -> .pid of the running process; mode 'core' -> .core, a gcore
    of it (the process is killed before the test sees it, so nothing live is
    read by accident). The fixture's output dir (truth files) lives until exit."""
    if mode not in MODES:
        raise ValueError("mode must be one of %s" % (MODES,))
    binary = build(fixture, toolchain_name, pie=pie)
    own = work_dir is None
    work_dir = work_dir or tempfile.mkdtemp(prefix="gge-target-")
    out_dir = os.path.join(str(work_dir), "out-%s-%s" % (fixture, mode))
    os.makedirs(out_dir, exist_ok=True)
    try:
        with run_fixture(binary, args=args, ready=ready, out_dir=out_dir) as fp:
            if mode == "live":
                yield Target(binary, mode, toolchain_name, fp, pid=fp.pid)
                return
            core = make_core(fp.pid, os.path.join(str(work_dir), "cores"))
            _kill(fp.proc)
            yield Target(binary, mode, toolchain_name, fp, core=core)
    finally:
        # cores are big: never leave them behind, even in a test's tmp_path
        shutil.rmtree(os.path.join(str(work_dir), "cores"), ignore_errors=True)
        if own:
            shutil.rmtree(work_dir, ignore_errors=True)


# ---------------------------------------------------------------------------
# capturing memory images (tests/fixtures/<name>/capture.py drive this)
# ---------------------------------------------------------------------------
def capture_images(fixture, script, toolchains, with_elf=False):
    """Run `fixture` with each toolchain, attach gdb and source `script` (a capture.py)
    with CAPTURE_OUT and CAPTURE_TRUTH_DIR set, so it writes
    tests/data/<fixture>-<toolchain>.json.gz; with_elf: also the program's ELF, DWARF
    stripped and gzipped, next to it. Exits with the reason when a capture fails."""
    import sys
    data = os.path.join(TESTS_DIR, "data")
    for tc in toolchains:
        binary = build(fixture, tc)
        out = os.path.join(data, "%s-%s.json.gz" % (fixture, tc))
        with run_fixture(binary) as fp:
            setup = "python CAPTURE_OUT=%s; CAPTURE_TRUTH_DIR=%s" % (
                json.dumps(out), json.dumps(fp.out_dir))
            r = run_gdb(binary, pid=fp.pid, timeout=600, commands=[
                ("setup", setup), ("capture", "source " + os.path.abspath(script))])
            sys.stdout.write(r.block("capture") + "\n")
            if r.error("capture") or not os.path.exists(out):
                sys.exit("capture with %s failed:\n%s\n%s" % (tc, r.stdout[-3000:], r.stderr[-3000:]))
        sizes = "image %d bytes" % os.path.getsize(out)
        if with_elf:
            with tempfile.TemporaryDirectory() as tmp:
                stripped = os.path.join(tmp, "exe")
                subprocess.run(["objcopy", "--strip-debug", binary, stripped], check=True)
                elf = out.replace(".json.gz", ".elf.gz")
                with open(stripped, "rb") as f, open(elf, "wb") as o:
                    subprocess.run(["gzip", "-9n"], stdin=f, stdout=o, check=True)
            sizes += ", elf %d bytes" % os.path.getsize(elf)
        print("%s: %s" % (tc, sizes))


# ---------------------------------------------------------------------------
# the code of another commit, run on the same target (before/after comparisons)
# ---------------------------------------------------------------------------
def commit_tree(commit):
    """COMMIT's gdb_go_ext and delve_bridge, unpacked once (`git archive`) under the cache;
    its folder (to put first on sys.path), or None when this clone does not hold it."""
    import io
    import tarfile
    sha = subprocess.run(["git", "rev-parse", "--verify", "-q", commit + "^{commit}"],
                         cwd=REPO, capture_output=True, text=True).stdout.strip()
    if not sha:
        return None
    dest = os.path.join(cache_dir(), "golden", sha)
    if not os.path.isdir(os.path.join(dest, "gdb_go_ext")):
        data = subprocess.run(["git", "archive", sha, "gdb_go_ext", "delve_bridge"],
                              cwd=REPO, capture_output=True, check=True).stdout
        tmp = dest + ".%d" % os.getpid()
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            tar.extractall(tmp)
        try:
            os.rename(tmp, dest)
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)  # another worker won
    return dest


def gdb_with_tree(target, commands, tree, prelude="", **kw):
    """target.gdb(commands) with the code of tree (commit_tree) instead of this one's:
    its package imported before `source gdb_go_ext`, whose script puts the installed copy
    first on sys.path; its submodules then come from tree's folder all the same. tree
    None: this tree's. prelude: Python run in gdb before anything of ours is imported."""
    args = ["-iex", "python " + prelude] if prelude else []
    if tree is not None:
        args += ["-iex", "python import sys; sys.path.insert(0, %r); import gdb_go_ext" % tree]
    return target.gdb(commands, extra_args=args, **kw)


_BRIDGE_SCRIPT = r"""
import json, sys
# the code on PYTHONPATH, not the working directory's (python -c puts it first) nor the
# editable install's (its finder comes before the path)
sys.path[:] = [p for p in sys.path if p not in ("", ".")]
sys.meta_path[:] = [f for f in sys.meta_path if "__editable__" not in getattr(f, "__module__", "")]
exec(sys.argv[5])
from delve_bridge import Bridge
from gdb_go_ext.errors import GoExtError
mode, a, b, views = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
if mode == "connect":
    br = Bridge.connect(a, binary=b)
else:
    br = Bridge.attach(int(a), binary=b, quiet=True) if mode == "live" else Bridge.core(a, b, quiet=True)
out = {}
with br:
    for argv in views:
        try:
            out[" ".join(argv)] = br.view(argv, color=False, width=250)
        except GoExtError as e:
            out[" ".join(argv)] = "error: %s" % e
import gdb_go_ext
out["(code)"] = gdb_go_ext.__file__   # which code ran
print(json.dumps(out))
"""


def bridge_views(target, views, path, timeout=300, prelude="", address=None):
    """{" ".join(argv): text} of each view (a list of words) run through the bridge's
    Python API (Bridge.view) with the code at path (REPO, or a commit_tree) on target's
    live process or core, in one dlv session (and "(code)": the file of the gdb_go_ext
    package that ran). prelude: Python run before our imports.
    address: of a dlv server already attached to target's process (Bridge.connect, which
    leaves it as it found it: several runs then see one stop)."""
    import sys
    env = dict(os.environ, PYTHONPATH=path, NO_COLOR="1")
    a, b = (str(target.pid), target.binary) if target.mode == "live" else (target.binary, target.core)
    mode = target.mode
    if address is not None:
        mode, a = "connect", address
    p = subprocess.run([sys.executable, "-c", _BRIDGE_SCRIPT, mode, a, b,
                        json.dumps(views), prelude],
                       capture_output=True, text=True, env=env,
                       timeout=timeout)
    if p.returncode != 0:
        raise HarnessError("the bridge failed (%s):\n%s" % (path, p.stderr[-3000:]))
    return json.loads(p.stdout)
