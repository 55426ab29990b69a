"""Real gdb on a terminal (a pty), as a person drives it: `set go color auto` colours
where gdb styles its own output, and not after `set style enabled off`, nor into
gdb.execute(..., to_string=True); Tab on a flag lists and inserts it with its dashes
(`--json`, not `json`). One toolchain: none of this depends on the Go version."""
import os
import re

import pytest

import harness
from pty_session import PtySession

TC = "go1.26.6" if "go1.26.6" in harness.matrix_names() else harness.matrix_names()[-1]
SGR = re.compile(r"\x1b\[[0-9;]*m")
PROMPT = "(gdb) "


class _Gdb(PtySession):
    """gdb on a pty; read_until() returns the raw bytes (escapes kept) up to a marker."""

    def run(self, line):
        """What one command printed, from its echo to the next prompt."""
        os.write(self.master, (line + "\n").encode())
        self.read_until(line.split()[-1])        # the echo of what was typed
        return self.read_until(PROMPT)


@pytest.fixture(scope="module")
def gdb_tty(tmp_path_factory):
    with harness.target_for("goroutines", TC, "core",
                            str(tmp_path_factory.mktemp("tty"))) as t:
        env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "TERM")}
        env["TERM"] = "xterm"
        g = _Gdb(["gdb", "-nx", "-q", "-iex", "set pagination off", "-iex", "set confirm off",
                  "-ex", "directory " + harness.gdb_script_dir(), "-ex", "source gdb_go_ext",
                  t.binary, t.core], env)
        try:
            g.read_until("gdb_go_ext ")
            g.read_until(PROMPT)
            yield g
        finally:
            g.close()


def test_color_auto_follows_gdb_styling(gdb_tty):
    g = gdb_tty
    assert "is auto" in g.run("show go color")
    styled = g.run("go goroutines --limit 3")
    assert SGR.search(styled), repr(styled[:500])
    assert "goroutines:" in SGR.sub("", styled)
    # to_string: text for a program, no escapes
    captured = g.run('python print(repr(gdb.execute("go goroutines --limit 3", to_string=True)))')
    assert "goroutines:" in captured and "\\x1b" not in captured, captured[:500]
    g.run("set style enabled off")
    plain = g.run("go goroutines --limit 3")
    assert "goroutines:" in plain and not SGR.search(plain), repr(plain[:500])
    g.run("set style enabled on")
    g.run("set go color off")
    assert not SGR.search(g.run("go goroutines --limit 3"))
    g.run("set go color auto")


def test_flag_completion_keeps_the_dashes(gdb_tty):
    g = gdb_tty
    os.write(g.master, b"go goroutines -\t\t")
    listing = SGR.sub("", g.read_until("-without"))
    words = listing.split()
    assert "--json" in words and "-with" in listing and "json" not in words, listing
    os.write(g.master, b"\x15go goroutines --j\t")      # Ctrl-U, then a unique flag
    g.read_until("--json")
    os.write(g.master, b" --limit 1\n")
    out = g.read_until(PROMPT)
    assert '"goroutines": [' in out and '"go_version"' in out, out[-1000:]   # it ran --json
