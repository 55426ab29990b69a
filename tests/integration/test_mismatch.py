"""Inputs that do not match, as users meet them, through every door (gdb, delve-bridge's
`dlv core`, gdb-go), in the C locale: a core read with a binary rebuilt from changed
source, or with a build of the same source linked with -ldflags='-s -w'; a stripped
production binary (`strip` of a build) and its unstripped twin, the build it was
stripped from (accepted, and must give the real answer); a core without its
executable; a PIE; a binary named longer than the 15 bytes the core's psinfo keeps
(`order-service-api-server`); a live process given another build; and a user who is
not root. GGE_MISMATCH_ALL=1 runs them on every toolchain of the matrix.

Each refusal is exactly one line, no traceback, and gdb answers the next command. The
truth for an accepted input is the runtime's own crash dump of the same instant
(GOTRACEBACK=crash, then the kernel's core): the same goroutine ids.
"""
import json
import os
import pwd
import re
import shutil
import subprocess
import sys
import tempfile

import pytest

import harness
import runtime_dump

TOOLCHAINS = ("go1.19", "go1.22.10", "go1.26.6")
NAME = "order-service-api-server"        # 24 bytes: the core's psinfo keeps 15
C_LOCALE = dict(os.environ, LANG="C", LC_ALL="C", NO_COLOR="1")
C_LOCALE.pop("LANGUAGE", None)
ANOTHER = "a core of another build"
STRIPPED = "has no DWARF debug info (stripped"

_inputs = {}   # toolchain -> Inputs, built once per module


def _only(toolchain):
    if toolchain not in TOOLCHAINS and not os.environ.get("GGE_MISMATCH_ALL"):
        pytest.skip(f"mismatched inputs run on {', '.join(TOOLCHAINS)} (suite time)")
    if not shutil.which("strip"):
        pytest.skip("no strip (binutils)")
    problem = harness.core_pattern_problem()
    if problem:
        pytest.skip(problem)


class Inputs:
    """The fixture built four ways (dev: as users ship it; sw: -ldflags='-s -w'; pie;
    rebuilt: from changed source) plus prod, a `strip`ped copy of dev, each as
    ./<kind>/order-service-api-server, and the kernel's cores of dev, prod and pie with
    the runtime's dump of the same instant."""

    def __init__(self, toolchain, root):
        self.root = root
        src = os.path.join(harness.FIXTURES_DIR, "mismatch")
        changed = os.path.join(root, "changed-src")
        shutil.copytree(src, changed)
        path = os.path.join(changed, "main.go")
        with open(path) as f:
            text = f.read()
        assert "const workers = 7\n" in text
        with open(path, "w") as f:
            f.write(text.replace("const workers = 7\n", "const workers = 9\n"))
        self.bin = {}
        for kind, where, flags in (("dev", src, []), ("sw", src, ["-ldflags=-s -w"]),
                                   ("pie", src, ["-buildmode=pie"]), ("rebuilt", changed, [])):
            out = os.path.join(root, kind, NAME)
            p = subprocess.run([harness.toolchain(toolchain)["go"], "build", *flags, "-o", out, "."],
                               cwd=where, env=harness.go_env(toolchain), capture_output=True,
                               text=True, timeout=600)
            assert p.returncode == 0, p.stderr
            self.bin[kind] = out
        prod = os.path.join(root, "prod", NAME)
        os.makedirs(os.path.dirname(prod))
        shutil.copy2(self.bin["dev"], prod)
        subprocess.run(["strip", prod], check=True)
        self.bin["prod"] = prod
        self.core, self.dump = {}, {}
        for kind in ("dev", "prod", "pie"):
            text, core, _ = harness.crash_dump(self.bin[kind], os.path.join(root, "crash-" + kind),
                                               args=("crash",))
            self.core[kind], self.dump[kind] = core, runtime_dump.parse(text)


@pytest.fixture(scope="module", autouse=True)
def _cleanup():
    yield
    for inp in _inputs.values():
        shutil.rmtree(inp.root, ignore_errors=True)
    _inputs.clear()


def inputs(toolchain):
    if toolchain not in _inputs:
        root = tempfile.mkdtemp(prefix="gge-mismatch-")
        os.chmod(root, 0o755)   # (the non-root test reads it)
        _inputs[toolchain] = Inputs(toolchain, root)
    return _inputs[toolchain]


