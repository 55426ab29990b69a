"""The bridge's smaller promises, with real dlv and real processes:
- a truncated core is one line that says what is cut (before dlv says `EOF`);
- another user's process is a permission problem, said so, with what to do;
- `continue` and `halt` in the REPL say what happened;
- the Python API exits without `Exception ignored in ... __del__`.
One toolchain: none of this depends on the Go version."""
import io
import os
import shutil
import stat
import subprocess
import sys
import tempfile

import pytest

import harness

sys.path.insert(0, harness.REPO)
from delve_bridge import Bridge  # noqa: E402
from delve_bridge import repl as replmod  # noqa: E402
from delve_bridge.dlv import DlvError  # noqa: E402

from prompt_toolkit.input import create_pipe_input  # noqa: E402
from prompt_toolkit.output import DummyOutput  # noqa: E402

TC = "go1.26.6" if "go1.26.6" in harness.matrix_names() else harness.matrix_names()[-1]


def _bridge_cli(args, **kw):
    return subprocess.run([sys.executable, "-m", "delve_bridge"] + args, cwd=harness.REPO,
                          capture_output=True, text=True, timeout=300, **kw)


@pytest.fixture(scope="module")
def core_target(tmp_path_factory):
    with harness.target_for("goroutines", TC, "core",
                            str(tmp_path_factory.mktemp("small"))) as t:
        yield t


def test_truncated_core_says_what_is_cut(core_target, tmp_path):
    t = core_target
    full = os.path.getsize(t.core)
    cut = tmp_path / "core.cut"
    keep = 4 << 20
    with open(t.core, "rb") as src, open(cut, "wb") as dst:
        dst.write(src.read(keep))
    # gcore writes the section headers last: the whole file is what the headers say
    with pytest.raises(DlvError) as e:
        Bridge.core(t.binary, str(cut), quiet=True)
    assert f"is truncated ({keep} of {full} bytes)" in str(e.value)
    p = _bridge_cli(["core", t.binary, str(cut), "goroutines"])
    assert p.returncode == 1 and p.stdout == ""
    lines = p.stderr.splitlines()
    assert len(lines) == 1 and f"({keep} of {full} bytes)" in lines[0], p.stderr
    assert "EOF" not in p.stderr


def test_python_api_exits_quietly(core_target):
    t = core_target
    code = ("import sys; from delve_bridge import Bridge\n"
            "b = Bridge.core(sys.argv[1], sys.argv[2], quiet=True)\n"
            "print(len(b.goroutines()), len(b.view(['goroutines', '--json'])))\n"
            "b.close()\n")
    p = subprocess.run([sys.executable, "-c", code, t.binary, t.core], cwd=harness.REPO,
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0 and p.stdout.split()[0] != "0", p.stderr
    assert p.stderr == "", p.stderr


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv"),
                    reason="needs root and setpriv to run a process as another user")
def test_attach_to_another_users_process_says_permission(tmp_path):
    """The target runs as nobody; the bridge runs as root without CAP_SYS_PTRACE (as in
    a container without --cap-add=SYS_PTRACE): the kernel refuses both the read of
    /proc/PID/exe and ptrace, so the bridge says that, not `pass it with --binary`."""
    binary = harness.build("goroutines", TC)
    d = tempfile.mkdtemp(prefix="gge-nobody-")
    try:
        os.chmod(d, 0o755)
        exe = os.path.join(d, "fixture")
        shutil.copy2(binary, exe)
        os.chmod(exe, 0o755)
        out = os.path.join(d, "out")
        os.mkdir(out)
        os.chmod(out, 0o777)
        proc = subprocess.Popen(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                                 exe, out], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                text=True)
        try:
            assert proc.stdout.readline().startswith("READY")
            for binary_args in ([], ["--binary", exe]):
                p = subprocess.run(["setpriv", "--bounding-set=-sys_ptrace",
                                    "--inh-caps=-sys_ptrace", sys.executable, "-m",
                                    "delve_bridge"] + binary_args + ["attach", str(proc.pid),
                                                                     "version"],
                                   cwd=harness.REPO, capture_output=True, text=True, timeout=120)
                assert p.returncode == 1, p.stderr
                assert len(p.stderr.splitlines()) == 1, p.stderr
                assert "permission denied" in p.stderr and f"/proc/{proc.pid}/exe" in p.stderr
                assert "ptrace" in p.stderr and "CAP_SYS_PTRACE" in p.stderr
                assert "belongs to nobody" in p.stderr and "--binary" not in p.stderr
            assert proc.poll() is None
        finally:
            proc.kill()
            proc.wait()
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_repl_continue_and_halt_say_what_happened(tmp_path):
    binary = harness.build("goroutines", TC)
    with harness.run_fixture(binary, out_dir=str(tmp_path)) as fp:
        with Bridge.attach(fp.pid, binary=binary, quiet=True) as b:
            out, err = io.StringIO(), io.StringIO()
            with create_pipe_input() as inp:
                inp.send_text("halt\rcontinue\rcontinue\rhalt\rversion\rcontinue\rquit\r")
                replmod.Repl(b, out=out, err=err, input=inp, output=DummyOutput(),
                             history=str(tmp_path / "h"), color=False).run()
            lines = out.getvalue().splitlines()[2:]          # after the banner
            assert err.getvalue() == ""
            tasks = set(os.listdir(f"/proc/{fp.pid}/task"))
            assert lines[0].startswith("already stopped at ")   # attach stops it
            assert lines[1].startswith("running") and lines[2] == "already running"
            assert lines[3].startswith("stopped at ")
            thread = lines[3].rsplit("(thread ", 1)[1].split(")")[0].split(",")[0]
            assert thread in tasks, (lines[3], tasks)
            assert any(l.startswith("Go version") for l in lines[4:])
            assert lines[-1].startswith("running")
        assert fp.proc.poll() is None
