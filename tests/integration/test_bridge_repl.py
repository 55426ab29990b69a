"""The delve-bridge REPL against real dlv: views through prompt_toolkit's pipe input print
what the non-interactive views print, a bad line gives one sentence and the prompt comes back,
Ctrl-C clears the line, Ctrl-D and quit leave; completion of commands, flags, goroutine ids
and package-level variables; history in $XDG_STATE_HOME; and under a pty, `delve-bridge
attach PID` then `quit` leaves the target untraced and running with no dlv behind."""
import io
import os
import subprocess
import sys

import pytest

import harness
from pty_session import PtySession
from test_bridge import _dlv_processes, _tracer

sys.path.insert(0, harness.REPO)
from delve_bridge import Bridge  # noqa: E402
from delve_bridge import repl as replmod  # noqa: E402

from prompt_toolkit.completion import CompleteEvent  # noqa: E402
from prompt_toolkit.document import Document  # noqa: E402
from prompt_toolkit.input import create_pipe_input  # noqa: E402
from prompt_toolkit.output import DummyOutput  # noqa: E402

# two ends of the matrix are enough here (test_bridge.py covers the views on all of it)
TOOLCHAINS = [t for t in ("go1.19", "go1.26.6") if t in harness.matrix_names()]


def _complete(completer, text):
    return [c.text for c in completer.get_completions(Document(text, len(text)), CompleteEvent())]


class _FakeBridge:
    """Just enough of a Bridge for the completer."""
    exited = False
    _running_id = None

    def __init__(self):
        self.walks = 0

    def goroutines(self):
        from types import SimpleNamespace as G
        self.walks += 1
        self.last_goroutines = [G(id=17, status="waiting", wait_reason="chan receive"),
                                G(id=1, status="running", wait_reason="")]
        return self.last_goroutines

    def package_variables(self, pkg):
        return {"main": ["main.mLarge", "main.mSmall", "main.pt0"],
                "net/http": ["net/http.DefaultClient"]}.get(pkg, [])


def test_completer_offline():
    """Commands, flags (from the argparse specs), fixed flag values, ids, variables."""
    b = _FakeBridge()
    c = replmod.BridgeCompleter(b)
    assert _complete(c, "gor") == ["goroutines", "goroutine"]
    assert _complete(c, "q") == ["quit"]
    assert "--limit" in _complete(c, "goroutines --l") and "--json" in _complete(c, "goroutines -")
    assert _complete(c, "stacks --m") == ["--min"]
    assert _complete(c, "goroutines --j") == ["--json"]             # with its dashes
    assert set(_complete(c, "map main.mSmall --")) == {"--layout", "--key", "--limit", "--frame",
                                                       "--goroutine", "--json", "--help"}
    assert _complete(c, "goroutines -with u") == ["userloc"]
    assert _complete(c, "goroutines -with userloc ") == []          # SUBSTR: free text
    assert "status" in _complete(c, "goroutines -group ")
    assert _complete(c, "goroutines --limit ") == []                # a number
    assert _complete(c, "goroutine ") == ["1", "17"] and b.walks == 1
    assert _complete(c, "goroutine 1") == ["1", "17"] and b.walks == 1  # the walk is reused
    assert _complete(c, "goroutine 17 ") == ["bt"]
    assert _complete(c, "map main.mS") == ["main.mSmall"]
    assert _complete(c, "map ") == ["main.mLarge", "main.mSmall", "main.pt0"]
    assert _complete(c, "map net/http.Def") == ["net/http.DefaultClient"]
    assert _complete(c, "help st") == ["stacks"]
    assert _complete(c, "frobnicate ") == []
    b._running_id = 5                      # a running target is not halted for a Tab
    b.last_goroutines = None
    got = _complete(replmod.BridgeCompleter(b), "goroutine ")
    assert not [x for x in got if x.isdigit()] and b.walks == 1


def _run(b, text, tmp_path, name="h"):
    out, err = io.StringIO(), io.StringIO()
    hist = str(tmp_path / "state" / name)
    with create_pipe_input() as inp:
        inp.send_text(text)
        replmod.Repl(b, out=out, err=err, input=inp, output=DummyOutput(), history=hist,
                     color=False).run()
    return out.getvalue(), err.getvalue(), hist