def _one_line(text, phrase):
    assert "Traceback" not in text, text
    lines = [ln for ln in text.splitlines() if phrase in ln]
    assert len(lines) == 1, (phrase, text)
    return lines[0]


def _gdb(binary, core, commands, **kw):
    return harness.run_gdb(binary, core=core, env=C_LOCALE, commands=commands, **kw)


def _refused(r, name, phrase):
    """The view said one line with phrase, printed nothing else, and gdb went on."""
    assert r.block(name).strip() == "", r.block(name)
    err = r.error(name)
    assert err and phrase in err and "\n" not in err, (err, r.stdout[-3000:], r.stderr[-3000:])
    assert "Traceback" not in r.stdout + r.stderr, r.stderr[-3000:]
    assert r.block("alive").strip() == "alive", r.stdout[-2000:]
    return err


def _ids(doc):
    return {g["id"] for g in doc["goroutines"]}


def test_gdb(toolchain):
    _only(toolchain)
    inp = inputs(toolchain)
    alive = ("alive", "echo alive\\n")
    # the very build, named longer than psinfo keeps: the real answer
    r = _gdb(inp.bin["dev"], inp.core["dev"], [("g", "go goroutines --json -t 1")])
    assert r.error("g") is None, r.stderr[-3000:]
    assert _ids(json.loads(r.block("g"))) == set(inp.dump["dev"])
    # rebuilt from changed source: one line, for every view, gdb usable after
    r = _gdb(inp.bin["rebuilt"], inp.core["dev"],
             [("g", "go goroutines"), ("m", "go map orders"), ("gc", "go gc"), alive])
    for view in ("g", "m", "gc"):
        err = _refused(r, view, ANOTHER)
        assert inp.bin["dev"] in err and inp.bin["rebuilt"] in err, err
        assert "-s -w" not in err, err
    # the same source linked with -s -w: another build, named as such
    err = _refused(_gdb(inp.bin["sw"], inp.core["dev"], [("g", "go goroutines"), alive]),
                   "g", ANOTHER)
    assert "-s -w" in err, err
    # the stripped production binary: say so, and what to load
    err = _refused(_gdb(inp.bin["prod"], inp.core["prod"], [("g", "go goroutines"), alive]),
                   "g", STRIPPED)
    assert "the build it was stripped from" in err and "file PATH" in err, err
    # its unstripped twin: accepted, the real answer
    r = _gdb(inp.bin["dev"], inp.core["prod"], [("g", "go goroutines --json -t 1"), alive])
    assert r.error("g") is None, r.stderr[-3000:]
    assert _ids(json.loads(r.block("g"))) == set(inp.dump["prod"])
    # the core alone: the executable it records, and `file PATH` then works
    r = _gdb(None, inp.core["dev"], [("g", "go goroutines"), alive,
                                      ("file", "file " + inp.bin["dev"]),
                                      ("g2", "go goroutines --json -t 1")])
    err = _refused(r, "g", "no executable is loaded")
    assert f"file {inp.bin['dev']}" in err, err
    assert r.error("g2") is None, r.stderr[-3000:]
    assert _ids(json.loads(r.block("g2"))) == set(inp.dump["dev"])
    # a PIE: its own core read, an ordinary build's core refused
    r = _gdb(inp.bin["pie"], inp.core["pie"], [("g", "go goroutines --json -t 1")])
    assert r.error("g") is None, r.stderr[-3000:]
    assert _ids(json.loads(r.block("g"))) == set(inp.dump["pie"])
    _refused(_gdb(inp.bin["pie"], inp.core["dev"], [("g", "go goroutines"), alive]), "g", ANOTHER)
    # a live process given another build: the same line, and it runs on after
    with harness.run_fixture(inp.bin["dev"]) as fp:
        r = harness.run_gdb(inp.bin["rebuilt"], pid=fp.pid, env=C_LOCALE,
                            commands=[("i", "info inferiors"), ("g", "go goroutines"), alive])
        if "Build ID mismatch" in r.stderr:
            # gdb saw it (a GNU build-id, go1.26+): it loaded the process's own file
            assert inp.bin["dev"] in r.block("i") and r.error("g") is None, r.stderr
        else:
            _refused(r, "g", "a process of another build")
        assert fp.proc.poll() is None


