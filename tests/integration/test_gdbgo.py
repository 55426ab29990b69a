"""`gdb-go dump`: the installed launcher (and `python -m gdb_go`) over several cores with
-j 2. Each file it writes must equal what gdb's own view gives on that core alone (the
views' truth against the runtime is tested elsewhere, on the whole matrix); the summary
names every core; a truncated copy of a core and a core of another binary are reported
on their own lines while the others are written, and the exit status says so.
`gdb-go diff` across two cores of the leakdiff fixture must say what it leaked.

This front door is a process pool around the views, so two toolchains (the oldest and a
recent one) are enough."""
import contextlib
import json
import os
import shutil
import subprocess
import sys

import pytest

import harness

TOOLCHAINS = ("go1.19", "go1.26.6")


def _launcher():
    """The gdb-go that ./install.sh put on PATH (or in the venv)."""
    path = shutil.which("gdb-go") or os.path.join(harness.home_dir(), "venv", "bin", "gdb-go")
    if not os.access(path, os.X_OK):
        pytest.fail("gdb-go is not installed (run ./install.sh)")
    return [path]


def _module():
    py = os.path.join(harness.home_dir(), "venv", "bin", "python")
    return [py if os.access(py, os.X_OK) else sys.executable, "-m", "gdb_go"]


def _run(cmd, cwd):
    env = dict(os.environ, GDB_GO_EXT_HOME=harness.home_dir(), PYTHONPATH=harness.REPO)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=cwd, env=env,
                          stdin=subprocess.DEVNULL)


def _summary(stdout):
    """core -> its summary line."""
    return {ln.split()[0]: ln for ln in stdout.splitlines()[1:-1] if ln.strip()}


