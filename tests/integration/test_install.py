"""install.sh installs a copy: after installing from a clone, the clone can be deleted and
`source gdb_go_ext` + `go version` in real gdb, and the delve-bridge launcher, still work.
A broken install says so in one line, from `source` and from `go` (not gdb's
goto-bookmark). --uninstall removes the REPL history too.

Everything happens under a temporary HOME, GDB_GO_EXT_HOME and GDB_GO_EXT_BIN. The venv
is seeded with a copy of the running one (install.sh keeps a venv made by gdb's Python),
so the test costs a wheel build and three pip runs, not a fresh download of numpy."""
import os
import shutil
import subprocess
import sys

import harness

TC = "go1.26.6" if "go1.26.6" in harness.matrix_names() else harness.matrix_names()[-1]


def _env(tmp_path, **kw):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("XDG_", "GDB_GO_EXT"))}
    env.update(HOME=str(tmp_path / "home"), GDB_GO_EXT_HOME=str(tmp_path / "gge"),
               GDB_GO_EXT_BIN=str(tmp_path / "bin"), GDB_GO_EXT_CACHE=harness.cache_dir(),
               PIP_CACHE_DIR=os.path.join(os.path.expanduser("~"), ".cache", "pip"),
               PIP_DISABLE_PIP_VERSION_CHECK="1", NO_COLOR="1")
    env.update(kw)
    return env


def _gdb(tmp_path, binary, env):
    return subprocess.run(
        ["gdb", "-nx", "-batch", "-ex", f"directory {tmp_path / 'gge' / 'gdb'}",
         "-ex", "source gdb_go_ext", "-ex", "go version", binary],
        capture_output=True, text=True, env=env, timeout=120, stdin=subprocess.DEVNULL)


def test_installed_copy_outlives_the_clone(tmp_path):
    binary = harness.build("version", TC)
    clone = tmp_path / "clone"
    clone.mkdir()
    for name in ("install.sh", "pyproject.toml", "README.md", "gdb_go_ext", "delve_bridge",
                 "gdb_go"):
        src = os.path.join(harness.REPO, name)
        (shutil.copytree(src, clone / name, ignore=shutil.ignore_patterns("__pycache__"))
         if os.path.isdir(src) else shutil.copy2(src, clone / name))
    (tmp_path / "home").mkdir()
    (tmp_path / "gge").mkdir()
    # the venv of this test run (made by gdb's Python): install.sh keeps it. Hard links
    # where they can be: pip and Python replace a file (unlink, rename), never write
    # into one, so the running venv is not touched.
    venv = str(tmp_path / "gge" / "venv")
    if subprocess.run(["cp", "-al", sys.prefix, venv], capture_output=True).returncode:
        shutil.rmtree(venv, ignore_errors=True)
        subprocess.run(["cp", "-a", sys.prefix, venv], check=True)
    env = _env(tmp_path)
    venv_py = str(tmp_path / "gge" / "venv" / "bin" / "python")
    if subprocess.run([venv_py, "-c", "import setuptools, wheel"]).returncode == 0:
        env["PIP_NO_INDEX"] = "1"   # all there: no index queries (the wheel builds offline)
    p = subprocess.run(["bash", str(clone / "install.sh")], env=env, capture_output=True,
                       text=True, timeout=600, stdin=subprocess.DEVNULL)
    assert p.returncode == 0, p.stderr[-3000:]
    assert "installed (venv)" in p.stderr and "editable" not in p.stderr
    assert not (clone / "build").exists()          # nothing built inside the clone
    shutil.rmtree(clone)

    r = _gdb(tmp_path, binary, env)
    assert "No module named" not in r.stdout + r.stderr, r.stdout + r.stderr
    assert "gdb_go_ext 0.1.0 loaded" in r.stdout
    assert "Go version" in r.stdout and "go1." in r.stdout, r.stdout + r.stderr
    b = subprocess.run([str(tmp_path / "bin" / "delve-bridge"), "--help"], env=env,
                       capture_output=True, text=True, timeout=60)
    assert b.returncode == 0 and "usage: delve-bridge" in b.stdout, b.stderr

    # a broken install: one line from `source`, the same line from `go`
    subprocess.run([venv_py, "-m", "pip", "uninstall", "-q", "-y", "gdb_go_ext"], env=env,
                   check=True, capture_output=True)
    r = _gdb(tmp_path, binary, env)
    msg = [l for l in r.stdout.splitlines() if l.startswith("gdb_go_ext: cannot load")]
    assert len(msg) == 1 and "No module named 'gdb_go_ext'" in msg[0], r.stdout + r.stderr
    assert "install.sh" in msg[0]
    assert "Traceback" not in r.stdout + r.stderr
    assert msg[0] in r.stderr and "goto-bookmark" not in r.stderr, r.stderr

    # --uninstall (from the repository's install.sh: the clone is gone) takes the REPL
    # history along; a throwaway cache, since it removes that too
    hist = tmp_path / "home" / ".local" / "state" / "gdb_go_ext" / "bridge_history"
    hist.parent.mkdir(parents=True)
    hist.write_text("\n+goroutines\n")
    env = _env(tmp_path, GDB_GO_EXT_CACHE=str(tmp_path / "cache"))
    p = subprocess.run(["bash", os.path.join(harness.REPO, "install.sh"), "--uninstall"],
                       env=env, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert not hist.parent.exists() and not (tmp_path / "gge").exists()
    assert not os.path.lexists(tmp_path / "bin" / "delve-bridge")