@pytest.mark.parametrize("tc", TOOLCHAINS)
def test_repl_session(tc, tmp_path):
    binary = harness.build("maps", tc)
    with harness.run_fixture(binary, out_dir=str(tmp_path)) as fp:
        with Bridge.attach(fp.pid, binary=binary, quiet=True) as b:
            lines = ["version", "goroutines --limit 3", "stacks --min 2",
                     "frobnicate the thing", "goroutines --bogus", "map 'main.mSmall",
                     "map main.mSmall"]
            # "half a line" then Ctrl-C: the line is cleared, the prompt stays
            text = "".join(l + "\r" for l in lines[:3]) + "half a line\x03" + \
                "".join(l + "\r" for l in lines[3:]) + "quit\r" + "version\r"
            out, err, hist = _run(b, text, tmp_path)
            banner, rest = out.split("\n", 2)[:2], out.split("\n", 2)[2]
            assert f"attach process {fp.pid}" in banner[0]
            want = "".join(b.view(l.split(), color=False, width=250)
                           for l in ("version", "goroutines --limit 3", "stacks --min 2",
                                     "map main.mSmall"))
            assert rest == want                       # and `version` after quit never ran
            assert "goroutines:" in rest and "buckets of" in rest and '"a"' in rest
            errs = err.splitlines()
            assert len(errs) == 3, err
            assert errs[0].startswith("error: unknown command 'frobnicate'")
            assert errs[1].startswith("error: unrecognized arguments: --bogus; usage: goroutines")
            assert errs[2].startswith("error: cannot split the line")
            with open(hist) as f:
                h = f.read()
            assert all(f"\n+{l}\n" in h for l in lines) and "+quit" in h
            assert "half a line" not in h

            # completion on the real process: commands, a known id from the last walk, variables
            c = replmod.BridgeCompleter(b)
            assert "goroutines" in _complete(c, "gor")
            assert "1" in _complete(c, "goroutine ")  # main
            ids = {str(g.id) for g in b.last_goroutines}
            assert set(_complete(c, "goroutine ")) == ids
            assert "main.mSmall" in _complete(c, "map main.mS")
            assert "main.mStructKey" in _complete(c, "map main.mStr")

            # help, `help VIEW`, a view's -h, then Ctrl-D leaves
            out, err, _ = _run(b, "help\rhelp map\rstacks -h\r\x04", tmp_path)
            assert "usage: map" in out and "--similar" in out and "quit" in out
            assert err == ""
            dlv_pid = b.dlv.proc.pid
        assert b.dlv.proc.poll() is not None
        assert not any(l.split()[0] == str(dlv_pid) for l in _dlv_processes())
        assert fp.proc.poll() is None and _tracer(fp.pid) == 0


PROMPT = r"\(delve-bridge\) "


def test_repl_under_a_terminal_quit_tears_down(tmp_path):
    """`delve-bridge attach PID` on a terminal: views, a bad line, Ctrl-C at the prompt,
    history under $XDG_STATE_HOME, and quit (then Ctrl-D): the target is detached and keeps
    running, and no dlv is left."""
    tc = TOOLCHAINS[-1]
    binary = harness.build("goroutines", tc)
    env = dict(os.environ, NO_COLOR="1", XDG_STATE_HOME=str(tmp_path / "state"), TERM="xterm",
               PROMPT_TOOLKIT_NO_CPR="1")
    with harness.run_fixture(binary, out_dir=str(tmp_path)) as fp:
        want_version = subprocess.run(
            [sys.executable, "-m", "delve_bridge", "attach", str(fp.pid), "version"],
            capture_output=True, text=True, timeout=120, cwd=harness.REPO, env=env).stdout
        assert "Go" in want_version or "go1" in want_version
        t = PtySession([sys.executable, "-m", "delve_bridge", "attach", str(fp.pid)], env,
                       cols=250, cwd=harness.REPO)
        try:
            t.expect(PROMPT)
            assert _tracer(fp.pid) != 0
            t.send("version\r")
            t.expect(r"version\n")                # the echo of the accepted line
            got = t.expect(PROMPT)
            assert got[:-len("(delve-bridge) ")] == want_version
            t.send("goroutines --limit 3\r")
            got = t.expect(r"goroutines --limit 3\n[\s\S]*?" + PROMPT)
            assert "(showing 3 of" in got
            t.send("frobnicate\r")
            got = t.expect(r"frobnicate\n[\s\S]*?" + PROMPT)
            assert "error: unknown command 'frobnicate'" in got and "Traceback" not in got
            t.send("stacks --min")
            t.expect("--min")
            t.send("\x03")                        # Ctrl-C clears the line, no exit
            t.expect(PROMPT)
            t.send("stacks --min 2\r")
            got = t.expect(r"buckets of \d+ goroutines\n[\s\S]*?" + PROMPT)
            assert "Traceback" not in got
            assert t.proc.poll() is None
            t.send("quit\r")
            rc = t.proc.wait(timeout=60)
            t.drain()
            rest = t.rest()
            assert rc == 0, rest
            assert "Traceback" not in rest and "delve-bridge:" not in rest, rest
        finally:
            t.close()
        t = PtySession([sys.executable, "-m", "delve_bridge", "attach", str(fp.pid)], env,
                       cols=250, cwd=harness.REPO)
        try:                                       # Ctrl-D leaves as quit does
            t.expect(PROMPT)
            t.send("\x04")
            assert t.proc.wait(timeout=60) == 0
        finally:
            t.close()
        with open(tmp_path / "state" / "gdb_go_ext" / "bridge_history") as f:
            h = f.read()
        assert "+version\n" in h and "+goroutines --limit 3\n" in h and "+quit\n" in h
        assert "+stacks --min\n" not in h          # the line cleared by Ctrl-C
        assert fp.proc.poll() is None and _tracer(fp.pid) == 0
        assert not [l for l in _dlv_processes() if str(fp.pid) in l]