@contextlib.contextmanager
def _cores(tc, tmp_path):
    with contextlib.ExitStack() as stack:
        a = stack.enter_context(harness.target_for("goroutines", tc, "core", str(tmp_path / "a")))
        b = stack.enter_context(harness.target_for("goroutines", tc, "core", str(tmp_path / "b")))
        other = stack.enter_context(harness.target_for("version", tc, "core",
                                                       str(tmp_path / "other")))
        trunc = str(tmp_path / "a" / "cores" / "truncated.core")
        with open(a.core, "rb") as src, open(trunc, "wb") as dst:
            dst.write(src.read(os.path.getsize(a.core) // 2))
        yield a.binary, a.core, b.core, other.core, trunc


@pytest.mark.parametrize("tc", TOOLCHAINS)
def test_dump_many_cores(tc, tmp_path):
    with _cores(tc, tmp_path) as (binary, a, b, other, trunc):
        truth = {}
        for core in (a, b):
            r = harness.run_gdb(binary, core=core, commands=[
                ("dump", "go dump"), ("json", "go goroutines --json -t 64"),
                ("stacks", "go stacks --json")])
            for k in ("dump", "json", "stacks"):
                assert r.error(k) is None, (k, r.error(k), r.stderr[-2000:])
            truth[core] = (r.block("dump"), json.loads(r.block("json")),
                           json.loads(r.block("stacks")))

        # text, the launcher on PATH, the good cores among two bad ones
        out = tmp_path / "text"
        p = _run(_launcher() + ["dump", binary, a, trunc, b, other, "-j", "2", "-o", str(out)],
                 str(tmp_path))
        assert p.returncode == 1, (p.stdout, p.stderr)
        assert "Traceback" not in p.stderr + p.stdout
        rows = _summary(p.stdout)
        assert set(rows) == {a, b, trunc, other}, p.stdout
        for core in (a, b):
            assert " ok " in rows[core], rows[core]
            # core, status, goroutines (the stacks view's total), then the top buckets
            assert rows[core].split()[2] == str(truth[core][2]["total"]), rows[core]
            top = max(truth[core][2]["buckets"], key=lambda x: x["count"])
            assert rows[core].split()[3] == "%d×" % top["count"], rows[core]
            name = os.path.basename(core) + ".dump.txt"
            with open(out / name) as f:
                assert f.read().rstrip("\n") == truth[core][0].rstrip("\n"), name
            assert name in rows[core]
        assert " error " in rows[trunc] and "truncated" in rows[trunc], rows[trunc]
        assert " error " in rows[other] and "another build" in rows[other], rows[other]
        assert sorted(os.listdir(out)) == sorted(os.path.basename(c) + ".dump.txt" for c in (a, b))
        assert p.stdout.splitlines()[-1] == "2 of 4 cores written, 2 failed"

        # json, python -m, every core good
        out = tmp_path / "json"
        p = _run(_module() + ["dump", binary, a, b, "--format", "json", "-j", "2", "-o", str(out)],
                 str(tmp_path))
        assert p.returncode == 0, (p.stdout, p.stderr)
        assert set(_summary(p.stdout)) == {a, b}
        for core in (a, b):
            with open(out / (os.path.basename(core) + ".goroutines.json")) as f:
                assert json.load(f) == truth[core][1]

        # pprof and stacks write their files too
        for fmt, suffix in (("pprof", ".pb.gz"), ("stacks", ".stacks.json")):
            out = tmp_path / fmt
            p = _run(_launcher() + ["dump", binary, a, "-f", fmt, "-o", str(out)], str(tmp_path))
            assert p.returncode == 0, (p.stdout, p.stderr)
            assert os.path.getsize(out / (os.path.basename(a) + suffix)) > 0
            if fmt == "stacks":
                with open(out / (os.path.basename(a) + suffix)) as f:
                    assert json.load(f) == truth[a][2]


def test_bad_command_lines(tmp_path):
    for args, words in ((["dump"], "required"), (["dump", "/nonexistent", "core"], "no such file"),
                        (["dump", sys.executable, "core", "-j", "0"], "-j"),
                        (["dump", sys.executable, "core", "--format", "xml"], "invalid choice")):
        p = _run(_launcher() + args, str(tmp_path))
        assert p.returncode in (1, 2), (args, p.returncode)
        lines = p.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("gdb-go: ") and words in lines[0], (args, p.stderr)
        assert p.stdout == ""


@pytest.mark.parametrize("tc", TOOLCHAINS)
def test_diff_two_cores(tc, tmp_path):
    """gdb-go diff across two gcores of the leakdiff fixture (a step apart) says exactly
    what the fixture recorded it leaked (check_diff of test_diff_xref.py), as JSON and
    text; a core of another binary as OLDCORE is one line, status 1."""
    import signal
    from test_diff_xref import _wait_for, check_diff
    binary = harness.build("leakdiff", tc)
    out = tmp_path / "out"
    out.mkdir()
    try:
        with harness.run_fixture(binary, args=("diff",), out_dir=str(out)) as fp:
            truth = fp.truth("diff")
            core1 = harness.make_core(fp.pid, str(tmp_path / "cores1"))
            os.kill(fp.pid, signal.SIGUSR1)
            _wait_for(fp, "READY2")
            core2 = harness.make_core(fp.pid, str(tmp_path / "cores2"))
        p = _run(_launcher() + ["diff", binary, core1, core2, "--json"], str(tmp_path))
        assert p.returncode == 0, (p.stdout, p.stderr)
        doc = json.loads(p.stdout)
        check_diff(doc, truth)
        assert doc["old"]["path"] == core1
        p = _run(_module() + ["diff", binary, core1, core2, "-o", str(tmp_path / "d.txt")],
                 str(tmp_path))
        assert p.returncode == 0 and p.stdout == "", (p.stdout, p.stderr)
        text = (tmp_path / "d.txt").read_text()
        t = doc["total"]
        for line in ("new: 2 goroutines", "grown: 7 -> 11 (+4)", "shrunk: 5 -> 2 (-3)",
                     "vanished: 3 goroutines",
                     "total: %d -> %d goroutines" % (t["before"], t["after"])):
            assert line in text, (line, text)
        with harness.target_for("version", tc, "core", str(tmp_path / "other")) as other:
            p = _run(_launcher() + ["diff", binary, other.core, core2], str(tmp_path))
        assert p.returncode == 1 and p.stdout == "", (p.stdout, p.stderr)
        assert p.stderr.count("\n") == 1 and "another build" in p.stderr, p.stderr
    finally:
        shutil.rmtree(str(tmp_path / "cores1"), ignore_errors=True)
        shutil.rmtree(str(tmp_path / "cores2"), ignore_errors=True)