def _bridge(*args):
    return subprocess.run([sys.executable, "-m", "delve_bridge", *args], capture_output=True,
                          text=True, timeout=180, cwd=harness.REPO, env=C_LOCALE)


def test_bridge(toolchain):
    _only(toolchain)
    inp = inputs(toolchain)
    for binary, core, phrase in ((inp.bin["rebuilt"], inp.core["dev"], ANOTHER),
                                 (inp.bin["sw"], inp.core["dev"], ANOTHER),
                                 (inp.bin["pie"], inp.core["dev"], ANOTHER),
                                 (inp.bin["prod"], inp.core["prod"], STRIPPED)):
        p = _bridge("core", binary, core, "goroutines")
        assert p.returncode == 1 and p.stdout == "", (p.stdout, p.stderr)
        assert p.stderr.count("\n") == 1, p.stderr
        _one_line(p.stderr, phrase)
    with harness.run_fixture(inp.bin["dev"]) as fp:
        p = _bridge("--binary", inp.bin["rebuilt"], "attach", str(fp.pid), "goroutines")
        assert p.returncode == 1 and p.stderr.count("\n") == 1, (p.stdout, p.stderr)
        _one_line(p.stderr, "a process of another build")
        assert fp.proc.poll() is None
    p = _bridge("core", inp.bin["dev"], inp.core["prod"], "goroutines", "--json", "-t", "1")
    assert p.returncode == 0, p.stderr
    assert _ids(json.loads(p.stdout)) == set(inp.dump["prod"])


def _gdbgo_launcher():
    """The gdb-go that ./install.sh put on PATH (or in the venv)."""
    if os.environ.get("GDB_GO_EXT_BIN"):
        return os.path.join(os.environ["GDB_GO_EXT_BIN"], "gdb-go")
    return shutil.which("gdb-go") or os.path.join(harness.home_dir(), "venv", "bin", "gdb-go")


def _gdbgo(*args, user=None, install=None):
    """gdb-go ARGS; as another user, from `install` (a copy of the venv that user can read:
    _readable_install), since the real one may sit in root's private home."""
    if user:
        argv = ["runuser", "-u", user, "--",
                os.path.join(install, "venv", "bin", "python"), "-m", "gdb_go", *args]
    else:
        argv = [_gdbgo_launcher(), *args]
    env = dict(C_LOCALE, GDB_GO_EXT_HOME=install) if user else C_LOCALE
    return subprocess.run(argv, capture_output=True, text=True, timeout=300, env=env,
                          cwd=harness.REPO)


def _row(stdout, core):
    """The summary's line of core (named as it was given)."""
    return next(ln for ln in stdout.splitlines() if ln.startswith(core + " "))


def test_gdbgo(toolchain, tmp_path):
    _only(toolchain)
    inp = inputs(toolchain)
    out = tmp_path / "out"
    core = inp.core["dev"]
    written = out / (os.path.basename(core) + ".goroutines.json")
    # the long name is no reason to refuse: the real answer
    p = _gdbgo("dump", inp.bin["dev"], core, "--format", "json", "-o", str(out))
    assert p.returncode == 0, (p.stdout, p.stderr)
    good = written.read_text()
    assert _ids(json.loads(good)) == set(inp.dump["dev"])
    # rebuilt: one line on its row, and the earlier good file is left as it was
    p = _gdbgo("dump", inp.bin["rebuilt"], core, "--format", "json", "-o", str(out))
    assert p.returncode == 1, (p.stdout, p.stderr)
    assert " error " in _one_line(p.stdout, ANOTHER)
    assert written.read_text() == good
    assert sorted(os.listdir(out)) == [written.name]   # no partial file left behind
    # stripped, then its twin
    p = _gdbgo("dump", inp.bin["prod"], inp.core["prod"], "-o", str(tmp_path / "prod"))
    assert p.returncode == 1 and " error " in _one_line(p.stdout, STRIPPED), p.stdout
    p = _gdbgo("dump", inp.bin["dev"], inp.core["prod"], "--format", "stacks",
               "-o", str(tmp_path / "twin"))
    assert p.returncode == 0, (p.stdout, p.stderr)
    assert _row(p.stdout, inp.core["prod"]).split()[2] == str(len(inp.dump["prod"])), p.stdout
    # diff with a core of another build as OLDCORE: one line, and -o FILE left as it was
    keep = tmp_path / "d.txt"
    keep.write_text("earlier\n")
    p = _gdbgo("diff", inp.bin["rebuilt"], core, core, "-o", str(keep))
    assert p.returncode == 1 and p.stderr.count("\n") == 1, p.stderr
    _one_line(p.stderr, ANOTHER)
    assert keep.read_text() == "earlier\n"


def test_not_root(tmp_path):
    """As nobody: a core it can read gives the same lines, and attaching to root's
    process is a permission line, not a decoding error."""
    toolchain = TOOLCHAINS[-1]
    _only(toolchain)
    if os.geteuid() != 0 or not shutil.which("runuser"):
        pytest.skip("needs root to run as nobody")
    try:
        pwd.getpwnam("nobody")
    except KeyError:
        pytest.skip("no user nobody")
    inp = inputs(toolchain)
    os.chmod(inp.core["dev"], 0o644)
    os.chmod(inp.core["prod"], 0o644)
    os.chmod(os.path.dirname(inp.core["dev"]), 0o755)
    os.chmod(os.path.dirname(inp.core["prod"]), 0o755)
    out = tempfile.mkdtemp(prefix="gge-nobody-")
    os.chmod(out, 0o777)
    install = _readable_install(tmp_path)
    try:
        p = _gdbgo("dump", inp.bin["rebuilt"], inp.core["dev"], "-o", out, user="nobody",
                   install=install)
        assert p.returncode == 1, (p.stdout, p.stderr)
        assert " error " in _one_line(p.stdout, ANOTHER), (p.stdout, p.stderr)
        p = _gdbgo("dump", inp.bin["dev"], inp.core["prod"], "--format", "stacks", "-o", out,
                   user="nobody", install=install)
        assert p.returncode == 0, (p.stdout, p.stderr)
        assert _row(p.stdout, inp.core["prod"]).split()[2] == str(len(inp.dump["prod"]))
        binary = harness.build("version", toolchain)
        with harness.run_fixture(binary, out_dir=str(tmp_path)) as fp:
            r = _as_nobody_gdb(binary, fp.pid, install)
        assert "Traceback" not in r.stdout + r.stderr, r.stderr
        assert re.search(r"not permitted|permission", r.stderr + r.stdout, re.I), r.stderr
        err = r.error("g")
        assert err and "\n" not in err, (err, r.stdout, r.stderr)
        assert r.block("alive").strip() == "alive"
    finally:
        shutil.rmtree(out, ignore_errors=True)
        shutil.rmtree(install, ignore_errors=True)


def _readable_install(tmp_path):
    """A copy of this run's install (the venv, hard-linked where it can be, and a gdb
    script naming the copy) in a folder every user can read, as a shared install would be:
    the real one may sit in root's private home (CI's does)."""
    top = tempfile.mkdtemp(prefix="gge-shared-")
    os.chmod(top, 0o755)
    venv = os.path.join(top, "venv")
    real = os.path.join(harness.home_dir(), "venv")
    if subprocess.run(["cp", "-al", real, venv], capture_output=True).returncode:
        shutil.rmtree(venv, ignore_errors=True)
        subprocess.run(["cp", "-a", real, venv], check=True)
    subprocess.run(["chmod", "-R", "a+rX", venv], check=True)
    os.mkdir(os.path.join(top, "gdb"))
    with open(os.path.join(harness.gdb_script_dir(), "gdb_go_ext")) as f:
        script = f.read().replace(real, venv)
    with open(os.path.join(top, "gdb", "gdb_go_ext"), "w") as f:
        f.write(script)
    os.chmod(os.path.join(top, "gdb", "gdb_go_ext"), 0o644)
    return top


def _as_nobody_gdb(binary, pid, install):
    argv = ["runuser", "-u", "nobody", "--", "gdb", "-nx", "-batch",
            "-ex", "directory " + os.path.join(install, "gdb"), "-ex", "source gdb_go_ext",
            "-ex", harness._RUNNER,
            "-ex", "python _gge_run('g', 'go goroutines')",
            "-ex", "python _gge_run('alive', 'echo alive\\\\n')", "-p", str(pid), binary]
    p = subprocess.run(argv, capture_output=True, text=True, timeout=120, env=C_LOCALE,
                       stdin=subprocess.DEVNULL, errors="replace")
    return harness.GdbResult(argv, p.stdout, p.stderr, p.returncode)
